"""Capacity planning: how much KV memory, and how many replicas, a workload needs (docs/capacity.md).

    python scripts/capacity.py instances/traces/mix-conv70-arxiv30-n1000-M65536.json \\
        --memories 8192,16384,32768,65536,131072,262144 --replicas 1,2,4 --methods svf,auto \\
        --round-time vidur-llama2-7b-a100 --time-limit 20 --target-mean 30 --out runs/capacity

For every memory ``M`` and replica count ``k``: one run per method (and routing, for ``k > 1``),
each scheduling the workload on ``k`` engines of budget ``M`` within the time limit, and one run
proving the lower bound of every ``k``-replica plan (the pooled instance, ``scheduler_milp.
replicas.bound``).  Runs go to ``OUT/runs.jsonl`` one line each as they finish (start rounds and
replicas included), so an interrupted sweep resumes where it stopped, and the seconds are
recomputed from the stored plans for any ``--round-time`` without solving again.  Then
``OUT/capacity.csv`` (one row per run) and ``OUT/capacity.png`` (mean latency against memory, one
panel per replica count, the certified bound under the curves, and with ``--target-mean`` the
answer stated both ways).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scheduler_milp.cli import UsageError, guarded, setup_logging
from scheduler_milp.experiments.grid import file_hash
from scheduler_milp.experiments.run import one_line
from scheduler_milp.experiments.store import DirectoryLock, RunLog, read_runs
from scheduler_milp.experiments.sweep import Progress
from scheduler_milp.model.instance import Instance, InstanceError, load_instance, write_json_atomic
from scheduler_milp.model.result import SolveOptions, gap
from scheduler_milp.registry import METHODS
from scheduler_milp.replicas.routing import ROUTINGS
from scheduler_milp.timing.certify import seconds_lower_bound
from scheduler_milp.timing.clock import arrival_seconds
from scheduler_milp.timing.roundtime import RoundTime, RoundTimeError, parse_round_time

log = logging.getLogger(__name__)

RAW = "runs.jsonl"
TABLE = "capacity.csv"
FIGURE = "capacity.png"
META = "capacity-meta.json"
BOUND = "bound"


@dataclass(frozen=True)
class Point:
    """One run: a method (or the bound) on ``replicas`` engines of ``memory`` each."""

    instance_path: str
    instance_hash: str
    memory: int
    replicas: int
    method: str
    routing: str
    time_limit: float
    seed: int = 0

    @property
    def key(self) -> str:
        """Identity for resuming."""
        return (
            f"{self.instance_hash}|{self.instance_path}|M={self.memory}|K={self.replicas}|"
            f"{self.method}|{self.routing}|tl={self.time_limit}|seed={self.seed}"
        )


def make_points(path: str, memories: Sequence[int], replicas: Sequence[int], methods: Sequence[str],
                routings: Sequence[str], time_limit: float, seed: int = 0) -> list[Point]:  # fmt: skip
    """Every run of the grid, memory-major: the bound of each (memory, replicas) first, then the methods."""
    digest = file_hash(path)
    out = []
    for m in memories:
        for k in replicas:
            out.append(Point(path, digest, m, k, BOUND, "-", time_limit, seed))
            for method in methods:
                for routing in routings if k > 1 else ("-",):
                    out.append(Point(path, digest, m, k, method, routing, time_limit, seed))
    return out


def run_point(point: dict[str, Any]) -> dict[str, Any]:
    """One run (in a worker); never raises: errors go to the row's ``error``."""
    from scheduler_milp.replicas.bound import replica_lower_bound
    from scheduler_milp.replicas.solve import solve_replicas

    p = Point(**point)
    row: dict[str, Any] = {"key": p.key, **asdict(p), "error": ""}
    t0 = time.perf_counter()
    try:
        inst = load_instance(p.instance_path).replace(memory_budget=p.memory)
        row["n"] = inst.n
        if p.method == BOUND:
            value, source = replica_lower_bound(inst, p.replicas, p.time_limit)
            row.update(lower_bound=int(value), bound_source=source)
        else:
            options = SolveOptions(time_limit=p.time_limit, seed=p.seed, threads=1)
            res = solve_replicas(inst, p.replicas, p.method, p.routing if p.replicas > 1 else "least-loaded", options, bound=False)  # fmt: skip
            row.update(
                objective=res.objective,
                lower_bound=res.lower_bound,
                bound_source=res.bound_source,
                starts=res.plan.start_round.tolist(),
                assignment=res.plan.assignment.tolist() if p.replicas > 1 else None,
                stats=res.stats,
            )
    except InstanceError as err:  # a request whose peak exceeds M: no plan at this memory
        row["error"] = f"infeasible: {one_line(err)}"
    except Exception as err:  # a failing method is a recorded result, not the end of the sweep
        row["error"] = one_line(err)
        log.debug("run %s failed", p.key, exc_info=True)
    row["wall_seconds"] = round(time.perf_counter() - t0, 3)
    return row


