"""``auto``'s deterministic mode (a work limit instead of wall-clock shares) and its time limit.

Reproducibility is checked where it could break: twice in one process, in a fresh process, and
beside two CPU-bound busy loops; no test asserts how long anything takes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scheduler_milp.generators import random_instance
from scheduler_milp.model.deadline import Deadline
from scheduler_milp.model.instance import Instance, load_instance
from scheduler_milp.model.result import SolveOptions, StopReason
from scheduler_milp.registry import solve

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "instances" / "traces" / "mix-conv70-arxiv30-n100-M65536.json"


def trace_instance() -> Instance:
    """100 requests of the mixed trace at a tight budget (repack, the Lagrangian and lns all run)."""
    return load_instance(TRACE).replace(memory_budget=16384)


def exact_instance() -> Instance:
    """25 requests: the exact phase (CP-SAT with a deterministic time) runs first."""
    return random_instance(25, seed=1, memory=40, arrivals=4)


def outcome(instance: Instance, options: SolveOptions) -> tuple[list[int], int | None]:
    """The plan's start rounds and the bound of ``auto``."""
    res = solve(instance, "auto", options)
    assert res.plan is not None
    return [int(x) for x in res.plan.start_round], res.lower_bound


CHILD = """
import json, sys
from tests.portfolio.test_deterministic import {make}, outcome
from scheduler_milp.model.result import SolveOptions
print(json.dumps(outcome({make}(), SolveOptions(seed={seed}, params={{"work": {work}}}))))
"""


def in_a_fresh_process(make: str, seed: int, work: int) -> tuple[list[int], int | None]:
    """:func:`outcome` computed by a new Python process."""
    code = CHILD.format(make=make, seed=seed, work=work)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    starts, bound = json.loads(out.stdout.strip().splitlines()[-1])
    return starts, bound


@contextmanager
def busy_loops(count: int = 2) -> Iterator[None]:
    """``count`` CPU-bound processes running beside the block (a loaded machine)."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for p in loops:
            p.kill()
            p.wait()


@pytest.mark.parametrize(("make", "work"), [("trace_instance", 4), ("exact_instance", 2)])
def test_the_same_work_gives_the_same_plan_and_bound_anywhere(make, work):
    instance = globals()[make]()
    options = SolveOptions(seed=3, params={"work": work})
    first = outcome(instance, options)
    assert outcome(instance, options) == first  # twice in this process
    assert in_a_fresh_process(make, 3, work) == first  # in another process
    with busy_loops(2):  # on a loaded machine
        assert outcome(instance, options) == first


def test_the_iteration_limit_is_the_work_when_no_work_is_given():
    instance = trace_instance()
    by_param = outcome(instance, SolveOptions(seed=1, params={"work": 3}))
    assert outcome(instance, SolveOptions(seed=1, iteration_limit=3)) == by_param


def test_a_deterministic_run_stays_in_this_process_and_ends_at_its_work():
    instance = trace_instance()
    res = solve(instance, "auto", SolveOptions(params={"work": 3}, threads=2))
    assert res.stop_reason is StopReason.ITERATION_LIMIT and res.stats["work"] == 3
    assert "bound-worker" not in res.stats.get("skipped", {})
    assert {"fast", "repack", "lagrange", "repack-2", "lns"} <= set(res.stats["phase_seconds"])
    more = solve(instance, "auto", SolveOptions(params={"work": 12}))
    assert more.objective <= res.objective  # more work: the same phases, longer


def test_a_safety_net_time_limit_that_passed_ends_the_run_with_a_plan():
    instance = trace_instance()
    res = solve(
        instance,
        "auto",
        SolveOptions(params={"work": 50}, deadline=Deadline(time.perf_counter() - 1.0)),
    )
    assert res.plan is not None and res.stop_reason is StopReason.TIME_LIMIT


def test_auto_past_its_deadline_answers_the_first_fast_plan():
    instance = trace_instance()
    res = solve(instance, "auto", SolveOptions(deadline=Deadline(time.perf_counter() - 1.0)))
    assert res.stop_reason is StopReason.TIME_LIMIT
    assert res.objective == solve(instance, "svf").objective
    assert res.stats["skipped"]["fast"] == "no time left"
