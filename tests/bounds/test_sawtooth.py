"""The sawtooth lift: its two facts hold on real plans, the compiled pass matches loops, it stays a bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scheduler_milp.bounds import lagrangian as lift_module
from scheduler_milp.bounds.lagrangian import fluid_lift, fluid_prices, sawtooth_lift
from scheduler_milp.bounds.sawtooth import (
    CUT_RHOS,
    FINE_SPAN,
    WIDE_GRID,
    _cut_costs,
    lifted_values,
    sawtooth_bound,
)
from scheduler_milp.bounds.simple import proven_bound
from scheduler_milp.bounds.subgradient import lagrangian
from scheduler_milp.formulations.search import solve_dp
from scheduler_milp.generators import random_instance
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.plan import memory_per_round
from scheduler_milp.model.result import SolveOptions, Status
from scheduler_milp.registry import solve
from scheduler_milp.traces import sample_backlog
from tests.bounds.test_bounds import plain_dual
from tests.formulations.test_search import random_tiny


def plain_cut_cost(s: int, o: int, rho: float) -> float:
    """``H(rho)``: the cheapest real segmentation of a run, written as loops (``sawtooth._cut_costs``)."""
    best = o * (o - 1) / 2
    for m in range(2, o + 1):
        mu = (o + rho * m * (m - 1) / 2) / m
        if mu - rho * (m - 1) < 0:
            break
        lengths = [mu - rho * (m - k) for k in range(1, m + 1)]
        ages = np.cumsum(lengths)
        cost = sum(x * (x - 1) / 2 for x in lengths) + rho * ((m - 1) * s + float(ages[:-1].sum()))
        best = min(best, cost)
    return best


def plain_chord(s: int, o: int, rho: float) -> float:
    """The kernel's lower bound of ``H(rho)``: chords between the values at ``CUT_RHOS``."""
    grid = [float(r) for r in CUT_RHOS]
    if rho <= grid[0]:
        return plain_cut_cost(s, o, grid[0]) * rho / grid[0]
    if rho >= grid[-1]:
        return plain_cut_cost(s, o, grid[-1])
    g = max(j for j in range(len(grid) - 1) if grid[j] <= rho)
    h0, h1 = plain_cut_cost(s, o, grid[g]), plain_cut_cost(s, o, grid[g + 1])
    return h0 + (h1 - h0) * (rho - grid[g]) / (grid[g + 1] - grid[g])


