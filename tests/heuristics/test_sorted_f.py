"""Sorted-F: valid plans, the exact min-F batch, the adversarial family, never below the optimum."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_milp.baselines.engine import RunningSet
from scheduler_milp.generators import adversarial_instance, random_instance
from scheduler_milp.heuristics.sorted_f import min_f_batch, solve_sorted_f
from scheduler_milp.model.plan import validate
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve
from tests.strategies import tiny_instances


@settings(max_examples=60, deadline=None)
@given(tiny_instances(max_n=8), st.sampled_from(["continuous", "sequential"]), st.booleans())
def test_every_plan_validates(inst, mode, fill):
    res = solve_sorted_f(inst, SolveOptions(params={"mode": mode, "fill": fill}))
    assert res.plan is not None
    assert validate(inst, res.plan.start_round) == []


@settings(max_examples=30, deadline=None)
@given(tiny_instances(max_n=8), st.integers(0, 2))
def test_large_set_rule_validates(inst, exact_max):
    # exact_max 0..2 forces the sorted-prefix walks even on tiny sets
    res = solve_sorted_f(inst, SolveOptions(params={"exact_max": exact_max, "shortlist": 3}))
    assert validate(inst, res.plan.start_round) == []


def _brute_min_f(inst, running, cand, t):
    best = np.inf
    for k in range(1, len(cand) + 1):
        for sub in itertools.combinations(cand.tolist(), k):
            trial = RunningSet(inst)
            for i, s in running.members().items():
                trial.add(i, s)
            ok = True
            for j in sub:
                if not trial.fits(j, t):
                    ok = False
                    break
                trial.add(j, t)
            if ok:
                best = min(best, sum(int(inst.output_len[j]) for j in sub) / k**2)
    return best


@pytest.mark.parametrize("seed", range(8))
def test_exact_batch_matches_brute_force(seed):
    inst = random_instance(9, seed=seed, memory=30, prompt_range=(1, 12), output_range=(1, 9))
    running = RunningSet(inst)
    cand = np.arange(inst.n, dtype=np.int64)
    batch, f, exact = min_f_batch(RunningSet(inst), cand, 0, inst.n, exact_max=12)
    assert exact
    assert f == pytest.approx(_brute_min_f(inst, running, cand, 0))
    assert f == pytest.approx(inst.output_len[batch].sum() / len(batch) ** 2)
    # the fast rule never claims a better F than the exact one, and is feasible
    batch2, f2, certified = min_f_batch(RunningSet(inst), cand, 0, inst.n, exact_max=0, shortlist=4)
    assert f2 >= f - 1e-9
    if certified:  # the certificate of the fast rule must be true
        assert f2 == pytest.approx(f)
    trial = RunningSet(inst)
    for j in batch2:
        assert trial.fits(j, 0)
        trial.add(j, 0)


def test_adversarial_ratio_grows_with_memory():
    ratios = []
    for m in (64, 256, 1024):
        inst = adversarial_instance(m)
        ours = solve(inst, "sorted-f").objective
        sf = solve(inst, "sf").objective
        ratios.append(sf / ours)
    assert ratios[1] >= 2.0
    assert ratios[0] < ratios[1] < ratios[2]


@pytest.mark.parametrize("seed", range(6))
def test_never_below_optimum(seed):
    inst = random_instance(7, seed=100 + seed, memory=20, arrivals=3 if seed % 2 else None)
    opt = solve(inst, "dp").objective
    for mode in ("continuous", "sequential"):
        assert solve_sorted_f(inst, SolveOptions(params={"mode": mode})).objective >= opt


def test_bad_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="mode"):
        solve_sorted_f(random_instance(3, seed=0), SolveOptions(params={"mode": "nonsense"}))
