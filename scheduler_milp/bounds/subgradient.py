"""The Lagrangian bound by projected subgradient ascent, and :func:`lagrangian`, its entry point.

The ascent needs nothing but evaluations of the dual (:class:`~.dual.Dual`), so it scales to
horizons and request counts where no LP fits: it groups start rounds into buckets when ``n * H`` is
large and, on large instances, steers with cheap evaluations restricted to starts near the last
exact choice.  Where column generation applies (bucket width 1, HiGHS present) :func:`lagrangian`
runs it first and polishes its prices with the ascent (docs/bounds.md, section 3 "Lagrangian
relaxation of the time-indexed model").
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
from .colgen import has_highspy, lagrangian_cg
from .dual import Dual, LagrangianResult, plan_and_ub, price_shape
from .simple import proven_bound

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

#: multiples of the starting price shape evaluated before the ascent: the shape only guesses the scale
START_SCALES = (0.0, 0.25, 0.5, 1.0, 2.0)


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
    keeping ``n * buckets <= max_cells``.  Stops after ``iterations`` or ``time_limit`` seconds
    (an evaluation under way at the limit is dropped).
    ``window_radius``: between exact evaluations (every ``exact_every`` iterations) steer with
    cheap ones restricted to starts within that many rounds of the last exact choice; -1 picks
    a radius when ``n * H`` is large, None always evaluates exactly.  Only exact evaluations
    count for the bound.  ``initial_prices`` replaces the heuristic starting shape, and
    ``initial_batch_prices`` the zero batch prices (with a batch cap).

    ``method``: ``"subgradient"`` is the ascent above alone; ``"auto"`` (default) and ``"cg"``
    first run :func:`~.colgen.lagrangian_cg` (column generation on the time-indexed LP with
    grouped rounds) for ``cg_share`` of the time, and unless it converged polish its best prices
    with the ascent (Polyak level ``polish_level``) for the rest; both report the better bound.
    Column generation needs bucket width 1 and no ``initial_prices``; otherwise (e.g. for very
    large ``n * H``) the ascent alone runs.
    """
    if method not in ("auto", "cg", "subgradient"):
        raise ValueError(f"unknown Lagrangian method {method!r}")
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + time_limit
    plan, ub = plan_and_ub(instance, plan, ub)
    H = max(int(horizon if horizon is not None else plan.makespan), 1)
    w = bucket_width or max(1, math.ceil(H * instance.n / max_cells))
    if method != "subgradient" and w == 1 and initial_prices is None and has_highspy():
        # column generation on the grouped LP first (fast, good prices), then the ascent polishes
        cg = lagrangian_cg(
            instance,
            ub,
            None if time_limit is None else cg_share * time_limit,
            H,
            plan,
            iterations=iterations,
        )
        if ub - cg.value <= 0.5 or cg.converged:
            return cg
        rest = None if time_limit is None else max(0.0, deadline - time.perf_counter())
        # started near the optimum: aim the Polyak level just above the best value
        sub = lagrangian(
            instance,
            ub,
            iterations,
            rest,
            H,
            1,
            max_cells,
            plan,
            level=min(level, polish_level),
            window_radius=window_radius,
            exact_every=exact_every,
            initial_prices=cg.prices,
            method="subgradient",
            initial_batch_prices=cg.batch_prices,
        )
        return _better_of(cg, sub, H, time.perf_counter() - t0)
    dual = Dual(instance, H, w)
    lam, mu = _start_prices(instance, plan, H, initial_prices, initial_batch_prices)
    ascent = _Ascent(dual, ub, level, _steer_radius(window_radius, H, instance.n), mu)
    try:
        ascent.try_scales(lam, mu, deadline)
        ascent.run(mu, iterations, deadline, exact_every)
    except OutOfTime:  # the evaluation under way is dropped: the best one so far stands
        pass
    bound = proven_bound(instance, ascent.best_val)
    secs = time.perf_counter() - t0
    log.info(
        "lagrangian: bound %d after %d iterations (H=%d, w=%d) in %.2fs",
        bound,
        ascent.done,
        H,
        w,
        secs,
    )
    return LagrangianResult(
        bound,
        ascent.best_val,
        ascent.best_lam,
        ascent.best_start,
        H,
        w,
        ascent.done,
        secs,
        ascent.history,
        batch_prices=ascent.best_mu,
    )


