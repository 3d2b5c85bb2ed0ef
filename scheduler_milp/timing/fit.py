"""How the shipped presets were fitted: public measurements composed into per-round times, then least squares.

Each source gives a *reference* time for a round with ``P`` prompt tokens prefilled (by requests
whose prompts are ``p_1, p_2, ...``), ``R`` running requests and ``K`` KV tokens:

- ``vidur-llama2-7b-a100``: vidur's profiling of Llama-2-7B on one A100 (microsoft/vidur, MIT;
  the tables in ``scheduler_milp/data/roundtime/``).  Per layer (32 layers): the non-attention
  operations of ``mlp.csv`` (layer norms, QKV and output projections, rotary embedding, MLP up,
  activation, down, residual add) at ``P + R_dec`` tokens, interpolated in the measured table;
  decode attention ``alpha + beta R_dec + gamma K_dec`` fitted on rows of ``attention.csv``;
  prefill attention ``c2 sum p_j^2`` fitted on its prefill rows.  Plus the per-iteration CPU
  overhead of ``cpu_overheads.csv`` (schedule, sampler, input preparation, output processing;
  measured with CodeLlama-34B, the only model of that table), ``e + f R``.  ``R_dec``/``K_dec``
  leave out the requests starting in the round (their first token comes from the prefill).
- ``distserve-opt-13b-a100``: the per-iteration latency model DistServe fitted to its profiling
  of OPT-13B on one A100-80GB (LLMServe/DistServe, Apache-2.0,
  ``simdistserve/estimators/profile_data/profiler-a100-80g.json``, tensor parallelism 1): a
  prefill iteration ``a + b sum p_j + c sum p_j^2`` and a decode iteration ``a + b K_dec + c R_dec``
  (two coefficient sets, below and from a batch of 95); a round that starts requests costs one of
  each (vLLM without chunked prefill runs them as separate iterations).

The rounds to fit on are those of a plan that fills the budget first come, first served
(:func:`fcfs_rounds`) on a workload at several budgets; the coefficients minimise the squared
error over all of them, each non-negative (the best of the fits on every subset of the four
terms).  ``python -m scheduler_milp.timing.fit INSTANCE.json [--write]`` prints the fit (R^2,
residuals) and with ``--write`` rewrites the preset files.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..model.instance import Instance, load_instance, write_json_atomic
from .clock import FloatArray, plan_segments, timeline
from .roundtime import COEFFICIENTS, UNIT

#: the budgets (tokens) whose first-come-first-served rounds form the fitting set
FIT_MEMORIES = (16_384, 65_536, 262_144)
LAYERS_LLAMA2_7B = 32


@dataclass(frozen=True)
class Rounds:
    """Loads of a set of rounds: ``P``, ``R``, ``K``, the sum of squared prompts, and the starting requests."""

    prefill: FloatArray
    running: FloatArray
    kv: FloatArray
    prefill_sq: FloatArray
    starting: FloatArray
    starting_kv: FloatArray  # KV tokens of the starting requests (s + 1 each)


def fcfs_rounds(instance: Instance, memory: int) -> Rounds:
    """The busy rounds of the plan that starts requests in file order as soon as their peaks fit in ``memory``."""
    s = instance.prompt_len
    o = instance.output_len
    peak = s + o
    start = np.zeros(instance.n, dtype=np.int64)
    running: list[tuple[int, int]] = []  # (end round, peak)
    used = 0
    t = 0
    for i in range(instance.n):
        if peak[i] > memory:
            raise ValueError(f"request {instance.ids[i]} does not fit in {memory}")
        while used + peak[i] > memory:
            running.sort()
            end, p = running.pop(0)
            used -= p
            t = max(t, end)
        start[i] = t
        running.append((t + int(o[i]), int(peak[i])))
        used += int(peak[i])
    tl = timeline(instance, plan_segments(instance, start), UNIT, np.zeros(instance.n))
    k = np.searchsorted(tl.rounds, start)
    size = tl.rounds.size
    sq = np.bincount(k, weights=(s.astype(np.float64) ** 2), minlength=size)
    cnt = np.bincount(k, minlength=size).astype(np.float64)
    skv = np.bincount(k, weights=(s + 1).astype(np.float64), minlength=size)
    as_f = lambda x: np.asarray(x, dtype=np.float64)  # noqa: E731
    return Rounds(as_f(tl.prefill), as_f(tl.running), as_f(tl.kv), as_f(sq), cnt, as_f(skv))


def _table(name: str) -> list[dict[str, str]]:
    text = (resources.files("scheduler_milp") / "data" / "roundtime" / name).read_text()
    return list(csv.DictReader(text.splitlines()))


def _lstsq(x: FloatArray, y: FloatArray) -> FloatArray:
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return np.asarray(coef, dtype=np.float64)


def nonnegative_lstsq(x: FloatArray, y: FloatArray) -> FloatArray:
    """Least squares with every coefficient ``>= 0``: the best unconstrained fit over subsets of columns."""
    best: tuple[float, FloatArray] | None = None
    cols = range(x.shape[1])
    for size in range(x.shape[1], 0, -1):
        for subset in itertools.combinations(cols, size):
            c = _lstsq(x[:, subset], y)
            if (c < 0).any():
                continue
            full = np.zeros(x.shape[1])
            full[list(subset)] = c
            err = float(((x @ full - y) ** 2).sum())
            if best is None or err < best[0]:
                best = (err, full)
    assert best is not None
    return best[1]


def r_squared(y: FloatArray, fitted: FloatArray) -> float:
    """``1 - SS_res / SS_tot``."""
    tot = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - fitted) ** 2).sum()) / tot if tot > 0 else 1.0


# ---------------------------------------------------------------------------- vidur
@dataclass(frozen=True)
class VidurParts:
    """The components fitted on vidur's tables (milliseconds, per layer except the CPU overhead)."""

    tokens: FloatArray
    linear_ms: FloatArray
    decode: FloatArray  # alpha, beta, gamma
    decode_r2: float
    prefill_c2: float
    prefill_r2: float
    cpu: FloatArray  # e, f
    cpu_r2: float

    def linear(self, tokens: FloatArray) -> FloatArray:
        """Non-attention time per layer at ``tokens`` tokens: interpolated; beyond the table, its last slope."""
        t, y = self.tokens, self.linear_ms
        tail = t >= t.max() / 2
        slope = _lstsq(np.column_stack([np.ones(tail.sum()), t[tail]]), y[tail])
        inside = np.interp(tokens, t, y)
        beyond = slope[0] + slope[1] * tokens
        return np.asarray(np.where(tokens > t.max(), beyond, inside), dtype=np.float64)


