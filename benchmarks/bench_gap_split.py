"""How much of a certified gap is the plan and how much the bound? Scaled-down analogues.

At M = 16,384 the 1,000-request mixed backlog keeps a certified gap of several percent
(docs/portfolio.md), and the bound there (the time-indexed LP, reached by the Lagrangian) is
barely above the busy-time bound.  Which side is weak?  This script samples small backlogs from
the same mix (700 conv : 300 arXiv), divides the token counts so that a time-indexed model is
small, and keeps about 10 requests running at once, as at M = 16,384.  On each it runs the LP
bound, ``repack`` for 10 s, and CP-SAT for a long time with ``repack``'s plan as its hint, and
prints:

- ``plan side``: how much better CP-SAT's plan is than ``repack``'s (what better plans could gain);
- ``bound side``: how far the best proven bound stays below the best plan;
- ``LP side``: how far the LP bound alone stays below the best plan.  Where CP-SAT proves its plan
  optimal this is the LP's own gap to the optimum (the ``n = 20`` and ``n = 25``, ``M = 1024``
  cases).

    python benchmarks/bench_gap_split.py                 # the nine cases of the README (CP-SAT: minutes each)
    python benchmarks/bench_gap_split.py --cases 40,16,1024,0,120

A case is ``n,scale,M,seed,cpsat_seconds``.  CP-SAT runs with ``--threads`` workers (default 1).
"""

from __future__ import annotations

import argparse
import time

from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve
from scheduler_milp.traces import BENCHMARK_MIX, sample_backlog

CASES = (
    "40,16,1024,0,120",
    "40,16,1024,1,120",
    "40,16,1024,2,120",
    "25,16,640,0,400",
    "30,32,512,1,400",
    "20,16,1024,0,300",
    "20,16,1024,1,300",
    "25,16,1024,0,300",
    "25,16,1024,1,300",
)


def run_case(case: str, threads: int) -> str:
    """One markdown row for ``case``."""
    n, scale, memory, seed, cp_seconds = (int(x) for x in case.split(","))
    inst = sample_backlog(BENCHMARK_MIX, n, seed=seed, memory=memory, scale=scale)
    lp = solve(inst, "lp", SolveOptions(time_limit=60, seed=0, threads=threads))
    rp = solve(inst, "repack", SolveOptions(time_limit=10, seed=0, threads=threads))
    t0 = time.perf_counter()
    cp = solve(
        inst,
        "cpsat",
        SolveOptions(time_limit=cp_seconds, seed=0, threads=threads, warm_start=rp.plan),
    )
    cp_time = time.perf_counter() - t0
    assert rp.objective is not None and cp.objective is not None
    best = min(rp.objective, cp.objective)
    bound = max(lp.lower_bound or 0, cp.lower_bound or 0)
    plan_side = 100 * (rp.objective - best) / rp.objective
    bound_side = 100 * (best - bound) / best
    lp_side = 100 * (best - (lp.lower_bound or 0)) / best
    return (
        f"| {n} | {scale} | {memory} | {seed} | {lp.lower_bound} | {rp.objective} | {cp.objective} "
        f"({cp.status.value}, {cp_time:.0f} s) | {cp.lower_bound} | {plan_side:.2f}% | {bound_side:.2f}% | {lp_side:.2f}% |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cases", nargs="+", default=list(CASES), help="n,scale,M,seed,cpsat_seconds")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print(
        "| n | scale | M | seed | LP bound | repack 10 s | CP-SAT plan | CP-SAT bound | plan side | bound side | LP side |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for case in args.cases:
        print(run_case(case, args.threads), flush=True)


if __name__ == "__main__":
    main()
