"""Time limits of the fast methods and of the best fast plan, checked without the clock's speed:
a deadline that has already passed must stop the work at its first check."""

from __future__ import annotations

import time

import pytest

from scheduler_milp.baselines.best import FAST_METHODS, best_fast_plan, best_first
from scheduler_milp.generators import random_instance
from scheduler_milp.model.deadline import Deadline
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve


def passed() -> Deadline:
    """A deadline one second ago."""
    return Deadline(time.perf_counter() - 1.0)


@pytest.mark.parametrize("method", ["fcfs", "fcfs-skip", "sf", "size", "mcsf", "svf", "vllm"])
def test_a_walk_past_its_deadline_ends_with_one_line_and_no_plan(method):
    inst = random_instance(30, seed=1, memory=40, arrivals=5)
    with pytest.raises(RuntimeError, match="time limit reached before every request"):
        solve(inst, method, SolveOptions(deadline=passed()))
    assert solve(inst, method, SolveOptions(time_limit=600)).plan is not None


def test_the_best_fast_plan_past_its_deadline_is_the_first_method_s_alone(monkeypatch):
    inst = random_instance(40, seed=2, memory=40, arrivals=5)
    ran = []
    import scheduler_milp.registry as registry

    real = registry.solve

    def counting(instance, method, options=None):
        ran.append(method)
        return real(instance, method, options)

    monkeypatch.setattr(registry, "solve", counting)
    name, plan = best_fast_plan(inst, deadline=passed())
    assert ran == ["svf"] and name == "svf"  # the first in best-first order, run to its end
    assert plan.total_latency == real(inst, "svf").objective


@pytest.mark.parametrize("seed", range(4))
def test_a_deadline_that_does_not_bind_changes_nothing(seed):
    inst = random_instance(25, seed=seed, memory=30, arrivals=4)
    name, plan = best_fast_plan(inst)
    name2, plan2 = best_fast_plan(inst, deadline=Deadline.after(600))
    assert name == name2 and (plan.start_round == plan2.start_round).all()
    assert sorted(best_first(FAST_METHODS)) == sorted(FAST_METHODS)
