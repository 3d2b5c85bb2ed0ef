"""The executor: eviction accounting by hand in both modes, the protocol it enforces, the run record."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from scheduler_milp.model.instance import Instance
from scheduler_milp.online.executor import PolicyError, execute
from scheduler_milp.online.policies import build_policy
from scheduler_milp.online.predictors import Predictions, make_predictions
from scheduler_milp.online.run import simulate
from scheduler_milp.online.view import Decision, Policy, Setting, View


def setting_of(inst: Instance, eviction: str) -> Setting:
    return Setting(inst.memory_budget, inst.block_size, inst.max_batch, eviction)


def run(inst: Instance, policy: str, predictions: Predictions, eviction: str):
    return execute(inst, build_policy(policy, setting_of(inst, eviction)), predictions, eviction)


# vLLM on two requests, M = 10: both admitted in round 0 (5 + 4 <= 10); round 1 needs 6 + 5 = 11,
# so the newest (r1, one token produced) is evicted; r0 finishes in round 4 and r1 runs after it.
VLLM_CASE = Instance.create(10, [4, 3], [4, 3])


def test_vllm_eviction_restart_by_hand() -> None:
    ex = run(VLLM_CASE, "vllm", make_predictions(VLLM_CASE, "exact"), "restart")
    assert ex.segments == [[(0, 4)], [(0, 1), (4, 7)]]
    assert (ex.evictions, ex.wasted_rounds, ex.objective) == (1, 1, 4 + 7)
    assert ex.ttft.tolist() == [1, 1]
    assert ex.log == [(0, ("r0", "r1"), ()), (1, (), ("r1",)), (4, ("r1",), ())]


def test_vllm_eviction_resume_by_hand() -> None:
    # r1 keeps its token: back in round 4 it holds 3 + 1 + 1 = 5 at once and needs 2 more rounds
    ex = run(VLLM_CASE, "vllm", make_predictions(VLLM_CASE, "exact"), "resume")
    assert ex.segments == [[(0, 4)], [(0, 1), (4, 6)]]
    assert (ex.evictions, ex.wasted_rounds, ex.objective) == (1, 0, 4 + 6)
    assert ex.memory_per_round.tolist() == [9, 6, 7, 8, 5, 6]


# mcsf under an under-prediction, M = 12 (see the comments for the arithmetic).  Round 0: r0, r1, r2
# (predicted 2 tokens each) start; round 2: r1, r2 finish, r0 outlived its estimate (raised to 4),
# r3 arrives and fits on the estimates; round 4: r0 (really 6 tokens) holds 7 and r3 holds 7, 14 > 12:
# the executor evicts the newest, r3, after 2 tokens; r0 finishes in round 6 and r3 runs after it.
MCSF_CASE = Instance.create(12, [2, 2, 2, 4], [6, 2, 2, 3], [0, 0, 0, 2])
MCSF_PREDICTIONS = Predictions.create([2, 2, 2, 3], spec="hand")


def test_mcsf_misprediction_restart_by_hand() -> None:
    ex = run(MCSF_CASE, "mcsf", MCSF_PREDICTIONS, "restart")
    assert ex.segments == [[(0, 6)], [(0, 2)], [(0, 2)], [(2, 4), (6, 9)]]
    assert (ex.evictions, ex.wasted_rounds) == (1, 2)
    assert ex.objective == 6 + 2 + 2 + (9 - 2)
    assert ex.stats["refinements"] >= 1


def test_mcsf_misprediction_resume_by_hand() -> None:
    # r3 keeps 2 tokens: back in round 6 it holds 4 + 2 + 1 = 7 and needs its last token only
    ex = run(MCSF_CASE, "mcsf", MCSF_PREDICTIONS, "resume")
    assert ex.segments == [[(0, 6)], [(0, 2)], [(0, 2)], [(2, 4), (6, 7)]]
    assert (ex.evictions, ex.wasted_rounds) == (1, 0)
    assert ex.objective == 6 + 2 + 2 + (7 - 2)
    assert ex.memory_per_round.tolist() == [9, 12, 10, 12, 7, 8, 7]


class Scripted(Policy):
    """Plays back a fixed script of decisions (round -> decision)."""

    name = "scripted"

    def __init__(self, setting: Setting, script: dict[int, Decision], victims: Sequence[int] = ()):
        super().__init__(setting)
        self.script = script
        self.chosen = list(victims)
        self.views: list[View] = []

    def victims(self, view: View) -> Sequence[int]:
        return self.chosen

    def decide(self, view: View) -> Decision:
        self.views.append(view)
        return self.script.get(view.t, Decision())


def scripted(
    inst: Instance,
    script: dict[int, Decision],
    victims: Sequence[int] = (),
    eviction: str = "restart",
):
    pol = Scripted(setting_of(inst, eviction), script, victims)
    return pol, execute(inst, pol, make_predictions(inst, "exact"), eviction)


def test_a_start_that_overflows_now_is_refused() -> None:
    with pytest.raises(PolicyError, match="needs 4 with 5 of 8 in use"):
        scripted(Instance.create(8, [4, 3], [3, 3]), {0: Decision(start=[0, 1])})


def test_protocol_errors() -> None:
    inst = Instance.create(20, [1, 1], [2, 2], [0, 5])
    with pytest.raises(PolicyError, match="cannot start 1: not waiting"):
        scripted(inst, {0: Decision(start=[1])})  # not arrived yet
    with pytest.raises(PolicyError, match="cannot evict 0: not running"):
        scripted(inst, {0: Decision(evict=[0])})
    with pytest.raises(PolicyError, match="not after the current round"):
        scripted(inst, {0: Decision(wake=0)})
    with pytest.raises(PolicyError, match="stalled"):
        scripted(inst, {0: Decision(start=[0])})  # r1 arrives in round 5 and is never started
    capped = Instance.create(20, [1, 1], [2, 2], max_batch=1)
    with pytest.raises(PolicyError, match="max_batch"):
        scripted(capped, {0: Decision(start=[0, 1])})


def test_policy_victims_then_newest() -> None:
    # three requests admitted in round 0 (M = 12: 3 + 3 + 3); round 1 needs 4 * 3 = 12, round 2
    # 5 * 3 = 15: the policy names request 0 as victim (frees 5, 10 left <= 12), nobody else goes
    inst = Instance.create(12, [2, 2, 2], [4, 4, 4])
    pol, ex = scripted(
        inst, {0: Decision(start=[0, 1, 2]), 2: Decision(), 4: Decision(start=[0])}, victims=[0]
    )
    assert ex.segments[0] == [(0, 2), (4, 8)]
    assert ex.evictions == 1 and ex.wasted_rounds == 2
    round2 = next(v for v in pol.views if v.t == 2)
    assert [(e.handle, e.produced, e.kept) for e in round2.evicted] == [(0, 2, 0)]
    # without a victim of its own the executor evicts the newest (request 2)
    _, ex = scripted(inst, {0: Decision(start=[0, 1, 2]), 4: Decision(start=[2])})
    assert ex.segments[2] == [(0, 2), (4, 8)]


def test_views_hold_no_truth() -> None:
    pol, _ = scripted(
        Instance.create(20, [1, 1], [2, 3], [0, 1]),
        {0: Decision(start=[0]), 1: Decision(start=[1])},
    )
    fields = set(View.__dataclass_fields__)
    assert fields == {"t", "usage", "arrived", "finished", "evicted", "running"}
    first = pol.views[0]
    assert [a.id for a in first.arrived] == ["r0"]  # r1 arrives in round 1: not shown before
    assert not hasattr(first.arrived[0], "output")
    assert all(not isinstance(getattr(v, f), Instance) for v in pol.views for f in fields)


def test_run_record_fields() -> None:
    ex = simulate(MCSF_CASE, "mcsf", MCSF_PREDICTIONS, "restart", seed=3)
    record = ex.to_run_dict()
    for key in (
        "instance",
        "policy",
        "predictor",
        "eviction",
        "seed",
        "objective",
        "segments",
        "completion",
        "evictions",
        "wasted_rounds",
        "ttft",
        "seconds",
        "peak_memory",
        "mean_memory",
    ):
        assert key in record
    assert record["segments"]["r3"] == [[2, 4], [6, 9]]
    assert record["completion"] == {"r0": 6, "r1": 2, "r2": 2, "r3": 9}
    assert record["seed"] == 3 and record["predictor"] == "hand"
    assert record["peak_memory"] == 12
