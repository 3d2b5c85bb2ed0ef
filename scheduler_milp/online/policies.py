"""The online policies and their registry (``simulate.py --list-policies``).

Every policy but ``vllm`` and ``hindsight:METHOD`` keeps an *estimate* of each request's output
length and decides with the offline start rule on estimates (:mod:`scheduler_milp.online.estimates`):
a request may start if, on the estimates, it fits next to the running requests for its whole life
(the future-peak check).  The estimate starts from the prediction (``amax``: the range's ``hi``,
``amin``: its ``lo``), is capped by the longest output that fits the budget alone, and is
*refined* when a running request outlives it: it becomes ``max(produced + 1, ceil(grow * e))``
(``amin``: ``produced + 1``, the lower bound the tokens seen so far prove).  When the running
requests would overflow a round, the executor evicts the most recently started ones unless the
policy chooses (``sorted-f-robust``: fewest tokens produced first; ``amin``: smallest current lower
bound first).

With exact predictions nothing is ever refined or evicted and each policy takes exactly the
decisions of its offline counterpart (``fcfs``, ``sf``, ``mcsf``, ``svf``, ``sorted-f``, ``vllm``;
tested against :func:`scheduler_milp.registry.solve`).  Readings where the papers leave room are
stated in docs/online.md.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..heuristics.sorted_f import ORDERS, min_f_batch
from ..model.instance import Instance
from ..model.params import MethodParams, ParameterError
from ..model.result import SolveOptions
from ..registry import METHODS, solve
from .estimates import EstimateSet, Screen, WaitingPool
from .view import Arrival, Decision, Evicted, Finished, Policy, Setting, View

WAITING, RUNNING, DONE = 0, 1, 2


# ---------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class EstimateParams(MethodParams):
    """``grow``: factor by which an outlived estimate is raised (at least to produced + 1)."""

    grow: float = 2.0


@dataclass(frozen=True)
class SortedFParams(EstimateParams):
    """Sorted-F's knobs (as the offline method) plus ``grow``."""

    exact_max: int = 12
    shortlist: int = 16
    orders: tuple[str, ...] = ("output", "peak")


@dataclass(frozen=True)
class RobustParams(SortedFParams):
    """``proactive``: evict as soon as the refined estimates predict an overflow."""

    grow: float = 1.5
    proactive: bool = True


@dataclass(frozen=True)
class ReplanParams(EstimateParams):
    """``window``: waiting requests re-planned (plus the running ones); ``every``: rounds between
    two re-plans at least; ``seconds``: budget of one re-plan (default: --time-limit, else 1 s)."""

    window: int = 32
    every: int = 32
    seconds: float | None = None


