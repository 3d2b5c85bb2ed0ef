"""Plan-space repack: valid, never worse than its start, deterministic, improves a poor start."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from scheduler_milp.baselines.best import best_fast_plan
from scheduler_milp.generators import random_instance
from scheduler_milp.heuristics.profile import Profile
from scheduler_milp.heuristics.repack import _around, compact, repack, solve_repack
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.plan import Plan, validate
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve
from tests.heuristics.test_profile import brute_earliest
from tests.strategies import tiny_instances


def serial_plan(inst: Instance) -> Plan:
    """A deliberately poor start: one request after another, in reverse order."""
    starts = np.zeros(inst.n, dtype=np.int64)
    t = int(inst.arrival.max())
    for i in reversed(range(inst.n)):
        starts[i] = t
        t += int(inst.output_len[i])
    return Plan.checked(inst, starts)


@settings(max_examples=40, deadline=None)
@given(tiny_instances(max_n=7))
def test_valid_and_never_worse_than_start(inst):
    res = solve_repack(inst, SolveOptions(iteration_limit=40, seed=2))
    assert validate(inst, res.plan.start_round) == []
    assert res.objective <= res.stats["start_objective"]
    assert res.objective <= best_fast_plan(inst)[1].total_latency


@settings(max_examples=40, deadline=None)
@given(tiny_instances(max_n=7))
def test_from_a_serial_start_valid_and_not_worse(inst):
    start = serial_plan(inst)
    plan, stats = repack(inst, start, seed=1, time_limit=None, iteration_limit=30, kmin=1, kmax=4)
    assert validate(inst, plan.start_round) == []
    assert plan.total_latency <= start.total_latency
    traj = [obj for _, obj in stats["trajectory"]]
    assert traj == sorted(traj, reverse=True)
    assert traj[-1] == plan.total_latency


def test_strictly_improves_a_poor_start():
    inst = random_instance(15, seed=4, memory=24, arrivals=6, block_size=2, max_batch=3)
    start = serial_plan(inst)
    plan, stats = repack(inst, start, seed=1, time_limit=None, iteration_limit=60)
    assert validate(inst, plan.start_round) == []
    assert plan.total_latency < start.total_latency
    assert stats["trajectory"][-1][1] == plan.total_latency


def test_compaction_reaches_a_left_shift_fixpoint():
    inst = random_instance(12, seed=9, memory=30, arrivals=5)
    prof = Profile(inst, serial_plan(inst).start_round)
    before = prof.objective()
    gain = compact(prof)
    assert gain > 0 and prof.objective() == before - gain
    assert validate(inst, prof.start) == []
    for i in range(inst.n):  # no request can start earlier with the others fixed
        s = int(prof.start[i])
        assert brute_earliest(inst, prof.start.copy(), i, 0, s) == s


def test_fixed_seed_same_plan():
    inst = random_instance(20, seed=7, memory=24, arrivals=4)
    opts = SolveOptions(seed=3, iteration_limit=80, warm_start=serial_plan(inst))
    a = solve(inst, "repack", opts)
    b = solve(inst, "repack", opts)
    assert np.array_equal(a.plan.start_round, b.plan.start_round)
    assert [o for _, o in a.stats["trajectory"]] == [o for _, o in b.stats["trajectory"]]
    assert a.objective < b.stats["start_objective"]


@pytest.mark.parametrize("seed", range(4))
def test_never_below_optimum(seed):
    inst = random_instance(7, seed=200 + seed, memory=20)
    assert (
        solve(inst, "repack", SolveOptions(iteration_limit=60)).objective
        >= solve(inst, "dp").objective
    )


def test_needs_a_budget_and_valid_sizes():
    inst = random_instance(4, seed=0)
    start = serial_plan(inst)
    with pytest.raises(ValueError):
        repack(inst, start, time_limit=None, iteration_limit=None)
    with pytest.raises(ValueError):
        repack(inst, start, iteration_limit=5, kmin=3, kmax=2)


def test_time_limit_respected():
    inst = random_instance(60, seed=1, memory=64, arrivals=10)
    res = solve(inst, "repack", SolveOptions(time_limit=0.5, seed=0))
    assert validate(inst, res.plan.start_round) == []
    assert res.build_seconds + res.solve_seconds < 2.0


@pytest.mark.parametrize("reach", [None, 0, 5])
def test_threshold_accepting_returns_the_best_plan_seen(reach):
    inst = random_instance(40, seed=5, memory=40, arrivals=8)
    start = serial_plan(inst)
    plan, stats = repack(
        inst, start, seed=4, time_limit=None, iteration_limit=300, threshold=0.5, reach=reach
    )
    assert validate(inst, plan.start_round) == []
    traj = [obj for _, obj in stats["trajectory"]]
    assert plan.total_latency == min(traj) <= start.total_latency
    # a large allowance accepts worsening moves too; the plan returned is still the best one seen
    assert stats["accepted_moves"] > stats["improving_moves"]


def test_stop_callback_ends_the_search_with_a_valid_plan():
    inst = random_instance(40, seed=5, memory=40, arrivals=8)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 5

    res = solve(
        inst,
        "repack",
        SolveOptions(iteration_limit=10_000, seed=0, warm_start=serial_plan(inst), stop=stop),
    )
    assert res.stop_reason.value == "stopped"
    assert res.stats["iterations"] == 5
    assert validate(inst, res.plan.start_round) == []
    assert res.objective <= res.stats["start_objective"]


def test_progress_hears_every_new_best_plan_validated():
    """``progress`` (auto's live view of a long search): each call a valid, strictly better plan,
    the last one the plan returned; throttled calls never exceed the unthrottled ones."""
    inst = random_instance(60, seed=4, prompt_range=(5, 60), output_range=(1, 40), memory=300)
    start = serial_plan(inst)
    heard: list[Plan] = []
    plan, _ = repack(
        inst,
        start,
        seed=1,
        time_limit=None,
        iteration_limit=300,
        progress=heard.append,
        progress_seconds=0.0,
    )
    assert heard, "a serial start leaves room: the search must improve it"
    objectives = [p.total_latency for p in heard]
    assert all(a > b for a, b in zip(objectives, objectives[1:], strict=False))
    assert all(p.violations() == [] for p in heard)
    assert objectives[-1] == plan.total_latency < start.total_latency
    few: list[Plan] = []
    repack(
        inst,
        start,
        seed=1,
        time_limit=None,
        iteration_limit=300,
        progress=few.append,
        progress_seconds=3600.0,
    )
    assert few == []  # throttled: nothing is reported within the first hour


def test_round_neighbourhood_never_empty_in_an_idle_stretch():
    """Rounds 10..59 are idle here: the "round" neighbourhood falls back to the nearest requests.

    Threshold accepting can leave such a stretch in a sparse tail; an empty selection would make
    the move fail (``min()`` of an empty array).
    """
    start = np.array([0, 2, 60, 70, 200], dtype=np.int64)
    output = np.array([10, 5, 5, 5, 5], dtype=np.int64)
    assert set(_around(start, output, 5, 3).tolist()) == {0, 1}  # running within 20 rounds
    near = _around(start, output, 35, 2)  # nothing within 20 rounds of round 35
    assert near.size == 2
    assert set(near.tolist()) == {0, 2}  # run ends at 9 (26 rounds away), starts at 60 (25 away)
    assert _around(start, output, 35, 9).size == 5  # never more than there are requests


@pytest.mark.parametrize("method", ["repack", "ls"])
def test_a_plan_at_the_trivial_bound_ends_the_search(method):
    """Every request alone fits from round 0: the start plan meets the trivial bound (the sum of
    the outputs) and the search ends at once, without moves, not at its time limit."""
    from scheduler_milp import load_example
    from scheduler_milp.registry import solve

    res = solve(load_example("toy-3"), method, SolveOptions(time_limit=600))
    assert res.objective == int(res.instance.output_len.sum())
    assert res.stop_reason.value == "completed" and res.status.value == "optimal"
    moves = res.stats.get("iterations", res.stats.get("moves"))
    assert moves == 0, res.stats
