"""``lp`` and :func:`lp_relaxation`: a valid bound, the mean starts, the size refusal."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler_milp.formulations.lp import lp_relaxation
from scheduler_milp.generators import random_instance
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve


def test_lp_bound_is_below_the_optimum_and_above_sum_output() -> None:
    for seed in range(6):
        inst = random_instance(6, seed, arrivals=2 if seed % 2 else None, block_size=1 + seed % 2)
        opt = solve(inst, "dp").objective
        assert opt is not None
        value, mean = lp_relaxation(inst)
        assert inst.trivial_lower_bound() - 1e-6 <= value <= opt + 1e-6
        assert mean.shape == (inst.n,)
        assert (mean >= inst.arrival - 1e-9).all()
        res = solve(inst, "lp")
        assert res.lower_bound is not None and res.lower_bound <= opt
        assert res.plan is not None and not res.plan.violations()


def test_lp_relaxation_is_not_trivial_on_a_loaded_instance() -> None:
    inst = random_instance(10, 1)
    value, _ = lp_relaxation(inst)
    assert value > inst.trivial_lower_bound() + 1


def test_lp_refuses_huge_models() -> None:
    inst = random_instance(40, 0)
    with pytest.raises(ValueError, match="too large"):
        lp_relaxation(inst, max_nonzeros=1000)
    with pytest.raises(ValueError, match="too large"):
        solve(inst, "lp", SolveOptions(params={"max_nonzeros": 1000}))


def test_lp_relaxation_accepts_an_explicit_upper_bound() -> None:
    inst = random_instance(5, 3)
    ub = solve(inst, "sf").objective
    assert ub is not None
    value, mean = lp_relaxation(inst, upper_bound=ub, time_limit=30)
    assert np.isfinite(value) and np.isfinite(mean).all()


def test_partial_integer_bound_lies_between_the_lp_and_the_optimum_and_meets_it_all_integral() -> (
    None
):
    from scheduler_milp.formulations.lp import partial_integer_bound
    from scheduler_milp.formulations.timeindexed import build

    for seed in range(4):
        inst = random_instance(7, seed, arrivals=2 if seed % 2 else None)
        opt = solve(inst, "dp").objective
        assert opt is not None
        model = build(inst, opt)
        lp, lp_proven = partial_integer_bound(model, np.zeros(0, dtype=np.int64))
        half, _ = partial_integer_bound(model, np.argsort(-inst.prompt_len)[: inst.n // 2])
        full, full_proven = partial_integer_bound(model, np.arange(inst.n))
        assert lp_proven and full_proven
        assert abs(lp - lp_relaxation(inst, upper_bound=opt)[0]) < 1e-6
        assert lp - 1e-6 <= half <= full + 1e-6
        # all requests integral: the model itself, whose optimum is the independent DP's
        assert round(full) == opt
