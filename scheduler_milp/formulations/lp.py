"""``lp``: the LP relaxation of the time-indexed model, solved by HiGHS through ``highspy`` directly.

:func:`lp_relaxation` is the library entry point used by the LP-guided heuristics (``sorted-lp``,
``lp-swap``); its signature is kept stable:

    lp_relaxation(instance, upper_bound=None, time_limit=None, max_nonzeros=MAX_NONZEROS)
        -> (bound_value: float, mean_start: np.ndarray)

``bound_value`` is the LP optimum (a valid lower bound on the total latency; round it with
``math.ceil(x - 1e-6)``), ``mean_start[i] = sum_t t x_it`` the fractional mean start of request
``i``.  The columns and rows are the same arrays as ``milp`` and ``cpsat`` use
(:mod:`.timeindexed`), with the completion-count rows added (valid for integer plans, so the
relaxation stays a relaxation).  A model beyond ``max_nonzeros`` raises
:class:`~scheduler_milp.model.result.ModelTooLarge` (a ``ValueError``).  With a deadline, building
checks it between its steps and HiGHS gets the time left once the rows are in; a model not built
in time is not solved (no LP bound).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..baselines.best import best_fast_plan
from ..model.deadline import Deadline
from ..model.instance import Instance, IntArray
from ..model.params import MethodParams
from ..model.result import TRIVIAL_BOUND_SOURCE, SolveOptions, SolveResult, StopReason, round_bound
from .timeindexed import MAX_NONZEROS, OutOfTime, SparseRows, TimeIndexed, build, check_time

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LpParams(MethodParams):
    """``lp``'s parameters: the size limit, whether the completion-count rows are added, and
    ``iteration_limit`` (HiGHS's ``simplex_iteration_limit``, a work limit: with it the answer
    does not depend on the machine's speed; ``None``: none)."""

    max_nonzeros: int = MAX_NONZEROS
    count_cuts: bool = True
    iteration_limit: int | None = None


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 (C-level prints) for the duration of the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class LPResult:
    """What one LP solve gives: bound, column values, status and time (internal)."""

    def __init__(
        self,
        bound: float | None,
        values: np.ndarray | None,
        optimal: bool,
        timed_out: bool,
        seconds: float,
        iteration_limited: bool = False,
    ):
        self.bound = bound
        self.values = values
        self.optimal = optimal
        self.timed_out = timed_out
        self.seconds = seconds
        self.iteration_limited = iteration_limited


def add_rows(h: Any, rows: SparseRows) -> None:
    """Add ``rows`` (``row . x <= rhs``) to the HiGHS model ``h`` (nothing when it has none)."""
    if not rows.n_rows:
        return
    upper = (
        rows.rhs_per_row.astype(float)
        if rows.rhs_per_row is not None
        else np.full(rows.n_rows, float(rows.rhs))
    )
    h.addRows(
        rows.n_rows,
        np.full(rows.n_rows, -highspy_inf()),
        upper,
        rows.nnz,
        rows.indptr[:-1].astype(np.int32),
        rows.indices.astype(np.int32),
        rows.data.astype(float),
    )


def starts_model(model: TimeIndexed, threads: int = 1) -> Any:
    """A quiet HiGHS model holding the start columns ``x_it`` in ``[0, 1]`` with their costs and the
    one-start rows ``sum_t x_it = 1`` (the part every LP over the time-indexed columns shares)."""
    import highspy

    with _quiet_stdout():
        # HiGHS prints its banner from C++ when the object is made, before output_flag applies
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    # HiGHS keeps one global thread pool per process; a different ``threads`` value than the
    # pool's makes run() fail, so the pool is reset first (cheap, nothing else is running).
    highspy.Highs.resetGlobalScheduler(True)
    h.setOptionValue("threads", int(threads))
    n_cols = model.n_cols
    h.addCols(
        n_cols,
        model.col_cost.astype(float),
        np.zeros(n_cols),
        np.ones(n_cols),
        0,
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.int32),
        np.zeros(0),
    )
    n = model.instance.n
    h.addRows(
        n,
        np.ones(n),
        np.ones(n),
        n_cols,
        model.col_offset[:-1].astype(np.int32),
        np.arange(n_cols, dtype=np.int32),
        np.ones(n_cols),
    )
    return h


