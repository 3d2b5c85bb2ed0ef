"""The shared time-indexed structure: rows against the one validator, windows, bounds, the horizon trap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scheduler_milp.baselines.best import best_fast_plan
from scheduler_milp.formulations.timeindexed import (
    build,
    completion_caps,
    energy_lower_bound,
    latest_starts,
)
from scheduler_milp.generators import random_instance
from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.model.plan import validate
from scheduler_milp.registry import solve

DATA = Path(__file__).resolve().parents[1] / "data"


def _rows_ok(rows, x: np.ndarray) -> bool:  # type: ignore[no-untyped-def]
    if rows is None:
        return True
    for r in range(rows.n_rows):
        cols, coefs = rows.row(r)
        if int((coefs * x[cols]).sum()) > rows.rhs_of(r):
            return False
    return True


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"arrivals": 4},
        {"block_size": 2},
        {"block_size": 3, "arrivals": 3},
        {"max_batch": 2},
        {"max_batch": 2, "arrivals": 2, "block_size": 2},
    ],
)
def test_rows_accept_exactly_the_valid_plans(kwargs: dict) -> None:
    """Kept memory and batch rows hold for a start vector iff the validator accepts it.

    This checks both the coefficients and the argument for dropping rows (docs/model.md facts).
    """
    rng = np.random.default_rng(7)
    seen = {True: 0, False: 0}
    for seed in range(6):
        inst = random_instance(4, seed, memory=20, output_range=(1, 5), **kwargs)
        ub = best_fast_plan(inst)[1].total_latency
        model = build(inst, ub)
        for _ in range(150):
            starts = inst.arrival + rng.integers(0, model.latest - inst.arrival + 1)
            x = model.indicator(starts)
            by_rows = _rows_ok(model.memory_rows, x) and _rows_ok(model.batch_rows, x)
            by_validator = not validate(inst, starts)
            assert by_rows == by_validator, (inst.to_dict(), starts.tolist())
            seen[by_validator] += 1
    # the sample must exercise both outcomes, or the test proves nothing
    assert seen[True] > 20 and seen[False] > 20


def test_objective_coefficients_are_latencies() -> None:
    inst = random_instance(6, 3, arrivals=5)
    plan = best_fast_plan(inst)[1]
    model = build(inst, plan.total_latency)
    assert int(model.col_cost @ model.indicator(plan.start_round)) == plan.total_latency
    assert np.array_equal(
        model.starts_from_values(model.indicator(plan.start_round)), plan.start_round
    )


def test_windows_contain_every_optimal_plan_and_bounds_hold() -> None:
    """dp's optimal plans lie inside the tight windows; completion caps and count rows hold."""
    for seed in range(12):
        inst = random_instance(
            5, seed, arrivals=3 if seed % 2 else None, max_batch=2 if seed % 3 == 0 else None
        )
        ub_plan = best_fast_plan(inst)[1]
        opt = solve(inst, "dp")
        assert opt.status.value == "optimal"
        plan = opt.plan
        assert plan is not None
        tight = latest_starts(inst, ub_plan.total_latency)
        loose = latest_starts(inst, ub_plan.total_latency, tight=False)
        assert (tight <= loose).all()
        assert (plan.start_round <= tight).all()
        assert energy_lower_bound(inst) <= plan.total_latency
        assert (np.sort(plan.completion) >= completion_caps(inst)).all()
        model = build(inst, ub_plan.total_latency)
        assert _rows_ok(model.completion_count_rows(), model.indicator(plan.start_round))


def test_size_refusal_is_a_clear_value_error() -> None:
    inst = random_instance(30, 1)
    with pytest.raises(ValueError, match="too large"):
        build(inst, best_fast_plan(inst)[1].total_latency, max_nonzeros=100)


def test_identical_requests_are_grouped() -> None:
    inst = Instance.create(20, [3, 3, 2, 3], [4, 4, 4, 4], [0, 0, 0, 1])
    model = build(inst, best_fast_plan(inst)[1].total_latency)
    assert [g.tolist() for g in model.identical_groups()] == [[0, 1]]


def test_makespan_horizon_would_give_a_wrong_optimum() -> None:
    """On the shipped trap instance every optimal plan ends after the best heuristic's makespan.

    Restricting completions to that makespan (latest start = makespan - o_i) raises the model's
    optimum above the true one; the derived per-request windows keep the true optimum.
    """
    from ortools.sat.python import cp_model

    from scheduler_milp.formulations.cpsat import build_cpsat

    inst = load_instance(DATA / "horizon-makespan-trap.json")
    _, ub_plan = best_fast_plan(inst)

    def optimum(model) -> float:  # type: ignore[no-untyped-def]
        cp, _, _ = build_cpsat(model, symmetry=False, count_cuts=False, energy_bound=False)
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        assert solver.solve(cp) == cp_model.OPTIMAL
        return solver.objective_value

    true_opt = solve(inst, "dp").objective
    assert true_opt is not None
    assert optimum(build(inst, ub_plan.total_latency)) == true_opt
    makespan_model = build(
        inst, ub_plan.total_latency, latest_override=ub_plan.makespan - inst.output_len
    )
    assert optimum(makespan_model) > true_opt
    for method in ("milp", "cpsat"):
        res = solve(inst, method)
        assert res.objective == true_opt and res.status.value == "optimal"
        assert res.plan is not None and res.plan.makespan > ub_plan.makespan
