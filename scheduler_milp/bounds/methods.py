"""TODO docstring."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..model.instance import Instance
from ..model.plan import Plan
from ..model.result import SolveOptions, SolveResult, StopReason
from .lagrangian import lifted_lagrangian
from .simple import PLAN_METHODS, busy_time_bound, volume_bound

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]


def best_heuristic_plan(instance: Instance, methods: tuple[str, ...] = PLAN_METHODS) -> tuple[Plan, str]:
    """The plan with the smallest objective among the fast heuristics ``methods``."""
    from ..baselines.best import best_fast_plan

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
