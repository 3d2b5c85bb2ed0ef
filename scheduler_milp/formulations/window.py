"""The CP-SAT model of a window: re-place a few *free* requests around a fixed background.

The subproblem of ``lns`` (:mod:`scheduler_milp.heuristics.lns`) and ``rh``
(:mod:`scheduler_milp.heuristics.receding`): ``k`` requests of a valid plan are freed and every
other request stays where it is.  The fixed requests leave a *background* profile: memory
``bg_mem[t]`` and batch size ``bg_batch[t]`` in every round.  :func:`solve_window` finds start
rounds for the free requests that minimise their total latency subject to

* one start per free request ``i`` in its domain ``[lo_i, hi_i]`` (``lo_i >= a_i``),
* in every round ``t``: ``bg_mem[t] + sum_free mem_i(t - S_i + 1) <= M``,
* in every round ``t`` (with ``max_batch``): ``bg_batch[t] + #free running <= max_batch``.

Model: one Boolean ``x[i, t]`` per (free request, candidate start), exactly one per request, one
linear row per round that can bind (time-indexed, like the exact ``cpsat`` model, but with a
per-round capacity ``M - bg_mem[t]``).  Rows that can never bind are left out, with the same two
arguments as the facts of docs/model.md:

* a round ``t`` in which no request (free or fixed) can have its last round is dominated by round
  ``t + 1``: every request running in ``t`` still runs in ``t + 1`` and holds at least as much;
* a round whose largest possible free load fits in its capacity cannot bind.

For the batch rows the count only rises at starts, so only rounds in which some request (free or
fixed) can start are kept.

The size of the model (its nonzeros) is counted from the domains before any entry is built, and a
window beyond :data:`MAX_WINDOW_NONZEROS` is declined at that cost.  The current plan's starts are
given as a complete hint and are feasible by construction (the background is the current plan
minus the free requests), so the answer is never worse than the current plan.  Gap limits are
zero: an ``OPTIMAL`` status is a proof for the subproblem.  Rows are written straight into the
model proto, which is much faster than building them through Python expressions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model.instance import Instance, IntArray
from ..model.plan import batch_size_per_round, memory_per_round

#: Decline (return the hint unchanged) beyond this many nonzeros: keeps one window's build bounded.
MAX_WINDOW_NONZEROS = 3_000_000


@dataclass
class WindowResult:
    """Outcome of one window solve.

    ``start_round`` holds the new starts of the free requests (in the order of ``free``);
    ``objective`` is their total latency; ``optimal`` says CP-SAT proved it optimal for the window.
    """

    start_round: IntArray
    objective: int
    hint_objective: int
    optimal: bool
    status: str
    build_seconds: float
    solve_seconds: float
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def improved(self) -> bool:
        """True when the window found a strictly better placement than the hint."""
        return self.objective < self.hint_objective


def background_profiles(
    instance: Instance, start_round: IntArray, free: IntArray, horizon: int
) -> tuple[IntArray, IntArray | None]:
    """Memory (and batch size, with ``max_batch``) of the fixed requests in rounds ``0..horizon-1``.

    Computed as the whole plan's profile (:func:`~scheduler_milp.model.plan.memory_per_round`) minus the
    free requests' own profiles, which is exact and costs one vectorised pass plus ``k`` slices.
    """
    start = np.asarray(start_round, dtype=np.int64)
    mem = np.zeros(horizon, dtype=np.int64)
    full = memory_per_round(instance, start)
    mem[: min(horizon, len(full))] = full[:horizon]
    batch: IntArray | None = None
    if instance.max_batch is not None:
        batch = np.zeros(horizon, dtype=np.int64)
        full_b = batch_size_per_round(instance, start)
        batch[: min(horizon, len(full_b))] = full_b[:horizon]
    o = instance.output_len
    for i in np.asarray(free, dtype=np.int64).tolist():
        s_i, o_i = int(start[i]), int(o[i])
        end = min(horizon, s_i + o_i)
        if end <= s_i:
            continue
        mem[s_i:end] -= instance.mem(i, np.arange(1, end - s_i + 1))
        if batch is not None:
            batch[s_i:end] -= 1
    return mem, batch


def solve_window(
    instance: Instance,
    start_round: IntArray,
    free: IntArray,
    lo: IntArray,
    hi: IntArray,
    time_limit: float | None = None,
    deterministic_time: float | None = None,
    seed: int = 0,
    workers: int = 1,
    symmetry: bool = True,
) -> WindowResult:
    """Re-place the ``free`` requests of a valid plan exactly within their start domains.

    ``start_round`` is the current (valid) plan; ``lo``/``hi`` are the free requests' start domains,
    each containing the current start and ``lo_i >= a_i``.  ``time_limit`` (wall seconds, build
    included) and ``deterministic_time`` (CP-SAT's deterministic work units; with ``workers=1``
    this makes the result reproducible) bound the solve.  ``symmetry`` orders the starts of
    identical free requests (same prompt, output, arrival and domain), a valid symmetry break.
    Returns the hint unchanged when the solver finds nothing better, the window is too big
    (``stats["refused"]``, status ``TOO_LARGE``; counted before the rows are built) or building it
    took all of ``time_limit`` (status ``TIME_LIMIT``; CP-SAT is not started).
    """
    from ortools.sat.python import cp_model

    t_begin = time.perf_counter()
    inst = instance
    start = np.asarray(start_round, dtype=np.int64)
    free = np.asarray(free, dtype=np.int64)
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    k = len(free)
    o = inst.output_len[free]
    s = inst.prompt_len[free]
    a = inst.arrival[free]
    hint = start[free].copy()
    if (lo < a).any() or (hint < lo).any() or (hint > hi).any():
        raise ValueError("window domains must contain the current starts and respect arrivals")
    offset = o - a  # latency = S + o - a
    hint_obj = int((hint + offset).sum())

    if symmetry:
        # identical requests are interchangeable: give the hint the same order as the break
        key = np.lexsort((np.arange(k), hi, lo, a, o, s))
        for grp in _identical_groups(s[key], o[key], a[key], lo[key], hi[key]):
            members = key[grp]
            hint[members] = np.sort(hint[members])

    horizon = int((hi + o).max()) + 1
    bg_mem, bg_batch = background_profiles(inst, start, free, horizon)
    cap_mem = inst.memory_budget - bg_mem

    # ---- memory rows: rounds in which some request can have its last round
    first_round, last_round = int(lo.min()), int((hi + o).max()) - 1
    fixed_mask = np.ones(inst.n, dtype=bool)
    fixed_mask[free] = False
    fixed_last = start[fixed_mask] + inst.output_len[fixed_mask] - 1
    cand = [fixed_last[(fixed_last >= first_round) & (fixed_last <= last_round)]]
    for p in range(k):
        cand.append(np.arange(lo[p] + o[p] - 1, hi[p] + o[p]))
    rows = np.unique(np.concatenate(cand))

    def mem_coef(p: int, kk: IntArray) -> IntArray:
        return np.asarray(inst.mem(free[p], kk), dtype=np.int64)

    load, count = _row_loads(rows, lo, hi, o, mem_coef)
    rows_mem = rows[load > cap_mem[rows]]
    nnz = int(count[load > cap_mem[rows]].sum())

    # ---- batch rows: rounds in which some request can start
    rows_b = np.zeros(0, dtype=np.int64)
    cap_batch: IntArray | None = None
    if bg_batch is not None:
        assert inst.max_batch is not None
        cap_batch = inst.max_batch - bg_batch
        fixed_first = start[fixed_mask]
        cand_b = [fixed_first[(fixed_first >= first_round) & (fixed_first <= last_round)]]
        for p in range(k):
            cand_b.append(np.arange(lo[p], hi[p] + 1))
        brows = np.unique(np.concatenate(cand_b))
        load_b, count_b = _row_loads(brows, lo, hi, o, _ones)
        rows_b = brows[load_b > cap_batch[brows]]
        nnz += int(count_b[load_b > cap_batch[brows]].sum())

    width = hi - lo + 1
    stats: dict[str, Any] = {
        "free": k,
        "columns": int(width.sum()),
        "memory_rows": len(rows_mem),
        "memory_rows_dropped": len(rows) - len(rows_mem),
        "batch_rows": len(rows_b),
        "nonzeros": nnz,
    }
    if nnz > MAX_WINDOW_NONZEROS:
        stats["refused"] = True
        return WindowResult(
            start[free].copy(),
            hint_obj,
            hint_obj,
            False,
            "TOO_LARGE",
            time.perf_counter() - t_begin,
            0.0,
            stats,
        )

    # ---- columns: (request position p, start t) for t in [lo_p, hi_p], contiguous per request
    col_first = np.concatenate(([0], np.cumsum(width)))
    n_cols = int(col_first[-1])
    col_req = np.repeat(np.arange(k), width)
    col_start = lo[col_req] + (np.arange(n_cols) - col_first[col_req])
    data_mem, cols_mem = _entries(rows_mem, col_req, col_start, o, mem_coef)
    cols_b: list[IntArray] = []
    cap_b_list: list[int] = []
    if cap_batch is not None:
        _, cols_b = _entries(rows_b, col_req, col_start, o, _ones)
        cap_b_list = [int(cap_batch[t]) for t in rows_b.tolist()]

    model = cp_model.CpModel()
    proto = model.proto
    xs = [model.new_bool_var("") for _ in range(n_cols)]  # proto index == column index
    base = xs[0].index
    for p in range(k):
        model.add_exactly_one(xs[col_first[p] : col_first[p + 1]])
    neg_inf = -(2**62)
    for t, data, cols in zip(rows_mem.tolist(), data_mem, cols_mem, strict=True):
        ct = proto.constraints.add()
        ct.linear.vars.extend((cols + base).tolist())
        ct.linear.coeffs.extend(data.tolist())
        ct.linear.domain.extend([neg_inf, int(cap_mem[t])])
    for cols, cap in zip(cols_b, cap_b_list, strict=True):
        ct = proto.constraints.add()
        ct.linear.vars.extend((cols + base).tolist())
        ct.linear.coeffs.extend([1] * len(cols))
        ct.linear.domain.extend([neg_inf, cap])
    # objective: sum of start rounds of the free requests (constant offset added back later)
    obj = proto.objective
    obj.vars.extend(range(base, base + n_cols))
    obj.coeffs.extend(col_start.tolist())
    if symmetry:
        key = np.lexsort((np.arange(k), hi, lo, a, o, s))
        for grp in _identical_groups(s[key], o[key], a[key], lo[key], hi[key]):
            members = key[grp]
            for p, q in zip(members[:-1], members[1:], strict=True):
                # S_p <= S_q as sums of t * x
                ct = proto.constraints.add()
                ct.linear.vars.extend(range(base + int(col_first[p]), base + int(col_first[p + 1])))
                ct.linear.coeffs.extend(col_start[col_first[p] : col_first[p + 1]].tolist())
                ct.linear.vars.extend(range(base + int(col_first[q]), base + int(col_first[q + 1])))
                ct.linear.coeffs.extend((-col_start[col_first[q] : col_first[q + 1]]).tolist())
                ct.linear.domain.extend([neg_inf, 0])
    # complete hint: the current plan (feasible by construction)
    proto.solution_hint.vars.extend(range(base, base + n_cols))
    proto.solution_hint.values.extend((col_start == hint[col_req]).astype(np.int64).tolist())

    build_seconds = time.perf_counter() - t_begin
    if time_limit is not None and float(time_limit) <= build_seconds:
        # building took the time: CP-SAT is not started
        return WindowResult(
            start[free].copy(), hint_obj, hint_obj, False, "TIME_LIMIT", build_seconds, 0.0, stats
        )
    solver = _solver(
        seed,
        workers,
        None if time_limit is None else time_limit - build_seconds,
        deterministic_time,
    )
    t_solve = time.perf_counter()
    status = solver.solve(model)
    solve_seconds = time.perf_counter() - t_solve
    name = solver.status_name(status)
    stats["deterministic_time"] = solver.deterministic_time
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        vals = np.asarray(solver.response_proto.solution, dtype=np.int64)[base : base + n_cols] > 0
        chosen = col_start[vals]
        new = np.empty(k, dtype=np.int64)
        new[col_req[vals]] = chosen
        new_obj = int((new + offset).sum())
        stats["bound"] = int(math.ceil(solver.best_objective_bound - 1e-6) + offset.sum())
        if new_obj < hint_obj:
            return WindowResult(
                new,
                new_obj,
                hint_obj,
                status == cp_model.OPTIMAL,
                name,
                build_seconds,
                solve_seconds,
                stats,
            )
        return WindowResult(
            start[free].copy(),
            hint_obj,
            hint_obj,
            status == cp_model.OPTIMAL,
            name,
            build_seconds,
            solve_seconds,
            stats,
        )
    return WindowResult(
        start[free].copy(), hint_obj, hint_obj, False, name, build_seconds, solve_seconds, stats
    )


def _solver(
    seed: int, workers: int, time_limit: float | None, deterministic_time: float | None
) -> Any:
    """A CP-SAT solver for windows: zero gap limits, a light presolve, the given limits."""
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.num_workers = max(1, int(workers))
    prm.random_seed = int(seed)
    prm.relative_gap_limit = 0.0
    prm.absolute_gap_limit = 0.0
    # Windows are solved many times: the default presolve spends seconds on symmetry detection and
    # constraint-inclusion checks of the wide memory rows and rarely pays off here.
    prm.symmetry_level = 0
    prm.presolve_inclusion_work_limit = 0
    prm.find_big_linear_overlap = False
    prm.max_presolve_iterations = 1
    if time_limit is not None:
        prm.max_time_in_seconds = max(0.01, float(time_limit))
    if deterministic_time is not None:
        prm.max_deterministic_time = float(deterministic_time)
    return solver


def _identical_groups(*keys: IntArray) -> list[IntArray]:
    """Runs (length >= 2) of equal consecutive tuples in already sorted key arrays."""
    n = len(keys[0])
    if n < 2:
        return []
    same = np.ones(n - 1, dtype=bool)
    for arr in keys:
        same &= arr[1:] == arr[:-1]
    groups = []
    p = 0
    while p < n - 1:
        if same[p]:
            q = p
            while q < n - 1 and same[q]:
                q += 1
            groups.append(np.arange(p, q + 1))
            p = q + 1
        else:
            p += 1
    return groups


def _ones(p: int, kk: IntArray) -> IntArray:
    """The coefficient of a batch row: 1 in every round of a request."""
    return np.ones_like(kk)


def _row_loads(
    rows: IntArray,
    lo: IntArray,
    hi: IntArray,
    o: IntArray,
    coef: Callable[[int, IntArray], IntArray],
) -> tuple[IntArray, IntArray]:
    """Largest possible load and number of nonzeros of each row, without building the entries.

    The columns of request ``p`` that cover round ``t`` are the starts
    ``max(lo_p, t - o_p + 1)..min(hi_p, t)``; the earliest of them holds the largest coefficient,
    ``coef(p, min(t - lo_p + 1, o_p))`` (memory only grows with the round ``kk`` of a request), and
    one start per request makes the sum of these the largest load.  Costs ``O(k * rows)``.
    """
    load = np.zeros(len(rows), dtype=np.int64)
    count = np.zeros(len(rows), dtype=np.int64)
    for p in range(len(lo)):
        lo_p, hi_p, o_p = int(lo[p]), int(hi[p]), int(o[p])
        a, b = (
            int(np.searchsorted(rows, lo_p, side="left")),
            int(np.searchsorted(rows, hi_p + o_p - 1, side="right")),
        )
        if a >= b:
            continue
        t = rows[a:b]
        load[a:b] += coef(p, np.minimum(t - lo_p + 1, o_p))
        count[a:b] += np.minimum(hi_p, t) - np.maximum(lo_p, t - o_p + 1) + 1
    return load, count


def _entries(
    rows: IntArray,
    col_req: IntArray,
    col_start: IntArray,
    o: IntArray,
    coef: Callable[[int, IntArray], IntArray],
) -> tuple[list[IntArray], list[IntArray]]:
    """Coefficients and columns of each of ``rows``: column ``c`` (request ``p``, start ``t'``)
    enters rows ``t' <= t < t' + o_p`` with ``coef(p, t - t' + 1)``; columns in index order."""
    if len(rows) == 0 or len(col_req) == 0:
        return [], []
    first = np.searchsorted(rows, col_start, side="left")
    last = np.searchsorted(rows, col_start + o[col_req] - 1, side="right")
    count = last - first
    total = int(count.sum())
    col_of = np.repeat(np.arange(len(col_req)), count)
    within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    row_pos = first[col_of] + within
    kk = rows[row_pos] - col_start[col_of] + 1
    req = col_req[col_of]  # nondecreasing: the columns of a request are contiguous
    data = np.empty(total, dtype=np.int64)
    bounds = np.searchsorted(req, np.arange(int(col_req[-1]) + 2))
    for p in range(len(bounds) - 1):
        if bounds[p] < bounds[p + 1]:
            data[bounds[p] : bounds[p + 1]] = coef(p, kk[bounds[p] : bounds[p + 1]])
    order = np.argsort(row_pos, kind="stable")  # by row, then by column
    row_pos, data, col_of = row_pos[order], data[order], col_of[order]
    row_bounds = np.searchsorted(row_pos, np.arange(len(rows) + 1))
    out_data = [data[row_bounds[r] : row_bounds[r + 1]] for r in range(len(rows))]
    out_cols = [col_of[row_bounds[r] : row_bounds[r + 1]] for r in range(len(rows))]
    return out_data, out_cols
