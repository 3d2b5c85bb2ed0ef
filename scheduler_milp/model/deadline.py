"""The one time budget: a :class:`Deadline` that every method and portfolio phase reads.

A deadline is an absolute ``time.perf_counter()`` reading (``inf`` without a limit).  The registry
starts it when a method is called, so model building, imports and solving all count against the
same limit; a phase takes a share of what is left with :meth:`Deadline.share`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """An absolute point in ``time.perf_counter()`` time by which work must end (``inf``: none)."""

    at: float = math.inf

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        """The deadline ``seconds`` from now (``None``: no limit)."""
        return cls() if seconds is None else cls(time.perf_counter() + max(0.0, float(seconds)))

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
