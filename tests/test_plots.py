"""Figures: plan Gantt + memory panel (small and large plans), gap distributions, plot_plan.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.plots import LABEL_LIMIT, plot_gaps, plot_plan
from scheduler_milp.registry import solve

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _random_instance(n: int, seed: int, memory: int = 400, arrivals: bool = False) -> Instance:
    rng = np.random.default_rng(seed)
    prompt = rng.integers(1, 60, n)
    output = rng.integers(1, 40, n)
    arrival = rng.integers(0, 30, n) if arrivals else None
    return Instance.create(memory, prompt, output, arrival, name=f"rand-{n}")


def _memory_patch(ax: object) -> np.ndarray:
    from matplotlib.patches import StepPatch

    patches = [p for p in ax.patches if isinstance(p, StepPatch)]  # type: ignore[attr-defined]
    assert patches, "the memory panel draws the memory per round as a step patch"
    return np.asarray(patches[0].get_data().values)


def test_small_plan_figure_has_labels_and_the_true_memory(tmp_path: Path) -> None:
    inst = _random_instance(20, 1, arrivals=True)
    plan = solve(inst, "sf").plan
    assert plan is not None
    fig = plot_plan(plan, tmp_path / "small.png", method="sf")
    assert (tmp_path / "small.png").read_bytes()[:8] == PNG_MAGIC
    gantt, memory = fig.axes[0], fig.axes[1]
    labels = [t.get_text() for t in gantt.get_yticklabels()]
    assert len(labels) == 20 and all(any(rid in lab for lab in labels) for rid in inst.ids)
    # rows are sorted by start: the first label is a request that starts first
    first = min(range(inst.n), key=lambda i: (plan.start_round[i], i))
    assert labels[0].startswith(inst.ids[first] + " ")
    np.testing.assert_array_equal(_memory_patch(memory), plan.memory_per_round)
    budget_lines = [
        line for line in memory.get_lines() if np.allclose(line.get_ydata(), inst.memory_budget)
    ]
    assert budget_lines, "the budget M is drawn"
    assert "sf" in gantt.get_title() and str(plan.total_latency) in gantt.get_title()


def test_large_plan_figure_uses_few_artists(tmp_path: Path) -> None:
    inst = _random_instance(2000, 2, memory=2000)
    plan = solve(inst, "sf").plan
    assert plan is not None
    fig = plot_plan(plan, tmp_path / "large.png")
    assert (tmp_path / "large.png").stat().st_size > 10_000
    gantt = fig.axes[0]
    # one collection for runs (plus at most one for waits), not thousands of bars or labels
    assert len(gantt.collections) <= 2 and len(gantt.patches) == 0
    assert len(gantt.texts) == 0 and len(gantt.get_yticklabels()) <= LABEL_LIMIT
    segments = sum(len(c.get_segments()) for c in gantt.collections)
    assert segments >= inst.n


def test_gap_plot_from_results_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for method, scale in (("good", 0.01), ("bad", 0.3)):
        for k in range(15):
            rows.append(
                {
                    "method": method,
                    "instance": f"i{k}",
                    "gap": float(rng.uniform(0, scale)),
                    "gap_to_optimum": None,
                }
            )
    rows.append({"method": "good", "instance": "i99", "gap": 0.0, "gap_to_optimum": 0.0})
    csv_path = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(csv_path, index=False)
    fig = plot_gaps(csv_path, tmp_path / "gaps.png")
    assert (tmp_path / "gaps.png").read_bytes()[:8] == PNG_MAGIC
    box_ax = fig.axes[0]
    names = [t.get_text() for t in box_ax.get_yticklabels()]
    assert names[0].startswith("good") and names[1].startswith("bad")  # sorted by mean gap
    # gap_to_optimum with a single value still draws
    plot_gaps(csv_path, tmp_path / "opt.png", column="gap_to_optimum")
    assert (tmp_path / "opt.png").exists()


def test_plot_plan_script_draws_a_solved_plan_and_rejects_a_wrong_one(tmp_path: Path) -> None:
    inst = _random_instance(12, 3, memory=150)  # twelve requests at once cannot fit
    inst_path = tmp_path / "inst.json"
    inst.save(inst_path)
    plan_path = tmp_path / "plan.json"
    solve(inst, "svf").write(str(plan_path))
    script = str(ROOT / "scripts" / "plot_plan.py")
    ok = subprocess.run(
        [sys.executable, script, str(plan_path), str(inst_path), "--out", str(tmp_path / "p.png")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_MAGIC
    data = json.loads(plan_path.read_text())
    data["starts"] = {rid: 0 for rid in data["starts"]}  # everything at once overflows M
    bad_path = tmp_path / "bad.json"
    bad_path.write_text(json.dumps(data))
    bad = subprocess.run(
        [sys.executable, script, str(bad_path), str(inst_path), "--out", str(tmp_path / "q.png")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "q.png").exists()


def test_plot_plan_script_reads_a_csv_instance_with_its_memory(tmp_path: Path) -> None:
    """A plan of a CSV backlog is drawn with the same ``--memory`` as it was solved with."""
    csv_path = tmp_path / "req.csv"
    csv_path.write_text("prompt,output,id\n100,20,a\n300,50,b\n50,400,c\n")
    plan_path = tmp_path / "plan.json"
    solve(load_instance(csv_path, memory=600), "svf").write(str(plan_path))
    script = str(ROOT / "scripts" / "plot_plan.py")
    ok = subprocess.run(
        [
            sys.executable,
            script,
            str(plan_path),
            str(csv_path),
            "--memory",
            "600",
            "--out",
            str(tmp_path / "p.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_MAGIC
    missing = subprocess.run(
        [sys.executable, script, str(plan_path), str(csv_path), "--out", str(tmp_path / "q.png")],
        capture_output=True,
        text=True,
    )
    assert (
        missing.returncode != 0
        and "--memory" in missing.stderr
        and "Traceback" not in missing.stderr
    )
    assert not (tmp_path / "q.png").exists()
