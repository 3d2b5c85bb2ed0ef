"""Certified gap of ``auto`` on real mixed backlogs: which plan and which bound won, gap over time.

Default run (three backlogs at 120 s each, plus start-up)::

    python benchmarks/bench_auto.py                      # 1,000 requests (700 conv + 300 arXiv, seed 0), M = 16,384 / 65,536 / 262,144, 120 s each
    python benchmarks/bench_auto.py --full --only-full   # the whole Azure conversation backlog at M = 65,536, 600 s
    python benchmarks/bench_auto.py --seed 0 1 2         # three seeds each, then the median gap per backlog
    python benchmarks/bench_auto.py --mix arxiv bwb code conv sharegpt --memories 16384 65536   # one trace per backlog
    python benchmarks/bench_auto.py --block-size 16 --time-limit 60   # vLLM's block size
    python benchmarks/bench_auto.py --memories 32768 --max-batch 24     # a batch cap that binds with memory
    python benchmarks/bench_auto.py --mix conv --arrivals --memories 8192   # requests arrive as in the trace

Writes one JSON record per run to ``--out`` (default ``benchmarks/results/auto.jsonl``, appended)
and prints a markdown table.  Wall-clock numbers depend on the machine's load: quote medians of
several runs when comparing speed.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from scheduler_milp.model.instance import Instance
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve
from scheduler_milp.traces import BENCHMARK_MIX, sample_backlog

CHECKPOINTS = (5, 10, 30, 60, 120, 300, 600, 1200, 1800)


def backlog_name(
    mix: str,
    n: int,
    memory: int,
    block_size: int = 1,
    max_batch: int | None = None,
    arrivals: bool = False,
) -> str:
    """``mix1000-M16384`` for the default mix, else e.g. ``bwb1000-M16384``; ``-B16`` appended for
    block size 16, ``-cap24`` for a batch cap of 24, ``-arrivals`` with the trace's arrivals.

    The names key the records in ``auto.jsonl`` (and the report's tables), so they stay stable."""
    label = "mix" if mix == BENCHMARK_MIX else mix.replace("=", "").replace(",", "-")
    return (
        f"{label}{n}-M{memory}"
        + (f"-B{block_size}" if block_size != 1 else "")
        + (f"-cap{max_batch}" if max_batch is not None else "")
        + ("-arrivals" if arrivals else "")
    )


def gap_at(history: list[dict[str, Any]], seconds: float) -> float | None:
    """The certified gap the run held after ``seconds`` (last history entry not later than that)."""
    held = None
    for h in history:
        if h["seconds"] <= seconds and h["gap"] is not None:
            held = h["gap"]
    return held


def run(instance: Instance, label: str, time_limit: float, seed: int) -> dict[str, Any]:
    """Run ``auto`` once and summarise it."""
    t0 = time.perf_counter()
    res = solve(instance, "auto", SolveOptions(time_limit=time_limit, seed=seed))
    wall = time.perf_counter() - t0
    hist = res.stats["history"]
    return {
        "label": label,
        "seed": seed,
        "instance": instance.name,
        "n": instance.n,
        "memory": instance.memory_budget,
        "time_limit": time_limit,
        "wall_seconds": round(wall, 2),
        "objective": res.objective,
        "lower_bound": res.lower_bound,
        "gap": res.gap,
        "status": res.status.value,
        "plan_source": res.stats["plan_source"],
        "bound_source": res.stats["bound_source"],
        "phase_seconds": res.stats.get("phase_seconds"),
        "skipped": res.stats.get("skipped"),
        "errors": res.stats.get("errors"),
        "gap_over_time": {str(c): gap_at(hist, c) for c in CHECKPOINTS if c <= time_limit},
        "history": hist,
        "machine": platform.node(),
    }


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the runs."""
    cps = sorted({int(c) for r in rows for c in r["gap_over_time"]})
    head = (
        "| instance | seed | n | M | limit s | wall s | objective | bound | gap | plan won | bound won | "
        + " | ".join(f"gap@{c}s" for c in cps)
        + " |"
    )
    sep = "|" + "---|" * (11 + len(cps))
    lines = [head, sep]
    for r in rows:
        g = r["gap_over_time"]
        cells = [f"{100 * g[str(c)]:.2f}%" if g.get(str(c)) is not None else "-" for c in cps]
        lines.append(
            f"| {r['instance']} | {r.get('seed', '-')} | {r['n']} | {r['memory']} | {r['time_limit']:.0f} | {r['wall_seconds']:.1f} | "
            f"{r['objective']} | {r['lower_bound']} | {100 * r['gap']:.2f}% | {r['plan_source']} | {r['bound_source']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def seed_summary(rows: list[dict[str, Any]]) -> str:
    """Markdown table: per backlog, the gap of every seed and their median."""
    by: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["instance"], r["memory"]), []).append(r)
    lines = ["| instance | M | seeds | gaps | median gap |", "|---|---|---|---|---|"]
    for (name, m), rs in by.items():
        gaps = [100 * r["gap"] for r in rs]
        lines.append(
            f"| {name} | {m} | {', '.join(str(r['seed']) for r in rs)} | "
            f"{' / '.join(f'{g:.2f}%' for g in gaps)} | {statistics.median(gaps):.2f}% |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run the grid, print the table."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=1000, help="requests per mixed backlog")
    p.add_argument(
        "--mix",
        nargs="+",
        default=[BENCHMARK_MIX],
        help=f"trace mixes to sample the backlogs from, e.g. 'bwb' or 'conv=0.5,code=0.5' (default {BENCHMARK_MIX}, named mix<n>-M<M>)",
    )
    p.add_argument("--memories", type=int, nargs="+", default=[16384, 65536, 262144])
    p.add_argument("--time-limit", type=float, default=120.0)
    p.add_argument(
        "--block-size",
        type=int,
        default=1,
        help="KV-cache block size of the sampled backlogs (vLLM: 16)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=None,
        help="batch cap of the sampled backlogs (vLLM's max_num_seqs)",
    )
    p.add_argument(
        "--arrivals",
        action="store_true",
        help="requests arrive as in the trace (a window of one Azure trace: --mix conv or code; sample_backlog(arrivals='trace'))",
    )
    p.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[0],
        help="sampling seed (and auto's seed); several seeds run the grid once per seed (the whole backlog is the same for every seed, only auto's seed changes)",
    )
    p.add_argument(
        "--full", action="store_true", help="also run the whole Azure conversation backlog"
    )
    p.add_argument("--only-full", action="store_true", help="run only the whole backlog")
    p.add_argument("--full-memory", type=int, default=65536)
    p.add_argument("--full-time-limit", type=float, default=600.0)
    p.add_argument("--out", default="benchmarks/results/auto.jsonl")
    p.add_argument("-v", "--verbose", action="store_true", help="auto's progress lines to stderr")
    args = p.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    jobs: list[tuple[Instance, str, float, int]] = []
    for seed in args.seed:
        if not args.only_full:
            for mix in args.mix:
                for m in args.memories:
                    inst = sample_backlog(
                        mix,
                        args.n,
                        seed,
                        memory=m,
                        block_size=args.block_size,
                        max_batch=args.max_batch,
                        arrivals="trace" if args.arrivals else None,
                        name=backlog_name(
                            mix, args.n, m, args.block_size, args.max_batch, args.arrivals
                        ),
                    )
                    jobs.append((inst, "mixed", args.time_limit, seed))
        if args.full or args.only_full:
            inst = sample_backlog(
                {"conv": 1.0},
                None,
                seed,
                memory=args.full_memory,
                name=f"conv-all-M{args.full_memory}",
            )
            jobs.append((inst, "whole-conv", args.full_time_limit, seed))
    for inst, label, limit, seed in jobs:
        row = run(inst, label, limit, seed)
        rows.append(row)
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(
            f"{inst.name} (seed {seed}): gap {100 * row['gap']:.2f}% ({row['plan_source']} / {row['bound_source']}) in {row['wall_seconds']:.1f}s",
            flush=True,
        )
    print(table(rows))
    if len(args.seed) > 1:
        print()
        print(seed_summary(rows))


if __name__ == "__main__":
    main()
