"""The published heuristics (ALGORITHMS.md): ``sorted-f``, ``ls``, ``sorted-lp``/``lp-swap``, ``rh``.

:func:`best_fast_plan` is the warm start of the exact models, of the portfolio and of ``ls``: the
best plan of the fast order-based methods.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from ..instance import Instance
from ..plan import Plan
from ..result import SolveOptions, SolveResult, StopReason

log = logging.getLogger("scheduler_milp.heuristics")

#: The fast methods whose best plan is the warm start (each runs in seconds on 20k requests).
FAST_METHODS: tuple[str, ...] = ("fcfs", "fcfs-skip", "sf", "size", "mcsf", "svf", "sorted-f")


def best_fast_plan(instance: Instance, include: Sequence[str] = FAST_METHODS) -> tuple[str, Plan]:
    """``(method name, plan)`` of the best plan among ``include`` (the first listed wins ties).

    Every plan is validated by the methods themselves; a method that raises is skipped (logged),
    and if all fail the last error is raised.
    """
    from ..registry import solve

    best: tuple[str, Plan] | None = None
    error: Exception | None = None
    for name in include:
        try:
            plan = solve(instance, name, SolveOptions()).plan
        except (ValueError, RuntimeError) as err:  # a method declining (e.g. too large) is skipped
            log.info("best_fast_plan: %s failed: %s", name, err)
            error = err
            continue
        if plan is not None and (best is None or plan.total_latency < best[1].total_latency):
            best = (name, plan)
    if best is None:
        raise error if error is not None else ValueError("best_fast_plan: no method given")
    log.info("best fast plan: %s, objective %d", best[0], best[1].total_latency)
    return best


def improvement_start(instance: Instance, options: SolveOptions, default_time: float = 10.0) -> tuple[str, Plan, float | None, float]:
    """The start of an improvement method: ``(start name, start plan, time left, seconds spent)``.

    The start is ``options.warm_start`` or the best plan of the fast methods listed in the
    ``start`` parameter (default :data:`FAST_METHODS`).  The time limit (``default_time`` when
    neither a time nor an iteration limit is set) covers finding the start, so the time left is
    what remains of it (``None``: no time limit).
    """
    t0 = time.perf_counter()
    if options.warm_start is not None:
        start_name, start_plan = "warm_start", options.warm_start
    else:
        p = options.params
        include = tuple(str(p["start"]).split(",")) if "start" in p else FAST_METHODS
        start_name, start_plan = best_fast_plan(instance, include)
    spent = time.perf_counter() - t0
    time_limit = options.time_limit
    if time_limit is None and options.iteration_limit is None:
        time_limit = default_time
    if time_limit is not None:
        time_limit = max(0.0, time_limit - spent)
    return start_name, start_plan, time_limit, spent


def improvement_result(
    method: str, instance: Instance, plan: Plan, stats: dict[str, Any], start_name: str, build_seconds: float, solve_started: float
) -> SolveResult:
    """The result of an improvement method (``ls``, ``repack``) started by :func:`improvement_start`.

    ``stats["stop"]`` is the search's stop reason; finding the start counts as building,
    the search from ``solve_started`` (a ``time.perf_counter()`` reading) on as solving.
    """
    stats["start_method"] = start_name
    return SolveResult(
        method,
        instance,
        plan,
        stop_reason=StopReason(stats["stop"]),
        build_seconds=build_seconds,
        solve_seconds=time.perf_counter() - solve_started,
        stats=stats,
    )