def highspy_inf() -> float:
    """HiGHS's infinity."""
    import highspy

    return float(highspy.kHighsInf)


def _highs_model(
    model: TimeIndexed,
    time_limit: float | None,
    threads: int,
    count_cuts: bool,
    deadline: Deadline | None = None,
) -> Any:
    """A ``highspy.Highs`` holding the LP relaxation of ``model`` (all columns continuous in [0, 1]).

    With a ``deadline``, :class:`~.timeindexed.OutOfTime` when it passes between two blocks of
    rows, and HiGHS's time limit is what is left of it once the rows are in (``time_limit`` is
    then ignored).
    """
    h = starts_model(model, threads)
    if time_limit is not None and deadline is None:
        h.setOptionValue("time_limit", max(float(time_limit), 0.01))
    blocks: list[SparseRows] = [model.memory_rows]
    if model.batch_rows is not None:
        blocks.append(model.batch_rows)
    if count_cuts:
        check_time(deadline)
        blocks.append(model.completion_count_rows())
    for rows in blocks:
        check_time(deadline)
        add_rows(h, rows)
    if deadline is not None and deadline.limited:
        check_time(deadline)
        h.setOptionValue("time_limit", max(deadline.remaining(), 0.01))
    return h


def solve_lp_model(
    model: TimeIndexed,
    time_limit: float | None = None,
    threads: int = 1,
    count_cuts: bool = True,
    deadline: Deadline | None = None,
    iteration_limit: int | None = None,
) -> LPResult:
    """Solve the LP relaxation of a built time-indexed structure with HiGHS (dual simplex).

    ``deadline`` (instead of ``time_limit``) also covers handing the rows to HiGHS; one that passes
    first gives an unsolved result.  ``iteration_limit`` caps HiGHS's simplex iterations (a work
    limit: the answer does not depend on the machine's speed).
    """
    import highspy

    t0 = time.perf_counter()
    try:
        h = _highs_model(model, time_limit, threads, count_cuts, deadline)
    except OutOfTime:
        return LPResult(None, None, False, True, time.perf_counter() - t0)
    if iteration_limit is not None:
        h.setOptionValue("simplex_iteration_limit", int(iteration_limit))
    t0 = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - t0
    status = h.getModelStatus()
    optimal = status == highspy.HighsModelStatus.kOptimal
    timed_out = status == highspy.HighsModelStatus.kTimeLimit
    if not optimal:
        # only a proven LP optimum is a bound (a dual-simplex iterate is not, without more care)
        limited = status == highspy.HighsModelStatus.kIterationLimit
        return LPResult(None, None, False, timed_out, seconds, limited)
    values = np.asarray(h.getSolution().col_value, dtype=float)
    return LPResult(float(h.getInfo().objective_function_value), values, True, False, seconds)


def partial_integer_bound(
    model: TimeIndexed,
    integer_requests: IntArray,
    time_limit: float | None = None,
    threads: int = 1,
) -> tuple[float, bool]:
    """Lower bound from the time-indexed model with only ``integer_requests`` integral, the rest fractional.

    Every plan is feasible for this mixed relaxation, so HiGHS's proven dual bound (at the time
    limit, or the optimum) is a lower bound on the total latency, between the LP and the optimum.
    Returns ``(bound, proven_optimal)``; a diagnostic of where the LP's integrality gap sits
    (``benchmarks/bench_gap_anatomy.py``), not a method: beyond small models it is a MILP.
    """
    import highspy

    cols = np.flatnonzero(
        np.isin(model.col_request, np.asarray(integer_requests, dtype=np.int64))
    ).astype(np.int32)
    if not cols.size:  # the LP itself, where only a proven optimum is a bound
        res = solve_lp_model(model, time_limit=time_limit, threads=threads)
        if res.bound is None:
            raise TimeoutError("partial_integer_bound: LP not solved within the time limit")
        return res.bound, True
    h = _highs_model(model, time_limit, threads, count_cuts=True)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.changeColsIntegrality(int(cols.size), cols, np.full(cols.size, highspy.HighsVarType.kInteger))
    h.run()
    optimal = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(h.getInfo().mip_dual_bound), optimal


