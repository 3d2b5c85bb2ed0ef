"""The serving-engine baselines: valid plans, vLLM's evictions, and the adversarial family."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from scheduler_milp.baselines.engine import priority_walk
from scheduler_milp.baselines.serving import (
    decode_priority,
    fcfs_priority,
    sf_priority,
    size_priority,
    svf_priority,
    vllm_simulate,
)
from scheduler_milp.generators import adversarial_instance
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.plan import Plan, validate
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve
from tests.reference import round_by_round_walk
from tests.strategies import tiny_instances

BASELINES = ("fcfs", "fcfs-skip", "sf", "size", "mcsf", "svf", "vllm")


def random_instance(rng: np.random.Generator, n: int) -> Instance:
    block = int(rng.integers(1, 5))
    prompt = rng.integers(1, 40, n)
    output = rng.integers(1, 30, n)
    peak = int((block * -(-(prompt + output) // block)).max())
    arrival = rng.integers(0, 40, n) if rng.random() < 0.5 else np.zeros(n, dtype=np.int64)
    max_batch = int(rng.integers(1, 6)) if rng.random() < 0.3 else None
    return Instance.create(
        peak + int(rng.integers(0, 80)),
        prompt,
        output,
        arrival,
        block_size=block,
        max_batch=max_batch,
    )


# ---------------------------------------------------------------------- every baseline
@pytest.mark.parametrize("method", BASELINES)
def test_every_baseline_plan_validates(method):
    rng = np.random.default_rng(BASELINES.index(method))
    for _ in range(25):
        inst = random_instance(rng, int(rng.integers(1, 40)))
        res = solve(inst, method, SolveOptions())
        assert validate(inst, res.plan.start_round) == []
        assert res.objective >= inst.trivial_lower_bound()


def test_walk_baselines_equal_their_priority_walks():
    rng = np.random.default_rng(4)
    for _ in range(20):
        inst = random_instance(rng, 12)
        for method, prio_fn, blocking in (
            ("fcfs", fcfs_priority, True),
            ("fcfs-skip", fcfs_priority, False),
            ("sf", sf_priority, False),
            ("size", size_priority, False),
            ("mcsf", sf_priority, True),
            ("svf", svf_priority, False),
        ):
            res = solve(inst, method, SolveOptions())
            walk = priority_walk(inst, prio_fn(inst), blocking=blocking)
            assert res.plan.start_round.tolist() == walk.start_round.tolist(), method
        # and the blocking ones are the round-by-round simulation
        ref = round_by_round_walk(inst, sf_priority(inst), blocking=True)
        assert solve(inst, "mcsf").plan.start_round.tolist() == ref.tolist()


def test_walk_params_select_the_variant():
    rng = np.random.default_rng(21)
    for _ in range(15):
        inst = random_instance(rng, 8)
        exact = solve(inst, "sf", SolveOptions(params={"lookahead": -1}))
        ref = round_by_round_walk(inst, sf_priority(inst), blocking=False)
        assert exact.plan.start_round.tolist() == ref.tolist()
        blocking = solve(inst, "sf", SolveOptions(params={"blocking": True}))
        assert blocking.plan.start_round.tolist() == solve(inst, "mcsf").plan.start_round.tolist()
        assert blocking.stats["blocking"] is True


def test_priorities_sort_by_their_keys():
    inst = Instance.create(
        100, [5, 1, 3, 2], [2, 4, 1, 4], [0, 0, 0, 1], ids=["r10", "r2", "r3", "r1"]
    )
    assert fcfs_priority(inst).tolist() == [1, 2, 0, 3]  # arrival, then natural id order (r2 < r10)
    assert sf_priority(inst).tolist() == [2, 0, 1, 3]  # output ascending, ties by arrival
    assert size_priority(inst).tolist() == [2, 1, 3, 0]  # s + o = 7, 5, 4, 6
    assert svf_priority(inst).tolist() == [2, 0, 1, 3]  # volumes 13, 14, 4, 18


def test_decode_priority_returns_a_checked_plan():
    rng = np.random.default_rng(0)
    inst = random_instance(rng, 30)
    plan = decode_priority(inst, rng.permutation(inst.n))
    assert isinstance(plan, Plan)
    assert plan.violations() == []


# ---------------------------------------------------------------------- vLLM
def test_vllm_hand_computed_example():
    # M=12: a (s2,o6), b (s3,o2), c (s2,o4) all admitted at 0 (3 + 4 + 3 = 10 <= 12).
    # Round 1: 4 + 5 + 4 = 13 > 12: evict c (newest), 1 round lost.  Round 2: b done, a holds 5,
    # c re-admitted (5 + 3 <= 12).  Round 5: a holds 8, c holds 6: 14 > 12: evict c again
    # (3 rounds lost).  Round 6: a done, c admitted for good.
    inst = Instance.create(12, [2, 3, 2], [6, 2, 4], ids=["a", "b", "c"])
    starts, evictions, wasted = vllm_simulate(inst)
    assert starts.tolist() == [0, 0, 6]
    assert (evictions, wasted) == (2, 4)
    res = solve(inst, "vllm")
    assert res.objective == 6 + 2 + 10
    assert res.stats["evictions"] == 2 and res.stats["wasted_rounds"] == 4


def test_vllm_evicts_where_the_future_peak_check_would_wait():
    # two requests fit now (5 + 5 = 10) but not one round later: vLLM admits both and evicts
    inst = Instance.create(10, [4, 4], [4, 4])
    starts, evictions, wasted = vllm_simulate(inst)
    assert (evictions, wasted) == (1, 1)
    assert starts.tolist() == [0, 4]
    assert solve(inst, "fcfs").plan.start_round.tolist() == [0, 4]  # same plan, no waste


def test_vllm_respects_arrivals_and_batch_cap():
    rng = np.random.default_rng(12)
    evicted = 0
    for _ in range(40):
        inst = random_instance(rng, 25)
        starts, evictions, wasted = vllm_simulate(inst)
        assert validate(inst, starts) == []
        assert wasted >= evictions  # every eviction loses at least its admission round
        evicted += evictions
    assert evicted > 0  # the random family does exercise eviction


# ---------------------------------------------------------------------- the adversarial family
def test_fcfs_and_sf_are_far_from_small_first_on_the_adversarial_family():
    inst = adversarial_instance(256)
    big = inst.prompt_len == inst.memory_budget - 1
    small_first = np.concatenate((np.flatnonzero(~big), np.flatnonzero(big)))
    good = Plan.checked(inst, priority_walk(inst, small_first, blocking=True).start_round)
    for method in ("fcfs", "sf"):
        bad = solve(inst, method).objective
        assert bad >= 2 * good.objective, (method, bad, good.objective)


# ---------------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=tiny_instances(max_n=8, max_len=8))
def test_baseline_plans_validate_and_are_deterministic(inst):
    for method in BASELINES:
        res = solve(inst, method, SolveOptions(seed=0))
        assert validate(inst, res.plan.start_round) == []
        assert res.objective >= int(inst.output_len.sum())
        again = solve(inst, method, SolveOptions(seed=1))
        assert again.plan.start_round.tolist() == res.plan.start_round.tolist()
