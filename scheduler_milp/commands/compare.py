"""Run methods on instances and seeds, resumably; write ``OUT/results.csv`` and print a summary.

    python scripts/compare.py instances/toy --methods fcfs,sf,svf --time-limit 10 --out runs/toy

Online policies run in the same grid (docs/online.md), each under every predictor and eviction
mode; offline methods in the grid give the references of their ``ratio_*`` columns:

    python scripts/compare.py instances/optima --policies svf,mcsf,vllm \
        --predictors exact,lognormal:0.5 --eviction restart,resume --out runs/online

Ctrl-C stops the sweep: the finished runs stay in ``OUT/runs.jsonl``, ``OUT/results.csv`` is
written for them, and the exit status is 130; rerunning the command resumes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from scheduler_milp.cli import UsageError, parse_param
from scheduler_milp.experiments.grid import RunSpec, expand_instances, make_grid, make_online_grid
from scheduler_milp.experiments.run import load_plugins
from scheduler_milp.experiments.sweep import SweepInterrupted, run_sweep
from scheduler_milp.model.params import ParameterError
from scheduler_milp.registry import METHODS, get_method


def build_parser() -> argparse.ArgumentParser:
    """The ``compare.py`` argument parser."""
    fast = [m.name for m in METHODS.values() if m.kind in ("baseline", "heuristic")]
    p = argparse.ArgumentParser(
        prog="compare.py",
        description="Every method on every instance (directories: all *.json inside) and seed. "
        "Rerunning with the same --out skips finished runs.",
    )
    p.add_argument("instances", nargs="+", help="instance files (JSON) or directories")
    p.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated registered methods (default: baselines and heuristics, "
        f"{','.join(fast)}; none with --policies)",
    )
    p.add_argument(
        "--policies",
        default=None,
        help="comma-separated online policies (scheduler-milp simulate --list-policies)",
    )
    p.add_argument(
        "--predictors",
        default="exact",
        help="comma-separated predictor specs of the online runs (default exact)",
    )
    p.add_argument(
        "--eviction",
        default="restart",
        help="comma-separated eviction modes of the online runs: restart, resume (default restart)",
    )
    p.add_argument(
        "--policy-time-limit",
        type=float,
        default=None,
        help="seconds of each offline solve an online policy makes (replan: per re-plan, "
        "default 1; hindsight: its plan)",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=60.0,
        help="seconds per run, build and solve (default 60)",
    )
    p.add_argument(
        "--out", required=True, help="output directory (runs.jsonl, results.csv, meta.json)"
    )
    p.add_argument(
        "--seeds", type=int, default=1, help="seeds 0..K-1 per (instance, method) (default 1)"
    )
    p.add_argument(
        "--jobs", type=int, default=None, help="parallel runs (default: number of cores)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="solver threads per run (default: cores / jobs)"
    )
    p.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local process pool or a Ray cluster",
    )
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (with --backend ray; default: start Ray locally)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method parameter, given to the methods whose parameters include KEY (repeatable)",
    )
    p.add_argument(
        "--timeout-factor",
        type=float,
        default=2.0,
        help="hard timeout = factor * time limit + slack (default 2)",
    )
    p.add_argument(
        "--timeout-slack",
        type=float,
        default=30.0,
        help="seconds added to the hard timeout (default 30)",
    )
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE.py",
        help="import this module or file first (it may register extra methods)",
    )
    p.add_argument("--retry-errors", action="store_true", help="rerun runs recorded with an error")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--plot", metavar="PNG", help="also draw the per-method gap distribution here")
    p.add_argument("-v", "--verbose", action="store_true", help="log each failing run")
    return p


def _plugins_from_argv(argv: Sequence[str]) -> list[str]:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--plugin", action="append", default=[])
    known, _ = parser.parse_known_args(argv)
    return [os.path.abspath(p) if p.endswith(".py") else p for p in known.plugin]


def _names(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _grid(
    args: argparse.Namespace,
    paths: list[str],
    methods: list[str],
    policies: list[str],
    params: dict[str, Any],
    threads: int,
) -> list[RunSpec]:
    """The offline runs, then the online runs; each ``--param`` goes to the methods or the
    policies that take it (a key neither takes is an error)."""
    from scheduler_milp.online.policies import policy_params

    grid: list[RunSpec] = []
    if not policies:
        return make_grid(paths, methods, range(args.seeds), args.time_limit, params, threads)
    takes_policy = {k for p in policies for k in policy_params(p).names()}
    takes_method = {k for m in methods for k in get_method(m).params_class().names()}
    unused = sorted(set(params) - takes_policy - takes_method)
    if unused:
        raise ParameterError(
            f"no method or policy of the grid takes the parameter {', '.join(map(repr, unused))}"
        )
    if methods:
        own = {k: v for k, v in params.items() if k in takes_method}
        grid += make_grid(paths, methods, range(args.seeds), args.time_limit, own, threads)
    own = {k: v for k, v in params.items() if k in takes_policy}
    grid += make_online_grid(paths, policies, _names(args.predictors), _names(args.eviction),
                             range(args.seeds), args.policy_time_limit, own)  # fmt: skip
    return grid


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep; exit 0 when it completed (failing runs are results, not failures), 130 on Ctrl-C."""
    try:
        return _compare(argv)
    except SweepInterrupted as stop:
        r = stop.report
        print(f"compare.py: interrupted: {len(r.rows)} of {r.total} runs finished, table: {r.results_path}; "
              "rerun to resume", file=sys.stderr)  # fmt: skip
        return 130
    except KeyboardInterrupt:
        print("compare.py: interrupted", file=sys.stderr)
        return 130


