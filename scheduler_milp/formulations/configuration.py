"""The per-round configuration LP: a Dantzig-Wolfe reformulation of each round's memory row.

Direction 3 of the exact frontier (docs/exact.md, "Strengthening the relaxation").  The columns
are those of the time-indexed model (:func:`.timeindexed.build`): ``x_c`` for ``c = (i, tau)``,
request ``i`` starting in round ``tau``.  A *configuration* of round ``t`` is a set ``C`` of pairs
``(i, a)`` (request ``i`` running at age ``a``, ``1 <= a <= o_i``), at most one per request, with
``sum mem_i(a) <= M`` (block-rounded, the coefficients of the memory rows) and ``|C| <= max_batch``
when the instance has a cap.  For every round ``t`` that keeps a memory or batch row:

    sum_C lambda_tC = 1,   lambda >= 0,
    sum_{C contains (i, t - tau + 1)} lambda_tC >= x_{i,tau}   for every column (i, tau) covering t,

plus the one-start rows, the completion-count rows and the objective of the time-indexed LP.  The
memory and batch rows are dropped: they are implied (weight the linking rows by ``mem``).

Why it is a relaxation: a plan's round ``t`` holds exactly one configuration (the set of its
running ``(request, age)`` pairs), so ``lambda_tC = 1`` for it gives equality in every linking row.
The ``>=`` form has the same value as the equality form because configurations are closed under
taking subsets (drop pairs from the chosen sets until equality holds).  Rounds without a row may
be left out for the reason the model drops them: between two completions a round's configuration
maps into the next kept round's (same requests, older, never smaller), so that round's constraint
implies it; and where every set of pairs fits, any ``x`` is a mixture of configurations.  So the
value lies between the time-indexed LP on the same windows and the optimum.

Solved by column generation with HiGHS: the restricted master starts with the empty configuration
of every round and the configurations of the best fast plan, plus one penalised artificial per
linking row (so it is feasible for any upper bound); each round is priced by a multiple-choice
knapsack DP over requests on capacity ``M`` (and the batch cap) with the linking duals as profits.
At any duals ``y`` (signs enforced) the Lagrangian
``L(y) = sum_i y_i + sum_T K(T) y_T - sum_t max_C y(C) + sum_c min(0, reduced cost of x_c)`` is a
lower bound (the convexity rows and ``0 <= x <= 1`` are kept in the subproblem); at convergence it
equals the master value.  The time-indexed LP's duals, mapped onto the linking rows
(``lambda_t mem``), give ``L >= `` the LP value, so the bound starts there; pricing is smoothed
towards the best-bound duals (Wentges).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..baselines.best import best_fast_plan
from ..model.deadline import Deadline
from ..model.instance import Instance, IntArray
from .lp import _highs_model, add_rows, highspy_inf, starts_model
from .timeindexed import TimeIndexed, build, check_plan_fits, round_entries

#: a configuration prices out when its reduced cost is below ``-PRICING_TOLERANCE``
PRICING_TOLERANCE = 1e-7

#: column generation stops when the master's value and the Lagrangian bound are this close
#: (relative to the value)
GAP_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ConfigurationLp:
    """What :func:`configuration_lp` found.

    ``value`` is the configuration LP's value when ``converged`` (see :func:`configuration_lp`);
    otherwise the best Lagrangian bound seen (``bound``, never below ``lp_value``).  Either way it
    is a lower bound on every plan of objective at most the upper bound.  ``master`` is the last
    restricted master's value (at least the configuration LP's while artificials are unused),
    ``lp_value`` the time-indexed LP with its completion-count rows on the same windows,
    ``columns`` the configurations in the master at the end, ``rounds`` the rounds priced.
    """

    value: float
    bound: float
    master: float
    lp_value: float
    iterations: int
    columns: int
    rounds: int
    converged: bool
    seconds: float


def best_configuration(
    groups: IntArray,
    weights: IntArray,
    profits: np.ndarray,
    capacity: int,
    max_count: int | None = None,
) -> tuple[float, IntArray]:
    """Multiple-choice knapsack: items with at most one per group, total weight ``<= capacity``
    and at most ``max_count`` items; returns ``(largest total profit, chosen item indices)``.

    Items of non-positive profit are never chosen (the empty set has profit 0).  DP over the
    groups on (count, weight), exact for integer weights.
    """
    profits = np.asarray(profits, dtype=np.float64)
    useful = np.flatnonzero((profits > 0) & (weights <= capacity))
    if not useful.size:
        return 0.0, np.zeros(0, dtype=np.int64)
    order = useful[np.argsort(groups[useful], kind="stable")]
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    members = np.split(order, bounds)
    count_dim = 1 if max_count is None else min(max_count, len(members)) + 1
    step = 0 if max_count is None else 1
    dp = np.full((count_dim, capacity + 1), -np.inf)
    dp[0, 0] = 0.0
    choices: list[np.ndarray] = []
    for items in members:
        # candidate 0: the group unused; candidate j: its item j added to every state
        cand = np.full((len(items) + 1, *dp.shape), -np.inf)
        cand[0] = dp
        for j, item in enumerate(items.tolist(), start=1):
            w = int(weights[item])
            cand[j, step:, w:] = dp[: count_dim - step, : capacity + 1 - w] + profits[item]
        pick = np.argmax(cand, axis=0)  # ties: the group unused, then the first item
        dp = cand.max(axis=0)
        choices.append(np.where(pick > 0, items[np.maximum(pick - 1, 0)], -1))
    flat = int(np.argmax(dp))
    best = float(dp.flat[flat])
    k, w = divmod(flat, capacity + 1)
    chosen = []
    for choice in reversed(choices):
        item = int(choice[k, w])
        if item >= 0:
            chosen.append(item)
            w -= int(weights[item])
            k -= step
    return best, np.asarray(sorted(chosen), dtype=np.int64)


@dataclass(frozen=True, eq=False)
class _Links:
    """The linking rows, one per entry ``e``: column ``col[e]`` covers a kept round and holds
    ``mem[e]`` there; the entries of the ``k``-th kept round are ``offset[k]:offset[k + 1]``."""

    rounds: IntArray  # the kept rounds, ascending
    offset: IntArray
    col: IntArray
    mem: IntArray


def _links(model: TimeIndexed) -> _Links:
    """Every (column, round) entry of the rounds that keep a memory or batch row."""
    kept = model.memory_rows.round_of_row
    if model.batch_rows is not None:
        kept = np.union1d(kept, model.batch_rows.round_of_row)
    kept = np.asarray(kept, dtype=np.int64)
    entries = round_entries(model)
    cols, mems, sizes = [], [], []
    for r in kept.tolist():
        c, m = entries.row(r)
        cols.append(c)
        mems.append(m)
        sizes.append(len(c))
    offset = np.zeros(len(kept) + 1, dtype=np.int64)
    offset[1:] = np.cumsum(sizes)
    empty = np.zeros(0, dtype=np.int64)
    return _Links(
        kept,
        offset,
        np.concatenate(cols).astype(np.int64) if cols else empty,
        np.concatenate(mems).astype(np.int64) if mems else empty,
    )


class _Master:
    """The restricted master in HiGHS: rows (one-start, count, convexity, linking), columns
    (x, artificials, configurations)."""

    def __init__(self, model: TimeIndexed, links: _Links, penalty: float):

        self.model, self.links = model, links
        inst = model.instance
        n, n_cols = inst.n, model.n_cols
        n_ent, n_rounds = len(links.col), len(links.rounds)
        h = starts_model(model, threads=1)
        # columns are added between solves: primal simplex from the last basis
        h.setOptionValue("simplex_strategy", 4)
        h.setOptionValue("presolve", "off")
        self.h = h
        empty_i, empty_f = np.zeros(0, dtype=np.int32), np.zeros(0)
        # the artificials of the linking rows come after the start columns
        h.addCols(
            n_ent,
            np.full(n_ent, penalty),
            np.zeros(n_ent),
            np.full(n_ent, highspy_inf()),
            0,
            empty_i,
            empty_i,
            empty_f,
        )
        self.art = np.arange(n_cols, n_cols + n_ent, dtype=np.int32)
        self.count = model.completion_count_rows()
        cnt = self.count
        k_rhs = np.asarray(cnt.rhs_per_row, dtype=float) if cnt.n_rows else np.zeros(0)
        self.count_rhs = k_rhs
        add_rows(h, cnt)
        self.conv0 = n + cnt.n_rows
        h.addRows(
            n_rounds,
            np.ones(n_rounds),
            np.ones(n_rounds),
            0,
            np.zeros(n_rounds, np.int32),
            empty_i,
            empty_f,
        )
        self.link0 = self.conv0 + n_rounds
        # linking row e: -x_col[e] + s_e + sum_{C contains e} lambda_C >= 0
        idx = np.stack([links.col, n_cols + np.arange(n_ent)], axis=1).reshape(-1)
        val = np.tile([-1.0, 1.0], n_ent)
        h.addRows(
            n_ent,
            np.zeros(n_ent),
            np.full(n_ent, highspy_inf()),
            2 * n_ent,
            (2 * np.arange(n_ent)).astype(np.int32),
            idx.astype(np.int32),
            val,
        )
        self.n_configs = 0
        self.seen: set[tuple[int, bytes]] = set()
        # x's coefficients in the count rows, for the Lagrangian (rows, entries by column)
        self._count_row_of = np.repeat(np.arange(cnt.n_rows), np.diff(cnt.indptr))

    def add(self, k: int, entries: IntArray) -> bool:
        """Add the configuration ``entries`` (linking-row indices) of kept round ``k``; False if
        it is already there."""
        key = (k, np.asarray(entries, dtype=np.int64).tobytes())
        if key in self.seen:
            return False
        self.seen.add(key)
        rows = np.concatenate([[self.conv0 + k], self.link0 + np.asarray(entries)]).astype(np.int32)
        self.h.addCol(0.0, 0.0, highspy_inf(), len(rows), rows, np.ones(len(rows)))
        self.n_configs += 1
        return True

    def solve(self, time_left: float | None) -> tuple[float, np.ndarray, np.ndarray]:
        """``(value, column values, row duals)`` of the restricted master."""
        import highspy

        if time_left is not None:
            # HiGHS's clock runs over all solves of one object: the limit is on its total
            self.h.setOptionValue("time_limit", self.h.getRunTime() + max(time_left, 0.01))
        self.h.run()
        if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise TimeoutError(f"restricted master not solved: {self.h.getModelStatus()}")
        sol = self.h.getSolution()
        return (
            float(self.h.getInfo().objective_function_value),
            np.asarray(sol.col_value, dtype=np.float64),
            np.asarray(sol.row_dual, dtype=np.float64),
        )

    def signed(self, dual: np.ndarray) -> np.ndarray:
        """The row duals with the signs of a minimisation enforced: count rows (``<=``) ``<= 0``,
        linking rows (``>=``) ``>= 0``; the one-start and convexity rows are equalities."""
        y = dual.copy()
        n = self.model.instance.n
        y[n : self.conv0] = np.minimum(y[n : self.conv0], 0.0)
        y[self.link0 :] = np.maximum(y[self.link0 :], 0.0)
        return y

    def lagrangian(self, dual: np.ndarray, best: np.ndarray) -> float:
        """``L(y)`` (module docstring) at duals ``y`` of the right signs (:meth:`signed`);
        ``best[k]`` is the largest linking profit of a configuration of kept round ``k`` at ``y``."""
        model, n = self.model, self.model.instance.n
        y_one = dual[:n]
        y_cnt = dual[n : self.conv0]
        y_link = dual[self.link0 :]
        rc = model.col_cost.astype(np.float64) - y_one[model.col_request]
        if len(y_cnt):
            rc -= np.bincount(
                self.count.indices, weights=y_cnt[self._count_row_of], minlength=model.n_cols
            )
        rc += np.bincount(self.links.col, weights=y_link, minlength=model.n_cols)
        return float(y_one.sum() + self.count_rhs @ y_cnt - best.sum() + np.minimum(rc, 0.0).sum())


def _lp_duals(model: TimeIndexed, links: _Links, master: _Master) -> tuple[float, np.ndarray]:
    """The time-indexed LP's value and its duals mapped onto the master's rows.

    A memory price ``lambda_t`` (and batch price ``beta_t``) becomes the linking dual
    ``lambda_t mem + beta_t`` of every entry of round ``t``; the one-start and count duals carry
    over.  Every configuration holds at most ``M`` (and ``max_batch``) in round ``t``, so the
    Lagrangian at these duals is at least the LP value: column generation starts its bound there.
    """
    import highspy

    h = _highs_model(model, None, 1, True)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise TimeoutError(f"time-indexed LP not solved: {h.getModelStatus()}")
    dual = np.asarray(h.getSolution().row_dual, dtype=np.float64)
    n = model.instance.n
    y = np.zeros(master.h.getNumRow(), dtype=np.float64)
    y[:n] = dual[:n]
    pos = n
    horizon = model.horizon
    per_round: list[np.ndarray] = []
    for rows in (model.memory_rows, model.batch_rows):
        price = np.zeros(horizon, dtype=np.float64)
        if rows is not None:
            price[rows.round_of_row] = np.maximum(-dual[pos : pos + rows.n_rows], 0.0)
            pos += rows.n_rows
        per_round.append(price)
    y[n : master.conv0] = np.minimum(dual[pos : pos + master.conv0 - n], 0.0)
    round_of = np.repeat(links.rounds, np.diff(links.offset))
    y[master.link0 :] = per_round[0][round_of] * links.mem + per_round[1][round_of]
    return float(h.getInfo().objective_function_value), y


def configuration_lp(
    instance: Instance,
    upper_bound: int | None = None,
    max_iterations: int = 2000,
    deadline: Deadline | None = None,
    smoothing: float = 0.8,
) -> ConfigurationLp:
    """The per-round configuration LP of the time-indexed model with windows for ``upper_bound``
    (``None``: the best fast plan's objective), by column generation (module docstring).

    Stops at convergence, after ``max_iterations`` master solves or at ``deadline``; the result
    says which (``converged``) and always carries a valid lower bound (``value``, ``bound``), at
    least the time-indexed LP's (``lp_value``): the LP's duals, mapped onto the master's rows, are
    the first stability centre.  ``smoothing`` (Wentges): price at this mix of the centre (the
    duals of the best bound so far) and the master's duals; when that finds no configuration of
    negative reduced cost at the master's duals, price at the master's duals themselves.
    Converged means: no configuration prices out at the master's duals and no artificial is in
    use (``value`` is then the master's optimum), or the master's value and the bound meet within
    ``GAP_TOLERANCE`` (``value`` is then the bound).
    """
    t0 = time.perf_counter()
    inst = instance
    plan = best_fast_plan(inst, deadline=deadline)[1]
    if upper_bound is None:
        upper_bound = plan.total_latency
    model = build(inst, int(upper_bound))
    links = _links(model)
    n_rounds = len(links.rounds)
    penalty = 10.0 * float(upper_bound) + 10.0
    master = _Master(model, links, penalty)
    lp_value, center = _lp_duals(model, links, master)
    plan_cols = (
        set(model.column_of(plan.start_round).tolist()) if check_plan_fits(model, plan) else set()
    )
    for k in range(n_rounds):
        lo, hi = int(links.offset[k]), int(links.offset[k + 1])
        master.add(k, np.zeros(0, dtype=np.int64))
        in_plan = [e for e in range(lo, hi) if int(links.col[e]) in plan_cols]
        if in_plan:
            master.add(k, np.asarray(in_plan, dtype=np.int64))
    budget, cap = inst.memory_budget, inst.max_batch
    groups = model.col_request[links.col]

    def price(y: np.ndarray) -> tuple[np.ndarray, list[IntArray]]:
        """Per kept round: the largest linking profit at duals ``y`` and its configuration."""
        best = np.zeros(n_rounds)
        chosen: list[IntArray] = []
        y_link = y[master.link0 :]
        for k in range(n_rounds):
            lo, hi = int(links.offset[k]), int(links.offset[k + 1])
            best[k], items = best_configuration(
                groups[lo:hi], links.mem[lo:hi], y_link[lo:hi], budget, cap
            )
            chosen.append(lo + items)
        return best, chosen

    best_bound = master.lagrangian(center, price(center)[0])
    master_value = np.inf
    converged = False
    value = best_bound
    iterations = 0
    while iterations < max_iterations:
        if deadline is not None and deadline.expired():
            break
        iterations += 1
        try:
            master_value, sol, dual = master.solve(
                None if deadline is None else deadline.remaining_or_none()
            )
        except TimeoutError:
            break
        clean = float(sol[master.art].sum()) <= 1e-7
        if clean and master_value - best_bound <= GAP_TOLERANCE * max(1.0, abs(master_value)):
            converged, value = True, best_bound
            break
        y_master = master.signed(dual)
        mu = dual[master.conv0 : master.link0]
        weight = smoothing
        added = 0
        while True:
            y = weight * center + (1.0 - weight) * y_master if weight > 0.0 else y_master
            best, chosen = price(y)
            bound = master.lagrangian(y, best)
            if bound > best_bound:
                best_bound, center = bound, y
            y_link = y_master[master.link0 :]
            for k in range(n_rounds):
                reduced = -mu[k] - float(y_link[chosen[k]].sum())
                if reduced < -PRICING_TOLERANCE and master.add(k, chosen[k]):
                    added += 1
            if added or weight == 0.0:
                break
            weight = 0.0  # mispricing: price at the master's own duals
        if added:
            continue
        if not clean:  # penalty too small: raise it and go on
            penalty *= 10.0
            master.h.changeColsCost(len(master.art), master.art, np.full(len(master.art), penalty))
            continue
        converged, value = True, master_value
        break
    return ConfigurationLp(
        value=float(value),
        bound=float(best_bound),
        master=float(master_value),
        lp_value=lp_value,
        iterations=iterations,
        columns=master.n_configs,
        rounds=n_rounds,
        converged=converged,
        seconds=time.perf_counter() - t0,
    )
