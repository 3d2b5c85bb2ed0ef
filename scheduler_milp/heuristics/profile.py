"""Memory and batch size per round of a (partial) plan, updated in place, with an exact earliest fit.

Shared by the methods that place requests one at a time against everything already placed:
``repack`` (insertion construction, compaction, ruin and recreate) and ``rh`` (each window's
hint and its fallback).

*Earliest fit.*  With the other requests fixed, request ``i`` fits at start ``S`` iff
``B * ceil((s_i + k) / B) <= R[S + k - 1]`` for ``k = 1..o_i``, where ``R = M - usage``.  With
``R'`` = ``R`` rounded down to a multiple of ``B`` this is exactly ``R'[t] - t >= s_i + 1 - S`` for
every round ``t`` of the run (the profile's multiples of ``B`` compare with ``R'`` like its
unrounded values), so one sliding-window minimum of ``R'[t] - t`` (van Herk / Gil-Werman, ``O(T)``
in numpy) gives every feasible start of a window at once; rounds already holding ``max_batch``
requests are set to ``-inf``.
"""

from __future__ import annotations

import numpy as np

from ..instance import Instance, IntArray
from ..plan import batch_size_per_round, memory_per_round

_INF = np.int64(1) << 60


def sliding_min(x: IntArray, w: int) -> IntArray:
    """``m[j] = min(x[j : j + w])`` for ``j = 0..len(x) - w`` in ``O(len(x))`` (van Herk / Gil-Werman)."""
    n = x.size
    nb = -(-n // w)
    pad = np.full(nb * w, _INF, dtype=np.int64)
    pad[:n] = x
    blk = pad.reshape(nb, w)
    pre = np.minimum.accumulate(blk, axis=1).ravel()
    suf = np.minimum.accumulate(blk[:, ::-1], axis=1)[:, ::-1].ravel()
    m = n - w + 1
    return np.minimum(suf[:m], pre[w - 1 : w - 1 + m])


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
        q = free - self.rounds[lo:end]
        if self.max_batch is not None:
            q = np.where(self.count[lo:end] >= self.max_batch, -_INF, q)
        ok = np.flatnonzero(sliding_min(q, o) + self.rounds[lo : hi + 1] >= self.prompt[i] + 1)
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
