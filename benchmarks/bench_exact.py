"""How far the exact models go: largest ``n`` proven optimal within a time limit, build share, LP gap.

Classes: ``uniform8`` (prompt, output uniform in 1..8, M = 24; ``random_instance``) and
``conv64`` (Azure conv trace lengths divided by 64, M = 2.5 x the largest peak;
``benchmarks/make_optima.py:trace_class``).  For each method and class, ``n`` grows in steps until
fewer than half of the seeds are proven optimal within the limit; the table reports, per ``n``,
how many seeds were proven, the median total seconds (unproven runs count as the limit), the median
build share and the median LP-bound gap ``(opt - ceil(LP)) / opt`` on proven instances.

``--ablation N`` instead runs CP-SAT variants (what each modelling step buys) at one ``n``.

    python benchmarks/bench_exact.py --quick               # a minute: sanity check
    python benchmarks/bench_exact.py                       # the README table (tens of minutes)
    python benchmarks/bench_exact.py --ablation 12         # the docs/exact.md ablation table
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_optima import trace_class  # noqa: E402

from scheduler_milp.formulations.lp import lp_relaxation  # noqa: E402
from scheduler_milp.generators import random_instance  # noqa: E402
from scheduler_milp.model.instance import Instance  # noqa: E402
from scheduler_milp.model.result import SolveOptions, Status, round_bound  # noqa: E402
from scheduler_milp.registry import solve  # noqa: E402

CLASSES: dict[str, Callable[[int, int], Instance]] = {
    "uniform8": lambda n, seed: random_instance(n, seed),
    "conv64": lambda n, seed: trace_class(n, seed),
}

ABLATION: list[tuple[str, dict[str, Any]]] = [
    (
        "plain time-indexed + hint (plain windows)",
        {"tight_windows": False, "symmetry": False, "count_cuts": False, "energy_bound": False},
    ),
    ("+ energy-tightened windows", {"symmetry": False, "count_cuts": False, "energy_bound": False}),
    ("+ symmetry breaking", {"count_cuts": False, "energy_bound": False}),
    ("+ energy bound on the objective", {"count_cuts": False}),
    ("+ completion-count cuts (default)", {}),
    ("default + staircase cumulative (2 pieces)", {"cumulative": 2}),
    ("default + left-shift dominance rows", {"left_shift": True}),
    ("default without hint", {"warm_start": False}),
]


def run(
    instance: Instance,
    method: str,
    limit: float,
    threads: int,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One solve; the numbers the tables need."""
    res = solve(
        instance, method, SolveOptions(time_limit=limit, threads=threads, params=params or {})
    )
    return {
        "n": instance.n,
        "name": instance.name,
        "method": method,
        "proven": res.status == Status.OPTIMAL,
        "objective": res.objective,
        "bound": res.lower_bound,
        "seconds": res.seconds,
        "build_seconds": res.build_seconds,
        # CP-SAT's deterministic time does not depend on machine load (None for milp)
        "deterministic_time": res.stats.get("deterministic_time"),
    }


def lp_gap(instance: Instance, optimum: int) -> float:
    """``(opt - ceil(LP)) / opt`` of the time-indexed LP relaxation."""
    value, _ = lp_relaxation(instance)
    bound = round_bound(value)
    assert bound is not None
    return (optimum - bound) / optimum


def scale_table(
    methods: list[str], classes: list[str], sizes: list[int], seeds: int, limit: float, threads: int
) -> list[dict[str, Any]]:
    """Rows (method, class, n) until fewer than half of the seeds are proven."""
    rows = []
    for cls in classes:
        for method in methods:
            for n in sizes:
                runs = [
                    run(
                        CLASSES[cls](n, seed).replace(name=f"{cls}-n{n}-s{seed}"),
                        method,
                        limit,
                        threads,
                    )
                    for seed in range(seeds)
                ]
                proven = [r for r in runs if r["proven"]]
                gaps = []
                for r in proven:
                    inst = CLASSES[cls](n, int(r["name"].rsplit("-s", 1)[1]))
                    gaps.append(lp_gap(inst, int(r["objective"])))
                row = {
                    "class": cls,
                    "method": method,
                    "n": n,
                    "proven": len(proven),
                    "seeds": seeds,
                    "median_seconds": statistics.median(
                        min(r["seconds"], limit) if r["proven"] else limit for r in runs
                    ),
                    "median_build_share": statistics.median(
                        r["build_seconds"] / max(r["seconds"], 1e-9) for r in runs
                    ),
                    "median_lp_gap": statistics.median(gaps) if gaps else None,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
                if 2 * len(proven) < seeds:
                    break
    return rows


def ablation(cls: str, n: int, seeds: int, limit: float, threads: int) -> list[dict[str, Any]]:
    """CP-SAT variants at one size: seeds proven and median seconds."""
    rows = []
    for label, params in ABLATION:
        runs = [
            run(CLASSES[cls](n, seed), "cpsat", limit, threads, params) for seed in range(seeds)
        ]
        row = {
            "variant": label,
            "class": cls,
            "n": n,
            "proven": sum(r["proven"] for r in runs),
            "seeds": seeds,
            "median_seconds": statistics.median(
                r["seconds"] if r["proven"] else limit for r in runs
            ),
            "median_deterministic_time": statistics.median(
                r["deterministic_time"] or 0.0 for r in runs
            ),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown(rows: list[dict[str, Any]], limit: float) -> str:
    """The README table."""
    out = [
        f"| class | method | n | proven (of seeds) within {limit:.0f}s | median s | build share | LP gap |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        gap = "-" if r["median_lp_gap"] is None else f"{100 * r['median_lp_gap']:.1f}%"
        out.append(
            f"| {r['class']} | {r['method']} | {r['n']} | {r['proven']}/{r['seeds']} | {r['median_seconds']:.1f} | "
            f"{100 * r['median_build_share']:.1f}% | {gap} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the markdown table (JSON rows as they come)."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, 2 seeds, 10 s: a sanity run")
    p.add_argument("--methods", default="cpsat,milp")
    p.add_argument("--classes", default="uniform8,conv64")
    p.add_argument("--sizes", default="8,10,12,14,16,18,20,25,30")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--time-limit", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--ablation",
        type=int,
        default=0,
        metavar="N",
        help="run the CP-SAT ablation at this n instead",
    )
    p.add_argument("--output", help="also write the rows as JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.quick:
        args.sizes, args.seeds, args.time_limit = "6,8", 2, 10.0
    t0 = time.perf_counter()
    if args.ablation:
        rows = ablation(
            args.classes.split(",")[0], args.ablation, args.seeds, args.time_limit, args.threads
        )
        print("\n| variant | proven | median s | median deterministic time |\n|---|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['variant']} | {r['proven']}/{r['seeds']} | {r['median_seconds']:.1f} | {r['median_deterministic_time']:.2f} |"
            )
    else:
        sizes = [int(x) for x in args.sizes.split(",")]
        rows = scale_table(
            args.methods.split(","),
            args.classes.split(","),
            sizes,
            args.seeds,
            args.time_limit,
            args.threads,
        )
        print()
        print(markdown(rows, args.time_limit))
    print(f"\n({time.perf_counter() - t0:.0f}s in all)")
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
