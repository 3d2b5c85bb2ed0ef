"""The problem data: one immutable :class:`Instance` (docs/model.md), its JSON and CSV forms (docs/formats.md).

Every malformed input raises :class:`InstanceError`, whose message is one line naming the file, the
request and what is wrong; the command-line layer prints it and exits non-zero.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]


class InstanceError(ValueError):
    """Bad instance input; ``str(err)`` is a single human-readable line."""


#: Largest accepted length, arrival or budget: far above any real trace, and small enough that
#: sums and products of a few such values (volumes, horizons) cannot overflow int64.
MAX_VALUE = 2**40


def _frozen(values: Iterable[int]) -> IntArray:
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.int64)
    arr = arr.copy()
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Instance:
    """A backlog of requests under a KV-cache budget (docs/model.md).

    Arrays are read-only ``int64`` numpy arrays indexed by request position ``0..n-1``;
    ``ids[i]`` is the external id of request ``i``.
    """

    memory_budget: int
    prompt_len: IntArray
    output_len: IntArray
    arrival: IntArray
    ids: tuple[str, ...]
    name: str = "instance"
    block_size: int = 1
    max_batch: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<memory>"

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        memory_budget: int,
        prompt_len: Sequence[int] | IntArray,
        output_len: Sequence[int] | IntArray,
        arrival: Sequence[int] | IntArray | None = None,
        ids: Sequence[str] | None = None,
        name: str = "instance",
        block_size: int = 1,
        max_batch: int | None = None,
        meta: Mapping[str, Any] | None = None,
        source: str = "<memory>",
    ) -> Instance:
        """Build and validate an instance from plain sequences (raises :class:`InstanceError`)."""
        n = len(prompt_len)
        if arrival is None:
            arrival = np.zeros(n, dtype=np.int64)
        if ids is None:
            ids = [f"r{i}" for i in range(n)]
        try:
            arrays = [_frozen(prompt_len), _frozen(output_len), _frozen(arrival)]
        except (OverflowError, ValueError, TypeError) as err:
            raise InstanceError(
                f"{source}: request lengths and arrivals must be integers up to {MAX_VALUE} ({err})"
            ) from None
        inst = cls(
            memory_budget=int(memory_budget),
            prompt_len=arrays[0],
            output_len=arrays[1],
            arrival=arrays[2],
            ids=tuple(str(x) for x in ids),
            name=str(name),
            block_size=int(block_size),
            max_batch=None if max_batch is None else int(max_batch),
            meta=dict(meta or {}),
            source=source,
        )
        inst.check()
        return inst

    def check(self) -> None:
        """Raise :class:`InstanceError` on the first violation of the data rules of docs/model.md."""
        src = self.source
        n = self.n
        if n == 0:
            raise InstanceError(f"{src}: the request list is empty")
        if not (len(self.output_len) == len(self.arrival) == len(self.ids) == n):
            raise InstanceError(f"{src}: request arrays have different lengths")
        if self.memory_budget < 1:
            raise InstanceError(
                f"{src}: memory must be a positive integer (got {self.memory_budget})"
            )
        if self.block_size < 1:
            raise InstanceError(
                f"{src}: block_size must be a positive integer (got {self.block_size})"
            )
        if self.max_batch is not None and self.max_batch < 1:
            raise InstanceError(
                f"{src}: max_batch must be a positive integer or null (got {self.max_batch})"
            )
        if self.memory_budget > MAX_VALUE:
            raise InstanceError(
                f"{src}: memory is too large (got {self.memory_budget}, at most {MAX_VALUE})"
            )
        for what, arr, low in (
            ("prompt", self.prompt_len, 1),
            ("output", self.output_len, 1),
            ("arrival", self.arrival, 0),
        ):
            bad = np.flatnonzero(arr < low)
            if bad.size:
                i = int(bad[0])
                kind = "a positive" if low == 1 else "a non-negative"
                raise InstanceError(
                    f"{src}: request '{self.ids[i]}': {what} must be {kind} integer (got {int(arr[i])})"
                )
            bad = np.flatnonzero(arr > MAX_VALUE)
            if bad.size:
                i = int(bad[0])
                raise InstanceError(
                    f"{src}: request '{self.ids[i]}': {what} is too large (got {int(arr[i])}, at most {MAX_VALUE})"
                )
        seen: set[str] = set()
        for rid in self.ids:
            if rid in seen:
                raise InstanceError(f"{src}: request '{rid}': duplicate id")
            seen.add(rid)
        peaks = self.peak_memory
        bad = np.flatnonzero(peaks > self.memory_budget)
        if bad.size:
            i = int(bad[0])
            raise InstanceError(
                f"{src}: request '{self.ids[i]}': its peak memory {int(peaks[i])} "
                f"(prompt {int(self.prompt_len[i])} + output {int(self.output_len[i])}, block size "
                f"{self.block_size}) does not fit in memory {self.memory_budget} alone"
            )

    # ------------------------------------------------------------------ derived data
    @property
    def n(self) -> int:
        """Number of requests."""
        return len(self.prompt_len)

    def mem(self, i: int | IntArray, k: int | IntArray) -> Any:
        """Memory ``mem_i(k) = B * ceil((s_i + k) / B)`` held by request ``i`` in its ``k``-th round."""
        b = self.block_size
        x = self.prompt_len[i] + k
        return ((x + b - 1) // b) * b

    @property
    def peak_memory(self) -> IntArray:
        """Each request's peak memory ``mem_i(o_i)`` (its last round)."""
        return np.asarray(self.mem(np.arange(self.n), self.output_len), dtype=np.int64)

    @property
    def volume(self) -> IntArray:
        """Memory-time volume ``sum_k mem_i(k)`` of each request (the area under its profile)."""
        s, o, b = self.prompt_len, self.output_len, self.block_size
        if b == 1:
            return s * o + o * (o + 1) // 2
        return np.array(
            [int(self.mem(i, np.arange(1, o[i] + 1)).sum()) for i in range(self.n)], dtype=np.int64
        )

    @property
    def has_arrivals(self) -> bool:
        """True when some request arrives after round 0."""
        return bool(self.arrival.any())

    def trivial_lower_bound(self) -> int:
        """``sum_i o_i``: every request alone, started on arrival (docs/model.md)."""
        return int(self.output_len.sum())

    def subset(self, indices: Sequence[int] | IntArray, name: str | None = None) -> Instance:
        """A new instance holding only the given requests (same budget, block size and cap)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Instance.create(
            self.memory_budget,
            self.prompt_len[idx],
            self.output_len[idx],
            self.arrival[idx],
            [self.ids[i] for i in idx],
            name=name or f"{self.name}-sub{len(idx)}",
            block_size=self.block_size,
            max_batch=self.max_batch,
            meta=dict(self.meta),
            source=self.source,
        )

    def replace(self, **changes: Any) -> Instance:
        """A validated copy with some fields changed (e.g. ``memory_budget``)."""
        data: dict[str, Any] = {
            "memory_budget": self.memory_budget,
            "prompt_len": self.prompt_len,
            "output_len": self.output_len,
            "arrival": self.arrival,
            "ids": list(self.ids),
            "name": self.name,
            "block_size": self.block_size,
            "max_batch": self.max_batch,
            "meta": dict(self.meta),
            # keep the file name so that errors in the changed copy still name the file
            "source": self.source,
        }
        data.update(changes)
        return Instance.create(**data)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form of docs/formats.md (extra ``meta`` keys kept)."""
        requests = []
        for i in range(self.n):
            r: dict[str, Any] = {
                "id": self.ids[i],
                "prompt": int(self.prompt_len[i]),
                "output": int(self.output_len[i]),
            }
            if self.arrival[i]:
                r["arrival"] = int(self.arrival[i])
            requests.append(r)
        out: dict[str, Any] = {
            "name": self.name,
            "memory": self.memory_budget,
            "block_size": self.block_size,
            "max_batch": self.max_batch,
        }
        extra = dict(self.meta)
        out.update({k: v for k, v in extra.items() if k not in out and k != "requests"})
        out["requests"] = requests
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON form atomically (a crash leaves the old file or the new one, never half)."""
        write_json_atomic(path, self.to_dict(), compact_requests=True)


def write_json_atomic(
    path: str | os.PathLike[str], data: Any, compact_requests: bool = False
) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if compact_requests and isinstance(data, dict) and "requests" in data:
        head = {k: v for k, v in data.items() if k != "requests"}
        body = json.dumps(head, indent=2)[:-2]
        reqs = ",\n".join("    " + json.dumps(r) for r in data["requests"])
        text = body + (",\n" if head else "\n") + '  "requests": [\n' + reqs + "\n  ]\n}\n"
    else:
        text = json.dumps(data, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would have
        os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _new_file_mode(path: Path) -> int:
    """The permission bits for ``path``: those of the file it replaces, else 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


