"""Shared pieces of the online tests: random tiny instances with predictions, policy lists."""

from __future__ import annotations

import numpy as np

from scheduler_milp.model.instance import Instance
from scheduler_milp.online.predictors import Predictions

#: every non-clairvoyant policy, with the parameters that keep the replan runs tiny
ONLINE_POLICIES = [
    "vllm",
    "fcfs",
    "sf",
    "mcsf",
    "svf",
    "sorted-f",
    "sorted-f-robust",
    "amax",
    "amin",
    "replan:svf",
]


def random_instance(
    rng: np.random.Generator, n: int = 8, max_len: int = 8, arrivals: bool = True
) -> Instance:
    """A valid random instance with tight memory (so that mispredictions cause evictions)."""
    block = int(rng.choice([1, 1, 2]))
    prompt = rng.integers(1, max_len + 1, n)
    output = rng.integers(1, max_len + 1, n)
    arrival = rng.integers(0, 6, n) if arrivals else np.zeros(n, dtype=np.int64)
    peak = int(max(block * -(-(s + o) // block) for s, o in zip(prompt, output, strict=True)))
    memory = peak + int(rng.integers(0, 2 * max_len))
    cap = None if rng.random() < 0.7 else int(rng.integers(2, 4))
    return Instance.create(memory, prompt, output, arrival, block_size=block, max_batch=cap)


def random_predictions(rng: np.random.Generator, inst: Instance) -> Predictions:
    """Point predictions off by up to a factor 3 either way, ranges around them."""
    factor = np.exp(rng.normal(0.0, 0.8, inst.n))
    point = np.maximum(1, np.rint(inst.output_len * factor)).astype(np.int64)
    lo = np.maximum(1, point // 2)
    hi = point * 2
    return Predictions.create(point, lo, hi, "test")
