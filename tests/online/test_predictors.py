"""Predictors: each one's defining property, seeding, the meta round trip, bad specs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.online.predictors import (
    PredictionError,
    Predictions,
    from_meta,
    make_predictions,
    parse_spec,
    with_predictions,
)


@pytest.fixture(scope="module")
def inst() -> Instance:
    rng = np.random.default_rng(3)
    o = rng.integers(1, 400, 500)
    return Instance.create(4096, rng.integers(1, 200, 500), o)


def test_exact(inst: Instance) -> None:
    p = make_predictions(inst, "exact")
    assert np.array_equal(p.point, inst.output_len)
    assert np.array_equal(p.lo, inst.output_len) and np.array_equal(p.hi, inst.output_len)


def test_lognormal_is_seeded_and_noisy(inst: Instance) -> None:
    a = make_predictions(inst, "lognormal:0.5", seed=1)
    b = make_predictions(inst, "lognormal:0.5", seed=1)
    c = make_predictions(inst, "lognormal:0.5", seed=2)
    assert np.array_equal(a.point, b.point) and not np.array_equal(a.point, c.point)
    assert a.point.min() >= 1
    log_error = np.log(a.point / inst.output_len)
    assert 0.4 < log_error.std() < 0.6  # sigma 0.5, up to rounding
    assert (a.lo <= a.point).all() and (a.point <= a.hi).all()
    assert make_predictions(inst, "lognormal:0").errors(inst)["mean_relative_error"] < 0.01


def test_interval_contains_the_truth_with_its_width(inst: Instance) -> None:
    p = make_predictions(inst, "interval:0.5", seed=4)
    o = inst.output_len
    assert ((p.lo <= o) & (o <= p.hi)).all()
    long = o >= 20  # rounding dominates the width of very short requests
    width = (p.hi - p.lo)[long] / o[long]
    assert np.all(np.abs(width - 0.5) < 0.1)
    assert ((p.lo <= p.point) & (p.point <= p.hi)).all()


def test_bins_predict_bucket_mean_and_range(inst: Instance) -> None:
    p = make_predictions(inst, "bins:8")
    o = inst.output_len
    assert len(np.unique(p.point)) <= 8
    assert ((p.lo <= o) & (o <= p.hi)).all()  # a perfect classifier covers the truth
    for value in np.unique(p.point):
        members = o[p.point == value]
        assert abs(members.mean() - value) <= 0.5 + 1e-9
    noisy = make_predictions(inst, "bins:8:0.3", seed=5)
    missed = ~((noisy.lo <= o) & (o <= noisy.hi))
    assert 0.15 < missed.mean() < 0.45


def test_constant_and_adversarial(inst: Instance) -> None:
    o = inst.output_len
    c = make_predictions(inst, "constant")
    assert len(set(c.point.tolist())) == 1 and c.point[0] == round(float(o.mean()))
    assert c.lo[0] == o.min() and c.hi[0] == o.max()
    a = make_predictions(inst, "adversarial:4")
    long = o >= np.percentile(o, 75)
    assert np.array_equal(a.point[~long], o[~long])
    assert np.array_equal(a.point[long], np.maximum(1, np.rint(o[long] / 4)).astype(np.int64))


def test_meta_round_trip(inst: Instance, tmp_path) -> None:
    p = make_predictions(inst, "interval:2", seed=7)
    path = tmp_path / "with.json"
    with_predictions(inst, p).save(path)
    back = make_predictions(load_instance(path), "file")
    assert (
        np.array_equal(back.point, p.point)
        and np.array_equal(back.lo, p.lo)
        and np.array_equal(back.hi, p.hi)
    )
    assert back.spec == "interval:2" and back.seed == 7


def test_per_request_predictions_and_id_keyed_objects(tmp_path) -> None:
    doc = {
        "memory": 100,
        "requests": [
            {"id": "a", "prompt": 5, "output": 10, "predicted_output": 12},
            {"id": "b", "prompt": 5, "output": 4, "predicted_output": 3, "output_range": [2, 6]},
        ],
    }
    path = tmp_path / "req.json"
    path.write_text(json.dumps(doc))
    inst = load_instance(path)  # the reader keeps the prediction fields in meta, by request id
    assert inst.meta["predicted_output"] == {"a": 12, "b": 3}
    assert inst.meta["output_range"] == {"b": [2, 6]}
    with pytest.raises(PredictionError, match="no entry for request 'a'"):
        from_meta(inst)
    keyed = Instance.create(
        100, [5, 5], [10, 4], ids=["a", "b"], meta={"output_range": {"a": [8, 12], "b": [2, 6]}}
    )
    p = from_meta(keyed)
    assert p is not None and p.point.tolist() == [10, 4] and p.lo.tolist() == [8, 2]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("nope", "unknown predictor"),
        ("lognormal", "needs a parameter"),
        ("lognormal:x", "not a number"),
        ("exact:1", "takes no parameter"),
        ("bins:2.5", "integer K"),
        ("bins:4:2", "misclassified share"),
        ("adversarial:0.5", "at least 1"),
        ("interval:-1", ">= 0"),
    ],
)
def test_bad_specs_are_one_line(spec: str, fragment: str) -> None:
    with pytest.raises(PredictionError, match=fragment) as err:
        parse_spec(spec)
    assert "\n" not in str(err.value)


def test_bad_predictions_are_refused() -> None:
    with pytest.raises(PredictionError):
        Predictions.create([1, 0])
    with pytest.raises(PredictionError):
        Predictions.create([3, 3], [1, 4], [2, 3])
    inst = Instance.create(50, [1, 1], [2, 2], meta={"predicted_output": [1]})
    with pytest.raises(PredictionError, match="1 entries for 2 requests"):
        from_meta(inst)
    inst = Instance.create(50, [1, 1], [2, 2], meta={"predicted_output": [1, True]})
    with pytest.raises(PredictionError, match="must be an integer"):
        from_meta(inst)
