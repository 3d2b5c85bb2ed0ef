"""Capacity curves with certified bounds, and the error of arrivals mapped to rounds (docs/capacity.md).

Capacity (``--mix``, ``--conv``): ``scripts/capacity.py`` on

- ``--mix``: the shipped 1,000-request backlog of 700 Azure conversations and 300 arXiv
  summarizations (``instances/traces/mix-conv70-arxiv30-n1000-M65536.json``), M = 8,192 .. 262,144,
  1, 2 and 4 replicas, ``svf`` and ``auto``, least-loaded and optimised routing;
- ``--conv``: the whole Azure conversation trace (19,366 requests) with its arrivals (timestamps
  kept in seconds as ``arrival_s``; rounds of ``--round-seconds``), M = 16,384 .. 524,288, 1, 2 and
  4 replicas, ``svf`` and ``auto``, least-loaded routing;

each with ``--time-limit`` seconds per run (the bound and every method), resumable in ``--work``;
the tables go to ``benchmarks/results/capacity-*.csv`` and the figures to
``docs/figures/capacity-*.png``.

Arrivals (``--arrivals``): the whole conversation trace mapped to rounds of ``delta`` seconds
(``floor(arrival_s / delta)``), scheduled by ``svf`` at M = 65,536; each request's latency in
seconds on the true clock (its ``arrival_s``; every round of ``delta`` seconds, or the vidur
preset) against the round count times ``delta``. Writes ``benchmarks/results/capacity-arrivals.json``.

    python benchmarks/bench_capacity.py --mix --time-limit 20
    python benchmarks/bench_capacity.py --conv --time-limit 60
    python benchmarks/bench_capacity.py --arrivals
    python benchmarks/bench_capacity.py --table mix        # the per-point table of docs/capacity.md

Online on the clock (``--clock``): the whole conversation trace with its arrivals in seconds,
M = 65,536, online policies under exact and ``lognormal:0.5`` predictions, run two ways on the
``vidur-llama2-7b-a100`` clock: admitted in their arrival rounds of 0.05 s and placed on the clock
afterwards (``--arrivals-by rounds``), or admitted by the executor's own clock (``clock``). Writes
``benchmarks/results/capacity-online-clock.json``.

    python benchmarks/bench_capacity.py --clock

Pooling (``--pooled``): on random tiny instances (3 to 7 requests, lengths 1-6, 40% with arrivals,
30% with a batch cap), the pooled bound of 1 (the one-engine bound itself), 2 and 3 replicas against the exact optimum found by
enumerating every assignment (each replica solved by ``dp``). Writes
``benchmarks/results/capacity-pooled.json``.

    python benchmarks/bench_capacity.py --pooled
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FIGURES = ROOT / "docs" / "figures"
MIX = "instances/traces/mix-conv70-arxiv30-n1000-M65536.json"
PRESET = "vidur-llama2-7b-a100"

SWEEPS: dict[str, list[str]] = {
    "mix": [MIX, "--memories", "8192,16384,32768,65536,131072,262144", "--replicas", "1,2,4",
            "--methods", "svf,auto", "--routing", "least-loaded,optimised"],
    "conv": ["conv", "--arrivals", "--memories", "16384,32768,65536,131072,262144,524288",
             "--replicas", "1,2,4", "--methods", "svf,auto", "--routing", "least-loaded"],
}  # fmt: skip


def command(name: str, args: argparse.Namespace, round_time: str, replot: bool) -> list[str]:
    """The ``capacity.py`` command line of one sweep."""
    cmd = [sys.executable, "scripts/capacity.py", *SWEEPS[name], "--round-time", round_time,
           "--time-limit", str(args.time_limit), "--round-seconds", str(args.round_seconds),
           "--jobs", str(args.jobs), "--out", str(Path(args.work) / name)]  # fmt: skip
    if args.target is not None and round_time != "unit":
        cmd += ["--target-mean", str(args.target)]
    return cmd + (["--replot"] if replot else [])


def sweep(name: str, args: argparse.Namespace) -> None:
    """One capacity sweep through the command line, then its table and figure copied.

    The same runs are then read again in rounds (the unit model, ``-rounds`` files), where the
    bound in rounds is the certificate.
    """
    work = Path(args.work) / name
    RESULTS.mkdir(parents=True, exist_ok=True)
    for round_time, suffix in ((PRESET, ""), ("unit", "-rounds")):
        cmd = command(name, args, round_time, replot=args.replot or round_time == "unit")
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
        shutil.copyfile(work / "capacity.csv", RESULTS / f"capacity-{name}{suffix}.csv")
        shutil.copyfile(work / "capacity.png", FIGURES / f"capacity-{name}{suffix}.png")


def point_table(name: str) -> str:
    """The per-point markdown table of docs/capacity.md from ``capacity-NAME[-rounds].csv``: the best
    plan over methods and routings, its bound and gap, each method's least-loaded gap, and the best
    mean latency with the certified mean in seconds."""
    import pandas as pd

    rounds = pd.read_csv(RESULTS / f"capacity-{name}-rounds.csv")
    secs = pd.read_csv(RESULTS / f"capacity-{name}.csv")
    rows = ["| M | k | best plan (rounds) | by | bound (rounds) | certified gap | `auto` gap | "
            "`svf` gap | best mean latency (s) | certified mean (s) |",
            "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for (m, k), part in rounds[rounds.error.isna()].groupby(["memory", "replicas"]):
        lb = int(part.lower_bound_rounds.max())
        best = part.loc[part.objective_rounds.idxmin()]
        by = best.method + ("" if best.routing in ("-", "least-loaded") else f", {best.routing}")
        plain = part[part.routing.isin(["-", "least-loaded"])]

        def gap_of(method: str, plain: Any = plain, lb: int = lb) -> str:
            obj = plain[plain.method == method].objective_rounds.min()
            return f"{100 * (obj - lb) / obj:.2f}%"

        sp = secs[(secs.memory == m) & (secs.replicas == k) & secs.error.isna()]
        rows.append(
            f"| {m:,} | {k} | {int(best.objective_rounds):,} | {by} | {lb:,} | "
            f"{100 * (best.objective_rounds - lb) / best.objective_rounds:.2f}% | "
            f"{gap_of('auto')} | {gap_of('svf')} | {sp.mean_latency_s.min():.1f} | "
            f"{sp.bound_mean_latency_s.max():.1f} |"
        )
    return "\n".join(rows)


def arrival_error(deltas: list[float], memory: int) -> dict[str, Any]:
    """The error of arrivals mapped to rounds, per ``delta`` (module docstring)."""
    sys.path.insert(0, str(ROOT))
    from scheduler_milp.registry import solve
    from scheduler_milp.timing.clock import with_arrival_seconds
    from scheduler_milp.timing.metrics import plan_times
    from scheduler_milp.timing.roundtime import RoundTime, load_preset
    from scheduler_milp.traces import load_trace, sample_backlog

    table = load_trace("conv")
    out: dict[str, Any] = {"memory": memory, "method": "svf", "rows": []}
    for delta in deltas:
        inst = sample_backlog("conv", None, seed=0, memory=memory, arrivals="trace", round_seconds=delta)  # fmt: skip
        rows = [int(rid.rsplit("-", 1)[1]) for rid in inst.ids]
        secs = table.loc[rows, "arrival_seconds"].to_numpy(dtype=np.float64)
        inst = with_arrival_seconds(inst, secs - secs.min(), delta)
        plan = solve(inst, "svf").plan
        assert plan is not None
        rounds_estimate = (plan.latency * delta).astype(np.float64)
        row: dict[str, Any] = {"delta": delta, "n": inst.n, "objective_rounds": plan.total_latency}
        for label, model in (("fixed", RoundTime(delta, name=f"fixed {delta} s")), ("vidur", load_preset(PRESET))):  # fmt: skip
            t = plan_times(inst, plan.start_round, model)
            err = t.e2e - rounds_estimate
            busy = t.timeline.duration if t.timeline is not None else np.array([np.nan])
            row[label] = {
                "mean_latency_s": float(t.e2e.mean()),
                "rounds_times_delta_mean_s": float(rounds_estimate.mean()),
                "relative_error_of_mean": float(t.e2e.mean() / rounds_estimate.mean() - 1.0),
                "mean_abs_error_s": float(np.abs(err).mean()),
                "max_abs_error_s": float(np.abs(err).max()),
                "p99_ttft_s": float(np.percentile(t.ttft, 99)),
                "mean_busy_round_s": float(busy.mean()),
            }
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
    return out


def online_clock(policies: list[str], predictors: list[str], memory: int) -> dict[str, Any]:
    """Online policies admitted by arrival rounds or by the executor's clock (module docstring)."""
    sys.path.insert(0, str(ROOT))
    import time

    from scheduler_milp.online.run import simulate
    from scheduler_milp.timing.metrics import execution_times
    from scheduler_milp.timing.roundtime import load_preset
    from scheduler_milp.traces import sample_backlog

    inst = sample_backlog("conv", None, seed=0, memory=memory, arrivals="trace",
                          round_seconds=0.05, keep_seconds=True)  # fmt: skip
    model = load_preset(PRESET)
    out: dict[str, Any] = {"memory": memory, "n": inst.n, "round_time": PRESET, "rows": []}
    for policy in policies:
        for predictor in predictors:
            for mode in ("rounds", "clock"):
                t0 = time.perf_counter()
                ex = simulate(inst, policy, predictor, clock=model if mode == "clock" else None)
                seconds = time.perf_counter() - t0
                t = execution_times(ex.instance, ex.segments_by_id(), ex.eviction, model, 0.05)
                row = {
                    "policy": policy, "predictor": predictor, "arrivals_by": mode,
                    "mean_latency_s": float(t.e2e.mean()),
                    "p50_ttft_s": float(np.percentile(t.ttft, 50)),
                    "p99_ttft_s": float(np.percentile(t.ttft, 99)),
                    "mean_tpot_s": float(t.tpot.mean()), "evictions": ex.evictions,
                    "run_seconds": seconds,
                }  # fmt: skip
                out["rows"].append(row)
                print(json.dumps(row), flush=True)
    return out


