"""Strengthening the time-indexed model: reduced-cost fixing and per-round cardinality (clique) rows.

Two directions of the exact frontier (docs/exact.md, "Strengthening the relaxation"), built on the arrays of
:mod:`.timeindexed` and added to the models that :func:`.cpsat.build_cpsat` and the LP of
:mod:`.lp` return, so that neither builder changes.

**Cardinality rows** (:func:`cardinality_rows`).  In round ``r`` let ``S`` be a set of columns
covering ``r`` and, for each request with a column in ``S``, ``w_i`` the smallest memory any of
its columns in ``S`` holds in ``r``.  A plan has at most one column of each request, so if the
``k + 1`` smallest ``w_i`` add up to more than ``M``, no ``k + 1`` requests can run from columns of
``S`` together: ``sum_{c in S} x_c <= k`` holds for every plan.  With ``k = 1`` these are the
cliques of the conflict graph (two starts that alone overflow some round cannot both be chosen),
``AddAtMostOne`` in CP-SAT.  Per round and ``k``, ``S`` is the set of columns holding at least
``theta`` in ``r``, with the smallest ``theta`` that keeps the row valid (it contains the rows of
every larger ``theta``).  The memory row implies them only weakly where few requests fit: with
``M = 24`` two columns holding 13 each may take 0.9 each in the LP.

**Reduced-cost fixing** (:func:`lagrangian_fixing`).  For prices ``lambda_r >= 0`` of the memory
rows (and ``mu >= 0`` of any other rows ``A x <= b`` valid for every plan) the Lagrangian
``L = - sum_r lambda_r M - mu b + sum_i min_t d_it`` with ``d_it = c_it + sum_r lambda_r
a_r,it + mu A_it`` is a lower bound, and so is ``L - min_t d_it + d_it`` for every plan that starts
``i`` in ``t`` (the one-start rows are kept exactly, not relaxed).  A column whose bound exceeds
``UB - 1`` is in no plan better than the incumbent of objective ``UB``, and leaves the model; the
incumbent's own columns are kept, so the model still holds it (its hint stays feasible).  With the
duals of the LP (:func:`lp_prices`) ``L`` is the LP value; any prices are valid (e.g. the
Lagrangian ascent's, which ``bounds`` computes and a caller may pass in: this module never imports
``bounds``).  A bound of the reduced model is a bound of the whole problem: the columns removed only
appear in plans of objective at least ``UB``, and the reduced model keeps a plan of objective
``UB``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model.instance import Instance, IntArray
from ..model.plan import Plan
from ..model.result import SolveOptions, SolveResult
from .prepare import Prepared, finish, prepare
from .timeindexed import SparseRows, TimeIndexed, round_entries

#: tolerance on the Lagrangian bounds (floating-point prices): a column is removed only when its
#: bound exceeds ``UB - 1`` by more than this (relative to ``UB``)
FIX_TOLERANCE = 1e-7


def cardinality_rows(model: TimeIndexed, max_k: int = 1) -> SparseRows:
    """Rows ``sum_{c in S} x_c <= k`` for ``k = 1..max_k`` and every round (module docstring).

    Only rows that cut (``S`` spans more than ``k`` requests) are kept, each distinct set once per
    ``k``; ``round_of_row`` is the round the row was derived from, ``rhs_per_row`` holds ``k``.
    """
    inst = model.instance
    budget = inst.memory_budget
    entries = round_entries(model)
    seen: set[tuple[int, bytes]] = set()
    indices: list[IntArray] = []
    rounds: list[int] = []
    rhs: list[int] = []
    for r in range(entries.n_rows):
        cols, mem = entries.row(r)
        if len(cols) < 2:
            continue
        req = model.col_request[cols]
        for theta, k in _thresholds(req, mem, budget, max_k, inst.n):
            chosen = np.sort(cols[mem >= theta])
            key = (k, chosen.tobytes())
            if key in seen:
                continue
            seen.add(key)
            indices.append(chosen)
            rounds.append(r)
            rhs.append(k)
    indptr = np.zeros(len(indices) + 1, dtype=np.int64)
    if indices:
        indptr[1:] = np.cumsum([len(c) for c in indices])
    flat = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64)
    return SparseRows(
        np.ones(len(flat), dtype=np.int64),
        flat.astype(np.int64),
        indptr,
        np.asarray(rounds, dtype=np.int64),
        0,
        rhs_per_row=np.asarray(rhs, dtype=np.int64),
    )


def _thresholds(
    req: IntArray, mem: IntArray, budget: int, max_k: int, n: int
) -> list[tuple[int, int]]:
    """``(theta, k)``: the smallest memory threshold of one round whose column set gives a valid,
    cutting row ``<= k`` (the ``k + 1`` smallest per-request minima above ``theta`` exceed ``M``)."""
    out = []
    levels = np.unique(mem)[::-1]  # descending
    for k in range(1, max_k + 1):
        best = None
        for theta in levels.tolist():
            sel = mem >= theta
            minima = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(minima, req[sel], mem[sel])
            minima = np.sort(minima[minima < np.iinfo(np.int64).max])
            if len(minima) <= k:
                continue  # too few requests to cut yet; a lower theta may add some
            if int(minima[: k + 1].sum()) > budget:
                best = theta
            else:
                break  # lower thresholds only lower the minima
        if best is not None:
            out.append((int(best), k))
    return out


@dataclass
class Prices:
    """Prices of a Lagrangian of the time-indexed model: memory per round, and other rows.

    ``memory[r] >= 0`` prices round ``r``'s memory row (rounds past the array: 0); ``rows`` lists
    ``(rows, prices >= 0)`` for other rows valid for every plan (batch, completion-count,
    cardinality rows).
    """

    memory: np.ndarray
    rows: list[tuple[SparseRows, np.ndarray]] = field(default_factory=list)


def reduced_costs(model: TimeIndexed, prices: Prices) -> tuple[float, np.ndarray]:
    """``(L, d)``: the Lagrangian bound at ``prices`` and every column's reduced cost ``d``.

    ``L = const + sum_i min_t d_it`` (one start per request kept exactly); valid for all prices
    ``>= 0`` (negative ones are taken as 0).
    """
    inst = model.instance
    d = model.col_cost.astype(np.float64).copy()
    lam = np.clip(np.asarray(prices.memory, dtype=np.float64), 0.0, None)
    entries = round_entries(model)
    lam_full = np.zeros(entries.n_rows, dtype=np.float64)
    m = min(len(lam), entries.n_rows)
    lam_full[:m] = lam[:m]
    row_of_entry = np.repeat(np.arange(entries.n_rows), np.diff(entries.indptr))
    d += np.bincount(
        entries.indices, weights=entries.data * lam_full[row_of_entry], minlength=model.n_cols
    )
    const = -float(lam.sum()) * inst.memory_budget
    for rows, mu in prices.rows:
        mu = np.clip(np.asarray(mu, dtype=np.float64), 0.0, None)
        if not rows.n_rows:
            continue
        row_of = np.repeat(np.arange(rows.n_rows), np.diff(rows.indptr))
        d += np.bincount(rows.indices, weights=rows.data * mu[row_of], minlength=model.n_cols)
        rhs = (
            rows.rhs_per_row.astype(np.float64)
            if rows.rhs_per_row is not None
            else np.full(rows.n_rows, float(rows.rhs))
        )
        const -= float(mu @ rhs)
    mins = np.minimum.reduceat(d, model.col_offset[:-1])
    return const + float(mins.sum()), d


def lagrangian_fixing(
    model: TimeIndexed, prices: Prices, upper_bound: int, keep: IntArray | None = None
) -> tuple[np.ndarray, float]:
    """``(removed, L)``: the columns in no plan of objective at most ``upper_bound - 1``.

    ``removed[c]`` is True when ``L - min_t d_it + d_c > upper_bound - 1`` (module docstring);
    ``keep`` (column indices, e.g. the incumbent's) are never removed.
    """
    bound, d = reduced_costs(model, prices)
    mins = np.minimum.reduceat(d, model.col_offset[:-1])
    col_bound = bound - mins[model.col_request] + d
    tol = FIX_TOLERANCE * max(1.0, float(upper_bound))
    removed = col_bound > upper_bound - 1 + tol
    if keep is not None:
        removed[np.asarray(keep, dtype=np.int64)] = False
    return removed, bound


@dataclass
class LpPrices:
    """The LP relaxation with extra rows: its value, column values and the prices of its rows."""

    value: float
    values: np.ndarray
    prices: Prices
    seconds: float


def lp_prices(
    model: TimeIndexed,
    extra: list[SparseRows] | None = None,
    count_cuts: bool = True,
    time_limit: float | None = None,
    threads: int = 1,
) -> LpPrices | None:
    """Solve the time-indexed LP (plus ``extra`` rows) and read its row duals as :class:`Prices`.

    ``None`` when HiGHS does not prove the LP optimal in time.
    """
    import highspy

    from .lp import _highs_model, add_rows

    h = _highs_model(model, time_limit, threads, count_cuts)
    for rows in extra or []:
        add_rows(h, rows)
    t0 = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - t0
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    sol = h.getSolution()
    dual = -np.asarray(sol.row_dual, dtype=np.float64)  # <= rows of a minimisation: dual <= 0
    pos = model.instance.n  # the one-start rows come first
    memory = np.zeros(model.horizon, dtype=np.float64)
    rows_mem = model.memory_rows
    memory[rows_mem.round_of_row] = dual[pos : pos + rows_mem.n_rows]
    pos += rows_mem.n_rows
    others: list[tuple[SparseRows, np.ndarray]] = []
    blocks: list[SparseRows] = []
    if model.batch_rows is not None:
        blocks.append(model.batch_rows)
    if count_cuts:
        blocks.append(model.completion_count_rows())
    blocks.extend(extra or [])
    for rows in blocks:
        if not rows.n_rows:
            continue
        others.append((rows, dual[pos : pos + rows.n_rows]))
        pos += rows.n_rows
    return LpPrices(
        float(h.getInfo().objective_function_value),
        np.asarray(sol.col_value, dtype=np.float64),
        Prices(memory, others),
        seconds,
    )


def lp_value_with(
    model: TimeIndexed, extra: list[SparseRows] | None = None, removed: np.ndarray | None = None
) -> float | None:
    """The LP value of ``model`` with ``extra`` rows and the ``removed`` columns fixed to 0."""
    if removed is None or not removed.any():
        res = lp_prices(model, extra)
        return None if res is None else res.value
    import highspy

    from .lp import _highs_model, add_rows

    h = _highs_model(model, None, 1, True)
    cols = np.flatnonzero(removed).astype(np.int32)
    h.changeColsBounds(len(cols), cols, np.zeros(len(cols)), np.zeros(len(cols)))
    for rows in extra or []:
        add_rows(h, rows)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return float(h.getInfo().objective_function_value)


@dataclass(frozen=True)
class Strengthening:
    """Which directions :func:`solve_strengthened` applies.

    ``fixing``: reduced-cost fixing at the LP's duals (redone with the new upper bound each time
    the solver improves the incumbent, up to ``refix`` times); ``cliques``: the cardinality rows up
    to ``k = cliques`` (0: none); ``cuts_in_lp``: price the cardinality rows in the LP used for the
    fixing (a stronger LP, and so more fixing).
    """

    fixing: bool = True
    cliques: int = 1
    cuts_in_lp: bool = True
    refix: int = 5


def _incumbent(prepared: Prepared) -> Plan:
    """The best plan the model holds: the hint, unless the upper-bound plan is better."""
    hint, ub_plan = prepared.hint, prepared.upper_bound_plan
    return hint if hint is not None and hint.total_latency <= ub_plan.total_latency else ub_plan


def _keep(model: TimeIndexed, prepared: Prepared, incumbent: Plan) -> IntArray:
    """Columns the fixing never removes: the incumbent's, the upper-bound plan's and the hint's.

    The reduced model must keep a plan of objective ``UB``: its bound is a bound of the whole
    problem only then (an optimum equal to ``UB`` stays in the model).
    """
    plans = [incumbent, prepared.upper_bound_plan]
    if prepared.hint is not None:
        plans.append(prepared.hint)
    return np.concatenate([model.column_of(p.start_round) for p in plans])


def add_cardinality_rows(cp: Any, xs: list[Any], rows: SparseRows) -> None:
    """Add cardinality rows to a CP-SAT model: ``AddAtMostOne`` where ``k = 1``, linear otherwise."""
    from ortools.sat.python import cp_model

    assert rows.rhs_per_row is not None
    indptr, indices = rows.indptr.tolist(), rows.indices.tolist()
    for r in range(rows.n_rows):
        lits = [xs[c] for c in indices[indptr[r] : indptr[r + 1]]]
        k = int(rows.rhs_per_row[r])
        if k == 1:
            cp.add_at_most_one(lits)
        else:
            cp.add(cp_model.LinearExpr.sum(lits) <= k)


def _fix(cp: Any, xs: list[Any], removed: np.ndarray) -> None:
    for c in np.flatnonzero(removed).tolist():
        cp.add(xs[c] == 0)


def solve_strengthened(
    instance: Instance, options: SolveOptions | None = None, how: Strengthening | None = None
) -> SolveResult:
    """``cpsat`` with the strengthening directions of ``how`` (default: :class:`Strengthening`).

    The model is that of :func:`.cpsat.build_cpsat` with its default switches; the cardinality
    rows are added as ``AddAtMostOne`` / linear rows and the removed columns are fixed to 0 (CP-SAT's
    presolve drops them).  When the solver finds a better plan than the one the fixing assumed, it
    stops, the fixing is redone with the new upper bound (same prices) and the solve resumes with
    that plan as the hint, up to ``how.refix`` times.  ``stats`` records the share of columns
    removed, the LP values and the solver's counters summed over the runs.
    """
    from ortools.sat.python import cp_model

    from .cpsat import BYTES_PER_NONZERO, CpsatParams, build_cpsat

    options = options or SolveOptions()
    how = how or Strengthening()
    params = CpsatParams.of(options)
    prepared = prepare(instance, options, params, bytes_per_nonzero=BYTES_PER_NONZERO)
    model = prepared.model
    cuts = cardinality_rows(model, how.cliques) if how.cliques else None
    lp = None
    if how.fixing:
        lp = lp_prices(model, [cuts] if cuts is not None and how.cuts_in_lp else None)
    incumbent = _incumbent(prepared)
    ub = incumbent.total_latency
    stats: dict[str, Any] = {
        "cardinality_rows": 0 if cuts is None else cuts.n_rows,
        "lp_value": None if lp is None else lp.value,
        "branches": 0,
        "conflicts": 0,
        "deterministic_time": 0.0,
        "fixing_runs": [],
    }
    build_seconds = time.perf_counter() - prepared.started
    solve_seconds = 0.0
    bound: float | None = None
    starts: IntArray | None = None
    timed_out = False
    for attempt in range(how.refix + 1):
        removed = np.zeros(model.n_cols, dtype=bool)
        if lp is not None:
            removed, _ = lagrangian_fixing(model, lp.prices, ub, _keep(model, prepared, incumbent))
        stats["fixing_runs"].append({"upper_bound": ub, "removed": int(removed.sum())})
        hint_x = model.indicator(incumbent.start_round)
        cp, xs, start_vars = build_cpsat(model, hint_x=hint_x)
        if cuts is not None:
            add_cardinality_rows(cp, xs, cuts)
        _fix(cp, xs, removed)
        for var, v in zip(xs, hint_x.tolist(), strict=True):
            cp.add_hint(var, v)
        for var, s in zip(start_vars, incumbent.start_round.tolist(), strict=True):
            cp.add_hint(var, s)
        solver = cp_model.CpSolver()
        prm = solver.parameters
        prm.num_workers = max(1, int(options.threads))
        prm.random_seed = int(options.seed)
        prm.relative_gap_limit = 0.0
        prm.absolute_gap_limit = 0.0
        remaining = prepared.remaining()
        if remaining is not None:
            prm.max_time_in_seconds = max(remaining, 0.01)
        last = attempt == how.refix or lp is None
        stop_below = None if last else ub - 1
        cb = _StopWhenBelow(stop_below)
        t0 = time.perf_counter()
        status = solver.solve(cp, cb)
        solve_seconds += time.perf_counter() - t0
        stats["branches"] += solver.num_branches
        stats["conflicts"] += solver.num_conflicts
        stats["deterministic_time"] += solver.response_proto.deterministic_time
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            values = np.array([solver.boolean_value(v) for v in xs], dtype=float)
            starts = model.starts_from_values(values)
        if status == cp_model.OPTIMAL:
            bound = solver.objective_value
            timed_out = False
            break
        bound = solver.best_objective_bound if status != cp_model.INFEASIBLE else None
        timed_out = True
        if cb.stopped and starts is not None:
            incumbent = Plan.checked(instance, starts)
            ub = incumbent.total_latency
            continue
        break
    stats["columns_removed"] = stats["fixing_runs"][-1]["removed"]
    stats["removed_share"] = stats["columns_removed"] / max(model.n_cols, 1)
    return finish(
        "cpsat-strengthened",
        prepared,
        starts,
        bound,
        timed_out,
        build_seconds,
        solve_seconds,
        stats,
    )


class _StopWhenBelow:
    """A CP-SAT solution callback that stops the search once a plan at most ``threshold`` is found."""

    def __new__(cls, threshold: int | None) -> Any:  # a CpSolverSolutionCallback subclass
        from ortools.sat.python import cp_model

        class _Callback(cp_model.CpSolverSolutionCallback):
            def __init__(self) -> None:
                super().__init__()
                self.stopped = False

            def on_solution_callback(self) -> None:
                if threshold is not None and self.objective_value <= threshold:
                    self.stopped = True
                    self.stop_search()

        return _Callback()


def solve_strengthened_milp(
    instance: Instance, options: SolveOptions | None = None, how: Strengthening | None = None
) -> SolveResult:
    """The time-indexed MILP in HiGHS (``highspy`` directly) with the directions of ``how``.

    The same rows as ``milp`` (memory, batch, one start each; the completion-count rows as in
    ``lp``) plus the cardinality rows, with the removed columns' upper bounds set to 0 and the
    warm start passed as a complete solution.  The fixing is done once, at the prepared upper bound
    (HiGHS gives no place to restart cheaply).  With ``how = Strengthening(fixing=False,
    cliques=0)`` it is the plain model through the same code path (the benchmark's control).
    """
    import highspy

    from .lp import _highs_model
    from .milp import BYTES_PER_NONZERO, MilpParams

    options = options or SolveOptions()
    how = how or Strengthening()
    params = MilpParams.of(options)
    prepared = prepare(instance, options, params, bytes_per_nonzero=BYTES_PER_NONZERO)
    model = prepared.model
    cuts = cardinality_rows(model, how.cliques) if how.cliques else None
    removed = np.zeros(model.n_cols, dtype=bool)
    lp_value = None
    incumbent = _incumbent(prepared)
    if how.fixing:
        lp = lp_prices(model, [cuts] if cuts is not None and how.cuts_in_lp else None)
        if lp is not None:
            lp_value = lp.value
            keep = _keep(model, prepared, incumbent)
            removed, _ = lagrangian_fixing(model, lp.prices, incumbent.total_latency, keep)
    h = _highs_model(model, prepared.remaining(), int(options.threads), count_cuts=True)
    if cuts is not None and cuts.n_rows:
        assert cuts.rhs_per_row is not None
        h.addRows(
            cuts.n_rows,
            np.full(cuts.n_rows, -highspy.kHighsInf),
            cuts.rhs_per_row.astype(float),
            cuts.nnz,
            cuts.indptr[:-1].astype(np.int32),
            cuts.indices.astype(np.int32),
            cuts.data.astype(float),
        )
    fixed = np.flatnonzero(removed).astype(np.int32)
    if len(fixed):
        h.changeColsBounds(len(fixed), fixed, np.zeros(len(fixed)), np.zeros(len(fixed)))
    n_cols = model.n_cols
    h.changeColsIntegrality(
        n_cols,
        np.arange(n_cols, dtype=np.int32),
        np.full(n_cols, highspy.HighsVarType.kInteger),
    )
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.0)
    h.setOptionValue("random_seed", int(options.seed))
    remaining = prepared.remaining()
    if remaining is not None:
        h.setOptionValue("time_limit", max(remaining, 0.01))
    sol = highspy.HighsSolution()
    sol.col_value = model.indicator(incumbent.start_round).astype(float).tolist()
    h.setSolution(sol)
    build_seconds = time.perf_counter() - prepared.started
    t0 = time.perf_counter()
    h.run()
    solve_seconds = time.perf_counter() - t0
    status = h.getModelStatus()
    info = h.getInfo()
    starts = None
    if info.primal_solution_status == 2:  # feasible
        starts = model.starts_from_values(np.asarray(h.getSolution().col_value))
    optimal = status == highspy.HighsModelStatus.kOptimal
    bound = float(info.objective_function_value) if optimal else float(info.mip_dual_bound)
    stats = {
        "solver": "highs",
        "termination": h.modelStatusToString(status),
        "nodes": int(info.mip_node_count),
        "lp_value": lp_value,
        "cardinality_rows": 0 if cuts is None else cuts.n_rows,
        "columns_removed": int(removed.sum()),
        "removed_share": float(removed.mean()) if n_cols else 0.0,
    }
    return finish(
        "milp-strengthened",
        prepared,
        starts,
        bound,
        not optimal,
        build_seconds,
        solve_seconds,
        stats,
    )
