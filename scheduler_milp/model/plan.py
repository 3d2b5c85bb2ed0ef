"""A plan (one start round per request) and the one validator every method's output passes.

The validator is deliberately independent of every scheduling method: it rebuilds the memory used
in every round of the plan from the start rounds alone (difference arrays, exact for any block
size) and compares it with the budget, the arrivals and the batch cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .instance import Instance, IntArray


class PlanError(ValueError):
    """A plan that breaks the model of docs/model.md; ``violations`` lists every problem found."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        head = "; ".join(str(v) for v in violations[:5])
        more = f" (and {len(violations) - 5} more)" if len(violations) > 5 else ""
        super().__init__(f"invalid plan: {head}{more}")


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``kind`` is memory, arrival, batch, missing, unknown or start."""

    kind: str
    message: str
    request: str | None = None
    round: int | None = None
    excess: int | None = None

    def __str__(self) -> str:
        return self.message


def busy_rounds(instance: Instance, start_round: IntArray) -> IntArray:
    """The rounds in which at least one request runs, ascending (idle stretches left out).

    Memory and batch size are checked on these rounds only, so that a plan whose requests arrive
    far apart (an arrival of 10^9) costs memory in proportion to its running time, not its makespan.
    """
    start = np.asarray(start_round, dtype=np.int64)
    if start.size == 0:
        return np.zeros(0, dtype=np.int64)
    end = start + instance.output_len
    order = np.argsort(start, kind="stable")
    lo, hi = start[order], end[order]
    reach = np.maximum.accumulate(hi)
    new = np.ones(lo.size, dtype=bool)
    new[1:] = lo[1:] > reach[:-1]  # an interval starting after every earlier one has ended
    first = lo[new]
    last = np.append(reach[np.flatnonzero(new)[1:] - 1], reach[-1])
    lengths = last - first
    offsets = np.cumsum(lengths) - lengths
    total = int(lengths.sum())
    return np.repeat(first - offsets, lengths) + np.arange(total, dtype=np.int64)


def _profile(instance: Instance, start: IntArray, rounds: IntArray) -> tuple[IntArray, IntArray]:
    """Memory in use and requests running in each of ``rounds`` (which hold every busy round).

    With ``B = 1`` request ``i`` holds ``s_i + (t - S_i + 1)`` in round ``t``: a constant plus one per
    round, summed with two difference arrays over the positions of ``rounds``.  With ``B > 1`` it
    holds that plus the padding ``(-(s_i + t - S_i + 1)) mod B``, which depends only on ``t`` and
    the phase ``(s_i - S_i + 1) mod B``; one difference array per phase counts its requests.
    """
    s = instance.prompt_len
    end = start + instance.output_len
    k = rounds.size
    first = np.searchsorted(rounds, start)
    stop = np.searchsorted(rounds, end)
    const = np.bincount(first, weights=s - start + 1, minlength=k + 1) - np.bincount(
        stop, weights=s - start + 1, minlength=k + 1
    )
    count = np.cumsum(np.bincount(first, minlength=k + 1) - np.bincount(stop, minlength=k + 1))[:k]
    usage = np.rint(np.cumsum(const)[:k]).astype(np.int64) + rounds * count
    b = instance.block_size
    if b > 1:
        phase = (s - start + 1) % b
        for r in np.unique(phase):
            sel = phase == r
            cnt = np.cumsum(
                np.bincount(first[sel], minlength=k + 1) - np.bincount(stop[sel], minlength=k + 1)
            )[:k]
            usage += cnt * ((-(r + rounds)) % b)
    return usage, count


def memory_per_round(instance: Instance, start_round: IntArray) -> IntArray:
    """Memory in use in every round ``0..makespan-1`` of the plan (exact, vectorised)."""
    start = np.asarray(start_round, dtype=np.int64)
    horizon = int((start + instance.output_len).max()) if start.size else 0
    return _profile(instance, start, np.arange(horizon, dtype=np.int64))[0]


def batch_size_per_round(instance: Instance, start_round: IntArray) -> IntArray:
    """Number of requests running in every round ``0..makespan-1``."""
    start = np.asarray(start_round, dtype=np.int64)
    horizon = int((start + instance.output_len).max()) if start.size else 0
    return _profile(instance, start, np.arange(horizon, dtype=np.int64))[1]


def validate(instance: Instance, start_round: Any, max_listed: int = 50) -> list[Violation]:
    """Every violation of the model (docs/model.md) by these start rounds (empty list: the plan is valid).

    ``start_round`` is an array indexed like the instance or a mapping from request id to round.
    Checks: every request has exactly one integer start, no start before its arrival, memory at
    most ``M`` in every round, and at most ``max_batch`` requests in every round.
    """
    out: list[Violation] = []
    if isinstance(start_round, dict):
        known = set(instance.ids)
        for rid in start_round:
            if rid not in known:
                out.append(
                    Violation("unknown", f"unknown request '{rid}' in plan", request=str(rid))
                )
        arr = np.zeros(instance.n, dtype=np.int64)
        for i, rid in enumerate(instance.ids):
            if rid not in start_round:
                out.append(Violation("missing", f"request '{rid}' has no start round", request=rid))
                continue
            v = start_round[rid]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                out.append(
                    Violation(
                        "start",
                        f"request '{rid}': start round must be an integer (got {v!r})",
                        request=rid,
                    )
                )
                continue
            arr[i] = int(v)
        if out:
            return out
    else:
        arr = np.asarray(start_round)
        if arr.shape != (instance.n,):
            return [
                Violation("missing", f"plan has {arr.size} start rounds for {instance.n} requests")
            ]
        if not np.issubdtype(arr.dtype, np.integer):
            return [Violation("start", "start rounds must be integers")]
        arr = arr.astype(np.int64)
    early = np.flatnonzero(arr < instance.arrival)
    for i in early[:max_listed]:
        out.append(
            Violation(
                "arrival",
                f"request '{instance.ids[i]}' starts in round {int(arr[i])} before its arrival {int(instance.arrival[i])}",
                request=instance.ids[i],
                round=int(arr[i]),
            )
        )
    if (arr < 0).any():
        return out
    rounds = busy_rounds(instance, arr)
    usage, batch = _profile(instance, arr, rounds)
    over = np.flatnonzero(usage > instance.memory_budget)
    for k in over[:max_listed]:
        t = int(rounds[k])
        excess = int(usage[k] - instance.memory_budget)
        out.append(
            Violation(
                "memory",
                f"round {t}: memory {int(usage[k])} exceeds M={instance.memory_budget} by {excess}",
                round=t,
                excess=excess,
            )
        )
    if len(over) > max_listed:
        out.append(Violation("memory", f"... memory exceeded in {len(over)} rounds in all"))
    if instance.max_batch is not None:
        big = np.flatnonzero(batch > instance.max_batch)
        for k in big[:max_listed]:
            out.append(
                Violation(
                    "batch",
                    f"round {int(rounds[k])}: {int(batch[k])} requests running, above max_batch={instance.max_batch}",
                    round=int(rounds[k]),
                    excess=int(batch[k] - instance.max_batch),
                )
            )
    return out


class Latencies:
    """Completion rounds, latencies and the objective of start rounds (plans on one or more engines)."""

    instance: Instance
    start_round: IntArray

    @cached_property
    def completion(self) -> IntArray:
        """``C_i = S_i + o_i``."""
        return self.start_round + self.instance.output_len

    @cached_property
    def latency(self) -> IntArray:
        """``L_i = C_i - a_i``."""
        return self.completion - self.instance.arrival

    @cached_property
    def total_latency(self) -> int:
        """The objective: ``sum_i L_i``, an integer."""
        return int(self.latency.sum())

    @property
    def objective(self) -> int:
        """Alias of :attr:`total_latency`."""
        return self.total_latency

    @property
    def average_latency(self) -> float:
        """Mean latency in rounds."""
        return self.total_latency / self.instance.n


@dataclass(frozen=True, eq=False)
class Plan(Latencies):
    """Start rounds ``S_i`` for every request of ``instance`` and everything derived from them.

    Construct through :meth:`checked` to validate; a ``Plan`` that leaves a method is always valid.
    """

    instance: Instance
    start_round: IntArray

    @classmethod
    def checked(cls, instance: Instance, start_round: Any) -> Plan:
        """Build the plan and raise :class:`PlanError` unless the validator accepts it."""
        if isinstance(start_round, dict):
            arr = np.array([start_round.get(rid, -1) for rid in instance.ids], dtype=np.int64)
            problems = validate(instance, start_round)
        else:
            arr = np.asarray(start_round, dtype=np.int64)
            problems = validate(instance, np.asarray(start_round))
        if problems:
            raise PlanError(problems)
        arr = arr.copy()
        arr.setflags(write=False)
        return cls(instance, arr)

    def violations(self) -> list[Violation]:
        """Re-run the validator on this plan (empty when valid)."""
        return validate(self.instance, self.start_round)

    @cached_property
    def makespan(self) -> int:
        """The last completion round."""
        return int(self.completion.max())

    @cached_property
    def memory_per_round(self) -> IntArray:
        """Memory in use in each round ``0..makespan-1``."""
        return memory_per_round(self.instance, self.start_round)

    @property
    def peak_memory(self) -> int:
        """Largest memory in use in any round (computed on the busy rounds only)."""
        usage = _profile(
            self.instance, self.start_round, busy_rounds(self.instance, self.start_round)
        )[0]
        return int(usage.max()) if usage.size else 0

    @cached_property
    def batch_per_round(self) -> IntArray:
        """Number of running requests in each round."""
        return batch_size_per_round(self.instance, self.start_round)

    def starts_by_id(self) -> dict[str, int]:
        """``{id: start round}`` as written in plan files."""
        return {rid: int(v) for rid, v in zip(self.instance.ids, self.start_round, strict=True)}

    def order(self) -> IntArray:
        """Request indices by start round (ties by index): a priority order that reproduces much of the plan."""
        return np.lexsort((np.arange(self.instance.n), self.start_round))
