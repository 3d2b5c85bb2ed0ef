"""Whole-process wall time against ``--time-limit``, for every method that takes one.

Each run is ``python scripts/solve.py INSTANCE --method M --time-limit L -q`` in a fresh process,
timed from before the process is started until it has exited: interpreter start-up, imports,
reading the instance, building, solving, validating, writing and tear-down all count. A run is
within its limit when it ends by ``L + max(1 s, 5% of L)``. ``--busy K`` starts ``K`` CPU-bound
busy loops beside the runs (a loaded machine); the methods run one at a time.

Instances: the shipped 1,000-request mixed backlog for the methods that scale; its exact-model
analogue, the first 40 requests of the shipped code backlog at M = 8,192, for ``milp``, ``cpsat``,
``lp``, ``sorted-lp`` and ``lp-swap``; 10 requests of it for ``dp``.

    python benchmarks/bench_time_limits.py --busy 2 --repeats 3

writes ``benchmarks/results/time_limits.json`` and prints the table of docs/portfolio.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MIX = ROOT / "instances" / "traces" / "mix-conv70-arxiv30-n1000-M65536.json"
CODE = ROOT / "instances" / "traces" / "code-n100-M65536.json"

#: method -> (instance key, time limit in seconds)
RUNS: dict[str, tuple[str, float]] = {
    "milp": ("code40", 10.0), "cpsat": ("code40", 5.0), "lp": ("code40", 5.0),
    "sorted-lp": ("code40", 5.0), "lp-swap": ("code40", 5.0), "dp": ("code10", 3.0),
    "lagrange": ("mix", 5.0), "lns": ("mix", 5.0), "ls": ("mix", 5.0), "repack": ("mix", 5.0),
    "rh": ("mix", 5.0), "auto": ("mix", 10.0), "svf": ("mix", 2.0), "sorted-f": ("mix", 2.0),
    "busy-bound": ("mix", 2.0), "volume-bound": ("mix", 2.0),
}  # fmt: skip


def instances(folder: Path) -> dict[str, Path]:
    """The instance files by key (the code analogues written to ``folder``)."""
    from scheduler_milp.model.instance import load_instance

    code = load_instance(CODE)
    out = {"mix": MIX}
    for key, n in (("code40", 40), ("code10", 10)):
        path = folder / f"{key}.json"
        code.subset(range(n), name=f"code-{n}-M8192").replace(memory_budget=8192).save(path)
        out[key] = path
    return out


def one_run(method: str, path: Path, limit: float) -> dict[str, Any]:
    """One whole process; its wall time and exit status."""
    cmd = [sys.executable, "scripts/solve.py", str(path), "--method", method]
    cmd += ["--time-limit", str(limit), "-q"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return {"wall": wall, "status": proc.returncode, "stderr": proc.stderr.strip()[-300:]}


def main() -> int:
    """Run the table (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--repeats", type=int, default=3, help="processes per method")
    p.add_argument("--busy", type=int, default=2, help="CPU-bound busy loops beside the runs")
    p.add_argument("--methods", default=",".join(RUNS), help="comma-separated subset")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "time_limits.json"))
    args = p.parse_args()
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = instances(Path(tmp))
            print("| method | instance | limit (s) | median (s) | max (s) | allowed (s) | within |")
            print("|---|---|---:|---:|---:|---:|---|")
            for method in args.methods.split(","):
                key, limit = RUNS[method]
                runs = [one_run(method, files[key], limit) for _ in range(args.repeats)]
                walls = [r["wall"] for r in runs]
                allowed = limit + max(1.0, 0.05 * limit)
                row = {
                    "method": method, "instance": key, "limit": limit, "walls": walls,
                    "median": statistics.median(walls), "max": max(walls), "allowed": allowed,
                    "within": max(walls) <= allowed, "statuses": [r["status"] for r in runs],
                    "load_average": os.getloadavg()[0],
                }  # fmt: skip
                bad = [r["stderr"] for r in runs if r["status"] not in (0, 3)]
                if bad:
                    row["errors"] = bad
                rows.append(row)
                print(
                    f"| {method} | {key} | {limit:g} | {row['median']:.2f} | {row['max']:.2f} "
                    f"| {allowed:.2f} | {'yes' if row['within'] else 'NO'} |",
                    flush=True,
                )
    finally:
        for loop in loops:
            loop.kill()
    record = {"busy_loops": args.busy, "repeats": args.repeats, "rows": rows}
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
