"""Synthetic instance generators: the adversarial family (docs/methods.md) and random backlogs.

Every generated instance records in ``meta`` the generator's name and all its parameters (and the
seed), so that the file alone says how to make it again.
"""

from __future__ import annotations

import math

import numpy as np

from .model.instance import Instance


def adversarial_instance(memory_budget: int, name: str | None = None) -> Instance:
    """The family on which FCFS and SF are ``~sqrt(M)`` times worse than optimal (docs/methods.md).

    ``k = floor(sqrt(M))`` big requests (prompt ``M-1``, output 1; peak ``M``, so each fits alone)
    come first in the list, then ``M`` small requests (prompt 1, output 2).  Ids are ``big{j}`` and
    ``small{j}`` so that plans are easy to read.
    """
    if memory_budget < 3:
        # a small request peaks at 1 + 2 = 3 tokens
        raise ValueError(f"adversarial_instance needs memory_budget >= 3 (got {memory_budget})")
    k = math.isqrt(memory_budget)
    prompt_len = [memory_budget - 1] * k + [1] * memory_budget
    output_len = [1] * k + [2] * memory_budget
    ids = [f"big{j}" for j in range(k)] + [f"small{j}" for j in range(memory_budget)]
    meta = {"meta": {"generator": "adversarial", "params": {"memory": memory_budget, "k": k}}}
    return Instance.create(
        memory_budget,
        prompt_len,
        output_len,
        ids=ids,
        name=name or f"adv-M{memory_budget}",
        meta=meta,
    )


def random_instance(
    n: int,
    seed: int,
    prompt_range: tuple[int, int] = (1, 8),
    output_range: tuple[int, int] = (1, 8),
    memory: int = 24,
    arrivals: int | None = None,
    block_size: int = 1,
    max_batch: int | None = None,
    name: str | None = None,
) -> Instance:
    """A seeded random backlog: lengths uniform on the closed ranges, optional uniform arrivals.

    ``arrivals=None`` gives a backlog (every arrival 0); an integer ``A`` draws each arrival
    uniformly from ``0..A``.  The same arguments always give the same instance (numpy
    ``default_rng(seed)``).  Raises ``ValueError`` on bad ranges and
    :class:`~scheduler_milp.model.instance.InstanceError` when a request cannot fit in ``memory`` alone.
    """
    if n < 1:
        raise ValueError(f"n must be positive (got {n})")
    for label, (low, high) in (("prompt_range", prompt_range), ("output_range", output_range)):
        if not 1 <= low <= high:
            raise ValueError(f"{label} must satisfy 1 <= low <= high (got {(low, high)})")
    if arrivals is not None and arrivals < 0:
        raise ValueError(f"arrivals (the largest arrival round) must be >= 0 (got {arrivals})")
    rng = np.random.default_rng(seed)
    # integers(low, high + 1): numpy's upper bound is exclusive, the ranges here are closed
    prompt_len = rng.integers(prompt_range[0], prompt_range[1] + 1, size=n)
    output_len = rng.integers(output_range[0], output_range[1] + 1, size=n)
    arrival = (
        np.zeros(n, dtype=np.int64) if arrivals is None else rng.integers(0, arrivals + 1, size=n)
    )
    params = {
        "n": n,
        "prompt_range": list(prompt_range),
        "output_range": list(output_range),
        "memory": memory,
        "arrivals": arrivals,
        "block_size": block_size,
        "max_batch": max_batch,
    }
    return Instance.create(
        memory,
        prompt_len,
        output_len,
        arrival,
        name=name or f"random-n{n}-s{seed}",
        block_size=block_size,
        max_batch=max_batch,
        meta={"meta": {"generator": "random", "params": params, "seed": seed}},
    )
