"""Time limits of the exact models, checked without the clock's speed: building stops at a deadline
that has passed, the answer is then the plan held so far, and the faster or chunked build steps
give the same model as before."""

from __future__ import annotations

import time

import numpy as np
import pytest

from scheduler_milp.baselines.best import best_fast_plan
from scheduler_milp.formulations.timeindexed import OutOfTime, build, completion_caps, left_justify
from scheduler_milp.formulations.window import solve_window
from scheduler_milp.generators import random_instance
from scheduler_milp.model.deadline import Deadline
from scheduler_milp.model.result import TRIVIAL_BOUND_SOURCE, SolveOptions, StopReason
from scheduler_milp.registry import solve


def passed() -> Deadline:
    """A deadline one second ago."""
    return Deadline(time.perf_counter() - 1.0)


def _model(n: int, seed: int, **kw):  # type: ignore[no-untyped-def]
    inst = random_instance(n, seed=seed, memory=30, **kw)
    return build(inst, best_fast_plan(inst)[1].total_latency)


@pytest.mark.parametrize("seed", range(6))
def test_completion_count_rows_are_those_of_their_definition(seed):
    """Row ``T`` (kept when fewer than the possible completions are allowed by ``T``) holds every
    column completing by ``T``, in column order, with right-hand side ``K(T)``."""
    model = _model(14 + seed, seed, arrivals=3 * (seed % 2), max_batch=4 if seed % 3 == 0 else None)
    inst = model.instance
    caps = completion_caps(inst)
    end = model.col_start + inst.output_len[model.col_request]
    earliest = np.sort(inst.arrival + inst.output_len)
    rows = model.completion_count_rows()
    expected = [
        (t, int(np.searchsorted(caps, t, side="right")))
        for t in range(1, model.horizon + 1)
        if np.searchsorted(caps, t, side="right") < np.searchsorted(earliest, t, side="right")
    ]
    assert rows.n_rows == len(expected) > 0
    for r, (t, allowed) in enumerate(expected):
        cols, coefs = rows.row(r)
        assert int(rows.round_of_row[r]) == t and rows.rhs_of(r) == allowed
        assert np.array_equal(cols, np.flatnonzero(end <= t)) and (coefs == 1).all()


def test_a_build_past_its_deadline_is_abandoned_and_one_in_time_is_unchanged():
    inst = random_instance(16, seed=2, memory=30, max_batch=4)
    ub = best_fast_plan(inst)[1].total_latency
    with pytest.raises(OutOfTime):
        build(inst, ub, deadline=passed())
    plain, timed = build(inst, ub), build(inst, ub, deadline=Deadline.after(600))
    for name in ("latest", "col_offset", "col_start", "col_cost"):
        assert np.array_equal(getattr(plain, name), getattr(timed, name))
    for rows in ("memory_rows", "batch_rows"):
        a, b = getattr(plain, rows), getattr(timed, rows)
        assert np.array_equal(a.data, b.data) and np.array_equal(a.indices, b.indices)


@pytest.mark.parametrize("method", ["cpsat", "milp"])
def test_an_exact_model_past_its_deadline_answers_the_plan_it_holds(method):
    inst = random_instance(12, seed=4, memory=30, arrivals=3)
    res = solve(inst, method, SolveOptions(deadline=passed()))
    assert res.plan is not None and res.stop_reason is StopReason.TIME_LIMIT
    assert "time limit reached while building" in res.stats["termination"]
    assert res.stats["bound_source"] == TRIVIAL_BOUND_SOURCE  # no proof without a solver
    assert res.objective <= solve(inst, "svf").objective  # the first fast plan, left-justified


def test_cpsat_is_not_started_when_it_could_not_load_the_model_in_time(monkeypatch):
    import scheduler_milp.formulations.cpsat as cpsat

    monkeypatch.setattr(cpsat, "LOAD_SHARE", 1e9)  # loading "takes" longer than any limit
    inst = random_instance(10, seed=5, memory=30)
    res = solve(inst, "cpsat", SolveOptions(time_limit=600))
    assert res.stop_reason is StopReason.TIME_LIMIT and res.plan is not None
    assert res.stats["termination"] == "too little time left for CP-SAT to load the model"
    assert res.objective == left_justify(best_fast_plan(inst)[1]).total_latency


