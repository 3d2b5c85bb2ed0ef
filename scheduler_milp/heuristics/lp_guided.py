"""LP-guided heuristics: ``sorted-lp`` and ``lp-swap``.

Both solve the LP relaxation of the time-indexed model
(:func:`scheduler_milp.formulations.lp.lp_relaxation`), whose optimum is also reported as the
plan's proven lower bound.

* ``sorted-lp``: order the requests by their fractional mean start ``sum_t t x_it`` (ties by
  arrival, then id) and decode the order with the shared start rule
  (:func:`scheduler_milp.baselines.serving.decode_priority`, skipping walk).
* ``lp-swap``: start from that order; the LP suggests which pairs are uncertain: two requests whose
  mean starts are close could go either way.  Candidate pairs are the requests at most ``span``
  (default 4) positions apart in the LP order, tried in increasing order of their mean-start
  difference; a swap is kept when the decoded objective strictly improves, and passes over the
  candidate list repeat until a pass improves nothing, ``options.iteration_limit`` decodes or the
  time limit.  The result is never worse than ``sorted-lp``'s.

The LP's horizon comes from the best fast plan's objective (the valid horizon of docs/model.md).
The LP is declined (:class:`~scheduler_milp.model.result.ModelTooLarge`, one line, printed by the
CLI) when the model would exceed the time-indexed builder's nonzero limit, which happens on
backlogs of a few hundred requests with long outputs.  The time limit covers the fast plans,
building and solving the LP; when it passes before the LP is solved, the method ends with one
line (``RuntimeError``): without the LP there is no order.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..baselines.best import best_fast_plan
from ..baselines.engine import priority_from_keys, priority_walk
from ..baselines.serving import decode_priority
from ..model.deadline import Deadline
from ..model.instance import Instance, IntArray
from ..model.params import MethodParams
from ..model.plan import Plan
from ..model.result import ModelTooLarge, SolveOptions, SolveResult, StopReason, round_bound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LpSwapParams(MethodParams):
    """``lp-swap``'s parameters: ``span``, how many positions apart in the LP order two requests
    may be to form a candidate swap."""

    span: int = 4


def lp_order(
    instance: Instance, time_limit: float | None = None, deadline: Deadline | None = None
) -> tuple[IntArray, np.ndarray, float, Plan]:
    """``(order, mean_start, lp_value, horizon_plan)``: the LP mean-start order and its inputs.

    ``deadline`` (instead of ``time_limit``) covers the best fast plan and building the LP too.
    """
    from ..formulations.lp import lp_relaxation

    _, ub_plan = best_fast_plan(instance, deadline=deadline)
    try:
        value, mean = lp_relaxation(
            instance, upper_bound=ub_plan.total_latency, time_limit=time_limit, deadline=deadline
        )
    except ModelTooLarge as err:
        raise ModelTooLarge(
            f"the LP relaxation is too large for {instance.name} (n={instance.n}): {err}"
        ) from None
    except TimeoutError as err:
        raise RuntimeError(f"{err}") from None
    order = priority_from_keys(instance, np.round(np.asarray(mean) * 1e6).astype(np.int64))
    return order, np.asarray(mean, dtype=float), float(value), ub_plan


def _objective(instance: Instance, start_round: IntArray) -> int:
    return int((start_round + instance.output_len - instance.arrival).sum())


def lp_swap_improve(
    instance: Instance,
    order: IntArray,
    mean_start: np.ndarray,
    span: int = 4,
    deadline: float = math.inf,
    iteration_limit: int | None = None,
) -> tuple[IntArray, dict[str, Any]]:
    """Improve ``order`` by the swaps the LP suggests; returns the best start rounds and counters."""
    n = order.size
    pairs: list[tuple[float, int, int]] = []
    for p in range(n):
        for q in range(p + 1, min(n, p + span + 1)):
            pairs.append((abs(float(mean_start[order[q]] - mean_start[order[p]])), p, q))
    pairs.sort()
    cur = order.copy()
    best = priority_walk(instance, cur, blocking=False).start_round
    best_obj = _objective(instance, best)
    evaluations = 0
    swaps = 0
    passes = 0
    stop = StopReason.COMPLETED
    improved = True
    while improved:
        improved = False
        passes += 1
        for _, p, q in pairs:
            if iteration_limit is not None and evaluations >= iteration_limit:
                stop = StopReason.ITERATION_LIMIT
                break
            if time.perf_counter() >= deadline:
                stop = StopReason.TIME_LIMIT
                break
            cand = cur.copy()
            cand[p], cand[q] = cand[q], cand[p]
            evaluations += 1
            starts = priority_walk(instance, cand, blocking=False).start_round
            obj = _objective(instance, starts)
            if obj < best_obj:
                cur, best, best_obj = cand, starts, obj
                swaps += 1
                improved = True
                log.info("lp-swap: positions %d,%d -> objective %d", p, q, obj)
        if stop != StopReason.COMPLETED:
            break
    return best, {"evaluations": evaluations, "swaps": swaps, "passes": passes, "stop": stop.value}


def _run(instance: Instance, options: SolveOptions, swap: bool) -> SolveResult:
    name = "lp-swap" if swap else "sorted-lp"
    span = LpSwapParams.of(options).span if swap else 0
    t0 = time.perf_counter()
    deadline = options.budget()
    order, mean, value, _ = lp_order(instance, deadline=deadline)
    t1 = time.perf_counter()
    plan = decode_priority(instance, order, blocking=False)
    stats: dict[str, Any] = {
        "lp_value": value,
        "bound_source": "lp_relaxation",
        "sorted_lp_objective": plan.total_latency,
    }
    stop = StopReason.COMPLETED
    if swap:
        starts, more = lp_swap_improve(
            instance,
            order,
            mean,
            span=span,
            deadline=deadline.at,
            iteration_limit=options.iteration_limit,
        )
        stats.update(more)
        stop = StopReason(more["stop"])
        if _objective(instance, starts) < plan.total_latency:
            plan = Plan.checked(instance, starts)
    log.info("%s: objective %d, LP bound %.3f", name, plan.total_latency, value)
    return SolveResult(
        name,
        instance,
        plan,
        lower_bound=round_bound(value),
        stop_reason=stop,
        build_seconds=t1 - t0,
        solve_seconds=time.perf_counter() - t1,
        stats=stats,
    )


def solve_sorted_lp(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``sorted-lp``: decode the LP relaxation's mean-start order (LP bound reported)."""
    return _run(instance, options or SolveOptions(), swap=False)


def solve_lp_swap(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``lp-swap``: ``sorted-lp`` improved by LP-suggested swaps (param ``span``)."""
    return _run(instance, options or SolveOptions(), swap=True)
