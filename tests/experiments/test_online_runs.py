"""Online runs in the runner: keys, resumable sweeps, rows equal to a direct ``simulate``, the
reference columns, error rows, ``compare.py --policies`` and the price-of-uncertainty grid."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from scheduler_milp.commands.compare import main as compare_main
from scheduler_milp.experiments.grid import RunSpec, file_hash, make_grid, make_online_grid
from scheduler_milp.experiments.online import (
    PriceSetting,
    build_groups,
    price_figure,
    price_grid,
    price_rows,
    price_tables,
    run_price,
)
from scheduler_milp.experiments.results import (
    ONLINE_COLUMNS,
    RESULT_COLUMNS,
    TIMING_COLUMNS,
    derive_results,
    result_columns,
)
from scheduler_milp.experiments.run import run_one
from scheduler_milp.experiments.store import RAW_FILE, RESULTS_FILE, read_runs
from scheduler_milp.experiments.sweep import run_sweep
from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.model.params import ParameterError
from scheduler_milp.online.predictors import PredictionError
from scheduler_milp.online.run import simulate
from scheduler_milp.registry import solve

ROOT = Path(__file__).resolve().parents[2]


def _tiny(folder: Path, count: int = 2, n: int = 7) -> list[str]:
    """Tiny instances with arrivals and tight memory (noisy predictions cause evictions)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        rng = np.random.default_rng(200 + k)
        inst = Instance.create(
            18, rng.integers(1, 9, n), rng.integers(1, 9, n), rng.integers(0, 4, n), name=f"t{k}"
        )
        path = folder / f"t{k}.json"
        inst.save(path)
        paths.append(str(path))
    return paths


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_online_keys_name_policy_predictor_eviction_and_offline_keys_stay(tmp_path: Path) -> None:
    path = _tiny(tmp_path)[0]
    digest = file_hash(path)
    offline = make_grid([path], ["sf"], [0], 10)[0]
    assert offline.key == f"{digest}|{path}|sf|seed=0|tl=10|{{}}"
    assert not offline.online and offline.hard_timeout() == 50
    grid = make_online_grid([path], ["svf", "replan:svf"], ["exact", "lognormal:0.5"],
                            ["restart", "resume"], [0, 1], params={"window": "4"})  # fmt: skip
    assert len(grid) == 16 and len({s.key for s in grid}) == 16
    spec = next(s for s in grid if s.method == "replan:svf" and s.predictor == "lognormal:0.5")
    assert spec.online and spec.hard_timeout() is None
    assert spec.params == (("window", 4),)  # typed by the policy's parameter class
    assert spec.key == (
        f"{digest}|{path}|online:replan:svf|lognormal:0.5|{spec.eviction}|seed={spec.seed}"
        '|tl=None|{"window": 4}'
    )
    assert all(s.params == () for s in grid if s.method == "svf")
    # a clairvoyant plan runs once per instance and seed, whatever the predictors and modes
    hind = make_online_grid([path], ["hindsight:svf"], ["lognormal:1", "constant"], ["resume"])
    assert [(s.predictor, s.eviction) for s in hind] == [("exact", "restart")]


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"policies": ["nope"]}, ParameterError, "unknown policy 'nope'"),
        ({"policies": ["replan:nope"]}, ParameterError, "unknown method 'nope'"),
        ({"predictors": ["lognormal"]}, PredictionError, "needs a parameter"),
        ({"evictions": ["never"]}, ParameterError, "unknown eviction mode(s) 'never'"),
        ({"params": {"nap": 1}}, ParameterError, "takes the parameter 'nap'"),
        ({"params": {"window": "x"}}, ParameterError, "window"),
    ],
)
def test_make_online_grid_refuses_bad_names_before_any_run(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception], text: str
) -> None:
    args: dict[str, object] = {
        "instance_paths": _tiny(tmp_path, 1),
        "policies": ["replan:svf"],
        "predictors": ["exact"],
        "evictions": ["restart"],
    }
    args.update(kwargs)
    with pytest.raises(error) as info:
        make_online_grid(**args)  # type: ignore[arg-type]
    assert text in str(info.value)


