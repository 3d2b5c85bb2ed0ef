"""The serving-engine baselines (docs/methods.md): ``fcfs``, ``fcfs-skip``, ``sf``, ``size``,
``mcsf``, ``svf`` and ``vllm``.

All but ``vllm`` are the shared start rule (:func:`scheduler_milp.baselines.engine.priority_walk`) with a
priority order (parameters: :class:`WalkParams`); ``vllm`` simulates vLLM's default admission (no
look-ahead) with eviction and takes no parameters.  With a time limit each checks it at every
decision round and raises ``RuntimeError`` (one line on the command line) when it passes before
every request is scheduled: a partial schedule is no plan.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..model.deadline import Deadline
from ..model.instance import Instance, IntArray
from ..model.params import MethodParams
from ..model.plan import Plan
from ..model.result import SolveOptions, SolveResult
from .engine import RunningSet, natural_rank, priority_from_keys, priority_walk


@dataclass(frozen=True)
class WalkParams(MethodParams):
    """The priority walks' parameters: ``blocking`` switches the variant (``None``: the method's
    own), ``lookahead=-1`` makes the skipping walk equal to the round-by-round simulation (see
    :func:`~scheduler_milp.baselines.engine.priority_walk`)."""

    blocking: bool | None = None
    lookahead: int = 0


def fcfs_priority(instance: Instance) -> IntArray:
    """Arrival order, then id."""
    return priority_from_keys(instance)


def sf_priority(instance: Instance) -> IntArray:
    """Output length ascending (shortest first), then arrival, then id."""
    return priority_from_keys(instance, instance.output_len)


def size_priority(instance: Instance) -> IntArray:
    """Total size ``s_i + o_i`` ascending."""
    return priority_from_keys(instance, instance.prompt_len + instance.output_len)


def svf_priority(instance: Instance) -> IntArray:
    """Memory-time volume ``sum_k mem_i(k)`` ascending (smallest volume first)."""
    return priority_from_keys(instance, instance.volume)


def out_of_time(name: str) -> str:
    """The one-line error of a method whose time limit passed before it had a plan."""
    return f"{name}: time limit reached before every request was scheduled"


def decode_priority(instance: Instance, priority: IntArray, blocking: bool = False) -> Plan:
    """The shared decoder: a priority order to a validated plan."""
    walk = priority_walk(instance, priority, blocking=blocking)
    return Plan.checked(instance, walk.start_round)


def _walk_method(
    name: str, prio_fn: Callable[[Instance], IntArray], blocking: bool
) -> Callable[[Instance, SolveOptions | None], SolveResult]:
    def run(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
        options = options or SolveOptions()
        params = WalkParams.of(options)
        budget = options.budget()
        t0 = time.perf_counter()
        priority = prio_fn(instance)
        t1 = time.perf_counter()
        use_blocking = blocking if params.blocking is None else params.blocking
        lookahead = params.lookahead
        try:
            walk = priority_walk(
                instance,
                priority,
                blocking=use_blocking,
                should_stop=budget.expired if budget.limited else None,
                lookahead=lookahead,
            )
        except TimeoutError:
            raise RuntimeError(out_of_time(name)) from None
        plan = Plan.checked(instance, walk.start_round)
        t2 = time.perf_counter()
        return SolveResult(
            name,
            instance,
            plan,
            build_seconds=t1 - t0,
            solve_seconds=t2 - t1,
            stats={
                "events": walk.events,
                "checks": walk.checks,
                "blocking": use_blocking,
                "lookahead": lookahead,
            },
        )

    first_line = (prio_fn.__doc__ or name).splitlines()[0].strip()
    run.__doc__ = (
        f"``{name}``: priority walk by {first_line} ({'blocking' if blocking else 'skipping'})."
    )
    run.__name__ = f"solve_{name.replace('-', '_')}"
    return run


solve_fcfs = _walk_method("fcfs", fcfs_priority, blocking=True)
solve_fcfs_skip = _walk_method("fcfs-skip", fcfs_priority, blocking=False)
solve_sf = _walk_method("sf", sf_priority, blocking=False)
solve_size = _walk_method("size", size_priority, blocking=False)
solve_mcsf = _walk_method("mcsf", sf_priority, blocking=True)
solve_svf = _walk_method("svf", svf_priority, blocking=False)


# ---------------------------------------------------------------------- vLLM-like
def vllm_simulate(
    instance: Instance, deadline: Deadline | None = None
) -> tuple[IntArray, int, int]:
    """Simulate vLLM's default scheduler; return (final start rounds, evictions, wasted rounds).

    Each round: running requests grow by one token; if the round's memory would exceed ``M``,
    evict the most recently admitted running request (its work is lost; it goes back to the front
    of the queue) until it fits, and admit nothing new in that round.  Otherwise admit waiting
    requests in queue order while the memory needed *now* (``mem_j(1)``) fits, stopping at the
    first that does not (FCFS, no look-ahead).  Event-driven: between completions, arrivals and
    overflows nothing can change, because memory only grows.  ``RuntimeError`` when ``deadline``
    passes first.
    """
    inst = instance
    n = inst.n
    m = inst.memory_budget
    cap = inst.max_batch if inst.max_batch is not None else n + 1
    rank = natural_rank(inst.ids)
    arr_order = np.lexsort((rank, inst.arrival))
    arr_times = inst.arrival[arr_order]
    first_round = inst.mem(np.arange(n), 1).tolist()
    queue: deque[int] = deque()
    running = RunningSet(inst)
    admitted_seq: dict[int, int] = {}
    seq = 0
    start_round = np.full(n, -1, dtype=np.int64)
    evictions = 0
    wasted = 0
    ptr = 0
    done = 0
    t = int(arr_times[0])
    expired = deadline.expired if deadline is not None and deadline.limited else None
    while done < n:
        if expired is not None and expired():
            raise RuntimeError(out_of_time("vllm"))
        # completions at t
        for i in running.drop_completed(t):
            del admitted_seq[i]
            done += 1
        if done == n:
            break
        k = int(np.searchsorted(arr_times, t, side="right"))
        while ptr < k:
            queue.append(int(arr_order[ptr]))
            ptr += 1
        need = running.usage_now(t)
        evicted = False
        while need > m:
            victim = max(admitted_seq, key=admitted_seq.__getitem__)
            wasted += t - running.members()[victim]
            running.remove(victim)
            del admitted_seq[victim]
            start_round[victim] = -1
            queue.appendleft(victim)
            evictions += 1
            evicted = True
            need = running.usage_now(t)
        if not evicted:
            while queue and len(running) < cap and need + first_round[queue[0]] <= m:
                j = queue.popleft()
                running.add(j, t)
                start_round[j] = t
                admitted_seq[j] = seq
                seq += 1
                need += first_round[j]
        # next event
        nxt = math.inf
        c = running.next_completion()
        if c is not None:
            nxt = c
            # first overflow round before that completion (usage grows in between)
            lo, hi = t + 1, c - 1
            if lo <= hi and running.usage_now(hi) > m:
                if inst.block_size == 1:
                    # the same requests all run until c: usage(tau) = need + len * (tau - t)
                    lo = max(lo, t + (m - need) // len(running) + 1)
                else:
                    while lo < hi:
                        mid = (lo + hi) // 2
                        if running.usage_now(mid) > m:
                            hi = mid
                        else:
                            lo = mid + 1
                nxt = min(nxt, lo)
        if ptr < n:
            nxt = min(nxt, int(arr_times[ptr]))
        if evicted and queue:
            nxt = min(nxt, t + 1)
        if not math.isfinite(nxt):
            raise RuntimeError("vllm simulation stalled")
        t = int(nxt)
    return start_round, evictions, wasted


def solve_vllm(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``vllm``: vLLM-like admission on current memory with eviction; plan of the final starts."""
    t0 = time.perf_counter()
    starts, evictions, wasted = vllm_simulate(instance, (options or SolveOptions()).budget())
    plan = Plan.checked(instance, starts)
    return SolveResult(
        "vllm",
        instance,
        plan,
        solve_seconds=time.perf_counter() - t0,
        stats={"evictions": evictions, "wasted_rounds": wasted},
    )