def pooled_tightness(count: int, seed: int = 0) -> dict[str, Any]:
    """The pooled bound against the exact k-replica optimum on ``count`` random tiny instances per k."""
    sys.path.insert(0, str(ROOT))
    from scheduler_milp.model.instance import Instance
    from scheduler_milp.replicas.bound import replica_lower_bound
    from scheduler_milp.replicas.exact import replica_optimum

    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"count": count, "seed": seed, "by_replicas": {}}
    for k in (1, 2, 3):
        ratios, exact_hits = [], 0
        for _ in range(count):
            n = int(rng.integers(3, 8))
            s, o = rng.integers(1, 7, n), rng.integers(1, 7, n)
            a = rng.integers(0, 4, n) * (rng.random(n) < 0.4)
            cap = None if rng.random() < 0.7 else int(rng.integers(1, 3))
            inst = Instance.create(int((s + o).max()) + int(rng.integers(0, 8)), s, o, a, max_batch=cap)  # fmt: skip
            value, _, starts = replica_optimum(inst, k)
            lb, _ = replica_lower_bound(inst, k, time_limit=5, start_round=starts)
            assert lb <= value
            ratios.append(lb / value)
            exact_hits += lb == value
        r = np.array(ratios)
        out["by_replicas"][k] = {
            "instances": count,
            "bound_equals_optimum": int(exact_hits),
            "mean_bound_over_optimum": float(r.mean()),
            "min_bound_over_optimum": float(r.min()),
        }
        print(k, out["by_replicas"][k], flush=True)
    return out


