"""Command line of ``solve`` (``scripts/solve.py``, ``scheduler-milp solve``), thin over :func:`solve`.

Bad input gets one line on stderr naming the file, the request or the option, and a non-zero exit
(2: a usage error, 1: the instance or the method refused, 3: no plan found, 130: interrupted).
The plan file is written before anything is printed, atomically, so neither a reader closing
stdout early nor Ctrl-C costs a plan that was found.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from .model.deadline import Deadline
from .model.instance import Instance, InstanceError, load_instance
from .model.params import ParameterError
from .model.plan import Plan
from .model.result import ModelTooLarge, SolveOptions, SolveResult, StopReason
from .registry import METHODS, solve
from .replicas.options import add_replica_arguments, check_replica_arguments, export_plan
from .timing.options import add_timing_arguments, model_from_args, timing_section

#: default seconds for methods that would otherwise run until they prove optimality
DEFAULT_EXACT_TIME_LIMIT = 300.0
#: progress lines start after this many seconds and come at most this often
PROGRESS_AFTER = 2.0
PROGRESS_EVERY = 3.0
#: whether ``--time-limit`` counts from the start of the process (set by :func:`solve_process`)
_limit_from_process_start = False


class UsageError(Exception):
    """A bad option value (exit status 2, one line)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every default and keeps the epilog's line breaks."""


def method_table() -> str:
    """The registered methods, one per line: name, kind, description."""
    width = max(len(n) for n in METHODS)
    return "\n".join(f"  {m.name:<{width}}  {m.kind:<9}  {m.help}" for m in METHODS.values())


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A positive finite number of seconds (an argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive finite number of seconds, got {text!r}"
        )
    return value


def add_instance_options(parser: argparse.ArgumentParser) -> None:
    """``--memory``, ``--block-size`` and ``--max-batch``: what a CSV instance needs, overrides for JSON."""
    parser.add_argument(
        "--memory",
        type=_positive_int,
        help="memory budget M (required for CSV input; overrides JSON)",
    )
    parser.add_argument(
        "--block-size",
        type=_positive_int,
        default=None,
        help="block size (CSV input: 1 when not given; overrides JSON)",
    )
    parser.add_argument(
        "--max-batch", type=_positive_int, default=None, help="batch cap (overrides JSON)"
    )


def instance_from_args(args: argparse.Namespace) -> Instance:
    """Load ``args.instance`` with the options of :func:`add_instance_options`; raises ``InstanceError``."""
    return load_instance(
        args.instance, memory=args.memory, block_size=args.block_size, max_batch=args.max_batch
    )


