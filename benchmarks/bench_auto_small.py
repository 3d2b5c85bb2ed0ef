"""``auto`` on small backlogs, where the exact model can prove optimality: the certified gap at a
short time limit, as whole processes, for each value of ``exact_first_share`` (the share of the
time the early exact phase gets).

    python benchmarks/bench_auto_small.py                       # 10 s, shares 0.6 and 0.9, 3 runs
    python benchmarks/bench_auto_small.py --shares 0.6,0.9 --time-limit 10 --repeats 3

Instances (written to a temporary folder, all from the package):

* ``bwb16-mF-sS``: long-context backlogs, 16 requests of the BookCorpus-with-books trace
  (``bwb``, the longest prompts shipped), token counts / 256, ``M = F x`` the largest peak
  (F = 3 and 3.5, tight memory), seeds 0..3;
* ``uniform8-n20-sS``: ``random_instance(20, S)`` (prompt, output uniform 1..8, M = 24), where the
  exact model does not prove within the limit: what a larger share costs the other phases;
* ``conv64-n30-s0``: the trace class of ``bench_exact.py`` at n = 30.

Writes ``benchmarks/results/auto_small.json`` and prints a markdown table (median gap, proven
runs, median wall seconds per instance and share).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_optima import trace_class  # noqa: E402

from scheduler_milp.generators import random_instance  # noqa: E402
from scheduler_milp.model.instance import Instance  # noqa: E402
from scheduler_milp.traces import sample_backlog  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def instances() -> dict[str, Callable[[], Instance]]:
    """The benchmark's instances by name (module docstring)."""
    out: dict[str, Callable[[], Instance]] = {}
    for factor in (3.0, 3.5):
        for seed in range(4):
            out[f"bwb16-m{factor:g}-s{seed}"] = functools.partial(
                sample_backlog, "bwb", 16, seed, memory_factor=factor, scale=256
            )
    for seed in range(2):
        out[f"uniform8-n20-s{seed}"] = functools.partial(random_instance, 20, seed)
    out["conv64-n30-s0"] = functools.partial(trace_class, 30, 0)
    return out


def one_run(path: Path, share: float, limit: float) -> dict[str, Any]:
    """One whole ``auto`` process; its objective, bound, status and wall time."""
    cmd = [sys.executable, "scripts/solve.py", str(path), "--method", "auto"]
    cmd += ["--time-limit", str(limit), "--param", f"exact_first_share={share}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    fields = {}
    for line in proc.stdout.splitlines():
        key, _, rest = line.partition(" ")
        if key in ("status", "objective", "bound") and rest.strip():
            fields[key] = rest.split()[0]
    objective, bound = int(fields["objective"]), int(fields["bound"])
    return {
        "wall": round(wall, 2),
        "objective": objective,
        "bound": bound,
        "gap": (objective - bound) / objective,
        "optimal": fields["status"] == "optimal",
    }


def main() -> int:
    """Run the table (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--shares", default="0.6,0.9", help="exact_first_share values, comma-separated")
    p.add_argument("--time-limit", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3, help="processes per instance and share")
    p.add_argument("--only", default=None, help="comma-separated instance names (default: all)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "auto_small.json"))
    args = p.parse_args()
    shares = [float(s) for s in args.shares.split(",")]
    makers = instances()
    names = args.only.split(",") if args.only else list(makers)
    rows: list[dict[str, Any]] = []
    head = " | ".join(f"share {s:g}: gap, proven, s" for s in shares)
    print(f"| instance | {head} |")
    print("|---|" + "---|" * len(shares))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path = Path(tmp) / f"{name}.json"
            makers[name]().save(path)
            cells = []
            for share in shares:
                runs = [one_run(path, share, args.time_limit) for _ in range(args.repeats)]
                row = {
                    "instance": name, "share": share, "time_limit": args.time_limit, "runs": runs,
                    "median_gap": statistics.median(r["gap"] for r in runs),
                    "proven": sum(r["optimal"] for r in runs),
                    "median_wall": statistics.median(r["wall"] for r in runs),
                    "load_average": os.getloadavg()[0],
                }  # fmt: skip
                rows.append(row)
                cells.append(
                    f"{100 * row['median_gap']:.2f}%, {row['proven']}/{args.repeats}, "
                    f"{row['median_wall']:.1f}"
                )
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    record = {"time_limit": args.time_limit, "repeats": args.repeats, "rows": rows}
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
