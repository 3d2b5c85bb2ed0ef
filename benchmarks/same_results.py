"""Same-results check: every registered method on a fixed set of instances, plans recorded.

``--write FILE`` records each method's plan (start rounds), objective and lower bound on the
shipped toy instances, the small recorded optima and two 100-request trace samples; ``--check
FILE`` runs the same again and lists every difference.  Time-driven methods run under iteration
limits (one thread, seed 0) so that the record does not depend on the machine's speed; ``auto``
is compared on the instances where it proves optimality (its objective equals the bound), since
its phases are wall-clock shares.

    python benchmarks/same_results.py --write benchmarks/results/same_results.json
    python benchmarks/same_results.py --check benchmarks/results/same_results.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scheduler_milp import METHODS, SolveOptions, load_instance, solve

ROOT = Path(__file__).resolve().parent.parent
TINY = sorted((ROOT / "instances" / "toy").glob("*.json")) + [
    ROOT / "instances" / "optima" / f"{name}.json"
    for name in (
        "rand-n6-s0",
        "rand-n8-s0",
        "rand-arr-n8-s0",
        "rand-b2-n8-s0",
        "rand-cap3-n8-s0",
        "conv-s64-n8-s0",
    )
]
LARGER = [
    ROOT / "instances" / "traces" / f"{name}.json"
    for name in ("mix-conv70-arxiv30-n100-M65536", "bwb-n100-M65536")
]
#: methods that build a time-indexed model or search exactly: tiny instances only
SMALL_ONLY = {"dp", "milp", "cpsat", "lp", "sorted-lp", "lp-swap", "rh", "lns", "auto"}
#: iteration budgets of the time-driven searches (deterministic given the seed)
ITERATIONS = {"ls": 300, "repack": 300, "lns": 3, "lagrange": 50, "rh": None}


def run_all() -> dict[str, dict[str, Any]]:
    """``{method: {instance: record}}`` for every registered method."""
    out: dict[str, dict[str, Any]] = {}
    for method in sorted(METHODS):
        paths = TINY if method in SMALL_ONLY else TINY + LARGER
        rows: dict[str, Any] = {}
        for path in paths:
            instance = load_instance(str(path))
            options = SolveOptions(seed=0, threads=1, iteration_limit=ITERATIONS.get(method))
            if method == "auto":
                options.time_limit = 20.0
            result = solve(instance, method, options)
            record: dict[str, Any] = {
                "objective": result.objective,
                "lower_bound": result.lower_bound,
            }
            if method == "auto":
                record = {
                    "objective": result.objective,
                    "optimal": result.status.value == "optimal",
                }
            elif result.plan is not None:
                record["starts"] = result.plan.starts_by_id()
            rows[path.stem] = record
            print(
                f"{method:>12} {path.stem:<40} {record.get('objective')}",
                file=sys.stderr,
                flush=True,
            )
        out[method] = rows
    return out


def compare(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[str]:
    """The differences between two records, one line each (auto: only where both proved optimality)."""
    diffs: list[str] = []
    for method in sorted(set(old) | set(new)):
        if method not in old or method not in new:
            diffs.append(f"{method}: only in {'new' if method in new else 'old'}")
            continue
        for name, was in old[method].items():
            now = new[method].get(name)
            if method == "auto":
                if (
                    now is not None
                    and was["optimal"]
                    and now["optimal"]
                    and was["objective"] != now["objective"]
                ):
                    diffs.append(f"auto {name}: optimum {was['objective']} -> {now['objective']}")
            elif now != was:
                diffs.append(
                    f"{method} {name}: {was.get('objective')} -> {None if now is None else now.get('objective')}"
                )
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", help="record the plans to this JSON file")
    group.add_argument("--check", help="compare against the plans recorded in this JSON file")
    args = ap.parse_args(argv)
    results = run_all()
    if args.write:
        Path(args.write).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(
            f"wrote {args.write}: {sum(len(v) for v in results.values())} runs of {len(results)} methods"
        )
        return 0
    diffs = compare(json.loads(Path(args.check).read_text()), results)
    for line in diffs:
        print(line)
    total = sum(len(v) for v in results.values())
    print(f"{total} runs of {len(results)} methods: {len(diffs)} differ from {args.check}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
