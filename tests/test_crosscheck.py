"""``milp``, ``cpsat`` and the independent ``dp`` agree on random tiny instances; all plans validate."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler_milp.generators import random_instance
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.result import Status
from scheduler_milp.registry import METHODS, solve


def tiny_instances(count: int = 54) -> list[Instance]:
    """Seeded tiny instances cycling through backlogs, arrivals, block sizes and batch caps."""
    rng = np.random.default_rng(2024)
    variants = [
        {},
        {"arrivals": 4},
        {"block_size": 2},
        {"max_batch": 2},
        {"block_size": 3, "arrivals": 3},
        {"max_batch": 1, "arrivals": 2},
        {"block_size": 2, "max_batch": 3, "arrivals": 5},
        {"memory": 16, "prompt_range": (1, 6), "output_range": (1, 6)},
        {"memory": 40, "prompt_range": (1, 12), "output_range": (1, 10), "arrivals": 6},
    ]
    out = []
    for k in range(count):
        kw = dict(variants[k % len(variants)])
        n = int(rng.integers(2, 7))
        out.append(random_instance(n, seed=1000 + k, **kw))  # type: ignore[arg-type]
    return out


def test_the_three_exact_methods_are_registered() -> None:
    # the cross-check must never be skipped silently
    for name in ("milp", "cpsat", "dp"):
        assert name in METHODS and METHODS[name].kind == "exact"


@pytest.mark.slow
@pytest.mark.parametrize(
    "instance",
    tiny_instances(),
    ids=lambda inst: f"{inst.name}-b{inst.block_size}-c{inst.max_batch}",
)
def test_milp_cpsat_dp_agree(instance: Instance) -> None:
    results = {m: solve(instance, m) for m in ("milp", "cpsat", "dp")}
    objectives = set()
    for name, res in results.items():
        assert res.status == Status.OPTIMAL, (name, res.summary())
        assert res.plan is not None and not res.plan.violations()
        assert res.lower_bound == res.objective
        objectives.add(res.objective)
    assert len(objectives) == 1, {m: r.objective for m, r in results.items()}
    # and no baseline beats the agreed optimum
    best = objectives.pop()
    for base in ("fcfs", "sf", "mcsf", "svf"):
        assert solve(instance, base).objective >= best  # type: ignore[operator]


def test_the_sample_covers_every_feature() -> None:
    insts = tiny_instances()
    assert len(insts) >= 50
    assert sum(i.has_arrivals for i in insts) >= 10
    assert sum(i.block_size > 1 for i in insts) >= 10
    assert sum(i.max_batch is not None for i in insts) >= 10
