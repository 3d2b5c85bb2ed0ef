"""The command-line options of the seconds metrics, for ``solve.py`` and ``simulate.py``.

``add_timing_arguments`` adds ``--round-time``, ``--round-seconds``, ``--per-request``,
``--ttft-target`` and ``--tpot-target``; :func:`timing_section` turns the per-request times of a
plan or an execution into the lines to print, the ``timing`` object of the plan or run file, and
the per-request CSV when asked for.
"""

from __future__ import annotations

import argparse
from typing import Any

from .metrics import RequestTimes
from .roundtime import RoundTime, RoundTimeError, parse_round_time


def add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    """The seconds options (none of them changes the plan)."""
    parser.add_argument(
        "--round-time",
        default=None,
        metavar="MODEL",
        help="seconds per round: unit | a preset (vidur-llama2-7b-a100, distserve-opt-13b-a100) "
        "| c0=..,c_prefill=..,c_decode=..,c_kv=.. | a .json/.toml file; prints latency, TTFT, TPOT",
    )
    parser.add_argument(
        "--round-seconds",
        type=float,
        default=None,
        help="seconds per round that arrivals in rounds stand for (default: the instance's own)",
    )
    parser.add_argument(
        "--per-request", metavar="FILE.csv", help="write each request's times in seconds here"
    )
    parser.add_argument("--ttft-target", type=float, default=None, help="TTFT target (s) for SLO attainment")  # fmt: skip
    parser.add_argument("--tpot-target", type=float, default=None, help="TPOT target (s) for SLO attainment")  # fmt: skip


def model_from_args(args: argparse.Namespace) -> RoundTime | None:
    """The round-time model asked for (``None``: no seconds wanted); ``ValueError`` on a bad one."""
    wanted = args.round_time is not None or args.per_request or args.ttft_target is not None or args.tpot_target is not None  # fmt: skip
    if not wanted:
        return None
    try:
        return parse_round_time(args.round_time)
    except RoundTimeError as err:
        raise ValueError(str(err)) from None


def timing_section(
    args: argparse.Namespace, times: RequestTimes, extra: dict[str, Any] | None = None
) -> tuple[list[str], dict[str, Any]]:
    """Lines to print and the ``timing`` object for the plan or run file; writes ``--per-request``.

    ``extra`` holds per-request columns for the CSV (e.g. ``{"replica": [...]}``).
    """
    summary = times.summary(args.ttft_target, args.tpot_target)
    lines = times.summary_lines(args.ttft_target, args.tpot_target)
    if args.per_request:
        times.write_csv(args.per_request, extra)
        lines.append(f"per-request times written to {args.per_request}")
    return lines, summary
