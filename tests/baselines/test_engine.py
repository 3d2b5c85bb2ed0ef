"""The shared start rule against slow, obviously-correct references (``tests/reference.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler_milp.baselines.engine import (
    RunningSet,
    _WaitingByOutput,
    priority_from_keys,
    priority_walk,
)
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.plan import validate
from tests.reference import future_fits, round_by_round_walk
from tests.strategies import tiny_instances


def random_instance(rng: np.random.Generator, max_n: int = 9) -> Instance:
    """Small instances with arrivals (half of them), block sizes 1..4 and sometimes a batch cap."""
    n = int(rng.integers(1, max_n + 1))
    block = int(rng.integers(1, 5))
    prompt = rng.integers(1, 12, n)
    output = rng.integers(1, 7, n)
    peak = int((block * -(-(prompt + output) // block)).max())
    memory = peak + int(rng.integers(0, 20))
    arrival = rng.integers(0, 6, n) if rng.random() < 0.5 else np.zeros(n, dtype=np.int64)
    max_batch = int(rng.integers(1, 4)) if rng.random() < 0.3 else None
    return Instance.create(memory, prompt, output, arrival, block_size=block, max_batch=max_batch)


def brute_usage(inst: Instance, running: dict[int, int], tau: int) -> int:
    return sum(
        int(inst.mem(i, tau - s + 1))
        for i, s in running.items()
        if s <= tau < s + int(inst.output_len[i])
    )


def random_running(
    rng: np.random.Generator, inst: Instance
) -> tuple[RunningSet, dict[int, int], int]:
    """A running set built by starting requests at increasing rounds while they fit (future_fits)."""
    rs = RunningSet(inst)
    running: dict[int, int] = {}
    t = 0
    for j in rng.permutation(inst.n).tolist():
        if rng.random() < 0.3:
            continue
        t += int(rng.integers(0, 3))
        if future_fits(
            inst, {i: s for i, s in running.items() if s + int(inst.output_len[i]) > t}, j, t
        ):
            rs.add(j, t)
            running[j] = t
    return rs, running, t


def slow_skipping_walk(inst: Instance, priority: np.ndarray) -> np.ndarray:
    """The documented default skipping walk (lookahead 0), from future_fits alone.

    Decision rounds are completions, arrivals and the first round in which the best-ranked waiting
    request fits; at each one every waiting request is tried in priority order.
    """
    n = inst.n
    start = np.full(n, -1, dtype=np.int64)
    cap = inst.max_batch or n + 1
    running: dict[int, int] = {}
    t = int(inst.arrival.min())
    while (start < 0).any():
        running = {i: s for i, s in running.items() if s + inst.output_len[i] > t}
        for j in priority.tolist():
            if (
                start[j] < 0
                and inst.arrival[j] <= t
                and len(running) < cap
                and future_fits(inst, running, j, t)
            ):
                running[j] = t
                start[j] = t
        if not (start < 0).any():
            break
        cands = [s + int(inst.output_len[i]) for i, s in running.items()]
        cands += [int(a) for a, s in zip(inst.arrival, start, strict=True) if s < 0 and a > t]
        waiting = [j for j in priority.tolist() if start[j] < 0 and inst.arrival[j] <= t]
        if waiting and len(running) < cap:
            u = t + 1
            while not future_fits(
                inst,
                {i: s for i, s in running.items() if s + inst.output_len[i] > u},
                waiting[0],
                u,
            ):
                u += 1
            cands.append(u)
        t = min(cands)
    return start


# ---------------------------------------------------------------------- RunningSet
def test_fits_and_usage_agree_with_reference():
    rng = np.random.default_rng(11)
    compared = 0
    for _ in range(150):
        inst = random_instance(rng)
        rs, running, t = random_running(rng, inst)
        for tau in range(t, t + 12):
            assert int(rs.usage_at(tau)[0]) == brute_usage(inst, running, tau)
            assert rs.usage_now(tau) == brute_usage(inst, running, tau)
        waiting = [j for j in range(inst.n) if j not in running]
        for u in (t, t + 1, t + 3):
            alive = {i: s for i, s in running.items() if s + int(inst.output_len[i]) > u}
            expect = [future_fits(inst, alive, j, u) for j in waiting]
            assert [rs.fits(j, u) for j in waiting] == expect
            if waiting:
                assert rs.fits_many(np.array(waiting), u).tolist() == expect
            compared += len(waiting)
    assert compared > 300  # the loop really compared something


def fits_sized(inst: Instance, running: dict[int, int], s: int, o: int, t: int) -> bool:
    """Round by round: does a request with prompt ``s`` and output ``o`` started at ``t`` fit?"""
    b = inst.block_size
    return all(
        brute_usage(inst, running, tau) + b * -(-(s + tau - t + 1) // b) <= inst.memory_budget
        for tau in range(t, t + o)
    )


def test_max_prompt_is_the_largest_fitting_prompt():
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(80):
        inst = random_instance(rng)
        rs, running, t = random_running(rng, inst)
        outs = np.arange(1, 8)
        bound = rs.max_prompt(outs, t)
        for o, bnd in zip(outs.tolist(), bound.tolist(), strict=True):
            assert rs.max_prompt_one(o, t) == bnd
            if bnd >= 1:
                assert fits_sized(inst, running, bnd, o, t)
                checked += 1
            assert not fits_sized(inst, running, max(bnd + 1, 1), o, t)
    assert checked > 100


def test_earliest_start_is_the_smallest_feasible_round():
    rng = np.random.default_rng(7)
    for _ in range(150):
        inst = random_instance(rng)
        rs, running, t = random_running(rng, inst)
        for j in range(inst.n):
            if j in running:
                continue
            for t0 in (t, t + 2):
                u = t0
                while not future_fits(
                    inst,
                    {i: s for i, s in running.items() if s + int(inst.output_len[i]) > u},
                    j,
                    u,
                ):
                    u += 1
                assert rs.earliest_start(j, t0) == u
                # stop_at: the search may give up at the limit, never before the answer
                assert min(rs.earliest_start(j, t0, stop_at=t0 + 1), t0 + 1) == min(u, t0 + 1)


def test_remove_and_drop_equal_a_fresh_set():
    rng = np.random.default_rng(3)
    for _ in range(100):
        inst = random_instance(rng)
        rs, running, t = random_running(rng, inst)
        if not running:
            continue
        victim = int(rng.choice(list(running)))
        rs.remove(victim)
        del running[victim]
        rs.drop_completed(t + 1)
        running = {i: s for i, s in running.items() if s + int(inst.output_len[i]) > t + 1}
        fresh = RunningSet(inst)
        for i, s in sorted(running.items(), key=lambda kv: kv[1]):
            fresh.add(i, s)
        assert rs.members() == fresh.members()
        assert rs.usage_tau.tolist() == fresh.usage_tau.tolist()
        assert rs.completion.tolist() == fresh.completion.tolist()
        for tau in range(t + 1, t + 10):
            assert rs.usage_now(tau) == brute_usage(inst, running, tau)


def test_running_set_rejects_out_of_order_starts():
    inst = Instance.create(100, [1, 1], [3, 3])
    rs = RunningSet(inst)
    rs.add(0, 5)
    with pytest.raises(ValueError):
        rs.add(1, 4)
    with pytest.raises(ValueError):
        rs.add(0, 6)


# ---------------------------------------------------------------------- the walks
def test_blocking_walk_equals_round_by_round_reference():
    rng = np.random.default_rng(2024)
    for _ in range(250):
        inst = random_instance(rng)
        prio = rng.permutation(inst.n)
        walk = priority_walk(inst, prio, blocking=True)
        assert walk.start_round.tolist() == round_by_round_walk(inst, prio, blocking=True).tolist()


def test_skipping_walk_with_full_lookahead_equals_round_by_round_reference():
    rng = np.random.default_rng(99)
    for _ in range(250):
        inst = random_instance(rng)
        prio = rng.permutation(inst.n)
        walk = priority_walk(inst, prio, blocking=False, lookahead=-1)
        assert walk.start_round.tolist() == round_by_round_walk(inst, prio, blocking=False).tolist()


def test_default_skipping_walk_follows_its_documented_rule():
    rng = np.random.default_rng(17)
    for _ in range(200):
        inst = random_instance(rng)
        prio = rng.permutation(inst.n)
        walk = priority_walk(inst, prio, blocking=False)
        assert walk.start_round.tolist() == slow_skipping_walk(inst, prio).tolist()
        assert validate(inst, walk.start_round) == []


def test_skipping_walk_on_many_output_groups_and_late_arrivals():
    # a larger instance: many output-length groups, arrivals spread out (incremental tree inserts)
    rng = np.random.default_rng(8)
    n = 60
    inst = Instance.create(
        60, rng.integers(1, 30, n), rng.integers(1, 25, n), rng.integers(0, 80, n)
    )
    prio = priority_from_keys(inst, inst.output_len)
    walk = priority_walk(inst, prio, blocking=False)
    assert walk.start_round.tolist() == slow_skipping_walk(inst, prio).tolist()
    full = priority_walk(inst, prio, blocking=False, lookahead=-1)
    assert full.start_round.tolist() == round_by_round_walk(inst, prio, blocking=False).tolist()


def test_waiting_groups_find_the_best_ranked_fitting_request():
    rng = np.random.default_rng(1)
    n = 200
    inst = Instance.create(10_000, rng.integers(1, 50, n), rng.integers(1, 6, n))
    rank = rng.permutation(n).astype(np.int64)
    waiting = _WaitingByOutput(inst, rank)
    waiting.add_many(np.arange(0, n, 2))  # half at once (bulk rebuild) ...
    for j in range(1, n, 2):  # ... the rest one by one
        waiting.add_many(np.array([j]))
    present = set(range(n))
    while present:
        groups = np.arange(waiting.out_values.size)
        bounds = rng.integers(0, 50, groups.size)
        ok = waiting.min_s >= 0
        ok &= waiting.min_s <= bounds
        expect = [
            j
            for j in present
            if inst.prompt_len[j] <= bounds[np.searchsorted(waiting.out_values, inst.output_len[j])]
        ]
        if expect:
            j = waiting.first_fitting(groups[ok], bounds[ok])
            assert j == min(expect, key=lambda i: rank[i])
        else:
            assert not ok.any()
        assert waiting.head() == min(present, key=lambda i: rank[i])
        victim = int(rng.choice(sorted(present)))
        waiting.remove(victim)
        present.discard(victim)
    assert waiting.head() is None


def test_walk_rejects_a_non_permutation_and_can_be_stopped():
    inst = Instance.create(10, [1, 1, 1], [2, 2, 2])
    with pytest.raises(ValueError):
        priority_walk(inst, np.array([0, 0, 1]))
    with pytest.raises(TimeoutError):
        priority_walk(inst, np.arange(3), should_stop=lambda: True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=tiny_instances(max_n=7, max_len=6), seed=st.integers(0, 2**16), blocking=st.booleans())
def test_walk_plans_validate_and_match_reference(inst, seed, blocking):
    prio = np.random.default_rng(seed).permutation(inst.n)
    la = 0 if blocking else -1
    walk = priority_walk(inst, prio, blocking=blocking, lookahead=la)
    assert validate(inst, walk.start_round) == []
    assert walk.start_round.tolist() == round_by_round_walk(inst, prio, blocking=blocking).tolist()
