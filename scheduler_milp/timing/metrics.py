"""The latency metrics operators use, in seconds, for any plan or execution (docs/timing.md).

Per request: **end-to-end latency** (arrival to the end of its last round), **TTFT** (arrival to
the end of its first round, which produces its first token), **TPOT** (time per output token
after the first: ``(completion - first token) / (o_i - 1)``, undefined for one-token requests and
left out of the TPOT statistics and met by any TPOT target).  Summaries: mean, p50, p90, p99
(numpy's linear interpolation) and max; throughput in output tokens per second from the first
arrival to the last completion; SLO attainment, the share of requests meeting a TTFT and a TPOT
target at once.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model.instance import Instance
from .clock import (
    FloatArray,
    Segments,
    Timeline,
    arrival_seconds,
    execution_segments,
    plan_segments,
    timeline,
)
from .roundtime import UNIT, RoundTime

#: the percentiles every summary reports
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class RequestTimes:
    """Per-request times in seconds of one plan or execution under one round-time model."""

    instance: Instance
    model: RoundTime
    arrival: FloatArray
    start: FloatArray  # when its first round begins
    first_token: FloatArray  # when its first round ends
    completion: FloatArray  # when its last round ends
    timeline: Timeline | None = None

    @property
    def e2e(self) -> FloatArray:
        """End-to-end latency: completion - arrival."""
        return np.asarray(self.completion - self.arrival, dtype=np.float64)

    @property
    def ttft(self) -> FloatArray:
        """Time to first token: end of the first round - arrival."""
        return np.asarray(self.first_token - self.arrival, dtype=np.float64)

    @property
    def tpot(self) -> FloatArray:
        """Time per output token after the first; NaN for one-token requests."""
        o = self.instance.output_len.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (self.completion - self.first_token) / (o - 1.0)
        out[o <= 1] = np.nan
        return np.asarray(out, dtype=np.float64)

    @property
    def makespan(self) -> float:
        """From the first arrival to the last completion."""
        return float(self.completion.max() - self.arrival.min())

    def throughput(self) -> float:
        """Output tokens per second over :attr:`makespan`."""
        span = self.makespan
        return float(self.instance.output_len.sum()) / span if span > 0 else math.inf

    def slo_attainment(self, ttft: float | None = None, tpot: float | None = None) -> float:
        """Share of requests with TTFT <= ``ttft`` and TPOT <= ``tpot`` (a target not given always holds)."""
        ok = np.ones(self.instance.n, dtype=bool)
        if ttft is not None:
            ok &= self.ttft <= ttft + 1e-12
        if tpot is not None:
            tp = self.tpot
            ok &= np.isnan(tp) | (tp <= tpot + 1e-12)
        return float(ok.mean())

    def summary(
        self, ttft_target: float | None = None, tpot_target: float | None = None
    ) -> dict[str, Any]:
        """``{e2e, ttft, tpot: {mean, p50, p90, p99, max}, throughput, total_e2e, makespan[, slo]}``."""
        out: dict[str, Any] = {
            "round_time": self.model.to_dict(),
            "e2e": describe(self.e2e),
            "ttft": describe(self.ttft),
            "tpot": describe(self.tpot),
            "total_e2e": float(self.e2e.sum()),
            "throughput_tokens_per_s": self.throughput(),
            "makespan_s": self.makespan,
        }
        if ttft_target is not None or tpot_target is not None:
            out["slo"] = {
                "ttft_target": ttft_target,
                "tpot_target": tpot_target,
                "attainment": self.slo_attainment(ttft_target, tpot_target),
            }
        return out

    def summary_lines(
        self, ttft_target: float | None = None, tpot_target: float | None = None
    ) -> list[str]:
        """The summary as lines for a terminal."""
        s = self.summary(ttft_target, tpot_target)
        lines = [f"round time {self.model.describe()}"]
        for key, label in (("e2e", "latency"), ("ttft", "TTFT"), ("tpot", "TPOT")):
            d = s[key]
            if d["mean"] is None:
                lines.append(f"{label:<10} -  (no request with more than one token)")
                continue
            lines.append(
                f"{label:<10} mean {_fmt(d['mean'])}  p50 {_fmt(d['p50'])}  p90 {_fmt(d['p90'])}  "
                f"p99 {_fmt(d['p99'])}  max {_fmt(d['max'])}"
            )
        lines.append(f"throughput {s['throughput_tokens_per_s']:.4g} output tokens/s")
        if "slo" in s:
            lines.append(
                f"SLO        {100 * s['slo']['attainment']:.2f}% of requests meet "
                f"TTFT <= {s['slo']['ttft_target']} s and TPOT <= {s['slo']['tpot_target']} s"
            )
        return lines

    def rows(self) -> list[dict[str, Any]]:
        """One row per request: id, lengths, arrival, start, first token, completion, TTFT, TPOT, latency."""
        tpot = self.tpot
        return [
            {
                "id": rid,
                "prompt": int(self.instance.prompt_len[i]),
                "output": int(self.instance.output_len[i]),
                "arrival_s": float(self.arrival[i]),
                "start_s": float(self.start[i]),
                "first_token_s": float(self.first_token[i]),
                "completion_s": float(self.completion[i]),
                "ttft_s": float(self.ttft[i]),
                "tpot_s": None if np.isnan(tpot[i]) else float(tpot[i]),
                "e2e_s": float(self.e2e[i]),
            }
            for i, rid in enumerate(self.instance.ids)
        ]

    def write_csv(self, path: str | os.PathLike[str], extra: Mapping[str, Sequence[Any]] | None = None) -> None:  # fmt: skip
        """Write :meth:`rows` (plus ``extra`` columns, one value per request) atomically."""
        rows = self.rows()
        for key, values in (extra or {}).items():
            for row, value in zip(rows, values, strict=True):
                row[key] = value
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: "" if v is None else v for k, v in row.items()})
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}s"


def describe(values: FloatArray) -> dict[str, float | None]:
    """Mean, p50, p90, p99 and max of the values that are not NaN (``None`` when there are none)."""
    x = values[~np.isnan(values)]
    if x.size == 0:
        return {"mean": None, **{f"p{q}": None for q in PERCENTILES}, "max": None}
    out: dict[str, float | None] = {"mean": float(x.mean())}
    for q in PERCENTILES:
        out[f"p{q}"] = float(np.percentile(x, q))
    out["max"] = float(x.max())
    return out


def times_of_segments(
    instance: Instance, segs: Segments, model: RoundTime, arrival: FloatArray
) -> RequestTimes:
    """Per-request times of ``segs`` on the clock of :func:`~.clock.timeline`."""
    tl = timeline(instance, segs, model, arrival)
    n = instance.n
    k_first = np.searchsorted(tl.rounds, segs.start)
    k_last = np.searchsorted(tl.rounds, segs.end - 1)
    seg_begin = tl.begin[k_first]
    seg_first_end = seg_begin + tl.duration[k_first]
    seg_end = tl.begin[k_last] + tl.duration[k_last]
    start = np.full(n, math.inf)
    np.minimum.at(start, segs.request, seg_begin)
    first_token = np.full(n, math.inf)
    np.minimum.at(first_token, segs.request, seg_first_end)
    completion = np.full(n, -math.inf)
    np.maximum.at(completion, segs.request, seg_end)
    return RequestTimes(instance, model, arrival, start, first_token, completion, tl)


def plan_times(
    instance: Instance,
    start_round: Any,
    model: RoundTime = UNIT,
    round_seconds: float | None = None,
    arrival: FloatArray | None = None,
) -> RequestTimes:
    """Per-request times of a plan (start rounds indexed like the instance) under ``model``."""
    if arrival is None:
        arrival = arrival_seconds(instance, model, round_seconds)
    return times_of_segments(instance, plan_segments(instance, start_round), model, arrival)


def execution_times(
    instance: Instance,
    segments: Mapping[str, Sequence[Sequence[int]]] | Sequence[Sequence[Sequence[int]]],
    eviction: str = "restart",
    model: RoundTime = UNIT,
    round_seconds: float | None = None,
) -> RequestTimes:
    """Per-request times of an online execution given its segments ``{id: [[start, end], ...]}``.

    Each segment's first round prefills the prompt again (``restart``) or the prompt and the kept
    tokens (``resume``, vLLM's recompute); the first token is the end of the first round of the
    first segment (a token already streamed is not taken back), the completion the end of the
    last segment.
    """
    arrival = arrival_seconds(instance, model, round_seconds)
    segs = execution_segments(instance, segments, eviction)
    return times_of_segments(instance, segs, model, arrival)
