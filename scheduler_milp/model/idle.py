"""Idle stretches compressed away: requests arriving far apart cost no work per idle round.

Sort the requests by arrival and cut the backlog where the next arrival comes after every request
that arrived before it could have finished one after another: ``a_next >= a_last + sum o`` over the
requests since the previous cut.  A plan that minimises total latency never leaves a round idle
while a request waits (shifting everything after such a round one round earlier would lower the
total latency), so an optimal plan finishes each group before the next one arrives, and the
optimum is the sum of the groups' optima.  Moving each later group earlier, so that it arrives
exactly ``sum o`` after the last arrival of the group before, therefore keeps the optimum, and
every lower bound of the compressed instance is one of the original.  A plan of the compressed
instance maps back by shifting each group's start rounds by the same amount as its arrivals: the
latencies are unchanged, and groups only move apart, so memory never grows in any round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .instance import Instance, IntArray
from .plan import Plan
from .result import SolveResult

#: idle stretches shorter than this many rounds are left as they are (nothing to gain)
MIN_IDLE_ROUNDS = 100_000


@dataclass(frozen=True)
class IdleCompression:
    """The compressed instance and, per request, how many rounds its group was moved earlier."""

    instance: Instance
    shift: IntArray

    @property
    def removed(self) -> int:
        """Rounds taken out in all (the largest shift)."""
        return int(self.shift.max())

    def expand(self, start_round: IntArray) -> IntArray:
        """Start rounds of a compressed plan in the original instance."""
        return np.asarray(start_round, dtype=np.int64) + self.shift


def compress_idle(instance: Instance, min_rounds: int = MIN_IDLE_ROUNDS) -> IdleCompression | None:
    """The compression of the module docstring, or ``None`` when no stretch of ``min_rounds`` or more is idle."""
    arrival = instance.arrival
    if instance.n < 2 or int(arrival.max()) - int(arrival.min()) < min_rounds:
        return None
    order = np.argsort(arrival, kind="stable")
    a = arrival[order].astype(np.int64)
    o = instance.output_len[order].astype(np.int64)
    shift_sorted = np.zeros(instance.n, dtype=np.int64)
    removed = 0
    group_work = 0
    last = int(a[0])
    for k in range(instance.n):
        ak = int(a[k])
        if k and ak - last >= group_work + min_rounds:  # a new group: every earlier request is done
            removed += ak - last - group_work
            group_work = 0
        group_work += int(o[k])
        last = ak
        shift_sorted[k] = removed
    if removed == 0:
        return None
    shift = np.empty(instance.n, dtype=np.int64)
    shift[order] = shift_sorted
    compressed = instance.replace(arrival=instance.arrival - shift)
    return IdleCompression(compressed, shift)


def expand_result(
    result: SolveResult, compression: IdleCompression, original: Instance
) -> SolveResult:
    """``result`` (on the compressed instance) as a result on ``original``: the same objective and bound."""
    plan = (
        None
        if result.plan is None
        else Plan.checked(original, compression.expand(result.plan.start_round))
    )
    stats = dict(result.stats)
    stats["idle_rounds_removed"] = compression.removed
    return SolveResult(
        result.method,
        original,
        plan,
        lower_bound=result.lower_bound,
        stop_reason=result.stop_reason,
        build_seconds=result.build_seconds,
        solve_seconds=result.solve_seconds,
        proven_infeasible=result.proven_infeasible,
        stats=stats,
    )