def test_cpsat_with_a_work_limit_and_one_thread_answers_the_same_twice():
    inst = random_instance(18, seed=6, memory=30, arrivals=4)
    options = SolveOptions(threads=1, params={"deterministic_time": 0.5})
    first, second = solve(inst, "cpsat", options), solve(inst, "cpsat", options)
    assert first.plan is not None and second.plan is not None
    assert np.array_equal(first.plan.start_round, second.plan.start_round)
    assert first.lower_bound == second.lower_bound
    assert first.stats["deterministic_time"] <= 0.5 + 0.1


def _lp_arrays(opt):  # type: ignore[no-untyped-def]
    lp = opt._solver_model.getLp()
    a = lp.a_matrix_
    return [
        np.asarray(x)
        for x in (
            lp.col_cost_,
            lp.col_lower_,
            lp.col_upper_,
            lp.row_lower_,
            lp.row_upper_,
            a.start_,
            a.index_,
            a.value_,
            lp.integrality_,
        )
    ]


@pytest.mark.parametrize("seed", range(3))
def test_milp_hands_highs_the_model_set_instance_builds(seed):
    from pyomo.contrib.appsi.solvers import Highs

    from scheduler_milp.formulations.milp import build_pyomo, highs_instance

    model = _model(12, seed, arrivals=2, max_batch=3 if seed else None)
    whole, chunked = Highs(), Highs()
    whole.set_instance(build_pyomo(model))
    highs_instance(chunked, build_pyomo(model), Deadline.after(600))
    for x, y in zip(_lp_arrays(whole), _lp_arrays(chunked), strict=True):
        assert np.array_equal(x, y)
    with pytest.raises(OutOfTime):
        highs_instance(Highs(), build_pyomo(model), passed())
    with pytest.raises(OutOfTime):
        build_pyomo(model, deadline=passed())


def test_milp_answers_its_warm_start_when_handing_the_model_over_takes_the_time(monkeypatch):
    import scheduler_milp.formulations.milp as milp

    def too_slow(opt, m, deadline=None):  # type: ignore[no-untyped-def]
        raise OutOfTime

    monkeypatch.setattr(milp, "highs_instance", too_slow)
    inst = random_instance(9, seed=7, memory=30)
    res = solve(inst, "milp", SolveOptions(time_limit=600))
    assert res.stop_reason is StopReason.TIME_LIMIT and res.plan is not None
    assert res.stats["termination"] == "time limit reached while handing the model to HiGHS"


def test_lp_past_its_deadline_answers_the_best_fast_plan_with_the_trivial_bound():
    inst = random_instance(15, seed=8, memory=30, arrivals=3)
    res = solve(inst, "lp", SolveOptions(deadline=passed()))
    assert res.stop_reason is StopReason.TIME_LIMIT
    assert res.stats["bound_source"] == TRIVIAL_BOUND_SOURCE
    assert res.objective == solve(inst, "svf").objective  # the first fast plan


def test_lp_with_a_work_limit_stops_at_it():
    inst = random_instance(20, seed=9, memory=30, arrivals=3)
    limited = solve(inst, "lp", SolveOptions(params={"iteration_limit": 1}))
    assert limited.stop_reason is StopReason.ITERATION_LIMIT
    assert limited.stats["bound_source"] == TRIVIAL_BOUND_SOURCE
    full = solve(inst, "lp", SolveOptions(params={"iteration_limit": 10**9}))
    assert (
        full.stop_reason is StopReason.COMPLETED
        and full.lower_bound == solve(inst, "lp").lower_bound
    )


def test_a_window_built_after_its_time_limit_is_not_solved():
    inst = random_instance(10, seed=10, memory=30)
    plan = best_fast_plan(inst)[1]
    free = np.arange(4)
    starts = plan.start_round
    res = solve_window(inst, starts, free, inst.arrival[free], starts[free] + 10, time_limit=0.0)
    assert res.status == "TIME_LIMIT" and not res.improved
    assert np.array_equal(res.start_round, starts[free])


def test_rows_are_checked_in_chunks_of_bounded_nonzeros():
    from scheduler_milp.formulations.timeindexed import TERMS_PER_CHECK, term_chunks

    sizes = [7_000, 9_000, 30_000, 1, 1, 19_999, 5_000, 0]
    chunks = list(term_chunks(sizes))
    assert [r for first, last in chunks for r in range(first, last)] == list(range(len(sizes)))
    for first, last in chunks:
        assert last - first == 1 or sum(sizes[first:last]) <= TERMS_PER_CHECK
    assert list(term_chunks([])) == []
