"""``repack``: ruin-and-recreate local search in plan space, with incremental memory profiles.

``ls`` moves requests in a priority order and re-decodes the whole order for every candidate.
``repack`` works on the start rounds themselves: it keeps the memory in use and the number of
running requests in every round as two arrays and changes them only on the rounds that the moved
requests touch, so a move costs one compiled pass over a window of rounds instead of a full
decode, and thousands of moves run per second.

*Earliest fit*: :meth:`scheduler_milp.heuristics.profile.Profile.earliest` (one compiled pass over
the rounds from the lowest allowed start, which stops at the answer).

*Construction.*  The serial schedule generation scheme in smallest-volume-first order (the key of
``svf``, ties by arrival then index): each request starts at its earliest feasible round next to
those placed before it, *also before them* (backfilling into holes).  ``svf`` is a walk forward in
time that starts whatever fits now (a non-delay schedule), so a large request that fits at round
``t`` can take memory that smaller requests would have used a few rounds later; the insertion plan
reserves room for the small requests first, which pays under tight memory budgets (under loose
ones the start plan is often better and is kept).  The better of the start plan and this plan is
the search's start (``insertion=false`` skips it).

*Moves* (seeded ``numpy.random.Generator(options.seed)``):

* **compaction**: every request, in start order, moves to its earliest feasible start given all the
  others (never later than its own); repeated until no request moves.  Run first (searching from
  each arrival) and every ``compact_every`` moves (default ``max(500, n / 8)``), searching only
  ``compact_window`` rounds (default 2,000) back from each start: a search from the arrival costs
  ``O(n * T)``, which would dominate the run on whole traces.
* **ruin and recreate**: free ``k`` requests (``k`` log-uniform in ``kmin..kmax``, default 4..150),
  chosen as a block of neighbours in start order, a random subset of a block of ``3k`` neighbours,
  or requests running around a random round; re-insert them one by one, in ascending volume order
  (with +-30% noise), in their old start order (with noise), or in random order, each at its
  earliest feasible start (a request may move much later, which is how a large request makes room
  for many small ones).  Only starts from ``reach`` rounds before the earliest freed
  start on are searched (earlier holes are left to compaction), which keeps each placement to a
  window of a few thousand rounds.  The move is kept when the total latency does not increase
  (equal moves cross plateaus) or, *threshold accepting*, increases by at most an allowance that
  starts at ``threshold`` times the start plan's mean latency and shrinks linearly to 0 over the
  run (by iterations with an iteration limit, else by the clock); otherwise it is undone.  The
  best plan seen is returned.  The allowance lets the search leave the local optima of plain
  descent.

``progress`` (``SolveOptions.progress``) hears each new best plan, validated, at most every
``progress_seconds`` (default 5 s): ``auto`` logs it and keeps it in its gap history while the
search runs.

Every accepted move keeps the plan feasible by construction, the result is validated by
:meth:`Plan.checked`, and it is never worse than the start plan (the best plan seen is kept,
the start among them).  With an iteration limit (and no time limit reached) the result is
deterministic for a seed; the run's time budget (default 10 s) covers finding the start plan too,
and compiling the kernels of :mod:`.profile` (started in the background when the method is
called): when that outlasts the time limit, the start plan is returned (stop reason
``time_limit``, ``stats["kernels"]`` ``"not compiled in time"``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.deadline import Deadline
from ..model.instance import Instance, IntArray
from ..model.params import MethodParams
from ..model.plan import Plan
from ..model.result import SolveOptions, SolveResult, StopReason
from .improvement import improvement_result, improvement_start
from .profile import WARMUP, Profile

log = logging.getLogger(__name__)

NEIGHBOURHOODS = ("block", "subset", "round")
ORDERS = ("volume", "start", "random")


def _around(start: IntArray, output: IntArray, t: int, k: int) -> IntArray:
    """The requests running within 20 rounds of round ``t``, or, when none does, the ``k`` nearest.

    Threshold accepting can leave a stretch of idle rounds in a plan (a move that delays the
    requests of a sparse tail is accepted): the "round" neighbourhood must still free someone
    there, or the move would be empty.
    """
    running = np.flatnonzero((start <= t + 20) & (start + output > t - 20))
    if running.size:
        return running
    distance = np.maximum(start - t, t - (start + output - 1))  # rounds between t and the run
    take = min(k, start.size)
    return np.argpartition(distance, take - 1)[:take]


def compact(prof: Profile, deadline: float = math.inf, window: int | None = None) -> int:
    """Move every request to its earliest feasible start (never later), until none moves; the gain.

    ``window``: only starts at most that many rounds before the current one are searched (the
    periodic passes of a long search, where a full search from the arrival costs ``O(n * T)``).
    The requests go in start order, in compiled chunks of 256 with the deadline checked between.
    """
    n = prof.instance.n
    gain = 0
    moved = True
    while moved and time.perf_counter() < deadline:
        moved = False
        order = np.lexsort((np.arange(n), prof.start))
        for first in range(0, n, 256):
            g = prof.compact(order[first : first + 256], window)
            gain += g
            moved = moved or g > 0
            if time.perf_counter() >= deadline:
                break
    return gain


def insertion_order(instance: Instance) -> IntArray:
    """The order of the insertion construction: smallest volume first, ties by arrival, then index
    (``svf_priority`` breaks the last ties by the requests' ids instead)."""
    return np.lexsort((np.arange(instance.n), instance.arrival, instance.volume))


def insertion_starts(
    instance: Instance, order: IntArray, deadline: float = math.inf
) -> IntArray | None:
    """Serial schedule generation: each request in ``order`` starts at its earliest feasible round
    next to those placed before it (it may go before them: backfilling); ``None`` past ``deadline``
    (compiling the kernels included).
    """
    if not WARMUP.ready(Deadline(deadline)):
        return None
    prof = Profile(instance)
    order = np.asarray(order, dtype=np.int64)
    for first in range(0, order.size, 256):  # compiled chunks, the deadline checked between
        if time.perf_counter() >= deadline:
            return None
        prof.place_earliest(order[first : first + 256], 0)
    return prof.start


@dataclass(frozen=True)
class RepackParams(MethodParams):
    """``repack``'s parameters (``--param``): requests freed per move (``kmin``, ``kmax``), moves
    between compaction passes (``compact_every``; ``None``: ``max(500, n / 8)``) and the rounds a
    periodic pass searches back (``compact_window``), the insertion construction (``insertion``),
    rounds searched before the earliest freed start (``reach``), the acceptance allowance as a
    fraction of the mean latency (``threshold``; 0 = plain descent) and the fast methods to start
    from (``start``; ``None``: all of them)."""

    kmin: int = 4
    kmax: int = 150
    compact_every: int | None = None
    compact_window: int = 2000
    insertion: bool = True
    reach: int = 400
    threshold: float = 0.02
    start: tuple[str, ...] | None = None


def _start_profile(
    instance: Instance, start_plan: Plan, insertion: bool, deadline: float
) -> tuple[Profile, int | None]:
    """The search's first profile: the start plan's, or the insertion plan's when that is better;
    and the insertion plan's objective (``None`` when it was skipped or ran out of time)."""
    prof = Profile(instance, np.asarray(start_plan.start_round, dtype=np.int64))
    built = insertion_starts(instance, insertion_order(instance), deadline) if insertion else None
    if built is None:
        return prof, None
    insertion_objective = int((built + prof.output - prof.arrival).sum())
    if insertion_objective < prof.objective():
        prof = Profile(instance, built)
    return prof, insertion_objective


def _neighbourhood(
    rng: np.random.Generator, hood: int, order: IntArray, prof: Profile, k: int
) -> IntArray:
    """The ``k`` requests a move frees: a block of neighbours in start order (``hood`` 0), a random
    subset of a block of ``3k`` (1), or requests running around a random round (2)."""
    n = order.size
    if hood == 0:
        p = int(rng.integers(0, n - k + 1))
        sel = order[p : p + k]
    elif hood == 1:
        width = min(3 * k, n)
        p = int(rng.integers(0, n - width + 1))
        sel = rng.choice(order[p : p + width], size=k, replace=False)
    else:
        horizon = int((prof.start + prof.output).max())
        t = int(rng.integers(horizon))
        running = _around(prof.start, prof.output, t, k)
        sel = rng.choice(running, size=min(k, running.size), replace=False)
    return np.asarray(sel, dtype=np.int64)


def _reinsertion_order(
    rng: np.random.Generator, how: int, sel: IntArray, old: IntArray, volume: IntArray
) -> IntArray:
    """The order in which the freed requests go back: ascending volume with noise (``how`` 0), old
    start order with noise (1), or random (2)."""
    if how == 0:
        ins = sel[np.argsort(volume[sel] * rng.uniform(0.7, 1.3, sel.size), kind="stable")]
    elif how == 1:
        ins = sel[np.argsort(old + rng.integers(-30, 31, sel.size), kind="stable")]
    else:
        ins = rng.permutation(sel)
    return np.asarray(ins, dtype=np.int64)


def _stop_reason(
    iterations: int, iteration_limit: int | None, deadline: float, stop: Callable[[], bool] | None
) -> StopReason | None:
    """Why the search ends before its next move (``None``: it goes on)."""
    if iteration_limit is not None and iterations >= iteration_limit:
        return StopReason.ITERATION_LIMIT
    if time.perf_counter() >= deadline:
        return StopReason.TIME_LIMIT
    if stop is not None and stop():
        return StopReason.STOPPED
    return None


def repack(
    instance: Instance,
    start_plan: Plan,
    seed: int = 0,
    time_limit: float | None = 10.0,
    iteration_limit: int | None = None,
    kmin: int = 4,
    kmax: int = 150,
    compact_every: int | None = None,
    insertion: bool = True,
    reach: int | None = 400,
    threshold: float = 0.02,
    stop: Callable[[], bool] | None = None,
    compact_window: int | None = 2000,
    progress: Callable[[Plan], None] | None = None,
    progress_seconds: float = 5.0,
) -> tuple[Plan, dict[str, Any]]:
    """Improve ``start_plan`` by compaction and ruin-and-recreate moves (see the module docstring).

    A plan at the trivial bound (the sum of the outputs) is optimal: the search ends there.
    """
    if iteration_limit is None and time_limit is None:
        raise ValueError("repack: give a time limit or an iteration limit")
    if kmin < 1 or kmax < kmin:
        raise ValueError(f"repack: need 1 <= kmin <= kmax (got {kmin}, {kmax})")
    t0 = time.perf_counter()
    deadline = Deadline.after(time_limit).at
    rng = np.random.default_rng(seed)
    n = instance.n
    volume = instance.volume
    start_obj = start_plan.total_latency
    trajectory: list[tuple[float, int]] = [(0.0, start_obj)]
    floor = int(instance.output_len.sum())  # a plan at the trivial bound is optimal
    if start_obj <= floor:
        return start_plan, _stats(0, 0, 0, {}, 0, None, trajectory, start_obj, StopReason.COMPLETED, t0)  # fmt: skip
    if not WARMUP.ready(Deadline(deadline)):  # compiling the kernels outlasted the time limit
        stats = _stats(0, 0, 0, {}, 0, None, trajectory, start_obj, StopReason.TIME_LIMIT, t0)
        stats["kernels"] = "not compiled in time"
        return start_plan, stats

    def note(obj: int) -> None:
        trajectory.append((round(time.perf_counter() - t0, 4), obj))

    prof, insertion_objective = _start_profile(instance, start_plan, insertion, deadline)
    cur = prof.objective()
    if cur < start_obj:
        note(cur)
    gain = compact(prof, deadline)
    compact_gain = gain
    if gain:
        cur -= gain
        note(cur)
    best_obj = cur
    best_start = prof.start.copy()
    order = np.lexsort(
        (np.arange(n), prof.start)
    )  # start order (ties by index), for the block moves
    order_stale = False

    reported = time.perf_counter()  # when progress last heard of a best plan

    def keep_if_best() -> None:
        nonlocal best_obj, best_start, reported
        if cur < best_obj:
            best_obj, best_start = cur, prof.start.copy()
            note(cur)
            if progress is not None and time.perf_counter() - reported >= progress_seconds:
                progress(Plan.checked(instance, best_start))
                reported = time.perf_counter()

    def compaction_pass() -> None:
        nonlocal compact_gain, cur, order_stale
        g = compact(prof, deadline, compact_window)
        order_stale = order_stale or g > 0
        compact_gain += g
        cur -= g
        keep_if_best()

    # a windowed pass costs O(n * compact_window): at least n / 8 moves between passes keeps its
    # share of the time small on whole traces
    every = compact_every if compact_every is not None else max(500, n // 8)
    allowance = threshold * cur / max(n, 1)  # a fraction of the mean latency
    iterations = accepted = improving = 0
    gains = {f"{a}/{b}": 0 for a in NEIGHBOURHOODS for b in ORDERS}
    why = StopReason.COMPLETED
    since_compact = 0
    while n >= 2 and best_obj > floor:
        reason = _stop_reason(iterations, iteration_limit, deadline, stop)
        if reason is not None:
            why = reason
            break
        iterations += 1
        k = min(int(math.exp(rng.uniform(math.log(kmin), math.log(kmax + 1)))), n)
        hood = int(rng.integers(len(NEIGHBOURHOODS)))
        if hood < 2 and order_stale:
            # starts changed since the last sort: re-sorting the old order (nearly sorted) is O(n)
            # in practice, cheaper than a fresh sort on large backlogs
            order = order[np.argsort(prof.start[order], kind="stable")]
            order_stale = False
        sel = _neighbourhood(rng, hood, order, prof, k)
        how = int(rng.integers(len(ORDERS)))
        old = prof.start[sel].copy()
        ins = _reinsertion_order(rng, how, sel, old, volume)
        prof.remove_all(sel)
        prof.place_earliest(ins, 0 if reach is None else max(0, int(old.min()) - reach))
        delta = int(prof.start[sel].sum() - old.sum())
        if delta > 0 and allowance > 0:  # threshold accepting: the allowance shrinks linearly to 0
            # by iterations when there is an iteration limit (reproducible), else by the clock
            done = (
                iterations / iteration_limit
                if iteration_limit
                else (time.perf_counter() - t0) / (time_limit or 1.0)
            )
            allow = allowance * max(0.0, 1.0 - done)
        else:
            allow = 0.0
        if delta <= allow:
            accepted += 1
            order_stale = True
            cur += delta
            if delta < 0:
                improving += 1
                gains[f"{NEIGHBOURHOODS[hood]}/{ORDERS[how]}"] -= delta
            keep_if_best()
        else:  # undo: put the re-inserted requests back where they were
            prof.set_starts(sel, old)
        since_compact += 1
        if since_compact >= every:
            since_compact = 0
            compaction_pass()
    if n >= 2 and time.perf_counter() < deadline:
        compaction_pass()
    # best_obj <= start_obj: it starts at the start plan's objective (or the better insertion plan)
    plan = Plan.checked(instance, best_start)
    stats = _stats(
        iterations,
        accepted,
        improving,
        gains,
        compact_gain,
        insertion_objective,
        trajectory,
        start_obj,
        why,
        t0,
    )
    return plan, stats


def _stats(
    iterations: int,
    accepted: int,
    improving: int,
    gains: dict[str, int],
    compact_gain: int,
    insertion_objective: int | None,
    trajectory: list[tuple[float, int]],
    start_objective: int,
    why: StopReason,
    t0: float,
) -> dict[str, Any]:
    """``repack``'s stats (``gains``: per neighbourhood and order, 0 where missing)."""
    return {
        "iterations": iterations,
        "accepted_moves": accepted,
        "improving_moves": improving,
        "gain_by_move": {
            f"{a}/{b}": gains.get(f"{a}/{b}", 0) for a in NEIGHBOURHOODS for b in ORDERS
        },
        "compaction_gain": compact_gain,
        "insertion_objective": insertion_objective,
        "trajectory": trajectory,
        "start_objective": start_objective,
        "stop": why.value,
        "moves_per_second": iterations / max(time.perf_counter() - t0, 1e-9),
    }


def solve_repack(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``repack``: compaction and ruin-and-recreate from the best fast plan or ``options.warm_start``.

    Parameters: :class:`RepackParams`.  The run's time budget (default 10 s without a time or an
    iteration limit) covers finding the start plan.
    """
    options = options or SolveOptions()
    p = RepackParams.of(options)
    WARMUP.start()  # compiles while the start plan is found
    start_name, start_plan, time_limit, build_seconds = improvement_start(instance, options, p)
    t1 = time.perf_counter()
    plan, stats = repack(
        instance,
        start_plan,
        seed=options.seed,
        time_limit=time_limit,
        iteration_limit=options.iteration_limit,
        kmin=p.kmin,
        kmax=p.kmax,
        compact_every=p.compact_every,
        compact_window=p.compact_window,
        insertion=p.insertion,
        reach=p.reach,
        threshold=p.threshold,
        stop=options.stop,
        progress=options.progress,
    )
    log.info(
        "repack: %d -> %d in %d moves",
        start_plan.total_latency,
        plan.total_latency,
        stats["iterations"],
    )
    return improvement_result("repack", instance, plan, stats, start_name, build_seconds, t1)
