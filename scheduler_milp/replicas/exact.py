"""The exact ``k``-replica optimum of a tiny instance: every assignment, each replica solved exactly.

Replicas are identical, so assignments are enumerated up to relabelling (restricted growth
strings: request 0 on replica 0, each later request on a replica already used or the next new
one).  Each replica's requests are solved by an exact registered method (``dp`` by default) and
memoised by their set; the optimum is the least sum over assignments.  Used by the tests to check
the pooled bound; its cost grows like ``k^n / k!``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..model.instance import Instance, IntArray
from ..model.result import SolveOptions
from ..registry import solve


def assignments(n: int, replicas: int) -> Iterator[tuple[int, ...]]:
    """Every assignment of ``n`` requests to at most ``replicas`` replicas, up to relabelling."""

    def grow(prefix: list[int], used: int) -> Iterator[tuple[int, ...]]:
        if len(prefix) == n:
            yield tuple(prefix)
            return
        for r in range(min(used + 1, replicas)):
            prefix.append(r)
            yield from grow(prefix, max(used, r + 1))
            prefix.pop()

    yield from grow([], 0)


def replica_optimum(
    instance: Instance, replicas: int, method: str = "dp", time_limit: float = 60.0
) -> tuple[int, IntArray, IntArray]:
    """``(optimum, assignment, start rounds)`` of the best ``replicas``-replica plan.

    Raises ``RuntimeError`` when the exact method does not prove a replica's optimum.
    """
    cache: dict[tuple[int, ...], tuple[int, IntArray]] = {}

    def optimum(idx: tuple[int, ...]) -> tuple[int, IntArray]:
        if idx not in cache:
            result = solve(instance.subset(list(idx)), method, SolveOptions(time_limit=time_limit))
            if result.plan is None or result.status.value != "optimal":
                raise RuntimeError(f"{method} did not prove the optimum of requests {idx}")
            cache[idx] = (int(result.plan.total_latency), result.plan.start_round)
        return cache[idx]

    best: tuple[int, IntArray, IntArray] | None = None
    for assign in assignments(instance.n, replicas):
        arr = np.asarray(assign, dtype=np.int64)
        total = 0
        starts = np.zeros(instance.n, dtype=np.int64)
        for r in range(replicas):
            idx = tuple(int(i) for i in np.flatnonzero(arr == r))
            if not idx:
                continue
            value, st = optimum(idx)
            total += value
            starts[list(idx)] = st
            if best is not None and total >= best[0]:
                break
        else:
            if best is None or total < best[0]:
                best = (total, arr, starts)
    assert best is not None
    return best
