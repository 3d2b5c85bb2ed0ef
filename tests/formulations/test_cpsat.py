"""``cpsat``: statuses, the complete hint, time limit behaviour, model switches."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler_milp.baselines.best import best_fast_plan
from scheduler_milp.formulations.prepare import finish, prepare
from scheduler_milp.formulations.timeindexed import left_justify
from scheduler_milp.generators import random_instance
from scheduler_milp.model.result import SolveOptions, Status, StopReason
from scheduler_milp.registry import solve


def test_hint_is_complete_and_feasible() -> None:
    """CP-SAT's log calls the hint complete and feasible; fixing every variable to it reproduces it."""
    inst = random_instance(9, 4, arrivals=3, block_size=2)
    heuristic = left_justify(best_fast_plan(inst)[1])
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


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_batch": 3, "arrivals": 2},
        {"block_size": 2},
        {"max_batch": 2},
        {"arrivals": 5, "block_size": 3},
    ],
)
def test_switches_do_not_change_the_optimum(kwargs: dict) -> None:
    inst = random_instance(7, 11, **kwargs)
    expected = solve(inst, "dp").objective
    for params in (
        {"symmetry": False, "count_cuts": False, "energy_bound": False},
        {"cumulative": 2},
        {"left_shift": True},
        {"left_shift": True, "warm_start": False},
        {"tight_windows": False},
        {"warm_start": False},
    ):
        res = solve(inst, "cpsat", SolveOptions(params=params))
        assert res.status == Status.OPTIMAL and res.objective == expected, params


def test_left_justify_never_worsens_and_leaves_no_single_shift() -> None:
    from scheduler_milp.model.plan import validate

    for seed in range(5):
        inst = random_instance(8, seed, arrivals=3, max_batch=3 if seed % 2 else None)
        base = solve(inst, "fcfs").plan
        assert base is not None
        plan = left_justify(base)
        assert plan.total_latency <= base.total_latency and not plan.violations()
        for i in range(inst.n):
            if plan.start_round[i] > inst.arrival[i]:
                moved = plan.start_round.copy()
                moved[i] -= 1
                assert validate(inst, moved)


def test_no_plan_means_unknown_with_its_bound() -> None:
    inst = random_instance(5, 1)
    prepared = prepare(inst, SolveOptions(params={"warm_start": False}))
    res = finish("cpsat", prepared, None, 40.2, True, 0.1, 0.2)
    assert res.status == Status.UNKNOWN and res.plan is None
    assert res.lower_bound == max(41, inst.trivial_lower_bound())
    assert res.stop_reason == StopReason.TIME_LIMIT
    with_hint = finish("cpsat", prepare(inst, SolveOptions()), None, None, True, 0.1, 0.2)
    assert with_hint.status == Status.FEASIBLE and with_hint.stats["plan_source"] == "warm_start"
    assert np.array_equal(
        with_hint.plan.start_round, prepare(inst, SolveOptions()).hint.start_round
    )  # type: ignore[union-attr]


@pytest.mark.parametrize("method", ["cpsat", "milp"])
def test_a_model_beyond_the_memory_cap_is_declined_before_it_is_built(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler_milp.formulations import timeindexed
    from scheduler_milp.model.result import ModelTooLarge

    inst = random_instance(8, 3)
    monkeypatch.setattr(timeindexed, "memory_cap", lambda: 1000)
    with pytest.raises(ModelTooLarge, match="too large for this machine"):
        solve(inst, method, SolveOptions(params={"max_nonzeros": 10**12}))


def test_cpsat_reports_plans_and_bounds_that_hold():
    """``SolveOptions.on_improvement`` (the command line's progress line) hears the upper-bound
    plan, CP-SAT's solutions and its bounds: objectives never below the optimum, bounds never
    above it."""
    calls: list[tuple[int | None, int | None]] = []
    inst = random_instance(9, 0)
    options = SolveOptions(time_limit=60, on_improvement=lambda o, b: calls.append((o, b)))
    res = solve(inst, "cpsat", options)
    assert res.status is Status.OPTIMAL
    objectives = [o for o, _ in calls if o is not None]
    bounds = [b for _, b in calls if b is not None]
    assert objectives and min(objectives) >= res.objective
    assert all(b <= res.objective for b in bounds)
