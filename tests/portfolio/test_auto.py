"""The ``auto`` portfolio: proves optimality on tiny instances, never loses to its parts, reports history."""

import contextlib
import dataclasses
import signal
import subprocess
import sys
import time
from multiprocessing import Pipe
from pathlib import Path

import numpy as np
import pytest

from scheduler_milp.bounds.simple import busy_time_bound, volume_bound
from scheduler_milp.generators import random_instance
from scheduler_milp.model.deadline import Deadline
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.params import ParameterError
from scheduler_milp.model.result import SolveOptions, Status
from scheduler_milp.portfolio.auto import AutoParams
from scheduler_milp.portfolio.state import PortfolioState
from scheduler_milp.portfolio.worker import BoundJob, BoundWorker, bound_job
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
    inst = random_instance(
        6,
        seed=seed,
        arrivals=3 if seed % 2 else None,
        block_size=1 + seed % 2,
        max_batch=2 if seed == 3 else None,
    )
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


def test_formats_example_through_the_cli_default_method(tmp_path):
    """The example instance of docs/formats.md, solved by the command line's default method."""
    path = tmp_path / "toy-3.json"
    Instance.create(24, [5, 2, 9], [3, 7, 1], [0, 2, 0], ["r0", "r1", "r2"], name="toy-3").save(
        path
    )
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "solve.py"), str(path), "--time-limit", "10"],
        capture_output=True,
        text=True,
        check=False,
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
    # hard ones get a short run: they check only that the bound and the plan bracket the optimum;
    # easy ones end once proven, so their limit only caps a slow or loaded machine
    res = solve(inst, "auto", SolveOptions(time_limit=60 if easy else 4, seed=0))
    assert res.lower_bound <= optimum <= res.objective  # a bound above the optimum is a bug
    _check_history(res)
    if easy:
        # easy for the exact models (proven in at most 2 s when recorded): auto must prove it too
        assert res.status is Status.OPTIMAL and res.objective == optimum


def test_bound_phases_in_a_second_process(monkeypatch):
    """threads >= 2: the Lagrangian runs in a spawned worker; its phase and its bounds reach the result.

    The quick bounds are disabled here (in this process only), so that any bound the worker sends
    improves on the trivial one and shows in the history however far its ascent got; the limit
    leaves the worker ample time beyond its start-up, as on a loaded machine.
    """
    import scheduler_milp.bounds.simple as simple

    monkeypatch.setattr(simple, "volume_bound", lambda instance: 0)
    monkeypatch.setattr(simple, "busy_time_bound", lambda instance: 0)
    inst = random_instance(120, seed=12, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    opts = SolveOptions(time_limit=20, seed=0, threads=2, params={"lagrange_share": 0.1})
    res = solve(inst, "auto", opts)
    assert res.plan is not None and res.plan.violations() == []
    assert "lagrange" in res.stats["phase_seconds"], res.stats  # reported by the worker when done
    assert "bound-worker" not in res.stats.get("errors", {})
    # only the worker computes these bounds when it runs
    assert {"lagrange", "sawtooth"} & {h["source"] for h in res.stats["history"]}, res.stats[
        "history"
    ]
    assert inst.trivial_lower_bound() < res.lower_bound <= res.objective
    _check_history(res)


def test_second_process_in_a_script_without_main_guard(tmp_path):
    """A user's script with no ``if __name__ == "__main__"`` guard: the spawned worker must not run
    the script again (which would repeat the whole solve and lose the worker's bounds).

    Here the worker's bounds close the gap, so the run ends once they arrive; the limit only
    caps a slow machine.
    """
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from scheduler_milp.generators import random_instance\n"
        "from scheduler_milp.registry import solve\n"
        "from scheduler_milp.model.result import SolveOptions\n"
        "print('script body ran', flush=True)\n"
        "inst = random_instance(40, seed=31, prompt_range=(5, 60), output_range=(1, 40), memory=1500)\n"
        "res = solve(inst, 'auto', SolveOptions(time_limit=60, seed=0, threads=2))\n"
        "print('sources', sorted({h['source'] for h in res.stats['history']}), 'errors', res.stats.get('errors', {}))\n"
    )
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("script body ran") == 1, run.stdout
    sources = [ln for ln in run.stdout.splitlines() if ln.startswith("sources")]
    assert len(sources) == 1, run.stdout
    assert any(f"'{s}'" in sources[0] for s in ("lagrange", "sawtooth", "lp")), (
        run.stdout
    )  # the worker's
    assert "errors {}" in sources[0], run.stdout


