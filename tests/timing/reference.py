"""An obviously-correct recomputation of the clock: every round, one at a time, from the segments."""

from __future__ import annotations

import math

import numpy as np

from scheduler_milp.model.instance import Instance
from scheduler_milp.timing.roundtime import RoundTime


def slow_times(
    instance: Instance,
    segments: list[list[tuple[int, int]]],
    model: RoundTime,
    arrival: list[float],
    resume: bool = False,
) -> dict[str, list[float]]:
    """Per-request start, first-token and completion seconds, simulated round by round.

    Round ``t`` holds the segments with ``start <= t < end``; a segment of request ``i`` that kept
    ``k0`` tokens holds ``s_i + k0 + (t - start + 1)`` tokens and prefills ``s_i + k0`` in its
    first round.  Round ``t`` begins when round ``t - 1`` ended and every request starting a
    segment in ``t`` has arrived; a round with nothing running lasts ``c0``.
    """
    s = [int(x) for x in instance.prompt_len]
    horizon = max(e for segs in segments for _, e in segs)
    runs = []  # (request, start, end, kept)
    for i, segs in enumerate(segments):
        kept = 0
        for a, e in segs:
            runs.append((i, a, e, kept))
            if resume:
                kept += e - a
    clock = 0.0
    begin, end = [], []
    for t in range(horizon):
        p = r = k = 0
        release = -math.inf
        for i, a, e, kept in runs:
            if a <= t < e:
                r += 1
                k += s[i] + kept + (t - a + 1)
            if a == t:
                p += s[i] + kept
                release = max(release, arrival[i])
        d = model.c0 + model.c_prefill * p + model.c_decode * r + model.c_kv * k
        start = max(clock, release)
        begin.append(start)
        end.append(start + d)
        clock = start + d
    out: dict[str, list[float]] = {"start": [], "first_token": [], "completion": []}
    for segs in segments:
        out["start"].append(begin[segs[0][0]])
        out["first_token"].append(end[segs[0][0]])
        out["completion"].append(end[segs[-1][1] - 1])
    return out


def random_model(rng: np.random.Generator) -> RoundTime:
    """A round-time model with random non-negative coefficients (some of them zero)."""
    c = rng.uniform(0.0, 1.0, 4) * (rng.random(4) < 0.75)
    c[0] += 0.01
    return RoundTime(float(c[0]), float(c[1]), float(c[2]), float(c[3]), name="random")
