"""Replica plans: valid exactly when every replica's plan passes the one validator."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler_milp.model.instance import Instance
from scheduler_milp.model.plan import PlanError, validate
from scheduler_milp.replicas.bound import pooled_instance
from scheduler_milp.replicas.plan import ReplicaPlan, read_replica_plan, validate_replicas

# two requests of peak 8 each in M = 10: together only on two replicas
INST = Instance.create(10, [5, 5, 2], [3, 3, 2])


def test_a_plan_that_needs_two_replicas() -> None:
    starts = [0, 0, 3]
    assert validate(INST, np.array(starts))  # one engine: memory 12 > 10 in round 0..
    plan = ReplicaPlan.checked(INST, 2, [0, 1, 0], starts)
    assert plan.total_latency == 3 + 3 + 5
    assert plan.per_replica_objective() == [8, 3]
    assert plan.replica_by_id() == {"r0": 0, "r1": 1, "r2": 0}
    # every replica's plan passes the validator on its own requests
    for r in range(2):
        assert plan.replica_plan(r).violations() == []


def test_violations_name_the_replica() -> None:
    problems = validate_replicas(INST, 2, [0, 0, 1], [0, 0, 0])
    assert problems and all(p.message.startswith("replica 0:") for p in problems)
    with pytest.raises(PlanError):
        ReplicaPlan.checked(INST, 2, [0, 0, 1], [0, 0, 0])
    assert validate_replicas(INST, 2, [0, 2, 1], [0, 0, 0])[0].kind == "replica"
    assert validate_replicas(INST, 2, [0, 1], [0, 0, 0])[0].kind == "replica"


def test_an_empty_replica_is_allowed_and_a_plan_file_round_trips() -> None:
    plan = ReplicaPlan.checked(INST, 3, [0, 2, 2], [0, 0, 3])
    assert plan.per_replica_objective() == [3, 0, 8]
    back = read_replica_plan(INST, plan.to_dict())
    assert back.replicas == 3
    np.testing.assert_array_equal(back.assignment, plan.assignment)
    np.testing.assert_array_equal(back.start_round, plan.start_round)


@pytest.mark.parametrize("seed", range(20))
def test_every_replica_plan_is_a_plan_of_the_pooled_instance(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(2, 9)), int(rng.integers(2, 4))
    s, o = rng.integers(1, 6, n), rng.integers(1, 6, n)
    inst = Instance.create(int((s + o).max()) + 2, s, o, rng.integers(0, 3, n))
    assign = rng.integers(0, k, n)
    starts = np.zeros(n, dtype=np.int64)
    for r in range(k):  # each replica: one request after the other (always valid)
        t = 0
        for i in np.flatnonzero(assign == r):
            starts[i] = max(t, int(inst.arrival[i]))
            t = int(starts[i] + o[i])
    plan = ReplicaPlan.checked(inst, k, assign, starts)
    assert validate(pooled_instance(inst, k), plan.start_round) == []
