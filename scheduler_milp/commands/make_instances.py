"""Make instance files: samples of the shipped real traces, CSV conversions, synthetic families.

Examples::

    python scripts/make_instances.py --mix conv=0.7,arxiv=0.3 --n 1000 --seed 0 --memory 65536 \\
        --out instances/traces/conv70-arxiv30-n1000-M65536.json
    python scripts/make_instances.py --mix conv --n 1000 --seed 0 --scale 16 --memory 4096 \\
        --arrivals trace --round-seconds 0.5 --peak-hour --out conv-arrivals.json
    python scripts/make_instances.py --csv mytrace.csv --memory 65536 --out mytrace.json
    python scripts/make_instances.py --adversarial 64 --out instances/adversarial/adv-M64.json
    python scripts/make_instances.py --random 8 --seed 1 --memory 24 --out random.json

Bad arguments or input give a one-line error on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from scheduler_milp.model.instance import Instance, InstanceError

# the trace names for --help, without importing pandas (scheduler_milp.traces) just to parse
TRACE_NAMES = "conv, code (Azure 2023, with timestamps), arxiv, sharegpt, bwb (no timestamps)"


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus an error; the project's contract is one line on stderr."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``make_instances.py`` argument parser."""
    p = _OneLineParser(
        prog="make_instances.py",
        description="Write an instance file (docs/formats.md) from a trace sample, a CSV or a generator.",
        epilog=f"traces: {TRACE_NAMES}; origin and licences in scheduler_milp/data/traces/README.md",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--mix", help="trace sample: NAME=WEIGHT,... e.g. conv=0.7,arxiv=0.3 (or one NAME)"
    )
    source.add_argument(
        "--csv", metavar="FILE", help="convert a trace CSV (any column names) to an instance"
    )
    source.add_argument(
        "--adversarial",
        type=int,
        metavar="M",
        help="the adversarial family of docs/methods.md with budget M",
    )
    source.add_argument(
        "--random",
        type=int,
        metavar="N",
        help="N random requests (see --prompt-range, --output-range)",
    )
    p.add_argument("--out", required=True, help="instance JSON to write (atomically)")
    p.add_argument("--name", help="instance name (default: derived from the parameters)")
    p.add_argument(
        "--n",
        type=int,
        help="number of requests for --mix (default: the whole trace; one trace only)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--memory", type=int, help="memory budget M in (scaled) tokens")
    p.add_argument(
        "--memory-factor",
        type=float,
        help="M = this multiple of the largest request peak (--mix; default 4)",
    )
    p.add_argument(
        "--scale", type=int, default=1, help="divide token counts by this, rounding up (--mix)"
    )
    p.add_argument(
        "--arrivals",
        choices=("none", "trace"),
        default="none",
        help="arrival rounds from the Azure timestamps (--mix)",
    )
    p.add_argument(
        "--round-seconds",
        type=float,
        default=None,
        help="seconds per round for timestamps (default 0.05 with --mix, 1 with --csv)",
    )
    p.add_argument(
        "--peak-hour",
        action="store_true",
        help="with --arrivals trace: take the densest window of the trace",
    )
    p.add_argument(
        "--keep-artifacts",
        action="store_true",
        help="keep the arXiv rows with output > 3000 (dropped by default)",
    )
    p.add_argument("--block-size", type=int, default=1, help="KV-cache block size B (default 1)")
    p.add_argument(
        "--max-batch", type=int, default=None, help="cap on requests per round (default none)"
    )
    p.add_argument("--prompt-column", help="--csv: column of prompt lengths (default: guessed)")
    p.add_argument("--output-column", help="--csv: column of output lengths (default: guessed)")
    p.add_argument(
        "--keep-seconds",
        action="store_true",
        help="with arrivals from timestamps: also keep each arrival in seconds (arrival_s) for the "
        "round-time clock (docs/timing.md)",
    )
    p.add_argument("--arrival-column", help="--csv: column of integer arrival rounds")
    p.add_argument(
        "--timestamp-column",
        help="--csv: column of timestamps (arrival = seconds / --round-seconds)",
    )
    p.add_argument(
        "--timestamp-unit",
        choices=("s", "ms", "us", "ns"),
        default=None,
        help="--csv: unit of numeric timestamps (required for numbers; never guessed)",
    )
    p.add_argument("--id-column", help="--csv: column of request ids (default r0, r1, ...)")
    p.add_argument(
        "--prompt-range", default="1,8", help="--random: LOW,HIGH prompt lengths (default 1,8)"
    )
    p.add_argument(
        "--output-range", default="1,8", help="--random: LOW,HIGH output lengths (default 1,8)"
    )
    p.add_argument(
        "--max-arrival",
        type=int,
        default=None,
        help="--random: arrivals uniform on 0..this (default: all 0)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="progress to the log")
    return p


def _pair(text: str, flag: str) -> tuple[int, int]:
    try:
        low, high = (int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} expects LOW,HIGH (got {text!r})") from None
    return low, high


def make(args: argparse.Namespace) -> Instance:
    """Build the instance the parsed arguments ask for (raises ValueError or InstanceError)."""
    # imported here so that argument errors are reported without loading pandas
    from scheduler_milp.generators import adversarial_instance, random_instance
    from scheduler_milp.traces import convert_csv, sample_backlog

    if args.mix is not None:
        return sample_backlog(
            args.mix,
            args.n,
            args.seed,
            memory=args.memory,
            memory_factor=args.memory_factor,
            scale=args.scale,
            arrivals=None if args.arrivals == "none" else args.arrivals,
            round_seconds=0.05 if args.round_seconds is None else args.round_seconds,
            peak_hour=args.peak_hour,
            block_size=args.block_size,
            max_batch=args.max_batch,
            drop_artifacts=not args.keep_artifacts,
            name=args.name,
            keep_seconds=args.keep_seconds,
        )
    if args.csv is not None:
        if args.memory is None:
            raise ValueError("--csv needs the memory budget (--memory)")
        return convert_csv(
            args.csv,
            args.memory,
            prompt_column=args.prompt_column,
            output_column=args.output_column,
            arrival_column=args.arrival_column,
            id_column=args.id_column,
            timestamp_column=args.timestamp_column,
            timestamp_unit=args.timestamp_unit,
            round_seconds=1.0 if args.round_seconds is None else args.round_seconds,
            block_size=args.block_size,
            max_batch=args.max_batch,
            name=args.name,
            keep_seconds=args.keep_seconds,
        )
    if args.adversarial is not None:
        return adversarial_instance(args.adversarial, name=args.name)
    return random_instance(
        args.random,
        args.seed,
        prompt_range=_pair(args.prompt_range, "--prompt-range"),
        output_range=_pair(args.output_range, "--output-range"),
        memory=24 if args.memory is None else args.memory,
        arrivals=args.max_arrival,
        block_size=args.block_size,
        max_batch=args.max_batch,
        name=args.name,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        instance = make(args)
        instance.save(args.out)
    except (ValueError, InstanceError, OSError) as err:
        print(f"make_instances.py: error: {err}", file=sys.stderr)
        return 1
    print(f"{args.out}: {instance.name}, {instance.n} requests, memory {instance.memory_budget}")
    return 0
