"""``dp``: an independent exact search for small backlogs, best-first (A*) over rounds.

Despite its registry name ``dp`` this is not dynamic programming: it is an A* search with an
admissible heuristic (a memory bound by default) and dominance pruning.  It shares no code with the
MILP / CP-SAT models nor with the engine's future-peak check: its memory arithmetic is written here,
plainly, so that the three exact methods can check each other.

Search space.  A node is ``(t, unstarted, running)``: the current round ``t``, the bit mask of the
requests not started yet, and the running requests with their start rounds.  Its successors start
any subset ``X`` of the arrived unstarted requests in round ``t`` (``X`` empty = wait a round),
provided the running set plus ``X`` fits in every future round *with no further start* and
respects ``max_batch`` in round ``t``; later starts only add memory, so a set that fails this
check can never be completed.  Every subset is considered, including waiting while something
would fit: with growing memory, delaying a start can be optimal.  A stretch where nothing runs and
nothing has arrived is crossed in one step: the successor jumps to the next arrival (in between,
waiting is the only move, and it changes no cost).

Costs.  Starting ``i`` in round ``t`` costs its latency ``t + o_i - a_i`` at once, so the cost to
come ``g`` of a node is the latency of everything started.  The heuristic
``h = sum_{u unstarted} (max(t, a_u) + o_u - a_u)`` (every unstarted request starts no earlier
than now and its arrival) is consistent: starting ``x`` now costs exactly its term, and every
other term can only grow in round ``t + 1``.  Nodes are expanded in order of ``f = g + h``
(among equal ``f`` the deeper first, larger ``g``: a complete plan of that ``f`` is reached
sooner), so the first complete node popped is optimal and, when the time or node limit stops the
search, the smallest ``f`` still open is a proven lower bound.

Memory bound (``bound="energy"``, the default).  A stronger admissible heuristic: the unstarted
requests' completions, sorted, ``C_(1) <= ... <= C_(k) <= ...``, satisfy ``C_(k) >= e_(k)`` (the
k-th smallest of the per-request bounds ``max(t, a_u) + o_u``) and ``C_(k) >= E_k``, the first
round by which the memory left free by the running requests, summed round by round from ``t``,
holds the ``k`` smallest memory areas ``sum_k mem_u(k)`` (whatever completes by a round has used
its whole area before it).  So ``sum_k max(e_(k), E_k) - sum a_u`` bounds their latency.  It is
admissible but not consistent, so a child's ``f`` is raised to its parent's (pathmax), which
keeps ``f`` non-decreasing along every path and the smallest open ``f`` a proven bound.
``bound="simple"`` is the heuristic above alone.

Dominance (``dominance=True``, the default).  The moves from a node depend only on its round, its
unstarted set and what its running requests hold in each round from now on (memory, and their
count under a batch cap), and a move's cost only on the first two.  So of two nodes with the same
round and unstarted set, one whose cost to come is no larger and whose running requests hold no
more in any round can complete every plan the other can, at no greater cost: the other is dropped
(at its pop, or before its bound is computed when an expanded node already dominates it).  Only
expanded nodes dominate, so the node kept is searched.  ``dominance=False`` drops only duplicates
(same round, unstarted set and running requests with their starts).

Horizon.  No explicit horizon is needed: a node whose ``f`` reaches the incumbent's objective
is pruned, and ``f`` grows by at least one per idle round while something is unstarted and
arrived, so the search is finite; it honours the horizon ``S_i <= UB - sum o + a_i`` of
docs/model.md implicitly (``h`` counts ``o_j`` for every other request).  Identical requests
``(s, o, a)`` are started in index order (a valid symmetry break, docs/model.md).

The deadline is checked at every node and in every loop over rounds, so the search keeps its
time limit even when an arrival lies very far ahead.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..model.instance import Instance
from ..model.params import MethodParams, ParameterError
from ..model.plan import Plan
from ..model.result import SolveOptions, SolveResult, StopReason

log = logging.getLogger(__name__)

#: the node bounds of ``dp`` (module docstring)
BOUNDS = ("energy", "simple")

#: the most start sets one node may list (about 200 MB); past it the search stops as at its node
#: limit (the sets grow as 2^waiting when many small requests fit together)
MAX_START_SETS = 1 << 20

#: seconds to free one open or expanded node when the search returns (measured about 0.8 us; the
#: search stops this much per node before its deadline, so the time limit covers freeing them)
FREE_SECONDS = 2e-6

#: the running requests of a node: ``(request, start round)`` pairs, sorted
_Running = tuple[tuple[int, int], ...]

#: what the running requests of a node hold from its round on: their memory per round, and under
#: a batch cap their count per round too (:func:`_holdings`)
_Holdings = tuple[int, ...]

#: an expanded node as its round's front keeps it: cost to come, total holdings, holdings
_Kept = tuple[int, int, _Holdings]

#: a node of the search (:func:`dp_search`)
_Node = tuple[int, int, int, int, int, _Running, tuple[int, ...], _Holdings]


@dataclass(frozen=True)
class SearchParams(MethodParams):
    """Parameters of ``dp``: ``max_n``, the largest backlog it accepts (the registry declines
    beyond); ``bound``, the node bound (``energy`` or ``simple``, module docstring); ``max_nodes``,
    the expanded nodes after which it stops with its best plan and bound (its memory grows with
    them, about 1 KB each; ``options.iteration_limit``, when given, takes its place);
    ``dominance``, whether a node is dropped when another of its round and unstarted set does at
    least as well (module docstring; off, only duplicates are)."""

    max_n: int = 12
    bound: str = "energy"
    max_nodes: int = 2_000_000
    dominance: bool = True

    def __post_init__(self) -> None:
        if self.bound not in BOUNDS:
            raise ParameterError(
                f"dp: bound must be one of {', '.join(BOUNDS)}, not {self.bound!r}"
            )


@dataclass(frozen=True)
class _Data:
    """Plain-Python copies of the instance arrays (faster than numpy scalars in the inner loops)."""

    n: int
    prompt_len: tuple[int, ...]
    output_len: tuple[int, ...]
    arrival: tuple[int, ...]
    block_size: int
    memory_budget: int
    max_batch: int
    profile: tuple[tuple[int, ...], ...]  # profile[i][k-1] = mem_i(k)
    area: tuple[int, ...]  # area[i] = sum_k mem_i(k)
    by_area: tuple[int, ...]  # the requests in order of area
    by_output: tuple[int, ...]  # the requests in order of output length
    last_arrival: int
    twin_before: tuple[int, ...]  # mask of identical requests with a smaller index


def _data(instance: Instance) -> _Data:
    n = instance.n
    s = tuple(int(x) for x in instance.prompt_len)
    o = tuple(int(x) for x in instance.output_len)
    a = tuple(int(x) for x in instance.arrival)
    b = int(instance.block_size)
    # mem_i(k) = B * ceil((s_i + k) / B), written out here on purpose (independent arithmetic).
    profile = tuple(tuple(b * (-(-(s[i] + k) // b)) for k in range(1, o[i] + 1)) for i in range(n))
    twins = []
    for i in range(n):
        mask = 0
        for j in range(i):
            if (s[j], o[j], a[j]) == (s[i], o[i], a[i]):
                mask |= 1 << j
        twins.append(mask)
    cap = instance.max_batch if instance.max_batch is not None else n
    area = tuple(sum(p) for p in profile)
    budget = int(instance.memory_budget)
    by_area = tuple(sorted(range(n), key=lambda i: area[i]))
    by_output = tuple(sorted(range(n), key=lambda i: o[i]))
    last = max(a, default=0)
    return _Data(
        n, s, o, a, b, budget, int(cap), profile, area, by_area, by_output, last, tuple(twins)
    )


def _energy_bound(d: _Data, t: int, rest: int, load: tuple[int, ...] = ()) -> int:
    """``sum_k max(e_(k), E_k) - sum a_u`` over the requests of ``rest`` (module docstring): a
    lower bound on their total latency when the next start is in round ``t`` and the requests
    running then use ``load[j]`` memory in round ``t + j`` (nothing past the end of ``load``)."""
    o, a, area = d.output_len, d.arrival, d.area
    if t >= d.last_arrival:  # every request has arrived: own bounds t + o_u, sorted by o_u
        own = [t + o[u] for u in d.by_output if rest >> u & 1]
    else:
        own = sorted((t if t > a[u] else a[u]) + o[u] for u in range(d.n) if rest >> u & 1)
    needs = [area[u] for u in d.by_area if rest >> u & 1]
    total = -sum(a[u] for u in range(d.n) if rest >> u & 1)
    budget = d.memory_budget
    free, k, need = 0, 0, needs[0]
    for j, used in enumerate(load):
        free += budget - used
        while free >= need:  # the k-th smallest area is in by the end of round t + j
            total += own[k] if own[k] > t + j else t + j + 1
            k += 1
            if k == len(own):
                return total
            need += needs[k]
    # past the running requests the rest fills M per round
    r = t + len(load)
    while True:
        total += max(own[k], r + -(-(need - free) // budget))
        k += 1
        if k == len(own):
            return total
        need += needs[k]


def _fits_forever(d: _Data, running: tuple[tuple[int, int], ...], t: int) -> bool:
    """True when the running set (request, start) stays within ``M`` in every round from ``t`` on."""
    end = max(st + d.output_len[i] for i, st in running)
    budget = d.memory_budget
    for r in range(t, end):
        used = 0
        for i, st in running:
            k = r - st  # 0-based age
            if 0 <= k < d.output_len[i]:
                used += d.profile[i][k]
        if used > budget:
            return False
    return True


def _serial_plan(d: _Data) -> list[int]:
    """A trivially feasible plan: one request at a time in arrival order (every request fits alone)."""
    order = sorted(range(d.n), key=lambda i: (d.arrival[i], d.output_len[i], i))
    starts = [0] * d.n
    t = 0
    for i in order:
        t = max(t, d.arrival[i])
        starts[i] = t
        t += d.output_len[i]
    return starts


def _greedy_plan(d: _Data, deadline: float = math.inf) -> list[int] | None:
    """Round-by-round greedy (shortest output first, start whatever fits forever); own arithmetic.

    ``None`` when some request is left at the round limit or at ``deadline``.  A round where
    nothing runs and nothing has arrived is skipped: the walk jumps to the next arrival.
    """
    starts = [-1] * d.n
    running: list[tuple[int, int]] = []
    left = set(range(d.n))
    t = 0
    limit = sum(d.output_len) + max(d.arrival) + 1
    while left and t <= limit:
        if time.perf_counter() > deadline:
            return None
        running = [(i, st) for i, st in running if st + d.output_len[i] > t]
        if not running:
            t = max(t, min(d.arrival[i] for i in left))
        for i in sorted(left, key=lambda i: (d.output_len[i], d.arrival[i], i)):
            if d.arrival[i] > t or len(running) >= d.max_batch:
                continue
            trial = (*running, (i, t))
            if _fits_forever(d, tuple(trial), t):
                running.append((i, t))
                starts[i] = t
                left.discard(i)
        t += 1
    return None if left else starts


def _objective(d: _Data, starts: list[int]) -> int:
    return sum(starts[i] + d.output_len[i] - d.arrival[i] for i in range(d.n))


def _incumbent(d: _Data, upper_starts: list[int] | None, deadline: float) -> tuple[list[int], int]:
    """The best of the serial plan, the greedy plan and ``upper_starts``, with its objective."""
    best = _serial_plan(d)
    best_obj = _objective(d, best)
    for cand in (_greedy_plan(d, deadline), upper_starts):
        if cand is not None and _objective(d, list(cand)) < best_obj:
            best, best_obj = list(cand), _objective(d, list(cand))
    return best, best_obj


def _load(d: _Data, running: _Running, t: int) -> tuple[int, ...]:
    """The memory the running requests use in rounds ``t, t + 1, ...`` until the last ends."""
    if not running:
        return ()
    end = max(st + d.output_len[i] for i, st in running)
    load = [0] * (end - t)
    for i, st in running:
        prof = d.profile[i]
        for r in range(max(t, st), st + d.output_len[i]):
            load[r - t] += prof[r - st]
    return tuple(load)


def _start_sets(
    d: _Data, t: int, alive: _Running, waiting: list[int], unstarted: int, deadline: float
) -> list[tuple[_Running, int, tuple[int, ...]]] | None:
    """Every set of waiting requests that may start in round ``t``: ``(running after, chosen
    mask, its memory in rounds t, t + 1, ...)``.

    Depth-first over the waiting requests, pruning the supersets of a set that does not fit (later
    additions only add memory); identical requests start in index order, within the batch cap.
    A request added to a set that fits needs checking in its own rounds only.  ``None`` when
    ``deadline`` passes first or there are more than :data:`MAX_START_SETS`.
    """
    room = d.max_batch - len(alive)
    budget = d.memory_budget
    stack: list[tuple[int, _Running, int, tuple[int, ...]]] = [(0, alive, 0, _load(d, alive, t))]
    children: list[tuple[_Running, int, tuple[int, ...]]] = []
    popped = 0
    while stack:
        pos, cur, chosen, load = stack.pop()
        popped += 1
        if popped % 4096 == 0 and time.perf_counter() > deadline:
            return None
        if pos == len(waiting):
            children.append((cur, chosen, load))
            if len(children) > MAX_START_SETS:
                return None
            continue
        u = waiting[pos]
        stack.append((pos + 1, cur, chosen, load))  # skip u
        # take u: identical requests start in index order, within the batch cap and memory
        if d.twin_before[u] & unstarted & ~chosen:
            continue
        if bin(chosen).count("1") >= room:
            continue
        prof = d.profile[u]
        grown = list(load) + [0] * (len(prof) - len(load))
        for k, m in enumerate(prof):
            grown[k] += m
            if grown[k] > budget:
                break
        else:
            stack.append((pos + 1, (*cur, (u, t)), chosen | 1 << u, tuple(grown)))
    return children


def _start(
    d: _Data, t: int, g: int, starts: tuple[int, ...], waiting: list[int], chosen: int
) -> tuple[int, tuple[int, ...]]:
    """Cost to come and start rounds after starting the ``chosen`` waiting requests in round ``t``."""
    if not chosen:
        return g, starts
    lst = list(starts)
    for u in waiting:
        if chosen >> u & 1:
            g += t + d.output_len[u] - d.arrival[u]
            lst[u] = t
    return g, tuple(lst)


def _next_round(d: _Data, t: int, running: _Running, rest: int) -> int:
    """The round of the successor of a node in round ``t``: ``t + 1``, or the next arrival when
    nothing runs in ``t + 1`` and no request of ``rest`` has arrived by then (waiting until that
    arrival is the only move in between, and it changes neither ``g`` nor ``h``)."""
    if running or not rest:
        return t + 1
    first = min(d.arrival[u] for u in range(d.n) if rest >> u & 1)
    return first if first > t + 1 else t + 1


def _holdings(d: _Data, running: _Running, t: int, load: tuple[int, ...]) -> _Holdings:
    """What ``running`` holds in rounds ``t, t + 1, ...`` (``load`` is its memory there) under a
    batch cap: memory and count interleaved, ``(mem_t, count_t, mem_t+1, ...)``, so that a
    shorter tuple compares with the prefix of a longer one round by round."""
    held: list[int] = []
    for j, mem in enumerate(load):
        held.append(mem)
        held.append(sum(1 for i, st in running if st + d.output_len[i] > t + j))
    return tuple(held)


def _kept(g: int, held: _Holdings) -> _Kept:
    """A node as a front keeps it: its total holdings first rule out most comparisons."""
    return g, sum(held), held


def _dominated(front: list[_Kept], node: _Kept) -> bool:
    """True when a node of ``front`` costs no more so far than ``node`` and holds no more in any
    round (nothing past the end of a tuple, so the kept one's may not be the longer)."""
    g, total, held = node
    size = len(held)
    for g_kept, total_kept, kept in front:
        if (
            g_kept <= g
            and total_kept <= total
            and len(kept) <= size
            and all(map(operator.le, kept, held))
        ):
            return True
    return False


def _keep(front: list[_Kept], node: _Kept) -> None:
    """Add ``node`` (dominated by none of ``front``) and drop what it dominates."""
    front[:] = [kept for kept in front if not _dominated([node], kept)]
    front.append(node)


@dataclass
class DPResult:
    """Outcome of :func:`dp_search`: the best start rounds, their objective and the proven bound."""

    start_round: list[int]
    objective: int
    lower_bound: int
    complete: bool  # True when the search was exhausted (the plan is optimal)
    nodes: int
    node_limit: bool = False  # True when ``max_nodes`` or :data:`MAX_START_SETS` stopped it


def dp_search(
    instance: Instance,
    upper_starts: list[int] | None = None,
    deadline: float = math.inf,
    bound: str = "energy",
    max_nodes: float = math.inf,
    dominance: bool = True,
    report: Callable[[int | None, int | None], None] | None = None,
) -> DPResult:
    """Exact best-first (A*) search (see the module docstring); stops at ``deadline``
    (perf_counter) or after ``max_nodes`` expanded nodes; ``dominance=False`` prunes only
    duplicate nodes (module docstring).  ``report(objective, bound)`` hears of
    the incumbent at the start and of the proven bound every 1,024 nodes."""
    d = _data(instance)
    n = d.n
    o, a = d.output_len, d.arrival
    best, best_obj = _incumbent(d, upper_starts, deadline)
    energy = bound == "energy"
    if report is not None:
        report(best_obj, None)
    too_many = False  # a node had more than MAX_START_SETS start sets

    def h(t: int, unstarted: int) -> int:
        total = 0
        for u in range(n):
            if unstarted >> u & 1:
                total += max(t, a[u]) + o[u] - a[u]
        return total

    # Node: (f, -g (deeper first among equal f), tie, t, unstarted mask, running tuple, starts
    # tuple, what the running requests hold from round t on: see _holdings)
    counter = itertools.count()
    full = (1 << n) - 1
    heap: list[_Node] = [(h(0, full), 0, next(counter), 0, full, (), tuple([-1] * n), ())]
    # the expanded nodes by (t, unstarted) (by (t, unstarted, running) without dominance):
    # their cost to come and holdings, none dominating another
    fronts: dict[tuple[int, int] | tuple[int, int, _Running], list[_Kept]] = {}
    capped = d.max_batch < n
    nodes = 0
    proven = heap[0][0]
    while heap:
        f, neg_g, _, t, unstarted, running, starts, held = heapq.heappop(heap)
        g = -neg_g
        if f >= best_obj:  # every open node is at least this good: the incumbent is optimal
            heap.clear()
            break
        proven = f
        if unstarted == 0:
            best, best_obj = list(starts), g
            heap.clear()
            break
        key = (t, unstarted) if dominance else (t, unstarted, running)
        front = fronts.setdefault(key, [])
        node = _kept(g, held)
        if _dominated(front, node):
            continue
        _keep(front, node)
        nodes += 1
        if report is not None and nodes % 1024 == 0:
            report(None, f)
        if nodes > max_nodes or time.perf_counter() + FREE_SECONDS * (len(heap) + nodes) > deadline:
            heapq.heappush(heap, (f, -g, next(counter), t, unstarted, running, starts, held))
            break
        # requests still running in round t (those finishing before t are gone)
        alive = tuple((i, st) for i, st in running if st + o[i] > t)
        waiting = [u for u in range(n) if unstarted >> u & 1 and a[u] <= t]
        children = _start_sets(d, t, alive, waiting, unstarted, deadline)
        if children is None:  # out of time or too many to list: the node stays open
            heapq.heappush(heap, (f, -g, next(counter), t, unstarted, running, starts, held))
            too_many = time.perf_counter() <= deadline
            break
        for cur, chosen, load in children:
            rest = unstarted & ~chosen
            g2, new_starts = _start(d, t, g, starts, waiting, chosen)
            nxt = tuple(sorted((i, st) for i, st in cur if st + o[i] > t + 1))
            t2 = t + 1
            held2: _Holdings = ()
            if rest == 0:
                f2 = g2
            elif not cur and not chosen and d.last_arrival <= t:
                # nothing runs and nothing starts although every request has arrived:
                # idling now only delays everything (shift the rest of the plan one round earlier)
                continue
            else:
                t2 = _next_round(d, t, nxt, rest)
                held2 = _holdings(d, nxt, t + 1, load[1:]) if capped else load[1:]
                near = fronts.get((t2, rest) if dominance else (t2, rest, nxt))
                if near is not None and _dominated(near, _kept(g2, held2)):
                    continue  # an expanded node does at least as well: skip the bound
                if energy:  # at least h (module docstring); pathmax keeps f non-decreasing
                    f2 = max(f, g2 + _energy_bound(d, t + 1, rest, load[1:]))
                else:
                    f2 = g2 + h(t + 1, rest)
            if f2 >= best_obj:
                continue
            heapq.heappush(heap, (f2, -g2, next(counter), t2, rest, nxt, new_starts, held2))
    complete = not heap
    if complete:
        proven = best_obj
    stopped_by_work = nodes > max_nodes or too_many
    return DPResult(best, best_obj, min(proven, best_obj), complete, nodes, stopped_by_work)


def solve_dp(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``dp``: exact best-first search for tiny backlogs; proven optimal when the search completes.

    The registry declines backlogs beyond ``max_n`` (:class:`SearchParams`) before calling it.
    """
    options = options or SolveOptions()
    params = SearchParams.of(options)  # ``max_n`` is the registry's size limit
    t0 = time.perf_counter()
    warm = None
    if options.warm_start is not None:
        warm = [int(x) for x in options.warm_start.start_round]
    max_nodes = options.iteration_limit or params.max_nodes
    res = dp_search(
        instance,
        warm,
        deadline=options.budget().at,
        bound=params.bound,
        max_nodes=max_nodes,
        dominance=params.dominance,
        report=options.on_improvement,
    )
    plan = Plan.checked(instance, np.asarray(res.start_round, dtype=np.int64))
    stop = StopReason.COMPLETED
    if not res.complete:
        stop = StopReason.ITERATION_LIMIT if res.node_limit else StopReason.TIME_LIMIT
    log.info(
        "dp: objective %d, bound %d, %d nodes, complete=%s",
        res.objective,
        res.lower_bound,
        res.nodes,
        res.complete,
    )
    return SolveResult(
        "dp",
        instance,
        plan,
        lower_bound=res.lower_bound,
        stop_reason=stop,
        solve_seconds=time.perf_counter() - t0,
        stats={"nodes": res.nodes, "bound_source": "dp"},
    )
