"""The executor's clock: arrivals in seconds admitted by a round-time model's clock.

Checked four ways: the unit model reproduces the round-based run exactly; with a physical model
every admission is the first round that begins at or after the arrival (the independent check,
which rebuilds the clock from the segments; it also rejects a tampered admission); the closed-form
begin times equal the sums of round durations; and no decision depends on an arrival that has
not happened yet on the clock.
"""

from __future__ import annotations

import numpy as np
import pytest

from scheduler_milp.model.instance import Instance
from scheduler_milp.online.check import check_admissions
from scheduler_milp.online.executor import _Clock, run_policy_log
from scheduler_milp.online.run import simulate
from scheduler_milp.timing.clock import execution_segments, timeline
from scheduler_milp.timing.metrics import execution_times
from scheduler_milp.timing.roundtime import UNIT, RoundTime, load_preset
from tests.online.helpers import ONLINE_POLICIES, random_instance, random_predictions

PARAMS = {"replan:svf": {"window": 4, "every": 1}}
#: a model whose rounds last long enough, relative to the arrivals below, to shift admissions
SLOW = RoundTime(c0=0.01, c_prefill=0.002, c_decode=0.003, c_kv=0.0005, name="slow")


def seconds_of(rng: np.random.Generator, n: int) -> np.ndarray:
    """Arrivals in seconds over a short window (some at 0, some together)."""
    secs = np.round(rng.uniform(0.0, 0.4, n), 3) * (rng.random(n) < 0.8)
    secs[rng.integers(n)] = secs[rng.integers(n)]
    return secs


