"""The ``auto`` portfolio: proves optimality on tiny instances, never loses to its parts, reports history."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from scheduler_milp.bounds.simple import busy_time_bound, volume_bound
from scheduler_milp.generators import random_instance
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.result import SolveOptions, Status
from scheduler_milp.registry import solve

ROOT = Path(__file__).resolve().parents[2]


def _check_history(res):
    history = res.stats["history"]
    assert history, "auto must record its progress"
    bounds = [h["lower_bound"] for h in history]
    objectives = [h["objective"] for h in history if h["objective"] is not None]
    assert bounds == sorted(bounds), "the best bound never goes down"
    assert objectives == sorted(objectives, reverse=True), "the best objective never goes up"
    assert history[-1]["lower_bound"] == res.lower_bound
    assert history[-1]["objective"] == res.objective or objectives[-1] == res.objective
    assert "errors" not in res.stats, res.stats.get("errors")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tiny_instances_are_proven_optimal(seed):
    inst = random_instance(6, seed=seed, arrivals=3 if seed % 2 else None, block_size=1 + seed % 2,
                           max_batch=2 if seed == 3 else None)
    res = solve(inst, "auto", SolveOptions(time_limit=30, seed=1))
    exact = solve(inst, "dp", SolveOptions(time_limit=30))
    assert exact.status is Status.OPTIMAL
    assert res.status is Status.OPTIMAL
    assert res.objective == exact.objective == res.lower_bound
    assert res.plan.violations() == []
    _check_history(res)
    assert res.stats["plan_source"] and res.stats["bound_source"]


def test_medium_instance_bound_and_plan_beat_their_parts():
    inst = random_instance(150, seed=11, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    res = solve(inst, "auto", SolveOptions(time_limit=8, seed=0))
    assert res.plan is not None and res.plan.violations() == []
    for name in ("fcfs", "sf", "svf"):
        assert res.objective <= solve(inst, name).objective, name
    assert res.lower_bound >= volume_bound(inst)
    assert res.lower_bound <= res.objective
    _check_history(res)
    assert res.gap == pytest.approx((res.objective - res.lower_bound) / res.objective)


def test_formats_example_through_the_cli_default_method():
    inst = Instance.create(24, [5, 2, 9], [3, 7, 1], [0, 2, 0], ["r0", "r1", "r2"], name="toy-3")
    path = ROOT / "instances" / "toy" / "toy-3.json"
    if not path.exists():  # the shipped copy moved: write the FORMATS.md example ourselves
        path = Path(__import__("tempfile").mkdtemp()) / "toy-3.json"
        inst.save(path)
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "solve.py"), str(path), "--time-limit", "10"],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "method     auto" in out.stdout
    assert "status     optimal" in out.stdout


OPTIMA = sorted((ROOT / "instances" / "optima").glob("*.json"))


@pytest.mark.parametrize("path", OPTIMA, ids=[p.stem for p in OPTIMA])
def test_recorded_optima_are_reached_and_proven(path):
    """The shipped small instances with a proven optimum (milp and cpsat agree on it)."""
    from scheduler_milp.model.instance import load_instance

    inst = load_instance(path)
    optimum = inst.meta["optimum"]["value"]
    easy = min(inst.meta["optimum"]["seconds"].values()) <= 2.0
    # hard ones get a short run: they check only that the bound and the plan bracket the optimum
    res = solve(inst, "auto", SolveOptions(time_limit=20 if easy else 4, seed=0))
    assert res.lower_bound <= optimum <= res.objective  # a bound above the optimum is a bug
    _check_history(res)
    if easy:
        # easy for the exact models (proven in at most 2 s when recorded): auto must prove it too
        assert res.status is Status.OPTIMAL and res.objective == optimum


def test_bound_phases_in_a_second_process():
    """threads >= 2: the Lagrangian runs in a spawned worker; its bound and plans reach the result."""
    inst = random_instance(120, seed=12, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    opts = SolveOptions(time_limit=6, seed=0, threads=2, params={"parallel_min_seconds": 0})
    res = solve(inst, "auto", opts)
    assert res.plan is not None and res.plan.violations() == []
    assert "lagrange" in res.stats["phase_seconds"], res.stats
    assert "repack-worker" in res.stats["phase_seconds"], res.stats  # the worker's second repack chain ran
    assert "bound-worker" not in res.stats.get("skipped", {})
    assert busy_time_bound(inst) <= res.lower_bound <= res.objective
    _check_history(res)


def test_second_process_in_a_script_without_main_guard(tmp_path):
    """A user's script with no ``if __name__ == "__main__"`` guard: the spawned worker must not run
    the script again (which would repeat the whole solve and lose the worker's bounds)."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from scheduler_milp.generators import random_instance\n"
        "from scheduler_milp.registry import solve\n"
        "from scheduler_milp.model.result import SolveOptions\n"
        "print('script body ran', flush=True)\n"
        "inst = random_instance(120, seed=12, prompt_range=(5, 60), output_range=(1, 40), memory=400)\n"
        "opts = SolveOptions(time_limit=5, seed=0, threads=2, params={'parallel_min_seconds': 0})\n"
        "res = solve(inst, 'auto', opts)\n"
        "print('phases', sorted(res.stats['phase_seconds']), 'errors', res.stats.get('errors', {}))\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("script body ran") == 1, run.stdout
    phases = [ln for ln in run.stdout.splitlines() if ln.startswith("phases")]
    assert len(phases) == 1 and "'lagrange'" in phases[0] and "'repack-worker'" in phases[0], run.stdout


def _dying_job(out, instance, plan, wall_deadline, params):
    """A worker that sends one bound and dies without closing its pipe (as when it is killed)."""
    import os

    out.send(("bound", "test", volume_bound(instance)))
    os._exit(3)


def test_a_dying_worker_is_reported_and_its_bounds_kept():
    from scheduler_milp.portfolio.auto import _BoundWorker, _Portfolio

    inst = random_instance(20, seed=3, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    port = _Portfolio(inst, time.perf_counter(), time.perf_counter() + 30)
    port.offer_plan(solve(inst, "svf").plan, "svf")
    assert volume_bound(inst) > port.bound
    worker = _BoundWorker(port, port.plan, 10.0, {}, job=_dying_job)
    worker.finish(20.0)
    assert port.errors["bound-worker"] == "second process ended with exit code 3"
    assert (port.bound, port.bound_source) == (volume_bound(inst), "test")  # what it sent is kept


def _asking_job(out, instance, plan, wall_deadline, params):
    """A worker that asks for the parent's best plan and reports its objective as a "bound"."""
    import numpy as np

    out.send(("want", "plan", None))
    kind, _, starts = out.recv()
    assert kind == "plan"
    out.send(("bound", "echo", int((np.asarray(starts) + instance.output_len - instance.arrival).sum())))
    out.close()


def test_the_worker_gets_the_parents_best_plan_when_it_asks():
    """The worker's repack chain starts from the parent's best plan at that moment, not its start plan."""
    from scheduler_milp.portfolio.auto import _BoundWorker, _Portfolio

    inst = random_instance(20, seed=3, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    port = _Portfolio(inst, time.perf_counter(), time.perf_counter() + 30)
    port.offer_plan(solve(inst, "fcfs").plan, "fcfs")
    first = port.plan
    better = solve(inst, "repack", SolveOptions(iteration_limit=200, warm_start=first)).plan
    assert better.total_latency < first.total_latency
    port.offer_plan(better, "repack")
    worker = _BoundWorker(port, first, 10.0, {}, job=_asking_job)  # started with the worse plan
    worker.finish(20.0)
    assert "bound-worker" not in port.errors
    assert [h["lower_bound"] for h in port.history if h["source"] == "echo"] == [better.total_latency]


def test_one_thread_keeps_every_phase_in_this_process():
    inst = random_instance(120, seed=12, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    res = solve(inst, "auto", SolveOptions(time_limit=4, seed=0, threads=1, params={"parallel_min_seconds": 0}))
    assert res.plan is not None and res.plan.violations() == []
    assert "lagrange" in res.stats["phase_seconds"]
    assert "repack-worker" not in res.stats["phase_seconds"]
    assert busy_time_bound(inst) <= res.lower_bound <= res.objective
    _check_history(res)


def test_lns_is_not_started_when_loading_or_tools_would_overrun_the_limit(monkeypatch):
    """With less than ``lns_min_seconds`` left and OR-Tools not loaded yet, ``lns`` is skipped.

    Its first window imports OR-Tools (about 0.55 s), which made 5 s runs end 0.25-0.35 s late.
    The long ``repack`` then gets the share ``lns`` would have had; once OR-Tools is loaded, the
    same settings run ``lns``.
    """
    import scheduler_milp.portfolio.auto as auto_module

    inst = random_instance(120, seed=12, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    opts = SolveOptions(time_limit=3, seed=0, threads=1, params={"lns_min_seconds": 1000, "repack_share": 0.5})
    monkeypatch.setattr(auto_module, "_cp_sat_loaded", lambda: False)
    skipped = solve(inst, "auto", opts)
    assert skipped.status is not Status.OPTIMAL, "a proof would end the run before lns either way"
    assert "lns" not in skipped.stats["phase_seconds"]
    # the long repack took all the time (not half of it): nothing was left for lns
    assert skipped.stats["skipped"]["lns"] == "no time left", skipped.stats["skipped"]
    assert skipped.plan is not None and skipped.plan.violations() == []
    monkeypatch.setattr(auto_module, "_cp_sat_loaded", lambda: True)
    ran = solve(inst, "auto", opts)
    assert "lns" in ran.stats["phase_seconds"]
    assert "lns" not in ran.stats.get("skipped", {})


def test_a_bound_from_the_second_process_stops_the_plan_search():
    """Here the LP bound meets repack's plan: once the worker sends it, the plan phases stop early."""
    inst = random_instance(40, seed=31, prompt_range=(5, 60), output_range=(1, 40), memory=1500)
    assert max(busy_time_bound(inst), volume_bound(inst)) < solve(inst, "lp").lower_bound  # only the LP closes it
    res = solve(inst, "auto", SolveOptions(time_limit=30, seed=0, threads=2))
    assert res.status is Status.OPTIMAL, res.stats
    assert res.stats["bound_source"] in ("lagrange", "sawtooth", "lp")
    phases = res.stats["phase_seconds"]
    # the long repack either saw the proof arrive (stopped early) or never started; lns never ran
    assert "repack-2" in res.stats.get("stopped_early", []) or "repack-2" not in phases, res.stats
    assert "lns" not in phases
    _check_history(res)


def test_a_small_exact_model_runs_first_and_a_large_one_after_the_bounds():
    """The exact phase runs before anything else only when its model is small (``exact_first_nonzeros``)."""
    from scheduler_milp.model.instance import load_instance

    inst = load_instance(ROOT / "instances" / "optima" / "conv-s64-n8-s0.json")
    first = solve(inst, "auto", SolveOptions(time_limit=10, seed=0, threads=1))
    assert list(first.stats["phase_seconds"]) == ["quick-bounds", "fast", "exact"]
    assert first.status is Status.OPTIMAL
    # the same instance with the threshold at 0 (as for a model of millions of nonzeros)
    later = solve(inst, "auto", SolveOptions(time_limit=10, seed=0, threads=1, params={"exact_first_nonzeros": 0}))
    phases = list(later.stats["phase_seconds"])
    assert phases.index("lagrange") < phases.index("exact"), phases
    assert later.status is Status.OPTIMAL and later.objective == first.objective
    _check_history(later)


def test_a_failing_method_is_an_error_not_a_decline(monkeypatch):
    """Only ``ModelTooLarge`` declines; a ``ValueError`` from a bug is reported as an error.

    Until this was split, a numpy ``ValueError`` inside ``repack`` was filed under "skipped" and
    the portfolio silently lost its improvement phases.
    """
    import scheduler_milp.heuristics.repack as repack_module

    def broken(*args, **kwargs):
        raise ValueError("zero-size array to reduction operation minimum which has no identity")

    monkeypatch.setattr(repack_module, "repack", broken)
    inst = random_instance(40, seed=5, prompt_range=(5, 60), output_range=(1, 40), memory=300)
    res = solve(inst, "auto", SolveOptions(time_limit=4, seed=0, threads=1))
    assert res.plan is not None and res.plan.violations() == []
    assert "repack" in res.stats["errors"] and "ValueError" in res.stats["errors"]["repack"]
    assert "repack" not in res.stats.get("skipped", {})


def test_the_worker_searches_the_insertion_basin_when_the_parents_chain_left_it(monkeypatch):
    """With ``chain_from_insertion`` the worker's repack chain starts from repack's insertion plan.

    Run in this process (``_bound_job`` with one end of a pipe); ``repack`` is replaced by a spy.
    """
    import contextlib
    import signal
    from multiprocessing import Pipe

    import numpy as np

    import scheduler_milp.heuristics.repack as repack_module
    from scheduler_milp.portfolio.auto import _bound_job

    inst = random_instance(60, seed=4, prompt_range=(5, 60), output_range=(1, 40), memory=300)
    plan = solve(inst, "fcfs").plan
    seen = []

    def spy(instance, start, **kwargs):
        seen.append((start, kwargs))
        return start, {}

    monkeypatch.setattr(repack_module, "repack", spy)
    parent, child = Pipe(duplex=True)
    handler = signal.getsignal(signal.SIGINT)  # the job ignores Ctrl-C (meant for its own process)
    try:
        params = {"with_lp": False, "lagrange_share": 0.1, "lp_share": 0.3, "repack": True,
                  "chain_from_insertion": True, "seed": 0, "solver": "highs"}  # fmt: skip
        _bound_job(child, inst, plan, time.time() + 4.0, params)
    finally:
        signal.signal(signal.SIGINT, handler)
    messages = []
    with contextlib.suppress(EOFError):  # the job closed its end: EOF after the last message
        while parent.poll():
            messages.append(parent.recv())
    assert not any(kind == "want" for kind, _, _ in messages)  # it did not ask for the parent's plan
    expected = repack_module.insertion_starts(inst, np.lexsort((np.arange(inst.n), inst.arrival, inst.volume)))
    assert len(seen) == 1
    start, kwargs = seen[0]
    assert np.array_equal(start.start_round, expected) and start.violations() == []
    assert kwargs["insertion"] is False  # no second construction of the same plan
