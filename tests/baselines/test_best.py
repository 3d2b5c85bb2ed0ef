"""best_fast_plan: the warm start is the best of the fast methods, and the heuristics are registered."""

from __future__ import annotations

import pytest

from scheduler_milp.baselines.best import FAST_METHODS, best_fast_plan
from scheduler_milp.generators import random_instance
from scheduler_milp.registry import METHODS, solve


@pytest.mark.parametrize("seed", range(3))
def test_best_fast_plan_is_the_minimum(seed):
    inst = random_instance(20, seed=seed, memory=30, arrivals=5)
    name, plan = best_fast_plan(inst)
    objs = {m: solve(inst, m).objective for m in FAST_METHODS}
    assert plan.total_latency == min(objs.values())
    assert objs[name] == plan.total_latency


def test_registered():
    for name in ("sorted-f", "svf", "ls", "sorted-lp", "lp-swap", "rh"):
        assert name in METHODS
