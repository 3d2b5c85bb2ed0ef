"""Run one online policy on one instance under predicted output lengths (``scheduler-milp simulate``, docs/online.md).

``python scripts/simulate.py INSTANCE --policy NAME [--predictor SPEC] [--eviction restart|resume]
[--seed N] [--time-limit S] [--output RUN.json] [--list-policies]``

Bad input gets one line on stderr and a non-zero exit (2: a usage error, 1: the instance, the
predictor or the policy refused), as ``solve.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from scheduler_milp.cli import (
    HelpFormatter,
    UsageError,
    add_instance_options,
    check_writable,
    guarded,
    instance_from_args,
    parse_param,
    positive_seconds,
)
from scheduler_milp.online.policies import policy_table
from scheduler_milp.online.predictors import PREDICTORS, Predictions, from_meta
from scheduler_milp.online.run import simulate, write_run
from scheduler_milp.online.view import EVICTION_MODES
from scheduler_milp.timing.options import add_timing_arguments, model_from_args, timing_section


def build_parser() -> argparse.ArgumentParser:
    """The ``simulate.py`` argument parser."""
    p = argparse.ArgumentParser(
        prog="simulate.py",
        description="Execute an online policy on an instance whose output lengths it only knows as predictions.",
        epilog="policies:\n"
        + policy_table()
        + "\n\npredictors:\n"
        + "\n".join(f"  {name:<12} {text}" for name, (_, text) in PREDICTORS.items()),
        formatter_class=HelpFormatter,
    )
    p.add_argument("instance", nargs="?", help="instance file (JSON, or CSV with --memory)")
    p.add_argument("--policy", default="sorted-f", help="online policy (see --list-policies)")
    p.add_argument(
        "--predictor",
        default="exact",
        help="prediction spec, e.g. lognormal:0.5, interval:2, bins:8, file",
    )
    p.add_argument(
        "--eviction",
        choices=EVICTION_MODES,
        default="restart",
        help="what an evicted request keeps",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the predictor (and of randomised methods)"
    )
    p.add_argument(
        "--time-limit",
        type=positive_seconds,
        default=None,
        help="seconds of each offline solve (replan: per re-plan, default 1; hindsight: the plan)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="policy parameter (repeatable)",
    )
    p.add_argument(
        "--arrivals-by",
        choices=("clock", "rounds"),
        default="clock",
        help="with --round-time: admit requests when the model's clock reaches their arrival in "
        "seconds (clock), or in their arrival rounds (rounds)",
    )
    p.add_argument("--output", help="write the run JSON here (atomically)")
    p.add_argument("--list-policies", action="store_true", help="print the policies and exit")
    add_instance_options(p)
    add_timing_arguments(p)
    return p


def run_simulate(args: argparse.Namespace) -> int:
    """Load, simulate, write and print a summary; the exit status."""
    if args.list_policies:
        print(policy_table())
        return 0
    if not args.instance:
        raise UsageError("an instance file is required")
    check_writable("--output", args.output)
    check_writable("--per-request", args.per_request)
    try:
        model = model_from_args(args)
    except ValueError as err:
        raise UsageError(str(err)) from None
    params = dict(parse_param(x) for x in args.param)
    instance = instance_from_args(args)
    predictor: str | Predictions = args.predictor
    if args.predictor == "file":
        found = from_meta(instance)
        if found is None:
            raise UsageError(
                f"{args.instance}: --predictor file needs predicted_output or output_range in the instance"
            )
        predictor = found
    clock, arrival_s = None, None
    if model is not None and args.arrivals_by == "clock":
        from scheduler_milp.timing.clock import arrival_seconds

        clock, arrival_s = model, arrival_seconds(instance, model, args.round_seconds)
    execution = simulate(
        instance,
        args.policy,
        predictor,
        eviction=args.eviction,
        seed=args.seed,
        time_limit=args.time_limit,
        params=params,
        clock=clock,
        arrival_s=arrival_s,
    )
    record = execution.to_run_dict()
    timing_lines: list[str] = []
    if model is not None:
        from scheduler_milp.timing.metrics import execution_times

        # on the clock, the execution's instance holds the admission rounds and arrival_s
        times = execution_times(
            execution.instance, record["segments"], execution.eviction, model, args.round_seconds
        )
        timing_lines, record["timing"] = timing_section(args, times)
    if args.output:
        write_run(args.output, record)
    ttft = record["ttft"]
    lines = [
        f"instance   {instance.name} (n={instance.n}, M={instance.memory_budget})",
        f"policy     {record['policy']}  predictor {record['predictor']}  eviction {record['eviction']}  seed {record['seed']}",
        f"objective  {record['objective']}  (total latency; average {record['average_latency']:.3f} rounds)",
        f"evictions  {record['evictions']}  wasted rounds {record['wasted_rounds']}",
        f"ttft       mean {ttft['mean']:.2f}  p50 {ttft['p50']:.0f}  p99 {ttft['p99']:.0f}  max {ttft['max']} rounds",
        f"memory     peak {record['peak_memory']}/{instance.memory_budget}  mean {record['mean_memory']:.1f}",
        f"time       {record['seconds']:.3f}s  ({record['decisions']} decision rounds)",
    ]
    lines += timing_lines
    if args.output:
        lines.append(f"run written to {args.output}")
    print("\n".join(lines))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``simulate.py``: returns the exit status."""
    args = build_parser().parse_args(argv)
    return guarded("simulate.py", lambda: run_simulate(args))