def vidur_parts() -> VidurParts:
    """Fit the components of the vidur reference on the shipped tables."""
    lin = _table("vidur-llama2-7b-a100-linear.csv")
    by_tokens: dict[float, list[float]] = {}
    for row in lin:
        by_tokens.setdefault(float(row["num_tokens"]), []).append(float(row["linear_ms"]))
    tokens = np.array(sorted(by_tokens))
    linear = np.array([np.mean(by_tokens[t]) for t in tokens])
    att = _table("vidur-llama2-7b-a100-attention.csv")
    dec = [r for r in att if r["phase"] == "decode"]
    b = np.array([float(r["batch_size"]) for r in dec])
    kv = np.array([float(r["kv_cache_size"]) for r in dec])
    y = np.array([float(r["median_ms"]) for r in dec])
    x = np.column_stack([np.ones_like(b), b, b * kv])
    dcoef = nonnegative_lstsq(x, y)
    pre = [r for r in att if r["phase"] == "prefill"]
    p = np.array([float(r["prefill_chunk_size"]) for r in pre])
    yp = np.array([float(r["median_ms"]) for r in pre])
    c2 = float((p**2 @ yp) / (p**2 @ p**2))
    cpu = _table("vidur-a100-cpu-overhead.csv")
    cb = np.array([float(r["batch_size"]) for r in cpu])
    cy = np.array(
        [
            sum(
                float(r[k])
                for k in ("schedule_ms", "sampler_ms", "prepare_inputs_ms", "process_outputs_ms")
            )  # fmt: skip
            for r in cpu
        ]
    )
    ccoef = nonnegative_lstsq(np.column_stack([np.ones_like(cb), cb]), cy)
    return VidurParts(
        tokens,
        linear,
        dcoef,
        r_squared(y, x @ dcoef),
        c2,
        r_squared(yp, c2 * p**2),
        ccoef,
        r_squared(cy, ccoef[0] + ccoef[1] * cb),
    )


