"""Draw a plan file as a Gantt chart with memory per round: ``plot_plan.py PLAN.json INSTANCE.json --out PNG``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from scheduler_milp.cli import add_instance_options, instance_from_args
from scheduler_milp.model.instance import InstanceError
from scheduler_milp.model.plan import Plan, PlanError
from scheduler_milp.plots import plot_plan


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the plan against its instance and draw it; one-line errors, non-zero exit."""
    p = argparse.ArgumentParser(prog="plot_plan.py", description=__doc__)
    p.add_argument("plan", help="plan JSON (scripts/solve.py --output)")
    p.add_argument("instance", help="the instance the plan belongs to (JSON, or CSV with --memory)")
    add_instance_options(p)  # as for solve.py
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument(
        "--title", default=None, help="figure title (default: instance, size, method, objective)"
    )
    args = p.parse_args(argv)
    try:
        instance = instance_from_args(args)
    except InstanceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        with open(args.plan) as fh:
            data = json.load(fh)
        starts = data["starts"]
        if not isinstance(starts, dict):
            raise TypeError("'starts' must be an object {id: start round}")
        plan = Plan.checked(instance, starts)
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        print(f"error: {args.plan}: cannot read the plan: {err}", file=sys.stderr)
        return 1
    except PlanError as err:
        first = str(err).splitlines()[0]
        print(f"error: {args.plan}: not a valid plan for {args.instance}: {first}", file=sys.stderr)
        return 1
    plot_plan(plan, args.out, title=args.title, method=data.get("method"))
    print(f"plot written to {args.out}")
    return 0
