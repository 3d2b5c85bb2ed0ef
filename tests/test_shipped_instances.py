"""Every shipped instance loads, and every fast method schedules it with a plan the validator accepts.

The whole-trace instance (``conv-full``, 19,366 requests) is left to the benchmarks to keep the
suite fast; every other file under ``instances/`` is covered.
"""

from pathlib import Path

import pytest

from scheduler_milp.model.instance import load_instance
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import METHODS, solve

ROOT = Path(__file__).resolve().parents[1]
# instances/toy links to the toy set shipped in the package (scheduler_milp/data/toy)
SHIPPED = sorted(
    p
    for p in [*(ROOT / "instances").glob("**/*.json"), *(ROOT / "instances" / "toy").glob("*.json")]
    if "conv-full" not in p.name
)
FAST = sorted(name for name, spec in METHODS.items() if spec.kind == "baseline") + [
    "svf",
    "sorted-f",
]


def test_the_shipped_sets_are_all_there():
    folders = {p.parent.name for p in SHIPPED}
    assert {"toy", "adversarial", "traces", "optima"} <= folders
    assert len(SHIPPED) >= 35


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fast_methods_give_valid_plans_on_every_shipped_instance(path: Path):
    inst = load_instance(path)
    floor = inst.trivial_lower_bound()
    for name in FAST:
        res = solve(inst, name, SolveOptions(time_limit=30, seed=0))
        assert res.plan is not None, name
        assert res.plan.violations() == [], (name, res.plan.violations()[:3])
        assert res.objective == int(res.plan.latency.sum()) >= floor, name