def run_grid(points: Sequence[Point], out: Path, jobs: int, progress: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """Run the points not yet in ``OUT/runs.jsonl`` (``jobs`` processes); every row of the grid."""
    out.mkdir(parents=True, exist_ok=True)
    with DirectoryLock(out):
        done = {r["key"]: r for r in read_runs(out / RAW)}
        todo = [p for p in points if p.key not in done]
        bar = Progress(len(points), len(points) - len(todo), enabled=progress)
        bar.update(force=True)
        runlog = RunLog(out / RAW)
        count = [len(points) - len(todo)]

        def record(row: dict[str, Any]) -> None:
            runlog.append(row)
            done[row["key"]] = row
            count[0] += 1
            bar.update(count[0])

        try:
            if jobs <= 1:
                for p in todo:
                    record(run_point(asdict(p)))
            else:
                _run_parallel(todo, jobs, record, bar.update)
        finally:
            runlog.close()
            bar.close()
    return [done[p.key] for p in points if p.key in done]


def _run_parallel(todo: Sequence[Point], jobs: int, record: Callable[[dict[str, Any]], None], tick: Callable[[], None]) -> None:  # fmt: skip
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures: set[Future[dict[str, Any]]] = {pool.submit(run_point, asdict(p)) for p in todo}
        while futures:
            finished, futures = wait(futures, timeout=1.0, return_when=FIRST_COMPLETED)
            for f in finished:
                record(f.result())
            tick()


# ---------------------------------------------------------------------------- the table
TABLE_COLUMNS = [
    "memory", "replicas", "method", "routing", "n", "objective_rounds", "mean_latency_rounds",
    "lower_bound_rounds", "bound_source", "gap", "round_time", "mean_latency_s", "p50_latency_s",
    "p90_latency_s", "p99_latency_s", "mean_ttft_s", "p50_ttft_s", "p90_ttft_s", "p99_ttft_s",
    "mean_tpot_s", "p50_tpot_s", "p90_tpot_s", "p99_tpot_s", "throughput_tokens_per_s",
    "slo_attainment", "bound_mean_latency_s", "bound_kind", "gap_seconds", "time_limit",
    "wall_seconds", "error",
]  # fmt: skip


def best_bounds(rows: Sequence[dict[str, Any]]) -> dict[tuple[int, int], tuple[int, str]]:
    """The best proven bound of each (memory, replicas) over all its runs."""
    out: dict[tuple[int, int], tuple[int, str]] = {}
    for r in rows:
        if r.get("error") or r.get("lower_bound") is None:
            continue
        key = (int(r["memory"]), int(r["replicas"]))
        if key not in out or int(r["lower_bound"]) > out[key][0]:
            out[key] = (int(r["lower_bound"]), str(r.get("bound_source")))
    return out


def derive_table(rows: Sequence[dict[str, Any]], instance: Instance, model: RoundTime,
                 round_seconds: float | None, ttft: float | None, tpot: float | None) -> list[dict[str, Any]]:  # fmt: skip
    """One row per method run: rounds, the best bound, the metrics in seconds and the certified bound in seconds."""
    from scheduler_milp.replicas.plan import replica_times

    bounds = best_bounds(rows)
    arrival = arrival_seconds(instance, model, round_seconds)
    table = []
    for r in rows:
        if r["method"] == BOUND:
            continue
        m, k = int(r["memory"]), int(r["replicas"])
        lb, src = bounds.get((m, k), (None, None))
        out: dict[str, Any] = {
            "memory": m, "replicas": k, "method": r["method"], "routing": r["routing"],
            "n": instance.n, "round_time": model.name, "time_limit": r["time_limit"],
            "wall_seconds": r.get("wall_seconds"), "error": r.get("error", ""),
            "lower_bound_rounds": lb, "bound_source": src,
        }  # fmt: skip
        if not r.get("error") and r.get("starts") is not None:
            obj = int(r["objective"])
            assign = r.get("assignment") or [0] * instance.n
            times = replica_times(instance, k, assign, r["starts"], model, arrival=arrival)
            s = times.summary(ttft, tpot)
            sb = None if lb is None else seconds_lower_bound(instance, model, lb, k, arrival)
            mean_s = s["e2e"]["mean"]
            out.update(
                objective_rounds=obj,
                mean_latency_rounds=obj / instance.n,
                gap=gap(obj, lb),
                mean_latency_s=mean_s,
                **{f"{q}_latency_s": s["e2e"][q] for q in ("p50", "p90", "p99")},
                **{f"{q}_ttft_s": s["ttft"][q] for q in ("mean", "p50", "p90", "p99")},
                **{f"{q}_tpot_s": s["tpot"][q] for q in ("mean", "p50", "p90", "p99")},
                throughput_tokens_per_s=s["throughput_tokens_per_s"],
                slo_attainment=(s.get("slo") or {}).get("attainment"),
                bound_mean_latency_s=None if sb is None else sb.mean,
                bound_kind=None if sb is None else sb.kind,
                gap_seconds=None if sb is None else gap(mean_s, sb.mean),
            )  # fmt: skip
        table.append(out)
    return table


def write_table(table: Sequence[dict[str, Any]], path: Path) -> None:
    """``capacity.csv``, atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for row in table:
            w.writerow({k: _cell(row.get(k)) for k in TABLE_COLUMNS})
    os.replace(tmp, path)


def _cell(x: Any) -> Any:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.6g}" if math.isfinite(x) else ""
    return x


# ---------------------------------------------------------------------------- the answer
@dataclass(frozen=True)
class Answer:
    """For one replica count: the least memory our best plan meets the target with, and the largest memory no plan can."""

    replicas: int
    achieved: int | None  # smallest M at which the best plan's mean latency <= target
    achieved_value: float | None
    impossible_up_to: int | None  # largest M at which the certified bound > target
    impossible_value: float | None


def best_envelope(rows: Sequence[dict[str, Any]]) -> dict[int, float]:
    """The best mean latency usable at each memory: a plan for ``M' <= M`` is valid at ``M`` too.

    The methods minimise rounds and fill the memory they are given; in seconds a larger batch
    makes every round slower, so at a large ``M`` the best plan of a smaller one may be faster.
    """
    mems = sorted({int(r["memory"]) for r in rows})
    raw = {m: min(float(r["mean_latency_s"]) for r in rows if int(r["memory"]) == m) for m in mems}
    out, best = {}, math.inf
    for m in mems:
        best = min(best, raw[m])
        out[m] = best
    return out


def answers(table: Sequence[dict[str, Any]], target: float) -> list[Answer]:
    """The two answers for every replica count (mean latency in the table's seconds)."""
    out = []
    for k in sorted({int(r["replicas"]) for r in table}):
        rows = [r for r in table if int(r["replicas"]) == k and r.get("mean_latency_s") is not None]
        mems = sorted({int(r["memory"]) for r in rows})
        best = best_envelope(rows)
        bound = {int(r["memory"]): float(r["bound_mean_latency_s"]) for r in rows if r.get("bound_mean_latency_s") is not None}  # fmt: skip
        ok = [m for m in mems if best[m] <= target]
        no = [m for m, b in bound.items() if b > target]
        out.append(
            Answer(
                k,
                min(ok) if ok else None,
                best[min(ok)] if ok else None,
                max(no) if no else None,
                bound[max(no)] if no else None,
            )
        )
    return out


def answer_lines(ans: Sequence[Answer], target: float, unit: str) -> list[str]:
    """The answers in words."""
    lines = [f"target: mean latency <= {target:g} {unit}"]
    for a in ans:
        got = (
            f"our best plan meets it from M = {a.achieved:,} ({a.achieved_value:.4g} {unit}, using at most M)"
            if a.achieved is not None
            else "no plan of the grid meets it"
        )
        cert = (
            f"no schedule can at M <= {a.impossible_up_to:,} (bound {a.impossible_value:.4g} {unit})"
            if a.impossible_up_to is not None
            else "the bound excludes no memory of the grid"
        )
        lines.append(f"  {a.replicas} replica{'s' if a.replicas > 1 else ''}: {got}; {cert}")
    return lines


# ---------------------------------------------------------------------------- the figure
def plot_capacity(table: Sequence[dict[str, Any]], path: Path, title: str, unit: str,
                  target: float | None = None) -> None:  # fmt: skip
    """Mean latency against memory, one panel per replica count, the certified bound shaded below.

    Colour: the method; line style: the routing (solid for one replica and least-loaded).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ks = sorted({int(r["replicas"]) for r in table})
    fig = Figure(figsize=(3.9 * len(ks) + 1.8, 4.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(ks), sharey=True, squeeze=False)[0]
    methods = sorted({str(r["method"]) for r in table})
    colour = {m: f"C{i}" for i, m in enumerate(methods)}
    style = {"-": "-", "least-loaded": "-", "optimised": "--", "round-robin": ":"}
    ans = {a.replicas: a for a in answers(table, target)} if target is not None else {}
    handles: dict[str, Any] = {}
    for ax, k in zip(axes, ks, strict=True):
        rows = [r for r in table if int(r["replicas"]) == k and r.get("mean_latency_s") is not None]
        for method, routing in sorted({(str(r["method"]), str(r["routing"])) for r in rows}):
            pts = sorted((int(r["memory"]), float(r["mean_latency_s"])) for r in rows if r["method"] == method and r["routing"] == routing)  # fmt: skip
            label = method if routing in ("-", "least-loaded") else f"{method}, {routing}"
            (line,) = ax.plot(*zip(*pts, strict=True), marker="o", ms=3.5, lw=1.4,
                              color=colour[method], ls=style.get(routing, "-."), label=label)  # fmt: skip
            handles.setdefault(label, line)
        env = best_envelope(rows) if rows else {}
        if env and any(env[m] < min(float(r["mean_latency_s"]) for r in rows if int(r["memory"]) == m) for m in env):  # fmt: skip
            (line,) = ax.plot(list(env), list(env.values()), color="0.35", lw=3, alpha=0.35,
                              label="best plan using at most M", zorder=0)  # fmt: skip
            handles.setdefault("best plan using at most M", line)
        bound = sorted({(int(r["memory"]), float(r["bound_mean_latency_s"])) for r in rows if r.get("bound_mean_latency_s") is not None})  # fmt: skip
        if bound:
            xs, ys = zip(*bound, strict=True)
            (line,) = ax.plot(xs, ys, color="black", lw=1.6, label="certified lower bound")
            handles.setdefault("certified lower bound", line)
            area = ax.fill_between(xs, 0, ys, color="0.88", label="no schedule can be here")
            handles.setdefault("no schedule can be here", area)
        if target is not None:
            line = ax.axhline(
                target, color="crimson", ls=":", lw=1.3, label=f"target {target:g} {unit}"
            )
            handles.setdefault(f"target {target:g} {unit}", line)
        heading = f"{k} replica{'s' if k > 1 else ''}"
        a = ans.get(k)
        if a is not None:
            got = (
                f"best plan meets it from M={a.achieved:,}"
                if a.achieved
                else "no plan of the grid meets it"
            )
            cert = (
                f"no schedule can at M<={a.impossible_up_to:,}"
                if a.impossible_up_to
                else "the bound excludes no M of the grid"
            )
            heading += f"\n{got}\n{cert}"
        ax.set_title(heading, fontsize=8.5)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("KV memory per replica M (tokens)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(f"mean latency ({unit})")
    fig.legend(list(handles.values()), list(handles), loc="outside right center", fontsize=7.5)
    fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ---------------------------------------------------------------------------- the workload
def _trace_instance(spec: str, args: argparse.Namespace, memory: int) -> Instance:
    """A sample of the shipped traces (``conv=0.7,arxiv=0.3``), with ``arrival_s`` when arrivals come from timestamps."""
    from scheduler_milp.traces import parse_mix, sample_backlog

    return sample_backlog(parse_mix(spec), args.n, seed=args.seed, memory=memory,
                          arrivals="trace" if args.arrivals else None,
                          round_seconds=args.round_seconds, peak_hour=args.peak_hour,
                          keep_seconds=True)  # fmt: skip


def workload(args: argparse.Namespace, out: Path, memories: Sequence[int]) -> str:
    """The instance file of the sweep: the given file, or ``OUT/instance.json`` sampled from the traces."""
    if Path(args.instance).is_file():
        return os.path.normpath(args.instance)
    target = out / "instance.json"
    spec = {"mix": args.instance, "n": args.n, "seed": args.seed, "arrivals": args.arrivals,
            "round_seconds": args.round_seconds, "peak_hour": args.peak_hour}  # fmt: skip
    made = out / "instance-spec.json"
    if target.exists() and made.exists() and json.loads(made.read_text()) == spec:
        return str(target)
    try:
        inst = _trace_instance(args.instance, args, max(memories))
    except (KeyError, ValueError) as err:
        raise UsageError(
            f"{args.instance}: neither an instance file nor a trace mix ({err})"
        ) from None
    out.mkdir(parents=True, exist_ok=True)
    inst.save(target)
    write_json_atomic(made, spec)
    return str(target)


# ---------------------------------------------------------------------------- command line
def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return sorted(set(values))


def build_parser() -> argparse.ArgumentParser:
    """The ``capacity.py`` argument parser."""
    p = argparse.ArgumentParser(
        prog="capacity.py",
        description="Capacity planning over KV memory and replicas, with certified lower bounds. "
        "Rerunning with the same --out skips finished runs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "instance", help="instance file, or a trace mix of the shipped traces (conv=0.7,arxiv=0.3)"
    )
    p.add_argument(
        "--memories", type=_int_list, required=True, help="KV budgets per replica, comma-separated"
    )
    p.add_argument(
        "--replicas", type=_int_list, default=[1], help="replica counts, comma-separated"
    )
    p.add_argument(
        "--methods", default="svf,auto", help="registered methods scheduling each replica"
    )
    p.add_argument(
        "--routing", default="least-loaded", help=f"routings for k > 1 ({', '.join(ROUTINGS)})"
    )
    p.add_argument(
        "--round-time",
        default="unit",
        help="unit | preset | c0=..,c_prefill=..,c_decode=..,c_kv=.. | FILE",
    )
    p.add_argument(
        "--round-seconds",
        type=float,
        default=0.05,
        help="seconds per round that arrivals in rounds stand for",
    )
    p.add_argument(
        "--time-limit", type=float, default=20.0, help="seconds per run (the bound and each method)"
    )
    p.add_argument(
        "--target-mean",
        type=float,
        default=None,
        help="mean latency target (seconds of the round-time model)",
    )
    p.add_argument("--ttft", type=float, default=None, help="TTFT target for SLO attainment (s)")
    p.add_argument("--tpot", type=float, default=None, help="TPOT target for SLO attainment (s)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    p.add_argument("--seed", type=int, default=0, help="seed of the methods and of a trace sample")
    p.add_argument(
        "--n", type=int, default=None, help="requests of a trace sample (default: the whole trace)"
    )
    p.add_argument(
        "--arrivals", action="store_true", help="trace sample with arrivals from its timestamps"
    )
    p.add_argument("--peak-hour", action="store_true", help="with --arrivals: the densest window")
    p.add_argument(
        "--replot",
        action="store_true",
        help="only rebuild capacity.csv and the figure from runs.jsonl",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return p


def run_capacity(args: argparse.Namespace) -> int:
    """The sweep, the table, the figure and the answer; the exit status."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UsageError(f"unknown method {unknown[0]!r}; known: {', '.join(METHODS)}")
    routings = [r.strip() for r in args.routing.split(",") if r.strip()]
    bad = [r for r in routings if r not in ROUTINGS]
    if bad:
        raise UsageError(f"unknown routing {bad[0]!r}; known: {', '.join(ROUTINGS)}")
    if not args.time_limit > 0:
        raise UsageError("--time-limit must be positive")
    try:
        model = parse_round_time(args.round_time)
    except RoundTimeError as err:
        raise UsageError(str(err)) from None
    out = Path(args.out)
    path = workload(args, out, args.memories)
    points = make_points(path, args.memories, args.replicas, methods, routings, args.time_limit, args.seed)  # fmt: skip
    if args.replot:
        done = {r["key"]: r for r in read_runs(out / RAW)}
        rows = [done[p.key] for p in points if p.key in done]
    else:
        rows = run_grid(points, out, args.jobs, progress=not args.quiet)
    instance = load_instance(path)
    table = derive_table(rows, instance, model, args.round_seconds, args.ttft, args.tpot)
    write_table(table, out / TABLE)
    unit = "rounds" if model.is_unit else "s"
    title = f"{instance.name} (n={instance.n}), {args.time_limit:g} s per run\nround time {model.describe()}"
    if table:
        plot_capacity(table, out / FIGURE, title, unit, args.target_mean)
    write_json_atomic(out / META, {"command": sys.argv, "round_time": model.to_dict(), "instance": path,
                                   "points": len(points), "finished": len(rows)})  # fmt: skip
    print(f"{len(rows)} of {len(points)} runs; table {out / TABLE}; figure {out / FIGURE}")
    for line in summary_lines(table):
        print(line)
    if args.target_mean is not None:
        print("\n".join(answer_lines(answers(table, args.target_mean), args.target_mean, unit)))
    return 0 if len(rows) == len(points) else 130


def summary_lines(table: Sequence[dict[str, Any]]) -> list[str]:
    """One line per run: memory, replicas, method, objective, bound, gap, mean latency and its bound."""
    out = []
    for r in table:
        head = f"M={r['memory']:>7} k={r['replicas']} {r['method']:<6} {r['routing']:<12}"
        if r.get("error"):
            out.append(f"{head} error: {r['error']}")
            continue
        g = r.get("gap")
        gap_text = "-" if g is None else f"{100 * g:.2f}%"
        sb = r.get("bound_mean_latency_s")
        sb_text = "-" if sb is None else f"{sb:.4g}"
        out.append(
            f"{head} objective {r['objective_rounds']:>11,} bound {r['lower_bound_rounds'] or 0:>11,} "
            f"gap {gap_text:>7}  mean latency {r['mean_latency_s']:.4g} (bound {sb_text})"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``capacity.py``: returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        return guarded("capacity.py", lambda: run_capacity(args))
    except KeyboardInterrupt:
        print(
            "interrupted: finished runs are kept; rerun the same command to resume", file=sys.stderr
        )
        return 130
