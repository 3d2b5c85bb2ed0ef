"""The lower bound in seconds never exceeds the seconds of any plan (one engine or several)."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler_milp.model.instance import Instance
from scheduler_milp.registry import solve
from scheduler_milp.replicas.exact import replica_optimum
from scheduler_milp.replicas.plan import replica_times
from scheduler_milp.timing.certify import rank_term, seconds_lower_bound
from scheduler_milp.timing.metrics import plan_times
from scheduler_milp.timing.roundtime import UNIT
from tests.timing.reference import random_model


def _instance(rng: np.random.Generator, n: int, arrivals: bool = False) -> Instance:
    s = rng.integers(1, 7, n)
    o = rng.integers(1, 7, n)
    a = rng.integers(0, 5, n) if arrivals else np.zeros(n, dtype=np.int64)
    memory = int((s + o).max()) + int(rng.integers(0, 10))
    return Instance.create(memory, s, o, a)


@pytest.mark.parametrize("seed", range(30))
def test_the_backlog_bound_holds_for_every_plan_tried(seed: int) -> None:
    rng = np.random.default_rng(seed)
    inst = _instance(rng, int(rng.integers(2, 8)))
    model = random_model(rng)
    opt = solve(inst, "dp")
    assert opt.status.value == "optimal"
    bound = seconds_lower_bound(inst, model, opt.lower_bound or 0)
    assert bound.kind == "backlog"
    for method in ("dp", "fcfs", "sf", "svf", "mcsf"):
        plan = solve(inst, method).plan
        assert plan is not None
        total = plan_times(inst, plan.start_round, model).e2e.sum()
        assert bound.total <= total + 1e-9, method
        # every plan shifted later stays above it too
        late = plan_times(inst, plan.start_round + 2, model).e2e.sum()
        assert bound.total <= late + 1e-9


@pytest.mark.parametrize("seed", range(12))
def test_the_backlog_bound_holds_for_replicas(seed: int) -> None:
    rng = np.random.default_rng(50 + seed)
    inst = _instance(rng, int(rng.integers(3, 7)))
    model = random_model(rng)
    value, assign, starts = replica_optimum(inst, 2)
    bound = seconds_lower_bound(inst, model, value, replicas=2)
    total = replica_times(inst, 2, assign, starts, model).e2e.sum()
    assert bound.total <= total + 1e-9
    # the one-engine bound of the same instance need not hold for two engines, the 2-replica one does
    assert bound.total <= seconds_lower_bound(inst, model, value, replicas=1).total + 1e-9


@pytest.mark.parametrize("seed", range(15))
def test_with_arrivals_only_each_request_s_own_rounds_are_certified(seed: int) -> None:
    rng = np.random.default_rng(80 + seed)
    inst = _instance(rng, int(rng.integers(2, 7)), arrivals=True)
    if not inst.has_arrivals:
        return
    model = random_model(rng)
    bound = seconds_lower_bound(inst, model, 0)
    assert bound.kind == "own-rounds"
    for method in ("fcfs", "svf", "dp"):
        plan = solve(inst, method).plan
        assert plan is not None
        t = plan_times(inst, plan.start_round, model, round_seconds=float(rng.uniform(0.1, 3)))
        assert bound.total <= t.e2e.sum() + 1e-9


def test_the_unit_model_certifies_the_round_bound_itself() -> None:
    inst = Instance.create(10, [2, 3, 4], [3, 1, 2], arrival=[0, 1, 0])
    assert seconds_lower_bound(inst, UNIT, 17).total == 17
    assert rank_term(np.array([1.0, 5.0, 3.0]), 1) == 5 * 1 + 3 * 2 + 1 * 3
    assert rank_term(np.array([1.0, 5.0, 3.0]), 2) == 5 * 1 + 3 * 1 + 1 * 2


def test_rounds_of_a_fixed_length_scale_the_round_bound() -> None:
    from scheduler_milp.timing.roundtime import RoundTime

    inst = Instance.create(10, [2, 3, 4], [3, 1, 2], arrival=[0, 1, 0])
    fixed = RoundTime(0.05, name="fixed")
    b = seconds_lower_bound(inst, fixed, 17, arrival_s=inst.arrival * 0.05)
    assert (b.kind, b.total) == ("unit", pytest.approx(0.85))
    plan = solve(inst, "dp").plan
    assert plan is not None
    t = plan_times(inst, plan.start_round, fixed, round_seconds=0.05)
    assert t.e2e.sum() == pytest.approx(0.05 * plan.total_latency)
    # arrivals off the grid: only the requests' own rounds are certified
    assert (
        seconds_lower_bound(inst, fixed, 17, arrival_s=inst.arrival * 0.05 + 0.01).kind
        == "own-rounds"
    )
