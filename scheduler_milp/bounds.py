"""Lower bounds on the optimal total latency that scale to tens of thousands of requests.

Each bound is a function ``(instance, ...) -> int`` whose proof is written in ``docs/bounds.md``;
each is also a registered method of kind ``bound`` that returns the best fast heuristic plan with
that bound, so that users get a certified gap.

- :func:`volume_bound`: sorted completion times against prefix sums of memory-time volumes,
  sorted ``a_i + o_i`` and the batch cap (valid with arrivals, ``block_size`` and ``max_batch``).
- :func:`busy_time_bound`: mean-busy-time bound (volume packed smallest first, plus each
  request's offset between its memory-weighted mean round and its completion).
- :func:`lagrangian`: the Lagrangian relaxation of the per-round memory (and batch) rows of the
  time-indexed model, with start rounds grouped into buckets in a way that keeps it a bound;
  projected subgradient ascent with Polyak steps.  Also returns the prices and the per-request
  start suggestions (for bound-guided orderings).
- :func:`best_lower_bound`: the best of all of them within a time budget, for ``auto``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .instance import Instance, IntArray
from .plan import Plan
from .result import SolveOptions, SolveResult, StopReason, round_bound

log = logging.getLogger("scheduler_milp.bounds")

FloatArray = NDArray[np.float64]

# Heuristics whose best plan is reported beside a bound (fast: one priority walk each).
PLAN_METHODS = ("sf", "svf", "fcfs", "mcsf", "size")


def _safe_ceil(value: float) -> int:
    """``value`` (a float lower bound) rounded up to an integer that is still a bound (0 at least).

    Float sums of up to ~1e10 carry a relative error of ~1e-15: a relative margin of 1e-9 (and
    1e-6 absolute) before rounding up keeps the rounding safe.
    """
    return round_bound(value - 1e-9 * abs(value) - 1e-6) or 0


def _proven_bound(instance: Instance, value: float) -> int:
    """A float lower bound ``value`` on the total latency as a proven integer bound, never below ``sum o_i``."""
    return max(_safe_ceil(value), instance.trivial_lower_bound())


# ---------------------------------------------------------------------- volume bound
def volume_bound_terms(instance: Instance) -> IntArray:
    """``lb_k`` for ``k = 1..n``: a lower bound on the ``k``-th smallest completion round.

    ``lb_k = max(ceil(V_(k) / M), (a+o)_(k), ceil(O_(k) / max_batch))`` where ``V_(k)`` is the sum
    of the ``k`` smallest volumes, ``(a+o)_(k)`` the ``k``-th smallest ``a_i + o_i`` and ``O_(k)``
    the sum of the ``k`` smallest output lengths (docs/bounds.md).
    """
    m = instance.memory_budget
    vol_prefix = np.cumsum(np.sort(instance.volume))
    by_volume = -(-vol_prefix // m)
    earliest = np.sort(instance.arrival + instance.output_len)
    terms = np.maximum(by_volume, earliest)
    if instance.max_batch is not None:
        out_prefix = np.cumsum(np.sort(instance.output_len))
        terms = np.maximum(terms, -(-out_prefix // instance.max_batch))
    return terms.astype(np.int64)


def volume_bound(instance: Instance) -> int:
    """The volume bound ``sum_k lb_k - sum_i a_i`` on the total latency (docs/bounds.md)."""
    total = int(volume_bound_terms(instance).sum()) - int(instance.arrival.sum())
    return max(total, instance.trivial_lower_bound())


def _mean_offsets(instance: Instance) -> FloatArray:
    """``c_i = sum_k mem_i(k) (k - 1/2) / V_i``: the memory-weighted mean of a request's rounds."""
    s = instance.prompt_len.astype(np.float64)
    o = instance.output_len.astype(np.float64)
    vol = instance.volume.astype(np.float64)
    if instance.block_size == 1:
        # sum_k (s + k)(k - 1/2) = s o^2 / 2 + o(o+1)(2o+1)/6 - o(o+1)/4
        moment = s * o * o / 2.0 + o * (o + 1) * (2 * o + 1) / 6.0 - o * (o + 1) / 4.0
        return np.asarray(moment / vol, dtype=np.float64)
    out = np.empty(instance.n)
    for i in range(instance.n):
        k = np.arange(1, int(instance.output_len[i]) + 1, dtype=np.float64)
        mem = np.asarray(instance.mem(i, np.arange(1, int(instance.output_len[i]) + 1)), dtype=np.float64)
        out[i] = float((mem * (k - 0.5)).sum()) / float(vol[i])
    return out


