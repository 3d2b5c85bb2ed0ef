"""Routing requests to ``k`` replicas: round-robin, least-loaded by memory-time volume, optimised.

- ``round-robin``: requests in arrival order (ties by position) go to replicas ``0, 1, ..., k-1,
  0, ...``.
- ``least-loaded``: requests in arrival order, larger volume first among equal arrivals, each to
  the replica holding the least memory-time volume ``sum V_i`` so far (for a backlog this is the
  longest-processing-time rule on volumes).
- ``optimised``: least-loaded, then moves of single requests from the replica with the largest
  total latency to the one with the smallest, each evaluated by scheduling both replicas again
  with a fast registered method and kept when the sum of the two falls (:func:`improve`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..model.instance import Instance, IntArray
from ..model.result import SolveOptions
from ..registry import solve

ROUTINGS = ("round-robin", "least-loaded", "optimised")


def round_robin(instance: Instance, replicas: int) -> IntArray:
    """Replica ``position in arrival order mod k``."""
    order = np.lexsort((np.arange(instance.n), instance.arrival))
    out = np.empty(instance.n, dtype=np.int64)
    out[order] = np.arange(instance.n) % replicas
    return out


def least_loaded(instance: Instance, replicas: int) -> IntArray:
    """Each request, in arrival order (larger volume first on ties), to the replica with the least volume so far."""
    vol = instance.volume.astype(np.float64)
    order = np.lexsort((np.arange(instance.n), -vol, instance.arrival))
    load = np.zeros(replicas)
    out = np.empty(instance.n, dtype=np.int64)
    for i in order:
        r = int(np.argmin(load))
        out[i] = r
        load[r] += vol[i]
    return out


def replica_objective(
    instance: Instance, idx: IntArray, method: str, options: SolveOptions | None = None
) -> int:
    """Total latency of ``method``'s plan for the requests ``idx`` on one replica (0 when empty)."""
    if idx.size == 0:
        return 0
    result = solve(instance.subset(idx), method, options or SolveOptions())
    if result.plan is None:
        raise RuntimeError(f"{method} found no plan for a replica of {idx.size} requests")
    return int(result.plan.total_latency)


def improve(
    instance: Instance,
    replicas: int,
    assignment: IntArray,
    deadline: float,
    evaluate: str = "svf",
    seed: int = 0,
    candidates: int = 8,
    patience: int = 3,
    log: Callable[[str], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[IntArray, dict[str, int]]:
    """Move requests from the replica with the largest total latency to the one with the smallest.

    Each round tries ``candidates`` requests of the worst replica (the largest volumes first, then
    random ones) and keeps the first move that lowers the two replicas' summed objective under
    ``evaluate``; it stops after ``patience`` rounds in a row without such a move, at ``deadline``
    (``time.perf_counter()``) or when ``stop()`` says so. Returns the assignment and ``{tried, moved, before, after}``.
    """
    rng = np.random.default_rng(seed)
    assign = assignment.copy()
    vol = instance.volume
    groups = [np.flatnonzero(assign == r) for r in range(replicas)]
    obj = [replica_objective(instance, g, evaluate) for g in groups]
    before = sum(obj)
    tried = moved = fails = 0
    stopped = stop or (lambda: False)
    while time.perf_counter() < deadline and replicas > 1 and fails < patience and not stopped():
        worst = int(np.argmax(obj))
        best = int(np.argmin(obj))
        if worst == best or groups[worst].size <= 1:
            break
        pool = groups[worst]
        top = pool[np.argsort(-vol[pool], kind="stable")][: candidates // 2]
        rest = np.setdiff1d(pool, top)
        extra = rng.choice(rest, size=min(rest.size, candidates - top.size), replace=False)
        accepted = False
        for i in np.concatenate([top, extra]).astype(np.int64):
            if time.perf_counter() >= deadline:
                break
            tried += 1
            w = pool[pool != i]
            b = np.sort(np.append(groups[best], i))
            new_w = replica_objective(instance, w, evaluate)
            new_b = replica_objective(instance, b, evaluate)
            if new_w + new_b < obj[worst] + obj[best]:
                groups[worst], groups[best] = w, b
                obj[worst], obj[best] = new_w, new_b
                assign[i] = best
                moved += 1
                accepted = True
                if log is not None:
                    log(f"moved {instance.ids[i]} from replica {worst} to {best}: {sum(obj)}")
                break
        fails = 0 if accepted else fails + 1
    return assign, {"tried": tried, "moved": moved, "before": before, "after": sum(obj)}


def route(instance: Instance, replicas: int, routing: str) -> IntArray:
    """The assignment of ``round-robin`` or ``least-loaded`` (``optimised`` starts from least-loaded)."""
    if routing == "round-robin":
        return round_robin(instance, replicas)
    if routing in ("least-loaded", "optimised"):
        return least_loaded(instance, replicas)
    raise ValueError(f"unknown routing {routing!r}; known: {', '.join(ROUTINGS)}")
