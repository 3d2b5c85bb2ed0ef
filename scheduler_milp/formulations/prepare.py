"""The shared set-up of the exact models (``milp``, ``cpsat``): upper bound, windows, warm start.

The upper bound is the objective ``UB`` of the best fast plan
(:func:`~scheduler_milp.baselines.best.best_fast_plan`), or of ``options.warm_start`` when it is
better; it defines every request's window of start rounds (docs/exact.md, horizon and windows:
``latest_i = UB - sum_j o_j + a_i``, tightened by the energy bound).  The makespan of a heuristic
plan is never used: an optimal plan for total latency can end later
(``tests/formulations/test_timeindexed.py``).  The time budget is the run's
:class:`~scheduler_milp.model.deadline.Deadline`, so building counts against it; :func:`finish`
turns a solver's answer into a :class:`SolveResult` with an honestly rounded bound.

A model whose building runs past the deadline is abandoned: the builders check it between their
steps (:class:`~.timeindexed.OutOfTime`), and the method answers with the plan it holds, the
warm start or the upper-bound plan (:class:`Unsolved`, :func:`unsolved_result`; stop reason
``time_limit``), also when too little time is left for the solver to load the model (``cpsat``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ..baselines.best import best_fast_plan
from ..model.deadline import Deadline
from ..model.instance import Instance, IntArray
from ..model.params import MethodParams
from ..model.plan import Plan
from ..model.result import SolveOptions, SolveResult, StopReason, round_bound
from .timeindexed import (
    MAX_NONZEROS,
    OutOfTime,
    TimeIndexed,
    build,
    check_plan_fits,
    left_justify,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExactParams(MethodParams):
    """The keys every time-indexed exact model reads (``--param key=value``).

    ``max_nonzeros``: the size beyond which the model is declined (:class:`ModelTooLarge`);
    ``tight_windows=False``: the plain windows ``latest_i = UB - sum_j o_j + a_i`` instead of the
    energy-tightened ones (for the ablation table); ``warm_start=False``: no starting solution for
    the solver; ``keep_log``: keep the solver's log in ``stats["solver_log"]``.
    """

    max_nonzeros: int = MAX_NONZEROS
    tight_windows: bool = True
    warm_start: bool = True
    keep_log: bool = False


@dataclass
class Prepared:
    """A built time-indexed model with its upper bound, warm start and clock."""

    model: TimeIndexed
    upper_bound_plan: Plan
    upper_bound_source: str
    hint: Plan | None  # complete starting solution for the solver (None: none given)
    hint_source: str
    started: float
    deadline: Deadline
    stats: dict[str, Any] = field(default_factory=dict)

    def remaining(self) -> float | None:
        """Seconds left for the solver (None: no limit), never negative."""
        return self.deadline.remaining_or_none()

    def unsolved(self, why: str) -> Unsolved:
        """The :class:`Unsolved` of this model: its warm start, or else its upper-bound plan."""
        if self.hint is not None:
            return Unsolved(self.hint, self.hint_source, why, self.started, self.stats)
        return Unsolved(
            self.upper_bound_plan, self.upper_bound_source, why, self.started, self.stats
        )


class Unsolved(Exception):
    """The time limit passed before a solver could start: ``plan`` (from ``source``) is the answer.

    Raised by :func:`prepare` (with ``interruptible``) and by the methods' own build steps;
    :func:`unsolved_result` turns it into the method's result.
    """

    def __init__(
        self,
        plan: Plan,
        source: str,
        why: str,
        started: float,
        stats: dict[str, Any] | None = None,
    ):
        super().__init__(why)
        self.plan = plan
        self.source = source
        self.why = why
        self.started = started
        self.stats = dict(stats or {})


def unsolved_result(method: str, err: Unsolved) -> SolveResult:
    """The result of a method stopped by ``err``: its plan, no bound of its own, ``time_limit``."""
    stats = dict(err.stats)
    stats.update({"plan_source": err.source, "termination": err.why})
    return SolveResult(
        method,
        err.plan.instance,
        err.plan,
        stop_reason=StopReason.TIME_LIMIT,
        build_seconds=time.perf_counter() - err.started,
        stats=stats,
    )


def prepare(
    instance: Instance,
    options: SolveOptions,
    params: ExactParams | None = None,
    bytes_per_nonzero: float | None = None,
    interruptible: bool = False,
) -> Prepared:
    """Compute the upper bound, choose the warm start and build the time-indexed structure.

    ``options.warm_start`` (a valid plan) overrides the best fast plan as warm start and also
    tightens the upper bound when it is better.  Both are left-justified first
    (:func:`left_justify`: requests moved earlier while the plan stays valid; the objective can
    only drop).  ``params`` (default: read from ``options``) are the model's :class:`ExactParams`;
    ``bytes_per_nonzero`` (the solver's memory per nonzero) lets :func:`.timeindexed.build`
    decline a model whose estimated memory exceeds the machine's cap before building it.  With
    ``interruptible`` the fast plans respect the deadline (none started that would not end in
    time, the first excepted) and a build that runs past it raises :class:`Unsolved` with the
    best plan so far.
    """
    started = time.perf_counter()
    deadline = options.budget()
    p = ExactParams.of(options) if params is None else params
    ub_source, baseline_plan = best_fast_plan(
        instance, deadline=deadline if interruptible else None
    )
    # left-justified plans are never worse and satisfy the left-shift dominance rows of cpsat
    ub_plan = left_justify(baseline_plan)
    user = options.warm_start
    if user is not None:
        # same requests in the same order is all we need
        user = left_justify(Plan.checked(instance, user.start_round))
    if user is not None and user.total_latency < ub_plan.total_latency:
        ub_plan, ub_source = user, "warm_start"
    try:
        model = build(
            instance,
            ub_plan.total_latency,
            max_nonzeros=p.max_nonzeros,
            tight=p.tight_windows,
            bytes_per_nonzero=bytes_per_nonzero,
            deadline=deadline if interruptible else None,
        )
    except OutOfTime:
        raise Unsolved(
            ub_plan, ub_source, "time limit reached while building the model", started
        ) from None
    hint: Plan | None = None
    hint_source = "none"
    if p.warm_start:
        if user is not None and check_plan_fits(model, user):
            hint, hint_source = (
                user,
                ("warm_start" if user is not ub_plan or ub_source == "warm_start" else ub_source),
            )
        else:
            if user is not None:
                log.info(
                    "given warm start (objective %d) lies outside the windows; using %s",
                    user.total_latency,
                    ub_source,
                )
            hint, hint_source = ub_plan, ub_source
    stats = {
        "upper_bound": ub_plan.total_latency,
        "upper_bound_source": ub_source,
        "baseline_objective": baseline_plan.total_latency,
        "warm_start_source": hint_source,
        "warm_start_objective": None if hint is None else hint.total_latency,
        "columns": model.n_cols,
        "memory_rows": model.memory_rows.n_rows,
        "nonzeros": model.nnz,
        "horizon": model.horizon,
    }
    log.info(
        "%s: n=%d UB=%d (%s) columns=%d rows=%d nnz=%d",
        instance.name,
        instance.n,
        ub_plan.total_latency,
        ub_source,
        model.n_cols,
        model.memory_rows.n_rows,
        model.nnz,
    )
    return Prepared(model, ub_plan, ub_source, hint, hint_source, started, deadline, stats)


def finish(
    method: str,
    prepared: Prepared,
    starts: IntArray | None,
    dual_bound: float | None,
    timed_out: bool,
    build_seconds: float,
    solve_seconds: float,
    stats: dict[str, Any] | None = None,
    proven_infeasible: bool = False,
) -> SolveResult:
    """The :class:`SolveResult` of an exact run: plan validated, bound rounded up with tolerance.

    The bound is not clipped: :class:`SolveResult` raises if it ever exceeds the plan's objective,
    which would be a modelling bug.  A bound of the windowed model is a bound of the whole
    problem: the windows contain the upper-bound plan and every plan at least as good
    (docs/exact.md), so both problems have the same optimum.
    """
    instance = prepared.model.instance
    all_stats = dict(prepared.stats)
    all_stats.update(stats or {})
    all_stats["plan_source"] = "solver"
    if starts is None and timed_out and prepared.hint is not None:
        # stopped before the solver reported any incumbent: the warm start it was given is
        # still a valid plan we hold (status FEASIBLE, never more without a proof)
        starts = prepared.hint.start_round
        all_stats["plan_source"] = "warm_start"
    plan = None if starts is None else Plan.checked(instance, starts)
    bound = round_bound(dual_bound)
    return SolveResult(
        method,
        instance,
        plan,
        lower_bound=bound,
        stop_reason=StopReason.TIME_LIMIT if timed_out else StopReason.COMPLETED,
        build_seconds=build_seconds,
        solve_seconds=solve_seconds,
        proven_infeasible=proven_infeasible,
        stats=all_stats,
    )
