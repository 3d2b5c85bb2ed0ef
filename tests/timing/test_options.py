"""The seconds options of solve.py and simulate.py: parsed, applied, written."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from scheduler_milp.model.instance import load_example
from scheduler_milp.registry import solve
from scheduler_milp.timing.metrics import plan_times
from scheduler_milp.timing.options import add_timing_arguments, model_from_args, timing_section


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_timing_arguments(p)
    return p.parse_args(list(argv))


def test_no_option_no_seconds() -> None:
    assert model_from_args(_args()) is None
    assert model_from_args(_args("--per-request", "x.csv")).is_unit  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="not a preset"):
        model_from_args(_args("--round-time", "nope"))


def test_section_lines_file_and_csv(tmp_path: Path) -> None:
    inst = load_example("toy-wait-arrival")
    plan = solve(inst, "dp").plan
    assert plan is not None
    csv_path = tmp_path / "per.csv"
    args = _args("--round-time", "vidur-llama2-7b-a100", "--round-seconds", "0.05",
                 "--per-request", str(csv_path), "--ttft-target", "1", "--tpot-target", "0.05")  # fmt: skip
    model = model_from_args(args)
    assert model is not None and model.name == "vidur-llama2-7b-a100"
    times = plan_times(inst, plan.start_round, model, args.round_seconds)
    lines, data = timing_section(args, times)
    assert any(line.startswith("TTFT") for line in lines) and any("SLO" in x for x in lines)
    assert data["round_time"]["name"] == model.name
    assert data["e2e"]["mean"] == pytest.approx(times.e2e.mean())
    assert 0.0 <= data["slo"]["attainment"] <= 1.0
    assert len(list(csv.DictReader(csv_path.open()))) == inst.n