def add_solve_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``solve``."""
    p.add_argument("instance", nargs="?", help="instance file (JSON, or CSV/JSONL with --memory)")
    p.add_argument("--method", default="auto", help="registered method (see --list-methods)")
    p.add_argument(
        "--time-limit",
        type=positive_seconds,
        default=None,
        help=f"seconds for building and solving (exact methods: {DEFAULT_EXACT_TIME_LIMIT:g} when not given; auto: 60)",
    )
    p.add_argument("--output", help="write the plan JSON here (atomically)")
    p.add_argument(
        "--list-methods", action="store_true", help="print the registered methods and exit"
    )
    p.add_argument(
        "--list-solvers",
        action="store_true",
        help="print the MILP solvers Pyomo finds (for --solver) and exit",
    )
    add_instance_options(p)
    p.add_argument("--seed", type=int, default=0, help="seed for randomised methods")
    p.add_argument("--threads", type=_positive_int, default=2, help="solver threads")
    p.add_argument("--solver", default=None, help="Pyomo solver for milp (default highs)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method parameter (repeatable; an unknown key lists the valid ones)",
    )
    p.add_argument(
        "--warm-start",
        metavar="PLAN.json",
        help="start from the plan in this plan file (its 'starts')",
    )
    p.add_argument(
        "--plot", metavar="PNG", help="also draw the plan (Gantt and memory) to this PNG"
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log the methods' progress (and solver logs) to stderr",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    add_timing_arguments(p)
    add_replica_arguments(p)


def build_parser() -> argparse.ArgumentParser:
    """The ``solve.py`` argument parser."""
    p = argparse.ArgumentParser(
        prog="solve.py",
        description="Schedule an LLM request backlog under a KV-cache budget and report the plan's certified gap.",
        epilog="methods:\n" + method_table(),
        formatter_class=HelpFormatter,
    )
    add_solve_arguments(p)
    return p


def parse_param(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` from ``--param``; the value is typed by the method's parameter class."""
    if "=" not in text:
        raise UsageError(f"--param expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key:
        raise UsageError(f"--param expects KEY=VALUE, got {text!r} (no key)")
    return key, raw.strip()


#: the MILP solvers ``--list-solvers`` looks for
KNOWN_SOLVERS = (
    "appsi_highs",
    "highs",
    "cbc",
    "glpk",
    "scip",
    "gurobi",
    "cplex",
    "xpress",
    "copt",
    "mosek",
)


def solver_available(name: str) -> bool:
    """Whether Pyomo finds the MILP solver ``name`` (its own error log silenced)."""
    import pyomo.environ as pyo

    pyomo_log = logging.getLogger("pyomo")
    level = pyomo_log.level
    pyomo_log.setLevel(logging.CRITICAL)
    try:
        return bool(pyo.SolverFactory(name).available(exception_flag=False))
    except Exception:
        return False
    finally:
        pyomo_log.setLevel(level)


def list_solvers() -> str:
    """The Pyomo solvers available here, one per line."""
    found = [name for name in KNOWN_SOLVERS if solver_available(name)]
    return "\n".join(found) if found else "no MILP solver found (install highspy)"


def check_writable(option: str, path: str | None) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option} {path}: is a directory")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: no such directory {parent}")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"{option} {path}: not writable")


