"""``cpsat``: statuses, the complete hint, time limit behaviour, model switches."""

from __future__ import annotations

from scheduler_milp.exact import best_baseline
from scheduler_milp.generators import random_instance
from scheduler_milp.registry import solve
from scheduler_milp.result import SolveOptions, Status, StopReason


def test_hint_is_complete_and_feasible() -> None:
    """CP-SAT's log calls the hint complete and feasible; fixing every variable to it reproduces it."""
    inst = random_instance(9, 4, arrivals=3, block_size=2)
    heuristic, _ = best_baseline(inst)
    res = solve(inst, "cpsat", SolveOptions(time_limit=60))
    assert res.stats["warm_start_accepted"] is True
    assert res.stats["first_solution_objective"] is not None
    assert res.stats["first_solution_objective"] <= heuristic.total_latency
    fixed = solve(inst, "cpsat", SolveOptions(params={"fix_to_hint": True}))
    assert fixed.objective == heuristic.total_latency
    assert (fixed.plan is not None) and (fixed.plan.start_round == heuristic.start_round).all()


def test_time_limit_returns_feasible_plan_and_bound() -> None:
    inst = random_instance(20, 2)
    res = solve(inst, "cpsat", SolveOptions(time_limit=1.0))
    assert res.stop_reason == StopReason.TIME_LIMIT
    assert res.status == Status.FEASIBLE
    assert res.plan is not None and res.lower_bound is not None and res.lower_bound < res.objective


def test_switches_do_not_change_the_optimum() -> None:
    inst = random_instance(7, 11, max_batch=3, arrivals=2)
    expected = solve(inst, "dp").objective
    for params in (
        {"symmetry": False, "count_cuts": False, "energy_bound": False},
        {"cumulative": 2},
        {"warm_start": False},
    ):
        res = solve(inst, "cpsat", SolveOptions(params=params))
        assert res.status == Status.OPTIMAL and res.objective == expected, params