def _moment_bound(volume: FloatArray, cap: FloatArray, capacity: float) -> float:
    """Lower bound on ``sum_i mu_i`` (``mu_i``: volume-weighted mean time of item ``i``).

    Items have volume ``V_i``, are processed at rate at most ``cap_i`` each and ``capacity`` in
    all.  Sorted by volume ascending (weights ``w_k = 1/V_(k)`` descending), Abel summation gives
    ``sum_i mu_i = sum_k (w_k - w_(k+1)) G_k`` with ``G_k`` the first moment of the ``k`` smallest
    items' processing, and ``G_k >= P_k^2 / (2 R_k)`` with ``P_k`` their total volume and
    ``R_k = min(capacity, sum of their caps)`` their largest joint rate (docs/bounds.md).
    """
    order = np.argsort(volume, kind="stable")
    v = volume[order]
    prefix = np.cumsum(v)
    rate = np.minimum(capacity, np.cumsum(cap[order]))
    w = 1.0 / v
    dw = w - np.concatenate((w[1:], [0.0]))
    return float((dw * prefix * prefix / (2.0 * rate)).sum())


def busy_time_bound(instance: Instance) -> int:
    """The mean-busy-time bound (docs/bounds.md).

    With ``mu_i`` the memory-weighted mean time of request ``i``'s rounds, ``C_i = mu_i + o_i - c_i``
    (:func:`_mean_offsets`), and ``sum_i mu_i`` is bounded by :func:`_moment_bound` with volumes
    ``V_i``, per-request rates at most the peak memory and total rate ``M``.  The batch cap gives
    the same argument with unit heights: ``sum_i C_i >= moment(o, 1, max_batch) + sum_i o_i / 2``.
    Arrivals are ignored (a relaxation) and subtracted at the end.
    """
    m = float(instance.memory_budget)
    vol = instance.volume.astype(np.float64)
    peak = instance.peak_memory.astype(np.float64)
    value = _moment_bound(vol, peak, m) + float((instance.output_len - _mean_offsets(instance)).sum())
    if instance.max_batch is not None:
        out = instance.output_len.astype(np.float64)
        by_batch = _moment_bound(out, np.ones(instance.n), float(instance.max_batch)) + float(out.sum()) / 2.0
        value = max(value, by_batch)
    value -= float(instance.arrival.sum())
    return _proven_bound(instance, value)


