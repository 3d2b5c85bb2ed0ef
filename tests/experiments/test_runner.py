"""Experiment runner: resumable, kill-safe and Ctrl-C-safe sweeps, failures recorded, derived columns, Ray = local."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from scheduler_milp.experiments.grid import RunSpec, expand_instances, file_hash, make_grid
from scheduler_milp.experiments.report import auto_benchmark_markdown
from scheduler_milp.experiments.results import (
    TIMING_COLUMNS,
    derive_results,
    rebuild_results,
    summarize,
    summary_table,
)
from scheduler_milp.experiments.run import load_plugins, run_one
from scheduler_milp.experiments.store import RAW_FILE, RESULTS_FILE, RunLog, read_runs
from scheduler_milp.experiments.sweep import Progress, run_sweep
from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.registry import METHODS, solve

TEST_METHODS = ("t-slow", "t-raise", "t-hang", "t-crash")
ROOT = Path(__file__).resolve().parents[2]
COMPARE = ROOT / "scripts" / "compare.py"

# Test-only methods, loaded into the workers through the runner's plugin hook.
PLUGIN = textwrap.dedent(
    """
    import dataclasses
    import os
    import time
    from pathlib import Path

    from scheduler_milp.model.params import MethodParams
    from scheduler_milp.registry import METHODS, register, solve


    @dataclasses.dataclass(frozen=True)
    class SlowParams(MethodParams):
        sleep: float = 0.25
        gate: str = ""  # a folder: the first `free` runs pass, the others wait for its file `open`
        free: int = 0


    def _pass_gate(gate, free):
        for k in range(free):
            try:
                os.close(os.open(gate / f"token-{k}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return
            except FileExistsError:
                continue
        deadline = time.monotonic() + 600
        while not (gate / "open").exists() and time.monotonic() < deadline:
            time.sleep(0.01)


    def slow_sf(instance, options):
        params = SlowParams.of(options)
        if params.gate:
            _pass_gate(Path(params.gate), params.free)
        else:
            time.sleep(params.sleep)
        result = solve(instance, "sf", dataclasses.replace(options, params={}))
        result.method = "t-slow"
        return result


    def raising(instance, options):
        raise RuntimeError("boom on purpose")


    def hanging(instance, options):
        time.sleep(3600)  # ignores its time limit: only the hard timeout stops it


    def crashing(instance, options):
        os._exit(7)  # the worker process dies without a word


    for name, fn in (("t-slow", "slow_sf"), ("t-raise", "raising"), ("t-hang", "hanging"), ("t-crash", "crashing")):
        if name not in METHODS:
            register(name, "test", f"{__name__}:{fn}", "test method", params="SlowParams" if name == "t-slow" else None)
    """
)


def _write_instances(folder: Path, count: int, n: int = 7) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        rng = np.random.default_rng(100 + k)
        inst = Instance.create(24, rng.integers(1, 9, n), rng.integers(1, 9, n), name=f"rand-{k}")
        path = folder / f"rand-{k}.json"
        inst.save(path)
        paths.append(str(path))
    return paths


@pytest.fixture()
def plugin(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "runner_test_methods.py"
    path.write_text(PLUGIN)
    load_plugins([str(path)])
    yield str(path)
    # other test modules iterate over the registry: take the test methods out again
    for name in TEST_METHODS:
        METHODS.pop(name, None)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_expand_instances_finds_json_recursively(tmp_path: Path) -> None:
    _write_instances(tmp_path / "a", 2)
    _write_instances(tmp_path / "a" / "deeper", 1)
    (tmp_path / "a" / "notes.txt").write_text("not an instance")
    found = expand_instances([tmp_path / "a"])
    assert len(found) == 3 and all(f.endswith(".json") for f in found)
    with pytest.raises(FileNotFoundError):
        expand_instances([tmp_path / "missing"])


def test_sweep_table_matches_direct_solves_and_resumes(tmp_path: Path) -> None:
    paths = _write_instances(tmp_path / "inst", 3)
    grid = make_grid(paths, ["fcfs", "sf", "svf"], seeds=[0, 1], time_limit=10)
    out = tmp_path / "out"
    report = run_sweep(grid, out, jobs=2, progress=False)
    assert (report.total, report.skipped, report.ran) == (18, 0, 18)
    rows = _csv_rows(out / RESULTS_FILE)
    assert len(rows) == 18 and len({r["key"] for r in rows}) == 18
    for r in rows:
        inst = load_instance(r["instance_path"])
        direct = solve(inst, r["method"])
        assert int(r["objective"]) == direct.objective
        assert int(r["n"]) == inst.n and int(r["memory"]) == inst.memory_budget
        assert r["error"] == ""
        assert r["git_rev"] and "numpy=" in r["versions"]
    # gap is against the best bound of the instance, pooled over every method's runs
    for path in paths:
        mine = [r for r in rows if r["instance_path"] == os.path.normpath(path)]
        best = max(int(r["lower_bound"]) for r in mine)
        best_obj = min(int(r["objective"]) for r in mine)
        for r in mine:
            assert int(r["best_bound"]) == best
            assert float(r["gap"]) == pytest.approx(
                (int(r["objective"]) - best) / int(r["objective"])
            )
            assert (r["win"] == "True") == (int(r["objective"]) == best_obj)
    # rerun: nothing to do, the raw file is unchanged
    raw_before = (out / RAW_FILE).read_bytes()
    again = run_sweep(grid, out, jobs=2, progress=False)
    assert (again.skipped, again.ran) == (18, 0)
    assert (out / RAW_FILE).read_bytes() == raw_before
    # a larger grid reuses the finished runs and adds only the new ones
    bigger = make_grid(paths, ["fcfs", "sf", "svf", "mcsf"], seeds=[0, 1], time_limit=10)
    third = run_sweep(bigger, out, jobs=1, progress=False)
    assert (third.skipped, third.ran) == (18, 6)
    assert (out / RAW_FILE).read_bytes().startswith(raw_before)
    assert "mcsf" in third.summary and "gap mean %" in third.summary


def test_recorded_and_proven_optimum_fill_optimum_columns(tmp_path: Path) -> None:
    folder = tmp_path / "inst"
    folder.mkdir()
    inst = Instance.create(24, [5, 2, 9], [3, 7, 1], [0, 2, 0], name="toy3")
    opt = solve(inst, "dp")
    assert opt.status.value == "optimal"
    data = inst.to_dict()
    data["optimum"] = {"value": opt.objective, "proven_by": ["test"]}
    (folder / "toy3.json").write_text(json.dumps(data))
    plain = _write_instances(folder, 1)
    grid = make_grid([str(folder / "toy3.json"), *plain], ["fcfs", "dp"], time_limit=10)
    report = run_sweep(grid, tmp_path / "out", jobs=1, progress=False)
    for r in report.rows:
        assert r["optimum"] is not None  # recorded for toy3, proven by dp for the other
        assert r["gap_to_optimum"] == pytest.approx(
            (r["objective"] - r["optimum"]) / r["objective"]
        )
        if r["method"] == "dp":
            assert r["gap_to_optimum"] == 0 and r["status"] == "optimal"
    toy = [r for r in report.rows if r["instance"] == "toy3"]
    assert all(r["optimum"] == opt.objective and r["best_bound"] == opt.objective for r in toy)


def test_failures_are_recorded_and_do_not_stop_the_sweep(tmp_path: Path, plugin: str) -> None:
    paths = _write_instances(tmp_path / "inst", 2)
    grid = make_grid(paths, ["t-raise", "t-hang", "t-crash", "sf"], time_limit=0.5)
    report = run_sweep(
        grid,
        tmp_path / "out",
        jobs=2,
        progress=False,
        timeout_factor=1.0,
        timeout_slack=1.0,
        plugins=[plugin],
    )
    by_method: dict[str, list[dict[str, object]]] = {}
    for r in report.rows:
        by_method.setdefault(str(r["method"]), []).append(r)
    assert all("boom on purpose" in str(r["error"]) for r in by_method["t-raise"])
    assert all(
        "hard timeout" in str(r["error"]) and r["stop_reason"] == "time_limit"
        for r in by_method["t-hang"]
    )
    # killed at the hard timeout (1.5 s), not waited for: t-hang sleeps an hour
    assert all(float(str(r["wall_seconds"])) < 600 for r in by_method["t-hang"])
    assert all("worker died" in str(r["error"]) for r in by_method["t-crash"])
    assert all(r["error"] == "" and r["objective"] is not None for r in by_method["sf"])
    assert "errors" in summarize(report.rows)
    # errored runs count as finished unless asked to retry them
    again = run_sweep(grid, tmp_path / "out", jobs=2, progress=False, plugins=[plugin])
    assert again.ran == 0


def test_runlog_repairs_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / RAW_FILE
    log = RunLog(path)
    log.append({"key": "a", "instance_hash": "h", "method": "m", "seed": 0})
    log.close()
    with open(path, "ab") as fh:
        fh.write(b'{"key": "b", "instance_ha')  # a write cut short by a kill
    assert [r["key"] for r in read_runs(path)] == ["a"]
    log = RunLog(path)
    log.append({"key": "c", "instance_hash": "h", "method": "m", "seed": 0})
    log.close()
    assert [r["key"] for r in read_runs(path)] == ["a", "c"]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def _launch(args: list[str]) -> subprocess.Popen[bytes]:
    """``compare.py`` in its own process group, with Ctrl-C handled as in a terminal (a shell
    that runs the tests in the background hands its children SIGINT ignored)."""
    return subprocess.Popen(
        [sys.executable, str(COMPARE), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _raw_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def test_sigkill_midway_then_rerun_completes_without_loss_or_duplicates(
    tmp_path: Path, plugin: str
) -> None:
    inst_dir = tmp_path / "inst"
    _write_instances(inst_dir, 4)
    out = tmp_path / "out"
    gate = tmp_path / "gate"  # five t-slow runs pass, the others wait until it opens
    gate.mkdir()
    args = [str(inst_dir), "--methods", "t-slow,sf", "--seeds", "3", "--time-limit", "10", "--out", str(out),
            "--jobs", "2", "--plugin", plugin, "--param", f"gate={gate}", "--param", "free=5",
            "--no-progress"]  # fmt: skip
    total = 4 * 2 * 3
    proc = _launch(args)
    raw = out / RAW_FILE
    deadline = time.monotonic() + 60
    while len(_raw_lines(raw)) < 5 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the runner only: its workers must notice and go
    proc.wait(timeout=30)
    (gate / "open").touch()
    finished_before = _raw_lines(raw)
    assert 5 <= len(finished_before) < total, "the kill should land midway"
    assert not (out / RESULTS_FILE).exists() or len(_csv_rows(out / RESULTS_FILE)) < total

    rerun = _launch(args)
    stdout, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr.decode()
    complete_before = [line for line in finished_before if line.endswith(b"\n")]
    assert f"({len(complete_before)} already done" in stdout.decode()
    after = _raw_lines(raw)
    # no finished run lost: the old complete lines are still there, byte for byte, in front
    assert after[: len(complete_before)] == complete_before
    keys = [json.loads(line)["key"] for line in after]
    assert len(keys) == len(set(keys)) == total  # nothing run twice, nothing missing
    rows = _csv_rows(out / RESULTS_FILE)
    assert len(rows) == total and len({r["key"] for r in rows}) == total
    assert all(r["error"] == "" and r["objective"] for r in rows)
    # the derived table is a function of the raw file alone
    assert len(rebuild_results(out)) == total


def test_ctrl_c_keeps_finished_runs_writes_their_table_and_exits_130(
    tmp_path: Path, plugin: str
) -> None:
    inst_dir = tmp_path / "inst"
    _write_instances(inst_dir, 4)
    out = tmp_path / "out"
    gate = tmp_path / "gate"  # one run passes, the others wait until it opens (after the Ctrl-C)
    gate.mkdir()
    args = [str(inst_dir), "--methods", "t-slow", "--seeds", "5", "--time-limit", "30", "--out", str(out),
            "--jobs", "2", "--plugin", plugin, "--param", f"gate={gate}", "--param", "free=1",
            "--no-progress"]  # fmt: skip
    total = 4 * 5
    proc = _launch(args)
    raw = out / RAW_FILE
    deadline = time.monotonic() + 120
    while (
        not any(line.endswith(b"\n") for line in _raw_lines(raw))
        and proc.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)  # polling for the first recorded run
    assert proc.poll() is None, "the sweep should still be running when the first run is recorded"
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C: the whole process group, workers included
    (gate / "open").touch()  # the runs in flight may end now: the sweep has stopped taking rows
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr.decode()
    lines = stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("compare.py: interrupted"), lines
    finished = [json.loads(line)["key"] for line in _raw_lines(raw)]
    assert 1 <= len(finished) < total, "the interrupt should land midway"
    rows = _csv_rows(out / RESULTS_FILE)
    assert sorted(r["key"] for r in rows) == sorted(finished)
    assert all(r["error"] == "" and r["objective"] for r in rows)
    assert f"{len(finished)} of {total} runs finished" in lines[0]


def test_progress_line_counts_and_estimates() -> None:
    import io

    stream = io.StringIO()
    bar = Progress(10, already_done=4, stream=stream)
    assert "4/10 runs" in bar.line() and "left ?" in bar.line()
    bar.started -= 6.0  # six seconds for three new runs: two seconds each, three runs left
    bar.update(7)
    assert "7/10 runs" in stream.getvalue() or "7/10 runs" in bar.line()
    assert "left ~0:00:06" in bar.line()
    bar.update(10)
    assert "left done" in stream.getvalue()


def test_derive_flags_a_bound_above_a_plan() -> None:
    base = {"instance_path": "x.json", "seed": 0, "status": "feasible", "recorded_optimum": None}
    raw = [
        {
            **base,
            "key": "1",
            "instance_hash": "h",
            "method": "a",
            "objective": 10,
            "lower_bound": 12,
        },
        {
            **base,
            "key": "2",
            "instance_hash": "h",
            "method": "b",
            "objective": 14,
            "lower_bound": 5,
        },
    ]
    rows = derive_results(raw)
    assert all("above a valid plan" in r["conflict"] for r in rows)


def test_ray_backend_gives_the_local_table(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    paths = _write_instances(tmp_path / "inst", 2)
    grid = make_grid(paths, ["fcfs", "sf", "svf"], seeds=[0, 1], time_limit=10)
    local = run_sweep(grid, tmp_path / "local", jobs=2, progress=False)
    remote = run_sweep(grid, tmp_path / "ray", jobs=1, backend="ray", progress=False)
    skip = set(TIMING_COLUMNS)

    def table(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{k: v for k, v in r.items() if k not in skip} for r in rows]

    assert len(local.rows) == 12
    assert table(remote.rows) == table(local.rows)
    assert (
        _csv_rows(tmp_path / "ray" / RESULTS_FILE)[0].keys()
        == _csv_rows(tmp_path / "local" / RESULTS_FILE)[0].keys()
    )


def test_run_experiments_quick_writes_tables_and_figures(tmp_path: Path) -> None:
    out, work = tmp_path / "docs", tmp_path / "work"
    cmd = [sys.executable, str(ROOT / "scripts" / "run_experiments.py"), "--quick", "--methods", "fcfs,sf,dp",
           "--out", str(out), "--work", str(work), "--no-progress"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    text = (out / "experiments.md").read_text()
    assert "python scripts/run_experiments.py --out docs" in text
    assert (
        "Optimum proven on **2 of 2** instances" in text
    )  # dp solves the tiny scaled-down backlogs
    for fig in (
        "experiments-gaps-small.png",
        "experiments-gaps-full.png",
        "experiments-plan-full.png",
    ):
        assert (out / "figures" / fig).stat().st_size > 1000 and f"figures/{fig}" in text
    small = _csv_rows(out / "figures" / "experiments-small.csv")
    assert {r["method"] for r in small} == {"fcfs", "sf", "dp"}
    assert all(r["optimum"] and float(r["gap_to_optimum"]) >= 0 for r in small)
    full = _csv_rows(out / "figures" / "experiments-full.csv")
    assert {r["method"] for r in full} == {"fcfs", "sf"}  # dp is beyond its size limit there


def test_a_model_too_large_is_recorded_as_declined_not_as_an_error(tmp_path: Path) -> None:
    """``lp`` checks its model's size before building it, the registry declines ``dp`` beyond its
    ``max_n``; the runner counts both as declined."""
    big = ROOT / "instances" / "traces" / "mix-conv70-arxiv30-n100-M65536.json"
    rows = [
        run_one(RunSpec(str(big), file_hash(big), method, time_limit=30)) for method in ("lp", "dp")
    ]
    for row in rows:
        assert row["stop_reason"] == "too_large", row
        assert row["error"].startswith("declined: ModelTooLarge: ")
    assert "too large" in rows[0]["error"] and "n <= 12" in rows[1]["error"]
    table = {t["method"]: t for t in summary_table(derive_results(rows))}
    assert all(table[m]["declined"] == 1 and table[m]["errors"] == 0 for m in ("lp", "dp"))


def test_an_unknown_parameter_is_an_error_row(tmp_path: Path, plugin: str) -> None:
    path = _write_instances(tmp_path / "inst", 1)[0]
    row = run_one(RunSpec(path, file_hash(path), "t-slow", time_limit=5, params=(("nap", 1),)))
    assert row["stop_reason"] == "error" and row.get("objective") is None
    assert (
        row["error"].startswith("ParameterError: ")
        and "'nap'" in row["error"]
        and "sleep" in row["error"]
    )
    table = {t["method"]: t for t in summary_table(derive_results([row]))}
    assert table["t-slow"]["errors"] == 1 and table["t-slow"]["declined"] == 0


def test_auto_benchmark_tables_keep_seed_0_apart_and_give_the_median(tmp_path: Path) -> None:
    """The report's main table is seed 0 (also records without a ``seed`` field); other seeds
    only enter the spread table, with the median of the latest record per seed."""
    base = {"instance": "mixA", "n": 10, "memory": 64, "time_limit": 5.0, "lower_bound": 90, "plan_source": "svf",
            "bound_source": "busy-time", "gap_over_time": {"5": 0.1}}  # fmt: skip
    records = [
        {**base, "objective": 100, "gap": 0.10},  # no seed field: seed 0
        {**base, "objective": 95, "gap": 0.05, "seed": 1},
        {**base, "objective": 200, "gap": 0.55, "seed": 2},
        {**base, "objective": 97, "gap": 0.07, "seed": 2},  # the latest of seed 2 counts
        {
            **base,
            "instance": "bwbB",
            "objective": 120,
            "gap": 0.25,
        },  # one seed only: main table only
    ]
    path = tmp_path / "auto.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    text = auto_benchmark_markdown(path)
    main, spread = text.split("Spread over seeds")
    assert "| mixA | 10 | 64 | 5 s | 100 | 90 | 10.00 |" in main and "| 95 |" not in main
    assert "| mixA | 5 s | 10.00 | 5.00 | 7.00 | 7.00 |" in spread
    assert "| bwbB | 10 | 64 | 5 s | 120 | 90 | 25.00 |" in main and "bwbB" not in spread
    path.write_text(json.dumps(records[0]) + "\n")
    assert "Spread over seeds" not in auto_benchmark_markdown(path)
