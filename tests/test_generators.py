"""Synthetic generators: the adversarial family's shape, random instances' determinism and meta."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from scheduler_milp.generators import adversarial_instance, random_instance
from scheduler_milp.model.instance import InstanceError, load_instance

INSTANCES = Path(__file__).resolve().parent.parent / "instances"


@pytest.mark.parametrize("memory", [3, 4, 16, 17, 64, 100])
def test_adversarial_shape(memory):
    inst = adversarial_instance(memory)
    k = math.isqrt(memory)
    assert k * k <= memory < (k + 1) ** 2
    assert inst.n == k + memory
    assert inst.memory_budget == memory
    # big ones first, each exactly filling memory at its peak
    assert inst.prompt_len[:k].tolist() == [memory - 1] * k
    assert inst.output_len[:k].tolist() == [1] * k
    assert inst.peak_memory[:k].tolist() == [memory] * k
    assert inst.prompt_len[k:].tolist() == [1] * memory
    assert inst.output_len[k:].tolist() == [2] * memory
    assert not inst.has_arrivals
    assert inst.meta["meta"]["generator"] == "adversarial"
    assert inst.meta["meta"]["params"] == {"memory": memory, "k": k}


def test_adversarial_rejects_tiny_memory():
    with pytest.raises(ValueError, match=">= 3"):
        adversarial_instance(2)


@pytest.mark.parametrize("memory", [16, 64, 256, 1024])
def test_shipped_adversarial_files_match_generator(memory):
    shipped = load_instance(INSTANCES / "adversarial" / f"adv-M{memory}.json")
    assert shipped.to_dict() == adversarial_instance(memory).to_dict()


def test_random_same_seed_same_instance():
    a = random_instance(30, seed=7, arrivals=10, block_size=2, max_batch=4)
    b = random_instance(30, seed=7, arrivals=10, block_size=2, max_batch=4)
    assert a.to_dict() == b.to_dict()
    c = random_instance(30, seed=8, arrivals=10, block_size=2, max_batch=4)
    assert a.to_dict()["requests"] != c.to_dict()["requests"]


def test_random_ranges_arrivals_and_meta():
    inst = random_instance(
        400,
        seed=1,
        prompt_range=(3, 5),
        output_range=(2, 9),
        memory=40,
        arrivals=6,
        block_size=2,
        max_batch=3,
    )
    assert inst.prompt_len.min() == 3 and inst.prompt_len.max() == 5
    assert inst.output_len.min() == 2 and inst.output_len.max() == 9
    assert inst.arrival.min() == 0 and inst.arrival.max() == 6
    assert (inst.memory_budget, inst.block_size, inst.max_batch) == (40, 2, 3)
    meta = inst.meta["meta"]
    assert meta["generator"] == "random" and meta["seed"] == 1
    assert meta["params"] == {
        "n": 400,
        "prompt_range": [3, 5],
        "output_range": [2, 9],
        "memory": 40,
        "arrivals": 6,
        "block_size": 2,
        "max_batch": 3,
    }


def test_random_backlog_by_default():
    inst = random_instance(50, seed=0)
    assert not inst.has_arrivals
    assert np.all(inst.peak_memory <= 24)


def test_random_bad_parameters():
    with pytest.raises(ValueError, match="prompt_range"):
        random_instance(5, 0, prompt_range=(0, 3))
    with pytest.raises(ValueError, match="output_range"):
        random_instance(5, 0, output_range=(4, 3))
    with pytest.raises(ValueError, match="n must be positive"):
        random_instance(0, 0)
    with pytest.raises(InstanceError, match="does not fit"):
        random_instance(5, 0, prompt_range=(20, 20), output_range=(8, 8), memory=24)