def _dying_job(out, instance, plan, wall_deadline, params):
    """A worker that sends one bound and dies without closing its pipe (as when it is killed)."""
    import os

    out.send(("bound", "test", volume_bound(instance)))
    os._exit(3)


def test_a_dying_worker_is_reported_and_its_bounds_kept():
    inst = random_instance(20, seed=3, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    port = PortfolioState(inst, Deadline.after(30))
    port.offer_plan(solve(inst, "svf").plan, "svf")
    assert volume_bound(inst) > port.bound
    worker = BoundWorker(port, port.plan, 10.0, {}, job=_dying_job)
    worker.finish(20.0)
    assert port.errors["bound-worker"] == "second process ended with exit code 3"
    assert (port.bound, port.bound_source) == (volume_bound(inst), "test")  # what it sent is kept


def _asking_job(out, instance, plan, wall_deadline, params):
    """A worker that asks for the parent's best plan and reports its objective as a "bound"."""
    import numpy as np

    out.send(("want", "plan", None))
    kind, _, starts = out.recv()
    assert kind == "plan"
    out.send(
        ("bound", "echo", int((np.asarray(starts) + instance.output_len - instance.arrival).sum()))
    )
    out.close()


def test_the_worker_gets_the_parents_best_plan_when_it_asks():
    """The worker's repack chain starts from the parent's best plan at that moment, not its start plan."""
    inst = random_instance(20, seed=3, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    port = PortfolioState(inst, Deadline.after(30))
    port.offer_plan(solve(inst, "fcfs").plan, "fcfs")
    first = port.plan
    better = solve(inst, "repack", SolveOptions(iteration_limit=200, warm_start=first)).plan
    assert better.total_latency < first.total_latency
    port.offer_plan(better, "repack")
    worker = BoundWorker(port, first, 10.0, {}, job=_asking_job)  # started with the worse plan
    worker.finish(20.0)
    assert "bound-worker" not in port.errors
    assert [h["lower_bound"] for h in port.history if h["source"] == "echo"] == [
        better.total_latency
    ]


def _plan_sending_job(out, instance, plan, wall_deadline, params):
    """A worker whose search found ``params["starts"]``: sends it, as the second repack chain does."""
    out.send(("plan", "repack-worker", params["starts"]))
    out.send(("phase", "repack-worker", 0.25))
    out.close()


def test_a_plan_from_the_worker_is_validated_and_offered():
    inst = random_instance(20, seed=3, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    port = PortfolioState(inst, Deadline.after(30))
    first = solve(inst, "fcfs").plan
    port.offer_plan(first, "fcfs")
    better = solve(inst, "repack", SolveOptions(iteration_limit=200, warm_start=first)).plan
    assert better.total_latency < first.total_latency
    starts = [int(x) for x in better.start_round]
    worker = BoundWorker(port, first, 10.0, {"starts": starts}, job=_plan_sending_job)
    worker.finish(20.0)
    assert (port.plan_source, port.objective) == ("repack-worker", better.total_latency)
    assert port.plan is not better and port.plan.violations() == []  # rebuilt and checked here
    assert port.phases == {"repack-worker": 0.25}
    assert not port.skipped and not port.errors  # it ended on its own: not stopped, not failed


def test_one_thread_keeps_every_phase_in_this_process():
    inst = random_instance(120, seed=12, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    res = solve(
        inst,
        "auto",
        SolveOptions(time_limit=10, seed=0, threads=1, params={"parallel_min_seconds": 0}),
    )
    assert res.plan is not None and res.plan.violations() == []
    assert "lagrange" in res.stats["phase_seconds"]
    assert "repack-worker" not in res.stats["phase_seconds"]
    assert busy_time_bound(inst) <= res.lower_bound <= res.objective
    _check_history(res)


def test_lns_is_not_started_when_loading_or_tools_would_overrun_the_limit(monkeypatch):
    """With less than ``lns_min_seconds`` left and OR-Tools not loaded yet, ``lns`` is skipped.

    The long ``repack`` then gets the share ``lns`` would have had; once OR-Tools is loaded, the
    same settings run ``lns``.
    """
    import scheduler_milp.portfolio.auto as auto_module

    inst = random_instance(120, seed=12, prompt_range=(5, 60), output_range=(1, 40), memory=400)
    opts = SolveOptions(
        time_limit=6, seed=0, threads=1, params={"lns_min_seconds": 1000, "repack_share": 0.5}
    )
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
    assert (
        max(busy_time_bound(inst), volume_bound(inst)) < solve(inst, "lp").lower_bound
    )  # only the LP closes it
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
    later = solve(
        inst,
        "auto",
        SolveOptions(time_limit=10, seed=0, threads=1, params={"exact_first_nonzeros": 0}),
    )
    phases = list(later.stats["phase_seconds"])
    assert phases.index("lagrange") < phases.index("exact"), phases
    assert later.status is Status.OPTIMAL and later.objective == first.objective
    _check_history(later)


def test_a_failing_method_is_an_error_not_a_decline(monkeypatch):
    """Only ``ModelTooLarge`` declines; a ``ValueError`` from a bug is reported as an error (a
    decline would hide that the portfolio lost its improvement phases)."""
    import scheduler_milp.heuristics.repack as repack_module

    def broken(*args, **kwargs):
        raise ValueError("zero-size array to reduction operation minimum which has no identity")

    monkeypatch.setattr(repack_module, "repack", broken)
    inst = random_instance(40, seed=5, prompt_range=(5, 60), output_range=(1, 40), memory=300)
    res = solve(inst, "auto", SolveOptions(time_limit=4, seed=0, threads=1))
    assert res.plan is not None and res.plan.violations() == []
    assert "repack" in res.stats["errors"] and "ValueError" in res.stats["errors"]["repack"]
    assert "repack" not in res.stats.get("skipped", {})


def _run_job_here(monkeypatch, inst, plan, params, answer=None):
    """``bound_job`` in this process on one end of a pipe, its Lagrangian phase replaced by a stub
    that offers a bound of 1 at once (``answer``: the parent's reply to the job's request for its
    best plan, sent in advance); the messages the job sent."""
    import scheduler_milp.portfolio.worker as worker_module

    monkeypatch.setattr(
        worker_module,
        "lagrange_bounds",
        lambda instance, plan, seconds, offer: offer("sawtooth", 1),
    )
    parent, child = Pipe(duplex=True)
    if answer is not None:
        parent.send(answer)
    handler = signal.getsignal(signal.SIGINT)  # the job ignores Ctrl-C (meant for its own process)
    try:
        bound_job(
            child, inst, plan, time.time() + 600.0, params
        )  # nothing in it waits for the time
    finally:
        signal.signal(signal.SIGINT, handler)
    messages = []
    with contextlib.suppress(EOFError):  # the job closed its end: EOF after the last message
        while parent.poll():
            messages.append(parent.recv())
    assert ("bound", "sawtooth", 1) in messages
    assert [name for kind, name, _ in messages if kind == "phase"] == ["lagrange", "repack-worker"]
    return messages


def _job_params(**changes):
    params = {"lagrange_share": 0.4, "lp_share": 0.3, "with_lp": False, "chain_from_insertion": False,
              "seed": 0, "solver": None}  # fmt: skip
    params.update(changes)
    assert set(params) == {f.name for f in dataclasses.fields(BoundJob)}
    return params


def test_the_worker_searches_the_insertion_basin_when_the_parents_chain_left_it(monkeypatch):
    """With ``chain_from_insertion`` the worker's repack chain starts from repack's insertion plan
    (``repack`` is replaced by a spy)."""
    import scheduler_milp.heuristics.repack as repack_module

    inst = random_instance(60, seed=4, prompt_range=(5, 60), output_range=(1, 40), memory=300)
    plan = solve(inst, "fcfs").plan
    seen = []

    def spy(instance, start, **kwargs):
        seen.append((start, kwargs))
        return start, {}

    monkeypatch.setattr(repack_module, "repack", spy)
    messages = _run_job_here(monkeypatch, inst, plan, _job_params(chain_from_insertion=True))
    assert not any(
        kind == "want" for kind, _, _ in messages
    )  # it did not ask for the parent's plan
    expected = repack_module.insertion_starts(
        inst, np.lexsort((np.arange(inst.n), inst.arrival, inst.volume))
    )
    assert len(seen) == 1
    start, kwargs = seen[0]
    assert np.array_equal(start.start_round, expected) and start.violations() == []
    assert kwargs["insertion"] is False  # no second construction of the same plan
    assert kwargs["seed"] == 2


def test_the_worker_chain_starts_from_the_parents_better_plan(monkeypatch):
    """Without ``chain_from_insertion`` the chain asks for the parent's best plan and starts from it."""
    import scheduler_milp.heuristics.repack as repack_module

    inst = random_instance(60, seed=4, prompt_range=(5, 60), output_range=(1, 40), memory=300)
    plan = solve(inst, "fcfs").plan
    theirs = solve(inst, "svf").plan
    assert theirs.total_latency < plan.total_latency
    seen = []

    def spy(instance, start, **kwargs):
        seen.append((start, kwargs))
        return start, {}

    monkeypatch.setattr(repack_module, "repack", spy)
    answer = ("plan", "plan", [int(x) for x in theirs.start_round])
    messages = _run_job_here(monkeypatch, inst, plan, _job_params(), answer=answer)
    assert ("want", "plan", None) in messages
    assert len(seen) == 1
    start, kwargs = seen[0]
    assert np.array_equal(start.start_round, theirs.start_round)
    assert kwargs["insertion"] is True  # repack builds its insertion plan too


def test_parameters_are_typed_and_unknown_ones_refused():
    parsed = AutoParams.parse({"parallel": "false", "exact_max_n": "12", "parallel_min_seconds": 0})
    assert parsed == AutoParams(parallel=False, exact_max_n=12, parallel_min_seconds=0.0)
    inst = random_instance(6, seed=0)
    with pytest.raises(ParameterError, match="'exact_maxn'.*valid: .*exact_max_n"):
        solve(inst, "auto", SolveOptions(time_limit=5, params={"exact_maxn": 3}))


def test_the_methods_auto_runs_get_none_of_its_parameters(monkeypatch):
    import scheduler_milp.registry as registry

    real = registry.solve
    calls = []

    def spy(instance, method, options=None):
        calls.append((method, dict(options.params)))
        return real(instance, method, options)

    monkeypatch.setattr(registry, "solve", spy)
    inst = random_instance(40, seed=5, prompt_range=(5, 60), output_range=(1, 40), memory=300)
    options = SolveOptions(
        time_limit=6, seed=0, threads=1, params={"fast_share": 0.5, "repack_share": 0.5}
    )
    res = real(inst, "auto", options)
    assert res.plan is not None and "errors" not in res.stats, res.stats
    assert {"svf", "repack"} <= {method for method, _ in calls}, calls
    assert all(params == {} for _, params in calls), calls


def test_the_early_exact_phase_gets_its_own_share_of_the_work(monkeypatch):
    """Phase 3 (a small model, often proven) takes ``exact_first_share`` of the work left for
    CP-SAT, not ``exact_share`` (phase 7's)."""
    from scheduler_milp.portfolio import auto

    taken: list[tuple[str, float]] = []
    original = auto._Run.take_work

    def recording(run: auto._Run, method: str, fraction: float) -> int:
        taken.append((method, fraction))
        return original(run, method, fraction)

    monkeypatch.setattr(auto._Run, "take_work", recording)
    share = 0.3  # neither default (0.9) nor exact_share
    params = {"work": 1, "exact_first_share": share, "exact_share": 0.5}
    res = solve(random_instance(10, 1), "auto", SolveOptions(seed=0, params=params))
    assert list(res.stats["phase_seconds"])[:3] == ["quick-bounds", "fast", "exact"]
    assert [f for m, f in taken if m == "cpsat"] == [share]
