"""The one registry: method name -> callable ``(Instance, SolveOptions) -> SolveResult``.

The CLI, the experiment runner and the tests all read :data:`METHODS`.  Entries name their
implementation by import path so that a heuristic run never imports Pyomo or OR-Tools.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from .instance import Instance
from .result import SolveOptions, SolveResult

Solver = Callable[[Instance, SolveOptions], SolveResult]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its name, kind, import path and one-line description."""

    name: str
    kind: str  # "baseline", "heuristic", "exact", "bound", "portfolio"
    target: str  # "module:function"
    help: str
    max_n: int | None = None  # beyond this many requests the method declines (None: no limit)

    def load(self) -> Solver:
        """Import and return the implementing function."""
        module, func = self.target.split(":")
        fn: Solver = getattr(importlib.import_module(module), func)
        return fn


METHODS: dict[str, MethodSpec] = {}


def register(name: str, kind: str, target: str, help: str, max_n: int | None = None) -> None:
    """Add a method to the registry (names are unique)."""
    if name in METHODS:
        raise ValueError(f"method {name!r} registered twice")
    METHODS[name] = MethodSpec(name, kind, target, help, max_n)


def get_method(name: str) -> MethodSpec:
    """Look a method up by name; the error lists the known names."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None


def solve(instance: Instance, method: str, options: SolveOptions | None = None) -> SolveResult:
    """Run a registered method on an instance (the library entry point behind the CLI)."""
    return get_method(method).load()(instance, options or SolveOptions())


_B = "scheduler_milp.baselines"
register("fcfs", "baseline", f"{_B}:solve_fcfs", "first-come-first-served, future-peak check, head-of-line blocking")
register("fcfs-skip", "baseline", f"{_B}:solve_fcfs_skip", "first-come-first-served, skip requests that do not fit")
register("sf", "baseline", f"{_B}:solve_sf", "shortest output first, skip requests that do not fit")
register("size", "baseline", f"{_B}:solve_size", "smallest prompt+output first, skip requests that do not fit")
register("mcsf", "baseline", f"{_B}:solve_mcsf", "memory-constrained shortest first (Jaillet et al.): largest fitting prefix in output order")
register("vllm", "baseline", f"{_B}:solve_vllm", "vLLM-like: admit on current memory, evict newest on overflow, restart from scratch")
register("svf", "heuristic", f"{_B}:solve_svf", "smallest memory-time volume first, future-peak check")
