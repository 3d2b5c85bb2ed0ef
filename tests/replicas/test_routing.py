"""Routing policies and the replica solve: balanced, valid, and the optimised one never worse."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from scheduler_milp.model.instance import load_instance
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve
from scheduler_milp.replicas.routing import improve, least_loaded, round_robin
from scheduler_milp.replicas.solve import solve_replicas

ROOT = Path(__file__).resolve().parents[2]
INST = load_instance(ROOT / "instances/traces/mix-conv70-arxiv30-n100-M65536.json").replace(memory_budget=12_000)  # fmt: skip


def test_round_robin_and_least_loaded_balance() -> None:
    rr = round_robin(INST, 3)
    assert np.bincount(rr).tolist() == [34, 33, 33]
    ll = least_loaded(INST, 3)
    loads = np.bincount(ll, weights=INST.volume.astype(float), minlength=3)
    assert loads.max() - loads.min() <= INST.volume.max()  # the LPT guarantee


def test_improve_never_raises_the_evaluated_objective() -> None:
    start = least_loaded(INST, 2)
    assign, stats = improve(INST, 2, start, time.perf_counter() + 3, evaluate="sf", seed=1)
    assert stats["after"] <= stats["before"]
    total = sum(solve(INST.subset(np.flatnonzero(assign == r)), "sf").objective for r in range(2))
    assert total == stats["after"]


@pytest.mark.parametrize("routing", ["round-robin", "least-loaded", "optimised"])
def test_solve_replicas_gives_a_valid_plan_and_a_bound_below_it(routing: str) -> None:
    res = solve_replicas(INST, 2, "svf", routing, SolveOptions(time_limit=4))
    assert res.plan.violations() == []
    assert res.lower_bound is not None and res.lower_bound <= res.objective
    assert sum(res.stats["per_replica_size"]) == INST.n
    data = res.to_plan_dict()
    assert set(data["replica"].values()) <= {0, 1} and len(data["starts"]) == INST.n


def test_one_replica_is_the_registry_s_plan() -> None:
    res = solve_replicas(INST, 1, "svf", bound=False)
    assert res.objective == solve(INST, "svf").objective
    assert res.routing == "-"


def test_a_stop_request_keeps_a_valid_replica_plan_with_the_closed_form_bound() -> None:
    """Ctrl-C (the stop flag) during ``solve_replicas``: each replica keeps the plan its method
    had, the moves of ``optimised`` routing end, and the bound is the closed-form pooled one."""
    from scheduler_milp.replicas.bound import fast_replica_bound

    calls: list[int] = []

    def stop_after_routing() -> bool:
        calls.append(1)
        return len(calls) > 1  # the first question (the moves' first round) says go on

    res = solve_replicas(
        INST, 2, "auto", "optimised", SolveOptions(time_limit=600, stop=stop_after_routing)
    )
    assert res.plan.violations() == []
    assert res.stats["interrupted"] is True
    assert (res.lower_bound, res.bound_source) == fast_replica_bound(INST, 2)
    assert res.lower_bound is not None and res.lower_bound <= res.objective
