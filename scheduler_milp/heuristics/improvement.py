"""Start and result of the improvement searches (``ls``, ``repack``): a warm start or the best fast plan."""

from __future__ import annotations

import time
from typing import Any, Protocol

from ..baselines.best import FAST_METHODS, best_fast_plan
from ..model.deadline import Deadline
from ..model.instance import Instance
from ..model.plan import Plan
from ..model.result import SolveOptions, SolveResult, StopReason


class StartParams(Protocol):
    """The parameter of every improvement search: the fast methods to start from (``None``: all)."""

    @property
    def start(self) -> tuple[str, ...] | None: ...


def improvement_start(
    instance: Instance, options: SolveOptions, params: StartParams, default_time: float = 10.0
) -> tuple[str, Plan, float | None, float]:
    """The start of an improvement method: ``(start name, start plan, time left, seconds spent)``.

    The start is ``options.warm_start`` or the best plan of the fast methods in ``params.start``
    (default :data:`~scheduler_milp.baselines.best.FAST_METHODS`).  The run's deadline
    (``default_time`` seconds when neither a time nor an iteration limit is set) covers finding
    the start (no fast method is started that would not end in time, the first excepted), so the
    time left is what remains of it (``None``: no time limit).
    """
    t0 = time.perf_counter()
    deadline = options.budget()
    if not deadline.limited and options.iteration_limit is None:
        deadline = Deadline.after(default_time)
    if options.warm_start is not None:
        start_name, start_plan = "warm_start", options.warm_start
    else:
        start_name, start_plan = best_fast_plan(
            instance, FAST_METHODS if params.start is None else params.start, deadline
        )
    return start_name, start_plan, deadline.remaining_or_none(), time.perf_counter() - t0


def improvement_result(
    method: str,
    instance: Instance,
    plan: Plan,
    stats: dict[str, Any],
    start_name: str,
    build_seconds: float,
    solve_started: float,
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