# ---------------------------------------------------------------------- estimate policies
def _volume(prompt: int, rem: int, b: int) -> int:
    """``sum_{k=1..rem} B * ceil((prompt + k) / B)``: memory-time of a request on its estimate."""
    if b == 1:
        return prompt * rem + rem * (rem + 1) // 2
    k = np.arange(1, rem + 1, dtype=np.int64)
    return int((-(-(prompt + k) // b) * b).sum())


class EstimatePolicy(Policy):
    """The start rule on estimates; subclasses choose the estimate, the order and the walk.

    ``walk``: ``"blocking"`` (start in priority order up to the first that does not fit),
    ``"skipping"`` (start the best-ranked fitting request, repeat) or ``"sorted-f"`` (min-F
    batches).  The priority is ``keys(prompt, remaining)`` then the handle (arrival order).
    """

    walk = "blocking"
    watch_running = False  # wake at estimated completions even when nothing waits
    # amin: a request past its estimate is assumed to end in the next round; it is kept out of the
    # estimated running set and only its memory in the current round counts (``extra``)
    token_by_token = False

    def __init__(self, setting: Setting, params: EstimateParams):
        super().__init__(setting)
        self.params = params
        self.rs = EstimateSet(setting.memory, setting.block_size)
        self.pool = WaitingPool()
        self.prompt: list[int] = []
        self.lo: list[int] = []
        self.hi: list[int] = []
        self.predicted: list[int] = []
        self.kmax: list[int] = []
        self.est: list[int] = []  # current estimate of the total output
        self.kept: list[int] = []  # tokens kept while waiting (resume mode)
        self.state: list[int] = []
        self.comp: list[int] = []  # estimated completion of a running request
        self.resume = setting.eviction == "resume"
        self.ending: set[int] = set()  # token_by_token: running past the estimate
        self.extra = 0  # memory of ``ending`` in the current round
        self.counters: dict[str, Any] = {"refinements": 0}

    # -------------------------------------------------------------- hooks
    def first_estimate(self, a: Arrival) -> int:
        """The estimate a request starts with (the point prediction)."""
        return a.predicted

    def refine(self, h: int, produced: int) -> int:
        """The estimate of a request known to need more than ``produced`` tokens."""
        return min(self.kmax[h], max(produced + 1, math.ceil(self.params.grow * self.est[h])))

    def keys(self, prompt: int, rem: int) -> tuple[int, int]:
        """Priority of a waiting request (smaller first; ties by handle = arrival order)."""
        return rem, 0

    def on_change(self, kind: str, h: int) -> None:
        """Called on ``arrival``, ``refined``, ``early`` (finished before its estimate), ``evicted``."""

    # -------------------------------------------------------------- bookkeeping
    def _wait(self, h: int) -> None:
        prompt = self.prompt[h] + self.kept[h]
        rem = self.est[h] - self.kept[h]
        self.rs.set(h, prompt, rem)
        k1, k2 = self.keys(prompt, rem)
        self.pool.add(h, k1, k2, prompt, rem)
        self.state[h] = WAITING

    def _run(self, h: int, t: int, produced: int) -> None:
        rem = self.est[h] - produced
        self.rs.set(h, self.prompt[h] + produced, rem)
        self.rs.add(h, t)
        self.comp[h] = t + rem
        self.state[h] = RUNNING

    def _start(self, h: int, t: int) -> None:
        self.pool.remove(h)
        self.rs.add(h, t)
        self.comp[h] = t + self.rs.remaining(h)
        self.state[h] = RUNNING

    def _arrive(self, a: Arrival) -> None:
        h = a.handle
        if h != len(self.prompt):
            raise ValueError(f"arrivals out of order: handle {h} after {len(self.prompt)}")
        kmax = self.setting.longest(a.prompt)
        self.prompt.append(a.prompt)
        self.lo.append(a.lo)
        self.hi.append(a.hi)
        self.predicted.append(a.predicted)
        self.kmax.append(kmax)
        self.est.append(min(kmax, max(1, self.first_estimate(a))))
        self.kept.append(0)
        self.state.append(WAITING)
        self.comp.append(-1)
        self._wait(h)
        self.on_change("arrival", h)

    def _finish(self, f: Finished) -> None:
        h = f.handle
        if h in self.rs.members():
            self.rs.remove(h)
        self.ending.discard(h)
        early = self.comp[h] > f.completion
        self.state[h] = DONE
        if early:
            self.on_change("early", h)

    def _evicted(self, e: Evicted) -> None:
        h = e.handle
        if h in self.rs.members():
            self.rs.remove(h)
        self.ending.discard(h)
        if self.est[h] <= e.produced:  # it outlived its estimate before the eviction
            self.est[h] = self.refine(h, e.produced)
            self.counters["refinements"] += 1
        self.kept[h] = e.kept
        self._wait(h)
        self.on_change("evicted", h)

    def sync(self, view: View) -> None:
        """Take in what happened since the last call; refine the estimates running requests outlived."""
        t = view.t
        for a in view.arrived:
            self._arrive(a)
        for f in view.finished:
            self._finish(f)
        for e in view.evicted:
            self._evicted(e)
        for h in self.rs.drop_completed(t):
            produced = view.produced(h)
            self.est[h] = self.refine(h, produced)
            self.counters["refinements"] += 1
            if self.token_by_token:
                self.ending.add(h)
                self.state[h] = RUNNING
            else:
                self._run(h, t, produced)
            self.on_change("refined", h)
        self.extra = view.usage - self.rs.usage_now(t) if self.ending else 0

    def evict_now(self, h: int, view: View) -> None:
        """Take a running request out on the policy's own initiative (its state only)."""
        produced = view.produced(h)
        if h in self.ending:
            self.ending.discard(h)
            self.extra -= self.setting.mem(self.prompt[h], produced + 1)
        else:
            self.rs.remove(h)
        self.kept[h] = produced if self.resume else 0
        self._wait(h)

    # -------------------------------------------------------------- the walks
    def _fits_now(self, h: int, t: int) -> bool:
        """With ``ending`` requests: the first round also fits next to their current memory."""
        if not self.extra:
            return True
        need = self.setting.mem(self.rs.held_prompt(h), 1)
        return self.rs.usage_now(t) + self.extra + need <= self.setting.memory

    def _blocking(self, t: int) -> list[int]:
        starts: list[int] = []
        cap = self.setting.cap - len(self.ending)
        pool, rs = self.pool, self.rs
        while len(pool) and len(rs) < cap:
            h = pool.best()
            if not (self._fits_now(h, t) and rs.fits(h, t)):
                break
            self._start(h, t)
            starts.append(h)
        return starts

    def _skipping(self, t: int) -> list[int]:
        starts: list[int] = []
        cap = self.setting.cap - len(self.ending)
        pool, rs = self.pool, self.rs
        slots = pool.fitting(rs, t, extra=self.extra)
        if not slots.size:
            return starts
        hs, k1, k2 = pool.handle[slots], pool.k1[slots], pool.k2[slots]
        prompt, rem = pool.prompt[slots], pool.rem[slots]
        b = self.setting.block_size
        while hs.size and len(rs) < cap:
            best = np.lexsort((hs, k2, k1))[0]
            h = int(hs[best])
            self._start(h, t)
            starts.append(h)
            keep = np.ones(hs.size, dtype=bool)
            keep[best] = False
            free = rs.M - rs.usage_now(t) - self.extra
            keep &= prompt <= (free // b) * b - 1
            if keep.any():
                idx = np.flatnonzero(keep)
                ok = prompt[idx] <= rs.max_prompt(rem[idx], t)
                keep[idx[~ok]] = False
            hs, k1, k2, prompt, rem = hs[keep], k1[keep], k2[keep], prompt[keep], rem[keep]
        return starts

    def admit(self, view: View) -> list[int]:
        """The requests to start in round ``view.t``."""
        if self.walk == "blocking":
            return self._blocking(view.t)
        return self._skipping(view.t)

    def head(self) -> int:
        """The waiting request the next decision round waits for."""
        return self.pool.best()

    def wake(self, view: View) -> int | None:
        """Next estimated completion, or the earliest round the head fits, whichever is first."""
        nxt = self.rs.next_completion()
        if not len(self.pool):
            return nxt if self.watch_running else None
        if len(self.rs) + len(self.ending) < self.setting.cap:
            head = self.head()
            if self.extra and self.rs.fits(head, view.t):
                # blocked only by the current memory of the requests past their estimate: that
                # only shrinks at a completion or an eviction, which wake the policy anyway
                return nxt
            e = self.rs.earliest_start(head, view.t + 1, stop_at=nxt)
            nxt = e if nxt is None else min(nxt, e)
        return nxt

    def proactive(self, view: View) -> list[int]:
        """Evictions the policy makes on its own before starting anything (default none)."""
        return []

    def decide(self, view: View) -> Decision:
        """Sync, evict if the policy wants to, start by the walk, and say when to wake."""
        self.sync(view)
        evict = self.proactive(view)
        starts = self.admit(view)
        return Decision(starts, evict, self.wake(view))

    def stats(self) -> dict[str, Any]:
        """Refinements and the policy's own counters."""
        return dict(self.counters)


class FCFS(EstimatePolicy):
    """``fcfs``: arrival order, blocking, future-peak check on predicted lengths."""

    name = "fcfs"

    def keys(self, prompt: int, rem: int) -> tuple[int, int]:
        """Arrival order (the handle)."""
        return 0, 0


class SF(EstimatePolicy):
    """``sf``: shortest predicted output first, skipping."""

    name = "sf"
    walk = "skipping"


class MCSF(EstimatePolicy):
    """``mcsf``: shortest predicted output first, largest fitting prefix (blocking)."""

    name = "mcsf"


class SVF(EstimatePolicy):
    """``svf``: smallest predicted memory-time volume first, skipping."""

    name = "svf"
    walk = "skipping"

    def keys(self, prompt: int, rem: int) -> tuple[int, int]:
        """Estimated volume."""
        return _volume(prompt, rem, self.setting.block_size), 0


class SortedF(EstimatePolicy):
    """``sorted-f``: Sorted-F's min-F batches on predicted lengths (continuous reading, with fill)."""

    name = "sorted-f"
    walk = "sorted-f"

    def __init__(self, setting: Setting, params: SortedFParams):
        super().__init__(setting, params)
        for order in params.orders:
            if order not in ORDERS:
                raise ParameterError(
                    f"{self.name}: unknown order {order!r}; known: {', '.join(ORDERS)}"
                )
        self.sf = params
        self.screen = Screen(self.rs.world)
        self.counters.update({"batches": 0, "exact_batches": 0})

    def keys(self, prompt: int, rem: int) -> tuple[int, int]:
        """Remaining estimate, then estimated volume (the offline candidate order)."""
        return rem, _volume(prompt, rem, self.setting.block_size)

    def admit(self, view: View) -> list[int]:
        """Start min-F batches until nothing fits (``fill``)."""
        t = view.t
        starts: list[int] = []
        cap = self.setting.cap
        pool, rs = self.pool, self.rs
        p = self.sf
        if not len(pool) or len(rs) >= cap:
            return starts
        # the waiting requests that fit, in key order; one that does not fit keeps not fitting in
        # this round (memory only grows as batches start), so later rounds screen the survivors
        cand = pool.sort(pool.fitting(rs, t))
        self.screen.refresh()
        while cand.size and len(rs) < cap:
            if cand.size == 1:
                batch, exact = [int(cand[0])], True
                rs.add(batch[0], t)
            else:
                batch, _, exact = min_f_batch(
                    rs,
                    cand,
                    t,
                    cap - len(rs),
                    p.exact_max,
                    self.screen,
                    p.shortlist,
                    p.orders,
                    True,
                )
            for h in batch:  # min_f_batch left the batch started in ``rs``
                pool.remove(h)
                self.comp[h] = t + rs.remaining(h)
                self.state[h] = RUNNING
            cand = self.screen.fitting(rs, cand[~np.isin(cand, batch)], t)
            starts.extend(batch)
            self.counters["batches"] += 1
            self.counters["exact_batches"] += int(exact)
        return starts


class SortedFRobust(SortedF):
    """``sorted-f-robust``: Sorted-F with adaptive refinement (see docs/online.md for the reading).

    An outlived estimate is raised (factor ``grow``); the future peaks of the running requests are
    re-checked on the new estimates and, if they would overflow (``proactive``), the running
    request that has produced the fewest tokens among those alive at the overflow is evicted at
    once, before it wastes more; at a real overflow the victims are chosen the same way.
    """

    name = "sorted-f-robust"
    watch_running = True

    def __init__(self, setting: Setting, params: RobustParams):
        super().__init__(setting, params)
        self.robust = params
        self.counters["proactive_evictions"] = 0

    def _cheapest_first(self, view: View, handles: Sequence[int]) -> list[int]:
        """Fewest tokens produced first, then larger memory now, then the newest."""
        s = self.prompt

        def key(h: int) -> tuple[int, int, int]:
            produced = view.produced(h)
            return produced, -(s[h] + produced), -view.running[h].start

        return sorted(handles, key=key)

    def victims(self, view: View) -> list[int]:
        """Cheapest first until the round fits."""
        excess = view.usage - self.setting.memory
        out: list[int] = []
        for h in self._cheapest_first(view, list(view.running)):
            if excess <= 0:
                break
            out.append(h)
            excess -= self.setting.mem(self.prompt[h], view.produced(h) + 1)
        return out

    def proactive(self, view: View) -> list[int]:
        """Evict while the refined estimates predict an overflow."""
        out: list[int] = []
        if not self.robust.proactive:
            return out
        while True:
            tau = self.rs.predicted_overflow()
            if tau < 0:
                return out
            alive = [h for h in self.rs.members() if self.comp[h] > tau]
            victim = self._cheapest_first(view, alive)[0]
            self.evict_now(victim, view)
            out.append(victim)
            self.counters["proactive_evictions"] += 1


class AMax(EstimatePolicy):
    """``amax``: plan every request with the range's upper end (A_max), shortest first, blocking."""

    name = "amax"

    def first_estimate(self, a: Arrival) -> int:
        """The upper end of the range."""
        return a.hi


class AMin(EstimatePolicy):
    """``amin``: start from the range's lower end and raise it token by token (A_min).

    A request that outlives its lower bound is assumed to end in the next round (its bound is the
    tokens produced + 1); at an overflow the running requests with the smallest current lower bound
    are evicted first (newest first among equals).
    """

    name = "amin"
    token_by_token = True

    def first_estimate(self, a: Arrival) -> int:
        """The lower end of the range."""
        return a.lo

    def refine(self, h: int, produced: int) -> int:
        """The lower bound the tokens seen so far prove."""
        return min(self.kmax[h], produced + 1)

    def victims(self, view: View) -> list[int]:
        """Smallest current lower bound first until the round fits."""
        excess = view.usage - self.setting.memory
        est = self.est

        def key(h: int) -> tuple[int, int]:
            return max(est[h], view.produced(h) + 1), -view.running[h].start

        out: list[int] = []
        for h in sorted(view.running, key=key):
            if excess <= 0:
                break
            out.append(h)
            excess -= self.setting.mem(self.prompt[h], view.produced(h) + 1)
        return out


class Replan(EstimatePolicy):
    """``replan:METHOD``: re-solve the backlog with an offline method on the current estimates.

    The backlog changes at an arrival, an eviction, a refined estimate or a completion before its
    estimate.  At the next decision round in which some waiting request fits (and at least
    ``every`` rounds after the last re-plan), the running requests (the prompt they hold now,
    their remaining estimate) and the ``window`` waiting requests of smallest estimated volume form
    an instance with every request at round 0, solved by ``METHOD`` within ``seconds``.  The
    window's requests are then ordered by their planned start, ahead of the others (which keep the
    smallest-volume-first order), and started by the skipping walk with the future-peak check on
    estimates until the next re-plan.
    """

    walk = "skipping"
    _UNPLANNED = 2**50

    def __init__(self, setting: Setting, params: ReplanParams, method: str, seconds: float | None):
        super().__init__(setting, params)
        if method not in METHODS:
            raise ParameterError(f"replan: unknown method {method!r}; known: {', '.join(METHODS)}")
        if params.window < 1 or params.every < 1:
            raise ParameterError("replan: window and every must be at least 1")
        self.name = f"replan:{method}"
        self.method = method
        self.replan_params = params
        self.seconds = (
            params.seconds
            if params.seconds is not None
            else (seconds if seconds is not None else 1.0)
        )
        self.dirty = False
        self.last = -(2**62)
        self.planned: set[int] = set()
        self.counters.update({"replans": 0, "replan_seconds": 0.0})

    def keys(self, prompt: int, rem: int) -> tuple[int, int]:
        """Unplanned requests after the planned ones, smallest estimated volume first (``k2``)."""
        volume = _volume(prompt, rem, self.setting.block_size)
        return self._UNPLANNED + volume, volume

    def on_change(self, kind: str, h: int) -> None:
        """Every change of the backlog or of an estimate asks for a re-plan."""
        self.dirty = True
        self.planned.discard(h)

    def _replan(self, view: View) -> None:
        t = view.t
        pool, rs = self.pool, self.rs
        size = len(pool)
        w = min(self.replan_params.window, size)
        volume = pool.k2[:size]
        slots = np.argpartition(volume, w - 1)[:w] if w < size else np.arange(size)
        slots = slots[np.lexsort((pool.handle[slots], volume[slots]))]
        window = pool.handle[slots].tolist()
        running = list(rs.members())
        handles = running + window
        prompts = [self.prompt[h] + view.produced(h) for h in running] + [
            rs.held_prompt(h) for h in window
        ]
        outputs = [max(1, self.est[h] - view.produced(h)) for h in running] + [
            rs.remaining(h) for h in window
        ]
        inst = Instance.create(
            self.setting.memory,
            prompts,
            outputs,
            ids=[str(h) for h in handles],
            name=f"replan-t{t}",
            block_size=self.setting.block_size,
            max_batch=self.setting.max_batch,
        )
        t0 = time.perf_counter()
        result = solve(
            inst, self.method, SolveOptions(time_limit=self.seconds, seed=self.setting.seed)
        )
        self.counters["replan_seconds"] += time.perf_counter() - t0
        self.counters["replans"] += 1
        if result.plan is None:
            return
        for h in self.planned:  # the previous plan's requests still waiting go back to volume order
            if h in pool:
                p = pool.slot[h]
                pool.rekey(h, self._UNPLANNED + int(pool.k2[p]), int(pool.k2[p]))
        starts = result.plan.start_round[len(running) :]
        for rank, k in enumerate(np.lexsort((np.arange(len(window)), starts)).tolist()):
            h = window[k]
            pool.rekey(h, rank, int(pool.k2[pool.slot[h]]))
        self.planned = set(window)

    def decide(self, view: View) -> Decision:
        """Re-plan if the backlog changed and something can start now, then walk."""
        self.sync(view)
        t = view.t
        if (
            self.dirty
            and len(self.pool)
            and t - self.last >= self.replan_params.every
            and self.pool.fitting(self.rs, t, extra=self.extra).size
        ):
            self._replan(view)
            self.dirty = False
            self.last = t
        return Decision(self.admit(view), (), self.wake(view))


# ---------------------------------------------------------------------- vLLM and hindsight
class VLLM(Policy):
    """``vllm``: admit in queue order while the memory needed *now* fits; no look-ahead.

    Evicted requests return to the front of the queue; nothing is admitted in a round with an
    eviction (the executor's default victims, newest first, are vLLM's).
    """

    name = "vllm"

    def __init__(self, setting: Setting, params: MethodParams):
        super().__init__(setting)
        self.queue: deque[int] = deque()
        self.prompt: list[int] = []
        self.kept: list[int] = []

    def decide(self, view: View) -> Decision:
        """FCFS admission on current memory."""
        for a in view.arrived:
            self.prompt.append(a.prompt)
            self.kept.append(0)
            self.queue.append(a.handle)
        for e in view.evicted:
            self.kept[e.handle] = e.kept
            self.queue.appendleft(e.handle)
        if view.evicted:
            return Decision((), (), view.t + 1 if self.queue else None)
        starts: list[int] = []
        need = view.usage
        running = len(view.running)
        cap, m, mem = self.setting.cap, self.setting.memory, self.setting.mem
        q = self.queue
        while q and running < cap:
            h = q[0]
            first = mem(self.prompt[h] + self.kept[h], 1)
            if need + first > m:
                break
            q.popleft()
            starts.append(h)
            need += first
            running += 1
        return Decision(starts)


class Hindsight(Policy):
    """``hindsight:METHOD``: the clairvoyant offline plan of ``METHOD`` on the true instance.

    The reference floor, not an online policy: it was given the truth.  It starts every request in
    its planned round (never evicting: the plan is valid for the true lengths).
    """

    clairvoyant = True

    def __init__(self, setting: Setting, instance: Instance, method: str, seconds: float | None):
        super().__init__(setting)
        if method not in METHODS:
            raise ParameterError(
                f"hindsight: unknown method {method!r}; known: {', '.join(METHODS)}"
            )
        self.name = f"hindsight:{method}"
        result = solve(instance, method, SolveOptions(time_limit=seconds, seed=setting.seed))
        if result.plan is None:
            raise RuntimeError(f"hindsight: {method} found no plan ({result.stop_reason.value})")
        self.result = result
        self.planned = dict(result.plan.starts_by_id())
        self.by_round: dict[int, list[int]] = {}
        self.upcoming = sorted(set(self.planned.values()))
        self.next_index = 0

    def decide(self, view: View) -> Decision:
        """Start what the plan starts now; wake at the plan's next start round."""
        t = view.t
        for a in view.arrived:
            self.by_round.setdefault(self.planned[a.id], []).append(a.handle)
        starts = self.by_round.pop(t, [])
        up = self.upcoming
        while self.next_index < len(up) and up[self.next_index] <= t:
            self.next_index += 1
        return Decision(starts, (), up[self.next_index] if self.next_index < len(up) else None)

    def stats(self) -> dict[str, Any]:
        """The plan's objective and bound."""
        return {
            "plan_objective": self.result.objective,
            "plan_lower_bound": self.result.lower_bound,
        }


# ---------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class PolicySpec:
    """A registered policy: name, description, parameter class and factory."""

    name: str
    help: str
    params: type[MethodParams]
    make: Callable[[Setting, Any], Policy]


POLICIES: dict[str, PolicySpec] = {}
#: policies named ``PREFIX:METHOD`` (METHOD: any registered offline method)
PREFIXED: dict[str, str] = {
    "replan": "re-solve the backlog on current estimates with METHOD at events, follow its order",
    "hindsight": "the clairvoyant offline plan of METHOD on the true instance (reference floor)",
}


def register_policy(
    name: str, help: str, params: type[MethodParams], make: Callable[[Setting, Any], Policy]
) -> None:
    """Add a policy to the registry (names are unique)."""
    if name in POLICIES:
        raise ValueError(f"policy {name!r} registered twice")
    POLICIES[name] = PolicySpec(name, help, params, make)


register_policy(
    "vllm", "admit on current memory in arrival order, evict newest on overflow", MethodParams, VLLM
)
register_policy(
    "fcfs", "arrival order, future-peak check on predicted lengths, blocking", EstimateParams, FCFS
)
register_policy(
    "sf", "shortest predicted output first, future-peak check, skipping", EstimateParams, SF
)
register_policy(
    "mcsf",
    "shortest predicted output first, largest fitting prefix (blocking)",
    EstimateParams,
    MCSF,
)
register_policy("svf", "smallest predicted memory-time volume first, skipping", EstimateParams, SVF)
register_policy("sorted-f", "Sorted-F min-F batches on predicted lengths", SortedFParams, SortedF)
register_policy(
    "sorted-f-robust",
    "Sorted-F with adaptive refinement: raise outlived estimates, evict early on a predicted overflow",
    RobustParams,
    SortedFRobust,
)
register_policy(
    "amax", "A_max: plan with the range's upper end, shortest first, blocking", EstimateParams, AMax
)
register_policy(
    "amin", "A_min: start from the range's lower end, raise it token by token", EstimateParams, AMin
)


def policy_names() -> list[str]:
    """Registered names plus the prefixed families."""
    return [*POLICIES, *(f"{p}:METHOD" for p in PREFIXED)]


def policy_table() -> str:
    """One line per policy: name and description."""
    rows = [(spec.name, spec.help) for spec in POLICIES.values()]
    rows += [(f"{p}:METHOD", text) for p, text in PREFIXED.items()]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{width}}  {text}" for name, text in rows)


def policy_params(name: str) -> type[MethodParams]:
    """The parameter class of the policy ``name``; a one-line :class:`ParameterError` for an unknown
    policy or an unknown ``METHOD`` of ``replan:METHOD`` / ``hindsight:METHOD``."""
    prefix, sep, method = name.partition(":")
    if sep and prefix in PREFIXED:
        if not method:
            raise ParameterError(f"policy {name!r}: name the offline method, e.g. {prefix}:svf")
        if method not in METHODS:
            raise ParameterError(
                f"{prefix}: unknown method {method!r}; known: {', '.join(METHODS)}"
            )
        return ReplanParams if prefix == "replan" else MethodParams
    spec = POLICIES.get(name)
    if spec is None:
        raise ParameterError(f"unknown policy {name!r}; known: {', '.join(policy_names())}")
    return spec.params


def is_clairvoyant(name: str) -> bool:
    """Whether the policy ``name`` is given the true instance (``hindsight:METHOD``)."""
    return name.startswith("hindsight:")


def build_policy(
    name: str,
    setting: Setting,
    params: dict[str, Any] | None = None,
    oracle: Instance | None = None,
    seconds: float | None = None,
) -> Policy:
    """The policy ``name`` with validated ``params``; ``oracle`` (the true instance) is given to
    ``hindsight:METHOD`` only, ``seconds`` is the budget of each offline solve it makes."""
    raw = dict(params or {})
    prefix, sep, method = name.partition(":")
    if sep and prefix in PREFIXED:
        if not method:
            raise ParameterError(f"policy {name!r}: name the offline method, e.g. {prefix}:svf")
        if prefix == "replan":
            return Replan(setting, ReplanParams.parse(raw, name), method, seconds)
        if raw:
            raise ParameterError(f"{name}: takes no parameters")
        if oracle is None:
            raise ValueError("hindsight needs the true instance")
        return Hindsight(setting, oracle, method, seconds)
    spec = POLICIES.get(name)
    if spec is None:
        raise ParameterError(f"unknown policy {name!r}; known: {', '.join(policy_names())}")
    return spec.make(setting, spec.params.parse(raw, name))
