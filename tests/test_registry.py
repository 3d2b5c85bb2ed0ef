"""Every registered method runs and returns what it claims; the CLI lists them all."""

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from scheduler_milp.generators import random_instance
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.result import SolveOptions, Status
from scheduler_milp.registry import METHODS, solve
from tests.strategies import tiny_instances

ROOT = Path(__file__).resolve().parents[1]
FAST_KINDS = {"baseline", "heuristic"}


def check_result(inst: Instance, name: str, res) -> None:
    assert res.method == name
    assert res.plan is not None, f"{name} returned no plan"
    assert res.plan.violations() == []
    assert res.objective == int(res.plan.latency.sum())
    assert res.objective >= inst.trivial_lower_bound()
    assert res.lower_bound is not None and res.lower_bound <= res.objective
    if res.status is Status.OPTIMAL:
        assert res.lower_bound == res.objective


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_registered_method_runs(name):
    inst = random_instance(7, seed=3, arrivals=4, block_size=2, max_batch=3)
    res = solve(inst, name, SolveOptions(time_limit=20, seed=1, iteration_limit=200))
    check_result(inst, name, res)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_on_the_formats_example(name):
    inst = Instance.create(24, [5, 2, 9], [3, 7, 1], [0, 2, 0], ["r0", "r1", "r2"], name="toy-3")
    res = solve(inst, name, SolveOptions(time_limit=20, seed=1, iteration_limit=200))
    check_result(inst, name, res)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=tiny_instances())
def test_fast_methods_valid_and_deterministic(inst):
    for name, spec in METHODS.items():
        if spec.kind not in FAST_KINDS:
            continue
        opts = SolveOptions(time_limit=5, seed=7, iteration_limit=50)
        first = solve(inst, name, opts)
        check_result(inst, name, first)
        again = solve(inst, name, SolveOptions(time_limit=5, seed=7, iteration_limit=50))
        assert first.plan.start_round.tolist() == again.plan.start_round.tolist(), name


def test_cli_lists_every_method():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "solve.py"), "--list-methods"],
        capture_output=True,
        text=True,
        check=True,
    )
    for name in METHODS:
        assert name in out.stdout


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_names_its_parameters_and_rejects_unknown_ones(name):
    """A misspelt ``--param`` is an error naming the valid keys, never silently ignored."""
    from scheduler_milp.model.params import ParameterError

    spec = METHODS[name]
    keys = spec.params_class().names()
    with pytest.raises(ParameterError, match="unknown parameter 'no_such_knob'") as err:
        spec.parse_params({"no_such_knob": 1})
    for key in keys:
        assert key in str(err.value)
    defaults = spec.parse_params({})
    assert spec.parse_params({key: getattr(defaults, key) for key in keys}) == defaults


def test_registry_solve_declines_beyond_the_size_limit_with_model_too_large():
    from scheduler_milp.model.result import ModelTooLarge

    instance = Instance.create(100, [1] * 13, [1] * 13)
    with pytest.raises(ModelTooLarge, match="dp declines 13 requests"):
        solve(instance, "dp")
    # the method's own max_n parameter moves the limit
    res = solve(instance, "dp", SolveOptions(params={"max_n": 13}, time_limit=30))
    assert res.plan is not None


def test_parameters_are_typed():
    from scheduler_milp.model.params import ParameterError

    spec = METHODS["repack"]
    params = spec.parse_params(
        {"kmin": "3", "insertion": "false", "start": "sf,svf", "threshold": "0.5"}
    )
    assert (params.kmin, params.insertion, params.start, params.threshold) == (
        3,
        False,
        ("sf", "svf"),
        0.5,
    )
    for bad in ({"kmin": "3.5"}, {"kmin": True}, {"insertion": "maybe"}, {"threshold": "nan"}):
        with pytest.raises(ParameterError, match="is not a valid"):
            spec.parse_params(bad)
