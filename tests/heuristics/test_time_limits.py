"""Time limits of the heuristics, checked without the clock's speed: a deadline that has already
passed must stop each search at its first check with a valid plan, and a first call that cannot
be interrupted (compiling kernels, importing CP-SAT) is waited for only until the deadline."""

from __future__ import annotations

import os
import threading
import time

import pytest

from scheduler_milp.generators import random_instance
from scheduler_milp.heuristics.warmup import Warmup
from scheduler_milp.model.deadline import Deadline
from scheduler_milp.model.result import SolveOptions, StopReason
from scheduler_milp.registry import solve


def passed() -> Deadline:
    """A deadline one second ago."""
    return Deadline(time.perf_counter() - 1.0)


def never_ready() -> tuple[Warmup, threading.Event]:
    """A warm-up whose call blocks until the returned event is set."""
    release = threading.Event()
    return Warmup("a call that does not end", release.wait), release


def test_a_warm_up_is_waited_for_until_the_deadline_only():
    slow, release = never_ready()
    assert slow.ready(passed()) is False
    assert slow.ready(Deadline.after(0.01)) is False
    release.set()
    assert slow.ready(Deadline()) is True  # without a limit: waits until the call is done
    assert slow.ready(passed()) is True  # done: ready whatever the deadline


def test_a_warm_up_that_fails_raises_in_the_caller():
    def broken() -> None:
        raise ValueError("no compiler")

    with pytest.raises(RuntimeError, match="no compiler"):
        Warmup("broken", broken).ready(Deadline())


@pytest.mark.parametrize("method", ["repack", "ls", "lns", "rh"])
def test_a_search_past_its_deadline_answers_its_start_plan(method):
    from scheduler_milp.heuristics.profile import WARMUP

    assert WARMUP.ready(Deadline())  # compiled: the searches themselves must stop
    inst = random_instance(40, seed=3, memory=40, arrivals=5)
    res = solve(inst, method, SolveOptions(deadline=passed()))
    assert res.plan is not None and res.stop_reason is StopReason.TIME_LIMIT
    first = solve(inst, "svf").objective  # the first fast plan
    if method == "rh":  # every request placed at its earliest fit in the plan's order, no window
        assert res.stats["windows"] == 0 and res.stats["fallback_requests"] > 0
    else:  # nothing searched (ls decodes the plan's order once, which is never worse)
        assert res.stats["iterations"] == 0 and res.objective <= first
        assert res.objective == first or method == "ls"


def test_repack_answers_its_start_plan_when_its_kernels_are_not_compiled_in_time(monkeypatch):
    import scheduler_milp.heuristics.repack as repack

    slow, release = never_ready()
    monkeypatch.setattr(repack, "WARMUP", slow)
    inst = random_instance(30, seed=4, memory=40)
    start = solve(inst, "svf").plan
    res = solve(inst, "repack", SolveOptions(time_limit=0.2, warm_start=start))
    release.set()
    assert (
        res.stop_reason is StopReason.TIME_LIMIT and res.stats["kernels"] == "not compiled in time"
    )
    assert res.plan is not None and (res.plan.start_round == start.start_round).all()
    assert repack.insertion_starts(inst, repack.insertion_order(inst), passed().at) is None


def test_rh_answers_the_decoder_s_plan_when_its_kernels_are_not_compiled_in_time(monkeypatch):
    import scheduler_milp.heuristics.receding as receding

    slow, release = never_ready()
    monkeypatch.setattr(receding, "WARMUP", slow)
    inst = random_instance(30, seed=5, memory=40)
    res = solve(inst, "rh", SolveOptions(time_limit=0.2, params={"order": "svf"}))
    release.set()
    assert res.stop_reason is StopReason.TIME_LIMIT and res.stats["fallback"] == "decoder"
    assert res.objective == solve(inst, "svf").objective


def test_lns_starts_no_window_before_cp_sat_is_imported(monkeypatch):
    import scheduler_milp.heuristics.lns as lns

    slow, release = never_ready()
    monkeypatch.setattr(lns, "CP_SAT", slow)
    inst = random_instance(15, seed=6, memory=40)
    start = solve(inst, "svf").plan
    res = solve(inst, "lns", SolveOptions(time_limit=0.2, warm_start=start))
    release.set()
    assert res.stop_reason is StopReason.TIME_LIMIT and res.stats["iterations"] == 0
    assert res.objective == start.total_latency


@pytest.mark.parametrize("method", ["sorted-lp", "lp-swap"])
def test_lp_guided_methods_past_their_deadline_end_with_one_line(method):
    inst = random_instance(20, seed=7, memory=30, arrivals=3)
    with pytest.raises(RuntimeError, match="not solved in time"):
        solve(inst, method, SolveOptions(deadline=passed()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_warm_up_under_way_in_a_forked_parent_starts_again_in_the_child():
    slow, release = never_ready()
    slow.start()
    pid = os.fork()
    if pid == 0:  # the parent's thread is not here: the call must start again (and end)
        release.set()
        os._exit(0 if slow.ready(Deadline.after(60)) else 1)
    _, status = os.waitpid(pid, 0)
    release.set()
    assert os.waitstatus_to_exitcode(status) == 0 and slow.ready(Deadline())
