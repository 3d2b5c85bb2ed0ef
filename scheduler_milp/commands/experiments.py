"""The paper's experiment on real traces: how far from optimal is each policy?

Builds peak-hour backlogs (every request waiting at round 0) that mix 70% short conversations
(Azure LLM inference trace, conv) and 30% long-document summarization (arXiv), then runs every
registered method on them with the resumable runner:

- scaled-down backlogs (token counts divided by 32, a few requests, ``M`` a multiple of the
  largest request's peak) that the exact methods solve: gaps to the proven optimum;
- full-size backlogs (real token counts, ``M`` in tokens): gaps to the best proven bound.

Writes ``OUT/experiments.md`` (tables, set-up, the command) and ``OUT/figures/experiments-*``
(PNG figures and the two results tables as CSV); ``OUT`` defaults to a new
``runs/experiments-<timestamp>``.  Rerunning resumes from ``--work``.  The shipped report is
regenerated (from the repository root) by

    python scripts/run_experiments.py --out docs --fresh

The experiment itself lives in ``scheduler_milp.experiments.report``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from scheduler_milp.experiments.report import QUICK, Setting, run_experiment
from scheduler_milp.registry import METHODS


def build_parser() -> argparse.ArgumentParser:
    """The ``run_experiments.py`` argument parser."""
    p = argparse.ArgumentParser(
        prog="run_experiments.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default=None, help="directory for experiments.md and figures/ (default: a new "
                   "runs/experiments-<timestamp>; docs only when given as --out docs)")  # fmt: skip
    p.add_argument(
        "--work",
        default=None,
        help="instances and run logs (default runs/experiments, or runs/experiments-quick)",
    )
    p.add_argument("--quick", action="store_true", help="a small grid with 5 s limits, for testing")
    p.add_argument(
        "--methods", default=None, help="comma-separated methods (default: every registered method)"
    )
    p.add_argument(
        "--jobs", type=int, default=None, help="parallel runs (default: number of cores)"
    )
    p.add_argument(
        "--small-time-limit",
        type=float,
        default=None,
        help="seconds per run on the scaled-down set",
    )
    p.add_argument(
        "--full-time-limit", type=float, default=None, help="seconds per run on the full-size set"
    )
    p.add_argument("--fresh", action="store_true", help="delete earlier run logs in --work first (after code changes: "
                   "finished runs are otherwise reused as they are)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Build the instances, run both sweeps (resuming), write the report."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(name)s: %(message)s",
        stream=sys.stderr,
    )
    setting: Setting = QUICK if args.quick else Setting()
    if args.small_time_limit or args.full_time_limit:
        setting = replace(setting, small_time_limit=args.small_time_limit or setting.small_time_limit,
                          full_time_limit=args.full_time_limit or setting.full_time_limit)  # fmt: skip
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(
            f"run_experiments.py: error: unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out or f"runs/experiments-{time.strftime('%Y%m%d-%H%M%S')}")
    work = Path(args.work or ("runs/experiments-quick" if args.quick else "runs/experiments"))
    command = sys.argv if argv is None else ["run_experiments.py", *argv]
    run_experiment(out, work, setting, methods, jobs=args.jobs or os.cpu_count() or 1, quick=args.quick,
                   fresh=args.fresh, progress=not args.no_progress, command=command)  # fmt: skip
    return 0