def integer_cut_cost(s: int, o: int, rho: float) -> float:
    """The true cost the relaxation bounds: integer segments ``L_j >= 1`` (every composition of ``o``)."""
    best = math.inf
    for mask in range(1 << (o - 1)):  # a cut after age a <=> bit a - 1
        ages = [a for a in range(1, o) if mask >> (a - 1) & 1]
        bounds = [0, *ages, o]
        lengths = [b - a for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        best = min(best, sum(x * (x - 1) / 2 for x in lengths) + rho * sum(s + a for a in ages))
    return best


def test_cut_cost_table_is_below_every_integer_segmentation() -> None:
    """The tabulated ``H``, its chords and the kernel's table stay below the true segment cost."""
    rng = np.random.default_rng(5)
    for _ in range(60):
        s, o = int(rng.integers(0, 40)), int(rng.integers(1, 11))
        table = np.empty((1, CUT_RHOS.size))
        _cut_costs(np.array([float(s)]), np.array([o], dtype=np.int64), CUT_RHOS, table)
        for g in range(0, CUT_RHOS.size, 6):
            rho = float(CUT_RHOS[g])
            assert abs(table[0, g] - plain_cut_cost(s, o, rho)) <= 1e-9 * max(1.0, table[0, g])
        for rho in [*rng.exponential(1.0, 4), *(10.0 ** rng.uniform(-6, 4, 4))]:
            truth = integer_cut_cost(s, o, float(rho))
            assert plain_cut_cost(s, o, float(rho)) <= truth + 1e-9
            assert (
                plain_chord(s, o, float(rho)) <= plain_cut_cost(s, o, float(rho)) + 1e-9
            )  # concave: chords below


def plain_lifted(
    instance: Instance,
    prices: np.ndarray,
    theta: float,
    batch_prices: np.ndarray | None = None,
    aged: bool = True,
) -> float:
    """``L_saw(prices, theta)`` written as loops over requests, starts and rounds (any block size).

    With a batch cap, ``batch_prices[r]`` (rounds below ``len(prices)``) is paid by every request
    running in round ``r`` and ``max_batch`` times it is given back.  ``aged=False`` leaves out the
    cuts' ages.
    """
    horizon = len(prices)
    mu = np.zeros(horizon)
    if batch_prices is not None and instance.max_batch is not None:
        mu[: min(horizon, len(batch_prices))] = batch_prices[:horizon]
    total = 0.0
    for i in range(instance.n):
        s, o, a = int(instance.prompt_len[i]), int(instance.output_len[i]), int(instance.arrival[i])
        best = math.inf
        for t in range(a, max(horizon, a) + 1):
            cost = float(t + o - a)
            low = math.inf
            for k in range(1, o + 1):
                r = t + k - 1
                price = float(prices[r]) if r < horizon else 0.0
                cost += price * int(instance.mem(i, k))  # the true, block-rounded memory
                cost += float(mu[r]) if r < horizon else 0.0
                low = min(low, price)
            if low > 0:
                m = min(max(o * math.sqrt(low / (2 * theta * (s + 1))), 1.0), float(o))
            else:
                m = 1.0
            part = low * o * (o / m - 1) / 2 + theta * (s + 1) * m
            if aged and low > 0:  # the cuts' ages (tabulated cut cost, chords between grid points)
                part = max(part, theta * (s + 1) + low * plain_chord(s, o, theta / low))
            # blocks: a segment of L rounds prices sum_(j < L) B floor(j / B) >= L (L - 1) / 2 - (B - 1) L / 2
            part = max(theta * (s + 1), part - low * (instance.block_size - 1) * o / 2)
            best = min(best, cost + part)
        total += best
    budget = instance.n * instance.memory_budget - float((instance.output_len - 1).sum())
    given_back = float(instance.max_batch or 0) * float(mu.sum())
    return total - instance.memory_budget * float(np.sum(prices)) - theta * budget - given_back


def plain_sawtooth_bound(
    instance: Instance, prices: np.ndarray, batch_prices: np.ndarray | None = None
) -> tuple[float, float]:
    """``sawtooth_bound`` written with :func:`plain_lifted`: the best ``theta`` of the wide grid
    (without the cuts' ages), then of the fine grid around it (with them)."""
    lam = np.maximum(np.asarray(prices, dtype=np.float64), 0.0)
    scale = float(lam.mean()) if lam.size and lam.any() else 1.0
    best_value, best_theta = -math.inf, 0.0
    grid = scale * WIDE_GRID
    for aged in (False, True):
        values = [
            plain_lifted(instance, prices, float(theta), batch_prices, aged=aged) for theta in grid
        ]
        k = int(np.argmax(values))
        if values[k] > best_value:
            best_value, best_theta = values[k], float(grid[k])
        grid = best_theta * np.geomspace(1.0 / FINE_SPAN, FINE_SPAN, WIDE_GRID.size)
    return best_value, best_theta


def test_the_lift_equals_a_plain_evaluation_at_the_same_prices() -> None:
    """The compiled lift, and the rounded bounds ``sawtooth_lift`` and ``fluid_lift`` report, equal
    the formula evaluated by plain loops (up to float rounding), at the Lagrangian's and the fluid
    prices: an inflated lift fails here even where no optimum is known to catch it."""
    rng = np.random.default_rng(17)
    lifted_some = 0
    for trial in range(12):
        inst = random_tiny(rng, n_max=6, len_max=6)
        if trial % 3 == 2:  # longer runs with blocks
            inst = inst.replace(
                output_len=inst.output_len * 3, block_size=int(rng.integers(2, 5)), memory_budget=80
            )
        lag = lagrangian(inst, iterations=40, time_limit=None, method="subgradient")
        horizon = lag.horizon
        for prices, batch, lift in (
            (lag.prices, lag.batch_prices, sawtooth_lift(inst, lag)),
            (fluid_prices(inst, horizon), None, fluid_lift(inst, horizon)),
        ):
            compiled = sawtooth_bound(inst, prices, batch_prices=batch)
            assert compiled is not None and lift is not None
            value, theta = plain_sawtooth_bound(inst, prices, batch)
            assert compiled[1] == pytest.approx(theta, rel=1e-9)
            assert compiled[0] == pytest.approx(value, rel=1e-9, abs=1e-9), (compiled, value)
            assert lift == proven_bound(inst, value)
            lifted_some += lift > inst.trivial_lower_bound()
    assert lifted_some >= 6  # the rounded bounds are compared above the trivial bound too


def check_facts(instance: Instance, start_round: np.ndarray) -> None:
    """The two inequalities the lift prices, checked round by round on one plan.

    With block size ``B`` memory grows in steps of ``B``: the first one counts each running
    request's true growth ``mem(age + delta) - mem(age)`` (``delta`` tokens when ``B = 1``), and the
    usage is the true, block-rounded one.
    """
    start = np.asarray(start_round, dtype=np.int64)
    last = start + instance.output_len - 1
    usage = memory_per_round(instance, start)
    ends = np.unique(last)
    for r in range(len(usage)):
        running = np.flatnonzero((start <= r) & (last >= r))
        if running.size == 0:
            continue
        delta = int(ends[np.searchsorted(ends, r)]) - r  # distance to the next last round
        age = r - start[running] + 1
        grow = int((instance.mem(running, age + delta) - instance.mem(running, age)).sum())
        assert usage[r] + grow <= instance.memory_budget, (r, usage[r], running.size, delta)
    segments = np.array(
        [np.count_nonzero((ends >= start[i]) & (ends <= last[i])) for i in range(instance.n)]
    )
    weighted = int((segments * (instance.prompt_len + 1)).sum())
    assert weighted <= instance.n * instance.memory_budget - int((instance.output_len - 1).sum())


def test_the_two_facts_hold_on_every_plan_of_random_instances() -> None:
    rng = np.random.default_rng(7)
    for seed in range(25):
        inst = random_instance(
            8,
            seed,
            prompt_range=(1, 6),
            output_range=(1, 12),
            memory=int(rng.integers(20, 40)),
            arrivals=None if seed % 2 else 6,
        )
        inst = inst.replace(
            block_size=int(rng.choice([1, 1, 2, 3, 4]))
        )  # peaks <= 20 fit every block size
        for method in ("fcfs", "svf", "sf", "mcsf", "repack"):
            plan = solve(
                inst, method, SolveOptions(time_limit=1, seed=seed, iteration_limit=200)
            ).plan
            assert plan is not None
            check_facts(inst, plan.start_round)


def test_a_segments_growth_in_whole_blocks_is_at_least_l_times_l_minus_b_over_2() -> None:
    """The blocks' bound per segment (docs/bounds.md, "Blocks"): ``sum_(j < L) B floor(j / B) >= L (L - B) / 2``."""
    for b in range(1, 7):
        for length in range(1, 3 * b + 2):
            assert sum(b * (j // b) for j in range(length)) >= length * (length - b) / 2


def test_compiled_pass_matches_plain_loops() -> None:
    rng = np.random.default_rng(11)
    for trial in range(60):
        inst = random_tiny(rng, n_max=6, len_max=6)
        if (
            trial >= 40
        ):  # long runs with large blocks: the residue tables and the growth in whole blocks
            inst = inst.replace(
                output_len=inst.output_len * 3, block_size=int(rng.integers(2, 7)), memory_budget=80
            )
        horizon = int(rng.integers(1, 25))
        prices = rng.exponential(0.3, horizon) * (rng.random(horizon) < 0.8)
        thetas = rng.exponential(0.05, 3) + 1e-6
        # batch prices of other lengths than the memory prices' (only the first H rounds count)
        batch = (
            None
            if trial % 3 == 0
            else rng.exponential(0.5, int(rng.integers(1, 30))) * (rng.random() < 0.9)
        )
        got = lifted_values(inst, prices, thetas, batch_prices=batch)
        assert got is not None
        for theta, value in zip(thetas, got, strict=True):
            assert abs(value - plain_lifted(inst, prices, float(theta), batch)) <= 1e-7 * max(
                1.0, abs(value)
            )


def test_the_lift_never_exceeds_the_optimum() -> None:
    """80 random tiny instances (arrivals, blocks of 1-3, batch caps), then 30 with blocks of 2-5."""
    rng = np.random.default_rng(2026)
    for trial in range(110):
        inst = random_tiny(rng, n_max=6, len_max=6)
        if trial >= 80:
            block = int(rng.integers(2, 6))
            peak = int((block * -(-(inst.prompt_len + 2 * inst.output_len) // block)).max())
            inst = inst.replace(
                output_len=2 * inst.output_len,
                block_size=block,
                memory_budget=peak + int(rng.integers(0, 10)),
            )
        opt = solve_dp(inst)
        assert opt.status is Status.OPTIMAL and opt.objective is not None
        lag = lagrangian(inst, iterations=40, time_limit=None, method="subgradient")
        fluid = fluid_prices(inst, int(rng.integers(1, 30)))
        random_batch = rng.exponential(1.0, int(rng.integers(1, 20)))
        for prices, batch in (
            (lag.prices, lag.batch_prices),
            (rng.exponential(0.5, int(rng.integers(1, 20))), random_batch),
            (fluid, None),
        ):
            lifted = sawtooth_bound(inst, prices, batch_prices=batch)
            assert lifted is not None
            assert lifted[0] <= opt.objective + 1e-9, inst.to_dict()
            grid = lifted_values(inst, prices, np.geomspace(1e-4, 10.0, 9), batch_prices=batch)
            assert grid is not None and (grid <= opt.objective + 1e-9).all(), inst.to_dict()


def test_with_a_binding_batch_cap_the_lift_prices_the_batch_rows_too() -> None:
    """The lift at the Lagrangian's memory and batch prices is at least the Lagrangian itself.

    Without the batch prices it falls far below when the cap binds: the memory prices alone are
    priced against a cap they do not see.
    """
    inst = sample_backlog("conv=1", 60, seed=1, memory=16384, max_batch=6)
    lag = lagrangian(inst, iterations=300, time_limit=None, method="subgradient")
    assert lag.batch_prices is not None and lag.batch_prices.max() > 0
    with_batch = sawtooth_bound(inst, lag.prices, batch_prices=lag.batch_prices)
    without = sawtooth_bound(inst, lag.prices)
    assert with_batch is not None and without is not None
    # L at the best iterate prices both; the grid's smallest theta may cost a little of it
    assert with_batch[0] >= 0.995 * lag.value, (with_batch[0], lag.value)
    assert without[0] < 0.5 * lag.value, (without[0], lag.value)


def test_with_arrivals_the_lift_at_the_lagrangian_prices_beats_the_fluid_prices() -> None:
    """The fluid prices ignore arrivals; the ascent's do not. Why its lift is tried up to n H = 1e8."""
    inst = sample_backlog("conv", 60, 0, memory=8192, arrivals="trace", peak_hour=True)
    plan = solve(inst, "svf").plan
    assert plan is not None
    lag = lagrangian(
        inst, plan.total_latency, iterations=300, time_limit=None, plan=plan, method="subgradient"
    )
    fluid = fluid_lift(inst, plan.makespan)
    ours = sawtooth_lift(inst, lag)
    assert fluid is not None and ours is not None
    assert ours > fluid and ours >= lag.bound


def test_the_lift_limit_is_read_when_the_lift_is_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    inst = sample_backlog("conv", 60, 0, memory=8192)
    lag = lagrangian(inst, iterations=5, time_limit=None, method="subgradient")
    assert sawtooth_lift(inst, lag) is not None
    monkeypatch.setattr(lift_module, "LIFT_MAX_CELLS", inst.n * lag.horizon - 1)
    assert sawtooth_lift(inst, lag) is None


def test_the_lift_raises_the_lagrangian_on_a_packed_trace_backlog() -> None:
    inst = sample_backlog("conv=1", 40, seed=0, memory=8192)
    lag = lagrangian(inst, iterations=30, time_limit=None, method="subgradient")
    plain = plain_dual(inst, lag.prices, lag.horizon)
    lifted = sawtooth_bound(inst, lag.prices)
    assert lifted is not None
    value, theta = lifted
    assert theta > 0
    # the same prices, a better bound: the lift is not a rounding matter here
    assert value > plain + 0.001 * plain, (value, plain)


def test_fluid_prices_count_the_requests_the_fluid_schedule_has_not_finished() -> None:
    inst = Instance.create(
        10, [1, 3, 2], [2, 4, 1]
    )  # volumes 5, 22, 3: fluid completions 0.3, 0.8, 3.0
    assert np.allclose(fluid_prices(inst, 5) * 10, [3, 1, 1, 0, 0])
    blocky = inst.replace(
        block_size=2
    )  # a bound with blocks too (true memory, growth in whole blocks)
    lifted = fluid_lift(blocky, 5)
    opt = solve_dp(blocky).objective
    assert lifted is not None and opt is not None and lifted <= opt


def test_a_passed_deadline_gives_no_lift() -> None:
    inst = random_instance(6, 0)
    assert sawtooth_bound(inst, np.ones(10), deadline=0.0) is None
