"""What the exact methods share: the upper bound and horizon from the best baseline plan, the warm
start, the time budget (building counts against it) and turning a solver's answer into a
:class:`SolveResult` with an honestly rounded bound.

The horizon is derived from the best baseline plan's objective ``UB`` as MODEL.md says,
``latest_i = UB - sum_j o_j + a_i``; the makespan of a heuristic plan is never used (an optimal
plan for total latency can end later, see ``tests/test_formulations_timeindexed.py``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..model.instance import Instance, IntArray
from ..model.plan import Plan
from ..model.result import SolveOptions, SolveResult, StopReason, round_bound
from .timeindexed import MAX_NONZEROS, TimeIndexed, build, check_plan_fits, left_justify

log = logging.getLogger(__name__)

#: Baselines whose best plan defines the upper bound, the horizon and the default warm start.
UPPER_BOUND_METHODS = ("fcfs", "fcfs-skip", "sf", "mcsf", "svf", "size")


def best_baseline(instance: Instance) -> tuple[Plan, str]:
    """The best plan of :data:`UPPER_BOUND_METHODS` (first one wins ties) and its method name."""
    from ..registry import solve

    best: Plan | None = None
    best_name = ""
    for name in UPPER_BOUND_METHODS:
        plan = solve(instance, name, SolveOptions()).plan
        if plan is not None and (best is None or plan.total_latency < best.total_latency):
            best, best_name = plan, name
    assert best is not None  # the baselines always return a plan
    return best, best_name


@dataclass
class Prepared:
    """A built time-indexed model with its upper bound, warm start and clock."""

    model: TimeIndexed
    upper_bound_plan: Plan
    upper_bound_source: str
    hint: Plan | None  # complete starting solution for the solver (None: none given)
    hint_source: str
    started: float
    deadline: float
    stats: dict[str, Any] = field(default_factory=dict)

    def remaining(self) -> float | None:
        """Seconds left for the solver (None: no limit), never negative."""
        if math.isinf(self.deadline):
            return None
        return max(0.0, self.deadline - time.perf_counter())


def prepare(instance: Instance, options: SolveOptions) -> Prepared:
    """Compute the upper bound, choose the warm start and build the time-indexed structure.

    ``options.warm_start`` (a valid plan) overrides the baseline as warm start and also tightens
    the upper bound when it is better.  Both are left-justified first (:func:`left_justify`:
    requests moved earlier while the plan stays valid; the objective can only drop).  ``options.params``: ``warm_start=False`` gives the solver
    no starting solution; ``max_nonzeros`` changes the size refusal limit; ``tight_windows=False``
    uses MODEL.md's plain windows instead of the energy-tightened ones.
    """
    started = time.perf_counter()
    deadline = options.deadline(started)
    baseline_plan, ub_source = best_baseline(instance)
    # left-justified plans are never worse and satisfy the left-shift dominance rows of cpsat
    ub_plan = left_justify(baseline_plan)
    user = options.warm_start
    if user is not None:
        # same requests in the same order is all we need
        user = left_justify(Plan.checked(instance, user.start_round))
    if user is not None and user.total_latency < ub_plan.total_latency:
        ub_plan, ub_source = user, "warm_start"
    max_nonzeros = int(options.params.get("max_nonzeros", MAX_NONZEROS))
    # tight_windows=False: MODEL.md's plain latest_i = UB - sum o + a_i (for the ablation table)
    model = build(instance, ub_plan.total_latency, max_nonzeros=max_nonzeros, tight=bool(options.params.get("tight_windows", True)))
    hint: Plan | None = None
    hint_source = "none"
    if options.params.get("warm_start", True):
        if user is not None and check_plan_fits(model, user):
            hint, hint_source = user, ("warm_start" if user is not ub_plan or ub_source == "warm_start" else ub_source)
        else:
            if user is not None:
                log.info("given warm start (objective %d) lies outside the windows; using %s", user.total_latency, ub_source)
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
    problem: the windows contain the upper-bound plan and every plan at least as good (MODEL.md),
    so both problems have the same optimum.
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
