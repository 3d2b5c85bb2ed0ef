"""Memory and batch size per round of a (partial) plan, updated in place, with an exact earliest fit.

Shared by the methods that place requests one at a time against everything already placed:
``repack`` (insertion construction, compaction, ruin and recreate) and ``rh`` (each window's
hint and its fallback).

*Earliest fit.*  With the other requests fixed, request ``i`` fits at start ``S`` iff
``B * ceil((s_i + k) / B) <= R[S + k - 1]`` for ``k = 1..o_i``, where ``R = M - usage``.  With
``R'`` = ``R`` rounded down to a multiple of ``B`` this is exactly ``R'[t] - t >= s_i + 1 - S`` for
every round ``t`` of the run (the profile's multiples of ``B`` compare with ``R'`` like its
unrounded values).  Round ``t`` thus rules out the starts ``S <= t`` below ``s_i + 1 - R'[t] + t``,
and ``S`` fits iff the running maximum of those limits up to round ``S + o_i - 1`` is below ``S``:
one ``maximum.accumulate`` over the window gives every feasible start of it at once (about 1.5x
faster than the sliding-window minimum it replaced).  Rounds already holding ``max_batch`` requests
rule out every start that covers them.
"""

from __future__ import annotations

import numpy as np

from ..instance import Instance, IntArray
from ..plan import batch_size_per_round, memory_per_round


class Profile:
    """Start rounds with the memory and batch size per round of the placed requests.

    ``start_round`` places every request where it says; without it nothing is placed yet (requests
    are then added with :meth:`place`).
    """

    def __init__(self, instance: Instance, start_round: IntArray | None = None):
        self.instance = instance
        self.budget = int(instance.memory_budget)
        self.block = int(instance.block_size)
        self.max_batch = instance.max_batch
        self.prompt = np.asarray(instance.prompt_len, dtype=np.int64)
        self.output = np.asarray(instance.output_len, dtype=np.int64)
        self.arrival = np.asarray(instance.arrival, dtype=np.int64)
        placed = start_round is not None
        self.start = np.array(start_round, dtype=np.int64) if placed else np.zeros(instance.n, dtype=np.int64)
        self.size = 0
        self.usage = np.zeros(0, dtype=np.int64)
        self.count = np.zeros(0, dtype=np.int64)
        self.rounds = np.zeros(0, dtype=np.int64)
        # mem_i(1..o_i) of each request, built on first use: place/remove run thousands of times a second
        self._profiles: dict[int, IntArray] = {}
        self._ensure(int((self.start + self.output).max()) + int(self.output.max()) + 1)
        if placed:
            mem = memory_per_round(instance, self.start)
            self.usage[: mem.size] = mem
            cnt = batch_size_per_round(instance, self.start)
            self.count[: cnt.size] = cnt

    def _ensure(self, length: int) -> None:
        if length <= self.size:
            return
        new = max(length, self.size + self.size // 2 + 64)
        self.usage = np.concatenate([self.usage, np.zeros(new - self.size, dtype=np.int64)])
        self.count = np.concatenate([self.count, np.zeros(new - self.size, dtype=np.int64)])
        self.rounds = np.arange(new, dtype=np.int64)
        self.size = new

    def profile(self, i: int) -> IntArray:
        """``mem_i(k)`` for ``k = 1..o_i``."""
        prof = self._profiles.get(i)
        if prof is None:
            prof = np.asarray(self.instance.mem(i, np.arange(1, self.output[i] + 1, dtype=np.int64)), dtype=np.int64)
            self._profiles[i] = prof
        return prof

    def remove(self, i: int) -> None:
        """Take request ``i`` out of the rounds it runs in (its ``start`` is kept)."""
        s, o = int(self.start[i]), int(self.output[i])
        self.usage[s : s + o] -= self.profile(i)
        self.count[s : s + o] -= 1

    def place(self, i: int, s: int) -> None:
        """Start request ``i`` (not placed) in round ``s``; no feasibility check."""
        o = int(self.output[i])
        self._ensure(s + o + 1)
        self.usage[s : s + o] += self.profile(i)
        self.count[s : s + o] += 1
        self.start[i] = s

    def earliest(self, i: int, lo: int, hi: int) -> int:
        """Earliest feasible start of ``i`` (not placed) in ``[lo, hi]``, or ``-1``."""
        lo = max(lo, int(self.arrival[i]))
        if hi < lo:
            return -1
        o = int(self.output[i])
        end = hi + o
        self._ensure(end + 1)
        free = self.budget - self.usage[lo:end]
        if self.block > 1:
            free = (free // self.block) * self.block
        t = self.rounds[lo:end]
        # Start S fits iff free[t] - t >= need - S for t in [S, S + o).  Round t rules out the
        # starts up to block[t] = min(t, need - 1 - free[t] + t) that cover it (starts after t
        # never reach it), so S fits iff the running maximum of block up to round S + o - 1 is
        # below S: one accumulate over the window (rounds before lo block no start >= lo).
        block = np.minimum(t, int(self.prompt[i]) - free + t)
        if self.max_batch is not None:
            block = np.where(self.count[lo:end] >= self.max_batch, t, block)
        ok = np.flatnonzero(np.maximum.accumulate(block)[o - 1 :] < t[: hi - lo + 1])
        return lo + int(ok[0]) if ok.size else -1

    def earliest_after(self, i: int, lo: int, hi: int) -> int:
        """Earliest feasible start of ``i`` (not placed) from ``lo`` on: ``[lo, hi]`` first, then beyond.

        Always succeeds: from the end of the last placed run on nothing runs, and every request
        fits alone (``M`` is at least every request's peak), so the search stops there.
        """
        s = self.earliest(i, lo, hi)
        if s >= 0:
            return s
        busy = np.flatnonzero(self.count)
        free_from = max(int(busy[-1]) + 1 if busy.size else 0, int(self.arrival[i]), lo)
        step = max(256, hi - lo)
        while hi < free_from:
            lo, hi = hi + 1, min(hi + step, free_from)
            s = self.earliest(i, lo, hi)
            if s >= 0:
                return s
            step *= 2
        return free_from

    def objective(self) -> int:
        """Total latency of the current start rounds."""
        return int((self.start + self.output - self.arrival).sum())
