"""The best plan of a set of fast methods: the warm start of the exact models, the bounds and the searches."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from ..model.deadline import Deadline
from ..model.instance import Instance
from ..model.plan import Plan
from ..model.result import SolveOptions

log = logging.getLogger(__name__)

#: The fast methods whose best plan is the warm start (each runs in seconds on 20k requests).
FAST_METHODS: tuple[str, ...] = ("fcfs", "fcfs-skip", "sf", "size", "mcsf", "svf", "sorted-f")


def best_first(names: Sequence[str]) -> list[str]:
    """``names`` with ``svf`` first and ``sf`` second (the fast methods that most often win), the
    rest in their given order: the order in which they run when time may run out."""
    return sorted(names, key=lambda m: (m != "svf", m != "sf"))


def best_fast_plan(
    instance: Instance, include: Sequence[str] = FAST_METHODS, deadline: Deadline | None = None
) -> tuple[str, Plan]:
    """``(method name, plan)`` of the best plan among ``include`` (the first listed wins ties).

    Every plan is validated by the methods themselves; a method that raises is skipped (logged),
    and if all fail the last error is raised.  With a limited ``deadline`` the methods run in
    :func:`best_first` order, none is started once the time left is less than the slowest one so
    far took, and one still running at the deadline is abandoned; the first always runs to its end
    (there is no answer without a plan).  When all of them run, the answer is the same in either
    order.
    """
    from ..registry import solve

    until = deadline if deadline is not None and deadline.limited else None
    order = list(include) if until is None else best_first(include)
    rank = {name: k for k, name in enumerate(include)}
    best: tuple[str, Plan] | None = None
    error: Exception | None = None
    slowest = 0.0
    for name in order:
        if until is not None and best is not None and until.remaining() < slowest:
            log.info("best_fast_plan: %s skipped, %.2fs left", name, until.remaining())
            continue
        t0 = time.perf_counter()
        # the first runs without a limit, the others end (raising) when the deadline passes
        options = SolveOptions() if until is None or best is None else SolveOptions(deadline=until)
        try:
            plan = solve(instance, name, options).plan
        except (ValueError, RuntimeError) as err:  # a method declining (e.g. too large) is skipped
            log.info("best_fast_plan: %s failed: %s", name, err)
            error = err
            continue
        finally:
            slowest = max(slowest, time.perf_counter() - t0)
        if plan is None:
            continue
        if (
            best is None
            or plan.total_latency < best[1].total_latency
            or (plan.total_latency == best[1].total_latency and rank[name] < rank[best[0]])
        ):
            best = (name, plan)
    if best is None:
        raise error if error is not None else ValueError("best_fast_plan: no method given")
    log.info("best fast plan: %s, objective %d", best[0], best[1].total_latency)
    return best
