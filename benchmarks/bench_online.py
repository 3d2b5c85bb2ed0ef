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
all at round 0) at M = 16,384 and 65,536 against the best certified lower bound (``lagrange``,
120 s) and (c) the Azure conversation trace with its real arrivals, the first 2,000 requests and
the whole trace, against the best hindsight plan.  The experiment is one grid of the runner
(``scheduler_milp/experiments/online.py``): its instances, ``runs.jsonl``, ``results.csv`` and
``meta.json`` are in ``--work``; rerunning resumes, ``--backend ray`` runs it on Ray.  The tables
go to ``--tables`` (``benchmarks/results/online_price.md``) and the figure to ``--figure``
(``docs/figures/online-price.png``).

    python benchmarks/bench_online.py --price --jobs 2
    python benchmarks/bench_online.py --price --report-only      # tables and figure from the records
    python benchmarks/bench_online.py --price --quick            # a reduced grid (about a minute)
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
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger("bench_online")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = ROOT / "docs" / "figures" / "online-price.png"
TABLES = RESULTS / "online_price.md"


# ---------------------------------------------------------------------- instances
@cache
def whole_trace() -> Any:
    """The whole Azure conversation trace with its real arrivals, M = 65,536."""
    from scheduler_milp.traces import sample_backlog

    return sample_backlog("conv", None, 0, memory=65536, arrivals="trace", name="conv-arrivals-all")


def optima_files() -> list[str]:
    """The scaled-down backlogs with a proven optimum."""
    return sorted(glob.glob(str(ROOT / "instances" / "optima" / "*.json")))


# ---------------------------------------------------------------------- speed
def speed_one(policy: str, predictor: str) -> None:
    """(Child process) build the whole trace with arrivals from the CSV and simulate; print JSON."""
    t0 = time.perf_counter()
    from scheduler_milp.online.run import simulate

    inst = whole_trace()
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
    inst = whole_trace()
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
def price(args: argparse.Namespace, command: list[str]) -> int:
    """Run the price-of-uncertainty grid (resuming from ``--work``), write tables and figure."""
    from dataclasses import replace

    from scheduler_milp.experiments.online import (
        QUICK_PRICE,
        PriceSetting,
        build_groups,
        price_figure,
        price_rows,
        price_tables,
        run_price,
    )
    from scheduler_milp.experiments.sweep import SweepInterrupted

    if not args.sections or set(args.sections) - set("abc"):
        print(f"--sections: letters among a, b, c (got {args.sections!r})", file=sys.stderr)
        return 2
    setting = replace(QUICK_PRICE if args.quick else PriceSetting(), sections=args.sections)
    work = Path(args.work or ("runs/online-price-quick" if args.quick else "runs/online-price"))
    tables = (
        Path(args.tables) if args.tables else (work / "online_price.md" if args.quick else TABLES)
    )
    fig = (
        Path(args.figure) if args.figure else (work / "online-price.png" if args.quick else FIGURE)
    )
    if args.report_only:
        groups = build_groups(work, setting, optima_files())
        rows = price_rows(work, groups, setting)
    else:
        try:
            groups, report = run_price(work, setting, optima_files(), jobs=args.jobs,
                                       backend=args.backend, address=args.address,
                                       progress=not args.no_progress, command=command)  # fmt: skip
        except SweepInterrupted as stop:
            print(f"interrupted: {len(stop.report.rows)} of {stop.report.total} runs finished; "
                  "rerun to resume", file=sys.stderr)  # fmt: skip
            return 130
        rows = report.rows
        log.info("%d runs (%d already done, %d run now)", report.total, report.skipped, report.ran)
    if not rows:
        print(f"no runs of the grid in {work}: run it without --report-only first", file=sys.stderr)
        return 1
    errors = [r for r in rows if r.get("error")]
    for r in errors[:5]:
        log.warning("%s %s %s: %s", r["instance"], r["method"], r.get("predictor"), r["error"])
    text = price_tables(rows, groups)
    tables.parent.mkdir(parents=True, exist_ok=True)
    tables.write_text(text)
    drawn = price_figure(rows, groups, fig)
    print(text)
    print(f"{len(rows)} runs ({len(errors)} with an error); tables: {tables}"
          + (f"; figure: {fig}" if drawn else ""))  # fmt: skip
    return 1 if errors else 0


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
    p.add_argument("--quick", action="store_true", help="--price: a reduced grid (about a minute)")
    p.add_argument("--work", default=None, help="--price: instances and run log (default "
                   "runs/online-price, with --quick runs/online-price-quick)")  # fmt: skip
    p.add_argument("--jobs", type=int, default=2, help="parallel runs for --price (default 2)")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="--price: local "
                   "process pool or a Ray cluster")  # fmt: skip
    p.add_argument(
        "--address", default=None, help="Ray cluster address (default: start Ray locally)"
    )
    p.add_argument("--tables", default=None, help="--price: the markdown tables (default "
                   f"{TABLES.relative_to(ROOT)}; with --quick WORK/online_price.md)")  # fmt: skip
    p.add_argument("--figure", default=None, help="--price: the figure (default "
                   f"{FIGURE.relative_to(ROOT)}; with --quick WORK/online-price.png)")  # fmt: skip
    p.add_argument(
        "--report-only",
        action="store_true",
        help="--price: tables and figure from the records only",
    )
    p.add_argument("--no-progress", action="store_true", help="--price: no progress bar")
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
        return price(args, sys.argv if argv is None else [__file__, *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
