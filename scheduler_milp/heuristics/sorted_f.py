"""``sorted-f`` (Sorted-F, arXiv 2508.06133): repeatedly start the feasible batch minimising
``F(X) = sum_{i in X} o_i / |X|^2``.

Two readings (parameter ``mode``):

* ``"continuous"`` (default): at every decision round the min-F subset of the arrived, unstarted
  requests that fits next to the running ones (the future-peak check of
  :class:`scheduler_milp.baselines.engine.RunningSet`) is started; with ``fill=True`` (default) further
  min-F batches are formed from the rest in the same round until nothing fits, so memory is never
  left idle when some request could use it.  Decision rounds are event-driven: completions,
  arrivals, and the earliest round in which the smallest-output waiting request would fit (:meth:`RunningSet.earliest_start`).
* ``"sequential"``: the paper's batch reading.  A batch is formed only when the previous one has
  drained (nothing running), from the requests that have arrived by then.

Finding the min-F batch.  With at most ``exact_max`` (default 12) individually fitting candidates
the batch is exact: a depth-first enumeration of jointly feasible subsets (feasibility is
monotone: a subset of a feasible set is feasible, so an infeasible child prunes all its
supersets), pruned by the bound ``F >= (S + m smallest remaining o) / (k + m)^2``.  With more
candidates a fast rule is used: for each of three orders (output length; peak memory
``mem_i(o_i)``; output x peak) walk the candidates and accept each one that still fits next to
everything running and accepted (skipping the others), and take the best prefix of the accepted
sequence over the three walks.  For a fixed size ``k`` no ``k``-set has a smaller output sum than
the ``k`` smallest outputs, so the output-order walk is provably exact when its accepted prefix
of length ``k*`` is the plain prefix of the output-sorted list and ``k*`` minimises
``P_k / k^2`` over every ``k`` up to an upper bound on the batch size (the number of smallest
first-round memories that fit the free memory); ``stats["exact_batches"]`` counts the batches
certified either way.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..baselines.engine import RunningSet, natural_rank
from ..model.instance import Instance, IntArray
from ..model.params import MethodParams
from ..model.plan import Plan
from ..model.result import SolveOptions, SolveResult, StopReason

log = logging.getLogger(__name__)

MODES = ("continuous", "sequential")
ORDERS = ("output", "peak", "output_x_peak")


@dataclass(frozen=True)
class SortedFParams(MethodParams):
    """``sorted-f``'s parameters (see the module docstring): the reading (``mode``), ``fill``, the
    exact search's size (``exact_max``), and the fast rule's ``shortlist`` and walk ``orders``."""

    mode: str = "continuous"
    fill: bool = True
    exact_max: int = 12
    shortlist: int = 16
    orders: tuple[str, ...] = ("output", "peak")


def _walk(running: RunningSet, order: IntArray, t: int, cap: int, screen: _Screen) -> list[int]:
    """Accept, in ``order``, every candidate that fits next to the running ones and those accepted.

    The accepted requests are added to ``running`` (the caller removes them).  A candidate that
    does not fit stays unfit for the rest of the walk (memory only grows), so after each
    acceptance the rest is screened once and the first survivor is next.
    """
    accepted: list[int] = []
    rest = order
    while rest.size and len(accepted) < cap:
        j = int(rest[0])
        running.add(j, t)
        accepted.append(j)
        rest = screen.fitting(running, rest[1:], t)
    return accepted


class _Waiting:
    """The waiting requests in output order, grouped by output length with each group's min prompt.

    Screening all waiting requests at every decision round would cost ``O(n)`` gathers per round;
    with the groups, one :meth:`RunningSet.max_prompt` per distinct output length decides which
    groups can hold a fitting request (their smallest prompt is at most the bound), and only
    those groups are gathered.  The grouping is rebuilt (a few numpy passes) when the set changes.
    """

    def __init__(self, instance: Instance, out_rank: IntArray):
        self.prompt_len = instance.prompt_len
        self.output_len = instance.output_len
        self.out_rank = out_rank
        self.pend = np.zeros(0, dtype=np.int64)
        self.pos_of = np.zeros(instance.n, dtype=np.int64)  # request -> position in ``pend``
        self._rebuild()

    def _rebuild(self) -> None:
        pend = self.pend
        self.alive = np.ones(pend.size, dtype=bool)
        self.dead = 0
        self.pos_of[pend] = np.arange(pend.size)
        self.pend_prompt = self.prompt_len[pend]
        out = self.output_len[pend]
        if pend.size:
            self.grp_start = np.concatenate(([0], np.flatnonzero(out[1:] != out[:-1]) + 1))
        else:
            self.grp_start = np.zeros(0, dtype=np.int64)
        self.grp_len = np.diff(np.concatenate((self.grp_start, [pend.size])))
        self.grp_out = out[self.grp_start] if pend.size else np.zeros(0, dtype=np.int64)
        self.grp_min = (
            np.minimum.reduceat(self.pend_prompt, self.grp_start) if pend.size else self.grp_out
        )

    def add(self, reqs: IntArray) -> None:
        """Requests that arrived."""
        pend = np.concatenate([self.pend[self.alive], reqs])
        self.pend = pend[np.argsort(self.out_rank[pend], kind="stable")]
        self._rebuild()

    def start(self, started: np.ndarray) -> None:
        """Requests that started leave (lazily: the group minima stay valid lower bounds, and the
        arrays are compacted once a quarter of them is dead)."""
        pos = self.pos_of[started]
        self.alive[pos] = False
        self.dead += pos.size
        if self.dead * 4 > self.pend.size:
            self.pend = self.pend[self.alive]
            self._rebuild()

    @property
    def size(self) -> int:
        """Number of waiting requests."""
        return int(self.pend.size - self.dead)

    def first(self) -> int:
        """The waiting request first in output order."""
        return int(self.pend[int(np.argmax(self.alive))])

    def fitting(self, running: RunningSet, t: int) -> IntArray:
        """Waiting requests (output order) that fit in round ``t`` next to ``running``."""
        if not self.pend.size:
            return self.pend
        # cheap necessary condition first: the first round's memory fits what is free now
        b = running.B
        free = running.M - (running.usage_now(t) if len(running) else 0)
        pre = np.flatnonzero(self.grp_min <= (free // b) * b - 1)
        if not pre.size:
            return self.pend[:0]
        smax_pre = running.max_prompt(self.grp_out[pre], t)
        sel = self.grp_min[pre] <= smax_pre
        ok = pre[sel]
        if not ok.size:
            return self.pend[:0]
        smax = np.zeros(self.grp_out.size, dtype=np.int64)
        smax[ok] = smax_pre[sel]
        lengths = self.grp_len[ok]
        total = int(lengths.sum())
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        idx = np.arange(total) - np.repeat(offsets - self.grp_start[ok], lengths)
        idx = idx[(self.pend_prompt[idx] <= np.repeat(smax[ok], lengths)) & self.alive[idx]]
        return self.pend[idx]


class _Screen:
    """Vectorised future-peak screen: :meth:`RunningSet.max_prompt` once per distinct output length."""

    def __init__(self, instance: Instance):
        self.prompt_len = instance.prompt_len
        self.peak_memory = instance.peak_memory  # a property computed over all requests: cache it
        self.out_values, self.out_pos = np.unique(instance.output_len, return_inverse=True)

    def fitting(self, running: RunningSet, cand: IntArray, t: int) -> IntArray:
        """The candidates (order kept) that can start in round ``t`` next to ``running``."""
        if not cand.size:
            return cand
        pos = self.out_pos[cand]
        if cand.size < self.out_values.size:
            # few candidates: evaluate only their own output lengths
            smax = running.max_prompt(self.out_values[pos], t)
            return cand[self.prompt_len[cand] <= smax]
        smax = running.max_prompt(self.out_values, t)
        return cand[self.prompt_len[cand] <= smax[pos]]


def _best_prefix(out_len: IntArray, seq: list[int]) -> tuple[float, int]:
    """``(min_k P_k / k^2, argmin k)`` over the prefixes of ``seq``."""
    pref = np.cumsum(out_len[np.asarray(seq, dtype=np.int64)])
    k = np.arange(1, len(seq) + 1)
    f = pref / (k * k)
    best = int(np.argmin(f))
    return float(f[best]), best + 1


class _Exact:
    """Depth-first search for the min-F jointly feasible subset of a few candidates."""

    def __init__(self, running: RunningSet, t: int, cand: IntArray, cap: int, screen: _Screen):
        o = running.instance.output_len
        order = np.argsort(o[cand], kind="stable")
        self.cand = cand[order]
        self.o = o[self.cand].astype(np.float64)
        self.running = running
        self.t = t
        self.output_len = o
        self.chosen: list[int] = []
        self.screen = screen
        self.cap = cap
        self.best_f = math.inf
        self.best: list[int] = []
        self.nodes = 0

    def run(self) -> tuple[list[int], float]:
        self._dfs(0.0, self.cand)
        return self.best, self.best_f

    def _dfs(self, total: float, options: IntArray) -> None:
        # options: candidates (ascending output) after the last chosen that fit next to the trial
        self.nodes += 1
        k = len(self.chosen)
        if k:
            f = total / (k * k)
            if f < self.best_f - 1e-12:
                self.best_f, self.best = f, list(self.chosen)
        if not options.size or k >= self.cap:
            return
        # bound: adding m of the remaining options costs at least the m smallest outputs
        room = min(options.size, self.cap - k)
        add = np.cumsum(self.output_len[options[:room]])
        m = np.arange(1, room + 1)
        if float(((total + add) / ((k + m) ** 2)).min()) >= self.best_f - 1e-12:
            return
        for idx, j in enumerate(options.tolist()):
            self.running.add(j, self.t)
            self.chosen.append(j)
            rest = self.screen.fitting(self.running, options[idx + 1 :], self.t)
            self._dfs(total + float(self.output_len[j]), rest)
            self.chosen.pop()
            self.running.remove(j)


def _order_key(name: str, out_len: IntArray, peak: IntArray, cand: IntArray) -> IntArray:
    if name == "output":
        return out_len[cand]
    if name == "peak":
        return peak[cand]
    return out_len[cand] * peak[cand]


def min_f_batch(
    running: RunningSet,
    cand: IntArray,
    t: int,
    cap: int,
    exact_max: int = 12,
    screen: _Screen | None = None,
    shortlist: int = 16,
    orders: tuple[str, ...] = ("output", "peak"),
    output_sorted: bool = False,
) -> tuple[list[int], float, bool]:
    """The batch (list of request indices) to start in round ``t`` and its F value.

    ``cand`` are waiting requests that each fit alone next to ``running``; ``output_sorted``
    says they are already in ascending output order (saves the sorts).  Returns
    ``(batch, F, certified_exact)``; the batch is left started in ``running`` at round ``t``
    (the caller records the starts).
    """
    inst = running.instance
    o = inst.output_len
    screen = screen or _Screen(inst)
    if cand.size <= exact_max:
        batch, f = _Exact(running, t, cand, cap, screen).run()
        for j in batch:
            running.add(j, t)
        return batch, f, True
    best: tuple[float, list[int]] = (math.inf, [])
    exact = False
    live: list[int] = []  # the requests of the last walk, still started in ``running``
    free = inst.memory_budget - (running.usage_now(t) if len(running) else 0)  # before any walk
    for which, name in enumerate(orders):
        # only the first ``shortlist`` of each order are walked: larger batches are formed by the
        # next rounds of ``fill`` in the same decision round.  (key, position) is a unique
        # integer, so the partial selection equals a stable sort's prefix.
        if name == "output" and output_sorted:
            order = cand[:shortlist]
        elif cand.size > 2 * shortlist:
            key = _order_key(name, o, screen.peak_memory, cand)
            unique_key = key * cand.size + np.arange(cand.size, dtype=np.int64)
            top = np.argpartition(unique_key, shortlist - 1)[:shortlist]
            order = cand[top[np.argsort(unique_key[top])]]
        else:
            order = cand[
                np.argsort(_order_key(name, o, screen.peak_memory, cand), kind="stable")[:shortlist]
            ]
        for j in live:  # undo the previous walk
            running.remove(j)
        seq = _walk(running, order, t, cap, screen)
        live = seq
        if not seq:
            continue
        f, k = _best_prefix(o, seq)
        if f < best[0]:
            best = (f, seq[:k])
        if which == 0:
            # certificate: the accepted prefix is the plain output-sorted prefix and its length
            # minimises P_k/k^2 up to an upper bound on any feasible batch's size (the number of
            # smallest first-round memories that fit the free memory)
            differ = np.flatnonzero(np.asarray(seq, dtype=np.int64) != order[: len(seq)])
            plain = int(differ[0]) if differ.size else len(seq)
            if k > plain:
                continue
            # at most ``limit`` smallest first-round memories are summed (bounded work); if even
            # they all fit, no certificate is claimed
            limit = min(cand.size, cap, 4 * shortlist)
            first_mem = inst.prompt_len[cand] + 1 if inst.block_size == 1 else inst.mem(cand, 1)
            first = np.sort(np.partition(first_mem, limit - 1)[:limit])
            kmax = int(np.searchsorted(np.cumsum(first), free, side="right"))
            if kmax == limit < min(cand.size, cap):
                kmax = 0
            if kmax > 0:
                smallest = (
                    o[cand[:kmax]]
                    if output_sorted
                    else np.sort(np.partition(o[cand], kmax - 1)[:kmax])
                )
                pk = np.cumsum(smallest)
                kk = np.arange(1, kmax + 1)
                exact = bool((pk / (kk * kk)).min() >= f - 1e-12)
                if exact:
                    break  # no batch of any order can beat the certified one
    # leave exactly the best batch started (saves re-adding it when it is the last walk's prefix)
    batch = best[1]
    if live[: len(batch)] == batch:
        for j in live[len(batch) :]:
            running.remove(j)
    else:
        for j in live:
            running.remove(j)
        for j in batch:
            running.add(j, t)
    return batch, best[0], exact


def sorted_f_starts(
    instance: Instance,
    mode: str = "continuous",
    fill: bool = True,
    exact_max: int = 12,
    deadline: float = math.inf,
    shortlist: int = 16,
    orders: tuple[str, ...] = ("output", "peak"),
) -> tuple[IntArray, dict[str, Any]]:
    """Start rounds of the Sorted-F schedule and counters (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"sorted-f: mode must be one of {', '.join(MODES)} (got {mode!r})")
    for name in orders:
        if name not in ORDERS:
            raise ValueError(f"sorted-f: unknown order {name!r}; known: {', '.join(ORDERS)}")
    inst = instance
    n = inst.n
    o = inst.output_len
    rank = natural_rank(inst.ids)
    cap_total = inst.max_batch if inst.max_batch is not None else n + 1
    start_round = np.full(n, -1, dtype=np.int64)
    running = RunningSet(inst)
    arr_order = np.lexsort((rank, inst.arrival))
    arr_times = inst.arrival[arr_order]
    next_arrival = 0
    # waiting requests in output order (ties: volume, arrival, id): the output walk's order, so
    # the min-F search needs no sort of the candidates
    by_output = np.lexsort((rank, inst.arrival, inst.volume, o))
    out_rank = np.empty(n, dtype=np.int64)
    out_rank[by_output] = np.arange(n)
    waiting = _Waiting(inst, out_rank)
    screen = _Screen(inst)
    stats: dict[str, Any] = {"events": 0, "batches": 0, "exact_batches": 0, "f_values": []}
    t = int(arr_times[0])
    done = 0
    f_values: list[float] = []
    while done < n:
        if time.perf_counter() > deadline:
            # RuntimeError: the CLI prints it as one line (a partial schedule is no plan)
            raise RuntimeError("sorted-f: time limit reached before every request was scheduled")
        stats["events"] += 1
        running.drop_completed(t)
        k = int(np.searchsorted(arr_times, t, side="right"))
        if k > next_arrival:
            new = arr_order[next_arrival:k]
            next_arrival = k
            waiting.add(new)
        may_start = mode == "continuous" or len(running) == 0
        while may_start and waiting.size and len(running) < cap_total:
            cand = waiting.fitting(running, t)
            if not cand.size:
                break
            if cand.size == 1:
                batch, f, exact = [int(cand[0])], float(o[cand[0]]), True
                running.add(batch[0], t)
            else:
                batch, f, exact = min_f_batch(
                    running,
                    cand,
                    t,
                    cap_total - len(running),
                    exact_max,
                    screen,
                    shortlist if mode == "continuous" else n,
                    orders,
                    True,
                )
            start_round[batch] = t  # min_f_batch left the batch started in ``running``
            done += len(batch)
            stats["batches"] += 1
            stats["exact_batches"] += int(exact)
            f_values.append(f)
            waiting.start(np.asarray(batch, dtype=np.int64))
            if mode == "sequential" or not fill:
                break
        if done == n:
            break
        nxt = math.inf
        if mode == "sequential":
            if len(running):
                running.next_completion()  # refreshes the sorted completions
                nxt = int(running.completion[-1])
            elif next_arrival < n:
                nxt = int(arr_times[next_arrival])
        else:
            c = running.next_completion()
            if c is not None:
                nxt = c
            if next_arrival < n:
                nxt = min(nxt, int(arr_times[next_arrival]))
            if waiting.size and len(running) < cap_total:
                # the smallest-output waiting request may fit before the next completion (a later
                # start shifts its growing profile right)
                head = waiting.first()
                stop_at = None if math.isinf(nxt) else int(nxt)
                nxt = min(nxt, running.earliest_start(head, t + 1, stop_at=stop_at))
        if not math.isfinite(nxt):
            raise RuntimeError("sorted-f stalled: nothing running, nothing arriving")
        t = int(nxt)
    stats["f_values_nondecreasing"] = bool(
        all(a <= b_ + 1e-9 for a, b_ in zip(f_values, f_values[1:], strict=False))
    )
    stats["first_f"] = f_values[0] if f_values else None
    stats["last_f"] = f_values[-1] if f_values else None
    del stats["f_values"]
    return start_round, stats


def solve_sorted_f(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``sorted-f``: Sorted-F batches (parameters: :class:`SortedFParams`; see the module doc)."""
    options = options or SolveOptions()
    p = SortedFParams.of(options)
    mode = p.mode
    t0 = time.perf_counter()
    starts, stats = sorted_f_starts(
        instance,
        mode=mode,
        fill=p.fill,
        exact_max=p.exact_max,
        shortlist=p.shortlist,
        orders=p.orders,
        deadline=options.budget().at,
    )
    plan = Plan.checked(instance, starts)
    stats["mode"] = mode
    log.info("sorted-f (%s): objective %d, %d batches", mode, plan.total_latency, stats["batches"])
    return SolveResult(
        "sorted-f",
        instance,
        plan,
        stop_reason=StopReason.COMPLETED,
        solve_seconds=time.perf_counter() - t0,
        stats=stats,
    )
