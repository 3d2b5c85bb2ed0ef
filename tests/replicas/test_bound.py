"""The pooled bound never exceeds the k-replica optimum, proven by enumerating every assignment."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler_milp.bounds.lagrangian import best_lower_bound
from scheduler_milp.model.instance import Instance
from scheduler_milp.replicas.bound import fast_replica_bound, pooled_instance, replica_lower_bound
from scheduler_milp.replicas.exact import assignments, replica_optimum
from scheduler_milp.replicas.plan import ReplicaPlan


def _instance(rng: np.random.Generator) -> Instance:
    n = int(rng.integers(2, 7))
    s, o = rng.integers(1, 7, n), rng.integers(1, 6, n)
    a = rng.integers(0, 4, n) * (rng.random(n) < 0.4)
    cap = None if rng.random() < 0.7 else int(rng.integers(1, 3))
    memory = int((s + o).max()) + int(rng.integers(0, 8))
    return Instance.create(memory, s, o, a, max_batch=cap)


def test_assignments_are_enumerated_up_to_relabelling() -> None:
    got = list(assignments(4, 2))
    assert len(got) == 8 and all(a[0] == 0 for a in got)  # 2^4 / 2
    assert len(list(assignments(5, 3))) == 41  # Stirling numbers: S(5,1)+S(5,2)+S(5,3)


@pytest.mark.parametrize("seed", range(40))
def test_the_pooled_bounds_stay_below_the_exact_replica_optimum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    inst = _instance(rng)
    k = int(rng.integers(2, 4))
    value, assign, starts = replica_optimum(inst, k)
    plan = ReplicaPlan.checked(inst, k, assign, starts)  # the optimum is a valid replica plan
    assert plan.total_latency == value
    fast, _ = fast_replica_bound(inst, k)
    assert fast <= value
    full, _ = best_lower_bound(pooled_instance(inst, k), time_limit=5)
    assert full <= value
    lb, _ = replica_lower_bound(inst, k, time_limit=5, start_round=starts)
    assert lb <= value
    assert lb >= inst.trivial_lower_bound()


def test_one_replica_is_the_one_engine_problem() -> None:
    inst = Instance.create(12, [3, 4, 5, 2], [2, 3, 2, 4])
    value, assign, _ = replica_optimum(inst, 1)
    assert set(assign.tolist()) == {0}
    from scheduler_milp.registry import solve

    assert solve(inst, "dp").objective == value


def test_pooling_is_where_the_bound_can_be_loose() -> None:
    # peak 6 in M = 10: on two replicas two of the three share one and run one after the other;
    # pooled (M = 20) all three run together, so no pooled bound can exceed 6 < 8
    inst = Instance.create(10, [4, 4, 4], [2, 2, 2])
    value, _, _ = replica_optimum(inst, 2)
    lb, _ = replica_lower_bound(inst, 2, time_limit=5)
    assert value == 2 + 2 + 4
    assert lb <= 6 < value