# ---------------------------------------------------------------------- readers
def _int_field(src: str, where: str, key: str, value: Any, low: int) -> int:
    # bool is an int in Python; a JSON true is not a length.
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and not isinstance(value, bool):
            value = int(value)
        else:
            raise InstanceError(
                f"{src}: {where}: '{key}' must be an integer (got {json.dumps(value)})"
            )
    if value < low:
        kind = "positive" if low == 1 else "non-negative"
        raise InstanceError(f"{src}: {where}: '{key}' must be a {kind} integer (got {value})")
    if value > MAX_VALUE:
        raise InstanceError(
            f"{src}: {where}: '{key}' is too large (got {value}, at most {MAX_VALUE})"
        )
    return int(value)


#: optional per-request fields kept in ``meta`` (by request id): the online model's predictions
PER_REQUEST_META = ("predicted_output", "output_range")


def instance_from_dict(data: Any, source: str = "<memory>") -> Instance:
    """Validate a parsed JSON document (docs/formats.md) and build the instance."""
    src = source
    if not isinstance(data, dict):
        raise InstanceError(f"{src}: the top level must be a JSON object")
    if "memory" not in data:
        raise InstanceError(f"{src}: missing field 'memory'")
    memory = _int_field(src, "instance", "memory", data["memory"], 1)
    block_size = (
        1
        if data.get("block_size") is None
        else _int_field(src, "instance", "block_size", data["block_size"], 1)
    )
    max_batch = (
        None
        if data.get("max_batch") is None
        else _int_field(src, "instance", "max_batch", data["max_batch"], 1)
    )
    name = data.get("name", Path(source).stem if source != "<memory>" else "instance")
    if not isinstance(name, str):
        raise InstanceError(f"{src}: 'name' must be a string")
    if "requests" not in data:
        raise InstanceError(f"{src}: missing field 'requests'")
    reqs = data["requests"]
    if not isinstance(reqs, list):
        raise InstanceError(f"{src}: 'requests' must be a list")
    if not reqs:
        raise InstanceError(f"{src}: the request list is empty")
    ids: list[str] = []
    s: list[int] = []
    o: list[int] = []
    a: list[int] = []
    # prediction fields of the online model (docs/online.md), kept in ``meta`` keyed by request id
    per_request: dict[str, dict[str, Any]] = {}
    for pos, r in enumerate(reqs):
        if not isinstance(r, dict):
            raise InstanceError(f"{src}: request #{pos}: must be a JSON object")
        rid = r.get("id")
        if rid is None:
            raise InstanceError(f"{src}: request #{pos}: missing field 'id'")
        if not isinstance(rid, str):
            raise InstanceError(
                f"{src}: request #{pos}: 'id' must be a string (got {json.dumps(rid)})"
            )
        where = f"request '{rid}'"
        for key in ("prompt", "output"):
            if key not in r:
                raise InstanceError(f"{src}: {where}: missing field '{key}'")
        ids.append(rid)
        s.append(_int_field(src, where, "prompt", r["prompt"], 1))
        o.append(_int_field(src, where, "output", r["output"], 1))
        a.append(
            0 if r.get("arrival") is None else _int_field(src, where, "arrival", r["arrival"], 0)
        )
        for key in PER_REQUEST_META:
            if key in r:
                per_request.setdefault(key, {})[rid] = r[key]
    known = {"name", "memory", "block_size", "max_batch", "requests"}
    meta = {k: v for k, v in data.items() if k not in known}
    for key, values in per_request.items():
        meta.setdefault(key, values)
    return Instance.create(
        memory,
        s,
        o,
        a,
        ids,
        name=name,
        block_size=block_size,
        max_batch=max_batch,
        meta=meta,
        source=src,
    )


