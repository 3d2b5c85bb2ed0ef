"""The Lagrangian bound by column generation on the time-indexed LP (HiGHS).

The subgradient ascent approaches the LP optimum slowly; a restricted master LP over a few start
columns per request, priced exactly by :class:`~.dual.Dual`, gets there in far fewer evaluations
and gives prices from which the ascent only has to polish.  Every priced value is a bound whatever
the master's state (docs/bounds.md, section 3, "Column generation").  HiGHS loads on first use.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from numpy.typing import NDArray

from ..formulations.timeindexed import OutOfTime
from ..model.instance import Instance, IntArray
from ..model.plan import Plan
from .dual import Dual, LagrangianResult, check, plan_and_ub, price_shape
from .simple import proven_bound, safe_ceil

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]


def has_highspy() -> bool:
    """Whether HiGHS (``highspy``) can be imported, i.e. column generation can run."""
    try:
        import highspy  # noqa: F401
    except ImportError:  # pragma: no cover - highspy is a dependency
        return False
    return True


class _Master:
    """Restricted master LP of the time-indexed model (HiGHS), with columns added on demand.

    Rows: one convexity row per request (``= 1``) and, for every group ``G`` of ``g`` consecutive
    rounds below the horizon, the sum of the memory rows of its rounds (``sum_(r in G) sum
    m_i(r - t + 1) x_it <= |G| M`` with the linear profile ``m_i(k) = s_i + k``; ``g = 1`` is the
    time-indexed LP itself) and with a batch cap the summed count rows.  Summing rows is a
    relaxation, and a group's dual is a price constant over its rounds.  Column ``(i, t)`` costs
    ``t + o_i - a_i``; the column of the start ``max(H, a_i)`` (no row below ``H``) is always
    present, so the master is feasible.
    """

    def __init__(self, instance: Instance, horizon: int, group: int = 1):
        import highspy

        from ..formulations.lp import _quiet_stdout

        self.instance = instance
        self.n = instance.n
        self.H = int(horizon)
        self.g = int(group)
        self.G = -(-self.H // self.g)
        self.s = instance.prompt_len.astype(np.float64)
        self.o = instance.output_len.astype(np.int64)
        self.a = instance.arrival.astype(np.int64)
        self.cap = instance.max_batch
        with _quiet_stdout():
            self.h = highspy.Highs()
        h = self.h
        h.setOptionValue("output_flag", False)
        highspy.Highs.resetGlobalScheduler(True)
        h.setOptionValue("threads", 1)
        self.highspy = highspy
        inf = highspy.kHighsInf
        n, G = self.n, self.G
        size = np.minimum(self.g, self.H - self.g * np.arange(G)).astype(np.float64)
        empty_i = np.zeros(0, dtype=np.int32)
        h.addRows(n, np.ones(n), np.ones(n), 0, empty_i, empty_i, np.zeros(0))
        h.addRows(
            G,
            np.full(G, -inf),
            size * float(instance.memory_budget),
            0,
            empty_i,
            empty_i,
            np.zeros(0),
        )
        if self.cap is not None:
            h.addRows(G, np.full(G, -inf), size * float(self.cap), 0, empty_i, empty_i, np.zeros(0))
        self.keys: set[int] = set()
        self.col_req: list[IntArray] = []
        self.col_start: list[IntArray] = []
        self.add(np.arange(n, dtype=np.int64), np.maximum(self.H, self.a))

    def columns(self) -> tuple[IntArray, IntArray]:
        """All columns ``(request, start)`` in the master."""
        return np.concatenate(self.col_req), np.concatenate(self.col_start)

    def add(self, req: IntArray, start: IntArray) -> int:
        """Add the columns ``(req[j], start[j])`` not yet present; returns how many were added."""
        stride = self.H + int(self.a.max()) + 2
        keys = req * stride + start
        _, first = np.unique(keys, return_index=True)
        first = np.sort(first)
        first = first[
            np.fromiter(
                (int(k) not in self.keys for k in keys[first]), dtype=bool, count=len(first)
            )
        ]
        req, start = req[first], start[first]
        m = len(req)
        if not m:
            return 0
        self.keys.update(int(k) for k in keys[first])
        n, H, g, G = self.n, self.H, self.g, self.G
        o = self.o[req]
        length = np.clip(H - start, 0, o)  # rounds below the horizon
        total = int(length.sum())
        col_of = np.repeat(np.arange(m), length)
        k = np.arange(total) - np.repeat(np.cumsum(length) - length, length) + 1  # age 1..length
        grp = (start[col_of] + k - 1) // g
        if total:
            cut = np.flatnonzero((np.diff(col_of) != 0) | (np.diff(grp) != 0)) + 1
            cut = np.concatenate(([0], cut))
            mem_val = np.add.reduceat(self.s[req][col_of] + k, cut)
            cnt_val = np.add.reduceat(np.ones(total), cut)
            ent_col, ent_grp = col_of[cut], grp[cut]
        else:
            mem_val = cnt_val = np.zeros(0)
            ent_col = ent_grp = np.zeros(0, dtype=np.int64)
        cols = [np.arange(m), ent_col]
        rows = [req, n + ent_grp]
        vals = [np.ones(m), mem_val]
        if self.cap is not None:
            cols.append(ent_col)
            rows.append(n + G + ent_grp)
            vals.append(cnt_val)
        col = np.concatenate(cols)
        order = np.argsort(col, kind="stable")
        col = col[order]
        index = np.concatenate(rows)[order]
        value = np.concatenate(vals)[order]
        starts = np.searchsorted(col, np.arange(m))
        cost = (start + o - self.a[req]).astype(np.float64)
        self.h.addCols(
            m,
            cost,
            np.zeros(m),
            np.full(m, self.highspy.kHighsInf),
            len(index),
            starts.astype(np.int32),
            index.astype(np.int32),
            value.astype(np.float64),
        )
        self.col_req.append(req)
        self.col_start.append(start)
        return m

    def solve(
        self, time_limit: float
    ) -> tuple[float, FloatArray, FloatArray, FloatArray | None] | None:
        """Solve; ``(objective, convexity duals, per-round memory prices >= 0, batch prices or None)``."""
        h = self.h
        # HiGHS's clock runs across calls: the limit is on its total run time
        h.setOptionValue("time_limit", h.getRunTime() + max(float(time_limit), 0.01))
        h.run()
        if h.getModelStatus() != self.highspy.HighsModelStatus.kOptimal:
            return None
        dual = np.asarray(h.getSolution().row_dual, dtype=np.float64)
        n, G, H, g = self.n, self.G, self.H, self.g
        pi = dual[:n]
        lam = np.repeat(np.maximum(0.0, -dual[n : n + G]), g)[:H]
        mu = (
            np.repeat(np.maximum(0.0, -dual[n + G : n + 2 * G]), g)[:H]
            if self.cap is not None
            else None
        )
        return float(h.getInfo().objective_function_value), pi, lam, mu

    @property
    def n_cols(self) -> int:
        return int(self.h.getNumCol())


def _price(
    dual: Dual, lam: FloatArray, mu: FloatArray | None, segments: int, deadline: float = math.inf
) -> tuple[float, IntArray, IntArray, IntArray]:
    """Exact Lagrangian ``L(lam, mu)`` (bucket width 1) and candidate columns.

    Returns the value, each request's best start (``max(H, a_i)`` when no start below the
    horizon is cheaper) and candidate columns ``(request, start)``: per request the cheapest
    start below the horizon in each of ``segments`` equal parts of ``[a_i, H)``.  Raises
    :class:`~scheduler_milp.formulations.timeindexed.OutOfTime` when ``deadline`` passes before
    the last request is priced.
    """
    H = dual.H
    tables = dual.price_tables(lam, mu)
    n = dual.instance.n
    total = 0.0
    best = np.empty(n, dtype=np.int64)
    cand_req: list[int] = []
    cand_start: list[int] = []
    for i in range(n):
        check(deadline)
        a, o = int(dual.a[i]), int(dual.o[i])
        beyond_start = max(H, a)
        beyond = float(beyond_start + o - a)
        costs = dual.start_costs(i, tables)
        if costs is None:
            total += beyond
            best[i] = beyond_start
            continue
        cost = costs[1]  # bucket width 1: one start per round a..H-1
        j = int(np.argmin(cost))
        if cost[j] < beyond:
            total += float(cost[j])
            best[i] = a + j
        else:
            total += beyond
            best[i] = beyond_start
        cand_req.append(i)
        cand_start.append(a + j)
        if segments > 1 and H - a > 2 * segments:
            edges = np.linspace(0, H - a, segments + 1).astype(np.int64)
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                if lo <= j < hi or hi <= lo:
                    continue
                cand_req.append(i)
                cand_start.append(a + int(lo) + int(np.argmin(cost[lo:hi])))
    total -= dual.M * float(lam.sum())
    if mu is not None and dual.cap is not None:
        total -= float(dual.cap) * float(mu.sum())
    return total, best, np.asarray(cand_req, dtype=np.int64), np.asarray(cand_start, dtype=np.int64)


def _column_price(
    dual: Dual, lam: FloatArray, mu: FloatArray | None, req: IntArray, start: IntArray
) -> FloatArray:
    """Cost plus price of the columns ``(req[j], start[j])`` (starts below the horizon)."""
    P, Q, _ = dual._tables(lam, True)
    o = dual.o[req]
    e = start + o
    t = start.astype(np.float64)
    price = (
        (dual.s[req] + 1.0 - t) * (P[e] - P[start]) + (Q[e] - Q[start]) + (t + (o - dual.a[req]))
    )
    if mu is not None:
        PM = dual._tables(mu, False)[0]
        price += PM[e] - PM[start]
    return np.asarray(price, dtype=np.float64)


def lagrangian_cg(
    instance: Instance,
    ub: int | None = None,
    time_limit: float | None = 30.0,
    horizon: int | None = None,
    plan: Plan | None = None,
    iterations: int = 10_000,
    segments: int = 4,
    smoothing: float = 0.5,
    group: int | None = None,
    refine: int = 4,
) -> LagrangianResult:
    """Lagrangian bound by column generation on the time-indexed LP (docs/bounds.md, section 3).

    The restricted master (:class:`_Master`) starts from the always-feasible columns beyond the
    horizon, the plan's starts and the starts priced at a few multiples of the heuristic price
    shape.  Its memory rows are summed over groups of ``group`` rounds (default ``H // 256``);
    when a grouping's master is optimal (no column prices out) the groups shrink by ``refine``
    down to single rounds.  Each round the master's memory duals (clipped at 0) are smoothed
    towards the best prices so far (Wentges: ``smoothing * best + (1 - smoothing) * master``),
    ``L`` is evaluated exactly at those prices by :func:`_price` (a valid bound whatever the
    master's state) and the ``segments`` cheapest starts per request with a negative reduced
    cost against the master's own duals are added; if none, the master's duals are priced
    directly (no smoothing).  ``converged`` is set when, with single rounds, no column prices
    out (then the best ``L`` is the LP optimum) or the rounded bound reaches the master value.
    Stops after ``iterations`` pricings or ``time_limit`` seconds (HiGHS gets the time left; a
    pricing under way at the limit is dropped).
    """
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + time_limit
    plan, ub = plan_and_ub(instance, plan, ub)
    H = max(int(horizon if horizon is not None else plan.makespan), 1)
    dual = Dual(instance, H, 1)
    master = _Master(instance, H, group or max(1, H // 256))
    start0 = np.asarray(plan.start_round, dtype=np.int64)
    below = start0 < H
    master.add(np.flatnonzero(below).astype(np.int64), start0[below])
    use_mu = instance.max_batch is not None
    shape = price_shape(instance, plan, H)
    best_val = -math.inf
    best_lam = np.zeros(H)
    best_mu: FloatArray | None = np.zeros(H) if use_mu else None
    best_start = np.asarray(instance.arrival, dtype=np.int64).copy()
    history: list[float] = []
    done = 0
    alpha = smoothing
    lp_value = math.inf
    converged = False
    g = master.g
    phase_t0 = t0
    try:
        for scale in (0.0, 0.5, 1.0):
            lam0 = shape * scale
            val, st, cr, cs = _price(dual, lam0, best_mu, segments, deadline)
            history.append(val)
            master.add(cr, cs)
            if val > best_val:
                best_val, best_lam, best_start = val, lam0, st
        while done < iterations and time.perf_counter() < deadline:
            solved = master.solve(deadline - time.perf_counter())
            if solved is None:
                break
            lp_value, pi, lam_m, mu_m = solved
            added = 0
            # L <= LP optimum; for g = 1 the master value is above it, so a rounded bound at the
            # master value cannot improve; for g > 1 the master only bounds the grouped LP: refine.
            closed = safe_ceil(best_val) >= math.ceil(lp_value - 1e-6)
            if not closed:
                for a_try in (alpha, 0.0) if alpha > 0 else (0.0,):
                    lam = a_try * best_lam + (1.0 - a_try) * lam_m
                    mu = (
                        None
                        if mu_m is None or best_mu is None
                        else a_try * best_mu + (1.0 - a_try) * mu_m
                    )
                    val, st, cr, cs = _price(dual, lam, mu, segments, deadline)
                    done += 1
                    history.append(val)
                    if val > best_val:
                        best_val, best_lam, best_start = val, lam, st
                        best_mu = mu
                    # keep the columns that price out against the master's own duals
                    rc = _column_price(dual, lam_m, mu_m, cr, cs) - pi[cr]
                    neg = rc < -1e-9
                    added = master.add(cr[neg], cs[neg])
                    if added or time.perf_counter() > deadline:
                        break
                log.debug(
                    "cg %d (g=%d): %.1fs master %.1f (%d cols) L %.1f best %.1f added %d",
                    done,
                    g,
                    time.perf_counter() - t0,
                    lp_value,
                    master.n_cols,
                    val,
                    best_val,
                    added,
                )
            if not added:
                # the (grouped) master is optimal, or its value is reached: refine the groups
                if g <= 1:
                    converged = True
                    break
                now = time.perf_counter()
                if deadline - now < now - phase_t0:
                    break  # a finer grouping costs more than this one took: leave the time to the caller
                phase_t0 = now
                g = max(1, g // refine)
                req, start = master.columns()
                master = _Master(instance, H, g)
                master.add(req, start)
    except OutOfTime:  # the evaluation under way is dropped: the best one so far stands
        pass
    bound = proven_bound(instance, best_val)
    secs = time.perf_counter() - t0
    log.info(
        "lagrangian (cg): bound %d after %d pricings, %d columns, master %.1f (H=%d) in %.2fs",
        bound,
        done,
        master.n_cols,
        lp_value,
        H,
        secs,
    )
    return LagrangianResult(
        bound, best_val, best_lam, best_start, H, 1, done, secs, history, converged, best_mu
    )
