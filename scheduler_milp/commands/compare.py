"""Run methods on instances and seeds, resumably; write ``OUT/results.csv`` and print a summary.

    python scripts/compare.py instances/toy --methods fcfs,sf,svf --time-limit 10 --out runs/toy

Ctrl-C stops the sweep: the finished runs stay in ``OUT/runs.jsonl``, ``OUT/results.csv`` is
written for them, and the exit status is 130; rerunning the command resumes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from scheduler_milp.cli import UsageError, parse_param
from scheduler_milp.experiments.grid import expand_instances, make_grid
from scheduler_milp.experiments.run import load_plugins
from scheduler_milp.experiments.sweep import SweepInterrupted, run_sweep
from scheduler_milp.registry import METHODS


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
        default=",".join(fast),
        help="comma-separated registered methods (default: baselines and heuristics)",
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
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
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
        grid = make_grid(paths, methods, range(args.seeds), args.time_limit, params, threads)
    except ValueError as err:  # a parameter no method takes, or of the wrong type
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
