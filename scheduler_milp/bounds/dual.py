"""The Lagrangian dual of the time-indexed model, shared by its two solvers.

:class:`Dual` evaluates ``L(prices)`` (the memory rows and, with a batch cap, the batch rows
priced) with start rounds grouped into buckets in a way that keeps it a bound, and gives the
subgradient; :func:`price_shape` gives the starting prices and :func:`plan_and_ub` the default
plan and upper bound.  The subgradient ascent (:mod:`.subgradient`) and column generation
(:mod:`.colgen`) both read these and report a :class:`LagrangianResult` (docs/bounds.md, section 3
"Lagrangian relaxation of the time-indexed model").
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..formulations.timeindexed import OutOfTime
from ..model.instance import Instance, IntArray
from ..model.plan import Plan

FloatArray = NDArray[np.float64]


def check(deadline: float) -> None:
    """Raise :class:`~scheduler_milp.formulations.timeindexed.OutOfTime` when ``deadline`` (a
    ``time.perf_counter()`` reading) has passed: an evaluation cut short is no bound."""
    if deadline < math.inf and time.perf_counter() >= deadline:
        raise OutOfTime


@dataclass
class LagrangianResult:
    """Outcome of :func:`~.subgradient.lagrangian` and :func:`~.colgen.lagrangian_cg`.

    ``bound`` is the proven integer bound (best over all iterations); ``prices[r]`` the memory
    price of round ``r`` at the best iterate (0 beyond the horizon); ``best_starts[i]`` the
    start round request ``i`` picks against those prices (a guide for orderings, not a plan);
    ``batch_prices[r]`` the batch-cap price of round ``r`` at the same iterate (``None`` without a
    batch cap).
    """

    bound: int
    value: float
    prices: FloatArray
    best_starts: IntArray
    horizon: int
    bucket_width: int
    iterations: int
    seconds: float
    history: list[float] = field(default_factory=list)
    converged: bool = False
    batch_prices: FloatArray | None = None


class Dual:
    """Evaluate the (bucketed) Lagrangian dual function and a subgradient for given prices.

    Request ``i`` started in round ``t >= a_i`` runs in rounds ``t..t+o_i-1`` and holds
    ``mem_i(k) >= s_i + k`` in its ``k``-th round (equality when ``block_size = 1``; using the
    smaller linear profile keeps a relaxation).  Its start rounds are grouped into buckets
    ``[u, v]``, ``u = a_i + j*w``, ``v = u + w - 1``; for every start in a bucket the cost is at
    least ``u + o_i - a_i`` plus a lower bound on the prices it pays (docs/bounds.md):

    - ``o_i >= w``: every start covers rounds ``v..u+o_i-1`` with age at least ``r - v + 1``, and
      ``w - 1`` more rounds inside ``[u, v)`` or ``[u+o_i, v+o_i)`` holding at least ``s_i + 1``,
      each priced at least the minimum price of its window;
    - ``o_i < w``: its ``o_i`` rounds lie in ``[u, u+2w)``, each holding at least ``s_i + 1``.

    Starts at or after the horizon ``H`` pay no price (prices are 0 there), so the best of them is
    ``max(H, a_i)``.  The sum over requests of the minimum over buckets, minus ``M * sum(prices)``
    (and ``max_batch * sum(batch prices)``), is a lower bound for any non-negative prices.  With
    ``w = 1`` it is exactly the Lagrangian of the time-indexed model.
    """

    def __init__(self, instance: Instance, horizon: int, bucket_width: int):
        self.instance = instance
        self.H = int(horizon)
        self.w = int(bucket_width)
        self.s = instance.prompt_len.astype(np.float64)
        self.o = instance.output_len.astype(np.int64)
        self.a = instance.arrival.astype(np.int64)
        self.M = float(instance.memory_budget)
        self.cap = instance.max_batch
        # every index used below stays under H + max(o) + 2w
        self.pad = int(self.o.max()) + 2 * self.w + 2
        self.rounds = np.arange(self.H + self.w, dtype=np.float64)

    def _tables(
        self, prices: FloatArray, linear: bool
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Prefix sums ``P``, ``Q`` (of ``r * price``) and window minima, padded past ``H``."""
        w = self.w
        ext = np.concatenate((prices, np.zeros(self.pad + w)))
        P = np.concatenate(([0.0], np.cumsum(ext)))
        Q = np.concatenate(([0.0], np.cumsum(np.arange(len(ext)) * ext))) if linear else P
        if w > 1:
            win = np.lib.stride_tricks.sliding_window_view(ext, w).min(axis=1)
        else:
            win = np.zeros(len(ext))
        return P, Q, win

    def price_tables(self, lam: FloatArray, mu: FloatArray | None) -> tuple[FloatArray, ...]:
        """The tables :meth:`start_costs` reads for memory prices ``lam`` and batch prices ``mu``."""
        P, Q, win = self._tables(lam, True)
        if mu is None:
            return (P, Q, win)
        PM, _, winm = self._tables(mu, False)
        return (P, Q, win, PM, winm)

    def start_costs(
        self,
        i: int,
        tables: tuple[FloatArray, ...],
        window: tuple[IntArray, IntArray] | None = None,
    ) -> tuple[int, FloatArray] | None:
        """Request ``i``'s buckets below the horizon: the first start ``a0`` and the cost bounds.

        Bucket ``j`` starts at round ``a0 + j * w`` and ``cost[j]`` bounds every start in it (class
        doc).  ``tables`` comes from :meth:`price_tables`; ``window`` as in :meth:`evaluate`.
        None when ``a_i >= H`` (only the start beyond the horizon is left).
        """
        H, w = self.H, self.w
        a, o, s = int(self.a[i]), int(self.o[i]), float(self.s[i])
        if a >= H:
            return None
        P, Q, win = tables[0], tables[1], tables[2]
        k = -(-(H - a) // w)
        if window is not None:
            k0 = min(k - 1, max(0, (int(window[0][i]) - a) // w))
            k = max(k0 + 1, min(k, -(-(int(window[1][i]) - a) // w)))
            a0 = a + k0 * w
            k -= k0
        else:
            a0 = a
        # contiguous strided slices (views) instead of fancy indexing: the same values, much faster
        su = slice(a0, a0 + k * w, w)
        se = slice(a0 + o, a0 + o + k * w, w)
        sw = slice(a0 + w, a0 + w + k * w, w)
        u = self.rounds[su]  # the buckets' first starts, as floats
        if o >= w:
            sv = slice(a0 + w - 1, a0 + w - 1 + k * w, w)
            # (s + 1 - v) with v = u + w - 1 the bucket's last start
            cost = ((s + 2.0 - w) - u) * (P[se] - P[sv])
            cost += Q[se] - Q[sv]
            if w > 1:
                cost += (s + 1.0) * (w - 1) * np.minimum(win[su], win[se])
            if len(tables) > 3:
                PM, winm = tables[3], tables[4]
                cost += PM[se] - PM[sv]
                if w > 1:
                    cost += (w - 1) * np.minimum(winm[su], winm[se])
        else:
            cost = (s + 1.0) * o * np.minimum(win[su], win[sw])
            if len(tables) > 3:
                cost += o * np.minimum(tables[4][su], tables[4][sw])
        cost += u
        cost += float(o - a)
        return a0, cost

    def evaluate(
        self,
        lam: FloatArray,
        mu: FloatArray | None,
        window: tuple[IntArray, IntArray] | None = None,
        deadline: float = math.inf,
    ) -> tuple[float, IntArray, IntArray, IntArray]:
        """Dual value, and per request the chosen start ``u`` and its base coverage ``[v, e)``.

        ``window=(lo, hi)`` restricts request ``i``'s starts to ``[lo_i, hi_i)`` (plus the start
        beyond the horizon): the value is then NOT a bound (a minimum over fewer starts), only a
        cheap estimate used to steer the ascent between exact evaluations.  Raises
        :class:`~scheduler_milp.formulations.timeindexed.OutOfTime` when ``deadline`` passes before
        the last request is evaluated.
        """
        H, w = self.H, self.w
        tables = self.price_tables(lam, mu)
        n = self.instance.n
        total = 0.0
        start = np.empty(n, dtype=np.int64)
        cov_from = np.zeros(n, dtype=np.int64)
        cov_to = np.zeros(n, dtype=np.int64)
        for i in range(n):
            check(deadline)
            o = int(self.o[i])
            beyond_start = max(H, int(self.a[i]))
            beyond = float(beyond_start + o - int(self.a[i]))
            costs = self.start_costs(i, tables, window)
            if costs is None:
                total += beyond
                start[i] = beyond_start
                continue
            a0, cost = costs
            j = int(np.argmin(cost))
            if cost[j] < beyond:
                total += float(cost[j])
                start[i] = u = a0 + j * w
                if o >= w:
                    cov_from[i], cov_to[i] = u + w - 1, min(u + o, H)
            else:
                total += beyond
                start[i] = beyond_start
        total -= self.M * float(lam.sum())
        if mu is not None and self.cap is not None:
            total -= float(self.cap) * float(mu.sum())
        return total, start, cov_from, cov_to

    def usage(self, cov_from: IntArray, cov_to: IntArray) -> tuple[FloatArray, FloatArray]:
        """Per-round memory (linear profile from the youngest age) and count of the chosen coverages."""
        H = self.H
        keep = cov_to > cov_from
        f, t = cov_from[keep], cov_to[keep]
        const = self.s[keep] - f + 1.0  # holding s + (r - f + 1) in round r
        d0 = np.zeros(H + 1)
        d1 = np.zeros(H + 1)
        np.add.at(d0, f, const)
        np.add.at(d0, t, -const)
        np.add.at(d1, f, 1.0)
        np.add.at(d1, t, -1.0)
        count = np.cumsum(d1)[:H]
        mem = np.cumsum(d0)[:H] + np.arange(H) * count
        return mem, count


def price_shape(instance: Instance, plan: Plan | None, horizon: int) -> FloatArray:
    """A starting price shape: requests not yet finished in a heuristic plan, per unit of memory.

    A unit of memory in round ``r`` is worth about the number of requests still waiting for it,
    divided by ``M``; the ascent rescales and reshapes this.
    """
    if plan is None:
        return np.zeros(horizon)
    comp = np.sort(plan.completion)
    r = np.arange(horizon)
    unfinished = instance.n - np.searchsorted(comp, r, side="right")
    return unfinished.astype(np.float64) / float(instance.memory_budget)


def plan_and_ub(instance: Instance, plan: Plan | None, ub: int | None) -> tuple[Plan, int]:
    """``plan`` (default: the ``svf`` plan, which sets the horizon and price shape) and ``ub``
    (default: that plan's objective)."""
    if plan is None:
        from ..registry import solve

        plan = solve(instance, "svf").plan
        assert plan is not None
    return plan, plan.total_latency if ub is None else ub
