"""The command-line options of replicas and of the export, for ``solve.py``.

``--replicas K`` schedules on ``K`` identical engines (:func:`~.solve.solve_replicas`) with
``--routing``; ``--export vllm-priority FILE.json`` writes each request's priority
(:mod:`.export`).
"""

from __future__ import annotations

import argparse

from ..model.plan import Plan
from .export import FORMAT, write_vllm_priority
from .plan import ReplicaPlan
from .routing import ROUTINGS

EXPORT_FORMATS = (FORMAT,)


def add_replica_arguments(parser: argparse.ArgumentParser) -> None:
    """``--replicas``, ``--routing`` and ``--export``."""
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="identical engines, each with budget M; every request runs on one of them",
    )
    parser.add_argument(
        "--routing",
        default="least-loaded",
        choices=ROUTINGS,
        help="how requests are assigned to replicas (with --replicas > 1)",
    )
    parser.add_argument(
        "--export",
        nargs=2,
        metavar=("FORMAT", "FILE"),
        help=f"write the plan for an engine: {', '.join(EXPORT_FORMATS)} FILE.json (priority = start order)",
    )


def check_replica_arguments(args: argparse.Namespace) -> None:
    """``ValueError`` (one line) on a bad ``--replicas`` or ``--export``."""
    if args.replicas < 1:
        raise ValueError(f"--replicas must be a positive integer (got {args.replicas})")
    if args.export is not None and args.export[0] not in EXPORT_FORMATS:
        raise ValueError(
            f"--export: unknown format {args.export[0]!r}; known: {', '.join(EXPORT_FORMATS)}"
        )


def export_plan(args: argparse.Namespace, plan: Plan | ReplicaPlan, method: str) -> str | None:
    """Write ``--export`` if asked; the line to print."""
    if args.export is None:
        return None
    fmt, path = args.export
    write_vllm_priority(path, plan, method)
    return f"{fmt} priorities written to {path}"
