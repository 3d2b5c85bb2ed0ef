"""The independent exact search ``dp`` (best-first A*) against brute force over all start vectors, and the baselines."""

from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest

from scheduler_milp.formulations.search import (
    BOUNDS,
    SearchParams,
    _data,
    _dominated,
    _energy_bound,
    _holdings,
    _keep,
    _kept,
    dp_search,
    solve_dp,
)
from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.model.params import ParameterError
from scheduler_milp.model.plan import validate
from scheduler_milp.model.result import ModelTooLarge, SolveOptions, Status, StopReason
from scheduler_milp.registry import METHODS, solve

BASELINES = ("fcfs", "fcfs-skip", "sf", "size", "mcsf", "svf", "vllm")


def random_tiny(rng: np.random.Generator, n_max: int, len_max: int) -> Instance:
    """A random tiny instance with arrivals, block sizes and batch caps drawn at random."""
    n = int(rng.integers(1, n_max + 1))
    prompt = rng.integers(1, len_max + 1, n)
    output = rng.integers(1, len_max + 1, n)
    arrival = rng.integers(0, 4, n) if rng.random() < 0.5 else np.zeros(n, dtype=np.int64)
    block = int(rng.choice([1, 1, 2, 3]))
    max_batch = None if rng.random() < 0.6 else int(rng.integers(1, 4))
    peak = max(block * -(-(int(s) + int(o)) // block) for s, o in zip(prompt, output, strict=True))
    memory = peak + int(rng.integers(0, 2 * len_max + 1))
    return Instance.create(memory, prompt, output, arrival, block_size=block, max_batch=max_batch)


def brute_force(instance: Instance) -> int:
    """Minimum total latency over every start vector with ``a_i <= S_i <= UB - sum o + a_i``.

    ``UB`` is the serial plan (one request at a time in arrival order), feasible because every
    request fits alone; the per-request horizon is that of docs/model.md.  Feasibility is the one validator.
    """
    o = [int(x) for x in instance.output_len]
    a = [int(x) for x in instance.arrival]
    t, ub = 0, 0
    for i in sorted(range(instance.n), key=lambda i: a[i]):
        t = max(t, a[i])
        ub += t + o[i] - a[i]
        t += o[i]
    slack = ub - sum(o)
    ranges = [range(a[i], a[i] + slack + 1) for i in range(instance.n)]
    best = ub
    for starts in itertools.product(*ranges):
        obj = sum(starts[i] + o[i] - a[i] for i in range(instance.n))
        if obj < best and not validate(instance, np.array(starts)):
            best = obj
    return best


def test_dp_registered():
    spec = METHODS["dp"]
    assert spec.kind == "exact"


@pytest.mark.parametrize(("bound", "dominance"), list(itertools.product(BOUNDS, (True, False))))
def test_dp_equals_brute_force_on_tiny_instances(bound, dominance):
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 60:
        inst = random_tiny(rng, n_max=4, len_max=3)
        # keep the enumeration small: the product of the ranges must stay cheap
        res = solve_dp(inst, SolveOptions(params={"bound": bound, "dominance": dominance}))
        assert res.status is Status.OPTIMAL
        assert not validate(inst, res.plan.start_round)
        assert res.objective == brute_force(inst), inst.to_dict()
        checked += 1


def test_dp_not_worse_than_any_baseline():
    rng = np.random.default_rng(11)
    for _ in range(25):
        inst = random_tiny(rng, n_max=7, len_max=5)
        res = solve(inst, "dp")
        assert res.status is Status.OPTIMAL
        for name in BASELINES:
            assert res.objective <= solve(inst, name).objective


def test_energy_bound_finds_the_same_optima_and_stays_below_them():
    """On 50 random tiny instances the memory (energy) node bound gives the optimum the plain
    bound gives; at the root it lies between the plain bound and that optimum."""
    rng = np.random.default_rng(23)
    stronger = 0
    for _ in range(50):
        inst = random_tiny(rng, n_max=7, len_max=5)
        plain = dp_search(inst, bound="simple")
        energy = dp_search(inst, bound="energy")
        assert plain.complete and energy.complete
        assert energy.objective == plain.objective, inst.to_dict()
        assert not validate(inst, np.array(energy.start_round))
        d = _data(inst)
        root = _energy_bound(d, 0, (1 << inst.n) - 1)
        simple = sum(int(o) for o in inst.output_len)  # every request arrived at 0 or later
        assert root <= plain.objective, inst.to_dict()
        if not inst.arrival.any():
            assert root >= simple
            stronger += root > simple
    assert stronger > 0  # the bound is not the plain one in disguise


def test_dominance_finds_the_same_optima_with_fewer_nodes():
    """On 50 random tiny instances (arrivals, blocks, batch caps) dropping dominated nodes gives
    the optimum that dropping duplicates only gives, and expands fewer nodes in all."""
    rng = np.random.default_rng(29)
    nodes = {True: 0, False: 0}
    capped = 0
    for _ in range(50):
        inst = random_tiny(rng, n_max=8, len_max=5)
        capped += inst.max_batch is not None
        out = {dom: dp_search(inst, dominance=dom) for dom in (True, False)}
        assert out[True].complete and out[False].complete
        assert out[True].objective == out[False].objective, inst.to_dict()
        assert not validate(inst, np.array(out[True].start_round))
        for dom in (True, False):
            nodes[dom] += out[dom].nodes
    assert capped > 0
    assert nodes[True] < nodes[False]


def test_dominated_compares_cost_and_holdings_round_by_round():
    front: list = []
    _keep(front, _kept(5, (3, 2)))
    assert _dominated(front, _kept(5, (3, 2)))  # a duplicate
    assert _dominated(front, _kept(6, (4, 2, 1)))  # costs more, holds more and longer
    assert not _dominated(front, _kept(4, (3, 2)))  # costs less
    assert not _dominated(front, _kept(6, (4, 1)))  # holds less in the second round
    assert not _dominated(front, _kept(6, (9,)))  # holds nothing in the second round
    _keep(front, _kept(4, (3, 1)))  # dominates the node kept so far, which leaves
    assert [(g, held) for g, _, held in front] == [(4, (3, 1))]
    _keep(front, _kept(3, (5,)))  # neither dominates the other: both stay
    assert [(g, held) for g, _, held in front] == [(4, (3, 1)), (3, (5,))]


def test_holdings_interleave_memory_and_count_under_a_batch_cap():
    """Under a batch cap a node holds (memory, count) per round, interleaved, so that a shorter
    tuple is compared with the rounds it covers."""
    inst = Instance.create(40, [2, 3, 1], [2, 4, 3], max_batch=2)
    d = _data(inst)
    running = ((0, 0), (1, 0))  # both started in round 0; in round 1, request 0 is in its last
    load = (d.profile[0][1] + d.profile[1][1], d.profile[1][2], d.profile[1][3])
    assert _holdings(d, running, 1, load) == (load[0], 2, load[1], 1, load[2], 1)


def test_dp_rejects_an_unknown_bound():
    with pytest.raises(ParameterError, match="bound"):
        solve_dp(Instance.create(10, [1], [1]), SolveOptions(params={"bound": "lp"}))


def test_dp_delays_a_start_when_that_pays():
    # Request 0 (o=3) and request 1 (o=1) can run together; a big one (s=8) needs the memory alone.
    # Greedy starts would be checked by the brute force anyway; this pins an instance where the
    # optimum ends later than a makespan-minimising plan would.
    inst = Instance.create(10, [1, 1, 8], [3, 1, 1])
    res = solve_dp(inst)
    assert res.objective == brute_force(inst)


def test_dp_time_limit_returns_plan_and_valid_bound():
    rng = np.random.default_rng(3)
    inst = Instance.create(40, rng.integers(1, 9, 10), rng.integers(1, 9, 10))
    out = dp_search(inst, deadline=0.0)  # stop at the first check
    assert out.lower_bound <= out.objective
    res = solve_dp(inst, SolveOptions(time_limit=0.0))
    assert res.plan is not None and not validate(inst, res.plan.start_round)
    if res.stop_reason is StopReason.TIME_LIMIT:
        assert res.lower_bound <= res.objective
    full = solve_dp(inst)
    assert res.lower_bound <= full.objective


def test_dp_matches_recorded_optima():
    """``dp`` agrees with the optima that ``milp`` and ``cpsat`` recorded in ``instances/optima``."""
    from tests.bounds.test_bounds import optima_files, recorded_optimum

    for path in optima_files():
        optimum = recorded_optimum(json.loads(path.read_text()))
        inst = load_instance(path)
        if optimum is None or inst.n > 10:
            continue
        # a time limit keeps CI short; a completed search must hit the optimum exactly
        res = solve_dp(inst, SolveOptions(time_limit=5))
        assert res.lower_bound <= optimum <= res.objective, path
        if res.stop_reason is StopReason.COMPLETED:
            assert res.objective == optimum, path


def test_dp_declines_beyond_max_n_through_the_registry():
    inst = Instance.create(100, [1] * 14, [1] * 14)
    assert SearchParams().max_n == 12
    with pytest.raises(ModelTooLarge, match="dp"):
        solve(inst, "dp")
    res = solve(inst, "dp", SolveOptions(params={"max_n": 14}))  # its own limit, raised
    assert res.status is Status.OPTIMAL and res.objective == 14
    with pytest.raises(ParameterError):
        solve_dp(inst, SolveOptions(params={"max_m": 12}))


def test_dp_crosses_idle_stretches_within_its_time_limit():
    """Arrivals far apart: the search jumps over the rounds where nothing runs and nothing has
    arrived (stepping through them one by one would take minutes), so it completes in time."""
    far = 10**9
    base = Instance.create(10, [4, 4, 3, 2], [2, 3, 1, 2], [0, 0, 1, 40])
    inst = base.replace(arrival=base.arrival + far)
    started = time.perf_counter()
    out = dp_search(inst, deadline=started + 3.0)
    assert out.complete and time.perf_counter() - started < 3.0
    assert out.objective == brute_force(base)
    assert out.start_round == [s + far for s in dp_search(base).start_round]


@pytest.mark.parametrize("seed", range(3))
def test_dp_with_warm_start_agrees(seed):
    rng = np.random.default_rng(100 + seed)
    inst = random_tiny(rng, n_max=6, len_max=4)
    base = solve(inst, "sf")
    res = solve_dp(inst, SolveOptions(warm_start=base.plan))
    assert res.objective == solve_dp(inst).objective


def test_dp_node_limit_stops_with_a_valid_bound_and_repeats():
    """A work limit (expanded nodes) stops the search with a valid bound, the same on every run."""
    from scheduler_milp.generators import random_instance

    inst = random_instance(9, 0)
    full = solve_dp(inst)
    assert full.status is Status.OPTIMAL
    runs = [solve_dp(inst, SolveOptions(iteration_limit=50)) for _ in range(2)]
    for res in runs:
        assert res.stop_reason is StopReason.ITERATION_LIMIT
        assert res.stats["nodes"] == 51
        assert res.lower_bound <= full.objective <= res.objective
        assert not validate(inst, res.plan.start_round)
    assert runs[0].plan.start_round.tolist() == runs[1].plan.start_round.tolist()
    assert runs[0].lower_bound == runs[1].lower_bound


def test_dp_stops_when_one_node_has_too_many_start_sets(monkeypatch):
    """Many requests that fit together: the start sets of one node grow as 2^waiting; past
    ``MAX_START_SETS`` the search stops as at its node limit, with a valid plan and bound."""
    from scheduler_milp.formulations import search
    from scheduler_milp.generators import random_instance

    inst = random_instance(12, 2, memory=60)
    optimum = solve_dp(inst).objective
    monkeypatch.setattr(search, "MAX_START_SETS", 100)
    res = solve_dp(inst)
    assert res.stop_reason is StopReason.ITERATION_LIMIT
    assert not validate(inst, res.plan.start_round)
    assert res.lower_bound <= optimum <= res.objective


def test_dp_reports_its_incumbent_and_bounds_that_hold():
    """``SolveOptions.on_improvement`` (the command line's progress line) hears objectives never
    below the optimum and bounds never above it."""
    from scheduler_milp.generators import random_instance

    calls: list[tuple[int | None, int | None]] = []
    inst = random_instance(10, 0)
    res = solve_dp(inst, SolveOptions(on_improvement=lambda o, b: calls.append((o, b))))
    assert res.status is Status.OPTIMAL and res.stats["nodes"] > 1024
    objectives = [o for o, _ in calls if o is not None]
    bounds = [b for _, b in calls if b is not None]
    assert objectives and bounds
    assert min(objectives) >= res.objective and max(bounds) <= res.objective
