"""The online executor: runs a policy against the truth it keeps to itself, event by event.

Each round every running request produces one token; in the ``k``-th token of its life it holds
``B * ceil((s_i + k) / B)``.  The executor jumps between *decision rounds*: arrivals, true
completions, the round a policy asked to be woken, and the first round in which the running
requests' memory would exceed ``M`` (memory only grows between completions, so nothing can change
in between and no idle round is visited).  In a decision round it

1. retires the requests whose last token was produced in the round before,
2. if the running requests would overflow this round, asks the policy for victims
   (:meth:`~scheduler_milp.online.view.Policy.victims`) and then evicts the most recently started
   running requests until the round fits (vLLM's rule),
3. asks the policy for its decision (:class:`~scheduler_milp.online.view.View` in,
   :class:`~scheduler_milp.online.view.Decision` out), applies its evictions, then its starts, each
   of which must fit the current round (the executor refuses a start that overflows *now*: that is
   known to the policy, so it is a bug).

Eviction modes (run-level): ``restart`` loses the tokens produced (they count as wasted rounds) and
the request later starts over from token 1; ``resume`` keeps them, and the request, started again
with ``k`` tokens kept, holds ``s + k + 1`` in its first round back and needs ``o - k`` more rounds.

**The clock.** Given a round-time model (``clock=``) and arrivals in seconds, the executor keeps a
clock: round ``t`` lasts ``c0 + c_prefill P(t) + c_decode |R(t)| + c_kv K(t)`` seconds (its
prefill counts the starts and restarts of that round), an idle round lasts ``c0``, and a request is
admitted (shown to the policy) in the first round that begins at or after its arrival in seconds.
Between decision rounds the running set is fixed, so the begin time of any later round is a
closed-form sum and the round of the next arrival is found by bisection: the loop still jumps
between events. The execution's instance carries the admission rounds as its arrivals (and the
seconds in ``arrival_s``), so every round-based figure and check applies unchanged; the
independent check rebuilds the clock from the segments and confirms every admission round.

The result is an :class:`Execution` (segments ``[start, end)`` per request, completion, evictions,
wasted rounds, TTFT, memory), which the executor validates with the independent
:func:`~scheduler_milp.online.check.check_execution` before returning it.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np

from ..baselines.engine import natural_rank
from ..model.instance import Instance, IntArray
from ..timing.clock import ARRIVAL_KEY
from ..timing.roundtime import RoundTime
from .check import ExecutionError, check_admissions, check_execution, recount
from .predictors import Predictions
from .view import EVICTION_MODES, Arrival, Decision, Evicted, Finished, Policy, Running, View


class PolicyError(RuntimeError):
    """A policy broke the protocol (started what does not fit, evicted what is not running, stalled)."""


@dataclass
class Execution:
    """One online run: what ran when, and what it cost.

    ``segments[i]`` lists request ``i``'s segments ``(start, end)`` (end exclusive), all but the last
    ended by eviction; ``log`` lists ``(round, started ids, evicted ids)`` for every round in which
    something was started or evicted (the non-anticipation test compares these).
    """

    instance: Instance
    policy: str
    predictor: str
    eviction: str
    seed: int
    segments: list[list[tuple[int, int]]]
    completion: IntArray
    evictions: int
    wasted_rounds: int
    decisions: int
    seconds: float
    log: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    #: the round-time model the executor's clock ran on (``None``: arrivals in rounds as given)
    clock: RoundTime | None = None

    @cached_property
    def first_start(self) -> IntArray:
        """Round of each request's first start."""
        return np.array([segs[0][0] for segs in self.segments], dtype=np.int64)

    @property
    def latency(self) -> IntArray:
        """``C_i - a_i``."""
        return self.completion - self.instance.arrival

    @property
    def objective(self) -> int:
        """Total latency ``sum_i (C_i - a_i)``."""
        return int(self.latency.sum())

    @property
    def average_latency(self) -> float:
        """Mean latency in rounds."""
        return self.objective / self.instance.n

    @property
    def ttft(self) -> IntArray:
        """Time to first token in rounds: first start - arrival + 1."""
        return self.first_start - self.instance.arrival + 1

    @cached_property
    def memory_per_round(self) -> IntArray:
        """Memory in use in every round, recomputed from the segments."""
        return recount(self.instance, self.segments, self.eviction).memory

    @property
    def peak_memory(self) -> int:
        """Largest memory in use in any round."""
        mem = self.memory_per_round
        return int(mem.max()) if mem.size else 0

    @property
    def mean_memory(self) -> float:
        """Mean memory in use over rounds ``0 .. makespan - 1``."""
        mem = self.memory_per_round
        return float(mem.mean()) if mem.size else 0.0

    @property
    def makespan(self) -> int:
        """The last completion round."""
        return int(self.completion.max())

    def ttft_summary(self) -> dict[str, float]:
        """Mean, median, p90, p99 and max TTFT in rounds."""
        x = self.ttft
        return {
            "mean": float(x.mean()),
            "p50": float(np.percentile(x, 50)),
            "p90": float(np.percentile(x, 90)),
            "p99": float(np.percentile(x, 99)),
            "max": int(x.max()),
        }

    def segments_by_id(self) -> dict[str, list[list[int]]]:
        """``{id: [[start, end], ...]}`` as written in run files."""
        return {
            rid: [[a, e] for a, e in segs]
            for rid, segs in zip(self.instance.ids, self.segments, strict=True)
        }

    def admitted_by_id(self) -> dict[str, int]:
        """``{id: round}`` in which each request was admitted (its arrival round)."""
        return {
            rid: int(a) for rid, a in zip(self.instance.ids, self.instance.arrival, strict=True)
        }

    def to_run_dict(self) -> dict[str, Any]:
        """The run file (docs/online.md)."""
        return {
            "instance": self.instance.name,
            "policy": self.policy,
            "predictor": self.predictor,
            "eviction": self.eviction,
            "seed": self.seed,
            "objective": self.objective,
            "average_latency": self.average_latency,
            "makespan": self.makespan,
            "evictions": self.evictions,
            "wasted_rounds": self.wasted_rounds,
            "ttft": self.ttft_summary(),
            "peak_memory": self.peak_memory,
            "mean_memory": self.mean_memory,
            "decisions": self.decisions,
            "seconds": round(self.seconds, 6),
            "stats": self.stats,
            **(
                {"clock": self.clock.to_dict(), "admitted": self.admitted_by_id()}
                if self.clock
                else {}
            ),
            "segments": self.segments_by_id(),
            "completion": {
                rid: int(c) for rid, c in zip(self.instance.ids, self.completion, strict=True)
            },
        }

    def check(self) -> list[str]:
        """The independent check (empty list: valid)."""
        claimed = {
            "objective": self.objective,
            "evictions": self.evictions,
            "wasted_rounds": self.wasted_rounds,
        }
        problems = check_execution(self.instance, self.segments, self.eviction, claimed)
        if self.clock is not None and not problems:
            problems = check_admissions(self.instance, self.segments, self.eviction, self.clock)
        return problems


