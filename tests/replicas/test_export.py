"""The vLLM priority export checked against the plan it came from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scheduler_milp.model.instance import load_instance
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve
from scheduler_milp.replicas.export import start_order_priority, write_vllm_priority
from scheduler_milp.replicas.solve import solve_replicas

ROOT = Path(__file__).resolve().parents[2]
INST = load_instance(ROOT / "instances/traces/conv-n100-M65536.json").replace(memory_budget=6000)


def _check_order(requests: list[dict], starts: dict[str, int]) -> None:
    prios = [r["priority"] for r in requests]
    assert sorted(prios) == list(range(len(requests)))  # distinct, from 0
    by_prio = sorted(requests, key=lambda r: r["priority"])
    rounds = [starts[r["id"]] for r in by_prio]
    assert rounds == sorted(rounds)  # serving by priority is serving in the plan's start order
    assert all(r["start_round"] == starts[r["id"]] for r in requests)


def test_one_engine(tmp_path: Path) -> None:
    plan = solve(INST, "svf").plan
    assert plan is not None
    path = tmp_path / "prio.json"
    write_vllm_priority(path, plan, "svf")
    data = json.loads(path.read_text())
    assert data["format"] == "vllm-priority" and data["objective"] == plan.total_latency
    assert {r["id"] for r in data["requests"]} == set(INST.ids)
    _check_order(data["requests"], plan.starts_by_id())
    # ties in the start round are broken by position, like Plan.order()
    prio = start_order_priority(INST, plan.start_round)
    np.testing.assert_array_equal(np.argsort(prio), plan.order())


def test_replicas_get_one_list_each(tmp_path: Path) -> None:
    res = solve_replicas(INST, 3, "svf", options=SolveOptions(time_limit=2), bound=False)
    path = tmp_path / "prio.json"
    write_vllm_priority(path, res.plan, "svf")
    data = json.loads(path.read_text())
    assert [g["replica"] for g in data["replicas"]] == [0, 1, 2]
    starts = res.plan.starts_by_id()
    where = res.plan.replica_by_id()
    seen = []
    for group in data["replicas"]:
        assert all(where[r["id"]] == group["replica"] for r in group["requests"])
        _check_order(group["requests"], starts)
        seen += [r["id"] for r in group["requests"]]
    assert sorted(seen) == sorted(INST.ids)
