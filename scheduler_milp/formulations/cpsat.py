"""``cpsat``: the time-indexed model in OR-Tools CP-SAT.

Same columns and rows as ``milp`` (:mod:`.timeindexed`): one Boolean per (request, start) inside the
per-request window, exactly one per request, one linear memory row per round that can bind, batch
rows for ``max_batch``.  On top of it (each switchable through :class:`CpsatParams` for the
benchmark's ablation table, docs/exact.md):

* ``symmetry`` (default True): ``S_i <= S_j`` for consecutive requests with identical
  ``(s, o, a)`` (docs/model.md: they are interchangeable);
* ``count_cuts`` (default True): the completion-count rows, ``#{i : C_i <= T} <= K(T)``;
* ``energy_bound`` (default True): the objective is at least the volume (energy) bound;
* ``left_shift`` (default False): left-shift dominance rows (docs/exact.md);
* ``cumulative`` (default 0, off): a redundant cumulative constraint over a staircase *under* each
  request's memory profile, cut into that many pieces (piece ``p`` covers rounds ``k_p..k_{p+1}-1``
  of the request with demand ``mem_i(k_p)``, which never exceeds its true memory there); CP-SAT's
  interval reasoning (time-tabling, energy) propagates the memory limit beyond the Boolean rows;
* a complete hint: the best fast plan (or ``options.warm_start``).

Building the model through Python costs memory in proportion to its nonzeros; a model whose
estimate exceeds half the machine's memory is declined before it is built
(:data:`BYTES_PER_NONZERO`).  Building also takes time in proportion to them: it checks the
deadline between rows and, past it, answers with the warm start (:class:`~.prepare.Unsolved`).
CP-SAT itself spends time loading and presolving a model that no time limit interrupts (about
half of what building it through Python took, :data:`LOAD_SHARE`): it is not started when less
time than that is left, and otherwise gets the time left less that much.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.deadline import Deadline
from ..model.instance import Instance
from ..model.result import SolveOptions, SolveResult
from .prepare import ExactParams, Prepared, Unsolved, finish, prepare, unsolved_result
from .timeindexed import (
    OutOfTime,
    TimeIndexed,
    check_time,
    energy_lower_bound,
    left_shift_terms,
    term_chunks,
)

log = logging.getLogger(__name__)

#: Peak memory of building and solving the CP-SAT model per estimated nonzero
#: (:func:`.timeindexed.estimate_nonzeros`), measured roughly on the trace classes; the model is
#: declined when the estimate exceeds :func:`.timeindexed.memory_cap`.
BYTES_PER_NONZERO = 400

#: CP-SAT's own loading and presolve start, which its time limit does not interrupt, as a share of
#: the time building the model through Python took (both grow with the nonzeros and slow down
#: alike on a loaded machine; measured 0.3-0.5 on models of 0.2-3.3 million terms)
LOAD_SHARE = 0.5


@dataclass(frozen=True)
class CpsatParams(ExactParams):
    """``cpsat``'s parameters: the shared exact-model keys, the model switches, ``fix_to_hint``
    (a test aid: fix every variable to its hinted value) and ``deterministic_time`` (CP-SAT's
    ``max_deterministic_time``, a work limit: with one thread, ``--threads 1``, the same seed
    and work limit give the same answer on any machine and load)."""

    symmetry: bool = True
    cumulative: int = 0
    count_cuts: bool = True
    energy_bound: bool = True
    left_shift: bool = False
    fix_to_hint: bool = False
    deterministic_time: float | None = None


def piece_starts(output_len: int, pieces: int) -> list[int]:
    """Round indices ``k`` (1-based) where the staircase pieces of a request of this length begin."""
    pieces = max(1, min(pieces, output_len))
    return sorted({1 + (output_len * p) // pieces for p in range(pieces)})


def build_cpsat(
    model: TimeIndexed,
    symmetry: bool = True,
    cumulative: int = 0,
    count_cuts: bool = True,
    energy_bound: bool = True,
    left_shift: bool = False,
    hint_x: np.ndarray | None = None,
    deadline: Deadline | None = None,
) -> tuple[Any, list[Any], list[Any]]:
    """The CP-SAT model; returns ``(cp_model, column Booleans, start variables)``.

    Raises :class:`~.timeindexed.OutOfTime` when ``deadline`` passes while it is built.
    """
    from ortools.sat.python import cp_model

    inst = model.instance
    n = inst.n
    cp = cp_model.CpModel()
    xs = [cp.new_bool_var(f"x{j}") for j in range(model.n_cols)]
    off = model.col_offset.tolist()
    starts_of_col = model.col_start.tolist()
    start_vars = []
    for i in range(n):
        cols = xs[off[i] : off[i + 1]]
        cp.add_exactly_one(cols)
        s_i = cp.new_int_var(int(inst.arrival[i]), int(model.latest[i]), f"S{i}")
        cp.add(s_i == cp_model.LinearExpr.weighted_sum(cols, starts_of_col[off[i] : off[i + 1]]))
        start_vars.append(s_i)
    for rows in (model.memory_rows, model.batch_rows):
        if rows is None:
            continue
        data, indices, indptr = rows.data.tolist(), rows.indices.tolist(), rows.indptr.tolist()
        for first, last in term_chunks(np.diff(rows.indptr).tolist()):
            check_time(deadline)
            for r in range(first, last):
                lo, hi = indptr[r], indptr[r + 1]
                cp.add(
                    cp_model.LinearExpr.weighted_sum([xs[c] for c in indices[lo:hi]], data[lo:hi])
                    <= rows.rhs
                )
    check_time(deadline)
    objective = cp_model.LinearExpr.weighted_sum(xs, model.col_cost.tolist())
    cp.minimize(objective)
    if energy_bound:
        cp.add(objective >= energy_lower_bound(inst))
    if count_cuts:
        rows = model.completion_count_rows()
        data, indices, indptr = rows.data.tolist(), rows.indices.tolist(), rows.indptr.tolist()
        for first, last in term_chunks(np.diff(rows.indptr).tolist()):
            check_time(deadline)
            for r in range(first, last):
                lo, hi = indptr[r], indptr[r + 1]
                cp.add(cp_model.LinearExpr.sum([xs[c] for c in indices[lo:hi]]) <= rows.rhs_of(r))
    if symmetry:
        for group in model.identical_groups():
            for i, j in zip(group[:-1], group[1:], strict=True):
                cp.add(start_vars[int(i)] <= start_vars[int(j)])
    check_time(deadline)
    if left_shift:
        _add_left_shift(cp, model, xs, hint_x)
        check_time(deadline)
    if cumulative > 0:
        intervals, demands = [], []
        whole = []
        for i in range(n):
            o_i = int(inst.output_len[i])
            ks = piece_starts(o_i, cumulative) + [o_i + 1]
            for k0, k1 in zip(ks[:-1], ks[1:], strict=True):
                intervals.append(
                    cp.new_fixed_size_interval_var(start_vars[i] + (k0 - 1), k1 - k0, f"I{i}_{k0}")
                )
                demands.append(int(inst.mem(i, k0)))
            whole.append(cp.new_fixed_size_interval_var(start_vars[i], o_i, f"W{i}"))
        cp.add_cumulative(intervals, demands, inst.memory_budget)
        if inst.max_batch is not None:
            cp.add_cumulative(whole, [1] * n, inst.max_batch)
    return cp, xs, start_vars


def _add_left_shift(
    cp: Any, model: TimeIndexed, xs: list[Any], hint_x: np.ndarray | None = None
) -> None:
    """Left-shift dominance (:func:`.timeindexed.left_shift_terms`): a request that could start one
    round earlier is not in any optimal plan, so a start ``t > a_i`` needs round ``t - 1`` blocked
    (memory or batch) or another request ending inside ``[t, t + o_i - 2]``."""
    from ortools.sat.python import cp_model

    cap = model.instance.max_batch
    for c, threshold, load_cols, load_coefs, end_cols in left_shift_terms(model):
        reasons = [xs[int(e)] for e in end_cols]
        if int(load_coefs.sum()) >= threshold:
            blocked = cp.new_bool_var(f"mem_blocked{c}")
            cp.add(
                cp_model.LinearExpr.weighted_sum(
                    [xs[int(k)] for k in load_cols], load_coefs.tolist()
                )
                >= threshold
            ).only_enforce_if(blocked)
            reasons.append(blocked)
            if hint_x is not None:
                # keep the hint complete: the auxiliary literal's value under the hinted plan
                cp.add_hint(blocked, bool(int((load_coefs * hint_x[load_cols]).sum()) >= threshold))
        if cap is not None and len(load_cols) >= cap:
            full = cp.new_bool_var(f"batch_full{c}")
            cp.add(cp_model.LinearExpr.sum([xs[int(k)] for k in load_cols]) >= cap).only_enforce_if(
                full
            )
            reasons.append(full)
            if hint_x is not None:
                cp.add_hint(full, bool(int(hint_x[load_cols].sum()) >= cap))
        cp.add_bool_or([xs[c].Not(), *reasons])


class _FirstSolution:
    """Records the objective of every solution CP-SAT reports (the first shows the hint's effect)."""

    def __init__(self) -> None:
        self.objectives: list[float] = []


def solve_cpsat(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``cpsat``: the time-indexed model in CP-SAT, zero gap limits, complete hint.

    Parameters: :class:`CpsatParams`.  Raises :class:`~scheduler_milp.model.result.ModelTooLarge`
    beyond ``max_nonzeros`` or when the model's estimated memory exceeds the machine's cap.  When
    the time limit passes before CP-SAT can start (module docstring), the result holds the warm
    start (or the best fast plan) with stop reason ``time_limit``.
    """
    options = options or SolveOptions()
    params = CpsatParams.of(options)
    try:
        return _solve_cpsat(instance, options, params)
    except Unsolved as err:
        return unsolved_result("cpsat", err)


def _build(prepared: Prepared, params: CpsatParams) -> tuple[Any, list[Any], list[Any]]:
    """:func:`build_cpsat` with its hint, within the run's deadline (:class:`Unsolved` past it)."""
    model = prepared.model
    deadline = prepared.deadline
    hint_x = None if prepared.hint is None else model.indicator(prepared.hint.start_round)
    try:
        cp, xs, start_vars = build_cpsat(
            model,
            hint_x=hint_x,
            symmetry=params.symmetry,
            cumulative=params.cumulative,
            count_cuts=params.count_cuts,
            energy_bound=params.energy_bound,
            left_shift=params.left_shift,
            deadline=deadline,
        )
        if prepared.hint is not None:
            x = model.indicator(prepared.hint.start_round).tolist()
            for var, v in zip(xs, x, strict=True):
                cp.add_hint(var, v)
            for var, s in zip(start_vars, prepared.hint.start_round.tolist(), strict=True):
                cp.add_hint(var, s)
        check_time(deadline)
    except OutOfTime:
        raise prepared.unsolved("time limit reached while building the model") from None
    return cp, xs, start_vars


def _solve_cpsat(instance: Instance, options: SolveOptions, params: CpsatParams) -> SolveResult:
    from ortools.sat.python import cp_model

    prepared = prepare(
        instance, options, params, bytes_per_nonzero=BYTES_PER_NONZERO, interruptible=True
    )
    model = prepared.model
    t_build = time.perf_counter()
    cp, xs, start_vars = _build(prepared, params)
    build_seconds = time.perf_counter() - prepared.started
    load = LOAD_SHARE * (time.perf_counter() - t_build)  # CP-SAT's uninterruptible start
    remaining = prepared.remaining()
    if remaining is not None and remaining <= load:
        raise prepared.unsolved("too little time left for CP-SAT to load the model")

    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.num_workers = max(1, int(options.threads))
    prm.random_seed = int(options.seed)
    prm.relative_gap_limit = 0.0
    prm.absolute_gap_limit = 0.0
    if remaining is not None:
        prm.max_time_in_seconds = max(remaining - load, 0.01)
    if params.deterministic_time is not None:
        prm.max_deterministic_time = float(params.deterministic_time)
    if params.fix_to_hint:
        prm.fix_variables_to_their_hinted_value = True
    lines: list[str] = []
    prm.log_search_progress = True
    prm.log_to_stdout = bool(options.verbose)
    solver.log_callback = lines.append

    seen = _FirstSolution()
    report = options.on_improvement  # the command line's progress line, auto's history
    if report is not None:
        report(prepared.upper_bound_plan.total_latency, None)
        solver.best_bound_callback = lambda b: report(None, math.ceil(b - 1e-6))

    class Callback(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            seen.objectives.append(self.objective_value)
            if report is not None:
                report(round(self.objective_value), None)

    t0 = time.perf_counter()
    status = solver.solve(cp, Callback())
    solve_seconds = time.perf_counter() - t0
    cp_log = "\n".join(lines)

    starts = None
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        values = np.array([solver.boolean_value(v) for v in xs], dtype=float)
        starts = model.starts_from_values(values)
    bound: float | None = None
    if status == cp_model.OPTIMAL:
        bound = solver.objective_value
    elif status in (cp_model.FEASIBLE, cp_model.UNKNOWN):
        bound = solver.best_objective_bound
    timed_out = status in (cp_model.FEASIBLE, cp_model.UNKNOWN)
    hint_msg = re.search(r"The solution hint is complete and is (\w+)", cp_log)
    stats = {
        "solver": "cp-sat",
        "termination": solver.status_name(status),
        "first_solution_objective": seen.objectives[0] if seen.objectives else None,
        "solutions": len(seen.objectives),
        "warm_start_accepted": None
        if prepared.hint is None
        else bool(hint_msg and hint_msg.group(1) == "feasible"),
        "branches": solver.num_branches,
        # CP-SAT's deterministic time: comparable across runs on a busy machine
        "deterministic_time": solver.response_proto.deterministic_time,
        "conflicts": solver.num_conflicts,
    }
    if params.keep_log:
        stats["solver_log"] = cp_log
    if status == cp_model.MODEL_INVALID:
        raise RuntimeError(f"CP-SAT rejected the model: {cp.validate()}")
    return finish(
        "cpsat",
        prepared,
        starts,
        bound,
        timed_out,
        build_seconds,
        solve_seconds,
        stats,
        proven_infeasible=status == cp_model.INFEASIBLE,
    )
