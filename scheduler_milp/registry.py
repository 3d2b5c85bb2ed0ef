"""The one registry: method name -> callable ``(Instance, SolveOptions) -> SolveResult``.

The CLI, the experiment runner and the tests all read :data:`METHODS`.  Entries name their
implementation by import path so that a heuristic run never imports Pyomo or OR-Tools.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .model.deadline import Deadline
from .model.idle import compress_idle, expand_result
from .model.instance import Instance
from .model.params import MethodParams
from .model.plan import Plan, PlanError
from .model.result import ModelTooLarge, SolveOptions, SolveResult

Solver = Callable[[Instance, SolveOptions], SolveResult]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its name, kind, import path and one-line description."""

    name: str
    kind: str  # "baseline", "heuristic", "exact", "bound", "portfolio"
    target: str  # "module:function"
    help: str
    max_n: int | None = None  # beyond this many requests the method declines (None: no limit)
    params: str | None = (
        None  # name of its MethodParams class in the target's module (None: no knobs)
    )

    def load(self) -> Solver:
        """Import and return the implementing function."""
        module, func = self.target.split(":")
        fn: Solver = getattr(importlib.import_module(module), func)
        return fn

    def params_class(self) -> type[MethodParams]:
        """The method's parameter class (:class:`MethodParams` itself when it takes none)."""
        if self.params is None:
            return MethodParams
        cls: type[MethodParams] = getattr(
            importlib.import_module(self.target.split(":")[0]), self.params
        )
        return cls

    def parse_params(self, raw: dict[str, Any]) -> MethodParams:
        """Validated parameters; :class:`ParameterError` (one line, the valid keys) otherwise."""
        return self.params_class().parse(raw, self.name)

    def size_limit(self, params: MethodParams) -> int | None:
        """The largest ``n`` it accepts: ``max_n``, or its own ``max_n`` parameter where it has one."""
        own = getattr(params, "max_n", None)
        return int(own) if own is not None else self.max_n


METHODS: dict[str, MethodSpec] = {}


def register(
    name: str,
    kind: str,
    target: str,
    help: str,
    max_n: int | None = None,
    params: str | None = None,
) -> None:
    """Add a method to the registry (names are unique)."""
    if name in METHODS:
        raise ValueError(f"method {name!r} registered twice")
    METHODS[name] = MethodSpec(name, kind, target, help, max_n, params)


