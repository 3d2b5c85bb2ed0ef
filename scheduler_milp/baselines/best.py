"""The best plan of a set of fast methods: the warm start of the exact models, the bounds and the searches."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..model.instance import Instance
from ..model.plan import Plan
from ..model.result import SolveOptions

log = logging.getLogger(__name__)

#: The fast methods whose best plan is the warm start (each runs in seconds on 20k requests).
FAST_METHODS: tuple[str, ...] = ("fcfs", "fcfs-skip", "sf", "size", "mcsf", "svf", "sorted-f")


def best_fast_plan(instance: Instance, include: Sequence[str] = FAST_METHODS) -> tuple[str, Plan]:
    """``(method name, plan)`` of the best plan among ``include`` (the first listed wins ties).

    Every plan is validated by the methods themselves; a method that raises is skipped (logged),
    and if all fail the last error is raised.
    """
    from ..registry import solve

    best: tuple[str, Plan] | None = None
    error: Exception | None = None
    for name in include:
        try:
            plan = solve(instance, name, SolveOptions()).plan
        except (ValueError, RuntimeError) as err:  # a method declining (e.g. too large) is skipped
            log.info("best_fast_plan: %s failed: %s", name, err)
            error = err
            continue
        if plan is not None and (best is None or plan.total_latency < best[1].total_latency):
            best = (name, plan)
    if best is None:
        raise error if error is not None else ValueError("best_fast_plan: no method given")
    log.info("best fast plan: %s, objective %d", best[0], best[1].total_latency)
    return best
