"""Whole-process speed of the serving-engine baselines on the Azure conversation trace.

Every measurement is a separate Python process (``--one`` mode) so that import, trace reading,
the walk and the validation of the plan are all counted, as a user running one method would see
them.  Each configuration runs ``--repeats`` times; the table shows the median wall time, the
median CPU time (user + system: other users of the machine inflate wall time, not CPU time), the
peak resident memory and the average latency of the plan.

    python benchmarks/bench_baselines.py                      # fcfs, sf, mcsf, vllm at n=19,366 and 200,000
    python benchmarks/bench_baselines.py --methods fcfs --sizes 19366 --repeats 5

``n`` equal to the trace's length uses the whole trace in file order; any other ``n`` resamples
the trace with replacement (``numpy.random.default_rng(seed)``).  All arrivals are 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
TRACE_NAME = "AzureLLMInferenceTrace_conv.csv"


def trace_path() -> Path:
    """The shipped copy of the Azure conversation trace."""
    return ROOT / "scheduler_milp" / "data" / "traces" / TRACE_NAME


def read_trace(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(prompt_len, output_len)`` from the trace's ContextTokens and GeneratedTokens columns."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [(int(r["ContextTokens"]), int(r["GeneratedTokens"])) for r in reader]
    arr = np.array(rows, dtype=np.int64)
    return arr[:, 0], arr[:, 1]


def run_one(method: str, n: int, memory: int, seed: int) -> dict[str, object]:
    """Load (and maybe resample) the trace, solve with ``method``; the result row as a dict."""
    from scheduler_milp.model.instance import Instance
    from scheduler_milp.registry import solve

    prompt_len, output_len = read_trace(trace_path())
    if n != len(prompt_len):
        idx = np.random.default_rng(seed).integers(0, len(prompt_len), n)
        prompt_len, output_len = prompt_len[idx], output_len[idx]
    inst = Instance.create(memory, prompt_len, output_len, name=f"azure-conv-{n}")
    res = solve(inst, method)  # the method validates its plan before returning it
    assert res.plan is not None
    row: dict[str, object] = {
        "method": method,
        "n": n,
        "memory": memory,
        "avg_latency": res.plan.average_latency,
        "solve_seconds": res.build_seconds + res.solve_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    for key in ("evictions", "wasted_rounds", "events", "checks"):
        if key in res.stats:
            row[key] = res.stats[key]
    return row


def measure(method: str, n: int, memory: int, seed: int, repeats: int) -> dict[str, object]:
    """Run ``--one`` ``repeats`` times as separate processes; medians of wall and CPU time."""
    walls: list[float] = []
    cpus: list[float] = []
    row: dict[str, object] = {}
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                method,
                "--n",
                str(n),
                "--memory",
                str(memory),
                "--seed",
                str(seed),
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        row = json.loads(out.stdout.strip().splitlines()[-1])
        log.info("%s n=%d: %.2f s wall, %.2f s cpu", method, n, walls[-1], cpus[-1])
    row["wall_seconds"] = statistics.median(walls)
    row["cpu_seconds"] = statistics.median(cpus)
    row["repeats"] = repeats
    return row


def table(rows: list[dict[str, object]]) -> str:
    """The markdown table of the README."""
    lines = [
        "| method | n | M | median wall s | median CPU s | peak RSS MiB | avg latency (rounds) | evictions / wasted rounds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        extra = f"{r['evictions']} / {r['wasted_rounds']}" if "evictions" in r else ""
        lines.append(
            f"| {r['method']} | {r['n']:,} | {r['memory']:,} | {r['wall_seconds']:.2f} | {r['cpu_seconds']:.2f} "
            f"| {r['peak_rss_mib']:.0f} | {r['avg_latency']:.1f} | {extra} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="fcfs,sf,mcsf,vllm")
    parser.add_argument("--sizes", default="19366,200000", help="comma-separated request counts")
    parser.add_argument("--memory", type=int, default=65536)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", metavar="METHOD", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.n, args.memory, args.seed)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        for method in args.methods.split(","):
            rows.append(measure(method, n, args.memory, args.seed, args.repeats))
    print(
        f"trace: {os.path.relpath(trace_path(), ROOT)}, {os.cpu_count()} cores, repeats={args.repeats}"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
