"""The validator and the plan's derived quantities, on hand-computed examples."""

import numpy as np
import pytest

from scheduler_milp.model.instance import Instance
from scheduler_milp.model.plan import Plan, PlanError, memory_per_round, validate


def toy3() -> Instance:
    # the example of docs/formats.md
    return Instance.create(24, [5, 2, 9], [3, 7, 1], [0, 2, 0], ["r0", "r1", "r2"], name="toy-3")


def test_derived_quantities_by_hand():
    inst = toy3()
    plan = Plan.checked(inst, {"r0": 0, "r1": 2, "r2": 0})
    # completions 3, 9, 1; latencies 3, 7, 1
    assert plan.completion.tolist() == [3, 9, 1]
    assert plan.latency.tolist() == [3, 7, 1]
    assert plan.total_latency == 11
    assert plan.average_latency == pytest.approx(11 / 3)
    assert plan.makespan == 9
    # round 0: r0 holds 5+1, r2 holds 9+1; round 1: r0 7; round 2: r0 8 + r1 3; then r1 alone 4..9
    assert plan.memory_per_round.tolist() == [16, 7, 11, 4, 5, 6, 7, 8, 9]
    assert plan.peak_memory == 16
    assert plan.batch_per_round.tolist() == [2, 1, 2, 1, 1, 1, 1, 1, 1]


def test_memory_violation_lists_rounds_and_excess():
    inst = Instance.create(10, [4, 4], [3, 3])
    problems = validate(inst, np.array([0, 0]))
    # rounds: 5+5=10 ok, 6+6=12 (+2), 7+7=14 (+4)
    assert [(v.kind, v.round, v.excess) for v in problems] == [("memory", 1, 2), ("memory", 2, 4)]
    assert "exceeds M=10 by 2" in problems[0].message
    with pytest.raises(PlanError):
        Plan.checked(inst, [0, 0])
    assert validate(inst, np.array([0, 3])) == []


def test_block_size_rounds_up_to_blocks():
    # B=4: s=5 holds ceil(6/4)*4=8, then 8, 8; s=1,o=4 holds 4,4,4,8
    inst = Instance.create(12, [5, 1], [3, 4], block_size=4)
    assert memory_per_round(inst, np.array([0, 0])).tolist() == [12, 12, 12, 8]
    assert validate(inst, np.array([0, 0])) == []
    tight = inst.replace(memory_budget=11)
    kinds = [(v.kind, v.round) for v in validate(tight, np.array([0, 0]))]
    assert kinds == [("memory", 0), ("memory", 1), ("memory", 2)]
    assert inst.peak_memory.tolist() == [8, 8]
    assert inst.volume.tolist() == [24, 20]


def test_block_size_matches_naive_sum():
    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.integers(1, 7))
        b = int(rng.integers(1, 6))
        s, o = rng.integers(1, 12, n), rng.integers(1, 12, n)
        inst = Instance.create(10_000, s, o, block_size=b)
        start = rng.integers(0, 10, n)
        naive = np.zeros(int((start + o).max()), dtype=np.int64)
        for i in range(n):
            for k in range(1, o[i] + 1):
                naive[start[i] + k - 1] += b * -(-(s[i] + k) // b)
        assert memory_per_round(inst, start).tolist() == naive.tolist()


def test_arrival_and_batch_cap_violations():
    inst = Instance.create(100, [1, 1], [2, 2], [0, 3], max_batch=1)
    problems = validate(inst, np.array([0, 1]))
    kinds = sorted(v.kind for v in problems)
    assert kinds == ["arrival", "batch"]
    arrival = next(v for v in problems if v.kind == "arrival")
    assert arrival.request == "r1" and "before its arrival 3" in arrival.message
    batch = next(v for v in problems if v.kind == "batch")
    assert batch.round == 1
    assert validate(inst, np.array([0, 3])) == []


def test_missing_and_unknown_requests():
    inst = toy3()
    problems = validate(inst, {"r0": 0, "r2": 0, "zz": 4})
    kinds = sorted(v.kind for v in problems)
    assert kinds == ["missing", "unknown"]
    assert any("'r1'" in v.message for v in problems)
    assert validate(inst, np.array([0, 2])) != []  # wrong length
    assert validate(inst, {"r0": 0, "r1": 2.5, "r2": 0})[0].kind == "start"


def test_plan_is_immutable():
    plan = Plan.checked(toy3(), [0, 2, 0])
    with pytest.raises(ValueError):
        plan.start_round[0] = 5
