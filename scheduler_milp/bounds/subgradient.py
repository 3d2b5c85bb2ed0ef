"""TODO docstring."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from numpy.typing import NDArray

from ..model.instance import Instance
from ..model.plan import Plan
from .colgen import lagrangian_cg
from .dual import Dual, LagrangianResult, has_highspy, plan_and_ub
from .simple import proven_bound

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]



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
    plan, ub = plan_and_ub(instance, plan, ub)
    H = int(horizon if horizon is not None else plan.makespan)
    H = max(H, 1)
    w = bucket_width or max(1, math.ceil(H * instance.n / max_cells))
    if method not in ("auto", "cg", "subgradient"):
        raise ValueError(f"unknown Lagrangian method {method!r}")
    cg: LagrangianResult | None = None
    if method != "subgradient" and w == 1 and coarse_prices is None and initial_prices is None and has_highspy():
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
    dual = Dual(instance, H, w)
    if initial_prices is None:
        lam = initial_prices(instance, plan, H)
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
    bound = proven_bound(instance, best_val)
    secs = time.perf_counter() - t0
    log.info("lagrangian: bound %d after %d iterations (H=%d, w=%d) in %.2fs", bound, done, H, w, secs)
    return LagrangianResult(bound, best_val, best_lam, best_start, H, w, done, secs, history, batch_prices=best_mu)
