"""Memory and batch size per round of a (partial) plan, updated in place, with an exact earliest fit.

Shared by the methods that place requests one at a time against everything already placed:
``repack`` (insertion construction, compaction, ruin and recreate) and ``rh`` (each window's
hint and its fallback).

*Earliest fit.*  With the other requests fixed, request ``i`` fits at start ``S`` iff
``B * ceil((s_i + k) / B) <= R[S + k - 1]`` for ``k = 1..o_i``, where ``R = M - usage``.  With
``R'`` = ``R`` rounded down to a multiple of ``B`` this is exactly ``R'[t] - t >= s_i + 1 - S`` for
every round ``t`` of the run (the profile's multiples of ``B`` compare with ``R'`` like its
unrounded values).  Round ``t`` thus rules out every start ``S <= block[t] = min(t, s_i - R'[t] + t)``
(starts after ``t`` never reach it); rounds already holding ``max_batch`` requests rule out every
start that covers them (``block[t] = t``).  One pass over the rounds from ``lo`` finds the earliest
feasible start: keep a candidate ``S``; when round ``t`` rules it out, the next candidate is
``block[t] + 1`` (the rounds between were already checked against a smaller candidate and
``block`` does not depend on ``S``); stop when ``o_i`` rounds in a row passed.  The scan stops at
the answer, so it reads only the rounds up to ``S + o_i - 1``.

*Compiled.*  The scan, :meth:`Profile.place`, :meth:`Profile.remove` and the batch operations
(:meth:`Profile.place_earliest`, :meth:`Profile.set_starts`, :meth:`Profile.compact`) are loops
compiled with numba (``cache=True``: the machine code is kept next to this module, or in numba's
user cache when that is not writable, so only the first process pays for compiling).  A
``repack`` move is one call of :meth:`Profile.place_earliest` for all its freed requests: its
steps are too short for numpy expressions over windows of rounds, whose interpreter and
allocation overhead would dominate.  Compiling (or loading from the cache) takes seconds and cannot
be interrupted: the methods ask :data:`WARMUP` first
(:class:`~scheduler_milp.heuristics.warmup.Warmup`), which compiles every kernel in a background
thread and is waited for only until their deadline.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..model.instance import Instance, IntArray
from ..model.plan import batch_size_per_round, memory_per_round
from .warmup import Warmup


@njit(cache=True, nogil=True)
def _earliest(usage, count, budget, block, max_batch, prompt, output, lo, hi):
    """Earliest start ``S >= lo`` (``S <= hi`` unless ``hi < 0``) where the request fits, or ``-1``.

    Rounds past the arrays are empty (nothing placed there), so without ``hi`` the scan always ends:
    every request fits alone.
    """
    size = usage.shape[0]
    s = lo
    t = lo
    while True:
        if hi >= 0 and s > hi:
            return -1
        if t - s >= output:  # rounds s .. s + output - 1 all passed
            return s
        if t < size:
            free = budget - usage[t]
            full = max_batch > 0 and count[t] >= max_batch
        else:
            free = budget
            full = False
        if block > 1:
            free = (free // block) * block
        b = prompt - free + t
        if b > t or full:
            b = t
        if b >= s:
            s = b + 1
        t += 1


@njit(cache=True, nogil=True)
def _add(usage, count, block, prompt, output, s, sign):
    """Add (``sign = 1``) or take out (``-1``) a request's memory ``mem(k)`` in rounds ``s .. s + output - 1``."""
    for k in range(1, output + 1):
        m = prompt + k
        if block > 1:
            m = ((m + block - 1) // block) * block
        usage[s + k - 1] += sign * m
        count[s + k - 1] += sign


@njit(cache=True, nogil=True)
def _place_earliest(
    usage, count, start, prompt, output, arrival, budget, block, max_batch, order, lo, first
):
    """Place ``order[first:]`` one by one, each at its earliest start from ``max(lo, arrival)`` on.

    Returns the position in ``order`` where it stopped because the arrays end too early for the
    next placement (``len(order)`` when all are placed); the caller grows them and goes on.
    """
    size = usage.shape[0]
    for j in range(first, order.shape[0]):
        i = order[j]
        s = _earliest(
            usage, count, budget, block, max_batch, prompt[i], output[i], max(lo, arrival[i]), -1
        )
        if s + output[i] >= size:
            return j
        _add(usage, count, block, prompt[i], output[i], s, 1)
        start[i] = s
    return order.shape[0]


@njit(cache=True, nogil=True)
def _remove_all(usage, count, start, prompt, output, block, which):
    """Take the requests ``which`` out of the rounds they run in (their ``start`` is kept)."""
    for j in range(which.shape[0]):
        i = which[j]
        _add(usage, count, block, prompt[i], output[i], start[i], -1)


@njit(cache=True, nogil=True)
def _set_starts(usage, count, start, prompt, output, block, which, new_start):
    """Take the requests ``which`` out and put them back at ``new_start`` (no feasibility check)."""
    _remove_all(usage, count, start, prompt, output, block, which)
    for j in range(which.shape[0]):
        i = which[j]
        _add(usage, count, block, prompt[i], output[i], new_start[j], 1)
        start[i] = new_start[j]


@njit(cache=True, nogil=True)
def _compact(usage, count, start, prompt, output, arrival, budget, block, max_batch, order, window):
    """Move each request of ``order`` in turn to its earliest feasible start, never later; the gain.

    ``window >= 0`` searches only that many rounds before the current start.
    """
    gain = 0
    for j in range(order.shape[0]):
        i = order[j]
        s = start[i]
        if s == arrival[i]:
            continue
        _add(usage, count, block, prompt[i], output[i], s, -1)
        lo = arrival[i] if window < 0 else max(arrival[i], s - window)
        s2 = _earliest(usage, count, budget, block, max_batch, prompt[i], output[i], lo, s)
        if 0 <= s2 < s:
            gain += s - s2
            s = s2
        _add(usage, count, block, prompt[i], output[i], s, 1)
        start[i] = s
    return gain


class Profile:
    """Start rounds with the memory and batch size per round of the placed requests.

    ``start_round`` places every request where it says; without it nothing is placed yet (requests
    are then added with :meth:`place`).
    """

    def __init__(self, instance: Instance, start_round: IntArray | None = None):
        self.instance = instance
        self.budget = int(instance.memory_budget)
        self.block = int(instance.block_size)
        self._cap = 0 if instance.max_batch is None else int(instance.max_batch)  # 0: no batch cap
        self.prompt = np.asarray(instance.prompt_len, dtype=np.int64)
        self.output = np.asarray(instance.output_len, dtype=np.int64)
        self.arrival = np.asarray(instance.arrival, dtype=np.int64)
        placed = start_round is not None
        self.start = (
            np.array(start_round, dtype=np.int64)
            if placed
            else np.zeros(instance.n, dtype=np.int64)
        )
        self.size = 0
        self.usage = np.zeros(0, dtype=np.int64)
        self.count = np.zeros(0, dtype=np.int64)
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
        self.size = new

    def remove(self, i: int) -> None:
        """Take request ``i`` out of the rounds it runs in (its ``start`` is kept)."""
        _add(
            self.usage,
            self.count,
            self.block,
            int(self.prompt[i]),
            int(self.output[i]),
            int(self.start[i]),
            -1,
        )

    def place(self, i: int, s: int) -> None:
        """Start request ``i`` (not placed) in round ``s``; no feasibility check."""
        o = int(self.output[i])
        self._ensure(s + o + 1)
        _add(self.usage, self.count, self.block, int(self.prompt[i]), o, s, 1)
        self.start[i] = s

    def remove_all(self, which: IntArray) -> None:
        """Take the requests ``which`` out of the rounds they run in (their ``start`` is kept)."""
        _remove_all(self.usage, self.count, self.start, self.prompt, self.output, self.block, which)

    def place_earliest(self, order: IntArray, lo: int) -> None:
        """Place the requests of ``order`` (not placed) one by one, each at its earliest feasible
        start from ``max(lo, arrival)`` on, next to everything placed before it."""
        done = 0
        while done < order.size:
            done = int(
                _place_earliest(
                    self.usage,
                    self.count,
                    self.start,
                    self.prompt,
                    self.output,
                    self.arrival,
                    self.budget,
                    self.block,
                    self._cap,
                    order,
                    lo,
                    done,
                )
            )
            if done < order.size:  # the arrays end before the next run would: grow them
                self._ensure(self.size + 2 * int(self.output[order[done]]) + 1)

    def set_starts(self, which: IntArray, new_start: IntArray) -> None:
        """Move the placed requests ``which`` to ``new_start`` (no feasibility check: an undo)."""
        if which.size:
            self._ensure(int((new_start + self.output[which]).max()) + 1)
        _set_starts(
            self.usage,
            self.count,
            self.start,
            self.prompt,
            self.output,
            self.block,
            which,
            new_start,
        )

    def compact(self, order: IntArray, window: int | None = None) -> int:
        """Move each request of ``order`` in turn to its earliest feasible start, never later; the
        total gain.  ``window``: only starts at most that many rounds earlier are searched."""
        return int(
            _compact(
                self.usage,
                self.count,
                self.start,
                self.prompt,
                self.output,
                self.arrival,
                self.budget,
                self.block,
                self._cap,
                order,
                -1 if window is None else window,
            )
        )

    def _scan(self, i: int, lo: int, hi: int) -> int:
        """:func:`_earliest` for request ``i`` from ``lo`` (``>=`` its arrival) to ``hi`` (``-1``: no end)."""
        return int(
            _earliest(
                self.usage,
                self.count,
                self.budget,
                self.block,
                self._cap,
                int(self.prompt[i]),
                int(self.output[i]),
                lo,
                hi,
            )
        )

    def earliest(self, i: int, lo: int, hi: int) -> int:
        """Earliest feasible start of ``i`` (not placed) in ``[lo, hi]``, or ``-1``."""
        lo = max(lo, int(self.arrival[i]))
        return -1 if hi < lo else self._scan(i, lo, hi)

    def earliest_after(self, i: int, lo: int) -> int:
        """Earliest feasible start of ``i`` (not placed) from ``lo`` (and its arrival) on.

        Always succeeds: from the end of the last placed run on nothing runs, and every request
        fits alone (``M`` is at least every request's peak).
        """
        return self._scan(i, max(lo, int(self.arrival[i])), -1)

    def objective(self) -> int:
        """Total latency of the current start rounds."""
        return int((self.start + self.output - self.arrival).sum())


def _warm_up() -> None:
    """Call every kernel once, through :class:`Profile`, on a tiny instance (the argument types of
    every real call: read-only ``int64`` instance arrays, ``int64`` orders, Python integers)."""
    inst = Instance.create(4, [1, 1, 2], [2, 1, 1], [0, 0, 1], name="warm-up", max_batch=2)
    prof = Profile(inst)
    order = np.arange(inst.n, dtype=np.int64)
    prof.place_earliest(order, 0)
    prof.compact(order)
    prof.compact(order, 2)
    prof.remove_all(order[:1])
    prof.set_starts(order[:1], prof.start[:1].copy())
    prof.remove(0)
    prof.earliest(0, 0, 3)
    prof.place(0, prof.earliest_after(0, 0))
    Profile(inst, prof.start)


#: the kernels' first call (compiling or loading them), made in a background thread
WARMUP = Warmup("compiling the earliest-fit kernels", _warm_up)
