"""Receding horizon: valid plans, exact on a single window, never below the optimum, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_milp.generators import random_instance
from scheduler_milp.heuristics.profile import Profile
from scheduler_milp.model.plan import validate
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve
from tests.strategies import tiny_instances


@settings(max_examples=15, deadline=None)
@given(tiny_instances(max_n=7), st.integers(1, 4))
def test_every_plan_validates(inst, window):
    res = solve(inst, "rh", SolveOptions(params={"window": window, "order": "svf"}))
    assert validate(inst, res.plan.start_round) == []


@settings(max_examples=40, deadline=None)
@given(tiny_instances(max_n=7))
def test_earliest_fit_places_validly(inst):
    profile = Profile(inst)
    starts = np.zeros(inst.n, dtype=np.int64)
    for i in range(inst.n):
        starts[i] = profile.earliest_after(i, int(inst.arrival[i]))
        profile.place(i, int(starts[i]))
    assert validate(inst, starts) == []


@pytest.mark.parametrize("seed", range(4))
def test_window_covering_everything_is_optimal(seed):
    inst = random_instance(6, seed=400 + seed, memory=18)
    res = solve(inst, "rh", SolveOptions(params={"window": 6, "window_dtime": 50.0}))
    assert res.objective == solve(inst, "dp").objective


def test_reproducible():
    inst = random_instance(10, seed=9, memory=22, arrivals=5)
    opts = SolveOptions(seed=1, params={"window_dtime": 0.2, "order": "svf"})
    a = solve(inst, "rh", opts)
    b = solve(inst, "rh", opts)
    assert np.array_equal(a.plan.start_round, b.plan.start_round)