def load_instance(
    path: str | os.PathLike[str],
    memory: int | None = None,
    block_size: int | None = None,
    max_batch: int | None = None,
) -> Instance:
    """Read an instance from JSON, or from CSV (``prompt,output[,id,arrival]``) with ``memory`` given.

    ``memory``, ``block_size`` and ``max_batch`` override a JSON instance's own values; a CSV
    instance takes them as they are (block size 1 when not given).
    """
    p = Path(path)
    src = str(path)
    if not p.exists():
        raise InstanceError(f"{src}: no such file")
    if p.is_dir():
        raise InstanceError(f"{src}: is a directory, not an instance file")
    if p.suffix.lower() == ".csv":
        return load_csv(p, memory, block_size=block_size or 1, max_batch=max_batch)
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        return load_jsonl(p, memory, block_size=block_size or 1, max_batch=max_batch)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InstanceError(f"{src}: cannot read: {err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InstanceError(
            f"{src}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    except RecursionError:
        raise InstanceError(f"{src}: not an instance: JSON nested too deeply") from None
    inst = instance_from_dict(data, source=src)
    changes = {
        key: value
        for key, value in (
            ("memory_budget", memory),
            ("block_size", block_size),
            ("max_batch", max_batch),
        )
        if value is not None
    }
    return inst.replace(**changes) if changes else inst


def example_names() -> list[str]:
    """The names of the small instances shipped inside the package (``load_example`` takes them)."""
    from importlib import resources

    folder = resources.files("scheduler_milp") / "data" / "toy"
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def load_example(name: str) -> Instance:
    """A small instance shipped inside the package (``toy-3``, ``toy-pack4``, ...), from any directory."""
    from importlib import resources

    if name not in example_names():
        raise InstanceError(f"no shipped example {name!r}; known: {', '.join(example_names())}")
    with resources.as_file(
        resources.files("scheduler_milp") / "data" / "toy" / f"{name}.json"
    ) as path:
        return load_instance(path)


def load_csv(
    path: str | os.PathLike[str],
    memory: int | None,
    block_size: int = 1,
    max_batch: int | None = None,
    name: str | None = None,
) -> Instance:
    """Read requests from a CSV with a header naming the prompt and output lengths.

    The columns are found by the one rule of :func:`~scheduler_milp.model.columns.recognise_columns`
    (``prompt``/``output``, ``input_length``/``output_length``, ``ContextTokens``/``GeneratedTokens``,
    ...); optional ``id`` and ``arrival`` (rounds) columns are read when present.
    """
    src = str(path)
    if memory is None:
        raise InstanceError(f"{src}: a CSV instance needs the memory budget (--memory)")
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark before the header
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            if not header:
                raise InstanceError(f"{src}: the CSV file has no header")
            rows: list[tuple[int, dict[str, Any]]] = []
            for line, raw_row in enumerate(reader, start=2):
                rid = (raw_row.get("id") or "").strip() or f"r{line - 2}"
                where = f"request '{rid}' (line {line})"
                # DictReader files surplus cells under the key None and fills missing ones with None
                if raw_row.get(None):
                    raise InstanceError(
                        f"{src}: {where}: the row has more cells than the header has columns"
                    )
                if any(value is None for key, value in raw_row.items() if key is not None):
                    raise InstanceError(
                        f"{src}: {where}: the row has fewer cells than the header has columns"
                    )
                rows.append(
                    (
                        line,
                        {
                            (k or "").strip(): (v or "").strip()
                            for k, v in raw_row.items()
                            if k is not None
                        },
                    )
                )
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InstanceError(f"{src}: cannot read CSV: {err}") from None
    return _requests_to_instance(src, header, rows, "line", memory, block_size, max_batch, name)


def read_jsonl(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any]]]:
    """The objects of a JSONL file with their line numbers (blank lines skipped); one-line errors."""
    src = str(path)
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for line_no, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as err:
                    raise InstanceError(
                        f"{src}: line {line_no}: not valid JSON ({err.msg})"
                    ) from None
                except RecursionError:
                    raise InstanceError(f"{src}: line {line_no}: JSON nested too deeply") from None
                if not isinstance(obj, dict):
                    raise InstanceError(
                        f"{src}: line {line_no}: expected a JSON object, got {type(obj).__name__}"
                    )
                rows.append((line_no, obj))
    except (OSError, UnicodeDecodeError) as err:
        raise InstanceError(f"{src}: cannot read JSONL: {err}") from None
    return rows


