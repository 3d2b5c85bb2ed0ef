"""scripts/capacity.py end to end on a small workload: table, figure, answers, resuming."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from scheduler_milp.commands.capacity import TABLE_COLUMNS, Answer, answers, main

ROOT = Path(__file__).resolve().parents[2]
INSTANCE = str(ROOT / "instances/traces/conv-n100-M65536.json")


def _rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "capacity.csv").open()))


def test_sweep_table_figure_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cap"
    args = [INSTANCE, "--memories", "5000,8000", "--replicas", "1,2", "--methods", "svf",
            "--routing", "least-loaded,optimised", "--round-time", "vidur-llama2-7b-a100",
            "--time-limit", "1", "--target-mean", "10", "--out", str(out), "-q"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "target: mean latency <= 10 s" in text
    rows = _rows(out)
    assert list(rows[0]) == TABLE_COLUMNS
    # per memory: 1 replica x 1 method, 2 replicas x 1 method x 2 routings
    assert len(rows) == 2 * (1 + 2)
    for r in rows:
        assert r["error"] == ""
        assert int(r["lower_bound_rounds"]) <= int(r["objective_rounds"])
        assert float(r["bound_mean_latency_s"]) <= float(r["mean_latency_s"])
        assert r["bound_kind"] == "backlog" and r["round_time"] == "vidur-llama2-7b-a100"
    assert (out / "capacity.png").stat().st_size > 10_000
    runs = (out / "runs.jsonl").read_text().splitlines()
    assert len(runs) == 2 * 2 + 2 * 3  # a bound run per (memory, replicas) and the method runs
    # rerun: nothing is solved again; a new round-time model only re-derives the seconds
    assert main([*args[:-3], "--round-time", "unit", "--out", str(out), "-q"]) == 0
    assert (out / "runs.jsonl").read_text().splitlines() == runs
    unit = _rows(out)
    for r in unit:
        assert float(r["mean_latency_s"]) == pytest.approx(float(r["mean_latency_rounds"]))
        assert r["bound_kind"] == "unit"
    meta = json.loads((out / "capacity-meta.json").read_text())
    assert meta["round_time"]["name"] == "unit"


def test_a_memory_below_a_request_s_peak_is_reported_not_fatal(tmp_path: Path) -> None:
    out = tmp_path / "cap"
    assert main([INSTANCE, "--memories", "500,6000", "--methods", "svf", "--time-limit", "1", "--out", str(out), "-q"]) == 0  # fmt: skip
    rows = _rows(out)
    assert rows[0]["error"].startswith("infeasible:") and rows[1]["error"] == ""


def test_the_two_answers() -> None:
    table = [
        {"replicas": 1, "memory": m, "mean_latency_s": v, "bound_mean_latency_s": b}
        for m, v, b in ((1, 9.0, 6.0), (2, 5.0, 4.5), (4, 3.0, 2.5))
    ]
    assert answers(table, 5.0) == [Answer(1, 2, 5.0, 1, 6.0)]
    assert answers(table, 2.0) == [Answer(1, None, None, 4, 2.5)]
