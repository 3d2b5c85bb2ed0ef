"""Real request traces (shipped in ``scheduler_milp/data/traces``) and instances sampled from them.

:func:`load_trace` reads one trace as a table with columns ``prompt``, ``output`` and, for the two
Azure traces, ``arrival_seconds`` (seconds since the trace's first request).
:func:`sample_backlog` draws an :class:`~scheduler_milp.model.instance.Instance` from a mix of traces,
optionally scaled down, with a memory budget given or derived from the largest request, and with
arrivals taken from the Azure timestamps.  :func:`convert_csv` turns any CSV whose columns name
prompt and output lengths (under whatever names) into an instance.

The origin, licence and citation of every trace are in ``data/traces/README.md`` and
:data:`TRACES`; sampled instances copy them into their ``meta``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .model.instance import Instance, InstanceError

log = logging.getLogger(__name__)

#: arXiv rows with more output tokens than this (and a shorter prompt than output) are treated as
#: preprocessing artefacts (see data/traces/README.md) and dropped unless asked otherwise.
ARXIV_ARTIFACT_OUTPUT = 3000
#: The mix of the benchmarks' 1,000-request backlogs (issue 6): 700 Azure conversations, 300 arXiv
#: summarizations.  One definition, so that every benchmark and the shipped samples agree.
BENCHMARK_MIX = "conv=0.7,arxiv=0.3"


@dataclass(frozen=True)
class TraceSpec:
    """Where a trace lives and how its columns map to the model (MODEL.md)."""

    name: str
    file: str
    prompt_column: str
    output_column: str
    timestamp_column: str | None
    description: str
    upstream: str  # "owner/repo@commit:path"
    licence: str
    citation: str


_AZURE_REPO = "Azure/AzurePublicDataset@b469a113cedca53ddc3bdea71a143dc4b7d8700c"
_AZURE_CITE = (
    "P. Patel, E. Choukse, C. Zhang, A. Shah, I. Goiri, S. Maleki, R. Bianchini, "
    '"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024'
)
_METRON_REPO = "project-metron/metron@a02c97ec5303f1814d2877166190e0a375b87d80"
_METRON_CITE = (
    'A. Agrawal et al., "Metron: Holistic Performance Evaluation Framework for LLM Inference '
    'Systems", arXiv:2407.07000'
)

TRACES: dict[str, TraceSpec] = {
    "conv": TraceSpec(
        "conv",
        "AzureLLMInferenceTrace_conv.csv",
        "ContextTokens",
        "GeneratedTokens",
        "TIMESTAMP",
        "Azure LLM inference trace 2023, conversation (one hour, with arrival timestamps)",
        f"{_AZURE_REPO}:data/AzureLLMInferenceTrace_conv.csv",
        "CC-BY-4.0",
        _AZURE_CITE,
    ),
    "code": TraceSpec(
        "code",
        "AzureLLMInferenceTrace_code.csv",
        "ContextTokens",
        "GeneratedTokens",
        "TIMESTAMP",
        "Azure LLM inference trace 2023, code completion (one hour, with arrival timestamps)",
        f"{_AZURE_REPO}:data/AzureLLMInferenceTrace_code.csv",
        "CC-BY-4.0",
        _AZURE_CITE,
    ),
    "arxiv": TraceSpec(
        "arxiv",
        "arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv",
        "num_prefill_tokens",
        "num_decode_tokens",
        None,
        "arXiv long-document summarization, Llama-2 tokenizer, total <= 4096 (no arrivals)",
        "microsoft/vidur@7d47513363ec447a741ac5e47241580b47724fbf:"
        "data/processed_traces/arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv",
        "MIT",
        'A. Agrawal et al., "Vidur: A Large-Scale Simulation Framework for LLM Inference", MLSys 2024',
    ),
    "sharegpt": TraceSpec(
        "sharegpt",
        "sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
        "num_prefill_tokens",
        "num_decode_tokens",
        None,
        "ShareGPT-8k multi-turn conversations, one row per turn, Llama-2 tokenizer (no arrivals)",
        f"{_METRON_REPO}:data/processed_traces/sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
        "Apache-2.0",
        _METRON_CITE,
    ),
    "bwb": TraceSpec(
        "bwb",
        "bwb_stats_llama2_tokenizer_filtered_v2.csv",
        "num_prefill_tokens",
        "num_decode_tokens",
        None,
        "BWB document-level translation, decode-heavy, Llama-2 tokenizer (no arrivals)",
        f"{_METRON_REPO}:data/processed_traces/bwb_stats_llama2_tokenizer_filtered_v2.csv",
        "Apache-2.0",
        _METRON_CITE,
    ),
}


def trace_dir() -> Path:
    """The folder holding the shipped trace CSVs (inside the installed package)."""
    return Path(str(resources.files("scheduler_milp") / "data" / "traces"))


def _spec(name: str) -> TraceSpec:
    try:
        return TRACES[name]
    except KeyError:
        raise ValueError(f"unknown trace {name!r}; known: {', '.join(TRACES)}") from None


@cache
def _read_trace(name: str) -> pd.DataFrame:
    spec = _spec(name)
    path = trace_dir() / spec.file
    raw = pd.read_csv(path)
    table = pd.DataFrame(
        {
            "prompt": raw[spec.prompt_column].astype(np.int64),
            "output": raw[spec.output_column].astype(np.int64),
        }
    )
    if spec.timestamp_column is not None:
        # the number of fractional digits varies between rows, hence format="mixed"
        stamps = pd.to_datetime(raw[spec.timestamp_column], format="mixed")
        table["arrival_seconds"] = (stamps - stamps.iloc[0]).dt.total_seconds()
    table.index.name = "row"
    return table


def load_trace(name: str, drop_artifacts: bool = True) -> pd.DataFrame:
    """One trace as a table: ``prompt``, ``output`` and (Azure only) ``arrival_seconds``.

    The index is the row number in the original file (0 = first data row), kept after filtering
    so that sampled requests can be traced back.  ``drop_artifacts`` (default True) removes the
    arXiv rows that look like preprocessing artefacts: output > ``ARXIV_ARTIFACT_OUTPUT`` tokens
    and a prompt shorter than the output (416 rows, 1.5%); it does nothing to other traces.
    """
    table = _read_trace(name).copy()
    if name == "arxiv" and drop_artifacts:
        artefact = (table["output"] > ARXIV_ARTIFACT_OUTPUT) & (table["prompt"] < table["output"])
        table = table[~artefact]
    return table


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``"conv=0.7,arxiv=0.3"`` (or a bare ``"conv"``) into a mix of trace weights."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, _, raw = part.partition("=")
        key = key.strip()
        try:
            weight = float(raw) if raw else 1.0
        except ValueError:
            raise ValueError(f"bad weight in mix entry {part!r} (expected NAME=WEIGHT)") from None
        mix[key] = mix.get(key, 0.0) + weight
    if not mix:
        raise ValueError("the mix is empty (expected e.g. conv=0.7,arxiv=0.3)")
    return mix


def split_counts(mix: Mapping[str, float], n: int) -> dict[str, int]:
    """Split ``n`` among the mix's traces in proportion to the weights (largest remainder).

    Deterministic: remainders are ties broken by the order of the mix.
    """
    names = list(mix)
    weights = np.array([float(mix[k]) for k in names])
    if (weights < 0).any() or not np.isfinite(weights).all() or weights.sum() <= 0:
        raise ValueError(f"mix weights must be non-negative and not all zero (got {dict(mix)})")
    share = weights / weights.sum() * n
    counts = np.floor(share).astype(int)
    order = sorted(range(len(names)), key=lambda j: (-(share[j] - counts[j]), j))
    for j in order[: n - int(counts.sum())]:
        counts[j] += 1
    return {k: int(c) for k, c in zip(names, counts, strict=True)}


def _densest_window(seconds: np.ndarray, n: int) -> int:
    """Start index of the ``n`` consecutive requests that arrived within the shortest time."""
    spans = seconds[n - 1 :] - seconds[: len(seconds) - n + 1]
    return int(np.argmin(spans))  # argmin keeps the earliest of equally dense windows


def sample_backlog(
    mix: Mapping[str, float] | str,
    n: int | None,
    seed: int,
    memory: int | None = None,
    memory_factor: float | None = None,
    scale: int = 1,
    arrivals: str | None = None,
    round_seconds: float = 0.05,
    peak_hour: bool = False,
    block_size: int = 1,
    max_batch: int | None = None,
    drop_artifacts: bool = True,
    name: str | None = None,
) -> Instance:
    """Sample an instance from real traces.

    - ``mix``: trace weights, e.g. ``{"conv": 0.7, "arxiv": 0.3}`` (or the string form of
      :func:`parse_mix`); ``n`` requests are split among the traces by :func:`split_counts` and
      drawn without replacement, then shuffled together (seeded).  ``n=None`` takes a whole single
      trace in file order.
    - ``scale``: every token count is divided by ``scale`` and rounded up (so nothing becomes 0).
    - ``memory``: the budget ``M`` in (scaled) tokens; or ``memory_factor``: ``M`` is that
      multiple of the largest request peak, rounded up.  With neither, ``memory_factor=4``.
    - ``arrivals=None``: a backlog (all arrive at round 0).  ``arrivals="trace"``: one Azure trace
      only; the ``n`` requests are a contiguous window of the trace (random start, or with
      ``peak_hour=True`` the densest window: the ``n`` consecutive requests that arrived in the
      shortest time) kept in arrival order, and a request arriving ``x`` seconds after the
      window's first is given arrival round ``floor(x / round_seconds)``.

    ``meta`` records the generator, every parameter, the seed and each trace's file, upstream
    origin, licence and citation.  Raises ``ValueError`` on bad parameters and
    :class:`~scheduler_milp.model.instance.InstanceError` when a request does not fit in ``memory``.
    """
    if isinstance(mix, str):
        mix = parse_mix(mix)
    mix = dict(mix)
    for key in mix:
        _spec(key)
    if scale < 1:
        raise ValueError(f"scale must be a positive integer (got {scale})")
    if memory is not None and memory_factor is not None:
        raise ValueError("give either memory or memory_factor, not both")
    if memory is not None and memory < 1:
        raise ValueError(f"memory must be a positive integer (got {memory})")
    if memory is None and memory_factor is None:
        memory_factor = 4.0
    if memory_factor is not None and memory_factor < 1:
        raise ValueError(f"memory_factor must be at least 1 (got {memory_factor})")
    if arrivals not in (None, "none", "trace"):
        raise ValueError(f"arrivals must be None/'none' or 'trace' (got {arrivals!r})")
    if arrivals == "none":
        arrivals = None
    if arrivals == "trace" and not round_seconds > 0:
        raise ValueError(f"round_seconds must be positive (got {round_seconds})")
    if peak_hour and arrivals != "trace":
        raise ValueError("peak_hour applies only with arrivals='trace'")
    if n is not None and n < 1:
        raise ValueError(f"n must be positive (got {n})")

    rng = np.random.default_rng(seed)
    prompt_parts: list[np.ndarray] = []
    output_parts: list[np.ndarray] = []
    id_parts: list[list[str]] = []
    arrival = None
    window: dict[str, Any] | None = None

    if arrivals == "trace" or n is None:
        positive = [k for k, w in mix.items() if w > 0]
        if len(positive) != 1:
            what = "arrivals='trace'" if arrivals == "trace" else "n=None (whole trace)"
            raise ValueError(f"{what} needs a mix of exactly one trace (got {', '.join(mix)})")
        trace = positive[0]
        table = load_trace(trace, drop_artifacts=drop_artifacts)
        rows = len(table)
        take = rows if n is None else n
        if take > rows:
            raise ValueError(f"trace {trace!r} has only {rows} requests (asked for {take})")
        if arrivals == "trace":
            if "arrival_seconds" not in table:
                traced = [k for k, s in TRACES.items() if s.timestamp_column]
                raise ValueError(f"trace {trace!r} has no timestamps; arrivals='trace' needs one of {', '.join(traced)}")
            seconds = table["arrival_seconds"].to_numpy()
            if peak_hour:
                first = _densest_window(seconds, take)
            else:
                first = int(rng.integers(0, rows - take + 1))
            part = table.iloc[first : first + take]
            rel = part["arrival_seconds"].to_numpy() - part["arrival_seconds"].iloc[0]
            # a small epsilon so that a float like 0.15/0.05 = 2.9999999 lands in round 3
            arrival = np.floor(rel / round_seconds + 1e-9).astype(np.int64)
            window = {
                "first_row": int(part.index[0]),
                "last_row": int(part.index[-1]),
                "seconds": float(rel[-1]),
                "start_seconds": float(part["arrival_seconds"].iloc[0]),
            }
        else:
            part = table
        prompt_parts.append(part["prompt"].to_numpy())
        output_parts.append(part["output"].to_numpy())
        id_parts.append([f"{trace}-{r}" for r in part.index])
        order = None
    else:
        counts = split_counts(mix, n)
        for trace, count in counts.items():
            if count == 0:
                continue
            table = load_trace(trace, drop_artifacts=drop_artifacts)
            if count > len(table):
                raise ValueError(f"trace {trace!r} has only {len(table)} requests (asked for {count})")
            picked = np.sort(rng.choice(len(table), size=count, replace=False))
            part = table.iloc[picked]
            prompt_parts.append(part["prompt"].to_numpy())
            output_parts.append(part["output"].to_numpy())
            # ids name the trace and the row of the original file: requests stay traceable
            id_parts.append([f"{trace}-{r}" for r in part.index])
        order = rng.permutation(sum(len(p) for p in prompt_parts))

    prompt_len = np.concatenate(prompt_parts).astype(np.int64)
    output_len = np.concatenate(output_parts).astype(np.int64)
    ids = [rid for part_ids in id_parts for rid in part_ids]
    if order is not None:
        prompt_len, output_len = prompt_len[order], output_len[order]
        ids = [ids[i] for i in order]
    if scale > 1:
        # rounding up keeps every length >= 1 and never shrinks a request below its scaled size
        prompt_len = -(-prompt_len // scale)
        output_len = -(-output_len // scale)

    if memory is None:
        assert memory_factor is not None
        x = prompt_len + output_len
        largest_peak = int((((x + block_size - 1) // block_size) * block_size).max())
        memory = math.ceil(memory_factor * largest_peak - 1e-9)

    used = {k: w for k, w in mix.items() if w > 0}
    params: dict[str, Any] = {
        "mix": used,
        "n": len(ids),
        "memory": memory,
        "memory_factor": memory_factor,
        "scale": scale,
        "arrivals": arrivals,
        "round_seconds": round_seconds if arrivals == "trace" else None,
        "peak_hour": peak_hour,
        "block_size": block_size,
        "max_batch": max_batch,
        "drop_artifacts": drop_artifacts,
    }
    meta: dict[str, Any] = {
        "generator": "scheduler_milp.traces.sample_backlog",
        "params": params,
        "seed": seed,
        "traces": {
            k: {
                "file": TRACES[k].file,
                "upstream": TRACES[k].upstream,
                "licence": TRACES[k].licence,
                "citation": TRACES[k].citation,
            }
            for k in used
        },
    }
    if window is not None:
        meta["window"] = window
    if name is None:
        name = "mix-" + "-".join(f"{k}{round(100 * w / sum(used.values()))}" for k, w in used.items()) if len(used) > 1 else next(iter(used))
        name += f"-n{len(ids)}"
    log.info("sampled %s: %d requests, memory %d", name, len(ids), memory)
    return Instance.create(
        memory,
        prompt_len,
        output_len,
        arrival,
        ids,
        name=name,
        block_size=block_size,
        max_batch=max_batch,
        meta={"meta": meta},
        source=f"<{name}>",
    )


def convert_csv(
    path: str | os.PathLike[str],
    memory: int,
    prompt_column: str | None = None,
    output_column: str | None = None,
    arrival_column: str | None = None,
    id_column: str | None = None,
    timestamp_column: str | None = None,
    round_seconds: float = 1.0,
    block_size: int = 1,
    max_batch: int | None = None,
    name: str | None = None,
) -> Instance:
    """Turn a trace CSV with any column names into an instance (raises :class:`InstanceError`).

    Columns are guessed when not given: prompt from ``prompt``, ``ContextTokens``,
    ``num_prefill_tokens``, ``input_length``...; output from ``output``, ``GeneratedTokens``,
    ``num_decode_tokens``...  Arrivals come from an integer round column (``arrival_column``) or
    from a timestamp column (``timestamp_column``, e.g. ``TIMESTAMP``; seconds since the first
    request, divided by ``round_seconds`` and floored); with neither, all arrive at 0.
    """
    src = str(path)
    p = Path(path)
    if not p.is_file():
        raise InstanceError(f"{src}: no such file")
    try:
        raw = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise InstanceError(f"{src}: cannot read CSV: {str(err).splitlines()[0] if str(err) else err}") from None
    columns = [str(c).strip() for c in raw.columns]
    raw.columns = pd.Index(columns)

    def pick(given: str | None, guesses: Sequence[str], what: str) -> str:
        if given is not None:
            if given not in columns:
                raise InstanceError(f"{src}: no column {given!r} for the {what} (columns: {', '.join(columns)})")
            return given
        lower = {c.lower(): c for c in columns}
        for g in guesses:
            if g.lower() in lower:
                return lower[g.lower()]
        raise InstanceError(
            f"{src}: cannot tell which column holds the {what} (columns: {', '.join(columns)}); name it explicitly"
        )

    prompt_col = pick(prompt_column, _PROMPT_GUESSES, "prompt length")
    output_col = pick(output_column, _OUTPUT_GUESSES, "output length")
    if raw.empty:
        raise InstanceError(f"{src}: the request list is empty")
    ids = (
        [str(x) for x in raw[pick(id_column, (), "id")]]
        if id_column is not None
        else [f"r{i}" for i in range(len(raw))]
    )

    def integers(col: str, low: int) -> np.ndarray:
        values = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values) | (values != np.floor(values)))
        if bad.size:
            i = int(bad[0])
            raise InstanceError(
                f"{src}: request '{ids[i]}' (line {i + 2}): '{col}' must be an integer (got {raw[col].iloc[i]!r})"
            )
        out = values.astype(np.int64)
        bad = np.flatnonzero(out < low)
        if bad.size:
            i = int(bad[0])
            kind = "positive" if low == 1 else "non-negative"
            raise InstanceError(f"{src}: request '{ids[i]}' (line {i + 2}): '{col}' must be a {kind} integer (got {out[i]})")
        return out

    prompt_len = integers(prompt_col, 1)
    output_len = integers(output_col, 1)
    arrival = None
    if arrival_column is not None and timestamp_column is not None:
        raise InstanceError(f"{src}: give an arrival column or a timestamp column, not both")
    if arrival_column is not None:
        arrival = integers(pick(arrival_column, (), "arrival round"), 0)
    elif timestamp_column is not None:
        col = pick(timestamp_column, (), "timestamp")
        try:
            stamps = pd.to_datetime(raw[col], format="mixed")
        except (ValueError, TypeError) as err:
            raise InstanceError(f"{src}: column {col!r} does not hold timestamps ({err})") from None
        seconds = (stamps - stamps.min()).dt.total_seconds().to_numpy()
        arrival = np.floor(seconds / round_seconds + 1e-9).astype(np.int64)
    meta = {
        "meta": {
            "generator": "scheduler_milp.traces.convert_csv",
            "params": {
                "file": p.name,
                "prompt_column": prompt_col,
                "output_column": output_col,
                "arrival_column": arrival_column,
                "timestamp_column": timestamp_column,
                "round_seconds": round_seconds if timestamp_column else None,
                "memory": memory,
                "block_size": block_size,
                "max_batch": max_batch,
            },
        }
    }
    return Instance.create(
        memory,
        prompt_len,
        output_len,
        arrival,
        ids,
        name=name or p.stem,
        block_size=block_size,
        max_batch=max_batch,
        meta=meta,
        source=src,
    )


_PROMPT_GUESSES = (
    "prompt",
    "ContextTokens",
    "num_prefill_tokens",
    "prompt_len",
    "prompt_length",
    "prompt_tokens",
    "input_length",
    "input_tokens",
    "input_len",
)
_OUTPUT_GUESSES = (
    "output",
    "GeneratedTokens",
    "num_decode_tokens",
    "output_len",
    "output_length",
    "output_tokens",
    "completion_tokens",
    "generated_tokens",
)
