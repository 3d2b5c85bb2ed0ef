"""Round-time models: presets with their sources, coefficient lists, files, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scheduler_milp.model.instance import load_instance
from scheduler_milp.timing.fit import fit_presets
from scheduler_milp.timing.roundtime import (
    COEFFICIENTS,
    UNIT,
    RoundTime,
    RoundTimeError,
    load_preset,
    parse_round_time,
    preset_names,
)

ROOT = Path(__file__).resolve().parents[2]


def test_unit_is_the_default() -> None:
    assert parse_round_time(None) is UNIT
    assert parse_round_time("unit").is_unit
    assert UNIT.duration(100, 50, 10_000) == 1.0
    assert not parse_round_time("c0=1,c_kv=1e-9").is_unit


def test_at_least_two_presets_with_their_sources_and_fit() -> None:
    names = preset_names()
    assert len(names) >= 2
    for name in names:
        model = load_preset(name)
        assert model.name == name
        assert model.c0 > 0 and model.c_prefill > 0 and model.c_kv > 0
        assert model.info["sources"] and model.info["licence"]
        assert model.info["fit"]["r2"] > 0.95
        assert parse_round_time(name) == model


def test_coefficient_lists_and_files(tmp_path: Path) -> None:
    m = parse_round_time("c0=0.02, c_kv=3e-7")
    assert (m.c0, m.c_prefill, m.c_decode, m.c_kv) == (0.02, 0.0, 0.0, 3e-7)
    js = tmp_path / "gpu.json"
    js.write_text(json.dumps({"name": "mine", "c0": 0.01, "c_decode": 2e-5}))
    assert parse_round_time(str(js)) == RoundTime(0.01, 0.0, 2e-5, 0.0, name="mine")
    toml = tmp_path / "gpu.toml"
    toml.write_text("c0 = 0.01\nc_prefill = 1e-4\n[fit]\nr2 = 0.9\n")
    assert parse_round_time(str(toml)).c_prefill == 1e-4


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("c0=-1", "non-negative"),
        ("c0=x", "must be a number"),
        ("c1=2", "unknown coefficient"),
        ("c0=0,c_prefill=1", "would take 0 s"),
        ("h100-fast", "not a preset"),
        ("c0=nan", "finite"),
    ],
)
def test_bad_specifications(spec: str, message: str) -> None:
    with pytest.raises(RoundTimeError, match=message):
        parse_round_time(spec)


def test_a_typo_in_a_file_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"c0": 0.01, "c_kvv": 1e-7}))
    with pytest.raises(RoundTimeError, match="c_kvv"):
        parse_round_time(str(bad))


def test_the_shipped_presets_are_the_fit_of_the_shipped_tables() -> None:
    inst = load_instance(ROOT / "instances/traces/mix-conv70-arxiv30-n1000-M65536.json")
    for name, fit in fit_presets(inst).items():
        shipped = load_preset(name)
        for key in COEFFICIENTS:
            assert getattr(shipped, key) == pytest.approx(
                fit.coefficients[key], rel=1e-6, abs=1e-15
            )
        assert shipped.info["fit"]["r2"] == pytest.approx(fit.r2, abs=1e-4)
        assert np.isfinite(fit.total_error) and abs(fit.total_error) < 0.01
