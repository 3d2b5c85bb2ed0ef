"""LP-guided heuristics: valid plans, a proven LP bound, lp-swap never worse, a clear refusal."""

from __future__ import annotations

import pytest

from scheduler_milp.generators import random_instance
from scheduler_milp.model.plan import validate
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import solve


@pytest.mark.parametrize("seed", range(4))
def test_valid_with_bound_and_swap_not_worse(seed):
    inst = random_instance(
        8,
        seed=300 + seed,
        memory=20,
        arrivals=4 if seed % 2 else None,
        max_batch=3 if seed == 2 else None,
    )
    lp = solve(inst, "sorted-lp")
    sw = solve(inst, "lp-swap", SolveOptions(iteration_limit=200))
    opt = solve(inst, "dp").objective
    for res in (lp, sw):
        assert validate(inst, res.plan.start_round) == []
        assert res.lower_bound <= opt <= res.objective
    assert sw.objective <= lp.objective


def test_too_large_is_a_one_line_value_error():
    inst = random_instance(
        400, seed=1, memory=4000, prompt_range=(500, 1500), output_range=(200, 900)
    )
    with pytest.raises(ValueError) as err:
        solve(inst, "sorted-lp")
    assert "\n" not in str(err.value)
    assert "too large" in str(err.value)
