"""The registered bound methods: ``volume-bound``, ``busy-bound`` and ``lagrange``.

Each returns the best plan of the fast heuristics (:func:`~scheduler_milp.baselines.best.best_fast_plan`)
with its bound, so that a user gets a certified gap; ``stats["bound_source"]`` names the bound
that won and ``stats["plan_method"]`` the heuristic whose plan it is.  The plan also gives the
Lagrangian its horizon, starting prices and upper bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..baselines.best import best_fast_plan
from ..model.instance import Instance
from ..model.params import MethodParams
from ..model.plan import Plan
from ..model.result import SolveOptions, SolveResult, StopReason
from .lagrangian import LIFT_WARMUP, lifted_lagrangian
from .simple import busy_time_bound, volume_bound

#: ``(instance, options, best plan, seconds left or None) -> (bound, stats)``
BoundFn = Callable[[Instance, SolveOptions, Plan, float | None], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class LagrangeParams(MethodParams):
    """``lagrange``'s knobs: ascent iterations (default: ``options.iteration_limit``, else 200), and
    the horizon and bucket width of :func:`~.subgradient.lagrangian` (default: its own choice)."""

    iterations: int | None = None
    horizon: int | None = None
    bucket_width: int | None = None


def _bound_method(
    name: str, instance: Instance, options: SolveOptions | None, compute: BoundFn
) -> SolveResult:
    """The best fast plan (none of its methods started that would not end in time, the first
    excepted), then ``compute``'s bound in the time left, as ``name``'s result."""
    options = options or SolveOptions()
    budget = options.budget()
    t0 = time.perf_counter()
    plan_method, plan = best_fast_plan(instance, deadline=budget)
    t1 = time.perf_counter()
    bound, stats = compute(instance, options, plan, budget.remaining_or_none())
    t2 = time.perf_counter()
    stats.setdefault("bound_source", name)
    stats["plan_method"] = plan_method
    stop = StopReason.TIME_LIMIT if stats.pop("timed_out", False) else StopReason.COMPLETED
    return SolveResult(
        name,
        instance,
        plan,
        lower_bound=bound,
        stop_reason=stop,
        build_seconds=t1 - t0,
        solve_seconds=t2 - t1,
        stats=stats,
    )


def solve_volume_bound(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``volume-bound``: the best fast heuristic plan with the volume bound."""

    def compute(
        inst: Instance, opts: SolveOptions, plan: Plan, left: float | None
    ) -> tuple[int, dict[str, Any]]:
        return volume_bound(inst), {}

    return _bound_method("volume-bound", instance, options, compute)


def solve_busy_bound(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``busy-bound``: the best fast heuristic plan with the mean-busy-time bound."""

    def compute(
        inst: Instance, opts: SolveOptions, plan: Plan, left: float | None
    ) -> tuple[int, dict[str, Any]]:
        return busy_time_bound(inst), {}

    return _bound_method("busy-bound", instance, options, compute)


def solve_lagrange(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``lagrange``: the best fast heuristic plan with the Lagrangian bound, its sawtooth lift, or a cheap bound if higher.

    Params: :class:`LagrangeParams`.
    """
    options = options or SolveOptions()
    p = LagrangeParams.of(options)
    LIFT_WARMUP.start()  # the lift's kernels compile (or load) while the fast plans run

    def compute(
        inst: Instance, opts: SolveOptions, plan: Plan, left: float | None
    ) -> tuple[int, dict[str, Any]]:
        iters = p.iterations if p.iterations is not None else opts.iteration_limit or 200
        res, lift, own_limit = lifted_lagrangian(
            inst,
            left,
            ub=plan.total_latency,
            iterations=iters,
            horizon=p.horizon,
            bucket_width=p.bucket_width,
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
            "timed_out": own_limit is not None
            and res.seconds >= own_limit
            and res.iterations < iters,
        }
        return best[0], stats

    return _bound_method("lagrange", instance, options, compute)