# ---------------------------------------------------------------------- Lagrangian
@dataclass
class LagrangianResult:
    """Outcome of :func:`lagrangian`.

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


def _has_highspy() -> bool:
    try:
        import highspy  # noqa: F401
    except ImportError:  # pragma: no cover - highspy is a dependency
        return False
    return True


class _Dual:
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

    def _tables(self, prices: FloatArray, linear: bool) -> tuple[FloatArray, FloatArray, FloatArray]:
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
        self, i: int, tables: tuple[FloatArray, ...], window: tuple[IntArray, IntArray] | None = None
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
        self, lam: FloatArray, mu: FloatArray | None, window: tuple[IntArray, IntArray] | None = None
    ) -> tuple[float, IntArray, IntArray, IntArray]:
        """Dual value, and per request the chosen start ``u`` and its base coverage ``[v, e)``.

        ``window=(lo, hi)`` restricts request ``i``'s starts to ``[lo_i, hi_i)`` (plus the start
        beyond the horizon): the value is then NOT a bound (a minimum over fewer starts), only a
        cheap estimate used to steer the ascent between exact evaluations.
        """
        H, w = self.H, self.w
        tables = self.price_tables(lam, mu)
        n = self.instance.n
        total = 0.0
        start = np.empty(n, dtype=np.int64)
        cov_from = np.zeros(n, dtype=np.int64)
        cov_to = np.zeros(n, dtype=np.int64)
        for i in range(n):
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


def _initial_prices(instance: Instance, plan: Plan | None, horizon: int) -> FloatArray:
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


def _plan_and_ub(instance: Instance, plan: Plan | None, ub: int | None) -> tuple[Plan, int]:
    """``plan`` (default: the ``svf`` plan, which sets the horizon and price shape) and ``ub``
    (default: that plan's objective)."""
    if plan is None:
        from .registry import solve

        plan = solve(instance, "svf").plan
        assert plan is not None
    return plan, plan.total_latency if ub is None else ub


def lagrangian(
    instance: Instance,
    ub: int | None = None,
    iterations: int = 200,
    time_limit: float | None = 30.0,
    horizon: int | None = None,
    bucket_width: int | None = None,
    max_cells: int = 100_000_000,
    plan: Plan | None = None,
    level: float = 0.05,
    coarse_prices: int | None = None,
    window_radius: int | None = -1,
    exact_every: int = 4,
    initial_prices: FloatArray | None = None,
    method: str = "auto",
    initial_batch_prices: FloatArray | None = None,
    cg_share: float = 0.5,
    polish_level: float = 0.001,
) -> LagrangianResult:
    """Lagrangian bound of the time-indexed model by projected subgradient ascent (docs/bounds.md).

    ``ub`` (a feasible objective, e.g. the best heuristic's) drives the Polyak step; ``plan`` (a
    feasible plan) gives the default horizon (its makespan: any horizon is valid, prices beyond
    it are simply 0) and the initial prices.  ``bucket_width`` defaults to the smallest width
    keeping ``n * buckets <= max_cells``.  Stops after ``iterations`` or ``time_limit`` seconds.
    With ``coarse_prices`` set, prices are first kept constant over groups of rounds (at least
    that many groups), then refined by factors of 4 down to single rounds, each phase with an
    equal share of the iterations and time (off by default: it did not pay on the benchmarks).
    ``window_radius``: between exact evaluations (every ``exact_every`` iterations) steer with
    cheap ones restricted to starts within that many rounds of the last exact choice; -1 picks
    a radius when ``n * H`` is large, None always evaluates exactly.  Only exact evaluations
    count for the bound.  ``initial_prices`` replaces the heuristic starting shape, and
    ``initial_batch_prices`` the zero batch prices (with a batch cap).

    ``method``: ``"subgradient"`` is the ascent above alone; ``"auto"`` (default) and ``"cg"``
    first run :func:`lagrangian_cg` (column generation on the time-indexed LP with grouped
    rounds) for ``cg_share`` of the time, and unless it converged polish its best prices with the
    ascent (Polyak level ``polish_level``) for the rest; both report the better bound.  Column
    generation needs bucket width 1, no ``coarse_prices`` and no ``initial_prices``; otherwise
    (e.g. for very large ``n * H``) the ascent alone runs.
    """
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + time_limit
    plan, ub = _plan_and_ub(instance, plan, ub)
    H = int(horizon if horizon is not None else plan.makespan)
    H = max(H, 1)
    w = bucket_width or max(1, math.ceil(H * instance.n / max_cells))
    if method not in ("auto", "cg", "subgradient"):
        raise ValueError(f"unknown Lagrangian method {method!r}")
    cg: LagrangianResult | None = None
    if method != "subgradient" and w == 1 and coarse_prices is None and initial_prices is None and _has_highspy():
        # column generation on the grouped LP first (fast, good prices), then subgradient polish
        cg_limit = None if time_limit is None else cg_share * time_limit
        cg = lagrangian_cg(instance, ub, cg_limit, H, plan, iterations=iterations)
        if ub - cg.value <= 0.5 or cg.converged:
            return cg
        rest = None if time_limit is None else max(0.0, deadline - time.perf_counter())
        # started near the optimum: aim the Polyak level just above the best value
        sub = lagrangian(
            instance, ub, iterations, rest, H, 1, max_cells, plan, min(level, polish_level), None, window_radius, exact_every,
            initial_prices=cg.prices, method="subgradient", initial_batch_prices=cg.batch_prices,
        )
        best = sub if sub.value > cg.value else cg
        return LagrangianResult(
            max(sub.bound, cg.bound), best.value, best.prices, best.best_starts, H, 1,
            cg.iterations + sub.iterations, time.perf_counter() - t0, cg.history + sub.history,
            batch_prices=best.batch_prices,
        )
    dual = _Dual(instance, H, w)
    if initial_prices is None:
        lam = _initial_prices(instance, plan, H)
    else:
        lam = np.zeros(H)
        lam[: min(H, len(initial_prices))] = np.maximum(0.0, initial_prices[:H])
    use_mu = instance.max_batch is not None
    mu = np.zeros(H) if use_mu else None
    batch_scale = float(instance.memory_budget) / float(instance.max_batch) if instance.max_batch else 1.0
    if mu is not None and initial_batch_prices is not None:
        # the polish after column generation starts from both of its price vectors (with zero
        # batch prices the first steps fell far below its bound: 2.66 against 2.98 million)
        mu[: min(H, len(initial_batch_prices))] = np.maximum(0.0, initial_batch_prices[:H])

    # The initial shape is only a guess at the scale: try a few multiples and keep the best.
    best_val = -math.inf
    best_lam = np.zeros(H)
    best_mu = None if mu is None else mu.copy()
    best_start = np.asarray(instance.arrival, dtype=np.int64).copy()
    history: list[float] = []
    for scale in (0.0, 0.25, 0.5, 1.0, 2.0):
        val, st, _, _ = dual.evaluate(lam * scale, mu)
        history.append(val)
        if val > best_val:
            best_val, best_lam, best_start = val, lam * scale, st
    ub_f = float(ub)
    radius = window_radius
    if radius is not None and radius < 0:
        radius = max(256, H // 16) if H * instance.n > 4_000_000 and 2 * max(256, H // 16) < H else None
    # Coarse-to-fine: prices constant over groups of g rounds first (a few hundred free prices
    # converge fast; any non-negative prices give a valid bound), then g / 4, ..., 1.
    groups = [1]
    while coarse_prices and H // (groups[-1] * 4) >= coarse_prices:
        groups.append(groups[-1] * 4)
    groups.reverse()
    done = 0
    for phase, g in enumerate(groups):
        phase_deadline = t0 + (deadline - t0) * (phase + 1) / len(groups) if math.isfinite(deadline) else math.inf
        phase_iters = max(1, (iterations - done) // (len(groups) - phase))
        starts = np.arange(0, H, g)
        lam_c = np.add.reduceat(best_lam, starts) / np.diff(np.append(starts, H))
        lam = np.repeat(lam_c, g)[:H]
        theta = 1.0
        stall = 0
        # Level target: the Polyak step aims at best + delta, not at UB, which may be far above
        # the dual optimum; delta halves whenever the ascent stalls.  level=0 aims at UB.
        delta = level * abs(best_val) if level > 0 else math.inf
        center = best_start
        for it in range(phase_iters):
            if time.perf_counter() > min(deadline, phase_deadline):
                break
            exact = radius is None or it % exact_every == 0
            if exact or radius is None:
                val, st, cf, ct = dual.evaluate(lam, mu)
                center = st
            else:
                # cheap steering step: only starts near the last exact choice (not a bound)
                val, _, cf, ct = dual.evaluate(lam, mu, window=(center - radius, center + radius))
            done += 1
            if exact:
                history.append(val)
                if val > best_val + 1e-9 * max(1.0, abs(best_val)):
                    best_val, best_lam, best_start = val, lam.copy(), st
                    best_mu = None if mu is None else mu.copy()
                    stall = 0
                else:
                    stall += 1
                    if stall >= (5 if radius is None else 2):
                        if level > 0:
                            delta *= 0.5
                        else:
                            theta *= 0.5
                        stall = 0
            if ub_f - best_val <= 0.5 or theta < 1e-4 or delta < 1e-5 * abs(best_val):
                break
            mem, count = dual.usage(cf, ct)
            grad = np.add.reduceat(mem - dual.M, starts)
            # projected direction: a zero price with a negative subgradient stays at zero
            grad = np.where((lam_c <= 0) & (grad < 0), 0.0, grad)
            norm = float(grad @ grad)
            gb = None
            if mu is not None and instance.max_batch is not None:
                # The batch rows scaled by k = M / max_batch (k (count - cap) <= 0, price mu / k):
                # unscaled, their subgradients (requests) are tiny beside the memory rows' (tokens),
                # so the batch prices never left 0 (1e-5 where column generation has 10-30).
                gb = batch_scale * (count - float(instance.max_batch))
                gb = np.where((mu <= 0) & (gb < 0), 0.0, gb)
                norm += float(gb @ gb)
            if norm <= 0:
                break  # a zero subgradient: these prices are optimal
            target = min(ub_f, best_val + delta)
            # a restricted (over-estimated) value may already exceed the target: keep moving a little
            step = theta * max(target - val, 0.1 * min(delta, ub_f - best_val)) / norm
            lam_c = np.maximum(0.0, lam_c + step * grad)
            lam = np.repeat(lam_c, g)[:H]
            if mu is not None and gb is not None:
                mu = np.maximum(0.0, mu + step * batch_scale * gb)
        if mu is not None and best_mu is not None:
            mu = best_mu.copy()
    bound = _proven_bound(instance, best_val)
    secs = time.perf_counter() - t0
    log.info("lagrangian: bound %d after %d iterations (H=%d, w=%d) in %.2fs", bound, done, H, w, secs)
    return LagrangianResult(bound, best_val, best_lam, best_start, H, w, done, secs, history, batch_prices=best_mu)


# ---------------------------------------------------------------------- column generation
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

        from .formulations.lp import _quiet_stdout

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
        h.addRows(G, np.full(G, -inf), size * float(instance.memory_budget), 0, empty_i, empty_i, np.zeros(0))
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
        first = first[np.fromiter((int(k) not in self.keys for k in keys[first]), dtype=bool, count=len(first))]
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

    def solve(self, time_limit: float) -> tuple[float, FloatArray, FloatArray, FloatArray | None] | None:
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
        mu = np.repeat(np.maximum(0.0, -dual[n + G : n + 2 * G]), g)[:H] if self.cap is not None else None
        return float(h.getInfo().objective_function_value), pi, lam, mu

    @property
    def n_cols(self) -> int:
        return int(self.h.getNumCol())


def _price(dual: _Dual, lam: FloatArray, mu: FloatArray | None, segments: int) -> tuple[float, IntArray, IntArray, IntArray]:
    """Exact Lagrangian ``L(lam, mu)`` (bucket width 1) and candidate columns.

    Returns the value, each request's best start (``max(H, a_i)`` when no start below the
    horizon is cheaper) and candidate columns ``(request, start)``: per request the cheapest
    start below the horizon in each of ``segments`` equal parts of ``[a_i, H)``.
    """
    H = dual.H
    tables = dual.price_tables(lam, mu)
    n = dual.instance.n
    total = 0.0
    best = np.empty(n, dtype=np.int64)
    cand_req: list[int] = []
    cand_start: list[int] = []
    for i in range(n):
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


def _column_price(dual: _Dual, lam: FloatArray, mu: FloatArray | None, req: IntArray, start: IntArray) -> FloatArray:
    """Cost plus price of the columns ``(req[j], start[j])`` (starts below the horizon)."""
    P, Q, _ = dual._tables(lam, True)
    o = dual.o[req]
    e = start + o
    t = start.astype(np.float64)
    price = (dual.s[req] + 1.0 - t) * (P[e] - P[start]) + (Q[e] - Q[start]) + (t + (o - dual.a[req]))
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
    Stops after ``iterations`` pricings or ``time_limit`` seconds (HiGHS gets the time left).
    """
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + time_limit
    plan, ub = _plan_and_ub(instance, plan, ub)
    H = max(int(horizon if horizon is not None else plan.makespan), 1)
    dual = _Dual(instance, H, 1)
    master = _Master(instance, H, group or max(1, H // 256))
    start0 = np.asarray(plan.start_round, dtype=np.int64)
    below = start0 < H
    master.add(np.flatnonzero(below).astype(np.int64), start0[below])
    use_mu = instance.max_batch is not None
    shape = _initial_prices(instance, plan, H)
    best_val = -math.inf
    best_lam = np.zeros(H)
    best_mu: FloatArray | None = np.zeros(H) if use_mu else None
    best_start = np.asarray(instance.arrival, dtype=np.int64).copy()
    history: list[float] = []
    for scale in (0.0, 0.5, 1.0):
        lam0 = shape * scale
        val, st, cr, cs = _price(dual, lam0, best_mu, segments)
        history.append(val)
        master.add(cr, cs)
        if val > best_val:
            best_val, best_lam, best_start = val, lam0, st
    done = 0
    alpha = smoothing
    lp_value = math.inf
    converged = False
    g = master.g
    phase_t0 = t0
    while done < iterations and time.perf_counter() < deadline:
        solved = master.solve(deadline - time.perf_counter())
        if solved is None:
            break
        lp_value, pi, lam_m, mu_m = solved
        added = 0
        # L <= LP optimum; for g = 1 the master value is above it, so a rounded bound at the
        # master value cannot improve; for g > 1 the master only bounds the grouped LP: refine.
        closed = _safe_ceil(best_val) >= math.ceil(lp_value - 1e-6)
        if not closed:
            for a_try in (alpha, 0.0) if alpha > 0 else (0.0,):
                lam = a_try * best_lam + (1.0 - a_try) * lam_m
                mu = None if mu_m is None or best_mu is None else a_try * best_mu + (1.0 - a_try) * mu_m
                val, st, cr, cs = _price(dual, lam, mu, segments)
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
                done, g, time.perf_counter() - t0, lp_value, master.n_cols, val, best_val, added,
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
    bound = _proven_bound(instance, best_val)
    secs = time.perf_counter() - t0
    log.info("lagrangian (cg): bound %d after %d pricings, %d columns, master %.1f (H=%d) in %.2fs", bound, done, master.n_cols, lp_value, H, secs)
    return LagrangianResult(bound, best_val, best_lam, best_start, H, 1, done, secs, history, converged, best_mu)


# ---------------------------------------------------------------------- combined
#: the sawtooth lift at the ascent's prices is tried when ``n * H`` is at most this (about 1 s per 1.2e7 pairs,
#: compiled, with the cuts' ages; 3e7 until the eleventh session, like the ascent's ``max_cells``)
LIFT_MAX_CELLS = 100_000_000
#: share of a Lagrangian phase's seconds kept for the lift at the ascent's prices when it applies
LIFT_SHARE = 0.1
#: the lift at the fluid prices is tried when ``n * H`` is at most this (the whole 19,366-request
#: conversation trace has 1.55e9 pairs: about 30 s for its first grid of ``theta``)
FLUID_MAX_CELLS = 3_000_000_000
#: share of a Lagrangian phase's seconds the lift at the fluid prices may take, before the ascent
#: (0.25 until the ninth session; the grid with the cuts' ages made it slower, and where it is slow
#: (BWB, the whole trace) the ascent has to bucket rounds and stays below busy-time anyway)
FLUID_SHARE = 0.5


def fluid_prices(instance: Instance, horizon: int) -> FloatArray:
    """Memory prices of rounds ``0..horizon-1`` from the fluid schedule behind the busy-time bound.

    The fluid schedule serves the requests in smallest-volume-first order with the whole budget
    ``M``: the ``k``-th smallest is done at ``P_k / M`` (``P_k``: the sum of the ``k`` smallest
    volumes). The price of a unit of memory in round ``r`` is the number of requests not done by
    then, divided by ``M``: what one more unit of memory in that round would save the fluid
    schedule. Any prices ``>= 0`` give a bound (docs/bounds.md, sections 3-4). These cost one sort.
    On the 1,000-request mixed backlogs the Lagrangian at them is 0.01%, 0.09% and 0.6% below the
    ascent's best (M = 16,384, 65,536, 262,144); on the whole conversation trace it is above the
    bucketed ascent's bound, which stays below busy-time there.
    """
    done = np.cumsum(np.sort(instance.volume.astype(np.float64))) / float(instance.memory_budget)
    unfinished = instance.n - np.searchsorted(done, np.arange(max(int(horizon), 1)), side="right")
    return np.asarray(unfinished, dtype=np.float64) / float(instance.memory_budget)


def _lift_applies(instance: Instance, horizon: int, max_cells: int | None = None) -> bool:
    """Whether a sawtooth lift over ``horizon`` rounds is tried: ``n * H`` within ``max_cells`` (default :data:`LIFT_MAX_CELLS`)."""
    return instance.n * max(int(horizon), 1) <= (LIFT_MAX_CELLS if max_cells is None else max_cells)


def _lift_at(instance: Instance, prices: FloatArray, deadline: float, source: str, batch_prices: FloatArray | None = None) -> int | None:
    """The sawtooth bound at ``prices`` (and ``batch_prices``), rounded safely; ``None`` when the deadline passes first."""
    from .sawtooth import sawtooth_bound

    lifted = sawtooth_bound(instance, prices, deadline, batch_prices)
    if lifted is None:
        return None
    value, theta = lifted
    bound = _proven_bound(instance, value)
    log.info("sawtooth lift at the %s prices: %d (theta %.3g)", source, bound, theta)
    return bound


def sawtooth_lift(instance: Instance, result: LagrangianResult, deadline: float = math.inf) -> int | None:
    """The sawtooth bound at ``result``'s prices, rounded safely (docs/bounds.md, section 4); ``None`` if not tried.

    Not tried when ``n * H`` exceeds
    :data:`LIFT_MAX_CELLS`, or when ``deadline`` (``time.perf_counter()``) passes first.
    """
    if not _lift_applies(instance, len(result.prices)):
        return None
    return _lift_at(instance, result.prices, deadline, "Lagrangian", result.batch_prices)


def fluid_lift(instance: Instance, horizon: int, deadline: float = math.inf) -> int | None:
    """The sawtooth bound at :func:`fluid_prices`, rounded safely; ``None`` if not tried.

    Not tried when ``n * horizon`` exceeds :data:`FLUID_MAX_CELLS`, or when
    ``deadline`` passes before the first grid of ``theta`` is done.
    """
    if not _lift_applies(instance, horizon, FLUID_MAX_CELLS):
        return None
    return _lift_at(instance, fluid_prices(instance, horizon), deadline, "fluid")


def lifted_lagrangian(
    instance: Instance, time_limit: float | None, offer: Callable[[str, int], None] | None = None, **kwargs: Any
) -> tuple[LagrangianResult, int | None, float | None]:
    """The sawtooth lift at the fluid prices, :func:`lagrangian`, then the lift at its prices, within ``time_limit``.

    The lift at :func:`fluid_prices` goes first (at most :data:`FLUID_SHARE` of the time): it is
    cheap and usually close to the final bound, and on very large instances, where the ascent
    must group rounds into buckets, it is the only lift tried. The ascent gets the time left less
    :data:`LIFT_SHARE` of it, kept for the lift at its best prices. ``kwargs`` go to
    :func:`lagrangian`; ``offer(source, bound)`` hears each bound as soon as it is known
    (``"sawtooth"`` for a lift, ``"lagrange"`` after the ascent). Returns the Lagrangian's
    result, the best lift (or ``None``) and the time limit the ascent itself had.
    """
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + time_limit
    plan, ub = _plan_and_ub(instance, kwargs.pop("plan", None), kwargs.pop("ub", None))
    horizon = max(int(kwargs.get("horizon") or plan.makespan), 1)
    lifts: list[int] = []

    def found(source: str, bound: int | None) -> None:
        if bound is not None:
            if source == "sawtooth":
                lifts.append(bound)
            if offer is not None:
                offer(source, bound)

    fluid_deadline = deadline if time_limit is None else t0 + FLUID_SHARE * time_limit
    found("sawtooth", fluid_lift(instance, horizon, fluid_deadline))
    applies = _lift_applies(instance, horizon)
    left = None if time_limit is None else max(0.0, deadline - time.perf_counter())
    # worth keeping time back only where the lift will be tried (the horizon sets its cost)
    own = None if left is None else left * (1.0 - LIFT_SHARE if applies else 1.0)
    res = lagrangian(instance, ub, time_limit=own, plan=plan, **kwargs)
    found("lagrange", res.bound)
    found("sawtooth", sawtooth_lift(instance, res, deadline))  # None where it does not apply
    return res, max(lifts, default=None), own


def best_lower_bound(instance: Instance, ub: int | None = None, time_limit: float | None = 30.0, plan: Plan | None = None) -> tuple[int, str]:
    """The best proven bound within ``time_limit`` seconds: ``(value, name)`` of the winner."""
    t0 = time.perf_counter()
    found = [
        (instance.trivial_lower_bound(), "sum_output"),
        (volume_bound(instance), "volume"),
        (busy_time_bound(instance), "busy-time"),
    ]
    left = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - t0))
    if left is None or left > 0:
        res, lift, _ = lifted_lagrangian(instance, left, ub=ub, plan=plan)
        found.append((res.bound, "lagrange"))
        if lift is not None:
            found.append((lift, "sawtooth"))
    return max(found, key=lambda x: x[0])


def best_heuristic_plan(instance: Instance, methods: tuple[str, ...] = PLAN_METHODS) -> tuple[Plan, str]:
    """The plan with the smallest objective among the fast heuristics ``methods``."""
    from .heuristics import best_fast_plan

    name, plan = best_fast_plan(instance, methods)
    return plan, name


BoundFn = Callable[[Instance, SolveOptions, Plan, float | None], tuple[int, dict[str, Any]]]


def _bound_method(name: str, instance: Instance, options: SolveOptions | None, compute: BoundFn) -> SolveResult:
    options = options or SolveOptions()
    t0 = time.perf_counter()
    plan, plan_method = best_heuristic_plan(instance)
    t1 = time.perf_counter()
    left = None if options.time_limit is None else max(0.0, options.time_limit - (t1 - t0))
    bound, stats = compute(instance, options, plan, left)
    t2 = time.perf_counter()
    stats.setdefault("bound_source", name)
    stats["plan_method"] = plan_method
    stop = StopReason.TIME_LIMIT if stats.pop("timed_out", False) else StopReason.COMPLETED
    return SolveResult(name, instance, plan, lower_bound=bound, stop_reason=stop, build_seconds=t1 - t0, solve_seconds=t2 - t1, stats=stats)


def solve_volume_bound(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``volume-bound``: the best fast heuristic plan with the volume bound."""

    def compute(inst: Instance, opts: SolveOptions, plan: Plan, left: float | None) -> tuple[int, dict[str, Any]]:
        return volume_bound(inst), {}

    return _bound_method("volume-bound", instance, options, compute)


def solve_busy_bound(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``busy-bound``: the best fast heuristic plan with the mean-busy-time bound."""

    def compute(inst: Instance, opts: SolveOptions, plan: Plan, left: float | None) -> tuple[int, dict[str, Any]]:
        return busy_time_bound(inst), {}

    return _bound_method("busy-bound", instance, options, compute)


def solve_lagrange(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``lagrange``: the best fast heuristic plan with the Lagrangian bound, its sawtooth lift, or a cheap bound if higher.

    Params: ``iterations`` (default 200), ``bucket_width``, ``horizon``.
    """

    def compute(inst: Instance, opts: SolveOptions, plan: Plan, left: float | None) -> tuple[int, dict[str, Any]]:
        p = opts.params
        iters = int(p.get("iterations", opts.iteration_limit or 200))
        res, lift, own_limit = lifted_lagrangian(
            inst,
            left,
            ub=plan.total_latency,
            iterations=iters,
            horizon=None if p.get("horizon") is None else int(p["horizon"]),
            bucket_width=None if p.get("bucket_width") is None else int(p["bucket_width"]),
            plan=plan,
        )
        vol = volume_bound(inst)
        busy = busy_time_bound(inst)
        found = [(res.bound, "lagrange"), (busy, "busy-time"), (vol, "volume")]
        if lift is not None:
            found.append((lift, "sawtooth"))
        best = max(found, key=lambda x: x[0])
        stats: dict[str, Any] = {
            "bound_source": best[1],
            "lagrange_bound": res.bound,
            "sawtooth_bound": lift,
            "volume_bound": vol,
            "busy_time_bound": busy,
            "iterations": res.iterations,
            "horizon": res.horizon,
            "bucket_width": res.bucket_width,
            "timed_out": own_limit is not None and res.seconds >= own_limit and res.iterations < iters,
        }
        return best[0], stats

    return _bound_method("lagrange", instance, options, compute)
