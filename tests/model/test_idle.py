"""Idle stretches between far-apart arrivals are compressed away without changing any optimum."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from scheduler_milp.model.idle import compress_idle
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.result import SolveOptions
from scheduler_milp.registry import METHODS, solve


def clustered(seed: int) -> Instance:
    """Two or three bursts of requests with gaps between them, some wide enough to cut."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 8))
    burst = rng.integers(0, 3, n)
    arrival = burst * int(rng.integers(3, 40)) + rng.integers(0, 3, n)
    return Instance.create(14, rng.integers(1, 6, n), rng.integers(1, 5, n), arrival)


@pytest.mark.parametrize("seed", range(40))
def test_the_compressed_instance_has_the_same_optimum(seed):
    instance = clustered(seed)
    compression = compress_idle(instance, min_rounds=1)
    if compression is None:
        pytest.skip("no gap wide enough to cut")
    original = solve(instance, "dp", SolveOptions(time_limit=60))
    compressed = solve(compression.instance, "dp", SolveOptions(time_limit=60))
    assert original.status.value == compressed.status.value == "optimal"
    assert original.objective == compressed.objective
    back = compression.expand(compressed.plan.start_round)
    assert instance.arrival.tolist() == (compression.instance.arrival + compression.shift).tolist()
    from scheduler_milp.model.plan import Plan

    assert Plan.checked(instance, back).total_latency == compressed.objective


def test_the_cut_needs_every_earlier_request_done():
    """A gap shorter than the work of the requests before it is kept."""
    instance = Instance.create(10, [5, 5, 5], [4, 4, 4], [0, 0, 7])  # 8 rounds of work, gap 7
    assert compress_idle(instance, min_rounds=0) is None
    wide = Instance.create(10, [5, 5, 5], [4, 4, 4], [0, 0, 9])
    assert compress_idle(wide, min_rounds=0).instance.arrival.tolist() == [0, 0, 8]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_an_arrival_of_a_trillion_costs_no_memory_per_round(method):
    """Every method answers at once on two requests 10^12 rounds apart, without big allocations."""
    instance = Instance.create(100, [5, 5], [3, 4], [0, 10**12])
    tracemalloc.start()
    try:
        res = solve(instance, method, SolveOptions(time_limit=3, threads=1, iteration_limit=20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.objective == 7 and res.stats["idle_rounds_removed"] > 10**11
    assert peak < 200 * 2**20, f"{method} allocated {peak / 2**20:.0f} MiB"
