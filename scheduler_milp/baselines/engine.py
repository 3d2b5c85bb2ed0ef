"""The shared start rule: the future-peak feasibility check and the event-driven priority walk.

Every list-scheduling method of the toolkit (``fcfs``, ``sf``, ``size``, ``mcsf``, ``svf``, the
decoder of the local search and of the LP-guided orders) is :func:`priority_walk` with a different
priority; ``vllm`` reuses :class:`RunningSet` for its memory arithmetic.

Future-peak check (docs/methods.md).  Between two completions the memory of a fixed set of running requests
only grows, so a candidate ``j`` started in round ``t`` fits for its whole life iff
(a) at the last round ``tau_k = C_k - 1`` of every running request still alive in ``j``'s window,
    ``U(tau_k) + mem_j(tau_k - t + 1) <= M``, and
(b) at ``j``'s own last round ``e = t + o_j - 1``, ``U(e) + mem_j(o_j) <= M``,
where ``U`` is the memory of the running requests.  Both conditions are upper bounds on the prompt
length ``s_j`` that depend only on ``t`` and ``o_j`` (:meth:`RunningSet.max_prompt`), which is what
makes the skipping walk fast: waiting requests are grouped by output length and one bound per group
screens the whole group.

Speed, so that a whole trace of tens of thousands of requests decodes in seconds: the running set
is updated incrementally (one sorted insertion per start, the memory at every checkpoint adjusted in
place) instead of being rebuilt, and the skipping walk finds the first fitting waiting request
through per-output-length groups over a min-tree of prompt lengths instead of re-checking every
waiting request at every decision round.  The walk itself (:func:`priority_walk`) is a loop over
decision rounds whose steps (arrivals, starts, the next decision round) are small helpers.
"""

from __future__ import annotations

import heapq
import logging
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..model.instance import Instance, IntArray

log = logging.getLogger(__name__)

_EMPTY = np.zeros(0, dtype=np.int64)
# "no bound": far above any memory budget, far below int64 overflow when shifted by a round number
_NO_BOUND = np.iinfo(np.int64).max // 4


