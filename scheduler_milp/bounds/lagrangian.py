"""The Lagrangian bound and its sawtooth lifts in one time budget: what ``lagrange`` and ``auto`` run.

:func:`lifted_lagrangian` orders the work by what it buys per second: the sawtooth lift at the
fluid prices (one sort, then one compiled pass) first, then the ascent or column generation
(:func:`~.subgradient.lagrangian`), then the lift at the prices it found, which accounts for
arrivals.  Each lift is tried only where ``n * H`` keeps its pass affordable (docs/bounds.md,
section 4 "Sawtooth lift of the Lagrangian", "Fluid prices").  :func:`best_lower_bound` adds the
closed-form bounds.

The lift's kernels are compiled by numba on their first call in a process (seconds, more on a
loaded machine, and not interruptible): :data:`LIFT_WARMUP` compiles them in a background thread
from the moment :func:`lifted_lagrangian` starts, and a lift is left out when they are not ready by
its deadline (:class:`~scheduler_milp.heuristics.warmup.Warmup`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..heuristics.warmup import Warmup
from ..model.deadline import Deadline
from ..model.instance import Instance
from ..model.plan import Plan
from ..model.result import TRIVIAL_BOUND_SOURCE
from .dual import LagrangianResult, plan_and_ub
from .simple import busy_time_bound, proven_bound, volume_bound
from .subgradient import lagrangian

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]


#: the sawtooth lift at the ascent's prices is tried when ``n * H`` is at most this (its compiled
#: pass, with the cuts' ages, is linear in ``n * H``); the same limit as the ascent's ``max_cells``
LIFT_MAX_CELLS = 100_000_000
#: share of a Lagrangian phase's seconds kept for the lift at the ascent's prices when it applies
LIFT_SHARE = 0.1
#: the lift at the fluid prices is tried when ``n * H`` is at most this: the whole conversation
#: trace fits, where its first grid of ``theta`` is slow but gives the strongest bound
FLUID_MAX_CELLS = 3_000_000_000
#: share of a Lagrangian phase's seconds the lift at the fluid prices may take, before the ascent;
#: where the lift is slow (long horizons) the ascent has to bucket rounds and its bound is weak
#: anyway, so the lift may take half
FLUID_SHARE = 0.5


def _warm_up_lift() -> None:
    """Import the lift's module (and numba) and call its kernels once, on a tiny instance."""
    from .sawtooth import sawtooth_bound

    inst = Instance.create(4, [1, 2], [2, 1], name="warm-up")
    sawtooth_bound(inst, np.full(3, 0.5))


#: the lift kernels' first call (importing numba, compiling or loading them), in the background
LIFT_WARMUP = Warmup("compiling the sawtooth lift", _warm_up_lift)


def fluid_prices(instance: Instance, horizon: int) -> FloatArray:
    """Memory prices of rounds ``0..horizon-1`` from the fluid schedule behind the busy-time bound.

    The fluid schedule serves the requests in smallest-volume-first order with the whole budget
    ``M``: the ``k``-th smallest is done at ``P_k / M`` (``P_k``: the sum of the ``k`` smallest
    volumes). The price of a unit of memory in round ``r`` is the number of requests not done by
    then, divided by ``M``: what one more unit of memory in that round would save the fluid
    schedule. Any prices ``>= 0`` give a bound (docs/bounds.md, sections 3-4, "Fluid prices").
    They cost one sort and come close to the ascent's best on backlogs without arrivals; on very
    long horizons, where the ascent must bucket rounds, the Lagrangian at them is the stronger one.
    """
    done = np.cumsum(np.sort(instance.volume.astype(np.float64))) / float(instance.memory_budget)
    unfinished = instance.n - np.searchsorted(done, np.arange(max(int(horizon), 1)), side="right")
    return np.asarray(unfinished, dtype=np.float64) / float(instance.memory_budget)


def _lift_applies(instance: Instance, horizon: int, max_cells: int | None = None) -> bool:
    """Whether a sawtooth lift over ``horizon`` rounds is tried: ``n * H`` within ``max_cells`` (default :data:`LIFT_MAX_CELLS`)."""
    return instance.n * max(int(horizon), 1) <= (LIFT_MAX_CELLS if max_cells is None else max_cells)


def _lift_at(
    instance: Instance,
    prices: FloatArray,
    deadline: float,
    source: str,
    batch_prices: FloatArray | None = None,
) -> int | None:
    """The sawtooth bound at ``prices`` (and ``batch_prices``), rounded safely; ``None`` when the
    deadline passes first (compiling the kernels included)."""
    if not LIFT_WARMUP.ready(Deadline(deadline)):
        log.info("sawtooth lift at the %s prices: kernels not compiled in time", source)
        return None
    from .sawtooth import sawtooth_bound

    lifted = sawtooth_bound(instance, prices, deadline, batch_prices)
    if lifted is None:
        return None
    value, theta = lifted
    bound = proven_bound(instance, value)
    log.info("sawtooth lift at the %s prices: %d (theta %.3g)", source, bound, theta)
    return bound


def sawtooth_lift(
    instance: Instance, result: LagrangianResult, deadline: float = math.inf
) -> int | None:
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
    instance: Instance,
    time_limit: float | None,
    offer: Callable[[str, int], None] | None = None,
    **kwargs: Any,
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
    LIFT_WARMUP.start()
    plan, ub = plan_and_ub(instance, kwargs.pop("plan", None), kwargs.pop("ub", None))
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


def best_lower_bound(
    instance: Instance,
    ub: int | None = None,
    time_limit: float | None = 30.0,
    plan: Plan | None = None,
) -> tuple[int, str]:
    """The best proven bound within ``time_limit`` seconds: ``(value, name)`` of the winner."""
    t0 = time.perf_counter()
    found = [
        (instance.trivial_lower_bound(), TRIVIAL_BOUND_SOURCE),
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
