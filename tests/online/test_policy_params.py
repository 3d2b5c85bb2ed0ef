"""The policy registry's parameter classes, as the runner checks a grid before any run."""

from __future__ import annotations

import pytest

from scheduler_milp.model.params import MethodParams, ParameterError
from scheduler_milp.online.policies import (
    POLICIES,
    ReplanParams,
    build_policy,
    is_clairvoyant,
    policy_params,
)
from scheduler_milp.online.view import Setting


def test_every_registered_policy_has_its_parameter_class() -> None:
    setting = Setting(64, 1, None, "restart", 0)
    for name, spec in POLICIES.items():
        assert policy_params(name) is spec.params
        build_policy(name, setting, {})  # the defaults of the class build the policy
    assert policy_params("replan:svf") is ReplanParams
    assert policy_params("hindsight:mcsf") is MethodParams
    assert is_clairvoyant("hindsight:mcsf") and not is_clairvoyant("replan:svf")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("nope", "unknown policy 'nope'"),
        ("replan:", "name the offline method"),
        ("replan:nope", "replan: unknown method 'nope'"),
        ("hindsight:nope", "hindsight: unknown method 'nope'"),
    ],
)
def test_unknown_policies_are_one_line_errors(name: str, text: str) -> None:
    with pytest.raises(ParameterError) as info:
        policy_params(name)
    assert text in str(info.value) and "\n" not in str(info.value)