def _better_of(
    cg: LagrangianResult, sub: LagrangianResult, horizon: int, seconds: float
) -> LagrangianResult:
    """Column generation's result and the ascent's polish of it as one: the better bound and prices."""
    best = sub if sub.value > cg.value else cg
    return LagrangianResult(
        max(sub.bound, cg.bound),
        best.value,
        best.prices,
        best.best_starts,
        horizon,
        1,
        cg.iterations + sub.iterations,
        seconds,
        cg.history + sub.history,
        batch_prices=best.batch_prices,
    )


def _start_prices(
    instance: Instance,
    plan: Plan,
    horizon: int,
    prices: FloatArray | None,
    batch_prices: FloatArray | None,
) -> tuple[FloatArray, FloatArray | None]:
    """The ascent's first memory prices (``prices`` clipped to ``[0, inf)`` and the horizon, or the
    heuristic shape) and batch prices (``batch_prices`` likewise, or 0; ``None`` without a batch cap).

    The polish after column generation starts from both of its price vectors: from zero batch
    prices its first steps would fall far below the bound it starts from.
    """
    if prices is None:
        lam = price_shape(instance, plan, horizon)
    else:
        lam = np.zeros(horizon)
        lam[: min(horizon, len(prices))] = np.maximum(0.0, prices[:horizon])
    mu = np.zeros(horizon) if instance.max_batch is not None else None
    if mu is not None and batch_prices is not None:
        mu[: min(horizon, len(batch_prices))] = np.maximum(0.0, batch_prices[:horizon])
    return lam, mu


