"""A policy's estimated world, presented to the offline start rule.

The offline methods decide with :class:`~scheduler_milp.baselines.engine.RunningSet` (the
future-peak check) and, for Sorted-F, :func:`~scheduler_milp.heuristics.sorted_f.min_f_batch`,
both of which read a request's prompt and output length by index.  An online policy knows neither
the true output nor the final number of requests, so it hands them an :class:`EstimateWorld`
instead of an instance: growable arrays indexed by handle holding, for each request, the prompt it
would hold when started (``s + kept`` tokens) and the *remaining* estimated output.  A request
that runs is (re-)added to the :class:`EstimateSet` in the current round with the prompt it holds
now and its remaining estimate, which gives exactly the memory profile it has in truth, so the
offline check applies unchanged.  With exact predictions this makes every online policy take the
offline method's decisions (tested).

:class:`WaitingPool` keeps the waiting requests in flat arrays (swap-remove) with two integer
keys, so that "best waiting request" and "every waiting request that fits now" are a few numpy
operations whatever the backlog.
"""

from __future__ import annotations

import heapq
from typing import Any, cast

import numpy as np

from ..baselines.engine import RunningSet
from ..heuristics.sorted_f import _Screen
from ..model.instance import Instance, IntArray

_START_CAPACITY = 64


def _grown(arr: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=arr.dtype)
    out[: arr.size] = arr
    return out


