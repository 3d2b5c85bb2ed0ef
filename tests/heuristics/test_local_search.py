"""Local search: valid, never worse than its start, deterministic for a seed and iteration budget."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from scheduler_milp.baselines.best import best_fast_plan
from scheduler_milp.generators import random_instance
from scheduler_milp.heuristics.local_search import local_search, solve_ls
from scheduler_milp.model.plan import Plan, validate
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve
from tests.strategies import tiny_instances


@settings(max_examples=25, deadline=None)
@given(tiny_instances(max_n=7))
def test_valid_and_never_worse_than_start(inst):
    res = solve_ls(inst, SolveOptions(iteration_limit=30))
    assert validate(inst, res.plan.start_round) == []
    assert res.objective <= res.stats["start_objective"]
    assert res.objective <= best_fast_plan(inst)[1].total_latency


def test_never_worse_than_a_bad_start():
    inst = random_instance(15, seed=4, memory=24, arrivals=6)
    # a deliberately poor start: everything one after another, in reverse order
    starts = np.zeros(inst.n, dtype=np.int64)
    t = int(inst.arrival.max())
    for i in reversed(range(inst.n)):
        starts[i] = t
        t += int(inst.output_len[i])
    start = Plan.checked(inst, starts)
    plan, stats = local_search(inst, start, seed=1, time_limit=None, iteration_limit=60)
    assert plan.total_latency <= start.total_latency
    traj = [obj for _, obj in stats["trajectory"]]
    assert traj == sorted(traj, reverse=True)  # improvements only
    assert traj[-1] == plan.total_latency


def test_fixed_seed_same_plan():
    inst = random_instance(14, seed=7, memory=24)
    opts = SolveOptions(seed=3, iteration_limit=40)
    a = solve(inst, "ls", opts)
    b = solve(inst, "ls", opts)
    assert np.array_equal(a.plan.start_round, b.plan.start_round)
    assert a.stats["trajectory"][-1][1] == b.stats["trajectory"][-1][1]


@pytest.mark.parametrize("seed", range(4))
def test_never_below_optimum(seed):
    inst = random_instance(7, seed=200 + seed, memory=20)
    assert (
        solve(inst, "ls", SolveOptions(iteration_limit=40)).objective >= solve(inst, "dp").objective
    )


def test_needs_a_budget():
    inst = random_instance(4, seed=0)
    with pytest.raises(ValueError):
        local_search(inst, best_fast_plan(inst)[1], time_limit=None, iteration_limit=None)
