"""Which lower bound is tightest on trace backlogs, and the certified gap of the best fast plan.

Workloads: mixed backlogs of 1,000 requests (700 Azure conversations + 300 arXiv summarizations,
``sample_backlog``) at M = 16,384, 65,536 and 262,144, and the whole Azure conversation trace at
M = 65,536.  For each: the best plan of ``fcfs``, ``sf``, ``mcsf``, ``svf``, ``size`` and every
bound's value, time and the plan's gap against it: volume, busy-time, the Lagrangian ascent and
the sawtooth lift at its prices (when ``n H`` is within ``LIFT_MAX_CELLS``), and at the fluid
prices (docs/bounds.md section 4) the plain Lagrangian ``L`` and its lift.  Prints a markdown
table.

    python benchmarks/bench_bounds.py [--lagrange-time 60] [--skip-whole] [--seed 0]
    python benchmarks/bench_bounds.py --mix arxiv bwb code conv sharegpt --memories 16384 65536 --skip-whole
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from scheduler_milp.baselines.best import best_fast_plan
from scheduler_milp.bounds.lagrangian import fluid_lift, fluid_prices, sawtooth_lift
from scheduler_milp.bounds.sawtooth import lifted_values
from scheduler_milp.bounds.simple import busy_time_bound, volume_bound
from scheduler_milp.bounds.subgradient import lagrangian
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.result import gap
from scheduler_milp.traces import BENCHMARK_MIX, sample_backlog

PLANS = ("fcfs", "sf", "mcsf", "svf", "size")


def workloads(
    seed: int, whole: bool, mixes: list[str] | None = None, memories: list[int] | None = None
) -> list[tuple[str, Callable[[], Instance]]]:
    """(label, builder) for every benchmark workload: 1,000-request backlogs of each mix at each budget."""
    out: list[tuple[str, Callable[[], Instance]]] = []
    for mix in mixes or [BENCHMARK_MIX]:
        label = "mixed" if mix == BENCHMARK_MIX else mix
        for m in memories or [16_384, 65_536, 262_144]:
            out.append(
                (f"{label}-1000 M={m}", partial(sample_backlog, mix, 1000, seed=seed, memory=m))
            )
    if whole:
        out.append(
            ("conv-all M=65536", partial(sample_backlog, "conv", None, seed=seed, memory=65_536))
        )
    return out


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--lagrange-time", type=float, default=60.0, help="seconds for the Lagrangian ascent"
    )
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--skip-whole", action="store_true", help="skip the 19,366-request trace")
    ap.add_argument(
        "--mix",
        nargs="+",
        default=[BENCHMARK_MIX],
        help=f"trace mixes of the 1,000-request backlogs (default {BENCHMARK_MIX})",
    )
    ap.add_argument("--memories", type=int, nargs="+", default=[16_384, 65_536, 262_144])
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for label, build in workloads(args.seed, not args.skip_whole, args.mix, args.memories):
        inst = build()
        t0 = time.perf_counter()
        best_name, best = best_fast_plan(inst, PLANS)
        plan_secs = time.perf_counter() - t0
        ub = best.total_latency
        bounds: list[tuple[str, int, float, str]] = []
        bounds.append(("sum_output", inst.trivial_lower_bound(), 0.0, ""))
        for name, fn in (("volume", volume_bound), ("busy-time", busy_time_bound)):
            t = time.perf_counter()
            value = fn(inst)
            bounds.append((name, value, time.perf_counter() - t, ""))
        lag = lagrangian(
            inst, ub=ub, plan=best, iterations=args.iterations, time_limit=args.lagrange_time
        )
        bounds.append(
            (
                "lagrange",
                lag.bound,
                lag.seconds,
                f"{lag.iterations} it, H={lag.horizon}, w={lag.bucket_width}",
            )
        )
        t = time.perf_counter()
        lift = sawtooth_lift(inst, lag)
        if lift is not None:
            bounds.append(("sawtooth (ascent's prices)", lift, time.perf_counter() - t, ""))
        # L at the fluid prices: the lifted function at a vanishing theta (a bound itself, rounded down)
        prices = fluid_prices(inst, best.makespan)
        t = time.perf_counter()
        plain = lifted_values(inst, prices, np.array([1e-12 * float(prices.mean())]))
        assert plain is not None
        bounds.append(
            (
                "lagrange at fluid prices",
                int(plain[0]),
                time.perf_counter() - t,
                "exact, H = plan makespan",
            )
        )
        t = time.perf_counter()
        fluid = fluid_lift(inst, best.makespan)
        if fluid is not None:
            bounds.append(("sawtooth (fluid prices)", fluid, time.perf_counter() - t, ""))
        for name, value, secs, note in bounds:
            g = gap(ub, value)
            rows.append(
                (
                    label,
                    inst.n,
                    best_name,
                    ub,
                    f"{plan_secs:.1f}",
                    name,
                    value,
                    f"{secs:.2f}",
                    f"{100 * (g or 0):.2f}%",
                    note,
                )
            )
            print(" | ".join(str(x) for x in rows[-1]), flush=True)
    print()
    print(
        "| workload | n | best plan | objective | plans s | bound | value | bound s | gap | note |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")


if __name__ == "__main__":
    main()
