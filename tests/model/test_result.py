"""Statuses are derived from what we hold; the gap formula is the one of docs/model.md."""

import json

import pytest

from scheduler_milp.model.instance import Instance
from scheduler_milp.model.plan import Plan
from scheduler_milp.model.result import SolveResult, Status, StopReason, gap, round_bound


def inst() -> Instance:
    return Instance.create(10, [4, 4], [3, 3])


def test_status_optimal_only_when_bound_meets_objective():
    plan = Plan.checked(inst(), [0, 3])  # objective 3 + 6 = 9
    assert SolveResult("x", inst(), plan, lower_bound=9).status is Status.OPTIMAL
    feasible = SolveResult("x", inst(), plan, lower_bound=8, stop_reason=StopReason.TIME_LIMIT)
    assert feasible.status is Status.FEASIBLE
    assert feasible.gap == pytest.approx(1 / 9)
    assert SolveResult("x", inst(), None, lower_bound=8).status is Status.UNKNOWN
    assert SolveResult("x", inst(), None, proven_infeasible=True).status is Status.INFEASIBLE


def test_bound_never_below_trivial_and_never_above_plan():
    plan = Plan.checked(inst(), [0, 3])
    res = SolveResult("x", inst(), plan)
    assert res.lower_bound == 6 and res.stats["bound_source"] == "sum_output"
    with pytest.raises(AssertionError):
        SolveResult("x", inst(), plan, lower_bound=10)


def test_invalid_plan_cannot_leave_a_method():
    bad = Plan(inst(), __import__("numpy").array([0, 0]))  # bypasses Plan.checked on purpose
    with pytest.raises(ValueError):
        SolveResult("x", inst(), bad)


def test_gap_formula_and_rounding():
    assert gap(100, 90) == pytest.approx(0.1)
    assert gap(None, 3) is None and gap(10, None) is None
    assert round_bound(41.0000000001) == 41
    assert round_bound(40.2) == 41
    assert round_bound(float("inf")) is None


def test_plan_file_follows_formats(tmp_path):
    plan = Plan.checked(inst(), [0, 3])
    res = SolveResult("sf", inst(), plan, lower_bound=9, build_seconds=0.5, solve_seconds=0.25)
    out = tmp_path / "plan.json"
    res.write(str(out))
    data = json.loads(out.read_text())
    assert data["status"] == "optimal" and data["objective"] == 9 and data["lower_bound"] == 9
    assert data["starts"] == {"r0": 0, "r1": 3}
    assert data["seconds"] == pytest.approx(0.75)
    assert {"instance", "method", "status", "objective", "lower_bound", "starts", "seconds"} <= set(
        data
    )


def test_a_small_positive_gap_is_feasible_not_optimal():
    """The status rule has no tolerance: a bound one below the objective leaves the plan feasible."""
    instance = Instance.create(150, [1, 1], [100, 100])  # they cannot run together
    plan = Plan.checked(instance, [0, 100])  # objective 300, optimal in fact
    almost = SolveResult("x", instance, plan, lower_bound=plan.total_latency - 1)
    assert almost.status is Status.FEASIBLE
    assert almost.gap == pytest.approx(1 / 300)
    assert "optimal" not in almost.certificate()
    assert "0.33% better" in almost.certificate()
    exact = SolveResult("x", instance, plan, lower_bound=plan.total_latency)
    assert exact.status is Status.OPTIMAL and exact.gap == 0.0
    assert "optimal" in exact.certificate()


def test_every_registered_method_names_its_proof_in_words() -> None:
    """The certificate line never falls back to a bare method or source name."""
    from scheduler_milp import load_example, solve
    from scheduler_milp.model.result import BOUND_SOURCES, SolveOptions
    from scheduler_milp.registry import METHODS

    inst = load_example("toy-3")
    for name in METHODS:
        res = solve(inst, name, SolveOptions(time_limit=5))
        source = str(res.stats.get("bound_source") or res.method)
        assert source in BOUND_SOURCES, f"{name}: bound source {source!r} has no words"
        assert BOUND_SOURCES[source] in res.certificate()
