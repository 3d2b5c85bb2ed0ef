"""A plan or an execution on the clock: when each round begins and ends, in seconds (docs/timing.md).

The rounds run back to back. Round ``t`` lasts :meth:`RoundTime.duration` of its prefill tokens,
running requests and KV tokens, a round in which nothing runs lasts ``c0``, and a round begins
only once every request it starts has arrived (its ``arrival_s``): otherwise the engine waits.
With ``B(t)`` the begin time of round ``t`` had nobody to wait for (the sum of the durations
before it) and ``release(t)`` the latest arrival among the requests starting in ``t``, the begin
time is ``T(t) = B(t) + max(0, max_{u <= t} (release(u) - B(u)))``.

Everything is computed on the busy rounds only (idle stretches are summed in closed form), so a
trace of an hour costs its running time, not its makespan.

The input is a list of *segments* ``(request, start, end, kept)``: request ``i`` runs in rounds
``start .. end - 1`` holding ``s_i + kept + k`` tokens in the segment's ``k``-th round, and its
first round prefills ``s_i + kept`` tokens (its prompt, plus the tokens it recomputes when an
eviction kept them).  A plan is one segment per request with ``kept = 0``
(:func:`plan_segments`); an online execution in ``{id: [[start, end], ...]}`` form is read by
:func:`execution_segments`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..model.instance import Instance, IntArray
from .roundtime import UNIT, RoundTime

FloatArray = NDArray[np.float64]

#: meta keys of an instance that carry arrivals in seconds and the round duration they were mapped with
ARRIVAL_KEY = "arrival_s"
ROUND_SECONDS_KEY = "round_seconds"


class TimingError(ValueError):
    """Input the clock cannot use (one-line message)."""


@dataclass(frozen=True)
class Segments:
    """Runs of requests: request index, first round, end round (exclusive), tokens kept."""

    request: IntArray
    start: IntArray
    end: IntArray
    kept: IntArray


def plan_segments(instance: Instance, start_round: Any) -> Segments:
    """One segment per request: ``[S_i, S_i + o_i)``, nothing kept."""
    start = np.asarray(start_round, dtype=np.int64)
    if start.shape != (instance.n,):
        raise TimingError(f"{start.size} start rounds for {instance.n} requests")
    idx = np.arange(instance.n, dtype=np.int64)
    return Segments(idx, start, start + instance.output_len, np.zeros(instance.n, dtype=np.int64))


def execution_segments(
    instance: Instance,
    segments: Mapping[str, Sequence[Sequence[int]]] | Sequence[Sequence[Sequence[int]]],
    eviction: str = "restart",
) -> Segments:
    """The segments of an online execution: ``{id: [[start, end], ...]}`` or one list per request.

    In ``restart`` mode every segment starts from token 1 (``kept = 0``); in ``resume`` mode a
    segment keeps the tokens of the earlier ones, which its first round prefills again.
    """
    if eviction not in ("restart", "resume"):
        raise TimingError(f"unknown eviction mode {eviction!r} (restart or resume)")
    if isinstance(segments, Mapping):
        missing = [rid for rid in instance.ids if rid not in segments]
        if missing:
            raise TimingError(f"request '{missing[0]}' has no segments")
        per_request = [segments[rid] for rid in instance.ids]
    else:
        per_request = list(segments)
        if len(per_request) != instance.n:
            raise TimingError(f"{len(per_request)} segment lists for {instance.n} requests")
    req, st, en, kp = [], [], [], []
    for i, segs in enumerate(per_request):
        if not segs:
            raise TimingError(f"request '{instance.ids[i]}' never ran")
        kept = 0
        for pair in segs:
            a, e = int(pair[0]), int(pair[1])
            if e <= a:
                raise TimingError(f"request '{instance.ids[i]}': empty segment [{a}, {e})")
            req.append(i)
            st.append(a)
            en.append(e)
            kp.append(kept)
            if eviction == "resume":
                kept += e - a
    as_int = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return Segments(as_int(req), as_int(st), as_int(en), as_int(kp))


def _busy_rounds(start: IntArray, end: IntArray) -> IntArray:
    """The rounds covered by at least one ``[start, end)``, ascending."""
    if start.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(start, kind="stable")
    lo, hi = start[order], end[order]
    reach = np.maximum.accumulate(hi)
    new = np.ones(lo.size, dtype=bool)
    new[1:] = lo[1:] > reach[:-1]
    first = lo[new]
    last = np.append(reach[np.flatnonzero(new)[1:] - 1], reach[-1])
    lengths = last - first
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(first - offsets, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


@dataclass(frozen=True)
class Timeline:
    """The busy rounds of a plan or execution and their loads, durations and begin times."""

    rounds: IntArray  # busy rounds, ascending
    prefill: IntArray  # P(t): prompt tokens prefilled in the round
    running: IntArray  # |R(t)|
    kv: IntArray  # K(t): KV tokens held (without block padding)
    duration: FloatArray  # seconds of each busy round
    begin: FloatArray  # when each busy round begins
    model: RoundTime

    @property
    def end(self) -> FloatArray:
        """When each busy round ends."""
        return np.asarray(self.begin + self.duration, dtype=np.float64)

    def end_of(self, t: IntArray) -> FloatArray:
        """End times of the (busy) rounds ``t``."""
        k = np.searchsorted(self.rounds, t)
        return np.asarray(self.begin[k] + self.duration[k], dtype=np.float64)

    def begin_of(self, t: IntArray) -> FloatArray:
        """Begin times of any rounds ``t``, busy or idle: an idle round begins ``c0`` after the one
        before it (the rounds run back to back from 0 s)."""
        t = np.asarray(t, dtype=np.int64)
        if self.rounds.size == 0:
            return np.asarray(self.model.c0 * t, dtype=np.float64)
        k = np.searchsorted(self.rounds, t)
        here = np.minimum(k, self.rounds.size - 1)
        busy = (k < self.rounds.size) & (self.rounds[here] == t)
        prev = np.maximum(k - 1, 0)
        idle = np.where(
            k > 0, self.end[prev] + self.model.c0 * (t - self.rounds[prev] - 1), self.model.c0 * t
        )
        return np.asarray(np.where(busy, self.begin[here], idle), dtype=np.float64)


def timeline(
    instance: Instance, segs: Segments, model: RoundTime, arrival_s: FloatArray
) -> Timeline:
    """Loads, durations and begin times of the busy rounds of ``segs`` (module docstring)."""
    rounds = _busy_rounds(segs.start, segs.end)
    k = rounds.size
    first = np.searchsorted(rounds, segs.start)
    stop = np.searchsorted(rounds, segs.end)
    s = instance.prompt_len[segs.request]

    def spread(weights: Any) -> Any:
        return np.cumsum(
            np.bincount(first, weights=weights, minlength=k + 1)
            - np.bincount(stop, weights=weights, minlength=k + 1)
        )[:k]

    count = np.rint(spread(np.ones(segs.start.size))).astype(np.int64)
    # a segment holds s + kept + (t - start + 1) tokens in round t: a constant plus t per round
    const = spread((s + segs.kept - segs.start + 1).astype(np.float64))
    kv = np.rint(const).astype(np.int64) + rounds * count
    prefill = np.bincount(first, weights=(s + segs.kept).astype(np.float64), minlength=k)[:k]
    prefill = np.rint(prefill).astype(np.int64)
    duration = np.asarray(model.duration(prefill, count, kv), dtype=np.float64)
    idle_before = (rounds - np.arange(k)).astype(np.float64)  # idle rounds before each busy one
    nominal = np.concatenate(([0.0], np.cumsum(duration)[:-1])) + model.c0 * idle_before
    release = np.full(k, -math.inf)
    np.maximum.at(release, first, arrival_s[segs.request])
    wait = np.maximum(0.0, np.maximum.accumulate(release - nominal))
    return Timeline(rounds, prefill, count, kv, duration, nominal + wait, model)


def arrival_seconds(
    instance: Instance, model: RoundTime = UNIT, round_seconds: float | None = None
) -> FloatArray:
    """Each request's arrival in seconds on the clock of ``model``.

    The unit model measures in rounds: arrivals are the arrival rounds. Otherwise the instance's
    ``arrival_s`` (a list aligned with the requests or ``{id: seconds}``) when it has one; else
    ``arrival round x round_seconds`` (the argument, or the instance's recorded ``round_seconds``);
    a backlog (every arrival 0) needs neither.
    """
    rounds = instance.arrival.astype(np.float64)
    if model.is_unit:
        return rounds
    recorded = instance.meta.get(ARRIVAL_KEY)
    if recorded is not None:
        return _recorded_arrivals(instance, recorded)
    if not instance.has_arrivals:
        return np.zeros(instance.n)
    delta = round_seconds if round_seconds is not None else recorded_round_seconds(instance)
    if delta is None:
        raise TimingError(
            f"{instance.source}: arrivals are in rounds; give the seconds per round "
            "(--round-seconds) or arrival_s to place them on the clock"
        )
    return rounds * float(delta)


def recorded_round_seconds(instance: Instance) -> float | None:
    """The round duration the instance's arrivals were mapped with (its ``round_seconds``), if recorded."""
    value = instance.meta.get(ROUND_SECONDS_KEY)
    if value is None:
        made = instance.meta.get("meta")
        params = made.get("params") if isinstance(made, Mapping) else None
        value = params.get("round_seconds") if isinstance(params, Mapping) else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _recorded_arrivals(instance: Instance, recorded: Any) -> FloatArray:
    src = instance.source
    if isinstance(recorded, Mapping):
        missing = [rid for rid in instance.ids if rid not in recorded]
        if missing:
            raise TimingError(f"{src}: {ARRIVAL_KEY} has no entry for request '{missing[0]}'")
        values = [recorded[rid] for rid in instance.ids]
    elif isinstance(recorded, list):
        if len(recorded) != instance.n:
            raise TimingError(
                f"{src}: {ARRIVAL_KEY} has {len(recorded)} entries for {instance.n} requests"
            )
        values = recorded
    else:
        raise TimingError(f"{src}: {ARRIVAL_KEY} must be a list or an object by request id")
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TimingError(f"{src}: {ARRIVAL_KEY} must hold numbers of seconds") from None
    if not np.isfinite(out).all() or (out < 0).any():
        raise TimingError(f"{src}: {ARRIVAL_KEY} must hold finite, non-negative seconds")
    return out


def checked_seconds(seconds: Sequence[float] | FloatArray, n: int) -> FloatArray:
    """``n`` arrival times as a float array; :class:`TimingError` unless finite and non-negative."""
    secs = np.asarray(seconds, dtype=np.float64)
    if secs.shape != (n,):
        raise TimingError(f"{secs.size} arrival times for {n} requests")
    if not np.isfinite(secs).all() or (secs < 0).any():
        raise TimingError("arrival times must be finite, non-negative seconds")
    return secs


def with_arrival_seconds(
    instance: Instance, seconds: Sequence[float] | FloatArray, round_seconds: float
) -> Instance:
    """The instance with arrivals in seconds: ``arrival_s`` by id, and arrival rounds ``floor(s / round_seconds)``.

    The rounds are what the offline methods see (docs/timing.md states the error this mapping
    makes); the seconds are what :func:`arrival_seconds` reads for a physical round-time model.
    """
    secs = checked_seconds(seconds, instance.n)
    if not round_seconds > 0:
        raise TimingError(f"round_seconds must be positive (got {round_seconds})")
    rounds = np.floor(secs / round_seconds + 1e-9).astype(np.int64)
    meta = dict(instance.meta)
    meta[ARRIVAL_KEY] = {rid: float(x) for rid, x in zip(instance.ids, secs, strict=True)}
    meta[ROUND_SECONDS_KEY] = float(round_seconds)
    return instance.replace(arrival=rounds, meta=meta)
