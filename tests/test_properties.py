"""Property: every bound <= the proven optimum <= every heuristic, on random tiny instances.

The optimum comes from ``dp``, the exact search that shares no code with the models or the engine.
"""

from hypothesis import HealthCheck, given, settings

from scheduler_milp.model.result import SolveOptions, Status
from scheduler_milp.registry import METHODS, solve
from tests.strategies import tiny_instances


def test_dp_is_registered():
    # the property below needs the independent exact search; its absence is a failure, not a skip
    assert "dp" in METHODS


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=tiny_instances(max_n=5, max_len=5))
def test_bound_le_optimum_le_every_heuristic(inst):
    exact = solve(inst, "dp", SolveOptions(time_limit=60))
    assert exact.status is Status.OPTIMAL
    optimum = exact.objective
    for name, spec in METHODS.items():
        if spec.max_n is not None and inst.n > spec.max_n:
            continue
        res = solve(inst, name, SolveOptions(time_limit=20, seed=0, iteration_limit=50))
        assert res.plan is not None
        assert res.plan.violations() == []
        assert res.objective >= optimum, f"{name} beat the proven optimum"
        assert res.lower_bound <= optimum, (
            f"{name}'s bound {res.lower_bound} exceeds the optimum {optimum}"
        )
        if spec.kind == "exact" and res.status is Status.OPTIMAL:
            assert res.objective == optimum, name
