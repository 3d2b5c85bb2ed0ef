"""Online execution: whole-process speed, and the price of uncertainty (docs/online.md).

Speed (``--speed``): the whole Azure conversation trace with its real arrivals (19,366 requests,
``sample_backlog("conv", None, 0, memory=65536, arrivals="trace")``, 0.05 s per round) under a
policy with lognormal predictions, each run a fresh process, ``--repeats`` times, medians of wall
and CPU time (user + system: other users of the machine inflate wall time, not CPU time).  Two
processes per configuration: ``simulate.py`` on the instance written as JSON (what a user runs),
and one that builds the instance from the shipped trace CSV first.

    python benchmarks/bench_online.py --speed --repeats 3

Price of uncertainty (``--price``): every policy's total latency divided by a reference, for the
predictors exact, lognormal 0.25 / 0.5 / 1.0, interval 0.5 / 2, bins:8 and constant, both
eviction modes, on (a) the 20 scaled-down backlogs of ``instances/optima`` against their proven
optimum (3 predictor seeds), (b) the 1,000-request mixed backlogs (700 conv + 300 arXiv, seed 0,
all at round 0) at M = 16,384 and 65,536 against the best certified lower bound (the Lagrangian
bound, 120 s) and (c) the Azure conversation trace with its real arrivals, the first 2,000
requests and the whole trace, against the best hindsight plan and the busy-time / volume bound.
Runs are appended to ``benchmarks/results/online_price.jsonl`` (an interrupted experiment resumes
where it stopped); the tables go to ``benchmarks/results/online_price.md`` and the figure to
``docs/figures/online-price.png``.

    python benchmarks/bench_online.py --price --jobs 2
    python benchmarks/bench_online.py --price --report-only      # tables and figure from the records
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("bench_online")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = ROOT / "docs" / "figures" / "online-price.png"
PRICE_RECORDS = RESULTS / "online_price.jsonl"
BOUNDS = RESULTS / "online_bounds.json"

PREDICTORS = [
    "exact",
    "lognormal:0.25",
    "lognormal:0.5",
    "lognormal:1",
    "interval:0.5",
    "interval:2",
    "bins:8",
    "constant",
]
POLICIES = [
    "vllm",
    "fcfs",
    "sf",
    "mcsf",
    "svf",
    "sorted-f",
    "sorted-f-robust",
    "amax",
    "amin",
    "replan:svf",
]
HINDSIGHT = ["hindsight:mcsf", "hindsight:svf", "hindsight:sorted-f"]
MODES = ["restart", "resume"]
#: the whole trace: fewer predictors and policies (each run takes seconds)
WHOLE_PREDICTORS = ["exact", "lognormal:0.5", "lognormal:1", "constant"]
WHOLE_POLICIES = ["vllm", "mcsf", "sf", "svf", "sorted-f", "sorted-f-robust", "amax", "amin"]


# ---------------------------------------------------------------------- instances
@cache
def instance(key: str) -> Any:
    """The instance named ``key`` (optima file stem, ``mix1000-M<m>``, ``conv-arrivals-2000``, ``conv-arrivals-all``)."""
    from scheduler_milp.model.instance import load_instance
    from scheduler_milp.traces import BENCHMARK_MIX, sample_backlog

    if key.startswith("mix1000-M"):
        m = int(key.removeprefix("mix1000-M"))
        return sample_backlog(BENCHMARK_MIX, 1000, 0, memory=m, name=key)
    if key.startswith("conv-arrivals"):
        whole = sample_backlog(
            "conv", None, 0, memory=65536, arrivals="trace", name="conv-arrivals-all"
        )
        return (
            whole if key.endswith("-all") else whole.subset(range(2000), name="conv-arrivals-2000")
        )
    return load_instance(ROOT / "instances" / "optima" / f"{key}.json")


def optima_keys() -> list[str]:
    """The scaled-down backlogs with a proven optimum."""
    return [Path(p).stem for p in sorted(glob.glob(str(ROOT / "instances" / "optima" / "*.json")))]


# ---------------------------------------------------------------------- speed
def speed_one(policy: str, predictor: str) -> None:
    """(Child process) build the whole trace with arrivals from the CSV and simulate; print JSON."""
    t0 = time.perf_counter()
    from scheduler_milp.online.run import simulate

    inst = instance("conv-arrivals-all")
    ex = simulate(inst, policy, predictor, "restart", seed=0)
    print(
        json.dumps(
            {
                "objective": ex.objective,
                "evictions": ex.evictions,
                "seconds": time.perf_counter() - t0,
            }
        )
    )


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``; wall seconds, CPU seconds of the child, its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def run_speed(repeats: int, configs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Median wall and CPU seconds of each configuration, both ways of starting."""
    inst = instance("conv-arrivals-all")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conv-arrivals-all.json"
        inst.save(path)
        for policy, predictor in configs:
            for how in ("simulate.py", "from the trace"):
                if how == "simulate.py":
                    cmd = [
                        sys.executable,
                        "scripts/simulate.py",
                        str(path),
                        "--policy",
                        policy,
                        "--predictor",
                        predictor,
                    ]
                else:
                    cmd = [sys.executable, __file__, "--speed-one", policy, predictor]
                walls, cpus = [], []
                out = ""
                for _ in range(repeats):
                    wall, cpu, out = timed(cmd)
                    walls.append(wall)
                    cpus.append(cpu)
                objective = None
                if how == "simulate.py":
                    line = next(ln for ln in out.splitlines() if ln.startswith("objective"))
                    objective = int(line.split()[1])
                else:
                    objective = json.loads(out)["objective"]
                row = {
                    "policy": policy,
                    "predictor": predictor,
                    "process": how,
                    "n": inst.n,
                    "wall_median": statistics.median(walls),
                    "cpu_median": statistics.median(cpus),
                    "walls": [round(w, 2) for w in walls],
                    "cpus": [round(c, 2) for c in cpus],
                    "objective": objective,
                    "load": os.getloadavg()[0],
                }
                log.info("%s", row)
                rows.append(row)
    return rows