@pytest.mark.parametrize("eviction", ["restart", "resume"])
@pytest.mark.parametrize("policy", ["vllm", "mcsf", "svf", "replan:svf"])
def test_the_unit_clock_reproduces_the_round_based_run(policy: str, eviction: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(12):
        inst = random_instance(rng, n=int(rng.integers(2, 9)))
        pred = random_predictions(rng, inst)
        rounds = simulate(inst, policy, pred, eviction, params=PARAMS.get(policy))
        clocked = simulate(inst, policy, pred, eviction, params=PARAMS.get(policy), clock=UNIT)
        assert clocked.segments == rounds.segments
        assert clocked.log == rounds.log
        assert clocked.instance.arrival.tolist() == inst.arrival.tolist()


@pytest.mark.parametrize("eviction", ["restart", "resume"])
@pytest.mark.parametrize("policy", ONLINE_POLICIES)
def test_admissions_on_a_physical_clock_pass_the_independent_check(
    policy: str, eviction: str
) -> None:
    rng = np.random.default_rng(11)
    late_admissions = 0
    for _ in range(10):
        inst = random_instance(rng, n=int(rng.integers(2, 9)), arrivals=False)
        secs = seconds_of(rng, inst.n)
        inst = inst.replace(meta={"arrival_s": secs.tolist()})
        ex = simulate(inst, policy, random_predictions(rng, inst), eviction,
                      params=PARAMS.get(policy), clock=SLOW)  # fmt: skip
        assert ex.check() == []  # includes check_admissions
        adm = ex.instance.arrival
        order = np.argsort(secs, kind="stable")
        assert np.all(np.diff(adm[order]) >= 0)  # a later arrival is never admitted earlier
        times = execution_times(ex.instance, ex.segments_by_id(), eviction, SLOW)
        assert np.all(times.ttft > 0) and np.allclose(times.arrival, secs)
        late_admissions += int(np.sum(adm > np.floor(secs / SLOW.c0)))
    assert late_admissions > 0  # busy rounds (longer than c0) did delay admissions


def test_a_tampered_admission_is_caught() -> None:
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(20):
        inst = random_instance(rng, n=6, arrivals=False)
        inst = inst.replace(meta={"arrival_s": seconds_of(rng, inst.n).tolist()})
        ex = simulate(inst, "fcfs", "exact", clock=SLOW)
        i = int(np.argmax(ex.instance.arrival))
        if ex.instance.arrival[i] == 0:
            continue
        moved = ex.instance.arrival.copy()
        moved[i] -= 1  # admitted one round before its arrival on the clock
        problems = check_admissions(ex.instance.replace(arrival=moved), ex.segments, "restart", SLOW)  # fmt: skip
        assert problems and "not the first round" in problems[0]
        found += 1
    assert found > 0


def test_closed_form_begin_times_equal_the_summed_durations() -> None:
    model = load_preset("vidur-llama2-7b-a100")
    clock = _Clock(model)
    clock.after(t=5, begin=1.25, duration=0.04, running=3, kv_next=1218)
    t, begin = 6, 1.25 + 0.04
    for _ in range(50):
        assert clock.begin(t) == pytest.approx(begin, rel=1e-12)
        begin += float(model.duration(0, 3, 1200 + 3 * t))
        t += 1
    assert clock.first_round_at(clock.begin(30), 1000) == 30
    assert clock.first_round_at(clock.begin(30) + 1e-9, 1000) == 31
    assert clock.first_round_at(clock.begin(30), 20) == float("inf")


def test_a_clock_whose_idle_rounds_take_no_time_is_refused() -> None:
    with pytest.raises(ValueError, match="c0 > 0"):
        _Clock(RoundTime(c0=0.0, c_decode=0.01))


@pytest.mark.parametrize("policy", ["vllm", "mcsf", "svf", "sorted-f"])
def test_a_later_arrival_changes_nothing_before_its_first_admission(policy: str) -> None:
    """Delaying the last arrivals in seconds: every decision in a round before the earliest of
    them was admitted (which began before its old arrival, so before the new one) is the same."""
    rng = np.random.default_rng(5)
    compared = 0
    for _ in range(15):
        inst = random_instance(rng, n=int(rng.integers(3, 9)), arrivals=False)
        secs = seconds_of(rng, inst.n)
        pred = random_predictions(rng, inst)
        base = simulate(inst.replace(meta={"arrival_s": secs.tolist()}), policy, pred, clock=SLOW)
        late = np.argsort(secs, kind="stable")[-2:]
        moved = secs.copy()
        moved[late] += rng.uniform(0.01, 0.5, late.size)
        other = simulate(inst.replace(meta={"arrival_s": moved.tolist()}), policy, pred, clock=SLOW)
        before = int(base.instance.arrival[late].min())
        assert run_policy_log(base, before) == run_policy_log(other, before)
        compared += len(run_policy_log(base, before))
    assert compared > 0


def test_the_run_file_carries_the_clock_and_the_admissions() -> None:
    inst = Instance.create(20, [3, 4, 2], [2, 3, 4]).replace(meta={"arrival_s": [0.0, 0.015, 0.2]})
    ex = simulate(inst, "fcfs", "exact", clock=SLOW)
    record = ex.to_run_dict()
    assert record["clock"]["name"] == "slow"
    assert record["admitted"] == dict(zip(inst.ids, ex.instance.arrival.tolist(), strict=True))
    segs = execution_segments(ex.instance, record["segments"], "restart")
    tl = timeline(ex.instance, segs, SLOW, np.array([0.0, 0.015, 0.2]))
    assert tl.begin[0] == 0.0


def test_a_hindsight_plan_runs_on_the_unit_clock_only() -> None:
    """Its plan is in arrival rounds: on a physical clock a request can be admitted after its
    planned round, so the run is refused with one line instead of stalling."""
    inst = Instance.create(20, [3, 4, 2], [2, 3, 4]).replace(meta={"arrival_s": [0.0, 0.015, 0.2]})
    with pytest.raises(ValueError, match="arrivals by rounds"):
        simulate(inst, "hindsight:svf", "exact", clock=SLOW)
    unit = simulate(inst, "hindsight:svf", "exact", clock=UNIT)
    assert unit.check() == []