def main() -> int:
    """Run what the flags ask for."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--mix", action="store_true", help="the 1,000-request mixed backlog")
    p.add_argument("--conv", action="store_true", help="the whole conversation trace with arrivals")
    p.add_argument("--arrivals", action="store_true", help="the error of arrivals in rounds")
    p.add_argument("--pooled", action="store_true", help="the pooled bound against exact optima")
    p.add_argument("--clock", action="store_true", help="online policies on the executor's clock")
    p.add_argument("--time-limit", type=float, default=20.0, help="seconds per run")
    p.add_argument(
        "--round-seconds", type=float, default=0.05, help="seconds per round of arrivals"
    )
    p.add_argument("--target", type=float, default=None, help="mean latency target (s)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    p.add_argument(
        "--work", default=str(ROOT / "runs" / "capacity"), help="resumable work directory"
    )
    p.add_argument("--replot", action="store_true", help="table and figure from the records only")
    p.add_argument(
        "--table", choices=("mix", "conv"), help="print the docs table of a sweep's records"
    )
    args = p.parse_args()
    for name in ("mix", "conv"):
        if getattr(args, name):
            sweep(name, args)
    if args.table:
        print(point_table(args.table))
    if args.arrivals:
        result = arrival_error([0.025, 0.05, 0.1], 65_536)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "capacity-arrivals.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.clock:
        result = online_clock(["vllm", "mcsf", "sorted-f"], ["exact", "lognormal:0.5"], 65_536)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "capacity-online-clock.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.pooled:
        result = pooled_tightness(200)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "capacity-pooled.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