class _Truth:
    """The executor's private state: true lengths, who runs since when, memory arithmetic."""

    def __init__(self, instance: Instance, eviction: str):
        self.n = instance.n
        self.s = instance.prompt_len.tolist()
        self.o = instance.output_len.tolist()
        self.B = instance.block_size
        self.M = instance.memory_budget
        self.restart = eviction == "restart"
        n = self.n
        self.kept = [0] * n  # tokens kept for the next segment (resume mode)
        self.seg_start = [-1] * n
        self.seq = [0] * n  # start sequence number (eviction order: newest first)
        self.version = [0] * n
        self.segments: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        self.running: dict[int, int] = {}  # index -> base (holds ceil_B(base + t) in round t)
        self.heap: list[tuple[int, int, int]] = []  # (completion, index, version)
        self.sum_base = 0  # B = 1: usage(t) = sum_base + len(running) * t
        self.counter = 0
        self.evictions = 0
        self.wasted = 0

    def usage(self, t: int) -> int:
        if self.B == 1:
            return self.sum_base + len(self.running) * t
        b = self.B
        return sum(-(-(x + t) // b) * b for x in self.running.values())

    def first_round_memory(self, i: int) -> int:
        b = self.B
        return -(-(self.s[i] + self.kept[i] + 1) // b) * b

    def start(self, i: int, t: int) -> None:
        base = self.s[i] + self.kept[i] - t + 1
        self.running[i] = base
        self.sum_base += base
        self.seg_start[i] = t
        self.counter += 1
        self.seq[i] = self.counter
        heapq.heappush(self.heap, (t + self.o[i] - self.kept[i], i, self.version[i]))

    def stop(self, i: int, end: int) -> int:
        """End ``i``'s segment at ``end`` (completion or eviction); returns the tokens produced."""
        base = self.running.pop(i)
        self.sum_base -= base
        produced = end - self.seg_start[i]
        self.segments[i].append((self.seg_start[i], end))
        self.seg_start[i] = -1
        return produced

    def evict(self, i: int, t: int) -> tuple[int, int]:
        """Evict ``i`` in round ``t``; returns (tokens produced in all, tokens kept)."""
        produced = self.stop(i, t)
        total = self.kept[i] + produced
        self.version[i] += 1
        self.evictions += 1
        if self.restart:
            self.wasted += produced
        else:
            self.kept[i] = total
        return total, self.kept[i]

    def next_completion(self) -> float:
        heap = self.heap
        while heap and heap[0][2] != self.version[heap[0][1]]:
            heapq.heappop(heap)
        return heap[0][0] if heap else math.inf

    def overflow_round(self, t: int, before: float) -> float:
        """The first round in ``(t, before)`` in which the running requests exceed ``M``."""
        r = len(self.running)
        if not r:
            return math.inf
        hi = int(before) - 1 if math.isfinite(before) else None
        if self.B == 1:
            tau = (self.M - self.sum_base) // r + 1  # usage(tau) = sum_base + r * tau > M
            tau = max(tau, t + 1)
            return tau if hi is None or tau <= hi else math.inf
        if hi is None:  # cannot happen: a running request always completes
            hi = t + max(self.o)
        lo = t + 1
        if lo > hi or self.usage(hi) <= self.M:
            return math.inf
        while lo < hi:
            mid = (lo + hi) // 2
            if self.usage(mid) > self.M:
                hi = mid
            else:
                lo = mid + 1
        return lo


#: arrival round of a request the clock has not admitted yet
_NOT_YET = 2**62


class _Clock:
    """Begin times of rounds under a round-time model, while the running set stays fixed.

    From round ``r0`` beginning at ``B0`` on, each round lasts ``g`` seconds longer than the one
    before (``g = c_kv |R|``: every running request holds one more KV token), so with ``d0`` the
    duration of round ``r0``, round ``r0 + m`` begins at ``B0 + m d0 + g m (m - 1) / 2``.
    """

    def __init__(self, model: RoundTime):
        if model.c0 <= 0:
            raise ValueError(
                f"round time {model.name}: the online clock needs c0 > 0 (an idle round would take 0 s)"
            )
        self.model = model
        self.round0, self.begin0, self.d0, self.g = 0, 0.0, model.c0, 0.0

    def after(self, t: int, begin: float, duration: float, running: int, kv_next: int) -> None:
        """Round ``t`` began at ``begin`` and lasts ``duration``; in round ``t + 1`` the same
        ``running`` requests hold ``kv_next`` KV tokens, one more each round after."""
        m = self.model
        self.round0, self.begin0 = t + 1, begin + duration
        self.d0 = float(m.duration(0, running, kv_next))
        self.g = m.c_kv * running

    def begin(self, t: int) -> float:
        """When round ``t >= r0`` begins."""
        k = t - self.round0
        return self.begin0 + k * self.d0 + self.g * (k * (k - 1) / 2)

    def first_round_at(self, seconds: float, before: float) -> float:
        """The first round ``>= r0`` beginning at or after ``seconds``, if not after ``before``."""
        if seconds <= self.begin0:
            return self.round0
        lo, hi = self.round0, self.round0 + math.ceil((seconds - self.begin0) / self.d0) + 1
        if math.isfinite(before):
            hi = min(hi, int(before))
        if self.begin(hi) < seconds:
            return math.inf
        while lo < hi:  # begin(lo) < seconds <= begin(hi)
            mid = (lo + hi) // 2
            if self.begin(mid) >= seconds:
                hi = mid
            else:
                lo = mid + 1
        return lo


def handles_of(instance: Instance) -> IntArray:
    """Instance indices in handle order: by arrival, ties by natural id order."""
    return np.lexsort((natural_rank(instance.ids), instance.arrival)).astype(np.int64)


class _Loop:
    """One run's event loop; each decision round is :meth:`round` (the steps of the module doc)."""

    def __init__(
        self,
        instance: Instance,
        policy: Policy,
        predictions: Predictions,
        eviction: str,
        clock: tuple[RoundTime, Any] | None = None,
    ):
        self.instance = instance
        self.policy = policy
        n = self.n = instance.n
        self.ids = instance.ids
        self.clock = None if clock is None else _Clock(clock[0])
        if clock is None:
            self.order: list[int] = handles_of(instance).tolist()  # handle -> index
            self.seconds: list[float] = []
        else:
            secs = np.asarray(clock[1], dtype=np.float64)
            self.order = np.lexsort((natural_rank(instance.ids), secs)).tolist()
            self.seconds = secs[self.order].tolist()
        self.handle = [0] * n
        for h, i in enumerate(self.order):
            self.handle[i] = h
        # arrival round by handle; on the clock, each is known only once the request is admitted
        self.times: list[int] = (
            instance.arrival[self.order].tolist() if clock is None else [_NOT_YET] * n
        )
        self.point = predictions.point.tolist()
        self.lo, self.hi = predictions.lo.tolist(), predictions.hi.tolist()
        self.truth = _Truth(instance, eviction)
        self.cap = instance.max_batch if instance.max_batch is not None else n + 1
        self.public: dict[int, Running] = {}  # handle -> Running: what the view shows
        self.proxy = MappingProxyType(self.public)
        self.waiting: set[int] = set()  # indices arrived and not running or done
        self.log: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = []
        self.arrived: list[Arrival] = []
        self.finished: list[Finished] = []
        self.ptr = self.done = self.decisions = 0
        self.prefill = 0  # tokens prefilled in the current round (the clock's P(t))
        self.begin = 0.0  # when the current round begins (on the clock)
        if self.clock is None:
            self.t = self.times[0]
        else:  # the first round that begins at or after the first arrival (idle rounds of c0)
            self.t = int(self.clock.first_round_at(self.seconds[0], math.inf))
            self.begin = self.clock.begin(self.t)

    def fail(self, message: str) -> PolicyError:
        return PolicyError(f"policy {self.policy.name}, round {self.t}: {message}")

    def index_of(self, h: int) -> int:
        return self.order[h] if 0 <= h < self.ptr else -1

    def evict(self, i: int, evicted: list[Evicted], ids_out: list[str]) -> None:
        produced, kept = self.truth.evict(i, self.t)
        h = self.handle[i]
        del self.public[h]
        self.waiting.add(i)
        evicted.append(Evicted(h, produced, kept))
        ids_out.append(self.ids[i])

    def complete(self) -> None:
        """Retire the requests whose last token was produced in the round before."""
        truth, t = self.truth, self.t
        while truth.next_completion() <= t:
            _, i, _ = heapq.heappop(truth.heap)
            truth.stop(i, t)
            del self.public[self.handle[i]]
            self.finished.append(Finished(self.handle[i], truth.o[i], t))
            self.done += 1

    def arrive(self) -> None:
        """Show the policy the requests arriving up to this round."""
        times, t = self.times, self.t
        if self.clock is not None:  # admitted in the first round beginning at or after arrival
            k = self.ptr
            while k < self.n and self.seconds[k] <= self.begin:
                times[k] = t
                k += 1
        while self.ptr < self.n and times[self.ptr] <= t:
            h = self.ptr
            i = self.order[h]
            self.arrived.append(
                Arrival(
                    h, self.ids[i], self.truth.s[i], times[h], self.point[i], self.lo[i], self.hi[i]
                )
            )
            self.waiting.add(i)
            self.ptr += 1

    def overflow(self, evicted: list[Evicted], evicted_ids: list[str]) -> int:
        """Evict until the round fits: the policy's victims, then the newest; the memory in use."""
        truth, m = self.truth, self.instance.memory_budget
        use = truth.usage(self.t)
        if use <= m:
            return use
        view = View(self.t, use, tuple(self.arrived), tuple(self.finished), (), self.proxy)
        for h in self.policy.victims(view):
            i = self.index_of(h)
            if i < 0 or i not in truth.running:
                raise self.fail(f"victim {h} is not running")
            self.evict(i, evicted, evicted_ids)
        while truth.usage(self.t) > m:
            self.evict(max(truth.running, key=truth.seq.__getitem__), evicted, evicted_ids)
        return truth.usage(self.t)

    def apply(self, decision: Decision, use: int, evicted_ids: list[str]) -> None:
        """The policy's evictions, then its starts, each checked against the current round."""
        truth, t, m = self.truth, self.t, self.instance.memory_budget
        for h in decision.evict:
            i = self.index_of(h)
            if i < 0 or i not in truth.running:
                raise self.fail(f"cannot evict {h}: not running")
            self.evict(i, [], evicted_ids)
        if decision.evict:
            use = truth.usage(t)
        started_ids: list[str] = []
        for h in decision.start:
            i = self.index_of(h)
            if i < 0 or i not in self.waiting:
                raise self.fail(f"cannot start {h}: not waiting")
            if len(truth.running) >= self.cap:
                raise self.fail(f"starting '{self.ids[i]}' exceeds max_batch={self.cap}")
            need = truth.first_round_memory(i)
            if use + need > m:
                raise self.fail(f"starting '{self.ids[i]}' needs {need} with {use} of {m} in use")
            self.prefill += truth.s[i] + truth.kept[i]
            truth.start(i, t)
            self.waiting.discard(i)
            self.public[h] = Running(t, truth.kept[i])
            use += need
            started_ids.append(self.ids[i])
        if started_ids or evicted_ids:
            self.log.append((t, tuple(started_ids), tuple(evicted_ids)))

    def next_round(self, wake: int | None) -> int:
        """Completions, arrivals, the first overflow, the policy's wake: the earliest."""
        truth, t, clock = self.truth, self.t, self.clock
        nxt = truth.next_completion()
        if clock is not None:
            self._close_round()
        if self.ptr < self.n:
            nxt = min(
                nxt,
                self.times[self.ptr]
                if clock is None
                else clock.first_round_at(self.seconds[self.ptr], nxt),
            )
        nxt = min(nxt, truth.overflow_round(t, nxt))
        if wake is not None:
            if wake <= t:
                raise self.fail(f"asked to be woken in round {wake}, not after the current round")
            nxt = min(nxt, wake)
        if not math.isfinite(nxt):
            raise self.fail(
                f"stalled: {len(self.waiting)} requests waiting, nothing running or arriving"
            )
        if clock is not None:
            self.begin = clock.begin(int(nxt))
            self.prefill = 0
        return int(nxt)

    def _close_round(self) -> None:
        """Tell the clock how long this round lasts and what runs after it (:class:`_Clock`): the
        begin times of the rounds until the next event follow."""
        truth, clock = self.truth, self.clock
        assert clock is not None
        r = len(truth.running)
        kv = truth.sum_base + r * self.t
        duration = float(clock.model.duration(self.prefill, r, kv))
        clock.after(self.t, self.begin, duration, r, kv + r)

    def round(self) -> bool:
        """One decision round; False once every request is done."""
        self.complete()
        if self.done == self.n:
            return False
        self.arrive()
        evicted: list[Evicted] = []
        evicted_ids: list[str] = []
        use = self.overflow(evicted, evicted_ids)
        view = View(
            self.t, use, tuple(self.arrived), tuple(self.finished), tuple(evicted), self.proxy
        )
        self.arrived.clear()
        self.finished.clear()
        decision = self.policy.decide(view)
        self.decisions += 1
        self.apply(decision, use, evicted_ids)
        self.t = self.next_round(decision.wake)
        return True


def execute(
    instance: Instance,
    policy: Policy,
    predictions: Predictions,
    eviction: str = "restart",
    seed: int = 0,
    deadline: float = math.inf,
    check: bool = True,
    clock: RoundTime | None = None,
    arrival_s: Any = None,
) -> Execution:
    """Run ``policy`` on ``instance`` with ``predictions``; the validated :class:`Execution`.

    With ``clock`` (a round-time model) the executor keeps time in seconds and admits each request
    in the first round that begins at or after its arrival (``arrival_s``, default
    :func:`~scheduler_milp.timing.clock.arrival_seconds` of the instance); the execution's
    instance then has those admission rounds as arrivals (module docstring). A clairvoyant
    policy (``hindsight:METHOD``), whose plan is in arrival rounds, runs on the unit clock only.

    Raises :class:`PolicyError` when the policy breaks the protocol, :class:`TimeoutError` past
    ``deadline`` (a ``time.perf_counter()`` value) and :class:`ExecutionError` if the independent
    check rejects the result (a bug of the executor).
    """
    if eviction not in EVICTION_MODES:
        raise ValueError(f"eviction must be one of {', '.join(EVICTION_MODES)} (got {eviction!r})")
    if predictions.n != instance.n:
        raise ValueError(f"{predictions.n} predictions for {instance.n} requests")
    t0 = time.perf_counter()
    timed = None
    if clock is not None and not clock.is_unit and policy.clairvoyant:
        # its plan starts requests in their arrival-round frame; on a physical clock a request may
        # be admitted after its planned round, and the plan no longer says when to start it
        raise ValueError(
            f"{policy.name} follows a plan in arrival rounds and cannot run on the "
            f"{clock.name} clock (run it with arrivals by rounds)"
        )
    if clock is not None:
        from ..timing.clock import arrival_seconds, checked_seconds

        secs = arrival_seconds(instance, clock) if arrival_s is None else arrival_s
        timed = (clock, checked_seconds(secs, instance.n))
    loop = _Loop(instance, policy, predictions, eviction, timed)
    while loop.round():
        if loop.decisions & 1023 == 1 and time.perf_counter() > deadline:
            raise TimeoutError(
                f"policy {policy.name}: time limit reached in round {loop.t} ({loop.done} of {loop.n} requests done)"
            )
    truth = loop.truth
    if timed is not None:  # the admission rounds are the arrivals the run had
        admitted = np.empty(instance.n, dtype=np.int64)
        admitted[loop.order] = loop.times
        meta = {**instance.meta, ARRIVAL_KEY: dict(zip(instance.ids, timed[1].tolist(), strict=True))}  # fmt: skip
        instance = instance.replace(arrival=admitted, meta=meta)
    execution = Execution(
        instance=instance,
        policy=policy.name,
        predictor=predictions.spec,
        eviction=eviction,
        seed=seed,
        segments=truth.segments,
        completion=np.array([segs[-1][1] for segs in truth.segments], dtype=np.int64),
        evictions=truth.evictions,
        wasted_rounds=truth.wasted,
        decisions=loop.decisions,
        seconds=time.perf_counter() - t0,
        log=loop.log,
        stats=policy.stats(),
        clock=clock,
    )
    if check:
        problems = execution.check()
        if problems:
            raise ExecutionError(problems)
    return execution


def run_policy_log(
    execution: Execution, before: int
) -> list[tuple[int, tuple[str, ...], tuple[str, ...]]]:
    """The decisions of rounds before ``before`` (for comparisons of two runs)."""
    return [entry for entry in execution.log if entry[0] < before]


__all__ = ["Execution", "PolicyError", "execute", "handles_of", "run_policy_log"]