def vidur_reference(parts: VidurParts, r: Rounds) -> FloatArray:
    """Seconds of each round under the vidur composition (module docstring)."""
    dec_r = r.running - r.starting
    dec_k = r.kv - r.starting_kv
    alpha, beta, gamma = parts.decode
    attn_dec = np.where(dec_r > 0, alpha + beta * dec_r + gamma * dec_k, 0.0)
    per_layer = parts.linear(r.prefill + dec_r) + attn_dec + parts.prefill_c2 * r.prefill_sq
    cpu = parts.cpu[0] + parts.cpu[1] * r.running
    return np.asarray((LAYERS_LLAMA2_7B * per_layer + cpu) / 1000.0, dtype=np.float64)


# ---------------------------------------------------------------------------- DistServe
def distserve_reference(r: Rounds) -> FloatArray:
    """Seconds of each round under DistServe's OPT-13B latency model (a prefill and a decode iteration)."""
    rows = {row["term"]: row for row in _table("distserve-opt-13b-a100-tp1.csv")}

    def coef(term: str) -> tuple[float, float, float]:
        row = rows[term]
        return float(row["a_ms"]), float(row["b_ms"]), float(row["c_ms"])

    pa, pb, pc = coef("prefill")
    small, large = coef("decoding_smallbs"), coef("decoding_largebs")
    dec_r = r.running - r.starting
    dec_k = r.kv - r.starting_kv
    use_large = dec_r >= 95
    da = np.where(use_large, large[0], small[0])
    db = np.where(use_large, large[1], small[1])
    dc = np.where(use_large, large[2], small[2])
    decode = np.where(dec_r > 0, da + db * dec_k + dc * dec_r, 0.0)
    prefill = np.where(r.starting > 0, pa + pb * r.prefill + pc * r.prefill_sq, 0.0)
    return np.asarray((decode + prefill) / 1000.0, dtype=np.float64)


# ---------------------------------------------------------------------------- the fit
@dataclass(frozen=True)
class Fit:
    """Coefficients (seconds) of one preset and how well they reproduce the reference rounds."""

    name: str
    coefficients: dict[str, float]
    r2: float
    rounds: int
    residuals: dict[str, float]  # relative error percentiles of the per-round time
    total_error: float  # relative error of the summed time of all rounds

    def as_json(self, source: dict[str, Any]) -> dict[str, Any]:
        """The preset file."""
        return {
            "name": self.name,
            **source,
            **{k: round(v, 12) for k, v in self.coefficients.items()},
            "unit": "seconds",
            "fit": {
                "r2": round(self.r2, 4),
                "rounds": self.rounds,
                "relative_error_percentiles": {k: round(v, 4) for k, v in self.residuals.items()},
                "relative_error_of_total": round(self.total_error, 4),
            },
        }


def fit_rounds(name: str, rounds: Rounds, reference: FloatArray) -> Fit:
    """Non-negative least squares of ``reference`` on ``[1, P, R, K]``."""
    x = np.column_stack([np.ones_like(rounds.kv), rounds.prefill, rounds.running, rounds.kv])
    coef = nonnegative_lstsq(x, reference)
    fitted = x @ coef
    rel = (fitted - reference) / reference
    residuals = {f"p{q}": float(np.percentile(rel, q)) for q in (1, 10, 50, 90, 99)}
    total = float(fitted.sum() / reference.sum() - 1.0)
    return Fit(
        name,
        dict(zip(COEFFICIENTS, (float(c) for c in coef), strict=True)),
        r_squared(reference, fitted),
        int(reference.size),
        residuals,
        total,
    )


