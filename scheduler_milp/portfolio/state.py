"""The portfolio's state: best plan, best bound, and what each phase did.

One :class:`PortfolioState` is shared by every phase of ``auto``
(:mod:`scheduler_milp.portfolio.auto`) and by the listener thread that receives the second
process's results (:mod:`scheduler_milp.portfolio.worker`); offers from both are serialised by a
lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..model.deadline import Deadline
from ..model.instance import Instance
from ..model.plan import Plan
from ..model.result import TRIVIAL_BOUND_SOURCE, gap

#: the progress lines are auto's: they go to its logger
log = logging.getLogger("scheduler_milp.portfolio.auto")


class PortfolioState:
    """Best plan and best proven bound so far, with the history of their improvements.

    ``deadline`` is when the phases must end (the portfolio's time limit less its reserve);
    ``history`` has one entry per improvement (``seconds`` since ``started``, ``objective``,
    ``lower_bound``, ``gap``, ``source``), each also logged.  The per-phase records end up in the
    result's ``stats``: ``phases`` (seconds per phase), ``skipped`` and ``errors`` (why, per phase),
    ``stopped_early`` (searches ended by a proof), ``searched`` (the stats of each local search).
    """

    def __init__(
        self,
        instance: Instance,
        deadline: Deadline,
        started: float | None = None,
        interrupted: Callable[[], bool] | None = None,
        on_improvement: Callable[[int | None, int | None], None] | None = None,
    ):
        self.instance = instance
        self.interrupted = interrupted or (lambda: False)  # the caller's stop criterion (Ctrl-C)
        self.on_improvement = on_improvement
        self.deadline = deadline
        self.started = time.perf_counter() if started is None else started
        self.plan: Plan | None = None
        self.plan_source = ""
        self.bound = instance.trivial_lower_bound()
        self.bound_source = TRIVIAL_BOUND_SOURCE
        self.history: list[dict[str, Any]] = []
        self.phases: dict[str, float] = {}
        self.skipped: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.stopped_early: list[str] = []
        self.searched: dict[str, dict[str, Any]] = {}
        # offers come from the main thread and from the bound worker's listener thread
        self._lock = threading.RLock()
        self._note(TRIVIAL_BOUND_SOURCE)

    def elapsed(self) -> float:
        """Seconds since ``started``."""
        return time.perf_counter() - self.started

    def left(self) -> float:
        """Seconds left until ``deadline`` (at least 0)."""
        return self.deadline.remaining()

    @property
    def objective(self) -> int | None:
        """The best plan's objective (``None`` before the first plan)."""
        return None if self.plan is None else int(self.plan.total_latency)

    @property
    def gap(self) -> float | None:
        """The certified gap of the best plan and the best bound."""
        return gap(self.objective, self.bound)

    def closed(self) -> bool:
        """Whether the best bound meets the best plan (the plan is proven optimal)."""
        return self.plan is not None and self.bound >= self.plan.total_latency

    def should_stop(self) -> bool:
        """Whether the searches should end now: the plan is proven optimal, or the caller asks."""
        return self.closed() or (self.plan is not None and self.interrupted())

    def offer_plan(self, plan: Plan | None, source: str) -> None:
        """Keep ``plan`` if it is better than the best so far (``None`` is ignored)."""
        if plan is None:
            return
        with self._lock:
            if self.plan is None or plan.total_latency < self.plan.total_latency:
                self.plan, self.plan_source = plan, source
                self._note(source)

    def offer_bound(self, value: int | None, source: str) -> None:
        """Keep ``value`` if it is a better lower bound than the best so far (``None`` is ignored)."""
        with self._lock:
            if value is not None and value > self.bound:
                self.bound, self.bound_source = int(value), source
                self._note(source)

    def add_phase_seconds(self, name: str, seconds: float) -> None:
        """Count ``seconds`` to phase ``name`` (a phase can run more than once)."""
        self.phases[name] = round(self.phases.get(name, 0.0) + seconds, 3)

    def stats(self, **extra: Any) -> dict[str, Any]:
        """The result's ``stats``: sources, history, phase seconds, ``extra``, then ``skipped``,
        ``errors`` and ``stopped_early`` where non-empty."""
        stats: dict[str, Any] = {
            "plan_source": self.plan_source,
            "bound_source": self.bound_source,
            "history": self.history,
            "phase_seconds": self.phases,
            **extra,
        }
        for key, value in (
            ("skipped", self.skipped),
            ("errors", self.errors),
            ("stopped_early", self.stopped_early),
        ):
            if value:
                stats[key] = value
        return stats

    def _note(self, source: str) -> None:
        g = self.gap
        entry = {
            "seconds": round(self.elapsed(), 3),
            "objective": self.objective,
            "lower_bound": self.bound,
            "gap": g,
            "source": source,
        }
        self.history.append(entry)
        if self.on_improvement is not None:
            self.on_improvement(self.objective, self.bound)
        log.info(
            "auto: %7.2fs  best %s  bound %d  gap %s  (%s)",
            entry["seconds"],
            "-" if self.objective is None else self.objective,
            self.bound,
            "-" if g is None else f"{100 * g:.3f}%",
            source,
        )
