"""``ls``: local search over the priority order, every candidate decoded by the shared start rule.

Start: the best plan of the fast methods (:func:`scheduler_milp.baselines.best.best_fast_plan`, or
those of the ``start`` parameter), and its start order (:meth:`Plan.order`) as the current
priority.  Moves, drawn with a seeded ``numpy.random.Generator``:

* ``swap``: exchange two requests in the order (half of the time two neighbours, otherwise two
  positions at most ``window`` apart);
* ``reinsert``: take one request out and insert it elsewhere (at most ``window`` positions away);
* ``batch``: move a request to the previous or the next batch of the current plan (batches are the
  groups of requests with the same start round): it is reinserted just before the first request
  of the batch that starts before its own, or just after the last of the batch that starts after.

Each candidate order is decoded by :func:`scheduler_milp.baselines.engine.priority_walk` (``blocking``
parameter, default ``False``: the skipping walk of ``decode_priority``).  A move is kept when the
objective does not get worse (equal moves let the search cross plateaus); the best plan seen is
returned, so the result is never worse than the start plan.  The search stops after
``options.iteration_limit`` candidate evaluations or ``options.time_limit`` seconds (default 10),
whichever comes first; with an iteration limit and no time limit it is deterministic for a fixed
seed.  Each decode walks the whole order (``O(n)`` events), so the search is meant for backlogs up
to a few thousand requests.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..baselines.engine import priority_walk
from ..model.instance import Instance, IntArray
from ..model.params import MethodParams
from ..model.plan import Plan
from ..model.result import SolveOptions, SolveResult, StopReason
from .improvement import improvement_result, improvement_start

log = logging.getLogger(__name__)

MOVES = ("swap", "reinsert", "batch")


@dataclass(frozen=True)
class LocalSearchParams(MethodParams):
    """``ls``'s parameters: the decoder variant (``blocking``), how far moves reach (``window``)
    and the fast methods to start from (``start``; ``None``: all of them)."""

    blocking: bool = False
    window: int = 20
    start: tuple[str, ...] | None = None


def _objective(instance: Instance, start_round: IntArray) -> int:
    return int((start_round + instance.output_len - instance.arrival).sum())


def _move(
    order: IntArray, start_round: IntArray, rng: np.random.Generator, window: int
) -> tuple[IntArray, str]:
    """A neighbour of ``order`` (a new array) and the name of the move used."""
    n = order.size
    kind = MOVES[int(rng.integers(len(MOVES)))]
    new = order.copy()
    i = int(rng.integers(n))
    if kind == "swap":
        if rng.random() < 0.5:
            j = min(i + 1, n - 1) if i < n - 1 else i - 1
        else:
            j = int(np.clip(i + rng.integers(-window, window + 1), 0, n - 1))
        new[i], new[j] = new[j], new[i]
        return new, kind
    if kind == "reinsert":
        j = int(np.clip(i + rng.integers(-window, window + 1), 0, n - 1))
        item = new[i]
        new = np.insert(np.delete(new, i), j, item)
        return new, kind
    # batch: move order[i] to the neighbouring start-round group
    starts = start_round[order]
    own = starts[i]
    item = new[i]
    rest = np.delete(new, i)
    rest_starts = np.delete(starts, i)
    if rng.random() < 0.5:
        earlier = rest_starts[rest_starts < own]
        if earlier.size:
            j = int(np.flatnonzero(rest_starts == earlier.max())[0])  # before that batch's first
            return np.insert(rest, j, item), kind
    later = rest_starts[rest_starts > own]
    if later.size:
        j = int(np.flatnonzero(rest_starts == later.min())[-1]) + 1  # after that batch's last
        return np.insert(rest, j, item), kind
    return new, kind


def local_search(
    instance: Instance,
    start_plan: Plan,
    seed: int = 0,
    time_limit: float | None = 10.0,
    iteration_limit: int | None = None,
    blocking: bool = False,
    window: int = 20,
) -> tuple[Plan, dict[str, Any]]:
    """Improve ``start_plan`` by moves over its priority order (see the module docstring); it ends
    at a plan at the trivial bound (the sum of the outputs), which is optimal."""
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + time_limit
    if iteration_limit is None and time_limit is None:
        raise ValueError("ls: give a time limit or an iteration limit")
    rng = np.random.default_rng(seed)
    order = start_plan.order().astype(np.int64)
    best_starts = np.asarray(start_plan.start_round, dtype=np.int64)
    best_obj = start_plan.total_latency
    # the current point: the decoded start order (it may differ from the start plan itself)
    cur_starts = priority_walk(instance, order, blocking=blocking).start_round
    cur_obj = _objective(instance, cur_starts)
    if cur_obj < best_obj:
        best_obj, best_starts = cur_obj, cur_starts
    trajectory: list[tuple[float, int]] = [(0.0, best_obj)]
    floor = int(instance.output_len.sum())
    accepted = {m: 0 for m in MOVES}
    improved = {m: 0 for m in MOVES}
    iterations = 0
    stop = StopReason.COMPLETED
    while True:
        if iteration_limit is not None and iterations >= iteration_limit:
            stop = StopReason.ITERATION_LIMIT
            break
        if time.perf_counter() >= deadline:
            stop = StopReason.TIME_LIMIT
            break
        if instance.n < 2 or best_obj <= floor:  # at the trivial bound: optimal
            break
        iterations += 1
        cand, kind = _move(order, cur_starts, rng, window)
        starts = priority_walk(instance, cand, blocking=blocking).start_round
        obj = _objective(instance, starts)
        if obj <= cur_obj:
            if obj < cur_obj:
                improved[kind] += 1
            accepted[kind] += 1
            order, cur_starts, cur_obj = cand, starts, obj
            if obj < best_obj:
                best_obj, best_starts = obj, starts
                elapsed = time.perf_counter() - t0
                trajectory.append((round(elapsed, 4), best_obj))
                log.info(
                    "ls: iteration %d (%s) objective %d after %.2fs",
                    iterations,
                    kind,
                    best_obj,
                    elapsed,
                )
    plan = Plan.checked(instance, best_starts)
    stats: dict[str, Any] = {
        "iterations": iterations,
        "trajectory": trajectory,
        "accepted_moves": accepted,
        "improving_moves": improved,
        "start_objective": start_plan.total_latency,
        "stop": stop.value,
        "evaluations_per_second": iterations / max(time.perf_counter() - t0, 1e-9),
    }
    return plan, stats


def solve_ls(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``ls``: local search from the best fast plan (parameters: :class:`LocalSearchParams`)."""
    options = options or SolveOptions()
    p = LocalSearchParams.of(options)
    start_name, start_plan, time_limit, build_seconds = improvement_start(instance, options, p)
    t1 = time.perf_counter()
    plan, stats = local_search(
        instance,
        start_plan,
        seed=options.seed,
        time_limit=time_limit,
        iteration_limit=options.iteration_limit,
        blocking=p.blocking,
        window=p.window,
    )
    return improvement_result("ls", instance, plan, stats, start_name, build_seconds, t1)
