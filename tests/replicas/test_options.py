"""--replicas and --export for solve.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from scheduler_milp.model.instance import load_example
from scheduler_milp.registry import solve
from scheduler_milp.replicas.options import (
    add_replica_arguments,
    check_replica_arguments,
    export_plan,
)


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_replica_arguments(p)
    return p.parse_args(list(argv))


def test_defaults_and_errors() -> None:
    args = _args()
    assert (args.replicas, args.routing, args.export) == (1, "least-loaded", None)
    check_replica_arguments(args)
    with pytest.raises(ValueError, match="positive"):
        check_replica_arguments(_args("--replicas", "0"))
    with pytest.raises(ValueError, match="unknown format"):
        check_replica_arguments(_args("--export", "sglang", "x.json"))


def test_export_writes_the_file(tmp_path: Path) -> None:
    inst = load_example("toy-pack4")
    plan = solve(inst, "dp").plan
    assert plan is not None
    target = tmp_path / "p.json"
    line = export_plan(_args("--export", "vllm-priority", str(target)), plan, "dp")
    assert line is not None and str(target) in line
    data = json.loads(target.read_text())
    assert sorted(r["priority"] for r in data["requests"]) == list(range(inst.n))
    assert export_plan(_args(), plan, "dp") is None