def speed_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the speed rows."""
    lines = [
        "| policy | predictor | process | n | wall s (median) | CPU s (median) | runs (wall) | objective |",
        "|---|---|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['policy']}` | {r['predictor']} | {r['process']} | {r['n']:,} | {r['wall_median']:.2f} | "
            f"{r['cpu_median']:.2f} | {', '.join(f'{w:.2f}' for w in r['walls'])} | {r['objective']:,} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------- price of uncertainty
def bound_of(key: str) -> dict[str, Any]:
    """The reference numbers of an instance (cached in ``online_bounds.json``)."""
    from scheduler_milp.model.result import SolveOptions
    from scheduler_milp.registry import solve

    cached = json.loads(BOUNDS.read_text()) if BOUNDS.exists() else {}
    if key in cached:
        return dict(cached[key])
    inst = instance(key)
    entry: dict[str, Any] = {"n": inst.n, "memory": inst.memory_budget}
    if key.startswith("mix1000"):
        res = solve(inst, "lagrange", SolveOptions(time_limit=120))
        entry.update(lower_bound=res.lower_bound, bound_source=res.stats.get("bound_source"))
    elif key.startswith("conv-arrivals"):
        best = max(
            (solve(inst, m, SolveOptions(time_limit=120)) for m in ("volume-bound", "busy-bound")),
            key=lambda r: r.lower_bound or 0,
        )
        entry.update(lower_bound=best.lower_bound, bound_source=best.stats.get("bound_source"))
    else:
        data = json.loads((ROOT / "instances" / "optima" / f"{key}.json").read_text())
        entry.update(lower_bound=int(data["optimum"]["value"]), bound_source="proven optimum")
    cached[key] = entry
    RESULTS.mkdir(parents=True, exist_ok=True)
    BOUNDS.write_text(json.dumps(cached, indent=2) + "\n")
    return entry


def price_one(job: tuple[str, str, str, str, int]) -> dict[str, Any]:
    """(Worker) one run: ``(instance, policy, predictor, eviction, seed)`` -> record."""
    from scheduler_milp.online.predictors import make_predictions
    from scheduler_milp.online.run import simulate

    key, policy, predictor, eviction, seed = job
    inst = instance(key)
    predictions = make_predictions(inst, predictor, seed)
    t0 = time.perf_counter()
    ex = simulate(inst, policy, predictions, eviction, seed=seed)
    return {
        "instance": key,
        "policy": policy,
        "predictor": predictor,
        "eviction": eviction,
        "seed": seed,
        "objective": ex.objective,
        "evictions": ex.evictions,
        "wasted_rounds": ex.wasted_rounds,
        "ttft_p99": ex.ttft_summary()["p99"],
        "seconds": round(time.perf_counter() - t0, 3),
        "error": predictions.errors(inst)["mean_abs_log_error"],
    }


def _optima_jobs() -> list[tuple[str, str, str, str, int]]:
    jobs = []
    for key in optima_keys():
        for pred in PREDICTORS:
            seeds = (0,) if pred in ("exact", "constant") or pred.startswith("bins") else (0, 1, 2)
            jobs += [
                (key, pol, pred, mode, seed) for seed in seeds for pol in POLICIES for mode in MODES
            ]
    return jobs


def _group_jobs(
    key: str, predictors: list[str], policies: list[str], hindsight: list[str]
) -> list[tuple[str, str, str, str, int]]:
    jobs = []
    for pred in predictors:
        for pol in policies + (hindsight if pred == "exact" else []):
            # a hindsight plan never evicts: one mode is enough
            modes = MODES[:1] if pol.startswith("hindsight") else MODES
            jobs += [(key, pol, pred, mode, 0) for mode in modes]
    return jobs


def price_jobs(sections: str) -> list[tuple[str, str, str, str, int]]:
    """Every run of the experiment (the sections asked for)."""
    jobs: list[tuple[str, str, str, str, int]] = []
    if "a" in sections:
        jobs += _optima_jobs()
    if "b" in sections:
        for key in ("mix1000-M65536", "mix1000-M16384"):
            jobs += _group_jobs(key, PREDICTORS, POLICIES, HINDSIGHT)
    if "c" in sections:
        jobs += _group_jobs("conv-arrivals-2000", PREDICTORS, POLICIES, HINDSIGHT)
        jobs += _group_jobs("conv-arrivals-all", WHOLE_PREDICTORS, WHOLE_POLICIES, HINDSIGHT[:1])
    return jobs


def load_records() -> list[dict[str, Any]]:
    """Every run recorded so far."""
    if not PRICE_RECORDS.exists():
        return []
    return [json.loads(line) for line in PRICE_RECORDS.read_text().splitlines() if line.strip()]


def run_price(sections: str, jobs_n: int) -> None:
    """Run the missing jobs (in ``jobs_n`` processes), appending each record as it completes."""
    for key in (["mix1000-M65536", "mix1000-M16384"] if "b" in sections else []) + (
        ["conv-arrivals-2000", "conv-arrivals-all"] if "c" in sections else []
    ):
        log.info("reference of %s: %s", key, bound_of(key))
    done = {
        (r["instance"], r["policy"], r["predictor"], r["eviction"], r["seed"])
        for r in load_records()
    }
    todo = [j for j in price_jobs(sections) if j not in done]
    # the long runs first, so that the pool ends together
    todo.sort(
        key=lambda j: (
            j[0] != "conv-arrivals-all",
            not j[0].startswith("mix"),
            j[1] != "replan:svf",
        )
    )
    log.info("%d runs to do (%d recorded)", len(todo), len(done))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=jobs_n) as pool, open(PRICE_RECORDS, "a") as out:
        futures = {pool.submit(price_one, j): j for j in todo}
        for k, fut in enumerate(as_completed(futures), 1):
            record = fut.result()
            out.write(json.dumps(record) + "\n")
            out.flush()
            if k % 200 == 0 or record["seconds"] > 5:
                log.info("%d/%d %s", k, len(todo), record)


def ratios(records: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], float]:
    """``(group, policy, predictor, eviction)`` -> mean objective / reference over the group's runs."""
    acc: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for r in records:
        key = r["instance"]
        group = "optima" if not (key.startswith("mix") or key.startswith("conv-arrivals")) else key
        ref = bound_of(key)["lower_bound"]
        acc[(group, r["policy"], r["predictor"], r["eviction"])].append(r["objective"] / ref)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def hindsight_floor(records: list[dict[str, Any]], group: str) -> tuple[str, float] | None:
    """The best hindsight plan of a group, relative to its reference."""
    best: tuple[str, float] | None = None
    for r in records:
        if r["instance"] == group and r["policy"].startswith("hindsight"):
            value = r["objective"] / bound_of(group)["lower_bound"]
            if best is None or value < best[1]:
                best = (r["policy"], value)
    return best


