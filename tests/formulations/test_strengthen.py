"""Reduced-cost fixing and cardinality (clique) rows never remove an optimal plan (cross-checked by ``dp``)."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler_milp.formulations.search import dp_search
from scheduler_milp.formulations.strengthen import (
    Prices,
    Strengthening,
    cardinality_rows,
    lagrangian_fixing,
    lp_prices,
    reduced_costs,
    solve_strengthened,
    solve_strengthened_milp,
)
from scheduler_milp.formulations.timeindexed import TimeIndexed, build
from scheduler_milp.generators import random_instance
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.plan import Plan
from scheduler_milp.model.result import SolveOptions, Status

VARIANTS: list[dict[str, object]] = [
    {},
    {"arrivals": 4},
    {"block_size": 2},
    {"max_batch": 2},
    {"block_size": 3, "arrivals": 3},
    {"memory": 16, "prompt_range": (1, 6), "output_range": (1, 6)},
    {"block_size": 2, "max_batch": 3, "arrivals": 5},
]


def tiny(count: int = 50) -> list[Instance]:
    """Seeded tiny instances (n = 3..7), cycling through arrivals, blocks, batch caps and budgets."""
    rng = np.random.default_rng(24)
    out = []
    for k in range(count):
        n = int(rng.integers(3, 8))
        out.append(random_instance(n, seed=500 + k, **VARIANTS[k % len(VARIANTS)]))  # type: ignore[arg-type]
    return out


INSTANCES = tiny()


def serial_objective(instance: Instance) -> int:
    """Objective of one request at a time in arrival order: a loose upper bound, many columns."""
    t, total = 0, 0
    for i in np.argsort(instance.arrival, kind="stable").tolist():
        t = max(t, int(instance.arrival[i]))
        total += t + int(instance.output_len[i]) - int(instance.arrival[i])
        t += int(instance.output_len[i])
    return total


def loose_model(instance: Instance) -> tuple[TimeIndexed, np.ndarray, int]:
    """The model over the serial plan's windows, ``dp``'s optimal plan as columns, the optimum."""
    res = dp_search(instance)
    assert res.complete
    model = build(instance, serial_objective(instance))
    return model, model.column_of(np.asarray(res.start_round)), res.objective


@pytest.fixture(scope="module")
def loose() -> list[tuple[TimeIndexed, np.ndarray, int]]:
    return [loose_model(inst) for inst in INSTANCES]


def test_cardinality_rows_hold_for_the_optimal_plans(loose) -> None:
    cut_rows = 0
    for model, opt_cols, _ in loose:
        rows = cardinality_rows(model, max_k=3)
        cut_rows += rows.n_rows
        x = np.zeros(model.n_cols, dtype=np.int64)
        x[opt_cols] = 1
        for r in range(rows.n_rows):
            cols, coefs = rows.row(r)
            assert int((coefs * x[cols]).sum()) <= rows.rhs_of(r)
    assert cut_rows > 100  # the rows exist on these instances: the check is not empty


def test_cardinality_rows_are_sound_by_construction() -> None:
    # every k + 1 requests with columns in a row overflow the row's round with their smallest memory
    inst = random_instance(8, seed=3)
    model = build(inst, serial_objective(inst))
    rows = cardinality_rows(model, max_k=2)
    assert rows.n_rows > 0 and rows.rhs_per_row is not None
    for r in range(rows.n_rows):
        cols, _ = rows.row(r)
        rnd = int(rows.round_of_row[r])
        age = rnd - model.col_start[cols] + 1
        assert (age >= 1).all() and (age <= inst.output_len[model.col_request[cols]]).all()
        mem = np.asarray(inst.mem(model.col_request[cols], age))
        minima: dict[int, int] = {}
        for req, m in zip(model.col_request[cols].tolist(), mem.tolist(), strict=True):
            minima[req] = min(minima.get(req, m), m)
        k = rows.rhs_of(r)
        assert len(minima) > k
        assert sum(sorted(minima.values())[: k + 1]) > inst.memory_budget


def test_lagrangian_at_lp_duals_is_the_lp_value_and_random_prices_stay_below_optimum(
    loose,
) -> None:
    rng = np.random.default_rng(7)
    for model, _, opt in loose[:20]:
        res = lp_prices(model, [cardinality_rows(model, 2)])
        assert res is not None
        bound, _ = reduced_costs(model, res.prices)
        assert bound == pytest.approx(res.value, abs=1e-5)
        assert bound <= opt + 1e-6
        prices = Prices(rng.exponential(0.3, model.horizon))
        assert reduced_costs(model, prices)[0] <= opt + 1e-6


def test_fixing_at_the_tightest_threshold_keeps_every_optimal_plan(loose) -> None:
    removed_total = 0
    for model, opt_cols, opt in loose:
        res = lp_prices(model, [cardinality_rows(model, 2)])
        assert res is not None
        # upper bound opt + 1: only columns of plans worse than the optimum may go
        removed, _ = lagrangian_fixing(model, res.prices, opt + 1)
        assert not removed[opt_cols].any()
        removed_total += int(removed.sum())
        # an incumbent's columns are kept even where the fixing would remove them
        removed_kept, _ = lagrangian_fixing(model, res.prices, opt, keep=opt_cols)
        assert not removed_kept[opt_cols].any()
    assert removed_total > 0  # the fixing does something on these instances


@pytest.mark.parametrize(
    "how",
    [
        Strengthening(fixing=True, cliques=0),
        Strengthening(fixing=False, cliques=2),
        Strengthening(fixing=True, cliques=1),
    ],
    ids=["fixing", "cliques", "both"],
)
def test_strengthened_cpsat_finds_the_dp_optimum(how: Strengthening) -> None:
    for inst in INSTANCES:
        res = solve_strengthened(inst, SolveOptions(time_limit=30, threads=1), how)
        assert res.status == Status.OPTIMAL
        assert res.objective == dp_search(inst).objective


def test_strengthened_milp_finds_the_dp_optimum() -> None:
    for inst in INSTANCES[:15]:
        res = solve_strengthened_milp(inst, SolveOptions(time_limit=30, threads=1))
        assert res.status == Status.OPTIMAL
        assert res.objective == dp_search(inst).objective


def test_fixing_removes_columns_and_records_them() -> None:
    res = solve_strengthened(random_instance(10, 0), SolveOptions(time_limit=30, threads=1))
    assert res.status == Status.OPTIMAL and res.objective == 121
    assert 0 < res.stats["removed_share"] < 1
    assert res.stats["fixing_runs"][0]["removed"] > 0


def test_a_worse_warm_start_keeps_the_upper_bound_plan_in_the_model() -> None:
    # the hint (one request at a time) is worse than the best fast plan: the fixing must keep
    # the upper-bound plan's columns too, or an optimum equal to the upper bound could be lost
    for inst in INSTANCES[:15]:
        t, starts = 0, np.zeros(inst.n, dtype=np.int64)
        for i in np.argsort(inst.arrival, kind="stable").tolist():
            t = max(t, int(inst.arrival[i]))
            starts[i] = t
            t += int(inst.output_len[i])
        opts = SolveOptions(time_limit=30, threads=1, warm_start=Plan.checked(inst, starts))
        res = solve_strengthened(inst, opts)
        assert res.status == Status.OPTIMAL
        assert res.objective == dp_search(inst).objective
