"""Large-neighbourhood search (``lns``): free a few requests, re-place them exactly, keep improvements.

Each iteration picks a *neighbourhood*: ``k`` requests that are neighbours in the plan's start
order (a consecutive block of :meth:`Plan.order`), whose starts all lie within ``max_span`` rounds.
Every other request stays where it is; the freed ones get the start domain
``[max(a_i, t_first - slack_before), t_last + slack_after]`` and are re-placed optimally against the
fixed background by the CP-SAT window model (:mod:`scheduler_milp.formulations.window`), with the
current plan as a complete hint, so a window never makes the plan worse.

Where the block starts is chosen by three strategies used in turn:

* ``sliding``: sweep the start order from the beginning, half a block at a time;
* ``random``: a uniformly random position (seeded ``numpy`` generator);
* ``waste``: a round drawn with probability proportional to its unused memory ``M - usage``, and
  the block of requests starting around it (idle memory is where a better packing can gain).

The block size adapts: a window that CP-SAT proves optimal grows ``k`` by one (up to ``max_k``),
a window that hits its work limit shrinks it by a quarter (down to ``min_k``).

Determinism: windows run CP-SAT with one worker and a *deterministic* work limit
(``window_dtime``), so given the seed and an iteration budget the trajectory is reproducible.  The
wall-clock time limit is a safety net only: when it cuts a window short, the run is not
reproducible (it still returns a valid plan that is never worse than the start).  The time limit
covers finding the start plan (no fast method is started that would not end in time, the first
excepted) and importing CP-SAT (started in the background when the method is called): no window
starts before that import is done, and none once the time is up.

When the whole instance fits in one window (``n <= max_k`` and ``n <= whole_max_n``) the first
iteration frees every request with the valid horizon of docs/model.md
(``S_i <= UB - sum_j o_j + a_i``); if CP-SAT proves that window optimal, the plan is optimal and its
objective is returned as the lower bound (``stats["bound_source"]``:
:data:`WHOLE_WINDOW_BOUND_SOURCE`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..baselines.best import best_fast_plan
from ..model.deadline import Deadline
from ..model.instance import Instance
from ..model.params import MethodParams
from ..model.plan import Plan, memory_per_round
from ..model.result import SolveOptions, SolveResult, StopReason
from .warmup import CP_SAT

log = logging.getLogger(__name__)

#: ``stats["bound_source"]`` of a result whose plan one whole-instance window proved optimal
WHOLE_WINDOW_BOUND_SOURCE = "lns-whole-window"


@dataclass(frozen=True)
class LnsParams(MethodParams):
    """``lns``'s parameters (``--param key=value``)."""

    k: int = 12  # initial block size
    min_k: int = 4
    max_k: int = 40
    max_span: int = 80  # rounds between the first and last start of a block
    slack_before: int = 5
    slack_after: int = 20
    window_dtime: float = 2.0  # CP-SAT deterministic work units per window
    window_time: float = 10.0  # wall-clock cap per window (safety net)
    max_stall: int | None = None  # non-improving windows in a row before stopping (None: from n, k)
    strategies: tuple[str, ...] = ("sliding", "random", "waste")
    whole_max_n: int = 20  # solve the whole instance as one window up to this many requests


@dataclass
class LNSOutcome:
    """What :func:`improve` returns: the final plan and how it got there."""

    plan: Plan
    start_objective: int
    iterations: int
    improvements: int
    windows_optimal: int
    lower_bound: (
        int | None
    )  # only when one window covered the whole instance and was proven optimal
    stop_reason: StopReason
    trajectory: list[tuple[float, int, int]] = field(
        default_factory=list
    )  # (seconds, iteration, objective)
    stats: dict[str, Any] = field(default_factory=dict)


def _stop_reason(
    it: int,
    iteration_limit: int | None,
    left: float,
    stall: int,
    max_stall: int,
    stop_when: Callable[[], bool] | None,
) -> StopReason | None:
    """Why the search stops before the next window (``None``: it goes on)."""
    if iteration_limit is not None and it >= iteration_limit:
        return StopReason.ITERATION_LIMIT
    if left <= 0.05:
        return StopReason.TIME_LIMIT
    if stall >= max_stall:
        return StopReason.COMPLETED
    if stop_when is not None and stop_when():
        return StopReason.STOPPED
    return None


