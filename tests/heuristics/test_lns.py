"""The window model and the large-neighbourhood search: exact on tiny cases, valid and never worse."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from scheduler_milp.formulations.window import background_profiles, solve_window
from scheduler_milp.generators import random_instance
from scheduler_milp.heuristics.lns import improve, solve_lns
from scheduler_milp.model.plan import Plan, batch_size_per_round, memory_per_round
from scheduler_milp.model.result import SolveOptions, Status, StopReason
from scheduler_milp.registry import solve
from tests.strategies import tiny_instances


def _profile(values, horizon):
    out = np.zeros(horizon, dtype=np.int64)
    out[: min(horizon, len(values))] = values[:horizon]
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=tiny_instances(max_n=6))
def test_background_plus_free_is_the_whole_profile(inst):
    plan = solve(inst, "fcfs").plan
    free = np.arange(0, inst.n, 2)
    horizon = plan.makespan + 5
    bg_mem, bg_batch = background_profiles(inst, plan.start_round, free, horizon)
    fixed = np.setdiff1d(np.arange(inst.n), free)
    if fixed.size:
        sub = inst.subset(fixed)
        assert (
            bg_mem.tolist()
            == _profile(memory_per_round(sub, plan.start_round[fixed]), horizon).tolist()
        )
        if inst.max_batch is not None:
            assert (
                bg_batch.tolist()
                == _profile(batch_size_per_round(sub, plan.start_round[fixed]), horizon).tolist()
            )
    else:
        assert not bg_mem.any()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=tiny_instances(max_n=6))
def test_whole_instance_window_finds_the_dp_optimum(inst):
    """Freeing every request with the valid horizon (docs/model.md) makes the window the whole problem."""
    best = solve(inst, "dp", SolveOptions(time_limit=30))
    assert best.status is Status.OPTIMAL
    res = solve_lns(inst, SolveOptions(seed=3))
    assert res.objective == best.objective
    assert res.status is Status.OPTIMAL and res.lower_bound == best.objective


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_windows_are_valid_never_worse_and_optimal_among_block_placements(seed):
    inst = random_instance(
        40,
        seed=seed,
        prompt_range=(1, 12),
        output_range=(1, 10),
        memory=40,
        arrivals=6 if seed == 1 else None,
        block_size=2 if seed == 2 else 1,
        max_batch=6 if seed == 0 else None,
    )
    plan = solve(inst, "fcfs").plan
    starts = plan.start_round.copy()
    rng = np.random.default_rng(seed)
    for _ in range(6):
        free = rng.choice(inst.n, size=5, replace=False)
        lo = np.maximum(inst.arrival[free], starts[free] - 3)
        hi = starts[free] + 6
        before = Plan.checked(inst, starts).total_latency
        res = solve_window(inst, starts, free, lo, hi, deterministic_time=5.0)
        assert res.objective <= res.hint_objective
        new = starts.copy()
        new[free] = res.start_round
        checked = Plan.checked(inst, new)  # raises on any violation
        assert checked.total_latency == before - (res.hint_objective - res.objective)
        assert ((res.start_round >= lo) & (res.start_round <= hi)).all()
        if res.optimal:
            # brute force on a small sub-box: no placement of the block inside [lo, hi] beats it
            _assert_no_better_single_move(inst, new, free, lo, hi)
        starts = new


def test_window_size_is_counted_before_building(monkeypatch):
    """A window is declined on the nonzeros it would have, counted before its rows are built."""
    from scheduler_milp.formulations import window

    inst = random_instance(
        30, seed=4, prompt_range=(1, 12), output_range=(1, 10), memory=40, max_batch=5
    )
    plan = solve(inst, "fcfs").plan
    free = np.arange(0, 30, 3)
    lo = np.maximum(inst.arrival[free], plan.start_round[free] - 4)
    hi = plan.start_round[free] + 8
    built = solve_window(inst, plan.start_round, free, lo, hi, deterministic_time=0.5)
    assert not built.stats.get("refused") and built.stats["nonzeros"] > 0
    monkeypatch.setattr(window, "MAX_WINDOW_NONZEROS", built.stats["nonzeros"] - 1)
    declined = solve_window(inst, plan.start_round, free, lo, hi, deterministic_time=0.5)
    assert declined.stats["refused"] and declined.status == "TOO_LARGE"
    assert declined.stats["nonzeros"] == built.stats["nonzeros"]
    assert declined.start_round.tolist() == plan.start_round[free].tolist()


def _assert_no_better_single_move(inst, starts, free, lo, hi):
    """Moving any one free request to any other round of its domain is never valid and better."""
    from scheduler_milp.model.plan import validate

    for p, i in enumerate(free):
        for t in range(int(lo[p]), int(hi[p]) + 1):
            if t >= starts[i]:
                continue
            trial = starts.copy()
            trial[i] = t
            assert validate(inst, trial), f"request {i} could start at {t} < {starts[i]}"


def test_lns_is_deterministic_and_improves_a_poor_plan():
    inst = random_instance(60, seed=5, prompt_range=(1, 20), output_range=(1, 12), memory=60)
    start = solve(inst, "fcfs").plan
    # a small deterministic work limit per window keeps the test quick on a loaded machine
    params = {"k": 8, "max_k": 12, "window_dtime": 0.3}
    first = solve(
        inst, "lns", SolveOptions(seed=4, iteration_limit=12, warm_start=start, params=params)
    )
    again = solve(
        inst, "lns", SolveOptions(seed=4, iteration_limit=12, warm_start=start, params=dict(params))
    )
    assert first.plan.start_round.tolist() == again.plan.start_round.tolist()
    assert first.objective < start.total_latency  # fcfs with head-of-line blocking leaves slack
    traj = [obj for _, _, obj in first.stats["trajectory"]]
    assert traj[0] == start.total_latency and traj[-1] == first.objective
    assert all(b < a for a, b in zip(traj, traj[1:], strict=False))
    assert first.stop_reason in (StopReason.ITERATION_LIMIT, StopReason.COMPLETED)
    assert first.stats["iterations"] <= 12


def test_improve_respects_iteration_budget_and_returns_valid_plan():
    inst = random_instance(
        50, seed=9, prompt_range=(1, 10), output_range=(1, 10), memory=30, arrivals=10, block_size=3
    )
    start = solve(inst, "sf").plan
    out = improve(
        inst, start, seed=1, iteration_limit=5, params={"k": 6, "max_k": 8, "window_dtime": 0.3}
    )
    assert out.iterations == 5
    assert out.plan.violations() == []
    assert out.plan.total_latency <= start.total_latency
    assert out.lower_bound is None  # windows alone prove nothing for the whole instance


def test_stop_callback_ends_the_search():
    inst = random_instance(30, seed=3, memory=40)
    start = solve(inst, "fcfs").plan
    calls = []

    def stop_when() -> bool:
        calls.append(1)
        return len(calls) > 2

    out = improve(
        inst, start, seed=0, iteration_limit=100, params={"whole_max_n": 0}, stop_when=stop_when
    )
    assert out.stop_reason is StopReason.STOPPED
    assert out.iterations == 2
    assert out.plan.violations() == [] and out.plan.total_latency <= start.total_latency
