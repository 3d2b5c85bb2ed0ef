"""``scripts/simulate.py``: a run file with the documented fields, the policy list, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIMULATE = ROOT / "scripts" / "simulate.py"
TOY = ROOT / "instances" / "toy" / "toy-3.json"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SIMULATE), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("sim")
    with_predictions = tmp / "pred.json"
    doc = json.loads(TOY.read_text())
    doc["predicted_output"] = {"r0": 2, "r1": 9, "r2": 1}
    with_predictions.write_text(json.dumps(doc))
    jobs = {
        "ok": (
            TOY,
            "--policy",
            "sorted-f-robust",
            "--predictor",
            "lognormal:0.5",
            "--eviction",
            "resume",
            "--seed",
            "3",
            "--output",
            tmp / "run.json",
        ),
        "file": (
            with_predictions,
            "--policy",
            "mcsf",
            "--predictor",
            "file",
            "--output",
            tmp / "file.json",
        ),
        "list": ("--list-policies",),
        "unknown-policy": (TOY, "--policy", "nope"),
        "bad-predictor": (TOY, "--predictor", "lognormal:x"),
        "no-predictions": (TOY, "--predictor", "file"),
        "bad-param": (TOY, "--policy", "sf", "--param", "grow=x"),
        "unknown-param": (TOY, "--policy", "sf", "--param", "nope=1"),
        "missing": (tmp / "nope.json", "--policy", "sf"),
        "bad-output": (TOY, "--output", tmp / "no" / "run.json"),
        "too-large": (
            ROOT / "instances" / "traces" / "conv-n100-M65536.json",
            "--policy",
            "hindsight:dp",
        ),
        "no-instance": ("--policy", "sf"),
        "bad-time": (TOY, "--time-limit", "0"),
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {k: pool.submit(run, *v) for k, v in jobs.items()}
        out = {k: f.result() for k, f in futures.items()}
    out["tmp"] = tmp  # type: ignore[assignment]
    return out


def test_run_file(runs) -> None:
    proc = runs["ok"]
    assert proc.returncode == 0, proc.stderr
    record = json.loads((runs["tmp"] / "run.json").read_text())
    for key in (
        "instance",
        "policy",
        "predictor",
        "eviction",
        "seed",
        "objective",
        "segments",
        "completion",
        "evictions",
        "wasted_rounds",
        "ttft",
        "seconds",
    ):
        assert key in record
    assert (record["policy"], record["predictor"], record["eviction"], record["seed"]) == (
        "sorted-f-robust",
        "lognormal:0.5",
        "resume",
        3,
    )
    assert set(record["segments"]) == {"r0", "r1", "r2"}
    assert "objective" in proc.stdout


def test_predictions_from_the_file(runs) -> None:
    assert runs["file"].returncode == 0, runs["file"].stderr
    record = json.loads((runs["tmp"] / "file.json").read_text())
    assert record["predictor"] == "file"


def test_list_policies(runs) -> None:
    out = runs["list"].stdout
    for name in (
        "vllm",
        "fcfs",
        "mcsf",
        "sf",
        "svf",
        "sorted-f",
        "sorted-f-robust",
        "amax",
        "amin",
        "replan:METHOD",
        "hindsight:METHOD",
    ):
        assert f"  {name} " in out


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("unknown-policy", "unknown policy 'nope'"),
        ("bad-predictor", "not a number"),
        ("no-predictions", "predicted_output"),
        ("bad-param", "grow"),
        ("unknown-param", "unknown parameter 'nope'"),
        ("missing", "no such file"),
        ("bad-output", "no such directory"),
        ("too-large", "declines 100 requests"),
        ("no-instance", "instance file is required"),
        ("bad-time", "--time-limit"),
    ],
)
def test_bad_input_is_one_line(runs, case: str, fragment: str) -> None:
    proc = runs[case]
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith(("usage:", " "))]
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0]


def test_on_the_clock_the_run_file_has_the_admissions(tmp_path: Path) -> None:
    """``--round-time`` with arrivals in seconds: requests admitted on the model's clock (later
    than their arrival rounds when busy rounds last longer than a round), recorded in the run
    file; ``--arrivals-by rounds`` keeps the arrival rounds."""
    requests = [{"id": f"q{i}", "prompt": 40 + 7 * i, "output": 30 + 5 * i} for i in range(12)]
    seconds = {f"q{i}": 0.05 * i for i in range(12)}
    inst = {"name": "clock", "memory": 600, "requests": requests, "arrival_s": seconds,
            "round_seconds": 0.05}  # fmt: skip
    for i, r in enumerate(requests):
        r["arrival"] = i
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(inst))
    admitted = {}
    for mode in ("clock", "rounds"):
        out = tmp_path / f"run-{mode}.json"
        res = run(path, "--policy", "fcfs", "--round-time", "c0=0.02,c_kv=0.0001",
                  "--arrivals-by", mode, "--output", out)  # fmt: skip
        assert res.returncode == 0, res.stderr
        record = json.loads(out.read_text())
        assert "TTFT" in res.stdout and record["timing"]["round_time"]["name"]
        admitted[mode] = record.get("admitted")
    assert admitted["rounds"] is None
    clock = admitted["clock"]
    assert all(clock[f"q{i}"] >= 0 for i in range(12))
    assert any(clock[f"q{i}"] != i for i in range(12))  # the clock moved admissions