def get_method(name: str) -> MethodSpec:
    """Look a method up by name; the error lists the known names."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None


def solve(instance: Instance, method: str, options: SolveOptions | None = None) -> SolveResult:
    """Run a registered method on an instance (the library entry point behind the CLI).

    The one place where a method declines: beyond its size limit it raises
    :class:`~scheduler_milp.model.result.ModelTooLarge`; the methods themselves raise the same when
    their model would be too large.  Unknown or ill-typed parameters raise
    :class:`~scheduler_milp.model.params.ParameterError`.  The time budget starts here, so that
    imports and model building count against ``options.time_limit``.
    """
    spec = get_method(method)
    options = options or SolveOptions()
    if options.deadline is None:
        options = dataclasses.replace(options, deadline=Deadline.after(options.time_limit))
    solver = spec.load()
    params = spec.parse_params(options.params)
    limit = spec.size_limit(params)
    if limit is not None and instance.n > limit:
        raise ModelTooLarge(f"{method} declines {instance.n} requests (its limit is n <= {limit})")
    compression = compress_idle(instance)
    if compression is None:
        return solver(instance, options)
    # long idle stretches between arrivals: solve without them, same objective and bound
    warm = options.warm_start
    if warm is not None:  # kept when it is a plan of the compressed instance too
        try:
            warm = Plan.checked(compression.instance, warm.start_round - compression.shift)
        except PlanError:
            warm = None
    result = solver(compression.instance, dataclasses.replace(options, warm_start=warm))
    return expand_result(result, compression, instance)


_B = "scheduler_milp.baselines.serving"
register(
    "fcfs",
    "baseline",
    f"{_B}:solve_fcfs",
    "first-come-first-served, future-peak check, head-of-line blocking",
    params="WalkParams",
)
register(
    "fcfs-skip",
    "baseline",
    f"{_B}:solve_fcfs_skip",
    "first-come-first-served, skip requests that do not fit",
    params="WalkParams",
)
register(
    "sf",
    "baseline",
    f"{_B}:solve_sf",
    "shortest output first, skip requests that do not fit",
    params="WalkParams",
)
register(
    "size",
    "baseline",
    f"{_B}:solve_size",
    "smallest prompt+output first, skip requests that do not fit",
    params="WalkParams",
)
register(
    "mcsf",
    "baseline",
    f"{_B}:solve_mcsf",
    "memory-constrained shortest first (Jaillet et al.): largest fitting prefix in output order",
    params="WalkParams",
)
register(
    "vllm",
    "baseline",
    f"{_B}:solve_vllm",
    "vLLM-like: admit on current memory, evict newest on overflow, restart from scratch",
)
register(
    "svf",
    "heuristic",
    f"{_B}:solve_svf",
    "smallest memory-time volume first, future-peak check",
    params="WalkParams",
)
register(
    "dp",
    "exact",
    "scheduler_milp.formulations.search:solve_dp",
    "independent exact best-first search over rounds with a memory bound and dominance (small backlogs)",
    max_n=12,
    params="SearchParams",
)
register(
    "milp",
    "exact",
    "scheduler_milp.formulations.milp:solve_milp",
    "time-indexed MILP (Pyomo + HiGHS, --solver for others), zero gap, warm-started",
    max_n=60,
    params="MilpParams",
)
register(
    "cpsat",
    "exact",
    "scheduler_milp.formulations.cpsat:solve_cpsat",
    "time-indexed CP-SAT model: symmetry breaking, completion-count cuts, energy bound, complete hint",
    max_n=60,
    params="CpsatParams",
)
register(
    "lp",
    "bound",
    "scheduler_milp.formulations.lp:solve_lp",
    "LP relaxation bound of the time-indexed model; plan by LP mean-start order",
    max_n=400,
    params="LpParams",
)
register(
    "volume-bound",
    "bound",
    "scheduler_milp.bounds.methods:solve_volume_bound",
    "best fast heuristic plan with the volume lower bound (sorted completions vs volumes)",
)
register(
    "lagrange",
    "bound",
    "scheduler_milp.bounds.methods:solve_lagrange",
    "best fast heuristic plan with the Lagrangian bound of the time-indexed model's memory rows and its sawtooth lift (stronger than the LP)",
    params="LagrangeParams",
)
register(
    "lns",
    "heuristic",
    "scheduler_milp.heuristics.lns:solve_lns",
    "large-neighbourhood search: re-place blocks of requests exactly with CP-SAT windows",
    params="LnsParams",
)
register(
    "auto",
    "portfolio",
    "scheduler_milp.portfolio.auto:solve_auto",
    "portfolio: fast plans, bounds (volume, Lagrangian, LP), exact if tiny, repack, lns (2 processes); best plan with certified gap",
    params="AutoParams",
)
_H = "scheduler_milp.heuristics"
register(
    "sorted-f",
    "heuristic",
    f"{_H}.sorted_f:solve_sorted_f",
    "Sorted-F: start the feasible batch minimising sum(o)/|X|^2, repeat (mode=continuous|sequential)",
    params="SortedFParams",
)
register(
    "ls",
    "heuristic",
    f"{_H}.local_search:solve_ls",
    "local search (swap, reinsert, batch moves) over the priority order from the best fast plan",
    params="LocalSearchParams",
)
register(
    "repack",
    "heuristic",
    f"{_H}.repack:solve_repack",
    "plan-space local search: compaction and ruin-and-recreate with incremental memory profiles",
    params="RepackParams",
)
register(
    "sorted-lp",
    "heuristic",
    f"{_H}.lp_guided:solve_sorted_lp",
    "order by the LP relaxation's fractional mean start, decode with the start rule",
    max_n=400,
)
register(
    "lp-swap",
    "heuristic",
    f"{_H}.lp_guided:solve_lp_swap",
    "sorted-lp improved by swaps of requests whose LP start windows overlap",
    max_n=400,
    params="LpSwapParams",
)
register(
    "rh",
    "heuristic",
    f"{_H}.receding:solve_rh",
    "receding horizon: exact CP-SAT on a window of the next requests, commit the first half",
    params="RhParams",
)
register(
    "busy-bound",
    "bound",
    "scheduler_milp.bounds.methods:solve_busy_bound",
    "best fast heuristic plan with the mean-busy-time lower bound",
)
