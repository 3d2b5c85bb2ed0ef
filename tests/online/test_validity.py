"""Every execution of every policy is valid, under any predictions and both eviction modes.

The executor already runs the independent check before it returns; these tests run it again,
compare the claimed numbers, and add the properties any execution has: nobody finishes before
``a_i + o_i``, and the hindsight plan of an exact method is never beaten.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler_milp.model.instance import Instance
from scheduler_milp.model.plan import validate
from scheduler_milp.online.policies import build_policy
from scheduler_milp.online.predictors import PREDICTORS, make_predictions
from scheduler_milp.online.run import simulate
from scheduler_milp.online.view import Setting
from tests.online.helpers import ONLINE_POLICIES, random_instance, random_predictions
from tests.strategies import tiny_instances

REPLAN = {"window": 4, "every": 1}


def params_of(policy: str) -> dict[str, object] | None:
    return REPLAN if policy.startswith("replan:") else None


def assert_valid(inst: Instance, ex) -> None:
    assert ex.check() == []
    assert (ex.completion >= inst.arrival + inst.output_len).all()
    assert ex.objective >= int(inst.output_len.sum())
    assert len(ex.segments) == inst.n


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    inst=tiny_instances(max_n=7, max_len=7),
    seed=st.integers(0, 1000),
    eviction=st.sampled_from(["restart", "resume"]),
)
def test_every_policy_random_predictions(inst: Instance, seed: int, eviction: str) -> None:
    predictions = random_predictions(np.random.default_rng(seed), inst)
    for policy in ONLINE_POLICIES:
        assert_valid(inst, simulate(inst, policy, predictions, eviction, params=params_of(policy)))


@pytest.mark.parametrize("eviction", ["restart", "resume"])
def test_every_policy_every_predictor_seeded(eviction: str) -> None:
    rng = np.random.default_rng(11)
    specs = ["exact", "lognormal:1", "interval:2", "bins:3:0.3", "constant", "adversarial:3"]
    assert {s.split(":")[0] for s in specs} | {"file"} == set(PREDICTORS)
    evicted = 0
    for _ in range(12):
        inst = random_instance(rng, n=int(rng.integers(4, 12)))
        for spec in specs:
            for policy in ONLINE_POLICIES:
                ex = simulate(
                    inst,
                    policy,
                    spec,
                    eviction,
                    seed=int(rng.integers(100)),
                    params=params_of(policy),
                )
                assert_valid(inst, ex)
                evicted += ex.evictions
    assert evicted > 0  # the instances are tight enough to exercise evictions


def test_hindsight_optimum_is_a_floor_in_restart_mode() -> None:
    """In ``restart`` mode the last segments alone are a valid plan with the same completions, so
    no execution beats the optimum.  (In ``resume`` mode an eviction is a preemption, which the
    plan model does not allow: an execution may beat it, and the optimum is no floor there.)"""
    rng = np.random.default_rng(5)
    for _ in range(6):
        inst = random_instance(rng, n=6)
        floor = simulate(inst, "hindsight:dp").objective
        for policy in ONLINE_POLICIES:
            ex = simulate(inst, policy, "lognormal:1", "restart", seed=2, params=params_of(policy))
            assert ex.objective >= floor, policy
            plan = validate(inst, np.array([segs[-1][0] for segs in ex.segments]))
            assert plan == [], policy


def test_policies_are_deterministic() -> None:
    rng = np.random.default_rng(8)
    inst = random_instance(rng, n=10)
    for policy in ONLINE_POLICIES:
        a = simulate(inst, policy, "lognormal:1", "restart", seed=4, params=params_of(policy))
        b = simulate(inst, policy, "lognormal:1", "restart", seed=4, params=params_of(policy))
        assert a.segments == b.segments and a.log == b.log


def test_clairvoyant_policies_are_marked() -> None:
    inst = Instance.create(10, [1], [2])
    setting = Setting(10)
    assert build_policy("hindsight:sf", setting, oracle=inst).clairvoyant
    assert not any(build_policy(p, setting, params_of(p)).clairvoyant for p in ONLINE_POLICIES)


def test_budgets_of_the_whole_run() -> None:
    inst = random_instance(np.random.default_rng(2), n=8)
    with pytest.raises(TimeoutError):
        simulate(inst, "sf", "exact", run_limit=0.0)
    assert make_predictions(inst, "exact").n == inst.n


def test_a_resume_execution_can_beat_the_plan_model() -> None:
    """An eviction in ``resume`` mode is a preemption: vLLM pauses r5 for two rounds and the
    execution beats the optimum of the (non-preemptive) plan model, which ``restart`` never does."""
    inst = Instance.create(
        30,
        [7, 5, 5, 3, 5, 8],
        [2, 7, 1, 3, 8, 7],
        [0, 5, 5, 2, 2, 5],
    )
    optimum = simulate(inst, "hindsight:dp").objective
    resumed = simulate(inst, "vllm", "exact", "resume")
    assert (optimum, resumed.objective) == (33, 30)
    assert resumed.segments[5] == [(5, 8), (10, 14)]
    assert simulate(inst, "vllm", "exact", "restart").objective >= optimum
