"""``auto``: the portfolio that returns the best plan, the best proven bound and their certified gap.

The phases, in the order they run (the name in ``stats["phase_seconds"]`` in brackets).  Each is
capped by a share of the time *left when it starts*; the shares are :class:`AutoParams` fields.

1. **quick bounds** (``quick-bounds``): the volume and busy-time bounds
   (:mod:`scheduler_milp.bounds.simple`); the trivial bound ``sum o_i`` is the starting point.
2. **fast plans** (``fast``): the methods of :data:`~scheduler_milp.baselines.best.FAST_METHODS`
   one by one, ``svf`` first, then ``sf``; none is started after ``fast_share`` of the time or
   when it would not finish in time at the pace of the slowest so far.  The first always runs,
   even past the limit: there is no answer without a plan.
3. **early exact** (``exact``): when ``n <= exact_max_n`` and the time-indexed model is estimated
   at most ``exact_first_nonzeros`` nonzeros, the first exact method that accepts the size
   (``cpsat``, ``dp``, ``milp``), warm-started with the best plan, ``exact_first_share`` of the
   time: a model this small is often proven outright, and a proof ends the run.
4. **repack** (``repack``): :mod:`scheduler_milp.heuristics.repack` from the best plan,
   ``repack_first_share``: a better plan, so that the Lagrangian ascent has a tighter upper bound.
5. **bounds** (``lagrange``): :func:`scheduler_milp.bounds.lagrangian.lifted_lagrangian`,
   ``lagrange_share``: the sawtooth lift at the fluid prices, the ascent (the best plan as upper
   bound and initial prices), then the lift at its prices; lifts are offered as ``sawtooth``.
6. **LP** (``lp``): the registered ``lp`` when ``n`` is within its size limit, ``lp_share``.
7. **exact** (``exact``): as phase 3, when ``n <= exact_max_n`` but the model is too large to go
   first: after the bounds, warm-started with the best plan by then.
8. **long repack** (``repack-2``): ``repack`` again from the best plan (seed + 1),
   ``repack_share``; all of the time when ``lns`` could not start with the rest.
9. **lns** (``lns``): the large-neighbourhood search from the best plan, all the time left; not
   started with less than ``lns_min_seconds`` left while OR-Tools is not loaded yet (its first
   window loads it).

**Two processes.**  With ``options.threads >= 2``, ``parallel`` and a time limit of at least
``parallel_min_seconds``, phases 5 and 6 run in a second (spawned) process, started after phase 4
with 97% of the time left (:mod:`scheduler_milp.portfolio.worker`), while this process runs
phases 7 to 9.  The worker gives the Lagrangian ``lagrange_share`` of its time and the LP
``lp_share`` of what is left, then runs a second ``repack`` chain (seed + 2) with the rest: from
this process's best plan at that moment or, when phase 4 started from a fast plan better than
``repack``'s insertion plan by at most ``insertion_basin_within``, from the insertion plan.  Its
bounds and plans are offered the moment they arrive.  Otherwise (``threads=1``,
``parallel=false``, a shorter limit, or a process cannot be started) everything runs here, in the
order above.

**Time.**  ``options.time_limit`` (default :data:`DEFAULT_TIME_LIMIT`) is the run's
:class:`~scheduler_milp.model.deadline.Deadline` (``options.budget()``); the phases end
``reserve`` seconds before it (scaled by ``limit / 10`` below 10 s), kept for building the result,
and the second process is waited for until then.  The shares are of wall-clock time, so two runs
with the same seed can differ when the machine's speed or load differs.

**Deterministic mode.**  With ``work`` (an :class:`AutoParams` field, ``--param work=W``) or else
``options.iteration_limit`` set, every phase gets a share of the *work* left instead of the time
left (the same shares), counted in work units (:data:`WORK_UNIT`): ``repack`` a number of moves,
the Lagrangian a number of subgradient steps (no column generation, whose master LPs have no work
limit), the LP a number of simplex iterations, ``cpsat`` a deterministic time with one worker,
``lns`` a number of windows (CP-SAT with one worker and a deterministic limit each).  Everything
runs in this process, in the order above, with one thread; every fast method runs.  Without a
time limit nothing reads the clock, so the same instance, seed and work give the same plan and
bound on any machine and load; a time limit given as well is a safety net only (a run it cuts
short ends with stop reason ``time_limit`` and is not reproducible).  A run that used its work
ends with stop reason ``iteration_limit``.

**Result.**  The run stops as soon as the bound meets the objective (status ``optimal``, derived
by :class:`~scheduler_milp.model.result.SolveResult`).  A phase whose method declines the instance
(:class:`~scheduler_milp.model.result.ModelTooLarge`) or fails is noted in ``stats["skipped"]`` /
``stats["errors"]``, and the best valid plan found is returned.  Every improvement of the plan or
the bound is logged to ``scheduler_milp.portfolio.auto`` and kept in ``stats["history"]``;
``stats["plan_source"]`` and ``stats["bound_source"]`` name the winners.  Measurements of the
phases are in docs/portfolio.md.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..formulations.timeindexed import estimate_nonzeros
from ..heuristics.lns import WHOLE_WINDOW_BOUND_SOURCE
from ..model.deadline import Deadline
from ..model.instance import Instance
from ..model.params import MethodParams
from ..model.plan import Plan
from ..model.result import (
    TRIVIAL_BOUND_SOURCE,
    ModelTooLarge,
    SolveOptions,
    SolveResult,
    StopReason,
)
from .state import PortfolioState
from .worker import BoundJob, BoundWorker, lagrange_bounds, lp_bound

log = logging.getLogger(__name__)

#: Seconds used when the caller gives no time limit.
DEFAULT_TIME_LIMIT = 60.0

#: the exact methods phases 3 and 7 try, in this order (the first that accepts the size runs)
EXACT_METHODS = ("cpsat", "dp", "milp")

#: what one unit of ``work`` buys each phase in deterministic mode: about half a second of one
#: core on the 1,000-request benchmark backlogs (docs/portfolio.md, "Deterministic mode")
WORK_UNIT: dict[str, float] = {
    "repack": 2_000,  # moves
    "lagrange": 30,  # subgradient steps (column generation's master LPs have no work limit)
    "lp": 2_000,  # simplex iterations
    "cpsat": 1.0,  # CP-SAT deterministic time (one worker)
    "lns": 1,  # windows
}


@dataclass(frozen=True)
class AutoParams(MethodParams):
    """``auto``'s ``--param`` keys.  A share is of the time left when the phase starts."""

    exact_max_n: int = 30  # the exact phase runs when n is at most this
    exact_first_nonzeros: int = (
        200_000  # ... before the bounds when its model is estimated at most this large
    )
    fast_share: float = 0.25  # no fast method after the first starts beyond this share
    exact_first_share: float = 0.9  # phase 3 (a small model, often proven)
    exact_share: float = 0.6  # phase 7 (a larger model, after the bounds)
    ls_share: float = (
        0.4  # has no effect (ls would replace repack in phase 8; repack is always registered)
    )
    repack_first_share: float = 0.03  # phase 4
    repack_share: float = 0.95  # phase 8; lns gets the rest
    lagrange_share: float = 0.4
    lp_share: float = 0.3
    reserve: float = (
        0.5  # seconds kept back for building the result (scaled down below 10 s limits)
    )
    # the worker's repack chain starts from the insertion plan when phase 4 started from a fast plan
    # better than it by at most this fraction (a much worse insertion plan has a worse basin)
    insertion_basin_within: float = 0.10
    parallel: bool = True  # with threads >= 2: the bound phases run in a second process
    parallel_min_seconds: float = (
        10.0  # below this time limit a second process does not pay for its start
    )
    lns_min_seconds: float = 1.0  # lns does not start with less left while OR-Tools is not loaded
    # deterministic mode: the run's work in units of WORK_UNIT (None: options.iteration_limit;
    # both None: wall-clock shares)
    work: int | None = None


