"""Quality and speed of the baselines and the published heuristics.

Sections (each prints a markdown table):

* ``optima``: every shipped instance with a proven optimum (``instances/optima/*.json``, field
  ``optimum.value``): per method the mean and max gap ``(objective - optimum) / objective`` and
  the mean time.
* ``traces``: trace backlogs (1,000 requests, and the whole Azure conversation trace): average
  latency per method beside the best cheap lower bound (``sum o``, volume, busy-time bounds of
  :mod:`scheduler_milp.bounds`).
* ``speed``: ``sorted-f`` and ``svf`` on the whole conversation trace, each in a fresh process
  (``scripts/solve.py``) ``--repeat`` times; the median of the method's own time (build + solve).
* ``ls``: the improvement trajectory of ``ls`` on a 1,000-request backlog.
* ``repack``: moves per second of ``repack`` (from the ``svf`` plan, seed 0, ``--repack-time`` s,
  default 20; the time covers the start plan and the insertion construction) on the
  1,000-request mixed backlogs (700 conv + 300 arXiv, seed 0) at M = 16,384 / 65,536 / 262,144 and
  on the whole conversation trace, each in a fresh process (``scripts/solve.py``) ``--repeat``
  times; medians.  Not part of the default sections.

    python benchmarks/bench_heuristics.py [--sections optima,traces,speed,ls,repack] [--ls-time 2]
        [--ls-trace-time 60] [--repeat 3] [--repack-time 20]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve

ROOT = Path(__file__).resolve().parent.parent

#: (label, registry name, params) of the methods compared on small instances
SMALL_METHODS: list[tuple[str, str, dict[str, Any]]] = [
    ("fcfs", "fcfs", {}),
    ("fcfs-skip", "fcfs-skip", {}),
    ("sf", "sf", {}),
    ("size", "size", {}),
    ("mcsf", "mcsf", {}),
    ("svf", "svf", {}),
    ("vllm", "vllm", {}),
    ("sorted-f", "sorted-f", {}),
    ("sorted-f seq", "sorted-f", {"mode": "sequential"}),
    ("sorted-lp", "sorted-lp", {}),
    ("lp-swap", "lp-swap", {}),
    ("rh", "rh", {}),
    ("ls", "ls", {}),
    ("repack", "repack", {}),
]

TRACE_METHODS = ["fcfs", "fcfs-skip", "sf", "size", "mcsf", "svf", "vllm", "sorted-f"]


def _run(
    inst: Instance,
    method: str,
    params: dict[str, Any],
    time_limit: float | None = None,
    iterations: int | None = None,
) -> tuple[int, float]:
    t0 = time.perf_counter()
    res = solve(
        inst,
        method,
        SolveOptions(params=dict(params), time_limit=time_limit, iteration_limit=iterations),
    )
    assert res.objective is not None
    return res.objective, time.perf_counter() - t0


def section_optima(ls_time: float) -> None:
    """Gap to the proven optimum per method on ``instances/optima``."""
    files = sorted(glob.glob(str(ROOT / "instances/optima/*.json")))
    rows: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in SMALL_METHODS}
    for path in files:
        opt = json.loads(Path(path).read_text())["optimum"]["value"]
        inst = load_instance(path)
        for label, method, params in SMALL_METHODS:
            limit = ls_time if method in ("ls", "repack") else None
            obj, secs = _run(inst, method, params, time_limit=limit)
            if obj < opt:
                raise AssertionError(f"{label} beat the proven optimum on {path}: {obj} < {opt}")
            rows[label].append(((obj - opt) / obj, secs))
    print(
        f"\nGap to the proven optimum on {len(files)} instances (instances/optima, ls and repack: {ls_time:g} s)\n"
    )
    print("| method | mean gap | max gap | optimal | mean time (s) |")
    print("|---|---:|---:|---:|---:|")
    for label, vals in rows.items():
        gaps = [g for g, _ in vals]
        print(
            f"| {label} | {100 * statistics.mean(gaps):.2f}% | {100 * max(gaps):.2f}% | "
            f"{sum(g == 0 for g in gaps)}/{len(gaps)} | {statistics.mean(s for _, s in vals):.3f} |"
        )


def _cheap_bound(inst: Instance) -> tuple[int, str]:
    from scheduler_milp.bounds.simple import busy_time_bound, volume_bound

    found = [
        (inst.trivial_lower_bound(), "sum o"),
        (volume_bound(inst), "volume"),
        (busy_time_bound(inst), "busy-time"),
    ]
    return max(found, key=lambda x: x[0])


def section_traces(ls_trace_time: float) -> None:
    """Average latency per method on trace backlogs, beside the best cheap lower bound."""
    names = ["conv-n1000-M65536", "mix-conv70-arxiv30-n1000-M65536", "conv-full-M65536"]
    for name in names:
        inst = load_instance(ROOT / "instances/traces" / f"{name}.json")
        bound, source = _cheap_bound(inst)
        print(
            f"\n{name} (n={inst.n}, M={inst.memory_budget}): lower bound {bound / inst.n:.1f} rounds per request ({source})\n"
        )
        print("| method | average latency | / bound | time (s) |")
        print("|---|---:|---:|---:|")
        methods: list[tuple[str, str, dict[str, Any], float | None]] = [
            (m, m, {}, None) for m in TRACE_METHODS
        ]
        methods.append(("sorted-f seq", "sorted-f", {"mode": "sequential"}, None))
        if inst.n <= 2000:
            methods.append((f"ls ({ls_trace_time:g} s)", "ls", {}, ls_trace_time))
        for label, method, params, limit in methods:
            obj, secs = _run(inst, method, params, time_limit=limit)
            print(f"| {label} | {obj / inst.n:.1f} | {obj / bound:.3f} | {secs:.2f} |")
            sys.stdout.flush()


def section_speed(repeat: int) -> None:
    """Median time of sorted-f and svf on the whole conversation trace, fresh process per run."""
    path = ROOT / "instances/traces/conv-full-M65536.json"
    print(f"\nWhole Azure conversation trace ({path.name}), {repeat} fresh processes each\n")
    print("| method | median time (s) | runs (s) | average latency |")
    print("|---|---:|---|---:|")
    for method in ("svf", "sorted-f"):
        runs = []
        avg = 0.0
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "plan.json")
                subprocess.run(
                    [
                        sys.executable,
                        str(ROOT / "scripts/solve.py"),
                        str(path),
                        "--method",
                        method,
                        "--output",
                        out,
                    ],
                    check=True,
                    capture_output=True,
                )
                data = json.loads(Path(out).read_text())
            runs.append(float(data["seconds"]))
            avg = float(data["average_latency"])
        print(
            f"| {method} | {statistics.median(runs):.2f} | {', '.join(f'{r:.2f}' for r in runs)} | {avg:.1f} |"
        )


def section_ls(ls_trace_time: float) -> None:
    """Improvement trajectory of ls on a 1,000-request backlog."""
    inst = load_instance(ROOT / "instances/traces/conv-n1000-M65536.json")
    res = solve(inst, "ls", SolveOptions(time_limit=ls_trace_time, seed=0))
    print(
        f"\nls on conv-n1000-M65536, {ls_trace_time:g} s, seed 0 (start: {res.stats['start_method']}, "
        f"{res.stats['iterations']} evaluations)\n"
    )
    print("| time (s) | average latency |")
    print("|---:|---:|")
    traj = res.stats["trajectory"]
    # thin the trajectory to about ten rows
    step = max(1, len(traj) // 10)
    shown = traj[::step] + ([traj[-1]] if (len(traj) - 1) % step else [])
    for secs, obj in shown:
        print(f"| {secs:.1f} | {obj / inst.n:.2f} |")


def section_repack(repeat: int, seconds: float) -> None:
    """Moves per second of repack on the mixed backlogs and the whole trace, fresh process per run."""
    from scheduler_milp.traces import BENCHMARK_MIX, sample_backlog

    print(f"\nrepack, {seconds:g} s, seed 0, {repeat} fresh processes each (medians)\n")
    print("| backlog | n | M | moves | moves / s | average latency | runs (moves / s) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        for m in (16384, 65536, 262144):
            inst = sample_backlog(BENCHMARK_MIX, 1000, 0, memory=m, name=f"mix1000-M{m}")
            cases.append(("700 conv + 300 arXiv", inst))
        cases.append(
            ("whole Azure conv", load_instance(ROOT / "instances/traces/conv-full-M65536.json"))
        )
        for label, inst in cases:
            path = os.path.join(tmp, f"{inst.name}.json")
            inst.save(path)
            runs = []
            for _ in range(repeat):
                out = os.path.join(tmp, "plan.json")
                subprocess.run(
                    [
                        sys.executable,
                        str(ROOT / "scripts/solve.py"),
                        path,
                        "--method",
                        "repack",
                        "--param",
                        "start=svf",
                        "--time-limit",
                        str(seconds),
                        "--seed",
                        "0",
                        "--output",
                        out,
                    ],
                    check=True,
                    capture_output=True,
                )
                data = json.loads(Path(out).read_text())
                runs.append(
                    (
                        int(data["stats"]["iterations"]),
                        float(data["stats"]["moves_per_second"]),
                        float(data["average_latency"]),
                    )
                )
            moves = statistics.median(r[0] for r in runs)
            rate = statistics.median(r[1] for r in runs)
            avg = statistics.median(r[2] for r in runs)
            print(
                f"| {label} | {inst.n:,} | {inst.memory_budget:,} | {moves:,.0f} | {rate:,.0f} | {avg:,.1f} | {', '.join(f'{r[1]:,.0f}' for r in runs)} |"
            )
            sys.stdout.flush()


def main() -> None:
    """Run the selected sections."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sections", default="optima,traces,speed,ls")
    p.add_argument("--ls-time", type=float, default=2.0, help="ls budget per small instance (s)")
    p.add_argument(
        "--ls-trace-time",
        type=float,
        default=60.0,
        help="ls budget on the 1,000-request backlogs (s)",
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--repack-time",
        type=float,
        default=20.0,
        help="repack budget per run in the repack section (s)",
    )
    args = p.parse_args()
    for sec in args.sections.split(","):
        if sec == "optima":
            section_optima(args.ls_time)
        elif sec == "traces":
            section_traces(args.ls_trace_time)
        elif sec == "speed":
            section_speed(args.repeat)
        elif sec == "ls":
            section_ls(args.ls_trace_time)
        elif sec == "repack":
            section_repack(args.repeat, args.repack_time)
        else:
            raise SystemExit(f"unknown section {sec!r}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
