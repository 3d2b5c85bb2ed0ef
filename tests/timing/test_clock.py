"""The clock and the metrics against an independent, round-by-round recomputation."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler_milp.model.instance import Instance
from scheduler_milp.online.run import simulate
from scheduler_milp.registry import solve
from scheduler_milp.timing.clock import TimingError, execution_segments
from scheduler_milp.timing.metrics import describe, execution_times, plan_times
from scheduler_milp.timing.roundtime import UNIT
from tests.online.helpers import random_instance
from tests.timing.reference import random_model, slow_times

METHODS = ("fcfs", "sf", "svf", "mcsf")


def _random_plan(rng: np.random.Generator, inst: Instance) -> np.ndarray:
    """A valid plan with idle rounds: a method's plan, some requests pushed later."""
    from scheduler_milp.model.plan import validate

    base = solve(inst, str(rng.choice(METHODS))).plan
    assert base is not None
    starts = base.start_round.copy()
    for _ in range(3):
        trial = starts.copy()
        i = int(rng.integers(inst.n))
        trial[i] += int(rng.integers(1, 6))
        if not validate(inst, trial):
            starts = trial
    return starts


@pytest.mark.parametrize("seed", range(40))
def test_plan_times_match_the_round_by_round_clock(seed: int) -> None:
    rng = np.random.default_rng(seed)
    inst = random_instance(rng, n=int(rng.integers(1, 9)), arrivals=bool(seed % 2))
    starts = _random_plan(rng, inst)
    model = random_model(rng)
    # arrivals in seconds: somewhere inside their arrival round, sometimes later than the round
    arrival = (inst.arrival + rng.uniform(0, 1.5, inst.n) * (rng.random(inst.n) < 0.6)).tolist()
    got = plan_times(inst, starts, model, arrival=np.asarray(arrival))
    ref = slow_times(inst, [[(int(a), int(a + o))] for a, o in zip(starts, inst.output_len, strict=True)], model, arrival)  # fmt: skip
    np.testing.assert_allclose(got.start, ref["start"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got.first_token, ref["first_token"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got.completion, ref["completion"], rtol=1e-12, atol=1e-9)
    assert (got.start >= np.asarray(arrival) - 1e-12).all()  # nobody starts before arriving
    assert (got.ttft > 0).all()


@pytest.mark.parametrize("seed", range(25))
def test_the_unit_model_reproduces_every_round_number(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    inst = random_instance(rng, n=int(rng.integers(1, 10)), arrivals=True)
    starts = _random_plan(rng, inst)
    t = plan_times(inst, starts, UNIT)
    latency = starts + inst.output_len - inst.arrival
    np.testing.assert_array_equal(t.e2e, latency)  # exact: integer sums of 1.0
    np.testing.assert_array_equal(t.ttft, starts + 1 - inst.arrival)
    tpot = t.tpot
    multi = inst.output_len > 1
    np.testing.assert_array_equal(tpot[multi], 1.0)
    assert np.isnan(tpot[~multi]).all()
    assert t.summary()["total_e2e"] == int(latency.sum())


def test_summary_statistics_and_slo_against_numpy() -> None:
    rng = np.random.default_rng(7)
    inst = random_instance(rng, n=30, arrivals=True)
    starts = _random_plan(rng, inst)
    model = random_model(rng)
    t = plan_times(inst, starts, model, round_seconds=0.5)
    s = t.summary(ttft_target=float(np.median(t.ttft)), tpot_target=float(np.nanmedian(t.tpot)))
    e2e = t.completion - t.arrival
    assert s["e2e"]["mean"] == pytest.approx(e2e.mean())
    assert s["e2e"]["p90"] == pytest.approx(np.percentile(e2e, 90))
    assert s["e2e"]["max"] == pytest.approx(e2e.max())
    expected = np.mean(
        [
            (t.first_token[i] - t.arrival[i] <= s["slo"]["ttft_target"] + 1e-12)
            and (
                inst.output_len[i] == 1
                or (t.completion[i] - t.first_token[i]) / (inst.output_len[i] - 1)
                <= s["slo"]["tpot_target"] + 1e-12
            )
            for i in range(inst.n)
        ]
    )
    assert s["slo"]["attainment"] == pytest.approx(expected)
    assert s["throughput_tokens_per_s"] == pytest.approx(inst.output_len.sum() / (t.completion.max() - t.arrival.min()))  # fmt: skip
    assert describe(np.array([np.nan]))["mean"] is None


@pytest.mark.parametrize("eviction", ["restart", "resume"])
@pytest.mark.parametrize("seed", range(12))
def test_execution_times_match_the_round_by_round_clock(eviction: str, seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    inst = random_instance(rng, n=8, arrivals=True)
    ex = simulate(inst, "vllm", "lognormal:0.8", eviction=eviction, seed=seed)
    model = random_model(rng)
    got = execution_times(inst, ex.segments_by_id(), eviction, model, round_seconds=1.0)
    arrival = (inst.arrival * 1.0).tolist()
    ref = slow_times(inst, ex.segments, model, arrival, resume=eviction == "resume")
    np.testing.assert_allclose(got.first_token, ref["first_token"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got.completion, ref["completion"], rtol=1e-12, atol=1e-9)
    unit = execution_times(inst, ex.segments_by_id(), eviction)
    np.testing.assert_array_equal(unit.ttft, ex.ttft)  # the executor's TTFT in rounds
    np.testing.assert_array_equal(unit.e2e, ex.latency)


def test_bad_segments_are_one_line_errors() -> None:
    inst = Instance.create(10, [2, 3], [2, 2])
    with pytest.raises(TimingError, match="'r1' has no segments"):
        execution_segments(inst, {"r0": [[0, 2]]})
    with pytest.raises(TimingError, match="empty segment"):
        execution_segments(inst, {"r0": [[0, 2]], "r1": [[3, 3]]})
    with pytest.raises(TimingError, match="eviction"):
        execution_segments(inst, {"r0": [[0, 2]], "r1": [[0, 2]]}, "swap")


def test_the_per_request_csv(tmp_path) -> None:
    import csv

    rng = np.random.default_rng(11)
    inst = random_instance(rng, n=12, arrivals=True)
    starts = _random_plan(rng, inst)
    t = plan_times(inst, starts, random_model(rng), round_seconds=0.2)
    path = tmp_path / "per-request.csv"
    t.write_csv(path, extra={"replica": [0] * inst.n})
    rows = list(csv.DictReader(path.open()))
    assert [r["id"] for r in rows] == list(inst.ids)
    for i, r in enumerate(rows):
        assert float(r["e2e_s"]) == pytest.approx(t.completion[i] - t.arrival[i])
        assert float(r["ttft_s"]) == pytest.approx(t.first_token[i] - t.arrival[i])
        assert (r["tpot_s"] == "") == (inst.output_len[i] == 1)
        assert int(r["output"]) == inst.output_len[i] and r["replica"] == "0"
