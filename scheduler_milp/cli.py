"""Command-line logic behind ``scripts/solve.py`` (FORMATS.md contract), kept thin over :func:`solve`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .model.instance import Instance, InstanceError, load_instance
from .model.result import SolveOptions
from .registry import METHODS, solve


def method_table() -> str:
    """The registered methods, one per line: name, kind, description."""
    width = max(len(n) for n in METHODS)
    return "\n".join(f"  {m.name:<{width}}  {m.kind:<9}  {m.help}" for m in METHODS.values())


def add_instance_options(parser: argparse.ArgumentParser) -> None:
    """``--memory``, ``--block-size`` and ``--max-batch``: what a CSV instance needs (``--memory`` overrides JSON)."""
    parser.add_argument("--memory", type=int, help="memory budget M (required for CSV input; overrides JSON)")
    parser.add_argument("--block-size", type=int, default=1, help="block size for CSV input")
    parser.add_argument("--max-batch", type=int, default=None, help="batch cap for CSV input")


def instance_from_args(args: argparse.Namespace) -> Instance:
    """Load ``args.instance`` with the options of :func:`add_instance_options`; raises ``InstanceError``."""
    return load_instance(args.instance, memory=args.memory, block_size=args.block_size, max_batch=args.max_batch)


def build_parser() -> argparse.ArgumentParser:
    """The ``solve.py`` argument parser."""
    p = argparse.ArgumentParser(
        prog="solve.py",
        description="Schedule an LLM request backlog under a KV-cache budget and report the plan's certified gap.",
        epilog="methods:\n" + method_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("instance", nargs="?", help="instance file (JSON, or CSV with --memory)")
    p.add_argument("--method", default="auto" if "auto" in METHODS else "sf", help="registered method (see --list-methods)")
    p.add_argument("--time-limit", type=float, default=None, help="seconds for building and solving")
    p.add_argument("--output", help="write the plan JSON here (atomically)")
    p.add_argument("--list-methods", action="store_true", help="print the registered methods and exit")
    add_instance_options(p)
    p.add_argument("--seed", type=int, default=0, help="seed for randomised methods")
    p.add_argument("--threads", type=int, default=2, help="solver threads")
    p.add_argument("--solver", default=None, help="Pyomo solver for milp (default highs)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="method-specific parameter")
    p.add_argument("--plot", metavar="PNG", help="also draw the plan (Gantt and memory) to this PNG")
    p.add_argument("-v", "--verbose", action="store_true", help="progress to the log")
    return p


def _parse_param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise ValueError(f"--param expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    value: object = raw
    low = raw.lower()
    if low in ("true", "false"):
        value = low == "true"
    else:
        for conv in (int, float):
            try:
                value = conv(raw)
                break
            except ValueError:
                pass
    return key.strip().replace("-", "_"), value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0: a plan or a proof was produced)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if args.list_methods:
        print(method_table())
        return 0
    if not args.instance:
        parser.print_usage(sys.stderr)
        print("solve.py: error: an instance file is required", file=sys.stderr)
        return 2
    if args.method not in METHODS:
        print(f"solve.py: error: unknown method {args.method!r}; known: {', '.join(METHODS)}", file=sys.stderr)
        return 2
    if args.time_limit is not None and args.time_limit <= 0:
        print("solve.py: error: --time-limit must be positive", file=sys.stderr)
        return 2
    try:
        params = dict(_parse_param(x) for x in args.param)
    except ValueError as err:
        print(f"solve.py: error: {err}", file=sys.stderr)
        return 2
    try:
        instance = instance_from_args(args)
    except InstanceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    options = SolveOptions(
        time_limit=args.time_limit,
        seed=args.seed,
        threads=args.threads,
        solver=args.solver,
        params=params,
        verbose=args.verbose,
    )
    try:
        result = solve(instance, args.method, options)
    except (ValueError, RuntimeError, ImportError) as err:
        # method-level refusals (unknown solver, instance too large, ...) get one line
        print(f"error: {args.method} on {args.instance}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: one line, nothing written (--output is only written below)
        print(f"interrupted: {args.method} on {args.instance}; no plan written", file=sys.stderr)
        return 130
    # the files are written before anything is printed, so a reader that closes stdout early
    # (``solve.py ... | head -1``) cannot cost the plan
    written = []
    if args.output:
        result.write(args.output)
        written.append(f"plan written to {args.output}")
    if args.plot and result.plan is not None:
        from .plots import plot_plan

        plot_plan(result.plan, args.plot)
        written.append(f"plot written to {args.plot}")
    print("\n".join([result.summary(), *written]))
    return 0 if (result.plan is not None or result.status.value == "infeasible") else 3


def run(argv: Sequence[str] | None = None) -> int:
    """:func:`main` for a console entry point: a reader closing stdout early ends it quietly."""
    try:
        status = main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's recommended handling: point stdout at devnull so the interpreter's own flush at
        # exit does not raise again, and report the broken pipe through the exit status
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status
