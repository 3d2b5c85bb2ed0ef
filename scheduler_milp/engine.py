"""The shared start rule: the future-peak feasibility check and the event-driven priority walk.

Every list-scheduling method of the toolkit (``fcfs``, ``sf``, ``size``, ``mcsf``, ``svf``, the
decoder of the local search and of the LP-guided orders) is :func:`priority_walk` with a different
priority; ``vllm`` reuses :class:`RunningSet` for its memory arithmetic.

Future-peak check (MODEL.md).  Between two completions the memory of a fixed set of running requests
only grows, so a candidate ``j`` started in round ``t`` fits for its whole life iff
(a) at the last round ``tau_k = C_k - 1`` of every running request still alive in ``j``'s window,
    ``U(tau_k) + mem_j(tau_k - t + 1) <= M``, and
(b) at ``j``'s own last round ``e = t + o_j - 1``, ``U(e) + mem_j(o_j) <= M``,
where ``U`` is the memory of the running requests.  Both are evaluated for many candidates at once
with suffix sums over the running requests sorted by completion.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .instance import Instance, IntArray


class RunningSet:
    """Requests already started (all in rounds ``<= t``) whose future memory profile is fixed."""

    def __init__(self, instance: Instance):
        self.instance = instance
        self.M = instance.memory_budget
        self.B = instance.block_size
        self._members: dict[int, int] = {}  # request -> start round
        self._dirty = True
        self._prepare()

    # ------------------------------------------------------------------ membership
    def __len__(self) -> int:
        return len(self._members)

    def add(self, i: int, start: int) -> None:
        """Start request ``i`` in round ``start``."""
        self._members[i] = start
        self._dirty = True

    def remove(self, i: int) -> None:
        """Take request ``i`` out (completed or evicted)."""
        del self._members[i]
        self._dirty = True

    def members(self) -> dict[int, int]:
        """``{request: start round}`` of the running requests."""
        return self._members

    def drop_completed(self, t: int) -> None:
        """Remove every request whose completion ``C_i <= t``."""
        if not self._members:
            return
        self._ensure()
        if self.completion.size and self.completion[0] <= t:
            o = self.instance.output_len
            for i in [i for i, s in self._members.items() if s + o[i] <= t]:
                del self._members[i]
            self._dirty = True

    def next_completion(self) -> int | None:
        """The earliest completion round among the running requests."""
        self._ensure()
        return int(self.completion[0]) if self.completion.size else None

    # ------------------------------------------------------------------ profile arithmetic
    def _ensure(self) -> None:
        if self._dirty:
            self._prepare()

    def _prepare(self) -> None:
        inst = self.instance
        idx = np.fromiter(self._members.keys(), dtype=np.int64, count=len(self._members))
        start = np.fromiter(self._members.values(), dtype=np.int64, count=len(self._members))
        comp = start + inst.output_len[idx]
        order = np.argsort(comp, kind="stable")
        idx, start, comp = idx[order], start[order], comp[order]
        s = inst.prompt_len[idx]
        self.completion = comp
        # In round tau a request holds  base + tau  (+ padding for B > 1), base = s - S + 1.
        base = s - start + 1
        r = len(idx)
        self._suf_base = np.zeros(r + 1, dtype=np.int64)
        self._suf_cnt = np.zeros(r + 1, dtype=np.int64)
        if r:
            self._suf_base[:r] = np.cumsum(base[::-1])[::-1]
            self._suf_cnt[:r] = np.arange(r, 0, -1)
        if self.B > 1:
            phase = base % self.B
            onehot = np.zeros((r + 1, self.B), dtype=np.int64)
            onehot[np.arange(r), phase] = 1
            self._suf_phase = np.cumsum(onehot[::-1], axis=0)[::-1]
        # checkpoints: the last round of each running request, with the usage there
        self.tau = comp - 1
        self._dirty = False
        self.usage_tau = self.usage_at(self.tau) if r else np.zeros(0, dtype=np.int64)

    def usage_at(self, tau: IntArray | int) -> IntArray:
        """Memory of the running requests in round(s) ``tau`` (each ``>=`` every start)."""
        self._ensure()
        tau_arr = np.atleast_1d(np.asarray(tau, dtype=np.int64))
        # alive in round tau: completion > tau -> suffix from the first such request
        pos = np.searchsorted(self.completion, tau_arr, side="right")
        usage = self._suf_base[pos] + self._suf_cnt[pos] * tau_arr
        if self.B > 1:
            b = self.B
            pad = (-(np.arange(b)[None, :] + tau_arr[:, None])) % b
            usage = usage + (self._suf_phase[pos] * pad).sum(axis=1)
        return usage

    # ------------------------------------------------------------------ the future-peak check
    def fits_many(self, cand: IntArray, t: int) -> np.ndarray:
        """Boolean mask: can each candidate start in round ``t`` and never break ``M``?"""
        self._ensure()
        inst = self.instance
        b = self.B
        s = inst.prompt_len[cand]
        o = inst.output_len[cand]
        end = t + o - 1
        peak = ((s + o + b - 1) // b) * b
        ok = self.usage_at(end) + peak <= self.M  # (b): own last round
        if self.tau.size:
            # (a): s_j + (tau_k - t + 1) <= B*floor((M - U_k)/B) for every alive checkpoint;
            # a prefix minimum over checkpoints sorted by tau gives the bound for each window.
            h = ((self.M - self.usage_tau) // b) * b - (self.tau - t + 1)
            prefmin = np.minimum.accumulate(h)
            cnt = np.searchsorted(self.tau, end, side="right")
            bound = np.where(cnt > 0, prefmin[np.maximum(cnt - 1, 0)], np.iinfo(np.int64).max)
            ok &= s <= bound
        return ok

    def fits(self, j: int, t: int) -> bool:
        """Can request ``j`` start in round ``t``?  (One candidate of :meth:`fits_many`.)"""
        return bool(self.fits_many(np.array([j], dtype=np.int64), t)[0])

    def earliest_start(self, j: int, t: int) -> int:
        """Earliest round ``>= t`` in which ``j`` fits, if nothing else starts or stops early.

        Jumps from violation to violation: each violated constraint gives a round before which it
        stays violated (a later start only moves ``j``'s window right), so no feasible round is
        skipped and at most one jump per checkpoint is made.
        """
        self._ensure()
        inst = self.instance
        b = self.B
        s, o = int(inst.prompt_len[j]), int(inst.output_len[j])
        peak = ((s + o + b - 1) // b) * b
        while True:
            end = t + o - 1
            nxt = t
            if self.tau.size:
                alive = (self.tau >= t) & (self.tau <= end)
                tau = self.tau[alive]
                if tau.size:
                    cap = ((self.M - self.usage_tau[alive]) // b) * b  # s_j + k <= cap
                    kmax = cap - s
                    bad = (tau - t + 1) > kmax
                    if bad.any():
                        nxt = max(nxt, int((tau[bad] + 1 - kmax[bad]).max()))
            if int(self.usage_at(end)[0]) + peak > self.M:
                # own end inside a segment whose usage is already too high: move the end past
                # that segment's last round (the next completion after ``end``).
                pos = int(np.searchsorted(self.completion, end, side="right"))
                seg_last = int(self.completion[pos]) - 1
                nxt = max(nxt, seg_last + 1 - o + 1)
            if nxt == t:
                return t
            t = nxt


def natural_rank(ids: tuple[str, ...]) -> IntArray:
    """Rank of each id under natural order (``r2`` before ``r10``), for deterministic tie-breaks."""
    import re

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
    everything running (:meth:`RunningSet.fits_many`).  ``blocking=True`` stops at the first one
    that does not fit (head-of-line blocking); ``blocking=False`` skips it and tries the rest.

    Event-driven: decision rounds are completions, arrivals, and the earliest round in which the
    first waiting request would fit (:meth:`RunningSet.earliest_start`).  For the blocking walk this
    gives exactly the plan of a round-by-round simulation (nothing else can change in between);
    the skipping walk re-examines the others only at those rounds, unless ``lookahead`` asks for
    the earliest fitting round of more waiting requests (``-1``: all of them, which reproduces the
    round-by-round skipping walk exactly at a cost of one search per waiting request per event).
    """
    inst = instance
    n = inst.n
    prio = np.asarray(priority, dtype=np.int64)
    if sorted(prio.tolist()) != list(range(n)):
        raise ValueError("priority must be a permutation of the request indices")
    rank = np.empty(n, dtype=np.int64)
    rank[prio] = np.arange(n)
    start_round = np.full(n, -1, dtype=np.int64)
    running = RunningSet(inst)
    cap = inst.max_batch if inst.max_batch is not None else n + 1

    arr_order = np.lexsort((rank, inst.arrival))
    arr_times = inst.arrival[arr_order]
    next_arrival = 0  # pointer into arr_order
    pending: list[int] = []  # min-heap of ranks (blocking) or sorted array use (skip)
    pending_arr = np.zeros(0, dtype=np.int64)  # ranks, sorted (skip mode)
    s_of_rank = inst.prompt_len[prio]
    b = inst.block_size

    t = int(arr_times[0]) if n else 0
    done = 0
    events = 0
    checks = 0
    while done < n:
        if should_stop is not None and should_stop():
            raise TimeoutError("stopped by the caller")
        events += 1
        running.drop_completed(t)
        # arrivals up to t join the pending set
        k = int(np.searchsorted(arr_times, t, side="right"))
        if k > next_arrival:
            new = rank[arr_order[next_arrival:k]]
            next_arrival = k
            if blocking:
                for r in new.tolist():
                    heapq.heappush(pending, r)
            else:
                pending_arr = np.union1d(pending_arr, new)
        # the walk
        if blocking:
            while pending and len(running) < cap:
                j = int(prio[pending[0]])
                checks += 1
                if not running.fits(j, t):
                    break
                heapq.heappop(pending)
                running.add(j, t)
                start_round[j] = t
                done += 1
            head = int(prio[pending[0]]) if pending else None
        else:
            head = None
            lookahead_next = math.inf
            if pending_arr.size and len(running) < cap:
                free = inst.memory_budget - int(running.usage_at(t)[0]) if len(running) else inst.memory_budget
                thr = (free // b) * b - 1  # mem_j(1) <= free  <=>  s_j <= B*floor(free/B) - 1
                cand_pos = np.flatnonzero(s_of_rank[pending_arr] <= thr)
                started_pos: list[int] = []
                while cand_pos.size and len(running) < cap:
                    cand = prio[pending_arr[cand_pos]]
                    checks += cand.size
                    ok = np.flatnonzero(running.fits_many(cand, t))
                    if not ok.size:
                        break
                    p = int(cand_pos[ok[0]])
                    j = int(prio[pending_arr[p]])
                    running.add(j, t)
                    start_round[j] = t
                    done += 1
                    started_pos.append(p)
                    # earlier candidates stay infeasible (memory only grew); re-check the rest
                    cand_pos = cand_pos[ok[0] + 1 :]
                if started_pos:
                    pending_arr = np.delete(pending_arr, started_pos)
            if pending_arr.size:
                head = int(prio[pending_arr[0]])
                if lookahead and len(running) < cap:
                    # earliest fitting round of further waiting requests: the next decision round
                    extra = pending_arr[1:] if lookahead < 0 else pending_arr[1 : 1 + lookahead]
                    horizon = running.next_completion()
                    for r in extra.tolist():
                        e = running.earliest_start(int(prio[r]), t + 1)
                        if horizon is None or e < horizon:
                            horizon = e
                    if horizon is not None:
                        lookahead_next = horizon
        if done == n:
            break
        # next decision round
        nxt = math.inf
        c = running.next_completion()
        if c is not None:
            nxt = c
        if next_arrival < n:
            nxt = min(nxt, int(arr_times[next_arrival]))
        if head is not None and len(running) < cap:
            nxt = min(nxt, running.earliest_start(head, t + 1))
        if not blocking:
            nxt = min(nxt, lookahead_next)
        if not math.isfinite(nxt):
            raise RuntimeError("priority walk stalled: nothing running, nothing arriving")
        t = int(nxt)
    return WalkResult(start_round=start_round, events=events, checks=checks)
