"""The independent check of an execution: memory of every round rebuilt from the segments alone.

Deliberately simple and separate from the executor's bookkeeping.  A request's segments
``[start, end)`` are read in order; in ``restart`` mode every segment begins from token 1, in
``resume`` mode a segment begins with the tokens of all earlier segments kept (``k0``).  A segment
starting in round ``a`` with ``k0`` tokens kept holds ``B * ceil((s + k0 + t - a + 1) / B)`` in
round ``t``.  The check adds that up round by round and compares it with ``M`` and the batch cap,
and recomputes the completion, the objective, the evictions and the wasted rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..model.instance import Instance, IntArray
from ..timing.roundtime import RoundTime
from .view import EVICTION_MODES

#: seconds of slack when comparing clock readings summed in different orders
CLOCK_TOLERANCE = 1e-6


class ExecutionError(ValueError):
    """An execution that breaks the model; ``problems`` lists what the check found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__("invalid execution: " + "; ".join(problems[:3]) + more)


@dataclass(frozen=True)
class Recount:
    """What the check recomputed from the segments."""

    memory: IntArray  # memory in use in every round 0..makespan-1
    batch: IntArray  # running requests in every round
    completion: IntArray
    objective: int
    evictions: int
    wasted_rounds: int


def recount(
    instance: Instance, segments: Sequence[Sequence[tuple[int, int]]], eviction: str
) -> Recount:
    """Memory, batch size, completions, objective, evictions and wasted rounds from the segments."""
    s = instance.prompt_len.tolist()
    b = instance.block_size
    ends = [seg[-1][1] for seg in segments if seg]
    horizon = max(ends) if ends else 0
    memory = np.zeros(horizon + 1, dtype=np.int64)
    batch = np.zeros(horizon + 1, dtype=np.int64)
    completion = np.zeros(instance.n, dtype=np.int64)
    evictions = wasted = 0
    for i, segs in enumerate(segments):
        kept = 0
        for a, e in segs:
            length = e - a
            if length <= 0:
                continue
            tokens = s[i] + kept + np.arange(1, length + 1)
            memory[a:e] += -(-tokens // b) * b
            batch[a:e] += 1
            if eviction == "resume":
                kept += length
        if segs:
            completion[i] = segs[-1][1]
            evictions += len(segs) - 1
            if eviction == "restart":
                wasted += sum(e - a for a, e in segs[:-1])
    objective = int((completion - instance.arrival).sum())
    return Recount(memory[:horizon], batch[:horizon], completion, objective, evictions, wasted)


def check_execution(
    instance: Instance,
    segments: Sequence[Sequence[tuple[int, int]]],
    eviction: str,
    claimed: dict[str, int] | None = None,
) -> list[str]:
    """Every problem of these segments under the model (empty: the execution is valid).

    Rules: each request has at least one segment, segments are non-empty, ordered and disjoint,
    the first starts at or after the arrival; in ``restart`` mode only the last segment reaches
    ``o_i`` tokens (and exactly), in ``resume`` mode the lengths add up to ``o_i``; memory at most
    ``M`` and at most ``max_batch`` requests in every round.  ``claimed`` values (``objective``,
    ``evictions``, ``wasted_rounds``) are compared with the recount.
    """
    if eviction not in EVICTION_MODES:
        return [f"unknown eviction mode {eviction!r}"]
    problems: list[str] = []
    if len(segments) != instance.n:
        return [f"{len(segments)} segment lists for {instance.n} requests"]
    o = instance.output_len.tolist()
    arrival = instance.arrival.tolist()
    for i, segs in enumerate(segments):
        rid = instance.ids[i]
        if not segs:
            problems.append(f"request '{rid}' never ran")
            continue
        if segs[0][0] < arrival[i]:
            problems.append(
                f"request '{rid}' starts in round {segs[0][0]} before its arrival {arrival[i]}"
            )
        previous_end = None
        for a, e in segs:
            if e <= a:
                problems.append(f"request '{rid}': empty segment [{a}, {e})")
            if previous_end is not None and a < previous_end:
                problems.append(f"request '{rid}': segment [{a}, {e}) overlaps the one before")
            previous_end = e
        lengths = [e - a for a, e in segs]
        if eviction == "restart":
            if lengths[-1] != o[i]:
                problems.append(
                    f"request '{rid}': last segment has {lengths[-1]} rounds, output is {o[i]}"
                )
            if any(x >= o[i] for x in lengths[:-1]):
                problems.append(f"request '{rid}': an evicted segment already produced every token")
        elif sum(lengths) != o[i]:
            problems.append(
                f"request '{rid}': segments produce {sum(lengths)} tokens, output is {o[i]}"
            )
    if problems:
        return problems
    rc = recount(instance, segments, eviction)
    over = np.flatnonzero(rc.memory > instance.memory_budget)
    for t in over[:5].tolist():
        problems.append(f"round {t}: memory {int(rc.memory[t])} exceeds M={instance.memory_budget}")
    if instance.max_batch is not None:
        big = np.flatnonzero(rc.batch > instance.max_batch)
        for t in big[:5].tolist():
            problems.append(
                f"round {t}: {int(rc.batch[t])} requests running, above max_batch={instance.max_batch}"
            )
    for key, value in (claimed or {}).items():
        actual = getattr(rc, key)
        if int(actual) != int(value):
            problems.append(f"{key} claimed {value}, recomputed {int(actual)}")
    return problems


def check_admissions(
    instance: Instance,
    segments: Sequence[Sequence[tuple[int, int]]],
    eviction: str,
    model: RoundTime,
) -> list[str]:
    """On the executor's clock, each request's arrival round is the first round that begins at or
    after its arrival in seconds (empty: so it is).

    The clock is rebuilt from the segments alone by :func:`~scheduler_milp.timing.clock.timeline`
    (busy rounds back to back, idle rounds of ``c0``: ``Timeline.begin_of``), independently of the
    executor's sums.
    """
    from ..timing.clock import arrival_seconds, execution_segments, timeline

    secs = arrival_seconds(instance, model)
    segs = execution_segments(instance, [list(x) for x in segments], eviction)
    tl = timeline(instance, segs, model, secs)
    adm = instance.arrival
    begins = tl.begin_of(adm)
    late = begins < secs - CLOCK_TOLERANCE
    early = (adm > 0) & (tl.begin_of(np.maximum(adm - 1, 0)) >= secs + CLOCK_TOLERANCE)
    problems = []
    for i in np.flatnonzero(late | early)[:5].tolist():
        problems.append(
            f"request '{instance.ids[i]}' admitted in round {int(adm[i])}, which begins at "
            f"{begins[i]:.6f} s, arrival {secs[i]:.6f} s: not the first "
            "round beginning at or after it"
        )
    return problems
