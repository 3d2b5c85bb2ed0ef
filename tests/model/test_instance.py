"""Instance reading, validation errors (one line naming file and request), JSON round trip, toys."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scheduler_milp.model.instance import (
    Instance,
    InstanceError,
    instance_from_dict,
    load_instance,
    write_json_atomic,
)
from scheduler_milp.model.plan import validate

ROOT = Path(__file__).resolve().parents[2]
TOY_DIR = ROOT / "instances" / "toy"


def _doc(requests: Any, memory: Any = 24, **extra: Any) -> dict[str, Any]:
    return {"name": "bad", "memory": memory, "requests": requests, **extra}


_OK = {"id": "ok", "prompt": 2, "output": 2}

# (case name, file content (dict -> JSON, str -> raw text), request named in the error or None,
#  a fragment of the problem's description)
BAD_JSON_CASES: list[tuple[str, Any, str | None, str]] = [
    ("not-json", "{ this is not json", None, "not valid JSON"),
    ("top-level-list", "[1, 2, 3]", None, "JSON object"),
    ("missing-memory", {"requests": [_OK]}, None, "missing field 'memory'"),
    ("missing-requests", {"memory": 24}, None, "missing field 'requests'"),
    ("missing-prompt", _doc([_OK, {"id": "x1", "output": 3}]), "x1", "missing field 'prompt'"),
    ("missing-output", _doc([{"id": "x2", "prompt": 3}]), "x2", "missing field 'output'"),
    ("missing-id", _doc([_OK, {"prompt": 3, "output": 1}]), "#1", "missing field 'id'"),
    (
        "prompt-string",
        _doc([_OK, {"id": "x3", "prompt": "5", "output": 1}]),
        "x3",
        "must be an integer",
    ),
    ("output-float", _doc([{"id": "x4", "prompt": 5, "output": 1.5}]), "x4", "must be an integer"),
    ("output-bool", _doc([{"id": "x5", "prompt": 5, "output": True}]), "x5", "must be an integer"),
    ("id-number", _doc([{"id": 7, "prompt": 5, "output": 1}]), "#0", "'id' must be a string"),
    ("memory-string", _doc([_OK], memory="24"), None, "'memory' must be an integer"),
    ("memory-zero", _doc([_OK], memory=0), None, "'memory' must be a positive integer"),
    ("requests-not-list", _doc({"id": "a"}), None, "'requests' must be a list"),
    ("zero-prompt", _doc([_OK, {"id": "x6", "prompt": 0, "output": 1}]), "x6", "positive"),
    ("zero-output", _doc([{"id": "x7", "prompt": 3, "output": 0}]), "x7", "positive"),
    ("negative-output", _doc([{"id": "x8", "prompt": 3, "output": -2}]), "x8", "positive"),
    (
        "negative-arrival",
        _doc([{"id": "x9", "prompt": 3, "output": 2, "arrival": -1}]),
        "x9",
        "non-negative",
    ),
    ("duplicate-id", _doc([_OK, {"id": "ok", "prompt": 1, "output": 1}]), "ok", "duplicate id"),
    ("empty-requests", _doc([]), None, "empty"),
    (
        "peak-too-big",
        _doc([_OK, {"id": "huge", "prompt": 20, "output": 5}]),
        "huge",
        "does not fit",
    ),
    (
        "peak-too-big-blocks",
        _doc([{"id": "blk", "prompt": 20, "output": 1}], block_size=16),
        "blk",
        "does not fit",
    ),
    ("prompt-too-large", _doc([{"id": "x10", "prompt": 10**30, "output": 1}]), "x10", "too large"),
    ("block-size-zero", _doc([_OK], block_size=0), None, "'block_size' must be a positive integer"),
    ("max-batch-zero", _doc([_OK], max_batch=0), None, "'max_batch' must be a positive integer"),
]

# (case name, CSV text, --memory, request named or None, problem fragment)
BAD_CSV_CASES: list[tuple[str, str, int | None, str | None, str]] = [
    (
        "csv-missing-output-column",
        "prompt,tokens\n3,4\n",
        24,
        None,
        "which column holds the output length (columns: prompt, tokens",
    ),
    (
        "csv-non-integer",
        "id,prompt,output\na,3,4\nb,3,four\n",
        24,
        "b",
        "'output' must be an integer",
    ),
    ("csv-fraction", "prompt,output\n3,4\n2.5,1\n", 24, "r1", "'prompt' must be an integer"),
    ("csv-missing-memory", "prompt,output\n3,4\n", None, None, "--memory"),
    ("csv-zero-output", "prompt,output\n3,0\n", 24, "r0", "positive"),
    ("csv-negative-arrival", "prompt,output,arrival\n3,1,-4\n", 24, "r0", "non-negative"),
    ("csv-extra-cell", "prompt,output\n3,1,7\n", 24, "r0", "more cells"),
    ("csv-peak-too-big", "id,prompt,output\nbig,30,1\n", 24, "big", "does not fit"),
    ("csv-too-large", "prompt,output\n3,1\n99999999999999999999,1\n", 24, "r1", "too large"),
    ("csv-empty", "prompt,output\n", 24, None, "empty"),
    ("csv-duplicate-id", "id,prompt,output\nq,1,1\nq,2,2\n", 24, "q", "duplicate"),
]


def write_case(tmp_path: Path, name: str, content: Any, suffix: str = ".json") -> Path:
    """Write a test case file; dicts become JSON."""
    path = tmp_path / f"{name}{suffix}"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def assert_one_line_naming(
    message: str, path: Path | str, request: str | None, fragment: str
) -> None:
    """The error contract: one line, naming the file, the request (when there is one) and the problem."""
    assert "\n" not in message.strip()
    assert str(path) in message
    if request is not None:
        assert (f"'{request}'" if not request.startswith("#") else f"request {request}") in message
    assert fragment in message


@pytest.mark.parametrize(
    ("case", "content", "request_id", "fragment"),
    BAD_JSON_CASES,
    ids=[c[0] for c in BAD_JSON_CASES],
)
def test_bad_json_instance_raises_one_line(tmp_path, case, content, request_id, fragment):
    path = write_case(tmp_path, case, content)
    with pytest.raises(InstanceError) as err:
        load_instance(path)
    assert_one_line_naming(str(err.value), path, request_id, fragment)


@pytest.mark.parametrize(
    ("case", "text", "memory", "request_id", "fragment"),
    BAD_CSV_CASES,
    ids=[c[0] for c in BAD_CSV_CASES],
)
def test_bad_csv_instance_raises_one_line(tmp_path, case, text, memory, request_id, fragment):
    path = write_case(tmp_path, case, text, suffix=".csv")
    with pytest.raises(InstanceError) as err:
        load_instance(path, memory=memory)
    assert_one_line_naming(str(err.value), path, request_id, fragment)


def test_missing_file_and_directory(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(InstanceError, match="no such file") as err:
        load_instance(missing)
    assert str(missing) in str(err.value)
    with pytest.raises(InstanceError, match="directory"):
        load_instance(tmp_path)


def test_binary_file_is_one_line_error(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InstanceError) as err:
        load_instance(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_memory_override_error_still_names_the_file(tmp_path):
    path = write_case(tmp_path, "small", _doc([{"id": "wide", "prompt": 10, "output": 3}]))
    assert load_instance(path).memory_budget == 24
    with pytest.raises(InstanceError) as err:
        load_instance(path, memory=12)
    assert_one_line_naming(str(err.value), path, "wide", "does not fit")


def test_csv_reading_with_bom_ids_and_arrivals(tmp_path):
    path = tmp_path / "reqs.csv"
    path.write_bytes("\ufeffid,prompt,output,arrival\nx,3,4,\ny,2,1,5\n".encode())
    inst = load_instance(path, memory=30, block_size=2, max_batch=3)
    assert inst.ids == ("x", "y")
    assert inst.prompt_len.tolist() == [3, 2]
    assert inst.output_len.tolist() == [4, 1]
    assert inst.arrival.tolist() == [0, 5]
    assert (inst.memory_budget, inst.block_size, inst.max_batch) == (30, 2, 3)


def test_json_round_trip_keeps_arrays_and_meta(tmp_path):
    inst = Instance.create(
        50,
        [5, 2, 9, 1],
        [3, 7, 1, 4],
        [0, 2, 0, 11],
        ["a", "b", "c", "d"],
        name="trip",
        block_size=2,
        max_batch=3,
        meta={
            "meta": {"generator": "test", "seed": 4},
            "optimum": {"value": 99, "proven_by": ["x"]},
        },
    )
    path = tmp_path / "sub" / "trip.json"
    inst.save(path)
    back = load_instance(path)
    for field in ("prompt_len", "output_len", "arrival"):
        np.testing.assert_array_equal(getattr(back, field), getattr(inst, field))
    assert back.ids == inst.ids
    assert (back.name, back.memory_budget, back.block_size, back.max_batch) == ("trip", 50, 2, 3)
    assert back.meta == inst.meta
    assert back.to_dict() == inst.to_dict()
    # one request per line: the compact form promised for large files
    text = path.read_text()
    assert text.count('{"id":') == 4 and json.loads(text) == inst.to_dict()
    assert [p.name for p in path.parent.iterdir()] == ["trip.json"]  # no temp file left behind


def test_atomic_write_keeps_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text('{"old": true}\n')
    os.chmod(path, 0o640)
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert path.read_text() == '{"old": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]
    write_json_atomic(path, {"new": 1})
    assert json.loads(path.read_text()) == {"new": 1}
    assert path.stat().st_mode & 0o777 == 0o640  # replacing a file keeps its permissions


def test_instance_arrays_are_read_only():
    inst = Instance.create(24, [1, 2], [3, 4])
    with pytest.raises(ValueError):
        inst.prompt_len[0] = 5


def test_instance_from_dict_defaults():
    inst = instance_from_dict({"memory": 9, "requests": [{"id": "a", "prompt": 1, "output": 2}]})
    assert (inst.block_size, inst.max_batch, inst.arrival.tolist()) == (1, None, [0])


# ---------------------------------------------------------------------- toy optima


def _brute_force_optimum(inst: Instance) -> int:
    """Exhaustive search over start rounds, each plan checked by the one validator.

    The horizon is the one of docs/model.md: with ``UB`` the latency of a feasible plan (every request alone, one
    after the other in arrival order), an optimal plan has ``S_i <= UB - sum o + a_i``.
    """
    clock, ub = 0, 0
    for i in np.argsort(inst.arrival, kind="stable"):
        start = max(clock, int(inst.arrival[i]))
        clock = start + int(inst.output_len[i])
        ub += clock - int(inst.arrival[i])
    slack = ub - inst.trivial_lower_bound()
    ranges = [range(int(a), int(a) + slack + 1) for a in inst.arrival]
    best = ub
    for starts in itertools.product(*ranges):
        start_round = np.array(starts, dtype=np.int64)
        total = int((start_round + inst.output_len - inst.arrival).sum())
        if total < best and not validate(inst, start_round):
            best = total
    return best


TOYS = sorted(TOY_DIR.glob("*.json"))


def test_toy_set_is_shipped():
    names = {p.stem for p in TOYS}
    assert "toy-3" in names and 4 <= len(names) <= 6
    insts = [load_instance(p) for p in TOYS]
    assert any(i.has_arrivals for i in insts)
    assert any(i.block_size == 2 for i in insts)
    assert any(i.max_batch is not None for i in insts)


@pytest.mark.parametrize("path", TOYS, ids=[p.stem for p in TOYS])
def test_toy_recorded_optimum_matches_brute_force(path):
    inst = load_instance(path)
    recorded = json.loads(path.read_text())["optimum"]
    assert "hand" in recorded["proven_by"]
    assert _brute_force_optimum(inst) == recorded["value"]


def test_a_jsonl_trace_and_a_trace_csv_read_with_the_one_column_rule(tmp_path):
    """``input_length``/``output_length`` (Mooncake, Qwen-Bailian) and Azure's names, with no ``prompt`` header."""
    jsonl = tmp_path / "trace.jsonl"
    jsonl.write_text(
        '{"timestamp": 0, "input_length": 5, "output_length": 3, "hash_ids": [1, 2]}\n'
        "\n"
        '{"timestamp": 27, "input_length": 7, "output_length": 2, "hash_ids": []}\n'
    )
    inst = load_instance(jsonl, memory=64)
    assert inst.prompt_len.tolist() == [5, 7] and inst.output_len.tolist() == [3, 2]
    assert inst.arrival.tolist() == [
        0,
        0,
    ]  # timestamps become arrivals only when asked, with a unit
    azure = tmp_path / "azure.csv"
    azure.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,4,2\n2023-11-16 18:15:50,6,1\n"
    )
    assert load_instance(azure, memory=64).prompt_len.tolist() == [4, 6]
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"tokens_in": 5, "tokens_out": 3}\n')
    with pytest.raises(InstanceError, match=r"columns: tokens_in, tokens_out; accepted: prompt"):
        load_instance(unknown, memory=64)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"input_length": 5, "output_length": 3}\n{"input_length": 5,\n')
    with pytest.raises(InstanceError, match="line 2: not valid JSON"):
        load_instance(broken, memory=64)
