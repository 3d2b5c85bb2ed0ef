"""The shipped optimum instances: small ones re-solved by ``milp`` and ``cpsat``; no method beats an optimum.

Every file in ``instances/optima/`` records ``"optimum": {"value": V, "proven_by": [...]}``
(``benchmarks/make_optima.py``).  Heuristics must return valid plans with objective ``>= V`` and
every method's lower bound must be ``<= V``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.model.result import SolveOptions, Status
from scheduler_milp.registry import METHODS, solve

OPTIMA = Path(__file__).resolve().parents[1] / "instances" / "optima"
FILES = sorted(OPTIMA.glob("*.json"))
SMALL_N = 8  # re-solved exactly in the test suite (the larger ones by make_optima.py only)


def _load(path: Path) -> tuple[Instance, int]:
    data = json.loads(path.read_text())
    return load_instance(path), int(data["optimum"]["value"])


def test_optima_are_shipped_with_two_proofs() -> None:
    assert len(FILES) >= 10
    for path in FILES:
        data = json.loads(path.read_text())
        assert set(data["optimum"]["proven_by"]) >= {"milp", "cpsat"}, path.name
    # the set covers the random class, its variants and trace-shaped instances
    names = " ".join(p.stem for p in FILES)
    for part in ("rand-n", "rand-arr", "rand-b2", "rand-cap", "conv-s64"):
        assert part in names


@pytest.mark.parametrize(
    "path", [p for p in FILES if _load(p)[0].n <= SMALL_N], ids=lambda p: p.stem
)
def test_small_optima_are_reproved(path: Path) -> None:
    inst, value = _load(path)
    for method in ("milp", "cpsat", "dp"):
        res = solve(inst, method, SolveOptions(time_limit=60))
        assert res.status == Status.OPTIMAL and res.objective == value, (method, res.summary())


NON_EXACT = [m for m, spec in METHODS.items() if spec.kind != "exact"]
#: methods that search until their time runs out and then return their best plan
ANYTIME = {"ls", "repack", "rh", "lns", "auto"}


@pytest.mark.slow
@pytest.mark.parametrize("method", NON_EXACT)
def test_no_method_beats_a_recorded_optimum(method: str) -> None:
    # the other methods run to their end (an LP cut short by a time limit gives no plan at all);
    # their time limit is only a guard against a hung run
    options = SolveOptions(time_limit=0.5 if method in ANYTIME else 120, seed=0)
    for path in FILES:
        inst, value = _load(path)
        if METHODS[method].max_n is not None and inst.n > METHODS[method].max_n:
            continue
        res = solve(inst, method, options)
        if res.plan is not None:
            assert not res.plan.violations()
            assert res.plan.total_latency >= value, (method, path.name)
        if res.lower_bound is not None:
            assert res.lower_bound <= value, (method, path.name)