def lp_relaxation(
    instance: Instance,
    upper_bound: int | None = None,
    time_limit: float | None = None,
    max_nonzeros: int = MAX_NONZEROS,
    deadline: Deadline | None = None,
) -> tuple[float, np.ndarray]:
    """LP relaxation bound of the time-indexed model and each request's fractional mean start.

    ``upper_bound``: total latency of any feasible plan (defines the windows, docs/exact.md);
    ``None`` uses the best fast plan.  Raises :class:`~scheduler_milp.model.result.ModelTooLarge`
    when the model would exceed ``max_nonzeros`` nonzeros and ``TimeoutError`` when HiGHS does not
    finish within ``time_limit`` seconds, or, given a ``deadline`` (which then replaces
    ``time_limit`` and covers building too), when building and solving do not end by it.
    """
    if upper_bound is None:
        upper_bound = best_fast_plan(instance, deadline=deadline)[1].total_latency
    why = f"not solved within {time_limit} s" if deadline is None else "not solved in time"
    try:
        model = build(instance, int(upper_bound), max_nonzeros=max_nonzeros, deadline=deadline)
    except OutOfTime:
        raise TimeoutError(f"LP relaxation of {instance.name} {why}") from None
    res = solve_lp_model(model, time_limit=time_limit, deadline=deadline)
    if res.bound is None or res.values is None:
        raise TimeoutError(f"LP relaxation of {instance.name} {why}")
    return res.bound, model.mean_start(res.values)


def solve_lp(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``lp``: the LP relaxation bound; the plan decodes the LP's mean-start order (shared decoder).

    The plan is the better of that decoded order and the best fast plan (both valid), so ``lp``
    never reports a worse plan than the fast methods it started from.  Parameters:
    :class:`LpParams`.  The time limit covers the fast plans, building and solving; when it
    passes first, the best fast plan is the answer with the trivial bound (stop reason
    ``time_limit``).
    """
    from ..baselines.engine import priority_from_keys
    from ..baselines.serving import decode_priority

    options = options or SolveOptions()
    params = LpParams.of(options)
    t0 = time.perf_counter()
    deadline = options.budget()
    ub_source, ub_plan = best_fast_plan(instance, deadline=deadline)
    try:
        model: TimeIndexed | None = build(
            instance, ub_plan.total_latency, max_nonzeros=params.max_nonzeros, deadline=deadline
        )
    except OutOfTime:  # no LP: the best fast plan with the trivial bound
        model = None
    build_seconds = time.perf_counter() - t0
    res = (
        LPResult(None, None, False, True, 0.0)
        if model is None
        else solve_lp_model(
            model,
            threads=options.threads,
            count_cuts=params.count_cuts,
            deadline=deadline,
            iteration_limit=params.iteration_limit,
        )
    )
    plan = ub_plan
    plan_source = ub_source
    if res.values is not None and model is not None:
        mean = model.mean_start(res.values)
        # order by fractional mean start; ties by the request's earliest window, then index
        order = priority_from_keys(instance, np.round(mean * 1e6).astype(np.int64))
        decoded = decode_priority(instance, order, blocking=False)
        if decoded.total_latency < plan.total_latency:
            plan, plan_source = decoded, "lp_order"
    solve_seconds = time.perf_counter() - t0 - build_seconds
    return SolveResult(
        "lp",
        instance,
        plan,
        lower_bound=round_bound(res.bound),
        stop_reason=(
            StopReason.TIME_LIMIT
            if res.timed_out
            else StopReason.ITERATION_LIMIT
            if res.iteration_limited
            else StopReason.COMPLETED
        ),
        build_seconds=build_seconds,
        solve_seconds=solve_seconds,
        stats={
            "lp_value": res.bound,
            "plan_source": plan_source,
            "upper_bound": ub_plan.total_latency,
            "columns": None if model is None else model.n_cols,
            "nonzeros": None if model is None else model.nnz,
            "bound_source": "lp_relaxation" if res.bound is not None else TRIVIAL_BOUND_SOURCE,
        },
    )
