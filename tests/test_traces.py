"""Real traces: the packaged copies, column mapping, sampling (determinism, scale, memory, arrivals),
conversion of CSV and JSONL trace files (column recognition, timestamps and their units)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scheduler_milp.model.columns import OUTPUT_COLUMNS, PROMPT_COLUMNS, recognise_columns
from scheduler_milp.model.instance import InstanceError, load_instance
from scheduler_milp.traces import (
    TRACES,
    arrival_rounds,
    convert_csv,
    load_trace,
    parse_mix,
    sample_backlog,
    split_counts,
    trace_dir,
)

INSTANCES = Path(__file__).resolve().parent.parent / "instances"

# From the trace collection's README: rows (without the header) and SHA-256 of the unmodified files.
EXPECTED = {
    "conv": (19366, "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8"),
    "code": (8819, "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6"),
    "arxiv": (28257, "9d3580538d915ca75e4aaaa54590b42dbb17abc6d74c8913310cf07c232adcdc"),
    "sharegpt": (30731, "6d6c296302a853e2669a674a96f269283e60c57e60363bd450588a1066919f9f"),
    "bwb": (33768, "389419d2f2e55149b5d6ccfedb881572798d39650436ab86fd61f3c40337a990"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_packaged_trace_is_unmodified_and_mapped(name):
    rows, sha = EXPECTED[name]
    path = trace_dir() / TRACES[name].file
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    table = load_trace(name, drop_artifacts=False)
    assert len(table) == rows
    raw = pd.read_csv(path)
    assert table["prompt"].tolist() == raw[TRACES[name].prompt_column].tolist()
    assert table["output"].tolist() == raw[TRACES[name].output_column].tolist()
    assert (table["prompt"] >= 1).all() and (table["output"] >= 1).all()
    assert ("arrival_seconds" in table) == (name in ("conv", "code"))


def test_package_ships_licences_and_readme():
    folder = trace_dir()
    assert (folder / "README.md").is_file()
    licences = {p.name for p in (folder / "LICENSES").iterdir()}
    assert {
        "Azure_AzurePublicDataset_LICENSE_CC-BY-4.0.txt",
        "microsoft_vidur_LICENSE_MIT.txt",
    } <= licences


def test_azure_arrival_seconds():
    table = load_trace("conv")
    seconds = table["arrival_seconds"].to_numpy()
    assert seconds[0] == 0.0
    assert np.all(np.diff(seconds) >= 0)
    # first and last timestamps 18:15:46.6805900 and 19:14:08.40 (README: span 3501.7 s)
    assert seconds[1] == pytest.approx(50.9951690 - 46.6805900)
    assert seconds[-1] == pytest.approx(3501.7, abs=0.1)


def test_arxiv_artifact_filter():
    full = load_trace("arxiv", drop_artifacts=False)
    kept = load_trace("arxiv")
    dropped = full.loc[full.index.difference(kept.index)]
    assert len(dropped) == 416  # the rows the traces README describes
    assert (dropped["output"] > 3000).all()
    # what is kept above 3000 output tokens has a prompt at least as long (none, in this file)
    assert (
        kept.loc[kept["output"] > 3000, "prompt"] >= kept.loc[kept["output"] > 3000, "output"]
    ).all()
    # other traces are untouched by the flag
    assert len(load_trace("bwb")) == len(load_trace("bwb", drop_artifacts=False))


def test_parse_mix_and_split_counts():
    assert parse_mix("conv=0.7,arxiv=0.3") == {"conv": 0.7, "arxiv": 0.3}
    assert parse_mix("code") == {"code": 1.0}
    counts = split_counts({"conv": 0.7, "arxiv": 0.3}, 101)
    assert sum(counts.values()) == 101 and counts == {"conv": 71, "arxiv": 30}
    assert split_counts({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}
    with pytest.raises(ValueError):
        parse_mix("conv=much")
    with pytest.raises(ValueError):
        split_counts({"a": 0}, 3)


def test_sample_is_deterministic_and_seed_dependent():
    a = sample_backlog({"conv": 0.7, "arxiv": 0.3}, 200, seed=5, memory=65536)
    b = sample_backlog({"conv": 0.7, "arxiv": 0.3}, 200, seed=5, memory=65536)
    assert a.to_dict() == b.to_dict()
    c = sample_backlog({"conv": 0.7, "arxiv": 0.3}, 200, seed=6, memory=65536)
    assert a.to_dict()["requests"] != c.to_dict()["requests"]


def test_sample_mix_rows_come_from_the_traces():
    inst = sample_backlog("conv=0.7,arxiv=0.3", 300, seed=2, memory=65536)
    tables = {k: load_trace(k) for k in ("conv", "arxiv")}
    counts = {"conv": 0, "arxiv": 0}
    for i, rid in enumerate(inst.ids):
        trace, row = rid.rsplit("-", 1)
        counts[trace] += 1
        assert inst.prompt_len[i] == tables[trace].loc[int(row), "prompt"]
        assert inst.output_len[i] == tables[trace].loc[int(row), "output"]
    assert counts == {"conv": 210, "arxiv": 90}
    assert len(set(inst.ids)) == inst.n
    # shuffled together, not one trace after the other
    assert {r.split("-")[0] for r in inst.ids[:30]} == {"conv", "arxiv"}


def test_scale_rounds_up():
    full = sample_backlog("sharegpt", 500, seed=4, memory=65536)
    scaled = sample_backlog("sharegpt", 500, seed=4, memory=65536 // 16, scale=16)
    assert scaled.ids == full.ids
    np.testing.assert_array_equal(scaled.prompt_len, -(-full.prompt_len // 16))
    np.testing.assert_array_equal(scaled.output_len, -(-full.output_len // 16))
    # rounding up: never below the exact quotient, never zero, and some lengths were rounded
    assert np.all(scaled.prompt_len * 16 >= full.prompt_len)
    assert np.all(scaled.output_len >= 1)
    assert np.any(full.output_len % 16 != 0)
    assert scaled.meta["meta"]["params"]["scale"] == 16


@pytest.mark.parametrize(("factor", "block_size"), [(1.0, 1), (2.5, 1), (4.0, 16)])
def test_memory_factor(factor, block_size):
    inst = sample_backlog("bwb", 100, seed=1, memory_factor=factor, block_size=block_size)
    largest = int(inst.peak_memory.max())
    assert inst.memory_budget == math.ceil(factor * largest)
    assert inst.meta["meta"]["params"]["memory_factor"] == factor
    assert inst.meta["meta"]["params"]["memory"] == inst.memory_budget


def test_default_memory_is_four_times_largest_peak():
    inst = sample_backlog("code", 50, seed=0)
    assert inst.memory_budget == 4 * int(inst.peak_memory.max())


def test_arrivals_from_timestamps():
    round_seconds = 0.25
    inst = sample_backlog(
        "code", 300, seed=9, arrivals="trace", round_seconds=round_seconds, memory=65536
    )
    arrival = inst.arrival
    assert arrival[0] == 0
    assert np.all(np.diff(arrival) >= 0)
    rows = [int(r.split("-")[1]) for r in inst.ids]
    assert rows == list(range(rows[0], rows[0] + 300))  # a contiguous window, in trace order
    seconds = load_trace("code")["arrival_seconds"].to_numpy()[rows]
    expected = np.floor((seconds - seconds[0]) / round_seconds + 1e-9).astype(np.int64)
    np.testing.assert_array_equal(arrival, expected)
    window = inst.meta["meta"]["window"]
    assert (window["first_row"], window["last_row"]) == (rows[0], rows[-1])
    assert inst.meta["meta"]["params"]["round_seconds"] == round_seconds
    assert "arrival_s" not in inst.meta  # only when asked for
    kept = sample_backlog("code", 300, seed=9, arrivals="trace", round_seconds=round_seconds,
                          memory=65536, keep_seconds=True)  # fmt: skip
    secs = np.array([kept.meta["arrival_s"][rid] for rid in kept.ids])
    np.testing.assert_allclose(secs, seconds - seconds[0])
    np.testing.assert_array_equal(kept.arrival, arrival)
    assert kept.meta["round_seconds"] == round_seconds


def test_converted_timestamps_keep_their_seconds_when_asked(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("input_length,output_length,ts\n5,3,1000\n4,2,1250\n6,1,2600\n")
    inst = convert_csv(path, 64, timestamp_column="ts", timestamp_unit="ms",
                       round_seconds=0.5, keep_seconds=True)  # fmt: skip
    assert inst.arrival.tolist() == [0, 0, 3]
    assert inst.meta["arrival_s"] == {inst.ids[0]: 0.0, inst.ids[1]: 0.25, inst.ids[2]: 1.6}


def test_peak_window_is_the_densest():
    n = 200
    inst = sample_backlog("conv", n, seed=0, arrivals="trace", peak_hour=True, memory=65536)
    seconds = load_trace("conv")["arrival_seconds"].to_numpy()
    spans = [seconds[i + n - 1] - seconds[i] for i in range(len(seconds) - n + 1)]
    first = inst.meta["meta"]["window"]["first_row"]
    assert seconds[first + n - 1] - seconds[first] == pytest.approx(min(spans))
    # the seed does not matter for the densest window
    again = sample_backlog("conv", n, seed=123, arrivals="trace", peak_hour=True, memory=65536)
    assert again.ids == inst.ids


def test_meta_records_generator_parameters_and_origin():
    inst = sample_backlog(
        {"conv": 0.7, "arxiv": 0.3}, 50, seed=11, memory=70000, scale=2, max_batch=8
    )
    meta = inst.meta["meta"]
    assert meta["generator"] == "scheduler_milp.traces.sample_backlog"
    assert meta["seed"] == 11
    params = meta["params"]
    assert params["mix"] == {"conv": 0.7, "arxiv": 0.3}
    assert (params["n"], params["memory"], params["scale"], params["max_batch"]) == (
        50,
        70000,
        2,
        8,
    )
    assert params["drop_artifacts"] is True and params["arrivals"] is None
    assert set(meta["traces"]) == {"conv", "arxiv"}
    assert meta["traces"]["conv"]["file"] == "AzureLLMInferenceTrace_conv.csv"
    assert meta["traces"]["conv"]["licence"] == "CC-BY-4.0"
    assert "Splitwise" in meta["traces"]["conv"]["citation"]
    assert meta["traces"]["arxiv"]["upstream"].startswith("microsoft/vidur@")
    assert inst.name == "mix-conv70-arxiv30-n50"


def test_sample_errors():
    with pytest.raises(ValueError, match="unknown trace"):
        sample_backlog("nope", 10, 0)
    with pytest.raises(ValueError, match="not both"):
        sample_backlog("conv", 10, 0, memory=9000, memory_factor=2)
    with pytest.raises(ValueError, match="no timestamps"):
        sample_backlog("bwb", 10, 0, arrivals="trace")
    with pytest.raises(ValueError, match="exactly one trace"):
        sample_backlog("conv=1,code=1", 10, 0, arrivals="trace")
    with pytest.raises(ValueError, match="only"):
        sample_backlog("code", 9000, 0)
    with pytest.raises(ValueError, match="peak_hour"):
        sample_backlog("conv", 10, 0, peak_hour=True)
    with pytest.raises(ValueError, match="scale"):
        sample_backlog("conv", 10, 0, scale=0)
    with pytest.raises(InstanceError, match="does not fit"):
        sample_backlog("conv", 100, 0, memory=500)


def test_whole_trace_in_file_order():
    inst = sample_backlog("code", None, 0, memory=65536)
    table = load_trace("code")
    assert inst.n == len(table)
    assert inst.prompt_len.tolist() == table["prompt"].tolist()


def test_convert_csv_guesses_columns_and_reports_errors(tmp_path):
    path = tmp_path / "vidur.csv"
    path.write_text("num_prefill_tokens,num_decode_tokens,num_total_tokens\n10,5,15\n3,7,10\n")
    inst = convert_csv(path, memory=64)
    assert inst.prompt_len.tolist() == [10, 3] and inst.output_len.tolist() == [5, 7]
    assert inst.meta["meta"]["params"]["output_column"] == "num_decode_tokens"
    with pytest.raises(InstanceError, match="cannot tell which column") as err:
        convert_csv(_write(tmp_path / "odd.csv", "a,b\n1,2\n"), memory=64)
    assert "odd.csv" in str(err.value)
    with pytest.raises(InstanceError, match="no column 'nope'"):
        convert_csv(path, memory=64, prompt_column="nope")
    with pytest.raises(InstanceError, match=r"request 'r1' \(line 3\).*positive"):
        convert_csv(_write(tmp_path / "zero.csv", "prompt,output\n1,1\n1,0\n"), memory=64)
    with pytest.raises(InstanceError, match="does not fit"):
        convert_csv(path, memory=12)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_recognise_columns():
    assert recognise_columns(["TIMESTAMP", "ContextTokens", "GeneratedTokens"]) == {
        "prompt": "ContextTokens",
        "output": "GeneratedTokens",
    }
    assert recognise_columns(["timestamp", "Input_Length", "output_length", "hash_ids"]) == {
        "prompt": "Input_Length",
        "output": "output_length",
    }
    assert recognise_columns(["a", "b"], prompt="a", output="b") == {"prompt": "a", "output": "b"}
    with pytest.raises(InstanceError) as err:
        recognise_columns(["tokens_in", "output"], source="x.csv")
    message = str(err.value)
    assert message.startswith("x.csv: cannot tell which column holds the prompt length")
    assert "tokens_in, output" in message  # the columns found
    assert all(name in message for name in PROMPT_COLUMNS)  # the accepted names
    with pytest.raises(InstanceError, match="no column 'nope' for the output length"):
        recognise_columns(["prompt", "output"], output="nope")
    assert "GeneratedTokens" in OUTPUT_COLUMNS


def test_numeric_timestamps_need_their_unit(tmp_path):
    """Numbers are not read as nanoseconds since the epoch: their unit is asked for, not guessed."""
    millis = _write(
        tmp_path / "ms.csv",
        "timestamp,prompt,output\n1700000000000,4,2\n1700000002500,4,2\n1700000007000,4,2\n",
    )
    with pytest.raises(InstanceError, match="timestamp_unit") as err:
        convert_csv(millis, memory=64, timestamp_column="timestamp")
    assert "ms.csv" in str(err.value)
    inst = convert_csv(millis, memory=64, timestamp_column="timestamp", timestamp_unit="ms")
    assert inst.arrival.tolist() == [0, 2, 7]
    assert inst.meta["meta"]["params"]["timestamp_unit"] == "ms"
    seconds = _write(tmp_path / "s.csv", "timestamp,prompt,output\n61.5,4,2\n62.0,4,2\n70.25,4,2\n")
    with pytest.raises(InstanceError, match="timestamp_unit"):
        convert_csv(seconds, memory=64, timestamp_column="timestamp")
    inst = convert_csv(
        seconds, memory=64, timestamp_column="timestamp", timestamp_unit="s", round_seconds=0.5
    )
    assert inst.arrival.tolist() == [0, 1, 17]
    with pytest.raises(InstanceError, match="one of s, ms, us, ns"):
        convert_csv(seconds, memory=64, timestamp_column="timestamp", timestamp_unit="hours")
    text = _write(
        tmp_path / "t.csv",
        "when,prompt,output\n2024-01-01 10:00:00,4,2\n2024-01-01 10:00:03.5,4,2\n",
    )
    assert convert_csv(text, memory=64, timestamp_column="when").arrival.tolist() == [0, 3]
    with pytest.raises(InstanceError, match="numeric timestamps only"):
        convert_csv(text, memory=64, timestamp_column="when", timestamp_unit="s")


def test_arrival_rounds_floor_the_seconds():
    """``floor(seconds / round_seconds)``, robust to float error (0.15 / 0.05 is round 3)."""
    assert arrival_rounds(np.array([0.0, 0.15, 0.3]), 0.05).tolist() == [0, 3, 6]
    assert arrival_rounds(np.array([0.0, 0.4, 0.9]), 1.0).tolist() == [0, 0, 0]  # within one round
    assert arrival_rounds(np.array([0.0, 1.0]), 1.0).tolist() == [0, 1]


def test_convert_jsonl_trace(tmp_path):
    """One JSON object per line, as the Mooncake (integer milliseconds) and Qwen-Bailian (float
    seconds) traces ship: columns recognised, extra fields ignored, timestamps in their unit."""
    mooncake = tmp_path / "mooncake.jsonl"
    rows = [
        {"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [0, 1, 2]},
        {"timestamp": 1500, "input_length": 30, "output_length": 7, "hash_ids": [3]},
        {"timestamp": 4200, "input_length": 12, "output_length": 300, "hash_ids": []},
    ]
    mooncake.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    inst = convert_csv(mooncake, memory=8000, timestamp_column="timestamp", timestamp_unit="ms")
    assert inst.prompt_len.tolist() == [6955, 30, 12]
    assert inst.output_len.tolist() == [52, 7, 300]
    assert inst.arrival.tolist() == [0, 1, 4]
    params = inst.meta["meta"]["params"]
    assert (params["prompt_column"], params["output_column"]) == ("input_length", "output_length")
    qwen = tmp_path / "qwen.jsonl"
    qwen.write_text(
        '{"chat_id": 1, "timestamp": 61.114, "input_length": 521, "output_length": 132, "turn": 1}\n'
        '{"chat_id": 2, "timestamp": 62.9, "input_length": 40, "output_length": 9, "turn": 1}\n'
    )
    inst = convert_csv(
        qwen,
        memory=1024,
        id_column="chat_id",
        timestamp_column="timestamp",
        timestamp_unit="s",
        round_seconds=0.5,
    )
    assert inst.ids == ("1", "2") and inst.arrival.tolist() == [0, 3]
    assert convert_csv(qwen, memory=1024).arrival.tolist() == [
        0,
        0,
    ]  # no timestamp column: a backlog
    broken = _write(
        tmp_path / "broken.jsonl", '{"input_length": 3, "output_length": 1}\n{"input_length": 3,\n'
    )
    with pytest.raises(InstanceError, match=r"broken.jsonl: line 2: not valid JSON"):
        convert_csv(broken, memory=64)
    zero = _write(
        tmp_path / "zero.jsonl",
        '{"input_length": 3, "output_length": 1}\n\n{"input_length": 3, "output_length": 0}\n',
    )
    with pytest.raises(InstanceError, match=r"request 'r1' \(line 3\).*positive"):
        convert_csv(zero, memory=64)


@pytest.mark.parametrize(
    ("file", "mix", "n", "kwargs"),
    [
        ("conv-n100-M65536.json", "conv", 100, {"memory": 65536}),
        ("mix-conv70-arxiv30-n100-M65536.json", "conv=0.7,arxiv=0.3", 100, {"memory": 65536}),
        (
            "conv-arrivals-n1000-scale16-M3072.json",
            "conv",
            1000,
            {
                "memory": 3072,
                "scale": 16,
                "arrivals": "trace",
                "round_seconds": 0.5,
                "peak_hour": True,
            },
        ),
    ],
)
def test_shipped_trace_instances_regenerate(file, mix, n, kwargs):
    shipped = load_instance(INSTANCES / "traces" / file)
    made = sample_backlog(mix, n, 0, name=shipped.name, **kwargs)
    assert made.to_dict() == shipped.to_dict()