def stack(parts: Sequence[Rounds]) -> Rounds:
    """One set of rounds from several."""
    cat = lambda f: np.concatenate([getattr(p, f) for p in parts])  # noqa: E731
    return Rounds(*(cat(f) for f in Rounds.__dataclass_fields__))


SOURCES: dict[str, dict[str, Any]] = {
    "vidur-llama2-7b-a100": {
        "description": "Llama-2-7B on one NVIDIA A100 (vLLM-style engine), from vidur's profiling",
        "model": "meta-llama/Llama-2-7b-hf",
        "gpu": "A100 80GB",
        "tensor_parallel": 1,
        "sources": [
            "microsoft/vidur@7d47513 data/profiling/compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv (MIT)",
            "data/profiling/compute/a100/meta-llama/Llama-2-7b-hf/attention.csv of vidur (MIT; rows read from the copy in sw5sh/cs378-assignment3@7ac2fe9)",
            "microsoft/vidur@acb95f6 data/profiling/a100/cpu_overheads.csv (MIT; CodeLlama-34B)",
        ],
        "licence": "MIT (vidur); see LICENSE-vidur",
    },
    "distserve-opt-13b-a100": {
        "description": "OPT-13B on one NVIDIA A100-80GB, from DistServe's fitted per-iteration latency model",
        "model": "facebook/opt-13b",
        "gpu": "A100 80GB",
        "tensor_parallel": 1,
        "sources": [
            "LLMServe/DistServe@c10fafe simdistserve/estimators/profile_data/profiler-a100-80g.json (Apache-2.0)"
        ],
        "licence": "Apache-2.0 (DistServe); coefficients quoted",
    },
}


def fit_presets(instance: Instance) -> dict[str, Fit]:
    """Both presets fitted on the first-come-first-served rounds of ``instance`` at :data:`FIT_MEMORIES`."""
    rounds = stack([fcfs_rounds(instance, m) for m in FIT_MEMORIES])
    references: dict[str, Callable[[Rounds], FloatArray]] = {
        "vidur-llama2-7b-a100": lambda r: vidur_reference(vidur_parts(), r),
        "distserve-opt-13b-a100": distserve_reference,
    }
    return {name: fit_rounds(name, rounds, ref(rounds)) for name, ref in references.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Print the fits (and the vidur components); ``--write`` rewrites the preset files."""
    p = argparse.ArgumentParser(description="Fit the round-time presets (docs/timing.md).")
    p.add_argument("instance", help="workload whose rounds the presets are fitted on")
    p.add_argument(
        "--write", action="store_true", help="rewrite scheduler_milp/data/roundtime/*.json"
    )
    args = p.parse_args(argv)
    inst = load_instance(args.instance)
    parts = vidur_parts()
    print(
        f"vidur decode attention per layer: {parts.decode[0]:.4g} + {parts.decode[1]:.4g} R "
        f"+ {parts.decode[2]:.4g} K ms (R^2 {parts.decode_r2:.4f}); prefill attention "
        f"{parts.prefill_c2:.4g} sum p^2 ms (R^2 {parts.prefill_r2:.4f}); CPU "
        f"{parts.cpu[0]:.4g} + {parts.cpu[1]:.4g} R ms (R^2 {parts.cpu_r2:.4f})"
    )
    folder = Path(str(resources.files("scheduler_milp") / "data" / "roundtime"))
    for name, fit in fit_presets(inst).items():
        c = fit.coefficients
        print(
            f"{name}: c0 {c['c0']:.6g} c_prefill {c['c_prefill']:.6g} c_decode {c['c_decode']:.6g} "
            f"c_kv {c['c_kv']:.6g}  R^2 {fit.r2:.4f} over {fit.rounds} rounds, relative error "
            + ", ".join(f"{k} {100 * v:+.1f}%" for k, v in fit.residuals.items())
            + f", of the total {100 * fit.total_error:+.2f}%"
        )
        if args.write:
            data = fit.as_json(SOURCES[name])
            data["fitted_on"] = (
                f"{inst.name}: first-come-first-served rounds at M = {', '.join(map(str, FIT_MEMORIES))}"
            )
            write_json_atomic(folder / f"{name}.json", data)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
