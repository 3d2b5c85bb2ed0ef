"""Time limits of the Lagrangian bounds, checked without the clock's speed: an evaluation under way
at a deadline that has passed is dropped (it would be no bound), the lift is left out when its
kernels are not compiled in time, and the cut-cost table is built in chunks."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from scheduler_milp.bounds.colgen import lagrangian_cg
from scheduler_milp.bounds.dual import Dual, price_shape
from scheduler_milp.formulations.timeindexed import OutOfTime
from scheduler_milp.generators import random_instance
from scheduler_milp.heuristics.warmup import Warmup
from scheduler_milp.model.deadline import Deadline
from scheduler_milp.model.result import SolveOptions, StopReason
from scheduler_milp.registry import solve


def passed() -> Deadline:
    """A deadline one second ago."""
    return Deadline(time.perf_counter() - 1.0)


def test_an_evaluation_past_its_deadline_is_dropped():
    inst = random_instance(20, seed=1, memory=30, arrivals=3)
    plan = solve(inst, "svf").plan
    dual = Dual(inst, plan.makespan, 1)
    prices = price_shape(inst, plan, plan.makespan)
    with pytest.raises(OutOfTime):
        dual.evaluate(prices, None, deadline=passed().at)
    assert dual.evaluate(prices, None, deadline=math.inf)[0] == dual.evaluate(prices, None)[0]


def test_column_generation_with_no_time_prices_nothing():
    inst = random_instance(20, seed=2, memory=30, arrivals=3)
    res = lagrangian_cg(inst, time_limit=0.0)
    assert res.iterations == 0 and res.history == []
    assert res.bound == inst.trivial_lower_bound()


def test_lagrange_past_its_deadline_answers_the_first_fast_plan_and_the_cheap_bounds():
    inst = random_instance(30, seed=3, memory=30, arrivals=3)
    res = solve(inst, "lagrange", SolveOptions(deadline=passed()))
    assert res.stop_reason is StopReason.TIME_LIMIT
    assert res.stats["iterations"] == 0 and res.stats["sawtooth_bound"] is None
    assert res.stats["bound_source"] in ("busy-time", "volume")
    assert res.objective == solve(inst, "svf").objective


def test_the_lift_is_left_out_when_its_kernels_are_not_compiled_in_time(monkeypatch):
    import scheduler_milp.bounds.lagrangian as lagrangian

    release = threading.Event()
    monkeypatch.setattr(lagrangian, "LIFT_WARMUP", Warmup("never", release.wait))
    inst = random_instance(15, seed=4, memory=30)
    plan = solve(inst, "svf").plan
    try:
        res, lift, _ = lagrangian.lifted_lagrangian(inst, 0.3, ub=plan.total_latency, plan=plan)
    finally:
        release.set()
    assert lift is None and res.bound <= plan.total_latency


def test_the_cut_cost_table_is_built_in_chunks_up_to_the_deadline():
    from scheduler_milp.bounds.lagrangian import LIFT_WARMUP
    from scheduler_milp.bounds.sawtooth import _Tables

    assert LIFT_WARMUP.ready(Deadline())
    inst = random_instance(40, seed=5, memory=30)
    prices = np.full(60, 0.01)
    cut_short = _Tables(inst, prices)
    assert cut_short.cuts(passed().at, chunk=7) is None
    assert cut_short.values(np.array([1e-3]), passed().at) is None
    finished = cut_short.cuts(chunk=7)
    assert finished is not None
    whole = _Tables(inst, prices).cuts()
    assert whole is not None and np.array_equal(finished, whole)