def _cp_sat_loaded() -> bool:
    """Whether OR-Tools' CP-SAT is imported in this process already (``lns`` windows need it)."""
    return "ortools.sat.python.cp_model" in sys.modules


def _accepts(method: str, n: int) -> bool:
    """Whether the registered ``method`` accepts ``n`` requests (its registered size limit)."""
    from ..registry import METHODS

    limit = METHODS[method].max_n
    return limit is None or n <= limit


@dataclass
class _Run:
    """One ``auto`` run: its inputs, parameters and state, shared by the phases."""

    instance: Instance
    options: SolveOptions
    params: AutoParams
    state: PortfolioState
    limit: float  # the time limit in seconds (the default one when none was given)
    work: float | None = None  # deterministic mode: the work units left (None: wall-clock shares)
    work_given: int | None = None  # deterministic mode: the run's work

    @property
    def deterministic(self) -> bool:
        """Whether the phases get shares of the work instead of the time (module docstring)."""
        return self.work is not None

    def take_work(self, method: str, share: float) -> int:
        """Deterministic mode: ``share`` of the work left, taken from it, in ``method``'s own
        units (:data:`WORK_UNIT`, at least 1)."""
        assert self.work is not None
        units = share * self.work
        self.work -= units
        return max(1, round(units * WORK_UNIT[method]))

    def phase(self, name: str, fn: Callable[[_Run], None]) -> None:
        """Run ``fn`` as phase ``name``: not once the plan is proven or the time is up;
        ``ModelTooLarge`` is noted as skipped, any other exception as an error."""
        state = self.state
        if state.should_stop():
            return
        if state.left() <= 0.05:
            state.skipped[name] = "no time left"
            return
        t0 = time.perf_counter()
        try:
            fn(self)
        except ModelTooLarge as err:  # the registry's convention for "declines this instance"
            state.skipped[name] = str(err)
            log.info("auto: phase %s declined: %s", name, err)
        except Exception as err:  # a failing method must not sink the portfolio; noted in stats
            state.errors[name] = f"{type(err).__name__}: {err}"
            log.warning("auto: phase %s failed: %s", name, state.errors[name])
        state.add_phase_seconds(name, time.perf_counter() - t0)

    def sub_options(
        self,
        seconds: float,
        warm: bool = True,
        seed_offset: int = 0,
        progress: Callable[[Plan], None] | None = None,
        iterations: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> SolveOptions:
        """Options of a method run by a phase: ``seconds`` (at least 0.05), no parameters of its own
        but ``params``, warm-started with the best plan, stopped once a bound proves the plan
        optimal.  Deterministic mode: ``iterations`` and one thread, and instead of ``seconds`` the
        time left when a time limit was given (a safety net), none otherwise."""
        time_limit: float | None = max(0.05, seconds)
        if self.deterministic:
            time_limit = max(0.05, self.state.left()) if self.state.deadline.limited else None
        return SolveOptions(
            time_limit=time_limit,
            seed=self.options.seed + seed_offset,
            threads=1 if self.deterministic else self.options.threads,
            solver=self.options.solver,
            warm_start=self.state.plan if warm else None,
            iteration_limit=iterations,
            params=dict(params or {}),
            verbose=False,  # -v asks for auto's progress lines, not every solver's log
            stop=self.state.should_stop,  # a proof from the second process, or the caller's stop
            progress=progress,
        )

    def solve(self, method: str, options: SolveOptions) -> SolveResult:
        """Run a registered method on the instance."""
        from ..registry import solve

        return solve(self.instance, method, options)


def _start(instance: Instance, options: SolveOptions) -> _Run:
    """The run's parameters and state (the phases end ``reserve`` before the time limit), with the
    caller's warm start, if any, offered like any other plan (validated at the end).  In
    deterministic mode a run without a time limit has none (not the default one)."""
    params = AutoParams.of(options)
    work = params.work if params.work is not None else options.iteration_limit
    limit = DEFAULT_TIME_LIMIT if options.time_limit is None else float(options.time_limit)
    budget = options.budget()
    if not budget.limited and work is None:  # no time limit given: the default one, from now
        budget = Deadline.after(limit)
    deadline = (
        Deadline(budget.at - params.reserve * min(1.0, limit / 10)) if budget.limited else budget
    )
    state = PortfolioState(
        instance, deadline, interrupted=options.stop, on_improvement=options.on_improvement
    )
    run = _Run(instance, options, params, state, limit, None if work is None else float(work), work)
    run.state.offer_plan(options.warm_start, "warm_start")
    return run


def _warm_up(run: _Run) -> None:
    """Start compiling (or loading) the kernels of ``repack`` and, when the bound phases will run
    in this process, of the sawtooth lift, in the background while the first phases run."""
    from ..bounds.lagrangian import LIFT_WARMUP
    from ..heuristics.profile import WARMUP

    WARMUP.start()
    p = run.params
    if run.deterministic or not (
        run.options.threads >= 2 and p.parallel and run.limit >= p.parallel_min_seconds
    ):
        LIFT_WARMUP.start()


def quick_bounds(run: _Run) -> None:
    """Phase 1: the volume and busy-time bounds (no plan needed; the gap is known with the first plan)."""
    from ..bounds.simple import busy_time_bound, volume_bound

    run.state.offer_bound(volume_bound(run.instance), "volume")
    run.state.offer_bound(busy_time_bound(run.instance), "busy-time")  # O(n log n)


def fast_plans(run: _Run) -> None:
    """Phase 2: the fast methods one by one, ``svf`` first, within ``fast_share`` (the first always runs)."""
    from ..baselines.best import FAST_METHODS, best_first

    state = run.state
    until = state.deadline.share(run.params.fast_share)
    slowest = 0.0
    for name in best_first(FAST_METHODS):
        # deterministic mode: every fast method runs (unless a safety-net time limit passed)
        pace = not run.deterministic and (
            state.left() < 1.5 * slowest or until.remaining() < slowest
        )
        if state.plan is not None and (pace or state.left() <= 0):
            state.skipped[name] = "no time left"
            continue
        t0 = time.perf_counter()
        _fast_plan(run, name)
        slowest = max(slowest, time.perf_counter() - t0)


def _fast_plan(run: _Run, name: str) -> None:
    """Offer the plan of the fast method ``name`` (the first without a time limit, the others
    stopped at the deadline); a decline or a failure is noted, not raised."""
    state = run.state
    options = run.sub_options(state.left(), warm=False)
    if state.plan is None:  # there is no answer without a plan: the first runs to its end
        options.time_limit = None
    try:
        state.offer_plan(run.solve(name, options).plan, name)
    except (ModelTooLarge, RuntimeError) as err:  # declines the instance, or ran out of time
        state.skipped[name] = str(err)
    except Exception as err:  # a bug in one method must not cost the others their turn
        state.errors[name] = f"{type(err).__name__}: {err}"
        log.warning("auto: method %s failed: %s", name, state.errors[name])


def exact_goes_first(run: _Run) -> bool:
    """Whether the exact phase runs right after the fast plans (phase 3) rather than after the bounds."""
    plan = run.state.plan
    return (
        run.instance.n <= run.params.exact_max_n
        and plan is not None
        and estimate_nonzeros(run.instance, plan.total_latency) <= run.params.exact_first_nonzeros
    )


def early_exact(run: _Run) -> None:
    """Phase 3: :func:`exact` with ``exact_first_share`` of the time or work left."""
    _exact(run, run.params.exact_first_share)


def exact(run: _Run) -> None:
    """Phase 7: :func:`exact` with ``exact_share`` of the time or work left."""
    _exact(run, run.params.exact_share)


def _exact(run: _Run, share: float) -> None:
    """The first exact method that accepts the size, warm-started, ``share`` of the time left
    (deterministic mode: ``cpsat`` only, with ``share`` of the work as deterministic time)."""
    methods = ("cpsat",) if run.deterministic else EXACT_METHODS
    name = next((m for m in methods if _accepts(m, run.instance.n)), None)
    if name is None:
        run.state.skipped["exact"] = "no exact method accepts this size"
        return
    if run.deterministic:
        dtime = run.take_work("cpsat", share)
        options = run.sub_options(0.0, params={"deterministic_time": dtime})
    else:
        options = run.sub_options(run.state.left() * share)
    res = run.solve(name, options)
    run.state.offer_plan(res.plan, name)
    if res.lower_bound is not None and res.stats.get("bound_source") != TRIVIAL_BOUND_SOURCE:
        run.state.offer_bound(res.lower_bound, name)


def _repack(run: _Run, phase: str, fraction: float, seed_offset: int = 0) -> None:
    """``repack`` from the best plan for ``fraction`` of the time left; its improvements are
    offered as they come, its stats kept in ``state.searched[phase]``."""
    state = run.state

    def progress(plan: Plan) -> None:  # a long search's best so far: logged and in the history now
        state.offer_plan(plan, "repack")

    moves = run.take_work("repack", fraction) if run.deterministic else None
    res = run.solve(
        "repack",
        run.sub_options(
            state.left() * fraction, seed_offset=seed_offset, progress=progress, iterations=moves
        ),
    )
    state.offer_plan(res.plan, "repack")
    state.searched[phase] = res.stats
    if res.stop_reason is StopReason.STOPPED:  # ended by state.closed(): a bound met the plan
        state.stopped_early.append(phase)


def first_repack(run: _Run) -> None:
    """Phase 4: a short ``repack`` (``repack_first_share``), so that the bounds start from a better plan."""
    _repack(run, "repack", run.params.repack_first_share)


def insertion_basin_unused(run: _Run) -> bool:
    """Whether phase 4 started from a fast plan better than ``repack``'s insertion plan, by at most
    ``insertion_basin_within``: the worker's chain then searches the insertion plan's basin."""
    short = run.state.searched.get("repack", {})
    insertion = short.get("insertion_objective")
    if insertion is None:
        return False
    start = short["start_objective"]
    return bool(start <= insertion <= (1 + run.params.insertion_basin_within) * start)


def start_bound_worker(run: _Run) -> BoundWorker | None:
    """The second process for phases 5 and 6 with 97% of the time left, when two processes are
    allowed and worth it (``None`` otherwise, or when it cannot be started)."""
    state, params, plan = run.state, run.params, run.state.plan
    wanted = (
        not state.closed()
        and run.options.threads >= 2
        and params.parallel
        and not run.deterministic
        and run.limit >= params.parallel_min_seconds
        and state.left() > 1.0
    )
    if plan is None or not wanted:
        return None
    seconds = 0.97 * state.left()
    job = BoundJob(
        lagrange_share=params.lagrange_share,
        lp_share=params.lp_share,
        with_lp=_accepts("lp", run.instance.n),
        chain_from_insertion=insertion_basin_unused(run),
        seed=run.options.seed,
        solver=run.options.solver,
    )
    try:
        worker = BoundWorker(state, plan, seconds, dataclasses.asdict(job))
    except (AssertionError, OSError, RuntimeError) as err:  # e.g. inside a daemonic pool worker
        log.info("auto: no second process (%s); bound phases run here", err)
        return None
    log.info("auto: bound phases in a second process (%.1fs)", seconds)
    return worker


def lagrange(run: _Run) -> None:
    """Phase 5 (in this process): the Lagrangian bounds and their lifts, ``lagrange_share``."""
    plan = run.state.plan
    assert plan is not None
    offer = run.state.offer_bound
    if run.deterministic:  # iterations instead of seconds (no clock, or the safety net's)
        iterations = run.take_work("lagrange", run.params.lagrange_share)
        left = run.state.left() if run.state.deadline.limited else None
        lagrange_bounds(
            run.instance, plan, left, lambda s, b: offer(b, s), iterations, "subgradient"
        )
        return
    lagrange_bounds(
        run.instance,
        plan,
        run.state.left() * run.params.lagrange_share,
        lambda source, bound: offer(bound, source),
    )


def lp(run: _Run) -> None:
    """Phase 6 (in this process): the LP bound and its plan, ``lp_share`` (deterministic mode: of
    the work, as simplex iterations)."""
    if run.deterministic:
        limit = run.take_work("lp", run.params.lp_share)
        options = run.sub_options(0.0, params={"iteration_limit": limit})
    else:
        options = run.sub_options(run.state.left() * run.params.lp_share)
    plan, bound = lp_bound(run.instance, options)
    run.state.offer_plan(plan, "lp")
    run.state.offer_bound(bound, "lp")


def lp_phase(run: _Run, here: bool) -> None:
    """Phase 6 where it applies: run here (``here``: not in the second process), or noted as skipped
    when ``n`` is beyond ``lp``'s size limit."""
    if not _accepts("lp", run.instance.n):
        run.state.skipped["lp"] = "instance beyond its size limit"
    elif here:
        run.phase("lp", lp)


def _lns_cannot_start(run: _Run, seconds: float) -> bool:
    """Whether ``lns`` would be skipped with ``seconds`` left (too short to load OR-Tools first;
    never in deterministic mode, where it waits for the import)."""
    return not run.deterministic and seconds < run.params.lns_min_seconds and not _cp_sat_loaded()


def long_repack(run: _Run) -> None:
    """Phase 8: ``repack`` from the best plan (seed + 1), ``repack_share``, or all of the time when
    ``lns`` could not start with the rest (which would then go unused)."""
    fraction = run.params.repack_share
    if _lns_cannot_start(run, (1.0 - fraction) * run.state.left()):
        fraction = 1.0
    _repack(run, "repack-2", fraction, seed_offset=1)


def lns(run: _Run) -> None:
    """Phase 9: ``lns`` from the best plan with all the time left (deterministic mode: all the work
    left, as windows); a bound only when a window covered the whole instance."""
    if run.deterministic:
        windows = run.take_work("lns", 1.0)
        # the windows' work limits decide; the wall-clock cap per window is the safety net only
        options = run.sub_options(0.0, iterations=windows, params={"window_time": 1e9})
    else:
        options = run.sub_options(run.state.left())
    res = run.solve("lns", options)
    run.state.offer_plan(res.plan, "lns")
    if res.stats.get("bound_source") == WHOLE_WINDOW_BOUND_SOURCE:
        run.state.offer_bound(res.lower_bound, "lns")
    if res.stop_reason is StopReason.STOPPED:
        run.state.stopped_early.append("lns")


def lns_phase(run: _Run) -> None:
    """Phase 9, unless too little time is left to load OR-Tools for its windows (noted as skipped)."""
    left = run.state.left()
    if not run.state.closed() and left > 0.05 and _lns_cannot_start(run, left):
        run.state.skipped["lns"] = (
            f"{left:.2f} s left, less than loading OR-Tools for its windows may take"
        )
    else:
        run.phase("lns", lns)


def _result(run: _Run) -> SolveResult:
    """The best plan (``svf``'s when every phase failed), the best bound and the stats."""
    state = run.state
    if state.plan is None:  # every phase failed: still answer with a plan (the shared start rule)
        from ..baselines.serving import solve_svf

        state.offer_plan(solve_svf(run.instance, SolveOptions()).plan, "svf")
    elapsed = state.elapsed()
    if state.closed():
        stop = StopReason.COMPLETED
    elif state.interrupted():
        stop = StopReason.STOPPED
    elif state.left() <= 0.05:
        stop = StopReason.TIME_LIMIT
    else:
        stop = StopReason.ITERATION_LIMIT if run.deterministic else StopReason.COMPLETED
    extra: dict[str, Any] = {"time_limit": run.limit}
    if run.deterministic:  # the time limit is the caller's (a safety net) or none
        extra = {"time_limit": run.options.time_limit, "work": run.work_given}
    result = SolveResult(
        "auto",
        run.instance,
        state.plan,
        lower_bound=state.bound,
        stop_reason=stop,
        build_seconds=0.0,
        solve_seconds=elapsed,
        stats=state.stats(**extra),
    )
    log.info("auto: done in %.2fs, objective %s, bound %d", elapsed, state.objective, state.bound)
    return result


def solve_auto(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``auto``: the phases of the module docstring, in order; the best plan and bound of all.

    ``--param`` keys: the fields of :class:`AutoParams` (others raise
    :class:`~scheduler_milp.model.params.ParameterError`).  The time limit (default
    :data:`DEFAULT_TIME_LIMIT` seconds) covers everything, model building included.
    """
    options = options or SolveOptions()
    run = _start(instance, options)
    _warm_up(run)
    run.phase("quick-bounds", quick_bounds)
    run.phase("fast", fast_plans)
    early = exact_goes_first(run)
    if early:
        run.phase("exact", early_exact)
    if run.state.plan is not None:
        run.phase("repack", first_repack)
    worker = start_bound_worker(run)  # phases 5 and 6 in a second process, when it is started
    if worker is None and run.state.plan is not None:
        run.phase("lagrange", lagrange)
    lp_phase(run, here=worker is None)
    if not early and instance.n <= run.params.exact_max_n:
        run.phase("exact", exact)
    run.phase("repack-2", long_repack)
    lns_phase(run)
    if worker is not None:  # its results are offered already; wait for the rest until the deadline
        worker.finish(0.0 if run.state.should_stop() else run.state.left())
    return _result(run)
