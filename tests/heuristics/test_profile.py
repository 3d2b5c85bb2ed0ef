"""The shared placement profile: exact earliest fit against the validator."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_milp.heuristics.profile import Profile
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.plan import memory_per_round, validate
from tests.strategies import tiny_instances


def serial_starts(inst: Instance) -> np.ndarray:
    """One request after another, in reverse order (a valid plan with holes to fill)."""
    starts = np.zeros(inst.n, dtype=np.int64)
    t = int(inst.arrival.max())
    for i in reversed(range(inst.n)):
        starts[i] = t
        t += int(inst.output_len[i])
    return starts


def brute_earliest(inst: Instance, starts: np.ndarray, i: int, lo: int, hi: int) -> int:
    """The earliest start of ``i`` in ``[lo, hi]`` that the validator accepts, others fixed."""
    for s in range(max(lo, int(inst.arrival[i])), hi + 1):
        trial = starts.copy()
        trial[i] = s
        if validate(inst, trial) == []:
            return s
    return -1


@settings(max_examples=60, deadline=None)
@given(tiny_instances(max_n=5), st.floats(0, 1), st.floats(0, 1))
def test_earliest_fit_matches_the_validator(inst, lo_at, hi_at):
    """Every window ``[lo, hi]`` of the horizon, with other requests running before ``lo`` too."""
    start = serial_starts(inst)
    prof = Profile(inst, start)
    horizon = int((start + inst.output_len).max())
    lo = int(lo_at * horizon)
    hi = lo + int(hi_at * (horizon - lo))
    for i in range(inst.n):
        prof.remove(i)
        assert prof.earliest(i, 0, horizon) == brute_earliest(
            inst, np.asarray(start), i, 0, horizon
        )
        assert prof.earliest(i, lo, hi) == brute_earliest(inst, np.asarray(start), i, lo, hi)
        prof.place(i, int(start[i]))
    assert np.array_equal(prof.usage[:horizon], memory_per_round(inst, start))


@settings(max_examples=40, deadline=None)
@given(tiny_instances(max_n=6), st.integers(0, 12), st.integers(0, 60), st.booleans())
def test_earliest_after_is_the_earliest_start_from_lo(inst, lo, shift, batched):
    """Placing requests one by one (arrivals shifted far beyond the busy rounds and the arrays too):
    the start found from ``lo`` on is exactly the first one from ``max(lo, arrival)`` that the
    validator accepts, one call at a time or all in one compiled ``place_earliest``."""
    inst = Instance.create(inst.memory_budget, inst.prompt_len, inst.output_len, inst.arrival + shift * (np.arange(inst.n) % 2),
                           block_size=inst.block_size, max_batch=inst.max_batch)  # fmt: skip
    prof = Profile(inst)
    starts = np.full(inst.n, -1, dtype=np.int64)
    for i in range(inst.n):
        placed = np.flatnonzero(starts >= 0)
        sub = inst.subset([*placed.tolist(), i])
        trial = np.append(starts[placed], 0)
        horizon = int((inst.arrival + inst.output_len).sum()) + lo
        want = brute_earliest(sub, trial, len(placed), lo, horizon)
        if not batched:
            assert prof.earliest_after(i, lo) == want
            prof.place(i, want)
        starts[i] = want
    if batched:
        prof.place_earliest(np.arange(inst.n, dtype=np.int64), lo)
        assert np.array_equal(prof.start, starts)
    assert validate(inst, starts) == []
    mem = memory_per_round(inst, starts)
    assert np.array_equal(prof.usage[: prof.size], np.pad(mem, (0, prof.size - mem.size)))


@settings(max_examples=40, deadline=None)
@given(tiny_instances(max_n=6), st.integers(0, 5), st.randoms(use_true_random=False))
def test_compact_and_set_starts(inst, window, rnd):
    """One compiled compaction pass moves each request, in the given order, to the earliest start
    the validator accepts with the others fixed (never later); ``set_starts`` undoes it exactly."""
    start = serial_starts(inst)
    prof = Profile(inst, start)
    order = np.asarray(rnd.sample(range(inst.n), inst.n), dtype=np.int64)
    want = start.copy()
    for i in order:
        s = int(want[i])
        lo = int(inst.arrival[i]) if window == 0 else s - window
        found = brute_earliest(inst, want, int(i), lo, s)
        want[i] = found if found >= 0 else s
    gain = prof.compact(order, None if window == 0 else window)
    assert np.array_equal(prof.start, want)
    assert gain == int((start - want).sum())
    assert validate(inst, prof.start) == []
    moved = np.flatnonzero(prof.start != start)
    prof.set_starts(moved, start[moved])
    assert np.array_equal(prof.start, start)
    assert np.array_equal(
        prof.usage[: memory_per_round(inst, start).size], memory_per_round(inst, start)
    )