def test_online_sweep_matches_direct_simulate_and_resumes(tmp_path: Path) -> None:
    paths = _tiny(tmp_path / "inst")
    grid = make_online_grid(paths, ["svf", "vllm"], ["exact", "lognormal:0.5"],
                            ["restart", "resume"])  # fmt: skip
    out = tmp_path / "out"
    report = run_sweep(grid, out, jobs=2, progress=False)
    assert (report.total, report.skipped, report.ran) == (16, 0, 16)
    rows = _csv(out / RESULTS_FILE)
    assert list(rows[0]) == list(result_columns(report.rows))
    assert set(ONLINE_COLUMNS) <= set(rows[0])
    assert len({r["key"] for r in rows}) == 16
    evicted = 0
    for r in rows:
        assert r["error"] == "" and r["kind"] == "online" and r["status"] == "executed"
        direct = simulate(load_instance(r["instance_path"]), r["policy"], r["predictor"],
                          r["eviction"], seed=int(r["seed"]))  # fmt: skip
        assert int(r["objective"]) == direct.objective
        assert int(r["evictions"]) == direct.evictions
        assert int(r["wasted_rounds"]) == direct.wasted_rounds
        assert float(r["ttft_p99"]) == pytest.approx(direct.ttft_summary()["p99"])
        assert int(r["peak_memory"]) == direct.peak_memory <= int(r["memory"])
        assert r["gap"] == ""  # an execution is not a plan: no gap, and no references here
        assert r["ratio_hindsight"] == r["ratio_bound"] == ""
        evicted += int(r["evictions"])
    assert evicted > 0  # the noisy predictions did cause evictions
    # the raw record has the policy's counters and the run's seconds
    raw = read_runs(out / RAW_FILE)
    assert all(isinstance(r["policy_stats"], dict) and r["solve_seconds"] >= 0 for r in raw)
    # rerun: nothing to do, the raw file unchanged; a larger grid adds only the new runs
    before = (out / RAW_FILE).read_bytes()
    again = run_sweep(grid, out, jobs=2, progress=False)
    assert (again.skipped, again.ran) == (16, 0)
    assert (out / RAW_FILE).read_bytes() == before
    bigger = grid + make_online_grid(paths, ["mcsf"], ["exact"], ["restart"])
    third = run_sweep(bigger, out, jobs=1, progress=False)
    assert (third.skipped, third.ran) == (16, 2)
    assert "ratio to hindsight" in third.summary and "gap mean %" not in third.summary


def test_reference_columns_pool_offline_and_hindsight_runs(tmp_path: Path) -> None:
    paths = _tiny(tmp_path / "inst")
    grid = make_grid(paths, ["dp", "sf"], [0], 30) + make_online_grid(
        paths, ["svf", "hindsight:sf"], ["lognormal:1"], ["restart", "resume"]
    )
    report = run_sweep(grid, tmp_path / "out", jobs=2, progress=False)
    rows = report.rows
    assert all(not r["error"] for r in rows)
    for path in paths:
        mine = [r for r in rows if r["instance_path"] == path]
        optimum = solve(load_instance(path), "dp").objective
        for r in mine:
            assert r["optimum"] == optimum and r["hindsight"] == optimum
            assert r["ratio_hindsight"] == pytest.approx(r["objective"] / optimum)
            assert r["ratio_bound"] == pytest.approx(r["objective"] / r["best_bound"])
        hind = next(r for r in mine if r["method"] == "hindsight:sf")
        offline_sf = next(r for r in mine if r["method"] == "sf" and not r.get("policy"))
        assert hind["objective"] == offline_sf["objective"]  # the clairvoyant plan is sf's
        assert hind["gap"] is not None  # a hindsight run is a plan
        restart = next(r for r in mine if r["method"] == "svf" and r["eviction"] == "restart")
        assert restart["ratio_hindsight"] >= 1.0  # no restart execution beats the optimum
    # the offline columns of the offline rows are those of a sweep without online runs
    raw = read_runs(tmp_path / "out" / RAW_FILE)
    alone = derive_results([r for r in raw if not r.get("policy")])
    assert result_columns(alone) == RESULT_COLUMNS and len(alone) == 4
    for a in alone:
        b = next(r for r in rows if r["key"] == a["key"])
        assert {k: b[k] for k in RESULT_COLUMNS} == a