def mean_errors(records: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """``(group, predictor)`` -> mean absolute log error of the predictions."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        key = r["instance"]
        group = "optima" if not (key.startswith("mix") or key.startswith("conv-arrivals")) else key
        acc[(group, r["predictor"])].append(r["error"])
    return {k: float(np.mean(v)) for k, v in acc.items()}


GROUP_TITLES = {
    "optima": "(a) 20 scaled-down backlogs (n = 6..20), ratio to the proven optimum (mean; lognormal and interval: 3 seeds)",
    "mix1000-M65536": "(b) 1,000 mixed requests at round 0, M = 65,536: ratio to the Lagrangian lower bound",
    "mix1000-M16384": "(b) 1,000 mixed requests at round 0, M = 16,384: ratio to the Lagrangian lower bound",
    "conv-arrivals-2000": "(c) Azure conversations with arrivals, first 2,000 requests, M = 65,536: ratio to the best hindsight plan",
    "conv-arrivals-all": "(c) Azure conversations with arrivals, whole trace (19,366), M = 65,536: ratio to the best hindsight plan",
}


def report(records: list[dict[str, Any]]) -> str:
    """The markdown tables: one per group and eviction mode, policies by predictors."""
    rat = ratios(records)
    errs = mean_errors(records)
    out: list[str] = []
    for group, title in GROUP_TITLES.items():
        preds = [p for p in PREDICTORS if any(k[0] == group and k[2] == p for k in rat)]
        if not preds:
            continue
        ref = bound_of(group)["lower_bound"] if group != "optima" else None
        floor = hindsight_floor(records, group) if group != "optima" else None
        scale = 1.0
        if group.startswith("conv-arrivals") and floor is not None:
            scale = floor[1]  # ratios to the best hindsight plan
        out.append(f"### {title}\n")
        if ref is not None:
            src = bound_of(group).get("bound_source")
            out.append(
                f"Reference: lower bound {ref:,} ({src})"
                + (
                    f"; best hindsight plan `{floor[0]}` = {floor[1]:.3f} x the bound."
                    if floor
                    else "."
                )
                + "\n"
            )
        for mode in MODES:
            pols = [p for p in POLICIES if any((group, p, q, mode) in rat for q in preds)]
            if not pols:
                continue
            header = (
                "| policy | "
                + " | ".join(f"{q} ({errs.get((group, q), 0):.2f})" for q in preds)
                + " |"
            )
            lines = [
                f"**{mode}** (column: predictor and its mean absolute log error)\n",
                header,
                "|---|" + "---:|" * len(preds),
            ]
            best = {
                q: min(
                    (rat[(group, p, q, mode)] for p in pols if (group, p, q, mode) in rat),
                    default=None,
                )
                for q in preds
            }
            for p in pols:
                cells = []
                for q in preds:
                    v = rat.get((group, p, q, mode))
                    if v is None:
                        cells.append("-")
                        continue
                    text = f"{v / scale:.3f}"
                    low = best[q]
                    cells.append(f"**{text}**" if low is not None and v <= low + 1e-12 else text)
                lines.append(f"| `{p}` | " + " | ".join(cells) + " |")
            out.append("\n".join(lines) + "\n")
    return "\n".join(out)


LINE_PREDICTORS = ["exact", "lognormal:0.25", "lognormal:0.5", "lognormal:1"]
POINT_MARKERS = {"interval:0.5": "^", "interval:2": "v", "bins:8": "s", "constant": "x"}


def figure(records: list[dict[str, Any]], path: Path) -> None:
    """Ratio against prediction error, one line per policy (the lognormal family; the other
    predictors as markers), the clairvoyant hindsight plan as the floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rat = ratios(records)
    errs = mean_errors(records)
    groups = ["mix1000-M65536", "mix1000-M16384"]
    top = 2.0
    fig, axes = plt.subplots(2, 2, figsize=(12, 9), sharex=True)
    colors = plt.get_cmap("tab10")
    for row, group in enumerate(groups):
        floor = hindsight_floor(records, group)
        for col, mode in enumerate(MODES):
            ax = axes[row][col]
            for k, pol in enumerate(POLICIES):
                color = colors(k % 10)
                pts = [
                    (errs[(group, q)], rat[(group, pol, q, mode)])
                    for q in LINE_PREDICTORS
                    if (group, pol, q, mode) in rat
                ]
                ax.plot(
                    [p[0] for p in pts],
                    [min(p[1], top) for p in pts],
                    marker="o",
                    ms=3,
                    color=color,
                    label=pol,
                )
                for q, marker in POINT_MARKERS.items():
                    if (group, pol, q, mode) in rat:
                        ax.plot(
                            errs[(group, q)],
                            min(rat[(group, pol, q, mode)], top),
                            marker=marker,
                            color=color,
                            ls="none",
                        )
            if floor is not None:
                ax.axhline(
                    floor[1], color="black", ls="--", lw=1, label=f"{floor[0]} (clairvoyant)"
                )
            ax.axhline(1.0, color="grey", ls=":", lw=1)
            ax.set_ylim(0.98, top + 0.02)
            ax.set_title(f"{group}, {mode}")
            ax.set_ylabel("total latency / lower bound (capped at 2)")
            if row == 1:
                ax.set_xlabel("prediction error: mean |log(predicted / true)|")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for q, marker in POINT_MARKERS.items():
        handles.append(plt.Line2D([], [], color="grey", marker=marker, ls="none"))
        labels.append(q)
    axes[0][0].legend(handles, labels, fontsize=7, ncol=2, loc="upper left")
    fig.suptitle(
        "Price of uncertainty, 1,000 mixed requests (700 conv + 300 arXiv) at round 0\n"
        "lines: exact and lognormal sigma 0.25 / 0.5 / 1; markers: interval, bins, constant"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--speed", action="store_true", help="whole-process speed on the whole conversation trace"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--price", action="store_true", help="the price-of-uncertainty experiment")
    p.add_argument("--sections", default="abc", help="which parts of --price: a, b, c")
    p.add_argument("--jobs", type=int, default=2, help="processes for --price")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="--price: tables and figure from the records only",
    )
    p.add_argument("--speed-one", nargs=2, metavar=("POLICY", "PREDICTOR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.speed_one:
        speed_one(*args.speed_one)
        return 0
    if args.speed:
        configs = [
            ("mcsf", "lognormal:0.5"),
            ("sorted-f", "lognormal:0.5"),
            ("replan:svf", "lognormal:0.5"),
        ]
        rows = run_speed(args.repeats, configs)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "online_speed.json").write_text(json.dumps(rows, indent=2) + "\n")
        print(speed_table(rows))
    if args.price:
        if not args.report_only:
            run_price(args.sections, args.jobs)
        records = load_records()
        text = report(records)
        (RESULTS / "online_price.md").write_text(text)
        figure(records, FIGURE)
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
