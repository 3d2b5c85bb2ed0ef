"""The exact frontier: what reduced-cost fixing, cardinality (clique) rows and the configuration LP buy (docs/exact.md, "Strengthening the relaxation").

Three parts, all on ``uniform8`` (``random_instance(n, seed)``: prompt, output uniform in 1..8,
M = 24) unless ``--analogues`` (the M = 16,384 analogues) or ``--trace-class`` (``conv64`` of
``bench_exact.py``) is given:

``--part lp``: per instance, the time-indexed LP (with completion-count rows), the LP with the
cardinality rows ``k <= 1, 2, 3`` added (:func:`cardinality_rows`), and with every ``k``
(``lp_kall``: at least the lanes / arc-flow LP, docs/exact.md), the sawtooth lift at the LP's
memory prices, the share of columns that reduced-cost fixing removes at the best fast plan's
objective and at the optimum (when ``--optima`` gives it or a proof below finds it), and the
share of the LP gap each closes.  Deterministic: no solver time involved.

``--part solve``: each variant of ``--variants`` with ``--time-limit`` and ``--threads``, per
instance: proven or not, seconds, CP-SAT's deterministic time and branches (or HiGHS's nodes),
columns removed.  Variants: ``cpsat`` (the registered method), ``cpsat-fix`` (fixing at the LP
duals, re-done when the incumbent improves), ``cpsat-clique`` (cardinality rows ``k = 1`` as
``AddAtMostOne``), ``cpsat-both``, ``highs`` (the plain MILP through ``highspy``, the control of
the next two), ``highs-fix``, ``highs-both``, ``milp`` (the registered method), ``dp`` (the
independent search with its memory node bound and dominance, no size limit), ``dp-nodominance``
(duplicates pruned only) and ``dp-simple`` (its plain bound, duplicates pruned only).

    python benchmarks/bench_frontier.py --part lp --sizes 8,10,12,14,16,20,25,30
    python benchmarks/bench_frontier.py --part solve --sizes 12,14,16 --variants cpsat,cpsat-fix
    python benchmarks/bench_frontier.py --part lp --analogues      # the M = 16,384 analogues
    python benchmarks/bench_frontier.py --part solve --sizes 8,10,12 --variants dp-simple,dp
    python benchmarks/bench_frontier.py --part solve --sizes 12,14,16 --variants dp-nodominance,dp

``--part config``: per instance, the time-indexed LP, the per-round configuration LP
(:func:`configuration_lp`, column generation; its value at convergence, else its best Lagrangian
bound, see ``converged``), the optimum when known (``--optima``, or ``dp`` for ``n <=
--prove-up-to`` when it proves it within ``--time-limit``), the share of the LP gap closed, the
column-generation iterations, configurations and seconds (``--config-limit`` per instance).

    python benchmarks/bench_frontier.py --part config --sizes 8,10,12 \
        --optima benchmarks/results/frontier_solve.jsonl
    python benchmarks/bench_frontier.py --part config --analogues \
        --optima benchmarks/results/frontier_solve_analogues.jsonl

``--output FILE`` writes the rows as JSON lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_optima import trace_class  # noqa: E402

from scheduler_milp.bounds.sawtooth import sawtooth_bound
from scheduler_milp.formulations.configuration import configuration_lp
from scheduler_milp.formulations.cpsat import CpsatParams
from scheduler_milp.formulations.prepare import prepare
from scheduler_milp.formulations.strengthen import (
    Strengthening,
    cardinality_rows,
    lagrangian_fixing,
    lp_prices,
    solve_strengthened,
    solve_strengthened_milp,
)
from scheduler_milp.generators import random_instance
from scheduler_milp.model.deadline import Deadline
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.result import SolveOptions, SolveResult, Status
from scheduler_milp.registry import solve
from scheduler_milp.traces import BENCHMARK_MIX, sample_backlog

#: the M = 16,384 analogues of bench_gap_split.py: (n, scale, M, seed)
ANALOGUES = ((20, 16, 1024, 0), (20, 16, 1024, 1), (25, 16, 1024, 0), (25, 16, 1024, 1))

Runner = Callable[[Instance, SolveOptions], SolveResult]


def _dp_options(options: SolveOptions, bound: str, dominance: bool = True) -> SolveOptions:
    """``dp`` with node bound ``bound``, dominance on or off, and no size limit of its own (the
    time limit stops it)."""
    params = {"max_n": 64, "bound": bound, "dominance": dominance}
    return dataclasses.replace(options, params=params)


VARIANTS: dict[str, Runner] = {
    "cpsat": lambda inst, opt: solve(inst, "cpsat", opt),
    "milp": lambda inst, opt: solve(inst, "milp", opt),
    "cpsat-fix": lambda inst, opt: solve_strengthened(inst, opt, Strengthening(cliques=0)),
    "cpsat-clique": lambda inst, opt: solve_strengthened(
        inst, opt, Strengthening(fixing=False, cliques=1)
    ),
    "cpsat-both": lambda inst, opt: solve_strengthened(inst, opt, Strengthening(cliques=1)),
    "highs": lambda inst, opt: solve_strengthened_milp(
        inst, opt, Strengthening(fixing=False, cliques=0)
    ),
    "highs-fix": lambda inst, opt: solve_strengthened_milp(inst, opt, Strengthening(cliques=0)),
    "highs-both": lambda inst, opt: solve_strengthened_milp(inst, opt, Strengthening(cliques=1)),
    "dp": lambda inst, opt: solve(inst, "dp", _dp_options(opt, "energy")),
    "dp-nodominance": lambda inst, opt: solve(inst, "dp", _dp_options(opt, "energy", False)),
    "dp-simple": lambda inst, opt: solve(inst, "dp", _dp_options(opt, "simple", False)),
}


def instances(args: argparse.Namespace) -> list[tuple[str, Instance]]:
    """``(label, instance)`` of the chosen class."""
    if args.analogues:
        out = []
        for n, scale, memory, seed in ANALOGUES:
            inst = sample_backlog(BENCHMARK_MIX, n, seed=seed, memory=memory, scale=scale)
            out.append((f"mix-n{n}-s{scale}-M{memory}-seed{seed}", inst))
        return out
    sizes = [int(x) for x in args.sizes.split(",")]
    make = trace_class if args.trace_class else random_instance
    name = "conv64" if args.trace_class else "uniform8"
    return [(f"{name}-n{n}-s{seed}", make(n, seed)) for n in sizes for seed in range(args.seeds)]


def lp_row(label: str, inst: Instance, optimum: int | None) -> dict[str, Any]:
    """The deterministic LP-side figures of one instance."""
    prepared = prepare(inst, SolveOptions(), CpsatParams())
    model = prepared.model
    ub = prepared.upper_bound_plan.total_latency
    base = lp_prices(model)
    assert base is not None
    row: dict[str, Any] = {
        "label": label,
        "n": inst.n,
        "columns": model.n_cols,
        "upper_bound": ub,
        "optimum": optimum,
        "lp": base.value,
    }
    for k in (1, 2, 3):
        cuts = cardinality_rows(model, k)
        res = lp_prices(model, [cuts])
        assert res is not None
        row[f"rows_k{k}"] = cuts.n_rows
        row[f"lp_k{k}"] = res.value
    # every k: at least as strong as the lanes (arc-flow) LP, which equals the LP plus one row
    # "at most K requests run" per round (docs/exact.md)
    cuts = cardinality_rows(model, inst.n)
    res = lp_prices(model, [cuts])
    assert res is not None
    row["rows_kall"] = cuts.n_rows
    row["lp_kall"] = res.value
    lift = sawtooth_bound(inst, base.prices.memory)
    row["sawtooth_at_lp_prices"] = None if lift is None else lift[0]
    keep = model.column_of(prepared.upper_bound_plan.start_round)
    removed, _ = lagrangian_fixing(model, base.prices, ub, keep)
    row["removed_at_ub"] = float(removed.mean())
    if optimum is not None:
        removed, _ = lagrangian_fixing(model, base.prices, optimum + 1)
        row["removed_at_opt"] = float(removed.mean())
        gap = optimum - base.value
        row["lp_gap"] = gap / optimum
        for k in (1, 2, 3):
            row[f"closed_k{k}"] = (row[f"lp_k{k}"] - base.value) / gap if gap > 1e-9 else None
    return row


def config_row(
    label: str,
    inst: Instance,
    optimum: int | None,
    limit: float,
    max_iterations: int,
    prove_up_to: int,
    prove_limit: float,
) -> dict[str, Any]:
    """The configuration LP against the time-indexed LP on one instance (windows of the best fast
    plan, as ``--part lp``); the optimum from ``--optima`` or, for small ``n``, a ``dp`` proof."""
    source = "optima" if optimum is not None else None
    if optimum is None and inst.n <= prove_up_to:
        res = solve(inst, "dp", SolveOptions(time_limit=prove_limit))
        if res.status == Status.OPTIMAL and res.objective is not None:
            optimum, source = res.objective, "dp"
    cfg = configuration_lp(inst, max_iterations=max_iterations, deadline=Deadline.after(limit))
    row: dict[str, Any] = {
        "label": label,
        "n": inst.n,
        "lp": cfg.lp_value,
        "config": cfg.value,
        "config_master": cfg.master,
        "converged": cfg.converged,
        "optimum": optimum,
        "optimum_source": source,
        "iterations": cfg.iterations,
        "columns": cfg.columns,
        "rounds": cfg.rounds,
        "seconds": cfg.seconds,
    }
    if optimum is not None and cfg.lp_value is not None:
        gap = optimum - cfg.lp_value
        row["lp_gap"] = gap / optimum
        row["config_gap"] = (optimum - cfg.value) / optimum
        row["closed"] = (cfg.value - cfg.lp_value) / gap if gap > 1e-9 else None
    return row


def config_summary(rows: list[dict[str, Any]]) -> str:
    """Per n: medians of the LP gap, the configuration-LP gap, the share closed and seconds."""

    def med(values: list[Any], scale: float = 1.0, digits: int = 1) -> str:
        got = [v for v in values if v is not None]
        return f"{scale * statistics.median(got):.{digits}f}" if got else "-"

    out = [
        "| n | instances | converged | median LP gap | median config-LP gap | median share closed "
        "| median s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sorted({r["n"] for r in rows}):
        rs = [r for r in rows if r["n"] == n]
        out.append(
            f"| {n} | {len(rs)} | {sum(r['converged'] for r in rs)}/{len(rs)} | "
            f"{med([r.get('lp_gap') for r in rs], 100)}% | "
            f"{med([r.get('config_gap') for r in rs], 100)}% | "
            f"{med([r.get('closed') for r in rs], 100)}% | "
            f"{med([r['seconds'] for r in rs])} |"
        )
    return "\n".join(out)


def solve_row(
    label: str, inst: Instance, variant: str, limit: float, threads: int
) -> dict[str, Any]:
    """One solve of one variant."""
    t0 = time.perf_counter()
    res = VARIANTS[variant](inst, SolveOptions(time_limit=limit, threads=threads))
    seconds = time.perf_counter() - t0
    return {
        "label": label,
        "n": inst.n,
        "variant": variant,
        "proven": res.status == Status.OPTIMAL,
        "objective": res.objective,
        "bound": res.lower_bound,
        "seconds": seconds,
        "deterministic_time": res.stats.get("deterministic_time"),
        "branches": res.stats.get("branches"),
        "nodes": res.stats.get("nodes"),
        "removed_share": res.stats.get("removed_share"),
        "upper_bound": res.stats.get("upper_bound"),
    }


def summary(rows: list[dict[str, Any]], limit: float) -> str:
    """Per (variant, n): proven, median seconds (unproven count as the limit), median det. time."""
    out = [
        "| variant | n | proven | median s | median det. time | median branches/nodes | removed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    keys = sorted({(r["variant"], r["n"]) for r in rows}, key=lambda k: (k[1], k[0]))
    for variant, n in keys:
        rs = [r for r in rows if r["variant"] == variant and r["n"] == n]
        secs = [r["seconds"] if r["proven"] else limit for r in rs]
        det = [r["deterministic_time"] for r in rs if r["deterministic_time"] is not None]
        work = [r["branches"] or r["nodes"] or 0 for r in rs]
        rem = [r["removed_share"] for r in rs if r["removed_share"] is not None]
        out.append(
            f"| {variant} | {n} | {sum(r['proven'] for r in rs)}/{len(rs)} | "
            f"{statistics.median(secs):.1f} | "
            f"{statistics.median(det) if det else float('nan'):.2f} | "
            f"{statistics.median(work):.0f} | "
            f"{100 * statistics.median(rem) if rem else 0:.0f}% |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen part; JSON rows as they come, then a markdown summary."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--part", choices=("lp", "solve", "config"), default="lp")
    p.add_argument("--sizes", help="default 8,10,12,14,16 (--part config: 8,10,12,14)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--analogues", action="store_true", help="the M = 16,384 analogues instead")
    p.add_argument(
        "--trace-class", action="store_true", help="bench_exact.py's conv64 class instead"
    )
    p.add_argument("--variants", default="cpsat,cpsat-fix")
    p.add_argument("--time-limit", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--optima", help="JSON lines of an earlier --part solve run: proven optima")
    p.add_argument("--output", help="append the rows here as JSON lines")
    p.add_argument(
        "--config-limit", type=float, default=300.0, help="--part config: seconds per instance"
    )
    p.add_argument(
        "--max-iterations", type=int, default=2000, help="--part config: master solves at most"
    )
    p.add_argument(
        "--prove-up-to",
        type=int,
        default=10,
        help="--part config: prove missing optima with dp up to this n (within --time-limit)",
    )
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = "8,10,12,14" if args.part == "config" else "8,10,12,14,16"
    optima: dict[str, int] = {}
    if args.optima:
        for line in Path(args.optima).read_text().splitlines():
            r = json.loads(line)
            if r.get("proven"):
                optima[r["label"]] = int(r["objective"])
    rows: list[dict[str, Any]] = []
    sink = open(args.output, "a") if args.output else None  # noqa: SIM115
    try:
        for label, inst in instances(args):
            if args.part == "lp":
                made = [lp_row(label, inst, optima.get(label))]
            elif args.part == "config":
                made = [
                    config_row(
                        label,
                        inst,
                        optima.get(label),
                        args.config_limit,
                        args.max_iterations,
                        args.prove_up_to,
                        args.time_limit,
                    )
                ]
            else:
                made = [
                    solve_row(label, inst, variant, args.time_limit, args.threads)
                    for variant in args.variants.split(",")
                ]
            for row in made:
                rows.append(row)
                print(json.dumps(row), flush=True)
                if sink is not None:
                    sink.write(json.dumps(row) + "\n")
                    sink.flush()
    finally:
        if sink is not None:
            sink.close()
    if args.part == "solve":
        print()
        print(summary(rows, args.time_limit))
    if args.part == "config":
        print()
        print(config_summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