def test_a_rejected_execution_is_the_run_error(tmp_path: Path, monkeypatch) -> None:
    import scheduler_milp.online.executor as executor

    path = _tiny(tmp_path)[0]
    spec = RunSpec(path, file_hash(path), "svf", predictor="exact", eviction="restart")
    assert run_one(spec)["error"] == ""
    monkeypatch.setattr(executor, "check_execution", lambda *a, **k: ["memory 99 > 18 in round 3"])
    row = run_one(spec)
    assert row["error"].startswith("ExecutionError: invalid execution: memory 99 > 18")
    assert row.get("objective") is None and row["policy"] == "svf"
    bad = run_one(RunSpec(path, file_hash(path), "svf", params=(("nap", 1),), predictor="exact",
                          eviction="restart"))  # fmt: skip
    assert bad["error"].startswith("ParameterError: ") and "'nap'" in bad["error"]


def test_compare_runs_policies_next_to_methods(tmp_path: Path, capsys) -> None:
    paths = _tiny(tmp_path / "inst")
    out = tmp_path / "out"
    argv = [*paths, "--methods", "sf", "--policies", "sf,hindsight:svf", "--predictors",
            "exact,interval:2", "--eviction", "restart,resume", "--out", str(out), "--jobs", "2",
            "--no-progress"]  # fmt: skip
    assert compare_main(argv) == 0
    text = capsys.readouterr().out
    assert "12 runs (0 already done, 12 run now)" in text and "ratio to hindsight" in text
    rows = _csv(out / RESULTS_FILE)
    online = [r for r in rows if r["policy"]]
    assert len(online) == 10 and {r["eviction"] for r in online} == {"restart", "resume"}
    exact = [r for r in online if r["policy"] == "sf" and r["predictor"] == "exact"]
    offline = {r["instance_path"]: r for r in rows if not r["policy"]}
    for r in exact:  # with exact predictions the online sf is the offline sf
        assert r["objective"] == offline[r["instance_path"]]["objective"]
    assert compare_main(argv) == 0
    assert "12 runs (12 already done, 0 run now)" in capsys.readouterr().out
    assert compare_main([*paths, "--policies", "sf", "--param", "nap=1", "--out", str(out)]) == 2
    assert "no method or policy of the grid takes the parameter 'nap'" in capsys.readouterr().err


def test_price_grid_runs_and_gives_its_tables(tmp_path: Path) -> None:
    optima = sorted(str(p) for p in (ROOT / "instances" / "optima").glob("rand-n6-*.json"))
    setting = PriceSetting(sections="a", optima_seeds=(0,))
    groups, report = run_price(tmp_path / "work", setting, optima, jobs=2, progress=False)
    assert [g.label for g in groups] == ["optima"]
    assert report.total == 2 * 8 * 10 * 2 and not any(r["error"] for r in report.rows)
    recorded = {
        r["instance_path"]: json.loads(Path(r["instance_path"]).read_text())["optimum"]["value"]
        for r in report.rows
    }
    for r in report.rows:
        assert r["ratio_bound"] == pytest.approx(r["objective"] / recorded[r["instance_path"]])
    text = price_tables(report.rows, groups)
    assert "### (a) 2 scaled-down backlogs (n = 6..6)" in text
    assert "**restart**" in text and "**resume**" in text and "| `amin` |" in text
    # the same tables from the run log alone; the figure needs (b) runs
    again = price_rows(tmp_path / "work", build_groups(tmp_path / "work", setting, optima), setting)
    assert price_tables(again, groups) == text
    assert not price_figure(again, groups, tmp_path / "fig.png")
    assert len(price_grid(groups, setting)) == report.total


def test_ray_backend_gives_the_local_online_table(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    paths = _tiny(tmp_path / "inst")
    grid = make_online_grid(paths, ["sorted-f-robust", "amin"], ["interval:2"],
                            ["restart", "resume"])  # fmt: skip
    local = run_sweep(grid, tmp_path / "local", jobs=2, progress=False)
    remote = run_sweep(grid, tmp_path / "ray", jobs=1, backend="ray", progress=False)
    skip = set(TIMING_COLUMNS)

    def table(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{k: v for k, v in r.items() if k not in skip} for r in rows]

    assert len(local.rows) == 8 and table(remote.rows) == table(local.rows)