class RunningSet:
    """Requests already started whose future memory profile is fixed.

    Kept sorted by completion ``C_k``; for every member the memory ``U(tau_k)`` of the whole set at
    its last round ``tau_k = C_k - 1`` (its *checkpoint*) and the slack
    ``g_k = B*floor((M - U(tau_k))/B) - tau_k`` are maintained incrementally, so that condition
    (a) for a start in round ``t`` reads ``s_j <= g_k + t - 1``.  The state lives in Python lists
    because a running set holds tens of requests, where per-call numpy overhead would dominate;
    the vectorised queries (:meth:`usage_at`, :meth:`max_prompt`, :meth:`fits_many`) use numpy
    copies made on demand.  Requests must be added in non-decreasing start order, and a query about
    round ``t`` assumes every member started in a round ``<= t`` (the walks and the vLLM simulation
    add members at the current round and only ask about the current round or later).
    """

    def __init__(self, instance: Instance):
        self.instance = instance
        self.M = instance.memory_budget
        self.B = instance.block_size
        self._prompt = instance.prompt_len.tolist()
        self._output = instance.output_len.tolist()
        self._members: dict[int, int] = {}  # request -> start round
        self._last_start = -1
        # parallel lists sorted by completion (ties in insertion order)
        self._idx: list[int] = []
        self._comp: list[int] = []
        self._base: list[
            int
        ] = []  # s_k - S_k + 1: request k holds ceil_B(base_k + tau) in round tau
        self._use: list[int] = []  # U(C_k - 1)
        self._g: list[int] = []  # slack of condition (a)
        self._arrays: tuple[IntArray, ...] | None = None  # numpy copies for vectorised queries
        self._pad_table = (-(np.arange(self.B)[:, None] + np.arange(self.B)[None, :])) % self.B

    # ------------------------------------------------------------------ membership
    def __len__(self) -> int:
        return len(self._members)

    def members(self) -> dict[int, int]:
        """``{request: start round}`` of the running requests (do not modify)."""
        return self._members

    @property
    def completion(self) -> IntArray:
        """Completion rounds of the members, ascending."""
        return np.array(self._comp, dtype=np.int64)

    @property
    def tau(self) -> IntArray:
        """Checkpoints: the last round ``C_k - 1`` of every member, ascending."""
        return np.array(self._comp, dtype=np.int64) - 1

    @property
    def usage_tau(self) -> IntArray:
        """Memory ``U(tau_k)`` of all members at each checkpoint (aligned with :attr:`tau`)."""
        return np.array(self._use, dtype=np.int64)

    def _slack(self, usage: int, tau: int) -> int:
        b = self.B
        return ((self.M - usage) // b) * b - tau

    def add(self, i: int, start: int) -> None:
        """Start request ``i`` in round ``start`` (not before the last start added)."""
        if i in self._members:
            raise ValueError(f"request {i} is already running")
        if start < self._last_start:
            raise ValueError(
                f"starts must be added in non-decreasing order ({start} < {self._last_start})"
            )
        self._last_start = start
        b = self.B
        m = self.M
        comp = start + self._output[i]
        base = self._prompt[i] - start + 1
        cs, use, g, bases = self._comp, self._use, self._g, self._base
        ins = bisect_right(cs, comp)
        lo = bisect_left(cs, comp, 0, ins)
        # i is alive at the checkpoints tau_k = c_k - 1 with start <= tau_k <= comp - 1
        first = bisect_right(cs, start, 0, ins)
        tau_i = comp - 1
        if first < ins:
            # list comprehensions over slices: several times faster than an indexed loop
            window = cs[first:ins]
            if b == 1:
                d = base - 1  # i holds base + tau_k = c_k + d at checkpoint k
                use[first:ins] = [u + c + d for u, c in zip(use[first:ins], window, strict=True)]
                g[first:ins] = [x - c - d for x, c in zip(g[first:ins], window, strict=True)]
            else:
                d = base - 1
                new_use = [
                    u - ((-(c + d)) // b) * b for u, c in zip(use[first:ins], window, strict=True)
                ]
                use[first:ins] = new_use
                g[first:ins] = [
                    ((m - u) // b) * b - c + 1 for u, c in zip(new_use, window, strict=True)
                ]
        if b == 1:
            own = sum(bases[lo:]) + (len(cs) - lo) * tau_i + base + tau_i
        else:
            own = sum(-((-(x + tau_i)) // b) * b for x in bases[lo:]) - ((-(base + tau_i)) // b) * b
        self._members[i] = start
        self._idx.insert(ins, i)
        cs.insert(ins, comp)
        bases.insert(ins, base)
        use.insert(ins, own)
        g.insert(ins, self._slack(own, tau_i))
        self._arrays = None

    def remove(self, i: int) -> None:
        """Take request ``i`` out (completed or evicted)."""
        start = self._members.pop(i)
        p = self._idx.index(i)
        b = self.B
        cs, use, g = self._comp, self._use, self._g
        comp, base = cs[p], self._base[p]
        hi = bisect_right(cs, comp)
        first = bisect_right(cs, start, 0, hi)
        for k in range(first, hi):
            tau = cs[k] - 1
            use[k] -= -((-(base + tau)) // b) * b
            g[k] = self._slack(use[k], tau)
        for lst in (self._idx, cs, self._base, use, g):
            del lst[p]
        self._arrays = None

    def drop_completed(self, t: int) -> list[int]:
        """Remove every request whose completion ``C_i <= t``; return them (by completion)."""
        cs = self._comp
        if not cs or cs[0] > t:
            return []
        k = bisect_right(cs, t)
        done = self._idx[:k]
        for i in done:
            del self._members[i]
        # the memory at the remaining checkpoints (all > t) never included the completed ones
        for lst in (self._idx, cs, self._base, self._use, self._g):
            del lst[:k]
        self._arrays = None
        return done

    def next_completion(self) -> int | None:
        """The earliest completion round among the running requests."""
        return self._comp[0] if self._comp else None

    # ------------------------------------------------------------------ profile arithmetic
    def usage_now(self, tau: int) -> int:
        """Memory of the running requests in the single round ``tau`` (scalar :meth:`usage_at`)."""
        cs = self._comp
        pos = bisect_right(cs, tau)
        b = self.B
        if b == 1:
            return sum(self._base[pos:]) + (len(cs) - pos) * tau
        return sum(-((-(x + tau)) // b) * b for x in self._base[pos:])

    def _numpy(self) -> tuple[IntArray, ...]:
        """``(completion, suffix sums of base, suffix phase counts, slack, prefix-min slack)``.

        The prefix minimum has a leading "no bound" so that ``gmin[cnt]`` is the minimum slack over
        the first ``cnt`` checkpoints, ``cnt = 0`` included.
        """
        if self._arrays is None:
            comp = np.array(self._comp, dtype=np.int64)
            base = np.array(self._base, dtype=np.int64)
            r = comp.size
            b = self.B
            suf = np.zeros(r + 1, dtype=np.int64)
            if r:
                suf[:r] = np.cumsum(base[::-1])[::-1]
            if b > 1:
                onehot = np.zeros((r + 1, b), dtype=np.int64)
                onehot[np.arange(r), base % b] = 1
                suf_phase = np.cumsum(onehot[::-1], axis=0)[::-1]
            else:
                suf_phase = _EMPTY
            g = np.array(self._g, dtype=np.int64)
            gmin = np.empty(r + 1, dtype=np.int64)
            gmin[0] = _NO_BOUND
            np.minimum.accumulate(g, out=gmin[1:])
            self._arrays = (comp, suf, suf_phase, g, gmin)
        return self._arrays

    def usage_at(self, tau: IntArray | int) -> IntArray:
        """Memory of the running requests in round(s) ``tau`` (each ``>=`` every start)."""
        tau_arr = np.atleast_1d(np.asarray(tau, dtype=np.int64))
        if not self._comp:
            return np.zeros(tau_arr.shape, dtype=np.int64)
        return self._usage_sorted(tau_arr)

    def _usage_sorted(self, tau_arr: IntArray) -> IntArray:
        comp, suf, suf_phase, _, _ = self._numpy()
        # alive in round tau: completion > tau -> the suffix from the first such request
        pos = np.searchsorted(comp, tau_arr, side="right")
        usage = suf[pos] + (comp.size - pos) * tau_arr
        if self.B > 1:
            # request k pads (-(base_k + tau)) mod B, a function of its phase base_k mod B
            usage += (suf_phase[pos] * self._pad_table[tau_arr % self.B]).sum(axis=1)
        return usage

    # ------------------------------------------------------------------ the future-peak check
    def max_prompt(self, out_values: IntArray, t: int) -> IntArray:
        """Largest prompt length with which a request of each output length fits in round ``t``.

        A request ``(s, o)`` may start in round ``t`` iff ``s <= max_prompt(o, t)``: both
        conditions of the future-peak check are upper bounds on ``s`` given ``o`` (a negative value
        means no prompt fits).
        """
        o = np.asarray(out_values, dtype=np.int64)
        b = self.B
        end = o + (t - 1)
        if not self._comp:
            return ((self.M - 0 * o) // b) * b - o
        usage = self._usage_sorted(end)
        bound = (
            self.M - usage if b == 1 else ((self.M - usage) // b) * b
        ) - o  # (b): own last round
        comp, _, _, g, gmin = self._numpy()
        # (a): every checkpoint tau_k in [t, end], i.e. t < c_k <= end + 1
        lo = bisect_right(self._comp, t)
        if lo:
            gmin = np.full(comp.size + 1, _NO_BOUND, dtype=np.int64)
            np.minimum.accumulate(g[lo:], out=gmin[lo + 1 :])
        cnt = np.searchsorted(comp, end + 1, side="right")
        return np.minimum(bound, gmin[cnt] + (t - 1))

    def max_prompt_one(self, out_value: int, t: int) -> int:
        """Scalar :meth:`max_prompt` for one output length."""
        b = self.B
        end = t + out_value - 1
        bound = ((self.M - self.usage_now(end)) // b) * b - out_value
        cs = self._comp
        if cs:
            lo = bisect_right(cs, t)
            hi = bisect_right(cs, end + 1)
            if hi > lo:
                bound_a = min(self._g[lo:hi]) + t - 1
                if bound_a < bound:
                    bound = bound_a
        return bound

    def fits_many(self, cand: IntArray, t: int) -> np.ndarray:
        """Boolean mask: can each candidate start in round ``t`` and never break ``M``?"""
        cand = np.asarray(cand, dtype=np.int64)
        inst = self.instance
        return inst.prompt_len[cand] <= self.max_prompt(inst.output_len[cand], t)

    def fits(self, j: int, t: int) -> bool:
        """Can request ``j`` start in round ``t``?  (Scalar :meth:`fits_many`.)"""
        return self._prompt[j] <= self.max_prompt_one(self._output[j], t)

    def earliest_start(self, j: int, t: int, stop_at: int | None = None) -> int:
        """Earliest round ``>= t`` in which ``j`` fits, if nothing else starts or stops early.

        Jumps from violation to violation: each violated constraint gives a round before which it
        stays violated (a later start only moves ``j``'s window right), so no feasible round is
        skipped.  With ``stop_at`` the search gives up once it reaches that round and returns a
        round ``>= stop_at`` (for callers that only need ``min(earliest, stop_at)``).
        """
        b = self.B
        s, o = self._prompt[j], self._output[j]
        cs, g = self._comp, self._g
        while stop_at is None or t < stop_at:
            end = t + o - 1
            nxt = t
            lo = bisect_right(cs, t)  # checkpoints tau_k >= t
            hi = bisect_right(cs, end + 1, lo)  # ... and <= end
            lim = s - t + 1  # violated iff g_k < lim
            for k in range(lo, hi):
                if g[k] < lim:
                    # checkpoint k stays violated until s <= g_k + t' - 1 or it leaves the
                    # window (t' > tau_k, i.e. t' >= c_k)
                    need = s - g[k] + 1
                    if need > cs[k]:
                        need = cs[k]
                    if need > nxt:
                        nxt = need
            if s + o > ((self.M - self.usage_now(end)) // b) * b:
                # own end inside a segment whose usage is already too high (usage only grows
                # within a segment): move the end to the next completion after ``end``
                pos = bisect_right(cs, end)
                nxt = max(nxt, cs[pos] - o + 1)
            if nxt == t:
                return t
            t = nxt
        return t


def natural_rank(ids: tuple[str, ...]) -> IntArray:
    """Rank of each id under natural order (``r2`` before ``r10``), for deterministic tie-breaks."""

    def key(x: str) -> list[object]:
        return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", x)]

    order = sorted(range(len(ids)), key=lambda i: key(ids[i]))
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids))
    return rank


def priority_from_keys(instance: Instance, *keys: IntArray | np.ndarray) -> IntArray:
    """Request indices sorted by the given keys (first key most significant), ties by arrival then id."""
    rank = natural_rank(instance.ids)
    # np.lexsort sorts by the last key first
    return np.lexsort((rank, instance.arrival, *reversed(keys))).astype(np.int64)


@dataclass
class WalkResult:
    """Start rounds from a walk plus counters."""

    start_round: IntArray
    events: int = 0
    checks: int = 0
    stats: dict[str, float] = field(default_factory=dict)


class _WaitingByOutput:
    """Waiting requests grouped by output length, each group in priority order.

    A min-tree over prompt lengths (leaves in group-major, rank-minor order; ``_NO_BOUND`` for a
    request that is not waiting) answers "first waiting request of group ``g`` in priority order
    with ``s <= x``" in ``O(log n)``.  Since every member of a group shares the bound
    :meth:`RunningSet.max_prompt` of its output length, a group holds a fitting request iff its
    smallest waiting prompt is at most that bound, which one vectorised comparison over the
    groups decides.
    """

    def __init__(self, instance: Instance, rank: IntArray):
        n = instance.n
        self.prompt_len = instance.prompt_len
        self.rank = rank
        self.out_values, group = np.unique(instance.output_len, return_inverse=True)
        self.group = group.astype(np.int64)
        order = np.lexsort((rank, self.group))
        self.req_at: list[int] = order.tolist()  # leaf position -> request
        self.leaf = np.empty(n, dtype=np.int64)
        self.leaf[order] = np.arange(n)
        counts = np.bincount(self.group, minlength=self.out_values.size)
        self.offset = np.concatenate(([0], np.cumsum(counts))).tolist()
        size = 1
        while size < n:
            size *= 2
        self.size = size
        self.tree = [int(_NO_BOUND)] * (2 * size)
        d = self.out_values.size
        self.min_s = np.full(d, _NO_BOUND, dtype=np.int64)  # smallest waiting prompt per group
        self.first_rank = np.full(d, _NO_BOUND, dtype=np.int64)  # best waiting rank per group
        self.count = 0

    def _set(self, pos: int, value: int) -> None:
        tree = self.tree
        node = pos + self.size
        tree[node] = value
        node >>= 1
        while node:
            a, b = tree[2 * node], tree[2 * node + 1]
            m = a if a < b else b
            if tree[node] == m:
                break
            tree[node] = m
            node >>= 1

    def _range_first(self, lo: int, hi: int, x: int) -> int:
        """Leftmost leaf position in ``[lo, hi)`` with value ``<= x`` (``-1`` if none)."""
        tree = self.tree
        size = self.size
        left, right = lo + size, hi + size
        left_nodes: list[int] = []
        right_nodes: list[int] = []
        while left < right:
            if left & 1:
                left_nodes.append(left)
                left += 1
            if right & 1:
                right -= 1
                right_nodes.append(right)
            left >>= 1
            right >>= 1
        for node in left_nodes + right_nodes[::-1]:
            if tree[node] <= x:
                while node < size:
                    node *= 2
                    if tree[node] > x:
                        node += 1
                return node - size
        return -1

    def _refresh(self, g: int) -> None:
        lo, hi = self.offset[g], self.offset[g + 1]
        p = self._range_first(lo, hi, int(_NO_BOUND) - 1)
        if p < 0:
            self.min_s[g] = _NO_BOUND
            self.first_rank[g] = _NO_BOUND
            return
        self.first_rank[g] = self.rank[self.req_at[p]]
        # smallest value in the group: the root of the canonical cover
        tree = self.tree
        left, right = lo + self.size, hi + self.size
        m = int(_NO_BOUND)
        while left < right:
            if left & 1:
                m = min(m, tree[left])
                left += 1
            if right & 1:
                right -= 1
                m = min(m, tree[right])
            left >>= 1
            right >>= 1
        self.min_s[g] = m

    def add_many(self, reqs: IntArray) -> None:
        """Requests that arrived: they wait from now on."""
        if reqs.size * 8 >= self.size:
            # many at once (a backlog): rebuild the tree bottom-up in numpy
            tree = np.asarray(self.tree, dtype=np.int64)
            tree[self.size + self.leaf[reqs]] = self.prompt_len[reqs]
            level = self.size
            while level > 1:
                half = level // 2
                tree[half:level] = np.minimum(
                    tree[level : 2 * level : 2], tree[level + 1 : 2 * level : 2]
                )
                level = half
            self.tree = tree.tolist()
            groups = np.unique(self.group[reqs])
            for g in groups.tolist():
                self._refresh(g)
        else:
            for j in reqs.tolist():
                g = int(self.group[j])
                s = int(self.prompt_len[j])
                self._set(int(self.leaf[j]), s)
                if s < self.min_s[g]:
                    self.min_s[g] = s
                r = int(self.rank[j])
                if r < self.first_rank[g]:
                    self.first_rank[g] = r
        self.count += int(reqs.size)

    def remove(self, j: int) -> None:
        """Request ``j`` started."""
        g = int(self.group[j])
        self._set(int(self.leaf[j]), int(_NO_BOUND))
        self.count -= 1
        if self.prompt_len[j] == self.min_s[g] or self.rank[j] == self.first_rank[g]:
            self._refresh(g)

    def first_fitting(self, groups: IntArray, bounds: IntArray) -> int:
        """The waiting request of best rank with ``s <= bound`` of its group (groups all hold one)."""
        if groups.size == 1:
            g = int(groups[0])
            return self.req_at[
                self._range_first(self.offset[g], self.offset[g + 1], int(bounds[0]))
            ]
        order = np.argsort(self.first_rank[groups], kind="stable")
        best_rank = int(_NO_BOUND)
        best = -1
        for k in order.tolist():
            g = int(groups[k])
            if self.first_rank[g] >= best_rank:
                break  # no later group can hold a better rank
            p = self._range_first(self.offset[g], self.offset[g + 1], int(bounds[k]))
            j = self.req_at[p]
            r = int(self.rank[j])
            if r < best_rank:
                best_rank, best = r, j
        return best

    def first_in_group(self, g: int, bound: int) -> int:
        """The best-ranked waiting request of group ``g`` with ``s <= bound`` (``-1`` if none)."""
        p = self._range_first(self.offset[g], self.offset[g + 1], bound)
        return self.req_at[p] if p >= 0 else -1

    def head(self) -> int | None:
        """The waiting request of best rank (``None`` if nobody waits)."""
        if not self.count:
            return None
        g = int(np.argmin(self.first_rank))
        return self.req_at[
            self._range_first(self.offset[g], self.offset[g + 1], int(_NO_BOUND) - 1)
        ]


def _rank_of(priority: IntArray, n: int) -> IntArray:
    """``rank[i]``: the position of request ``i`` in ``priority`` (a checked permutation)."""
    prio = np.asarray(priority, dtype=np.int64)
    if prio.shape != (n,) or not np.array_equal(np.sort(prio), np.arange(n)):
        raise ValueError("priority must be a permutation of the request indices")
    rank = np.empty(n, dtype=np.int64)
    rank[prio] = np.arange(n)
    return rank


class _Arrivals:
    """The requests in arrival order (ties by rank), handed out as the walk reaches their round."""

    def __init__(self, instance: Instance, rank: IntArray):
        self.order = np.lexsort((rank, instance.arrival))
        self.times = instance.arrival[self.order]
        self.next = 0  # pointer into ``order``: the first request that has not arrived yet

    def first_round(self) -> int:
        """The round of the first arrival (0 without requests)."""
        return int(self.times[0]) if self.times.size else 0

    def next_round(self) -> float:
        """The round of the next arrival (``inf`` when everyone has arrived)."""
        return int(self.times[self.next]) if self.next < self.times.size else math.inf

    def until(self, t: int) -> IntArray | None:
        """The requests arriving up to round ``t`` not handed out yet (``None`` if there are none)."""
        if self.next >= self.times.size or self.times[self.next] > t:
            return None
        k = int(np.searchsorted(self.times, t, side="right"))
        new = self.order[self.next : k]
        self.next = k
        return new


def _start_blocking(
    running: RunningSet,
    pending: list[int],
    prio_list: list[int],
    cap: int,
    t: int,
    start_round: IntArray,
) -> tuple[int, int]:
    """Blocking walk at round ``t``: start waiting requests in rank order up to the first that does
    not fit.  ``pending`` is the min-heap of waiting ranks; returns ``(started, checks)``."""
    started = checks = 0
    while pending and len(running) < cap:
        j = prio_list[pending[0]]
        checks += 1
        if not running.fits(j, t):
            break
        heapq.heappop(pending)
        running.add(j, t)
        start_round[j] = t
        started += 1
    return started, checks


def _start_skipping(
    running: RunningSet,
    waiting: _WaitingByOutput,
    waiting_by_rank: np.ndarray | None,
    rank: IntArray,
    cap: int,
    t: int,
    start_round: IntArray,
) -> tuple[int, int]:
    """Skipping walk at round ``t``: start the best-ranked fitting waiting request, repeat.

    A group that does not fit keeps not fitting in this round (memory only grows as others start),
    so after each start only the groups that fitted are re-checked.  Returns ``(started, checks)``.
    """
    started = checks = 0
    if not waiting.count or len(running) >= cap:
        return started, checks
    m_budget = running.M
    b = running.B
    # necessary: mem_j(1) <= free now  <=>  s_j <= B*floor(free/B) - 1
    thr = ((m_budget - running.usage_now(t)) // b) * b - 1
    groups = np.flatnonzero(waiting.min_s <= thr)
    last_group = -1
    while groups.size and len(running) < cap:
        j = -1
        if last_group >= 0 and groups.size > 8 and waiting.min_s[last_group] <= thr:
            # fast path: the group that just started a request often has another one
            # that fits and beats the best rank any other candidate group can offer
            checks += 1
            bound = running.max_prompt_one(int(waiting.out_values[last_group]), t)
            j = waiting.first_in_group(last_group, bound)
            if j >= 0 and rank[j] >= waiting.first_rank[groups[groups != last_group]].min():
                j = -1
        if j < 0:
            checks += int(groups.size)
            if groups.size <= 8:
                bounds = np.array(
                    [running.max_prompt_one(o, t) for o in waiting.out_values[groups].tolist()],
                    dtype=np.int64,
                )
            else:
                bounds = running.max_prompt(waiting.out_values[groups], t)
            ok = waiting.min_s[groups] <= bounds
            groups, bounds = groups[ok], bounds[ok]
            if not groups.size:
                break
            j = waiting.first_fitting(groups, bounds)
        last_group = int(waiting.group[j])
        waiting.remove(j)
        if waiting_by_rank is not None:
            waiting_by_rank[rank[j]] = False
        running.add(j, t)
        start_round[j] = t
        started += 1
        thr = ((m_budget - running.usage_now(t)) // b) * b - 1
        groups = groups[waiting.min_s[groups] <= thr]
    return started, checks


def _lookahead_round(
    running: RunningSet, waiting_by_rank: np.ndarray, prio_list: list[int], lookahead: int, t: int
) -> float:
    """The earliest round after ``t`` in which one of the waiting requests behind the head fits
    (the next ``lookahead`` of them, all with ``-1``), capped by the next completion."""
    extra = np.flatnonzero(waiting_by_rank)[1:]
    if lookahead > 0:
        extra = extra[:lookahead]
    horizon = running.next_completion()
    for r in extra.tolist():
        e = running.earliest_start(prio_list[r], t + 1, stop_at=horizon)
        if horizon is None or e < horizon:
            horizon = e
    return math.inf if horizon is None else horizon


def _next_round(
    running: RunningSet,
    arrivals: _Arrivals,
    lookahead_next: float,
    head: int | None,
    cap: int,
    t: int,
) -> int:
    """The next decision round: a completion, an arrival, a lookahead round, or the earliest round
    in which the head of the waiting requests fits."""
    nxt: float = math.inf
    c = running.next_completion()
    if c is not None:
        nxt = c
    nxt = min(nxt, arrivals.next_round(), lookahead_next)
    if head is not None and len(running) < cap:
        stop = None if not math.isfinite(nxt) else int(nxt)
        nxt = min(nxt, running.earliest_start(head, t + 1, stop_at=stop))
    if not math.isfinite(nxt):
        raise RuntimeError("priority walk stalled: nothing running, nothing arriving")
    return int(nxt)


def priority_walk(
    instance: Instance,
    priority: IntArray,
    blocking: bool = True,
    should_stop: Callable[[], bool] | None = None,
    lookahead: int = 0,
) -> WalkResult:
    """List scheduling in time order with the future-peak check (the shared start rule).

    At each decision round the arrived, unstarted requests are walked in ``priority`` order (a
    permutation of request indices); a request starts if it fits for its whole life next to
    everything running (:meth:`RunningSet.fits`).  ``blocking=True`` stops at the first one that
    does not fit (head-of-line blocking); ``blocking=False`` skips it and tries the rest.

    Event-driven: decision rounds are completions, arrivals, and the earliest round in which the
    first waiting request would fit (:meth:`RunningSet.earliest_start`).  For the blocking walk this
    gives exactly the plan of a round-by-round simulation (nothing else can change in between).
    The skipping walk (default ``lookahead=0``) re-examines the other waiting requests only at those
    rounds: a request behind the head that would fit in a round between two decision rounds waits
    for the next one.  ``lookahead=k`` also takes the earliest fitting round of the next ``k``
    waiting requests as decision rounds, and ``-1`` of all of them, which reproduces the
    round-by-round skipping walk exactly at a cost of one search per waiting request per event.

    Whatever the mode, a request that does not fit at a decision round stays unfit for the rest of
    that round (memory only grows as others start), so the skipping walk's round is "start the
    best-ranked fitting request, repeat", found per output-length group (:class:`_WaitingByOutput`).
    """
    inst = instance
    n = inst.n
    rank = _rank_of(priority, n)
    prio_list = np.asarray(priority, dtype=np.int64).tolist()
    start_round = np.full(n, -1, dtype=np.int64)
    running = RunningSet(inst)
    cap = inst.max_batch if inst.max_batch is not None else n + 1
    arrivals = _Arrivals(inst, rank)
    pending: list[int] = []  # blocking: min-heap of waiting ranks
    waiting = None if blocking else _WaitingByOutput(inst, rank)
    waiting_by_rank = np.zeros(n, dtype=bool) if lookahead and not blocking else None

    t = arrivals.first_round()
    done = events = checks = 0
    while done < n:
        if should_stop is not None and should_stop():
            raise TimeoutError("stopped by the caller")
        events += 1
        running.drop_completed(t)
        new = arrivals.until(t)  # they join the waiting requests
        lookahead_next: float = math.inf
        if waiting is None:
            if new is not None:
                for r in rank[new].tolist():
                    heapq.heappush(pending, r)
            started, tried = _start_blocking(running, pending, prio_list, cap, t, start_round)
            head = prio_list[pending[0]] if pending else None
        else:
            if new is not None:
                waiting.add_many(new)
                if waiting_by_rank is not None:
                    waiting_by_rank[rank[new]] = True
            started, tried = _start_skipping(
                running, waiting, waiting_by_rank, rank, cap, t, start_round
            )
            head = waiting.head()
            if head is not None and waiting_by_rank is not None and len(running) < cap:
                lookahead_next = _lookahead_round(running, waiting_by_rank, prio_list, lookahead, t)
        done += started
        checks += tried
        if done == n:
            break
        t = _next_round(running, arrivals, lookahead_next, head, cap, t)
    log.debug("priority walk: n=%d events=%d checks=%d", n, events, checks)
    return WalkResult(start_round=start_round, events=events, checks=checks)
