"""Real request traces (shipped in ``scheduler_milp/data/traces``) and instances sampled from them.

:func:`load_trace` reads one trace as a table with columns ``prompt``, ``output`` and, for the two
Azure traces, ``arrival_seconds`` (seconds since the trace's first request).
:func:`sample_backlog` draws an :class:`~scheduler_milp.model.instance.Instance` from a mix of traces,
optionally scaled down, with a memory budget given or derived from the largest request, and with
arrivals taken from the Azure timestamps.  :func:`convert_csv` turns any trace file, CSV or JSONL
(one JSON object per line, as the Mooncake and Qwen-Bailian traces ship), whose columns name prompt
and output lengths (under whatever names: :func:`recognise_columns`) into an instance.

Timestamps are date-time text or numbers; numbers need their unit (``timestamp_unit``: ``s``,
``ms``, ``us`` or ``ns``), which is never guessed: read in the wrong unit, a trace's arrivals would
all collapse to round 0 or spread over years.

The origin, licence and citation of every trace are in ``data/traces/README.md`` and
:data:`TRACES`; sampled instances copy them into their ``meta``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .model.columns import find_column, recognise_columns
from .model.instance import Instance, InstanceError, read_jsonl
from .timing.clock import with_arrival_seconds

log = logging.getLogger(__name__)

#: arXiv rows with more output tokens than this (and a shorter prompt than output) are treated as
#: preprocessing artefacts (see data/traces/README.md) and dropped unless asked otherwise.
ARXIV_ARTIFACT_OUTPUT = 3000
#: The mix of the benchmarks' 1,000-request backlogs: 70% Azure conversations, 30% arXiv
#: summarizations.  One definition, so that every benchmark and the shipped samples agree.
BENCHMARK_MIX = "conv=0.7,arxiv=0.3"


@dataclass(frozen=True)
class TraceSpec:
    """Where a trace lives and how its columns map to the model (docs/model.md)."""

    name: str
    file: str
    prompt_column: str
    output_column: str
    timestamp_column: str | None
    description: str
    upstream: str  # "owner/repo@commit:path"
    licence: str
    citation: str
    timestamp_unit: str | None = None  # of numeric timestamps (see :func:`timestamp_seconds`)


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


#: the numeric timestamp units and how many of each make a second
TIMESTAMP_UNITS: dict[str, int] = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def timestamp_seconds(
    values: pd.Series, unit: str | None = None, what: str = "the timestamps"
) -> np.ndarray:
    """Seconds since the earliest of ``values``: date-time text, or numbers in ``unit``.

    Raises :class:`InstanceError` (its message starts with ``what``, e.g. "the timestamps of column
    'x'") for numbers without a unit, a unit given for text, an unknown unit, unreadable text and
    missing values.
    """
    if unit is not None and unit not in TIMESTAMP_UNITS:
        raise InstanceError(
            f"{what}: timestamp_unit must be one of {', '.join(TIMESTAMP_UNITS)} (got {unit!r})"
        )
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        if unit is None:
            raise InstanceError(
                f"{what} are numbers: give their unit (--timestamp-unit, timestamp_unit in Python: "
                f"{', '.join(TIMESTAMP_UNITS)}); it is not guessed"
            )
        numbers = values.to_numpy()
        _no_missing(pd.isna(values).to_numpy(), what)
        return np.asarray(numbers - numbers.min(), dtype=float) / TIMESTAMP_UNITS[unit]
    if unit is not None:
        raise InstanceError(
            f"{what} are not numbers: timestamp_unit applies to numeric timestamps only"
        )
    try:
        # the number of fractional digits may vary between rows, hence format="mixed"
        stamps = pd.to_datetime(values, format="mixed")
    except (ValueError, TypeError, OverflowError) as err:
        raise InstanceError(f"{what} cannot be read as dates and times ({err})") from None
    _no_missing(stamps.isna().to_numpy(), what)
    return (stamps - stamps.min()).dt.total_seconds().to_numpy()


def _no_missing(missing: np.ndarray, what: str) -> None:
    if missing.any():
        raise InstanceError(f"{what}: row {int(np.flatnonzero(missing)[0])} has no timestamp")


def arrival_rounds(
    seconds: np.ndarray, round_seconds: float, what: str = "the timestamps"
) -> np.ndarray:
    """Arrival rounds ``floor(seconds / round_seconds)`` (seconds since the first request).

    Raises :class:`InstanceError` when every arrival is round 0 although the timestamps span more
    than one round: the sign of timestamps read in the wrong unit, never a plan worth solving.
    """
    # a small epsilon so that a float like 0.15/0.05 = 2.9999999 lands in round 3
    arrival = np.floor(seconds / round_seconds + 1e-9).astype(np.int64)
    span = float(seconds.max() - seconds.min()) if seconds.size else 0.0
    if seconds.size > 1 and not arrival.any() and span > round_seconds:
        raise InstanceError(
            f"{what} span {span:g} s, more than one round of {round_seconds:g} s, "
            "yet every arrival is round 0 (check the timestamp unit)"
        )
    return arrival


def read_trace_file(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """A trace file as a table, CSV or JSONL (``.jsonl``/``.ndjson``: one JSON object per line),
    with the file line of every row (for error messages).  Raises :class:`InstanceError`."""
    src = str(path)
    p = Path(path)
    if not p.is_file():
        raise InstanceError(f"{src}: no such file")
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        return _read_jsonl(p, src)
    try:
        raw = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise InstanceError(
            f"{src}: cannot read CSV: {str(err).splitlines()[0] if str(err) else err}"
        ) from None
    raw.columns = pd.Index([str(c).strip() for c in raw.columns])
    return raw, np.arange(len(raw)) + 2  # line 1 is the header


def _read_jsonl(p: Path, src: str) -> tuple[pd.DataFrame, np.ndarray]:
    rows = read_jsonl(p)
    raw = pd.DataFrame.from_records([obj for _, obj in rows])
    raw.columns = pd.Index([str(c).strip() for c in raw.columns])
    return raw, np.asarray([line for line, _ in rows], dtype=np.int64)


@cache
def _read_trace(name: str) -> pd.DataFrame:
    spec = _spec(name)
    raw, _ = read_trace_file(trace_dir() / spec.file)
    table = pd.DataFrame(
        {
            "prompt": raw[spec.prompt_column].astype(np.int64),
            "output": raw[spec.output_column].astype(np.int64),
        }
    )
    if spec.timestamp_column is not None:
        table["arrival_seconds"] = timestamp_seconds(
            raw[spec.timestamp_column], spec.timestamp_unit, f"the timestamps of trace {name!r}"
        )
    table.index.name = "row"
    return table


def load_trace(name: str, drop_artifacts: bool = True) -> pd.DataFrame:
    """One trace as a table: ``prompt``, ``output`` and (Azure only) ``arrival_seconds``.

    The index is the row number in the original file (0 = first data row), kept after filtering
    so that sampled requests can be traced back.  ``drop_artifacts`` (default True) removes the
    arXiv rows that look like preprocessing artefacts: output > ``ARXIV_ARTIFACT_OUTPUT`` tokens
    and a prompt shorter than the output (416 rows); it does nothing to other traces.
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


def _check_sample_args(
    mix: Mapping[str, float] | str,
    n: int | None,
    memory: int | None,
    memory_factor: float | None,
    scale: int,
    arrivals: str | None,
    round_seconds: float,
    peak_hour: bool,
) -> tuple[dict[str, float], float | None, str | None]:
    """The parsed mix, the memory factor (4 when neither it nor ``memory`` is given) and the
    arrivals mode (``None`` or ``"trace"``); ``ValueError`` on bad parameters."""
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
    return mix, memory_factor, arrivals


@dataclass
class _Sample:
    """Requests drawn from the traces, before scaling: lengths, ids, arrivals and the time window."""

    prompt_len: np.ndarray
    output_len: np.ndarray
    ids: list[str]
    arrival: np.ndarray | None = None
    window: dict[str, Any] | None = None
    seconds: np.ndarray | None = None  # arrivals in seconds since the window's first request


def _one_trace(
    mix: dict[str, float],
    n: int | None,
    rng: np.random.Generator,
    arrivals: str | None,
    round_seconds: float,
    peak_hour: bool,
    drop_artifacts: bool,
) -> _Sample:
    """A whole trace in file order (``n=None``) or, with trace arrivals, a contiguous window of it."""
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
    arrival = window = None
    part = table
    if arrivals == "trace":
        if "arrival_seconds" not in table:
            traced = [k for k, s in TRACES.items() if s.timestamp_column]
            raise ValueError(
                f"trace {trace!r} has no timestamps; arrivals='trace' needs one of {', '.join(traced)}"
            )
        seconds = table["arrival_seconds"].to_numpy()
        first = (
            _densest_window(seconds, take) if peak_hour else int(rng.integers(0, rows - take + 1))
        )
        part = table.iloc[first : first + take]
        rel = part["arrival_seconds"].to_numpy() - part["arrival_seconds"].iloc[0]
        arrival = arrival_rounds(rel, round_seconds, f"the timestamps of trace {trace!r}")
        window = {
            "first_row": int(part.index[0]),
            "last_row": int(part.index[-1]),
            "seconds": float(rel[-1]),
            "start_seconds": float(part["arrival_seconds"].iloc[0]),
        }
    ids = [f"{trace}-{r}" for r in part.index]
    seconds = None if window is None else rel.astype(np.float64)
    return _Sample(
        part["prompt"].to_numpy(), part["output"].to_numpy(), ids, arrival, window, seconds
    )


def _mixed(
    mix: dict[str, float], n: int, rng: np.random.Generator, drop_artifacts: bool
) -> _Sample:
    """``n`` requests split among the traces, drawn without replacement and shuffled together."""
    prompt_parts: list[np.ndarray] = []
    output_parts: list[np.ndarray] = []
    ids: list[str] = []
    for trace, count in split_counts(mix, n).items():
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
        ids.extend(f"{trace}-{r}" for r in part.index)
    order = rng.permutation(len(ids))
    prompt_len = np.concatenate(prompt_parts).astype(np.int64)[order]
    output_len = np.concatenate(output_parts).astype(np.int64)[order]
    return _Sample(prompt_len, output_len, [ids[i] for i in order])


def _sample_meta(
    used: dict[str, float], seed: int, params: dict[str, Any], window: dict[str, Any] | None
) -> dict[str, Any]:
    """The ``meta`` of a sampled instance: generator, parameters, seed and each trace's origin."""
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
    return meta


def _sample_name(used: dict[str, float], n: int) -> str:
    """``conv-n100``, or ``mix-conv70-arxiv30-n1000`` for a mix (percentages of the weights)."""
    if len(used) > 1:
        total = sum(used.values())
        name = "mix-" + "-".join(f"{k}{round(100 * w / total)}" for k, w in used.items())
    else:
        name = next(iter(used))
    return f"{name}-n{n}"


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
    keep_seconds: bool = False,
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
      window's first is given arrival round ``floor(x / round_seconds)``; with ``keep_seconds``
      the instance also keeps ``x`` as its ``arrival_s`` (and ``round_seconds``), which the
      seconds clock reads (docs/timing.md).

    ``meta`` records the generator, every parameter, the seed and each trace's file, upstream
    origin, licence and citation.  Raises ``ValueError`` on bad parameters and
    :class:`~scheduler_milp.model.instance.InstanceError` when a request does not fit in ``memory``.
    """
    mix, memory_factor, arrivals = _check_sample_args(
        mix, n, memory, memory_factor, scale, arrivals, round_seconds, peak_hour
    )
    rng = np.random.default_rng(seed)
    if arrivals == "trace" or n is None:
        sample = _one_trace(mix, n, rng, arrivals, round_seconds, peak_hour, drop_artifacts)
    else:
        sample = _mixed(mix, n, rng, drop_artifacts)
    prompt_len = sample.prompt_len.astype(np.int64)
    output_len = sample.output_len.astype(np.int64)
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
        "n": len(sample.ids),
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
    meta = _sample_meta(used, seed, params, sample.window)
    if name is None:
        name = _sample_name(used, len(sample.ids))
    log.info("sampled %s: %d requests, memory %d", name, len(sample.ids), memory)
    inst = Instance.create(
        memory,
        prompt_len,
        output_len,
        sample.arrival,
        sample.ids,
        name=name,
        block_size=block_size,
        max_batch=max_batch,
        meta={"meta": meta},
        source=f"<{name}>",
    )
    if keep_seconds and sample.seconds is not None:
        inst = with_arrival_seconds(inst, sample.seconds, round_seconds)
    return inst


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
    timestamp_unit: str | None = None,
    keep_seconds: bool = False,
) -> Instance:
    """Turn a trace file, CSV or JSONL, with any column names into an instance (raises :class:`InstanceError`).

    Prompt and output columns are recognised by :func:`recognise_columns` when not given.
    Arrivals come from an integer round column (``arrival_column``) or from a timestamp column
    (``timestamp_column``, e.g. ``TIMESTAMP`` or ``timestamp``: seconds since the first request,
    divided by ``round_seconds`` and floored; numeric timestamps need ``timestamp_unit``, one of
    ``s``, ``ms``, ``us``, ``ns``); with neither, all arrive at 0.  With ``keep_seconds`` and a
    timestamp column the instance also keeps the seconds as its ``arrival_s`` (docs/timing.md).
    """
    src = str(path)
    p = Path(path)
    raw, lines = read_trace_file(path)
    columns = list(raw.columns)
    found = recognise_columns(columns, prompt_column, output_column, source=src)
    if raw.empty:
        raise InstanceError(f"{src}: the request list is empty")
    ids = (
        [str(x) for x in raw[find_column(columns, id_column, (), "id", src)]]
        if id_column is not None
        else [f"r{i}" for i in range(len(raw))]
    )

    def integers(col: str, low: int) -> np.ndarray:
        values = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values) | (values != np.floor(values)))
        if bad.size:
            i = int(bad[0])
            raise InstanceError(
                f"{src}: request '{ids[i]}' (line {lines[i]}): '{col}' must be an integer (got {raw[col].iloc[i]!r})"
            )
        out = values.astype(np.int64)
        bad = np.flatnonzero(out < low)
        if bad.size:
            i = int(bad[0])
            kind = "positive" if low == 1 else "non-negative"
            raise InstanceError(
                f"{src}: request '{ids[i]}' (line {lines[i]}): '{col}' must be a {kind} integer (got {out[i]})"
            )
        return out

    prompt_len = integers(found["prompt"], 1)
    output_len = integers(found["output"], 1)
    arrival = seconds = None
    if arrival_column is not None and timestamp_column is not None:
        raise InstanceError(f"{src}: give an arrival column or a timestamp column, not both")
    if arrival_column is not None:
        arrival = integers(find_column(columns, arrival_column, (), "arrival round", src), 0)
    elif timestamp_column is not None:
        col = find_column(columns, timestamp_column, (), "timestamp", src)
        what = f"{src}: the timestamps of column {col!r}"
        seconds = timestamp_seconds(raw[col], timestamp_unit, what)
        arrival = arrival_rounds(seconds, round_seconds, what)
    meta = {
        "meta": {
            "generator": "scheduler_milp.traces.convert_csv",
            "params": {
                "file": p.name,
                "prompt_column": found["prompt"],
                "output_column": found["output"],
                "arrival_column": arrival_column,
                "timestamp_column": timestamp_column,
                "timestamp_unit": timestamp_unit,
                "round_seconds": round_seconds if timestamp_column else None,
                "memory": memory,
                "block_size": block_size,
                "max_batch": max_batch,
            },
        },
    }
    inst = Instance.create(
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
    if keep_seconds and seconds is not None:
        inst = with_arrival_seconds(inst, seconds, round_seconds)
    return inst
