"""Non-anticipation: no decision depends on what the policy may not know yet.

Two runs that differ only in the true output of one request must take the same decisions in
every round before that request finishes (in either run); two runs that differ only in a request
that has not arrived yet must take the same decisions before it arrives.  The predictions are held
fixed (they are what the policy is told; the truth is what changes).  A decision is the set of
requests started and evicted in a round, by the policy or by the executor on overflow.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from scheduler_milp.model.instance import Instance
from scheduler_milp.online.executor import run_policy_log
from scheduler_milp.online.run import simulate
from tests.online.helpers import ONLINE_POLICIES, random_instance, random_predictions

PARAMS = {"replan:svf": {"window": 4, "every": 1}}


def other_output(rng: np.random.Generator, inst: Instance, i: int) -> int:
    """A different valid output length for request ``i`` (its own when it has no other)."""
    b = inst.block_size
    longest = (inst.memory_budget // b) * b - int(inst.prompt_len[i])
    choices = [x for x in range(1, longest + 1) if x != int(inst.output_len[i])]
    return int(rng.choice(choices)) if choices else int(inst.output_len[i])


def seed_of(*parts: str) -> int:
    """A seed fixed by the test's parameters (``hash`` of a string changes between processes)."""
    return zlib.crc32("|".join(parts).encode())


@pytest.mark.parametrize("eviction", ["restart", "resume"])
@pytest.mark.parametrize("policy", ONLINE_POLICIES)
def test_changing_an_unfinished_request_changes_nothing_before_it_finishes(
    policy: str, eviction: str
) -> None:
    rng = np.random.default_rng(seed_of(policy, eviction))
    compared = 0
    for _ in range(15):
        inst = random_instance(rng, n=int(rng.integers(3, 10)))
        predictions = random_predictions(rng, inst)
        base = simulate(inst, policy, predictions, eviction, params=PARAMS.get(policy))
        i = int(rng.integers(inst.n))
        out = inst.output_len.copy()
        out[i] = other_output(rng, inst, i)
        changed_inst = inst.replace(output_len=out)
        changed = simulate(changed_inst, policy, predictions, eviction, params=PARAMS.get(policy))
        before = min(int(base.completion[i]), int(changed.completion[i]))
        assert run_policy_log(base, before) == run_policy_log(changed, before)
        compared += len(run_policy_log(base, before))
    assert compared > 0


@pytest.mark.parametrize("eviction", ["restart", "resume"])
@pytest.mark.parametrize("policy", ONLINE_POLICIES)
def test_changing_a_future_arrival_changes_nothing_before_it_arrives(
    policy: str, eviction: str
) -> None:
    rng = np.random.default_rng(seed_of(policy, eviction, "arrival"))
    compared = 0
    for _ in range(15):
        inst = random_instance(rng, n=int(rng.integers(3, 10)))
        late = np.flatnonzero(inst.arrival > inst.arrival.min())
        if not late.size:
            continue
        i = int(rng.choice(late))
        predictions = random_predictions(rng, inst)
        base = simulate(inst, policy, predictions, eviction, params=PARAMS.get(policy))
        arrival = inst.arrival.copy()
        arrival[i] += int(rng.integers(1, 6))
        out = inst.output_len.copy()
        out[i] = other_output(rng, inst, i)
        changed = simulate(
            inst.replace(arrival=arrival, output_len=out),
            policy,
            predictions,
            eviction,
            params=PARAMS.get(policy),
        )
        before = int(inst.arrival[i])
        assert run_policy_log(base, before) == run_policy_log(changed, before)
        compared += len(run_policy_log(base, before))
    assert compared > 0