def read_warm_start(path: str, instance: Instance) -> Plan:
    """The plan of a plan file (``starts`` by request id) on ``instance``; one-line errors."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise UsageError(f"--warm-start {path}: cannot read a plan file: {err}") from None
    starts = data.get("starts") if isinstance(data, dict) else None
    if not isinstance(starts, dict):
        raise UsageError(f"--warm-start {path}: no 'starts' object")
    try:
        return Plan.checked(instance, {str(rid): int(start) for rid, start in starts.items()})
    except (TypeError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else "start rounds must be integers"
        raise UsageError(f"--warm-start {path}: not a plan of this instance: {first}") from None


def options_from_args(args: argparse.Namespace, instance: Instance) -> SolveOptions:
    """The :class:`SolveOptions` of the command line (validated against the method's parameters)."""
    spec = METHODS[args.method]
    params = dict(parse_param(x) for x in args.param)
    spec.parse_params(params)  # unknown or ill-typed keys: one line before any work
    if args.solver is not None and args.method != "milp":
        raise UsageError(f"--solver applies to milp only, not to {args.method}")
    if args.solver is not None and not solver_available(args.solver):
        raise UsageError(
            f"--solver {args.solver}: Pyomo finds no such solver here (see --list-solvers)"
        )
    time_limit = args.time_limit
    if time_limit is None and spec.kind == "exact":
        time_limit = DEFAULT_EXACT_TIME_LIMIT
    return SolveOptions(
        time_limit=time_limit,
        deadline=Deadline.since_process_start(time_limit) if _limit_from_process_start else None,
        seed=args.seed,
        threads=args.threads,
        solver=args.solver,
        params=params,
        verbose=args.verbose,
        warm_start=None if args.warm_start is None else read_warm_start(args.warm_start, instance),
    )


class ProgressLine:
    """Prints elapsed time, best objective, best bound and gap to stderr every few seconds."""

    def __init__(self, enabled: bool, stream: Any = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.objective: int | None = None
        self.bound: int | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def improved(self, objective: int | None, bound: int | None) -> None:
        """A better plan or bound (from the method's callbacks)."""
        if objective is not None:
            self.objective = objective if self.objective is None else min(self.objective, objective)
        if bound is not None:
            self.bound = bound if self.bound is None else max(self.bound, bound)

    def plan(self, plan: Plan) -> None:
        """A better plan (``SolveOptions.progress``)."""
        self.improved(plan.total_latency, None)

    def line(self) -> str:
        """The current progress line."""
        parts = [f"{time.perf_counter() - self.started:6.1f}s"]
        parts.append(f"best {self.objective if self.objective is not None else '-'}")
        parts.append(f"bound {self.bound if self.bound is not None else '-'}")
        if self.objective and self.bound is not None:
            parts.append(
                f"gap {100 * max(0.0, (self.objective - self.bound) / self.objective):.2f}%"
            )
        return "  ".join(parts)

    def _run(self) -> None:
        if self._done.wait(PROGRESS_AFTER):
            return
        while True:
            print(self.line(), file=self.stream, flush=True)
            if self._done.wait(PROGRESS_EVERY):
                return

    def __enter__(self) -> ProgressLine:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


@contextlib.contextmanager
def ctrl_c_stops(flag: threading.Event) -> Iterator[None]:
    """The first Ctrl-C asks the method to stop with its best plan; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        print(
            "stopping: keeping the best plan so far (Ctrl-C again to abandon it)",
            file=sys.stderr,
            flush=True,
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_outputs(
    args: argparse.Namespace, result: Any, extra: dict[str, Any] | None = None
) -> list[str]:
    written = []
    if args.output:
        result.write(args.output, extra)
        written.append(f"plan written to {args.output}")
    if args.plot and isinstance(result, SolveResult) and result.plan is not None:
        from .plots import plot_plan

        plot_plan(result.plan, args.plot)
        written.append(f"plot written to {args.plot}")
    return written


def run_solve(args: argparse.Namespace) -> int:
    """``solve``: load, validate the options, run the method, write and print; the exit status."""
    if args.list_methods:
        print(method_table())
        return 0
    if args.list_solvers:
        print(list_solvers())
        return 0
    if not args.instance:
        raise UsageError("an instance file is required")
    if args.method not in METHODS:
        raise UsageError(f"unknown method {args.method!r}; known: {', '.join(METHODS)}")
    check_writable("--output", args.output)
    check_writable("--plot", args.plot)
    check_writable("--per-request", args.per_request)
    check_writable("--export", args.export[1] if args.export else None)
    try:
        check_replica_arguments(args)
        model = model_from_args(args)
    except ValueError as err:
        raise UsageError(str(err)) from None
    instance = instance_from_args(args)
    options = options_from_args(args, instance)
    stop = threading.Event()
    progress = ProgressLine(enabled=not args.quiet and not args.verbose)
    options.stop = stop.is_set
    options.progress = progress.plan
    options.on_improvement = progress.improved
    try:
        with ctrl_c_stops(stop), progress:
            if args.replicas > 1:
                from .replicas.solve import solve_replicas

                result: Any = solve_replicas(
                    instance, args.replicas, args.method, args.routing, options
                )
            else:
                result = solve(instance, args.method, options)
    except KeyboardInterrupt:
        print(f"interrupted: {args.method} on {args.instance}; no plan written", file=sys.stderr)
        return 130
    if stop.is_set() and isinstance(result, SolveResult):
        result.stop_reason = StopReason.INTERRUPTED
    timing_lines: list[str] = []
    extra: dict[str, Any] = {}
    plan = result.plan
    if model is not None and plan is not None:
        from .timing.metrics import plan_times

        if args.replicas > 1:
            times = plan.times(model, args.round_seconds)
            columns = {"replica": plan.assignment.tolist()}
        else:
            times = plan_times(instance, plan.start_round, model, args.round_seconds)
            columns = None
        timing_lines, extra["timing"] = timing_section(args, times, columns)
    written = _write_outputs(args, result, extra)
    if plan is not None and args.export is not None:
        written.append(export_plan(args, plan, args.method) or "")
    print("\n".join([result.summary(), *timing_lines, *written]))
    if stop.is_set():
        return 130
    if args.replicas > 1:
        return 0
    return 0 if (result.plan is not None or result.status.value == "infeasible") else 3


def _report(prog: str, err: BaseException) -> int:
    """One line on stderr for an expected failure; its exit status."""
    if isinstance(err, UsageError):
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    print(f"error: {err}", file=sys.stderr)
    return 1


def guarded(prog: str, body: Callable[[], int]) -> int:
    """Run ``body`` and turn the expected failures into one line and an exit status."""
    try:
        return body()
    except (UsageError, InstanceError, ParameterError, ModelTooLarge) as err:
        return _report(prog, err)
    except (ValueError, RuntimeError, ImportError, OSError) as err:
        # method-level refusals (an unavailable solver, ...) and unwritable outputs get one line
        return _report(prog, err)


def setup_logging(verbose: bool) -> None:
    """INFO to stderr with ``-v``, warnings only otherwise."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``solve.py``: returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    return guarded("solve.py", lambda: run_solve(args))


def run(
    argv: Sequence[str] | None = None, entry: Callable[[Sequence[str] | None], int] = main
) -> int:
    """``entry`` for a console entry point: a reader closing stdout early ends it quietly."""
    try:
        status = entry(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's recommended handling: point stdout at devnull so the interpreter's own flush at
        # exit does not raise again, and report the broken pipe through the exit status
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


def solve_process(argv: Sequence[str] | None = None) -> NoReturn:
    """``solve`` as the whole process (``scripts/solve.py``, ``scheduler-milp solve``): the time
    limit covers start-up, and nothing follows.

    The limit counts from the process's start, so the interpreter's start-up and imports count
    against it; after the outputs are flushed the process ends at once (``os._exit``) instead of
    tearing down every module and object, which on a loaded machine can take a second.
    """
    global _limit_from_process_start
    _limit_from_process_start = True
    status = run(sys.argv[1:] if argv is None else argv, entry=main)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    logging.shutdown()
    os._exit(status)


#: ``scheduler-milp SUBCOMMAND``: module of each subcommand's ``main(argv)``
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "solve": (
        "scheduler_milp.cli",
        "schedule one instance with one method and certify the plan's gap",
    ),
    "compare": (
        "scheduler_milp.commands.compare",
        "run methods over instance sets (resumable; local or Ray)",
    ),
    "make-instances": (
        "scheduler_milp.commands.make_instances",
        "make random, adversarial or trace instances",
    ),
    "plot": ("scheduler_milp.commands.plot", "draw a plan file (Gantt chart and memory per round)"),
    "experiments": (
        "scheduler_milp.commands.experiments",
        "run the experiment behind docs/experiments.md",
    ),
    "simulate": (
        "scheduler_milp.commands.simulate",
        "execute an online policy under predicted output lengths",
    ),
    "capacity": (
        "scheduler_milp.commands.capacity",
        "capacity planning over memory and replicas with certified bounds",
    ),
}


def console(argv: Sequence[str] | None = None) -> int:
    """``scheduler-milp SUBCOMMAND ...`` and ``python -m scheduler_milp SUBCOMMAND ...``."""
    import importlib

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        width = max(map(len, SUBCOMMANDS))
        lines = [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
        print("usage: scheduler-milp SUBCOMMAND [options]   (SUBCOMMAND --help for its options)\n")
        print("subcommands:\n" + "\n".join(lines))
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(
            f"scheduler-milp: error: unknown subcommand {name!r}; known: {', '.join(SUBCOMMANDS)}",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    entry: Callable[[Sequence[str] | None], int] = module.main
    return run(rest, entry=entry)


def console_process() -> int:
    """The ``scheduler-milp`` program: ``solve`` as a whole process (:func:`solve_process`)."""
    args = sys.argv[1:]
    if args and args[0] == "solve":
        solve_process(args[1:])
    return console(args)