def _steer_radius(window_radius: int | None, horizon: int, n: int) -> int | None:
    """The steering radius (``None``: every evaluation exact); -1 picks one when ``n * H`` is large."""
    if window_radius is None or window_radius >= 0:
        return window_radius
    radius = max(256, horizon // 16)
    return radius if horizon * n > 4_000_000 and 2 * radius < horizon else None


class _Ascent:
    """Projected subgradient ascent with Polyak steps towards a level target, and its best iterate.

    The step aims at ``best + delta``, not at the upper bound, which may be far above the dual
    optimum; ``delta`` (``level`` times the best value) halves whenever the ascent stalls, and with
    ``level = 0`` the step aims at the upper bound and its scale ``theta`` halves instead.  Only
    exact evaluations count for the best iterate: a steering one (restricted to starts within
    ``radius`` of the last exact choice) is a minimum over fewer starts, not a bound.
    """

    def __init__(
        self, dual: Dual, ub: int, level: float, radius: int | None, batch_prices: FloatArray | None
    ):
        self.dual = dual
        self.ub = float(ub)
        self.level = level
        self.radius = radius
        cap = dual.cap
        # The batch rows are stepped on scaled by k = M / max_batch (k (count - cap) <= 0, price
        # mu / k): unscaled, their subgradients (requests) are tiny beside the memory rows' (tokens)
        # and the batch prices would hardly leave 0.
        self.batch_scale = dual.M / float(cap) if cap else 1.0
        self.best_val = -math.inf
        self.best_lam = np.zeros(dual.H)
        self.best_mu = None if batch_prices is None else batch_prices.copy()
        self.best_start = np.asarray(dual.instance.arrival, dtype=np.int64).copy()
        self.history: list[float] = []
        self.done = 0
        self.theta = 1.0
        self.delta = math.inf
        self.stall = 0

    def try_scales(self, lam: FloatArray, mu: FloatArray | None, deadline: float) -> None:
        """Evaluate the multiples :data:`START_SCALES` of the price shape ``lam``; keep the best
        (:class:`~scheduler_milp.formulations.timeindexed.OutOfTime` when ``deadline`` passes)."""
        for scale in START_SCALES:
            val, start, _, _ = self.dual.evaluate(lam * scale, mu, deadline=deadline)
            self.history.append(val)
            if val > self.best_val:
                self.best_val, self.best_lam, self.best_start = val, lam * scale, start

    def run(
        self, mu: FloatArray | None, iterations: int, deadline: float, exact_every: int
    ) -> None:
        """At most ``iterations`` steps (at least one) from the best prices so far, until ``deadline``
        (:class:`~scheduler_milp.formulations.timeindexed.OutOfTime` when it passes during an
        evaluation)."""
        lam = self.best_lam
        self.delta = self.level * abs(self.best_val) if self.level > 0 else math.inf
        center = self.best_start
        for it in range(max(1, iterations)):
            if time.perf_counter() > deadline:
                break
            if self.radius is None or it % exact_every == 0:
                val, center, cov_from, cov_to = self.dual.evaluate(lam, mu, deadline=deadline)
                self._record(val, center, lam, mu)
            else:
                window = (center - self.radius, center + self.radius)
                val, _, cov_from, cov_to = self.dual.evaluate(lam, mu, window, deadline)
            self.done += 1
            if self._finished():
                break
            moved = self._step(val, lam, mu, cov_from, cov_to)
            if moved is None:
                break  # a zero subgradient: these prices are optimal
            lam, mu = moved

    def _record(self, val: float, start: IntArray, lam: FloatArray, mu: FloatArray | None) -> None:
        """Keep an exact evaluation if it improves the best; shrink the step after a stall."""
        self.history.append(val)
        if val > self.best_val + 1e-9 * max(1.0, abs(self.best_val)):
            self.best_val, self.best_lam, self.best_start = val, lam.copy(), start
            self.best_mu = None if mu is None else mu.copy()
            self.stall = 0
            return
        self.stall += 1
        if self.stall >= (5 if self.radius is None else 2):
            if self.level > 0:
                self.delta *= 0.5
            else:
                self.theta *= 0.5
            self.stall = 0

    def _finished(self) -> bool:
        """Whether the bound meets the upper bound (within rounding) or the step has shrunk away."""
        return (
            self.ub - self.best_val <= 0.5
            or self.theta < 1e-4
            or self.delta < 1e-5 * abs(self.best_val)
        )

    def _step(
        self,
        val: float,
        lam: FloatArray,
        mu: FloatArray | None,
        cov_from: IntArray,
        cov_to: IntArray,
    ) -> tuple[FloatArray, FloatArray | None] | None:
        """The next prices after a projected Polyak step from ``lam``, ``mu`` (value ``val``), or
        ``None`` when the projected subgradient is zero."""
        grad, batch_grad, norm = self._subgradient(lam, mu, cov_from, cov_to)
        if norm <= 0:
            return None
        target = min(self.ub, self.best_val + self.delta)
        # a restricted (over-estimated) value may already exceed the target: keep moving a little
        step = self.theta * max(target - val, 0.1 * min(self.delta, self.ub - self.best_val)) / norm
        lam = np.maximum(0.0, lam + step * grad)
        if mu is not None and batch_grad is not None:
            mu = np.maximum(0.0, mu + step * self.batch_scale * batch_grad)
        return lam, mu

    def _subgradient(
        self, lam: FloatArray, mu: FloatArray | None, cov_from: IntArray, cov_to: IntArray
    ) -> tuple[FloatArray, FloatArray | None, float]:
        """The projected subgradient of the memory rows, of the (scaled) batch rows, and its squared norm.

        Projected: a zero price with a negative subgradient stays at zero.
        """
        dual = self.dual
        mem, count = dual.usage(cov_from, cov_to)
        grad = mem - dual.M
        grad = np.where((lam <= 0) & (grad < 0), 0.0, grad)
        norm = float(grad @ grad)
        batch_grad = None
        if mu is not None and dual.cap is not None:
            batch_grad = self.batch_scale * (count - float(dual.cap))
            batch_grad = np.where((mu <= 0) & (batch_grad < 0), 0.0, batch_grad)
            norm += float(batch_grad @ batch_grad)
        return grad, batch_grad, norm