def _compare(argv: Sequence[str] | None) -> int:
    # plugins must register their methods before the parser lists the defaults
    plugins = _plugins_from_argv(sys.argv[1:] if argv is None else list(argv))
    try:
        load_plugins(plugins)
    except Exception as err:
        print(f"compare.py: error: cannot load plugin: {err}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(name)s: %(message)s",
        stream=sys.stderr,
    )
    policies = _names(args.policies)
    if args.methods is None:
        fast = [m.name for m in METHODS.values() if m.kind in ("baseline", "heuristic")]
        methods = [] if policies else fast
    else:
        methods = _names(args.methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not (methods or policies):
        print(
            f"compare.py: error: unknown method(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(METHODS)}",
            file=sys.stderr,
        )
        return 2
    if args.time_limit <= 0 or args.seeds < 1 or (args.jobs is not None and args.jobs < 1):
        print(
            "compare.py: error: --time-limit, --seeds and --jobs must be positive", file=sys.stderr
        )
        return 2
    if args.policy_time_limit is not None and args.policy_time_limit <= 0:
        print("compare.py: error: --policy-time-limit must be positive", file=sys.stderr)
        return 2
    try:
        params = dict(parse_param(x) for x in args.param)
        paths = expand_instances(args.instances)
    except (UsageError, ValueError, FileNotFoundError) as err:
        print(f"compare.py: error: {err}", file=sys.stderr)
        return 2
    if not paths:
        print("compare.py: error: no instance files found", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    jobs = args.jobs or (None if args.backend == "ray" and args.address else cores)
    threads = args.threads or max(1, cores // (jobs or 1))
    try:
        grid = _grid(args, paths, methods, policies, params, threads)
    except ValueError as err:  # an unknown name, a parameter nothing takes or of the wrong type
        print(f"compare.py: error: {err}", file=sys.stderr)
        return 2
    try:
        report = run_sweep(
            grid,
            args.out,
            jobs=jobs or 0,
            backend=args.backend,
            address=args.address,
            timeout_factor=args.timeout_factor,
            timeout_slack=args.timeout_slack,
            retry_errors=args.retry_errors,
            progress=not args.no_progress,
            command=sys.argv if argv is None else ["compare.py", *argv],
            plugins=plugins,
        )
    except RuntimeError as err:
        print(f"compare.py: error: {err}", file=sys.stderr)
        return 1
    print(
        f"{report.total} runs ({report.skipped} already done, {report.ran} run now); table: {report.results_path}"
    )
    print(report.summary)
    if args.plot:
        from scheduler_milp.plots import plot_gaps

        plot_gaps(report.results_path, args.plot)
        print(f"plot written to {args.plot}")
    return 0