def _block_position(
    strategy: str,
    instance: Instance,
    starts: np.ndarray,
    order: np.ndarray,
    kk: int,
    rng: np.random.Generator,
    sweep_pos: int,
) -> tuple[int, int]:
    """``(position in the start order, next sweep position)`` of the block a strategy picks."""
    n = instance.n
    if strategy == "sliding":
        pos = sweep_pos
        sweep_pos = 0 if sweep_pos + kk >= n else sweep_pos + max(1, kk // 2)
    elif strategy == "random":
        pos = int(rng.integers(0, max(1, n - kk + 1)))
    else:  # waste
        usage = memory_per_round(instance, starts)
        waste = (instance.memory_budget - usage).astype(np.float64)
        total = waste.sum()
        if total <= 0:
            pos = int(rng.integers(0, max(1, n - kk + 1)))
        else:
            t = int(rng.choice(len(waste), p=waste / total))
            first = int(np.searchsorted(starts[order], t, side="left"))
            pos = max(0, min(n - kk, first - kk // 2))
    return max(0, min(pos, n - kk)), sweep_pos


def _block_domains(
    instance: Instance, starts: np.ndarray, block: np.ndarray, prm: LnsParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The block cut to ``max_span`` rounds and its start domains ``(block, lo, hi)``."""
    t_first = int(starts[block].min())
    block = block[starts[block] <= t_first + prm.max_span]
    t_last = int(starts[block].max())
    lo = np.maximum(instance.arrival[block], t_first - prm.slack_before)
    lo = np.minimum(lo, starts[block])
    hi = np.full(len(block), t_last + prm.slack_after, dtype=np.int64)
    return block, lo, hi


def improve(
    instance: Instance,
    plan: Plan,
    deadline: float = math.inf,
    seed: int = 0,
    iteration_limit: int | None = None,
    params: LnsParams | Mapping[str, Any] | None = None,
    stop_when: Callable[[], bool] | None = None,
) -> LNSOutcome:
    """Run the large-neighbourhood search from ``plan``; the result is never worse than ``plan``.

    ``params``: :class:`LnsParams` (or a mapping of its keys).  Stops after ``iteration_limit``
    windows, at ``deadline`` (a ``time.perf_counter()`` reading), after ``max_stall`` consecutive
    windows without improvement, or when ``stop_when()`` returns True (polled between windows).
    """
    from ..formulations.window import solve_window

    t_begin = time.perf_counter()
    prm = LnsParams.parse(params)
    inst = instance
    n = inst.n
    rng = np.random.default_rng(seed)
    starts = np.asarray(plan.start_round, dtype=np.int64).copy()
    objective = int(plan.total_latency)
    start_obj = objective
    k = int(min(max(prm.k, prm.min_k), n))
    strategies = [s.strip() for s in prm.strategies if s.strip()]
    max_stall = max(20, 3 * math.ceil(n / max(1, k))) if prm.max_stall is None else prm.max_stall
    trajectory: list[tuple[float, int, int]] = [(0.0, 0, objective)]
    it = 0
    improvements = 0
    windows_optimal = 0
    stall = 0
    sweep_pos = 0
    dtime_total = 0.0

    cp_sat = CP_SAT.ready(Deadline(deadline))  # False: the import outlasted the time limit
    # ---- the whole instance in one window (tiny instances): an exact solve with the valid horizon
    if cp_sat and n <= prm.max_k and n <= prm.whole_max_n:
        free = np.arange(n)
        latest = objective - int(inst.output_len.sum()) + inst.arrival
        left = deadline - time.perf_counter()
        res = solve_window(
            inst,
            starts,
            free,
            inst.arrival.copy(),
            np.maximum(latest, starts),
            time_limit=None if math.isinf(left) else max(0.01, left),
            deterministic_time=prm.window_dtime * 5,
            seed=seed,
        )
        it = 1
        dtime_total += float(res.stats.get("deterministic_time", 0.0))
        if res.improved:
            starts[free] = res.start_round
            objective = res.objective
            improvements += 1
            trajectory.append((time.perf_counter() - t_begin, it, objective))
        if res.optimal:
            log.info("lns: whole instance solved exactly, objective %d", objective)
            out = Plan.checked(inst, starts)
            return LNSOutcome(
                out,
                start_obj,
                it,
                improvements,
                windows_optimal + 1,
                objective,
                StopReason.COMPLETED,
                trajectory,
                {"deterministic_time": dtime_total, "final_k": k},
            )

    stop = StopReason.COMPLETED if cp_sat else StopReason.TIME_LIMIT
    while cp_sat:
        left = deadline - time.perf_counter()
        reason = _stop_reason(it, iteration_limit, left, stall, max_stall, stop_when)
        if reason is not None:
            stop = reason
            break
        strategy = strategies[it % len(strategies)]
        order = np.lexsort((np.arange(n), starts))
        kk = min(k, n)
        pos, sweep_pos = _block_position(strategy, inst, starts, order, kk, rng, sweep_pos)
        block, lo, hi = _block_domains(inst, starts, order[pos : pos + kk], prm)
        res = solve_window(
            inst,
            starts,
            block,
            lo,
            hi,
            time_limit=min(prm.window_time, left),
            deterministic_time=prm.window_dtime,
            seed=seed + it,
        )
        it += 1
        dtime_total += float(res.stats.get("deterministic_time", 0.0))
        if res.optimal:
            windows_optimal += 1
            k = min(prm.max_k, k + 1)
        elif res.status != "OPTIMAL":
            k = max(prm.min_k, (3 * k) // 4)
        if res.improved:
            starts[block] = res.start_round
            objective -= res.hint_objective - res.objective
            improvements += 1
            stall = 0
            elapsed = time.perf_counter() - t_begin
            trajectory.append((elapsed, it, objective))
            log.info(
                "lns: %.1fs iteration %d (%s, k=%d) objective %d",
                elapsed,
                it,
                strategy,
                len(block),
                objective,
            )
        else:
            stall += 1
        log.debug(
            "lns: window %d %s k=%d status %s nnz %s",
            it,
            strategy,
            len(block),
            res.status,
            res.stats.get("nonzeros"),
        )
    out = Plan.checked(inst, starts)
    assert out.total_latency == objective, "window bookkeeping drifted from the plan"
    return LNSOutcome(
        out,
        start_obj,
        it,
        improvements,
        windows_optimal,
        None,
        stop,
        trajectory,
        {"deterministic_time": round(dtime_total, 3), "final_k": k},
    )


def solve_lns(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``lns``: large-neighbourhood search from the best fast plan (or ``options.warm_start``).

    Parameters: :class:`LnsParams`.  The time limit covers finding the start plan too; without
    one, the search stops after ``max_stall`` non-improving windows or ``iteration_limit`` windows.
    """
    options = options or SolveOptions()
    params = LnsParams.of(options)
    deadline = options.budget()
    CP_SAT.start()  # imports while the start plan is found
    t0 = time.perf_counter()
    if options.warm_start is not None:
        plan, source = options.warm_start, "warm_start"
    else:
        source, plan = best_fast_plan(instance, deadline=deadline)
    build = time.perf_counter() - t0
    out = improve(
        instance,
        plan,
        deadline=deadline.at,
        seed=options.seed,
        iteration_limit=options.iteration_limit,
        params=params,
        stop_when=options.stop,
    )
    stats: dict[str, Any] = {
        "start_method": source,
        "start_objective": out.start_objective,
        "iterations": out.iterations,
        "improvements": out.improvements,
        "windows_optimal": out.windows_optimal,
        "trajectory": out.trajectory,
        **out.stats,
    }
    result = SolveResult(
        "lns",
        instance,
        out.plan,
        lower_bound=out.lower_bound,
        stop_reason=out.stop_reason,
        build_seconds=build,
        solve_seconds=time.perf_counter() - t0 - build,
        stats=stats,
    )
    if out.lower_bound is not None:
        result.stats["bound_source"] = WHOLE_WINDOW_BOUND_SOURCE
    return result
