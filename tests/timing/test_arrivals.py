"""Arrivals in seconds: the mapping to rounds, what the instance file keeps, and where they are read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.timing.clock import (
    TimingError,
    arrival_seconds,
    recorded_round_seconds,
    with_arrival_seconds,
)
from scheduler_milp.timing.metrics import plan_times
from scheduler_milp.timing.roundtime import UNIT, RoundTime

MODEL = RoundTime(0.01, 1e-4, 1e-5, 1e-7, name="t")


def test_seconds_to_rounds_and_back_through_a_file(tmp_path: Path) -> None:
    inst = Instance.create(100, [3, 4, 5], [2, 2, 2])
    secs = [0.0, 0.049, 0.12]
    timed = with_arrival_seconds(inst, secs, round_seconds=0.05)
    assert timed.arrival.tolist() == [0, 0, 2]  # floor(x / 0.05)
    timed.save(tmp_path / "i.json")
    back = load_instance(tmp_path / "i.json")
    np.testing.assert_allclose(arrival_seconds(back, MODEL), secs)
    assert recorded_round_seconds(back) == 0.05
    assert arrival_seconds(back, UNIT).tolist() == [0, 0, 2]  # the unit model counts rounds
    sub = back.subset([2, 0])  # by id: a subset keeps the right seconds
    np.testing.assert_allclose(arrival_seconds(sub, MODEL), [0.12, 0.0])


def test_where_arrival_seconds_come_from() -> None:
    inst = Instance.create(100, [3, 4], [2, 2], arrival=[0, 4])
    with pytest.raises(TimingError, match="round-seconds"):
        arrival_seconds(inst, MODEL)
    np.testing.assert_allclose(arrival_seconds(inst, MODEL, round_seconds=0.5), [0.0, 2.0])
    listed = inst.replace(meta={"arrival_s": [0.25, 1.5]})
    np.testing.assert_allclose(arrival_seconds(listed, MODEL), [0.25, 1.5])
    short = inst.replace(meta={"arrival_s": [0.25]})
    with pytest.raises(TimingError, match="1 entries for 2 requests"):
        arrival_seconds(short, MODEL)
    backlog = Instance.create(100, [3, 4], [2, 2])
    assert arrival_seconds(backlog, MODEL).tolist() == [0.0, 0.0]


def test_a_round_waits_for_its_arrival_in_seconds() -> None:
    # request 1 arrives at 2.5 s but its plan starts it in round 1: round 1 begins at 2.5 s
    inst = with_arrival_seconds(Instance.create(100, [3, 4], [2, 2]), [0.0, 2.5], round_seconds=10)
    t = plan_times(inst, [0, 1], RoundTime(0.5, 0.0, 0.0, 0.0, name="half"))
    assert t.start.tolist() == [0.0, 2.5]
    assert t.completion.tolist() == [3.0, 3.5]  # round 1 is pushed, round 2 follows it
