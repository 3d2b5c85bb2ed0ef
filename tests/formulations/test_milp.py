"""``milp``: statuses, warm start accepted by HiGHS, time limit behaviour, solver selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler_milp.baselines.best import best_fast_plan
from scheduler_milp.formulations.timeindexed import left_justify
from scheduler_milp.generators import random_instance
from scheduler_milp.model.instance import load_instance
from scheduler_milp.model.result import SolveOptions, Status, StopReason
from scheduler_milp.registry import solve

ROOT = Path(__file__).resolve().parents[2]


def test_toy_is_optimal_with_bound() -> None:
    inst = load_instance(ROOT / "instances" / "toy" / "toy-3.json")
    res = solve(inst, "milp")
    assert res.status == Status.OPTIMAL
    assert res.lower_bound == res.objective == solve(inst, "dp").objective
    assert res.stop_reason == StopReason.COMPLETED
    assert res.build_seconds > 0 and res.solve_seconds > 0


def test_highs_accepts_the_complete_warm_start() -> None:
    """HiGHS's log says the provided start is feasible, with the heuristic's objective."""
    inst = random_instance(9, 3, arrivals=3)
    heuristic = left_justify(best_fast_plan(inst)[1])
    res = solve(inst, "milp", SolveOptions(time_limit=60))
    assert res.stats["warm_start_objective"] == heuristic.total_latency
    assert res.stats["warm_start_accepted"] is True
    assert res.stats["warm_start_solver_objective"] == heuristic.total_latency
    assert res.objective is not None and res.objective <= heuristic.total_latency


def test_given_warm_start_overrides_the_baseline() -> None:
    inst = random_instance(7, 5)
    opt = solve(inst, "dp").plan
    assert opt is not None
    res = solve(inst, "milp", SolveOptions(warm_start=opt))
    assert res.stats["warm_start_source"] == "warm_start"
    assert res.stats["warm_start_solver_objective"] == opt.total_latency
    assert res.objective == opt.total_latency and res.status == Status.OPTIMAL


def test_time_limit_returns_feasible_plan_and_bound() -> None:
    # n=18 of the 1..8 / M=24 class takes HiGHS minutes; one second cannot prove it
    inst = random_instance(18, 1)
    res = solve(inst, "milp", SolveOptions(time_limit=1.0))
    assert res.stop_reason == StopReason.TIME_LIMIT
    assert res.status == Status.FEASIBLE
    assert res.plan is not None and res.lower_bound is not None
    assert inst.trivial_lower_bound() <= res.lower_bound < res.objective


def test_without_warm_start_still_solves() -> None:
    inst = random_instance(6, 2, max_batch=2)
    res = solve(inst, "milp", SolveOptions(params={"warm_start": False}))
    assert res.stats["warm_start_accepted"] is None
    assert res.status == Status.OPTIMAL and res.objective == solve(inst, "dp").objective


def test_missing_solver_is_a_clear_error() -> None:
    inst = random_instance(3, 0)
    with pytest.raises(RuntimeError, match="solver 'nosuchsolver' is not installed/available"):
        solve(inst, "milp", SolveOptions(solver="nosuchsolver"))
