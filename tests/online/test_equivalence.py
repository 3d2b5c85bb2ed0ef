"""With exact predictions every online policy takes its offline counterpart's decisions.

The online policies only ever see a view of the arrived requests, yet with exact predictions their
estimates are the truth, nothing is refined or evicted (except by ``vllm``, whose evictions do not
depend on output lengths), and the start rounds must equal the offline method's plan.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.online.run import simulate
from scheduler_milp.registry import solve
from tests.strategies import tiny_instances

ROOT = Path(__file__).resolve().parents[2]
COUNTERPARTS = ["fcfs", "sf", "mcsf", "svf", "sorted-f", "vllm"]
SHIPPED = sorted(glob.glob(str(ROOT / "instances" / "optima" / "*.json"))) + [
    str(ROOT / "instances" / "toy" / "toy-block2.json"),
    str(ROOT / "instances" / "toy" / "toy-batch2.json"),
    str(ROOT / "instances" / "adversarial" / "adv-M64.json"),
    str(ROOT / "instances" / "traces" / "conv-arrivals-n1000-scale16-M3072.json"),
    str(ROOT / "instances" / "traces" / "mix-conv70-arxiv30-n100-M65536.json"),
]


def assert_same(inst: Instance, policy: str) -> None:
    offline = solve(inst, policy)
    assert offline.plan is not None
    for eviction in ("restart", "resume"):
        ex = simulate(inst, policy, "exact", eviction)
        last_start = np.array([segs[-1][0] for segs in ex.segments])
        assert last_start.tolist() == offline.plan.start_round.tolist(), (policy, eviction)
        if policy == "vllm":
            if eviction == "restart":
                assert ex.evictions == offline.stats["evictions"]
                assert ex.wasted_rounds == offline.stats["wasted_rounds"]
                assert ex.objective == offline.objective
        else:
            assert ex.evictions == 0 and ex.objective == offline.objective


@pytest.mark.parametrize("policy", COUNTERPARTS)
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: Path(p).stem)
def test_shipped_instances(path: str, policy: str) -> None:
    inst = load_instance(path)
    if policy == "vllm":
        # vllm's resume mode changes its plan (a resumed request needs s + k at once), so only
        # restart is an offline counterpart
        offline = solve(inst, "vllm")
        ex = simulate(inst, "vllm", "exact", "restart")
        assert [segs[-1][0] for segs in ex.segments] == offline.plan.start_round.tolist()
        assert (ex.evictions, ex.wasted_rounds) == (
            offline.stats["evictions"],
            offline.stats["wasted_rounds"],
        )
        return
    assert_same(inst, policy)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=tiny_instances(max_n=7, max_len=6))
def test_random_tiny_instances(inst: Instance) -> None:
    for policy in COUNTERPARTS[:-1]:
        assert_same(inst, policy)
    offline = solve(inst, "vllm")
    ex = simulate(inst, "vllm", "exact", "restart")
    assert [segs[-1][0] for segs in ex.segments] == offline.plan.start_round.tolist()
    assert (ex.evictions, ex.wasted_rounds) == (
        offline.stats["evictions"],
        offline.stats["wasted_rounds"],
    )


def test_hindsight_executes_its_plan() -> None:
    inst = load_instance(str(ROOT / "instances" / "optima" / "rand-arr-n10-s1.json"))
    plan = solve(inst, "cpsat").plan
    assert plan is not None
    for predictor in ("exact", "lognormal:1"):
        ex = simulate(inst, "hindsight:cpsat", predictor)
        assert [segs[0][0] for segs in ex.segments] == plan.start_round.tolist()
        assert ex.objective == plan.total_latency and ex.evictions == 0
