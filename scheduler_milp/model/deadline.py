"""The one time budget: a :class:`Deadline` that every method and portfolio phase reads.

A deadline is an absolute ``time.perf_counter()`` reading (``inf`` without a limit).  The registry
starts it when a method is called, so model building, imports and solving all count against the
same limit; a phase takes a share of what is left with :meth:`Deadline.share`.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass


def process_age() -> float:
    """Seconds since this process started (0 where the system does not say).

    Read from ``/proc/self/stat`` (start time in clock ticks since boot) against the boot-time
    clock, so a command-line time limit can cover the interpreter's start-up and imports too.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


@dataclass(frozen=True)
class Deadline:
    """An absolute point in ``time.perf_counter()`` time by which work must end (``inf``: none)."""

    at: float = math.inf

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        """The deadline ``seconds`` from now (``None``: no limit)."""
        return cls() if seconds is None else cls(time.perf_counter() + max(0.0, float(seconds)))

    @classmethod
    def since_process_start(cls, seconds: float | None) -> Deadline:
        """The deadline ``seconds`` after this process started (``None``: no limit)."""
        if seconds is None:
            return cls()
        return cls(time.perf_counter() - process_age() + max(0.0, float(seconds)))

    @property
    def limited(self) -> bool:
        """Whether there is a limit at all."""
        return math.isfinite(self.at)

    def remaining(self) -> float:
        """Seconds left, at least 0 (``inf`` without a limit)."""
        return math.inf if not self.limited else max(0.0, self.at - time.perf_counter())

    def remaining_or_none(self) -> float | None:
        """Seconds left, ``None`` without a limit (the form solver APIs take)."""
        return self.remaining() if self.limited else None

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return time.perf_counter() >= self.at

    def within(self, seconds: float | None) -> Deadline:
        """This deadline or ``seconds`` from now, whichever comes first."""
        return (
            self
            if seconds is None
            else Deadline(min(self.at, time.perf_counter() + max(0.0, seconds)))
        )

    def share(self, fraction: float) -> Deadline:
        """A deadline ``fraction`` of the time left from now (itself without a limit)."""
        return (
            self
            if not self.limited
            else Deadline(time.perf_counter() + fraction * self.remaining())
        )