def load_jsonl(
    path: str | os.PathLike[str],
    memory: int | None,
    block_size: int = 1,
    max_batch: int | None = None,
    name: str | None = None,
) -> Instance:
    """Read requests from a JSONL trace: one JSON object per line (Mooncake, Qwen-Bailian style).

    The prompt and output lengths are found as for CSV files (e.g. ``input_length`` and
    ``output_length``); ``id`` and ``arrival`` (rounds) are read when present.  Timestamps are not
    turned into arrivals here: ``make_instances.py --csv FILE --timestamp-column ... --timestamp-unit``
    does that with an explicit unit.
    """
    src = str(path)
    if memory is None:
        raise InstanceError(f"{src}: a JSONL trace needs the memory budget (--memory)")
    rows = [
        (line, {str(k): "" if v is None else v for k, v in obj.items()})
        for line, obj in read_jsonl(path)
    ]
    keys = list(dict.fromkeys(k for _, row in rows for k in row))
    return _requests_to_instance(src, keys, rows, "line", memory, block_size, max_batch, name)


def _integer_cell(src: str, where: str, key: str, raw: Any, low: int) -> int:
    """One integer cell of a CSV or JSONL row (``"12"``, ``12``, ``12.0``), range-checked."""
    if isinstance(raw, bool):
        raise InstanceError(f"{src}: {where}: '{key}' must be an integer (got {raw!r})")
    try:
        value = int(raw) if not isinstance(raw, float) else None
    except (TypeError, ValueError):
        value = None
    if value is None:
        try:
            fv = float(raw)
        except (TypeError, ValueError):
            raise InstanceError(
                f"{src}: {where}: '{key}' must be an integer (got {raw!r})"
            ) from None
        if not math.isfinite(fv) or not fv.is_integer():
            raise InstanceError(f"{src}: {where}: '{key}' must be an integer (got {raw!r})")
        value = int(fv)
    if value < low:
        kind = "positive" if low == 1 else "non-negative"
        raise InstanceError(f"{src}: {where}: '{key}' must be a {kind} integer (got {value})")
    if value > MAX_VALUE:
        raise InstanceError(
            f"{src}: {where}: '{key}' is too large (got {value}, at most {MAX_VALUE})"
        )
    return value


