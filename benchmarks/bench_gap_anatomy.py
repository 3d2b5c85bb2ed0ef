"""Where does the time-indexed LP's integrality gap sit? Scaled-down analogues of M = 16,384.

``bench_gap_split.py`` shows that on small analogues of the 1,000-request mixed backlog at
M = 16,384 the LP stays clearly below plans that CP-SAT cannot improve, and below proven optima.
This script asks two questions on the same analogues (700 conv : 300 arXiv, tokens / 16,
M = 1,024, about 10 requests running at once):

- **Which requests carry the gap?**  For ``repack``'s plan and the LP optimum, each request's
  completion (the LP's is its fractional mean ``sum_t x_it (t + o_i)``), and the difference summed
  over the arXiv and the conversation requests.
- **Is it a few requests' integrality or everyone's?**  The bound of the time-indexed model with
  only the requests with the largest prompts integral (the rest fractional:
  :func:`scheduler_milp.formulations.lp.partial_integer_bound`), for growing shares of integral
  requests.  It rises from the LP (none integral) to the optimum (all integral).

    python benchmarks/bench_gap_anatomy.py                       # the README's cases (minutes)
    python benchmarks/bench_gap_anatomy.py --cases 20,0 --shares 0.25 0.5 1 --mip-seconds 300

A case is ``n,seed``.  HiGHS runs on one thread; a share whose MILP stops at ``--mip-seconds``
reports its proven dual bound, marked ``(limit)``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scheduler_milp.formulations.lp import partial_integer_bound, solve_lp_model
from scheduler_milp.formulations.timeindexed import build
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve
from scheduler_milp.traces import BENCHMARK_MIX, sample_backlog

CASES = ("20,0", "20,1", "80,0", "80,1")


def run_case(
    case: str,
    scale: int,
    memory: int,
    repack_seconds: float,
    shares: list[float],
    mip_seconds: float,
) -> list[str]:
    """Two markdown rows for ``case``: the completion split and the partial-integrality bounds."""
    n, seed = (int(x) for x in case.split(","))
    inst = sample_backlog(BENCHMARK_MIX, n, seed=seed, memory=memory, scale=scale)
    plan = solve(inst, "repack", SolveOptions(time_limit=repack_seconds, seed=0, threads=1)).plan
    assert plan is not None
    model = build(inst, plan.total_latency)
    lp = solve_lp_model(model)
    assert lp.bound is not None and lp.values is not None
    # each request's starts sum to 1 in the LP: its mean completion is its mean start plus o_i
    lp_completion = model.mean_start(lp.values) + inst.output_len
    delay = plan.start_round + inst.output_len - lp_completion
    arxiv = np.array([str(i).startswith("arxiv") for i in inst.ids])
    obj = plan.total_latency
    split = (
        f"| {n} | {seed} | {obj} | {lp.bound:.2f} | {100 * (obj - lp.bound) / obj:.2f}% "
        f"| {int(arxiv.sum())}: {delay[arxiv].sum():+.1f} | {int((~arxiv).sum())}: {delay[~arxiv].sum():+.1f} |"
    )
    by_prompt = np.argsort(-inst.prompt_len, kind="stable")
    cells = []
    for share in shares:
        k = int(round(share * n))
        t0 = time.perf_counter()
        bound, proven = partial_integer_bound(model, by_prompt[:k], time_limit=mip_seconds)
        closed = 100 * (bound - lp.bound) / max(obj - lp.bound, 1e-9)
        mark = "" if proven else " (limit)"
        cells.append(
            f"{k}: {bound:.2f}{mark}, {closed:.0f}% closed, {time.perf_counter() - t0:.0f} s"
        )
    return [split, f"| {n} | {seed} | " + " | ".join(cells) + " |"]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cases", nargs="+", default=list(CASES), help="n,seed")
    ap.add_argument("--scale", type=int, default=16)
    ap.add_argument("--memory", type=int, default=1024)
    ap.add_argument("--repack-seconds", type=float, default=30.0)
    ap.add_argument(
        "--shares",
        nargs="+",
        type=float,
        default=[0.25, 0.5, 1.0],
        help="shares of requests made integral",
    )
    ap.add_argument("--mip-seconds", type=float, default=120.0)
    args = ap.parse_args()
    splits, partials = [], []
    for case in args.cases:
        split, partial = run_case(
            case, args.scale, args.memory, args.repack_seconds, args.shares, args.mip_seconds
        )
        print(split, flush=True)
        print(partial, flush=True)
        splits.append(split)
        partials.append(partial)
    print("\n| n | seed | plan | LP | gap | arXiv: sum of (plan - LP) completions | conv: same |")
    print("|---:|---:|---:|---:|---:|---|---|")
    print("\n".join(splits))
    shares = " | ".join(f"{s:g} of requests integral (largest prompts)" for s in args.shares)
    print(f"\n| n | seed | {shares} |")
    print("|---:|---:|" + "---|" * len(args.shares))
    print("\n".join(partials))


if __name__ == "__main__":
    main()
