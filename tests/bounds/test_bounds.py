"""Lower bounds never exceed proven optima; the vectorised Lagrangian matches a plain evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scheduler_milp.baselines.best import best_fast_plan
from scheduler_milp.bounds.colgen import _price, lagrangian_cg
from scheduler_milp.bounds.dual import Dual
from scheduler_milp.bounds.lagrangian import best_lower_bound, lifted_lagrangian
from scheduler_milp.bounds.methods import LagrangeParams, solve_lagrange
from scheduler_milp.bounds.simple import busy_time_bound, volume_bound, volume_bound_terms
from scheduler_milp.bounds.subgradient import lagrangian
from scheduler_milp.formulations.search import solve_dp
from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.model.params import ParameterError
from scheduler_milp.model.result import SolveOptions, Status
from scheduler_milp.registry import METHODS, solve
from scheduler_milp.traces import sample_backlog
from tests.formulations.test_search import random_tiny

ROOT = Path(__file__).resolve().parents[2]


def plain_dual(instance: Instance, prices: np.ndarray, horizon: int) -> float:
    """``L(prices)`` of the time-indexed model written as loops (B=1 profile ``s + k``).

    Starts range over ``a_i .. max(horizon, a_i)``; beyond the horizon prices are 0, so later
    starts only cost more.
    """
    total = 0.0
    for i in range(instance.n):
        s, o, a = int(instance.prompt_len[i]), int(instance.output_len[i]), int(instance.arrival[i])
        best = np.inf
        for t in range(a, max(horizon, a) + 1):
            cost = t + o - a
            for k in range(1, o + 1):
                r = t + k - 1
                if r < horizon:
                    cost += prices[r] * (s + k)
            best = min(best, cost)
        total += best
    return total - instance.memory_budget * float(np.sum(prices))


def test_bounds_registered():
    assert METHODS["volume-bound"].kind == "bound"
    assert METHODS["lagrange"].kind == "bound"


def test_exact_lagrangian_matches_plain_evaluation():
    rng = np.random.default_rng(5)
    for _ in range(30):
        inst = random_tiny(rng, n_max=6, len_max=6).replace(block_size=1, max_batch=None)
        horizon = int(rng.integers(1, 25))
        prices = rng.random(horizon) * rng.choice([0.01, 0.1, 1.0])
        value = Dual(inst, horizon, 1).evaluate(prices, None)[0]
        assert value == pytest.approx(plain_dual(inst, prices, horizon), rel=1e-12, abs=1e-9)
        # grouping starts into buckets may only lower the value (it bounds the minimum from below)
        for width in (2, 3, 5):
            assert Dual(inst, horizon, width).evaluate(prices, None)[0] <= value + 1e-9


def test_busy_time_bound_by_hand():
    # one request s=1, o=2: volume 2+3=5, mean offset (2*0.5+3*1.5)/5=1.1, packed alone at its
    # peak rate 3: moment 5^2/(2*3)/5 = 5/6; bound ceil(5/6 + 2 - 1.1) = ceil(1.7333) = 2 = o
    assert busy_time_bound(Instance.create(10, [1], [2])) == 2
    # two requests that cannot overlap (peak 9 each, M=10, o=1): optimum 1 + 2 = 3; the bound
    # packs volume 9+9 at rate 10: moments 9^2/18 * (1/9-1/9) + 18^2/20 * 1/9 = 1.8, offsets
    # 2 * (1 - 0.5) = 1 -> ceil(2.8) = 3
    assert busy_time_bound(Instance.create(10, [8, 8], [1, 1])) == 3


def test_volume_bound_by_hand():
    # three identical requests s=2, o=2 (volume 3+4=7), M=8: V_(k)=7,14,21 -> ceil(/8)=1,2,3;
    # o_(k)=2,2,2 -> terms 2,2,3 -> 7
    inst = Instance.create(8, [2, 2, 2], [2, 2, 2])
    assert list(volume_bound_terms(inst)) == [2, 2, 3]
    assert volume_bound(inst) == 7
    # with max_batch=1 the k-th completion is at least 2k: 2+4+6
    assert volume_bound(inst.replace(max_batch=1)) == 12
    assert solve_dp(inst.replace(max_batch=1)).objective == 12


def test_bounds_never_exceed_the_optimum_on_random_tiny_instances():
    rng = np.random.default_rng(2024)
    tight = {"volume": 0, "busy": 0, "lagrange": 0}
    for _ in range(120):
        inst = random_tiny(rng, n_max=6, len_max=5)
        opt = solve_dp(inst)
        assert opt.status is Status.OPTIMAL
        optimum = opt.objective
        vb = volume_bound(inst)
        assert vb <= optimum, inst.to_dict()
        busy = busy_time_bound(inst)
        assert busy <= optimum, inst.to_dict()
        tight["busy"] += busy == optimum
        lag = lagrangian(inst, iterations=60, time_limit=None)
        assert lag.bound <= optimum, inst.to_dict()
        # the default runs column generation to the LP optimum: never weaker than the ascent
        sub = lagrangian(inst, iterations=60, time_limit=None, method="subgradient")
        assert sub.bound <= lag.bound <= optimum, inst.to_dict()
        # grouped rounds, a random horizon, an unconverged master: every value is still a bound
        cg = lagrangian_cg(
            inst,
            time_limit=None,
            horizon=int(rng.integers(1, 20)),
            iterations=int(rng.integers(1, 4)),
            group=int(rng.integers(1, 6)),
        )
        assert cg.bound <= optimum, inst.to_dict()
        # any horizon and any bucket width must stay a bound
        odd = lagrangian(
            inst,
            iterations=30,
            time_limit=None,
            horizon=int(rng.integers(1, 20)),
            bucket_width=int(rng.integers(1, 5)),
            window_radius=int(rng.integers(1, 4)),
            exact_every=2,
        )
        assert odd.bound <= optimum, inst.to_dict()
        tight["volume"] += vb == optimum
        tight["lagrange"] += lag.bound == optimum
    # not a correctness claim, just a sign the bounds are not trivially weak
    assert tight["lagrange"] > 20


def test_bound_methods_certify_a_gap():
    rng = np.random.default_rng(9)
    inst = Instance.create(200, rng.integers(1, 60, 40), rng.integers(1, 30, 40))
    for name in ("volume-bound", "busy-bound", "lagrange"):
        params = {"iterations": 50} if name == "lagrange" else {}
        res = solve(inst, name, SolveOptions(time_limit=20, params=params))
        assert res.plan is not None
        assert inst.trivial_lower_bound() <= res.lower_bound <= res.objective
        assert res.stats["bound_source"] in (name, "volume", "busy-time", "lagrange", "sawtooth")
    value, name = best_lower_bound(inst, time_limit=10)
    assert value >= max(volume_bound(inst), busy_time_bound(inst))
    assert name in ("sum_output", "volume", "busy-time", "lagrange", "sawtooth")


def test_bound_methods_report_the_best_fast_plan():
    """Every bound method returns the plan of :func:`best_fast_plan` (all of ``FAST_METHODS``)."""
    inst = load_instance(ROOT / "instances" / "optima" / "rand-n10-s0.json")
    name, plan = best_fast_plan(inst)
    for method in ("volume-bound", "busy-bound", "lagrange"):
        res = solve(inst, method, SolveOptions(iteration_limit=20))
        assert res.plan is not None and res.plan.starts_by_id() == plan.starts_by_id()
        assert res.stats["plan_method"] == name


def test_lagrange_reads_its_typed_params():
    inst = load_instance(ROOT / "instances" / "optima" / "rand-n10-s0.json")
    res = solve_lagrange(
        inst, SolveOptions(params={"iterations": 3, "horizon": 50, "bucket_width": 2})
    )
    assert (
        res.stats["horizon"] == 50
        and res.stats["bucket_width"] == 2
        and res.stats["iterations"] <= 3
    )
    assert LagrangeParams.parse({"iterations": "7"}) == LagrangeParams(iterations=7)
    with pytest.raises(ParameterError):
        solve_lagrange(inst, SolveOptions(params={"iters": 3}))


def recorded_optimum(data: dict) -> int | None:
    """The optimum an instance file records (``"optimum": {"value": N, ...}`` or ``"optimum": N``)."""
    value = data.get("optimum")
    if isinstance(value, dict):
        value = value.get("value")
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def optima_files() -> list[Path]:
    """Shipped instances whose optimum was proven by two methods."""
    return sorted((ROOT / "instances").glob("optima/**/*.json"))


def test_bounds_below_recorded_optima():
    """Every shipped instance with a recorded optimum (``instances/optima``) bounds it from below."""
    seen = 0
    for path in optima_files():
        optimum = recorded_optimum(json.loads(path.read_text()))
        if optimum is None:
            continue
        inst = load_instance(path)
        assert volume_bound(inst) <= optimum, path
        assert busy_time_bound(inst) <= optimum, path
        assert lagrangian(inst, iterations=60, time_limit=None).bound <= optimum, path
        assert (
            lagrangian(inst, iterations=60, time_limit=None, method="subgradient").bound <= optimum
        ), path
        assert lagrangian(inst, iterations=60, time_limit=None, method="cg").bound <= optimum, path
        for group in (2, 3):
            assert (
                lagrangian_cg(inst, time_limit=None, group=group, refine=group).bound <= optimum
            ), path
        res, lift, _ = lifted_lagrangian(inst, None, iterations=60)
        assert res.bound <= optimum and (lift is None or lift <= optimum), path
        seen += 1
    assert seen > 0


def test_pricing_matches_the_exact_dual():
    """``_price`` (column generation's pricing) returns exactly the bucket-free ``L``."""
    rng = np.random.default_rng(11)
    for _ in range(30):
        inst = random_tiny(rng, n_max=6, len_max=6).replace(block_size=1)
        horizon = int(rng.integers(1, 25))
        prices = rng.random(horizon) * rng.choice([0.01, 0.1, 1.0])
        mu = rng.random(horizon) if inst.max_batch is not None else None
        dual = Dual(inst, horizon, 1)
        value, best, req, start = _price(dual, prices, mu, 3)
        assert value == pytest.approx(dual.evaluate(prices, mu)[0], rel=1e-12, abs=1e-9)
        if mu is None:
            assert value == pytest.approx(plain_dual(inst, prices, horizon), rel=1e-12, abs=1e-9)
        assert np.all(start >= inst.arrival[req]) and np.all(start < horizon)
        assert np.all(best >= inst.arrival)


def test_column_generation_reaches_the_lp_and_beats_the_ascent():
    """On a shipped instance CG converges to the LP optimum, above 300 subgradient iterations."""
    path = ROOT / "instances" / "optima" / "rand-n10-s0.json"
    inst = load_instance(path)
    optimum = recorded_optimum(json.loads(path.read_text()))
    cg = lagrangian(inst, iterations=300, time_limit=None)
    sub = lagrangian(inst, iterations=300, time_limit=None, method="subgradient")
    assert cg.converged
    assert sub.bound <= cg.bound
    assert optimum is not None and cg.bound <= optimum
    assert cg.bound >= 116 > sub.bound
    # deterministic: the same input gives the same bound and prices
    again = lagrangian(inst, iterations=300, time_limit=None)
    assert again.bound == cg.bound and np.array_equal(again.prices, cg.prices)


def test_the_ascent_prices_a_binding_batch_cap():
    """The batch rows are scaled to the memory rows' units, so their prices leave 0.

    Unscaled, the batch rows' subgradients (requests) are tiny beside the memory rows' (tokens):
    their prices stay near 0 and the ascent ends below the volume bound on this capped backlog.
    """
    inst = sample_backlog("conv=1", 60, seed=1, memory=16384, max_batch=6)
    sub = lagrangian(inst, iterations=300, time_limit=None, method="subgradient")
    assert sub.batch_prices is not None and sub.batch_prices.max() > 1.0
    assert sub.bound > volume_bound(inst)
    assert sub.bound > 0.98 * busy_time_bound(inst)
    # a polish from these prices starts from both vectors (as after column generation)
    both = lagrangian(
        inst,
        iterations=1,
        time_limit=None,
        method="subgradient",
        initial_prices=sub.prices,
        initial_batch_prices=sub.batch_prices,
    )
    memory_only = lagrangian(
        inst, iterations=1, time_limit=None, method="subgradient", initial_prices=sub.prices
    )
    assert both.value >= sub.value - 1e-9 * abs(sub.value)
    assert memory_only.value < 0.5 * both.value


def timing_instance() -> Instance:
    """300 requests whose ascent would run far beyond the time limits of the tests below."""
    rng = np.random.default_rng(3)
    return Instance.create(2000, rng.integers(50, 400, 300), rng.integers(5, 120, 300))


def test_lagrangian_stops_at_its_deadline():
    """With no time at all nothing is evaluated (an evaluation of a long horizon takes seconds):
    the ascent takes no step and its bound is the trivial one."""
    inst = timing_instance()
    res = lagrangian(inst, iterations=100_000, time_limit=0.0, method="subgradient")
    assert res.iterations == 0 and res.history == []
    assert res.bound == inst.trivial_lower_bound()
    started = lagrangian(inst, iterations=0, time_limit=None, method="subgradient")
    assert len(started.history) == 6  # the multiples of the starting shape, then one step
    assert inst.trivial_lower_bound() <= started.bound <= solve(inst, "svf").objective
    polished = lagrangian(
        inst, iterations=100_000, time_limit=0.0
    )  # column generation, then the ascent
    assert polished.bound <= solve(inst, "svf").objective
    with pytest.raises(ValueError):
        lagrangian(inst, time_limit=1.0, method="nope")


@pytest.mark.slow
def test_lagrangian_respects_the_time_limit():
    """Wall clock, with a margin for a busy machine: at most three times the limit plus 5 s."""
    inst = timing_instance()
    res = lagrangian(inst, iterations=100_000, time_limit=2.0)
    assert res.seconds <= 2.0 * 3 + 5
    assert res.bound <= solve(inst, "svf").objective


def test_the_lifted_lagrangian_keeps_the_lifts_share_and_reports_the_lift():
    from scheduler_milp.bounds.lagrangian import LIFT_SHARE

    inst = timing_instance()
    heard: list[tuple[str, int]] = []
    # a time limit far beyond the work: the iteration limit ends the ascent, and the lift has the rest
    res, lift, own = lifted_lagrangian(
        inst,
        300.0,
        offer=lambda source, bound: heard.append((source, bound)),
        iterations=100,
        method="subgradient",
    )
    # the ascent's own limit leaves the lift its share of the time left after the fluid lift
    assert own is not None and own <= (1.0 - LIFT_SHARE) * 300.0
    assert lift is not None and res.bound - 1 <= lift <= solve(inst, "svf").objective
    # each bound is offered as soon as it is known: the lift at the fluid prices before the ascent's
    assert [source for source, _ in heard] == ["sawtooth", "lagrange", "sawtooth"]
    assert heard[1][1] == res.bound and lift == max(heard[0][1], heard[2][1])
    # block size 2: lifted too (true memory, docs/bounds.md section 4 "Blocks"), the lift's share kept back
    rng = np.random.default_rng(4)
    blocky = Instance.create(
        2000, rng.integers(50, 400, 30), rng.integers(5, 120, 30), block_size=2
    )
    res2, lift2, own2 = lifted_lagrangian(blocky, 300.0, iterations=50, method="subgradient")
    assert lift2 is not None and own2 is not None and own2 <= (1.0 - LIFT_SHARE) * 300.0
    assert max(res2.bound, lift2) <= solve(blocky, "svf").objective


@pytest.mark.slow
def test_the_lifted_lagrangian_keeps_its_time_limit():
    """Wall clock, with a margin for a busy machine: at most three times the limit plus 5 s."""
    import time

    from scheduler_milp.bounds.sawtooth import sawtooth_bound

    inst = timing_instance()
    sawtooth_bound(inst, np.ones(3))  # compile (fresh environment) or load the pass before timing
    t0 = time.perf_counter()
    lifted_lagrangian(inst, 2.0, iterations=100_000)
    assert time.perf_counter() - t0 <= 2.0 * 3 + 5