def _requests_to_instance(
    src: str,
    columns: list[str],
    rows: list[tuple[int, dict[str, Any]]],
    unit: str,
    memory: int,
    block_size: int,
    max_batch: int | None,
    name: str | None,
) -> Instance:
    """The instance of tabular request rows: lengths from the recognised columns, ``id``/``arrival`` if present."""
    from .columns import recognise_columns

    found = recognise_columns(columns, source=src)
    lower = {c.lower(): c for c in columns}
    id_col = lower.get("id")
    arrival_col = lower.get("arrival")
    if not rows:
        raise InstanceError(f"{src}: the request list is empty")
    ids, s, o, a = [], [], [], []
    for pos, (line, row) in enumerate(rows):
        raw_id = row.get(id_col, "") if id_col else ""
        rid = str(raw_id).strip() or f"r{pos}"
        where = f"request '{rid}' ({unit} {line})"
        ids.append(rid)
        s.append(_integer_cell(src, where, found["prompt"], row.get(found["prompt"], ""), 1))
        o.append(_integer_cell(src, where, found["output"], row.get(found["output"], ""), 1))
        raw_arrival = row.get(arrival_col, "") if arrival_col else ""
        a.append(0 if raw_arrival == "" else _integer_cell(src, where, "arrival", raw_arrival, 0))
    return Instance.create(
        memory,
        s,
        o,
        a,
        ids,
        name=name or Path(src).stem,
        block_size=block_size,
        max_batch=max_batch,
        source=src,
    )
