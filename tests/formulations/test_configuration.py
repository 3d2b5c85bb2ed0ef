"""The per-round configuration LP lies between the time-indexed LP and the optimum (``dp``)."""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pytest

from scheduler_milp.formulations.configuration import (
    ConfigurationLp,
    best_configuration,
    configuration_lp,
)
from scheduler_milp.formulations.lp import lp_relaxation
from scheduler_milp.generators import random_instance
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.result import Status
from scheduler_milp.registry import solve

#: (arrivals, block size, batch cap) cycled over the tiny instances
SHAPES: list[tuple[int | None, int, int | None]] = [
    (None, 1, None),
    (3, 1, None),
    (None, 2, None),
    (None, 1, 2),
    (4, 2, None),
    (None, 2, 3),
    (3, 1, 2),
]

COUNT = 32


@cache
def tiny(k: int) -> tuple[Instance, int]:
    """The ``k``-th tiny instance (n = 3..7, lengths 1..6, tight budget) and its optimum."""
    rng = np.random.default_rng(1000 + k)
    arrivals, block, cap = SHAPES[k % len(SHAPES)]
    n = int(rng.integers(3, 8))
    inst = random_instance(
        n,
        1000 + k,
        prompt_range=(1, 6),
        output_range=(1, 6),
        memory=int(rng.integers(12, 19)),  # the largest peak is at most 12: 1-3 requests fit
        arrivals=arrivals,
        block_size=block,
        max_batch=cap,
    )
    res = solve(inst, "dp")
    assert res.status == Status.OPTIMAL and res.objective is not None
    return inst, res.objective


def upper_bound(k: int) -> int | None:
    """Every third instance uses the optimum as upper bound: narrower windows, and the fast plan
    may lie outside them (the master then starts from its artificials)."""
    return tiny(k)[1] if k % 3 == 2 else None


@cache
def config(k: int) -> ConfigurationLp:
    """The configuration LP of the ``k``-th tiny instance."""
    return configuration_lp(tiny(k)[0], upper_bound=upper_bound(k))


@pytest.mark.parametrize("k", range(COUNT))
def test_configuration_lp_lies_between_the_time_indexed_lp_and_the_optimum(k: int) -> None:
    inst, opt = tiny(k)
    res = config(k)
    lp, _ = lp_relaxation(inst, upper_bound=upper_bound(k))
    assert res.converged
    assert res.lp_value is not None and res.lp_value == pytest.approx(lp, abs=1e-6)
    assert lp - 1e-6 <= res.value <= opt + 1e-6
    assert res.bound <= res.value + 1e-6
    assert res.value <= res.master + 1e-6


def test_configuration_lp_is_stronger_than_the_time_indexed_lp_somewhere() -> None:
    stronger = 0
    for k in range(COUNT):
        res = config(k)
        assert res.lp_value is not None
        stronger += res.value > res.lp_value + 1e-3
    assert stronger >= COUNT // 4


def test_an_early_stop_still_gives_a_lower_bound() -> None:
    inst = random_instance(7, 3)
    opt = solve(inst, "dp").objective
    assert opt is not None
    res = configuration_lp(inst, max_iterations=2)
    assert not res.converged and res.iterations == 2
    assert res.value == res.bound <= opt + 1e-6
    assert res.value >= res.lp_value - 1e-6  # the LP's duals are where the bound starts
    full = configuration_lp(inst)
    assert full.converged and res.value <= full.value + 1e-6


def test_the_pricing_dp_is_the_best_set_by_brute_force() -> None:
    rng = np.random.default_rng(7)
    for trial in range(200):
        m = int(rng.integers(1, 9))
        groups = rng.integers(0, 5, size=m)
        weights = rng.integers(1, 10, size=m)
        profits = rng.normal(size=m)
        capacity = int(rng.integers(1, 20))
        cap = None if trial % 2 else int(rng.integers(1, 4))
        best = 0.0
        for r in range(m + 1):
            for chosen in itertools.combinations(range(m), r):
                c = list(chosen)
                if len(set(groups[c].tolist())) < r or weights[c].sum() > capacity:
                    continue
                if cap is not None and r > cap:
                    continue
                best = max(best, float(profits[c].sum()))
        value, items = best_configuration(groups, weights, profits, capacity, cap)
        assert value == pytest.approx(best, abs=1e-9)
        assert float(profits[items].sum()) == pytest.approx(value, abs=1e-9)
        assert weights[items].sum() <= capacity
        assert len(set(groups[items].tolist())) == len(items)
        assert cap is None or len(items) <= cap


def test_the_master_starts_from_its_artificials_when_the_plan_is_outside_the_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scheduler_milp.formulations import configuration

    monkeypatch.setattr(configuration, "check_plan_fits", lambda model, plan: False)
    for k in (4, 10, 26):
        res = configuration_lp(tiny(k)[0], upper_bound=upper_bound(k))
        assert res.converged
        assert res.value == pytest.approx(config(k).value, abs=1e-6)