class EstimateWorld:
    """The attributes of an :class:`~scheduler_milp.model.instance.Instance` that the start rule
    reads, over handles and on estimates (``prompt_len``: held prompt, ``output_len``: remaining)."""

    def __init__(self, memory: int, block_size: int):
        self.memory_budget = int(memory)
        self.block_size = int(block_size)
        self.prompt_len = np.zeros(_START_CAPACITY, dtype=np.int64)
        self.output_len = np.ones(_START_CAPACITY, dtype=np.int64)
        self.peak_memory = np.zeros(_START_CAPACITY, dtype=np.int64)

    def ensure(self, handle: int) -> None:
        """Make room for ``handle``."""
        if handle >= self.prompt_len.size:
            size = max(2 * self.prompt_len.size, handle + 1)
            self.prompt_len = _grown(self.prompt_len, size)
            self.output_len = _grown(self.output_len, size)
            self.peak_memory = _grown(self.peak_memory, size)

    def mem(self, i: Any, k: Any) -> Any:
        """``B * ceil((prompt + k) / B)`` (as :meth:`Instance.mem`)."""
        b = self.block_size
        x = self.prompt_len[i] + k
        return ((x + b - 1) // b) * b


class EstimateSet(RunningSet):
    """:class:`RunningSet` over an :class:`EstimateWorld`: members are added in the current round
    with the prompt they hold and their remaining estimate (:meth:`set` before :meth:`add`)."""

    def __init__(self, memory: int, block_size: int):
        self.world = EstimateWorld(memory, block_size)
        super().__init__(cast(Instance, self.world))
        self._prompt = self.world.prompt_len.tolist()
        self._output = self.world.output_len.tolist()

    def set(self, handle: int, prompt: int, remaining: int) -> None:
        """Record what ``handle`` would hold and how long it would run if started now."""
        if handle in self._members:
            raise ValueError(f"handle {handle} is running; remove it before changing it")
        w = self.world
        if handle >= len(self._prompt):
            w.ensure(handle)
            extra = w.prompt_len.size - len(self._prompt)
            self._prompt.extend([0] * extra)
            self._output.extend([1] * extra)
        self._prompt[handle] = prompt
        self._output[handle] = remaining
        w.prompt_len[handle] = prompt
        w.output_len[handle] = remaining
        b = w.block_size
        w.peak_memory[handle] = -(-(prompt + remaining) // b) * b

    def remaining(self, handle: int) -> int:
        """The remaining estimate recorded for ``handle``."""
        return int(self._output[handle])

    def held_prompt(self, handle: int) -> int:
        """The prompt recorded for ``handle``."""
        return int(self._prompt[handle])

    def predicted_overflow(self) -> int:
        """The first checkpoint (a member's last round) at which the members' estimated memory
        exceeds the budget, ``-1`` if none: memory only grows between checkpoints, so these are
        the only rounds to check."""
        use = self._use
        m = self.M
        for k, u in enumerate(use):
            if u > m:
                return int(self._comp[k]) - 1
        return -1


class Screen(_Screen):
    """The vectorised future-peak screen of Sorted-F over an :class:`EstimateWorld`."""

    def __init__(self, world: EstimateWorld):  # the parent's per-instance cache is not wanted
        self.world = world
        self.refresh()

    def refresh(self) -> None:
        """Point at the world's current arrays (they are replaced when they grow)."""
        self.prompt_len = self.world.prompt_len
        self.peak_memory = self.world.peak_memory

    def fitting(self, running: RunningSet, cand: IntArray, t: int) -> IntArray:
        """The candidates (order kept) that can start in round ``t`` next to ``running``."""
        if not cand.size:
            return cand
        w = self.world
        smax = running.max_prompt(w.output_len[cand], t)
        return cand[w.prompt_len[cand] <= smax]


class WaitingPool:
    """Waiting requests with keys ``(k1, k2, handle)`` (smaller first), in flat arrays."""

    def __init__(self) -> None:
        self.handle = np.zeros(_START_CAPACITY, dtype=np.int64)
        self.k1 = np.zeros(_START_CAPACITY, dtype=np.int64)
        self.k2 = np.zeros(_START_CAPACITY, dtype=np.int64)
        self.prompt = np.zeros(_START_CAPACITY, dtype=np.int64)
        self.rem = np.zeros(_START_CAPACITY, dtype=np.int64)
        self.slot: dict[int, int] = {}
        self.size = 0
        # the same requests in a heap of (k1, k2, handle, version) with lazy deletion: "best" in
        # O(log n) for the blocking walks, which ask for it after every start
        self._heap: list[tuple[int, int, int, int]] = []
        self._version: dict[int, int] = {}

    def __len__(self) -> int:
        return self.size

    def __contains__(self, handle: object) -> bool:
        return handle in self.slot

    def add(self, handle: int, k1: int, k2: int, prompt: int, rem: int) -> None:
        """A request joins (or re-joins) the waiting requests."""
        if handle in self.slot:
            self.remove(handle)
        if self.size == self.handle.size:
            size = 2 * self.size
            self.handle, self.k1, self.k2 = (
                _grown(a, size) for a in (self.handle, self.k1, self.k2)
            )
            self.prompt, self.rem = _grown(self.prompt, size), _grown(self.rem, size)
        p = self.size
        self.handle[p], self.k1[p], self.k2[p] = handle, k1, k2
        self.prompt[p], self.rem[p] = prompt, rem
        self.slot[handle] = p
        self.size += 1
        version = self._version.get(handle, 0) + 1
        self._version[handle] = version
        heapq.heappush(self._heap, (k1, k2, handle, version))

    def remove(self, handle: int) -> None:
        """A request leaves (it started)."""
        p = self.slot.pop(handle)
        last = self.size - 1
        if p != last:
            moved = int(self.handle[last])
            for arr in (self.handle, self.k1, self.k2, self.prompt, self.rem):
                arr[p] = arr[last]
            self.slot[moved] = p
        self.size = last

    def handles(self) -> IntArray:
        """The waiting handles (unordered view)."""
        return self.handle[: self.size]

    def best(self) -> int:
        """The waiting request with the smallest ``(k1, k2, handle)`` (``-1`` if none)."""
        heap = self._heap
        slot, version = self.slot, self._version
        while heap:
            k1, k2, h, v = heap[0]
            if h in slot and version[h] == v:
                return h
            heapq.heappop(heap)
        return -1

    def rekey(self, handle: int, k1: int, k2: int) -> None:
        """Change a waiting request's keys."""
        p = self.slot[handle]
        self.k1[p], self.k2[p] = k1, k2
        version = self._version[handle] + 1
        self._version[handle] = version
        heapq.heappush(self._heap, (k1, k2, handle, version))
        if len(self._heap) > 4 * self.size + 64:  # drop the stale entries now and then
            self._heap = [
                (
                    int(self.k1[q]),
                    int(self.k2[q]),
                    int(self.handle[q]),
                    self._version[int(self.handle[q])],
                )
                for q in range(self.size)
            ]
            heapq.heapify(self._heap)

    def sort(self, slots: IntArray) -> IntArray:
        """The handles at ``slots`` in key order."""
        order = np.lexsort((self.handle[slots], self.k2[slots], self.k1[slots]))
        return self.handle[slots[order]]

    def fitting(self, running: RunningSet, t: int, extra: int = 0) -> IntArray:
        """Slots of the waiting requests that fit in round ``t`` next to ``running`` for their whole
        estimated life (and next to ``extra`` memory held in round ``t`` only)."""
        slots = np.arange(self.size, dtype=np.int64)
        if not slots.size:
            return slots
        b = running.B
        free = running.M - (running.usage_now(t) if len(running) else 0) - extra
        # necessary: the first round fits the memory free now
        slots = slots[self.prompt[slots] <= (free // b) * b - 1]
        if not slots.size:
            return slots
        bound = running.max_prompt(self.rem[slots], t)
        return slots[self.prompt[slots] <= bound]
