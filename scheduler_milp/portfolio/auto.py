"""``auto``: the portfolio that returns the best plan, the best proven bound and their certified gap.

Within ``options.time_limit`` seconds (default :data:`DEFAULT_TIME_LIMIT`; model building counts)
it runs, in this order, each phase capped by its share of the time *still left* when it starts:

1. **quick bounds**: ``sum o_i``, the volume and busy-time bounds (:mod:`scheduler_milp.bounds`);
2. **fast plans**: the methods of ``heuristics.FAST_METHODS`` (``svf`` first, then ``sf``), one by
   one, none started after 25% of the time or when it would not finish in time at the pace of the
   slowest so far; the first plan is always computed, even when it alone takes longer than the
   limit (there is no answer without a plan);
3. **repack** (plan-space local search, :mod:`scheduler_milp.heuristics.repack`), warm-started,
   3% of the time left: its insertion construction alone is 8-12% better than ``svf`` on packed
   backlogs, so the Lagrangian ascent gets a much better upper bound and the gap is known early;
4. **Lagrangian bounds** (:func:`scheduler_milp.bounds.lifted_lagrangian`), 40% of the time left:
   first the sawtooth lift at the fluid prices (:func:`scheduler_milp.bounds.fluid_lift`, at most
   half of the phase; 1-18 s on 1,000 requests, about a minute on the whole 19,366-request trace),
   then the ascent (:func:`scheduler_milp.bounds.lagrangian`, the best plan as upper bound and
   initial prices), the last tenth of it for the lift at its prices
   (:func:`scheduler_milp.bounds.sawtooth_lift`); lifts are offered as ``sawtooth``;
5. **LP bound** (registered ``lp``, only when ``n`` is within its size limit), 30% of the time left;
6. **exact model** for tiny instances only (``n <= exact_max_n``): ``cpsat`` (or ``dp``) warm-started
   with the best plan, 60% of the time left; on small instances this usually proves optimality.
   When its time-indexed model is small (at most ``exact_first_nonzeros``, 200,000, estimated) it
   runs right after phase 2 instead, before anything else: it often proves the fast plan optimal
   in milliseconds.  A large one (full-scale token counts: 4 million for 20 requests) waits for
   the bounds; in first place it held the gap at the fast plan's 8.4% for the 35 s CP-SAT spent
   in vain, where phases 3-4 give 2.8% within 3 s;
7. **local search**: ``repack`` again from the best plan (seed + 1), 95% of the time left, all of
   it when ``lns`` could not start with the rest (``ls``, 40%, when ``repack`` is not registered);
8. **large-neighbourhood search** ``lns`` warm-started with the best plan, all the time left (after
   ``repack`` it gained at most 0.002% in 14 benchmark runs of 27-170 s each, where ``repack``
   still gains about 0.04% per 10 s at the end of a 120 s run, so it gets only the last 5%; on tiny instances its first
   window covers everything and can prove the plan optimal); not started with less than
   ``lns_min_seconds`` (1 s) left while OR-Tools is not loaded yet (loading it takes about 0.55 s).

**Two processes.**  With ``options.threads >= 2`` (the default) and a time limit of at least
``parallel_min_seconds``, phases 4 and 5 run in a second (spawned) process, started right after
phase 3 with the best plan so far, while this process runs phases 6 to 8: the Lagrangian column
generation and the local search each get a core instead of sharing one.  Each bound is offered to
the portfolio (and logged) the moment the worker sends it.  With the time left the worker runs a
second ``repack`` chain: from this process's best plan at that moment, or, when phase 3 started
from a fast plan better than ``repack``'s insertion plan (by at most ``insertion_basin_within``,
10%), from the insertion plan, whose basin is often the better one.  ``threads=1`` (the
experiment runner's setting, whose workers cannot start processes anyway) or ``--param parallel=false`` keeps
everything in one process, in the order above; when the second process cannot be started, the
same happens.

It stops as soon as the bound meets the objective (then the status is ``optimal``, derived by
:class:`~scheduler_milp.model.result.SolveResult`).  A phase whose method is missing, declines the
instance or fails is skipped and noted in ``stats["skipped"]`` / ``stats["errors"]``; the portfolio
always returns the best valid plan found.  Every improvement of the plan or the bound is logged to
``scheduler_milp.portfolio.auto`` (elapsed, best objective, best bound, gap) and kept in ``stats["history"]``;
``stats["plan_source"]`` and ``stats["bound_source"]`` name the winners.

The phases' budgets are wall-clock shares, so two runs with the same seed can differ when the
machine's speed or load differs (each phase is seeded; ``lns`` alone is reproducible given an
iteration budget).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..formulations.timeindexed import estimate_nonzeros
from ..model.instance import Instance
from ..model.plan import Plan
from ..model.result import ModelTooLarge, SolveOptions, SolveResult, StopReason, gap

log = logging.getLogger(__name__)

#: Seconds used when the caller gives no time limit.
DEFAULT_TIME_LIMIT = 60.0

DEFAULTS: dict[str, Any] = {
    "exact_max_n": 30,  # run an exact model when n is at most this
    "exact_first_nonzeros": 200_000,  # ... before the bounds when its model is at most this large
    "fast_share": 0.25,  # no further fast heuristic starts after this share (the first always runs)
    "exact_share": 0.6,
    "ls_share": 0.4,
    "repack_first_share": 0.03,  # a short repack before the Lagrangian ascent: the insertion plan early
    "repack_share": 0.95,  # repack again after the bounds, from the best plan; lns gets the rest
    "lagrange_share": 0.4,
    "lp_share": 0.3,
    "reserve": 0.5,  # seconds kept back for building the result and validation
    # the second process's repack chain searches the insertion plan's basin when the parent's chain
    # started from a better fast plan, unless the insertion plan is more than this much worse (with
    # arrivals it can be 44% worse, and its basin is then worse too)
    "insertion_basin_within": 0.10,
    "parallel": True,  # with threads >= 2: the bound phases run in a second process beside the plan phases
    "parallel_min_seconds": 10.0,  # below this time limit a second process does not pay for its start-up
    # lns is not started with less time left than this while OR-Tools is not loaded yet: its first
    # window loads it (about 0.55 s), which overran 5 s limits by 0.25-0.35 s
    "lns_min_seconds": 1.0,
}


def _cp_sat_loaded() -> bool:
    """Whether OR-Tools' CP-SAT is imported in this process already (``lns`` windows need it)."""
    return "ortools.sat.python.cp_model" in sys.modules


class _Portfolio:
    """Best plan and best bound so far, with the history of their improvements."""

    def __init__(self, instance: Instance, started: float, deadline: float):
        self.instance = instance
        self.started = started
        self.deadline = deadline
        self.plan: Plan | None = None
        self.plan_source = ""
        self.bound = instance.trivial_lower_bound()
        self.bound_source = "sum_output"
        self.history: list[dict[str, Any]] = []
        self.phases: dict[str, float] = {}
        self.skipped: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.stopped_early: list[str] = []
        # offers come from the main thread and from the bound worker's listener thread
        self._lock = threading.RLock()
        self._note("sum_output")

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    @property
    def objective(self) -> int | None:
        return None if self.plan is None else int(self.plan.total_latency)

    @property
    def gap(self) -> float | None:
        return gap(self.objective, self.bound)

    def closed(self) -> bool:
        return self.plan is not None and self.bound >= self.plan.total_latency

    def offer_plan(self, plan: Plan | None, source: str) -> None:
        if plan is None:
            return
        with self._lock:
            if self.plan is None or plan.total_latency < self.plan.total_latency:
                self.plan, self.plan_source = plan, source
                self._note(source)

    def offer_bound(self, value: int | None, source: str) -> None:
        with self._lock:
            if value is not None and value > self.bound:
                self.bound, self.bound_source = int(value), source
                self._note(source)

    def _note(self, source: str) -> None:
        g = self.gap
        entry = {
            "seconds": round(self.elapsed(), 3),
            "objective": self.objective,
            "lower_bound": self.bound,
            "gap": g,
            "source": source,
        }
        self.history.append(entry)
        log.info(
            "auto: %7.2fs  best %s  bound %d  gap %s  (%s)",
            entry["seconds"],
            "-" if self.objective is None else self.objective,
            self.bound,
            "-" if g is None else f"{100 * g:.3f}%",
            source,
        )


def _lagrange_bounds(instance: Instance, plan: Plan, seconds: float, offer: Callable[[str, int], None]) -> None:
    """Offer the sawtooth lift at the fluid prices, the Lagrangian bound (``plan`` as upper bound,
    horizon and initial prices), then the lift at its prices, each as soon as it is known."""
    from ..bounds.lagrangian import lifted_lagrangian

    lifted_lagrangian(instance, seconds, offer=offer, ub=plan.total_latency, iterations=10_000, plan=plan)


def _lp_bound(instance: Instance, options: SolveOptions) -> tuple[Plan | None, int | None]:
    """The registered ``lp``: its plan and its bound (``None`` when it only reached ``sum o``)."""
    from ..registry import solve

    res = solve(instance, "lp", options)
    return res.plan, (None if res.stats.get("bound_source") == "sum_output" else res.lower_bound)


def _bound_job(out: Connection, instance: Instance, plan: Plan, wall_deadline: float, params: dict[str, Any]) -> None:
    """The bound phases (Lagrangian, then LP when ``n`` is within its limit), in a second process.

    With the time left it runs a second ``repack`` chain (seed + 2) from the parent's best plan
    at that moment (asked for with ``("want", "plan", None)``; the parent's own chain has improved
    it meanwhile), or from ``plan`` when no answer comes; with ``params["chain_from_insertion"]``
    (the parent's chain started from a fast plan) from ``repack``'s insertion plan instead.
    Sends ``("bound", source, value)`` as soon as each bound is known, ``("plan", source, start
    rounds)``, ``("phase", name, seconds)`` and ``("skipped" | "error", name, text)``; the pipe's end tells the parent it is done.
    ``wall_deadline`` is ``time.time()`` at the parent's deadline: the wall clock is the one both
    processes share, so the job ends on the parent's clock however long this process took to start.
    """

    # Ctrl-C reaches the whole process group: the parent handles it (and ends this daemonic process)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    budget = max(0.0, wall_deadline - time.time())  # less what spawning and imports took
    deadline = time.perf_counter() + budget
    best_bound = 0

    def phase(name: str, fn: Callable[[], None]) -> None:
        # the parent's run_phase conventions: ModelTooLarge declines, anything else is an error
        t0 = time.perf_counter()
        try:
            fn()
        except ModelTooLarge as err:
            out.send(("skipped", name, str(err)))
        except Exception as err:  # reported to the parent, which notes it in stats["errors"]
            out.send(("error", name, f"{type(err).__name__}: {err}"))
        out.send(("phase", name, time.perf_counter() - t0))

    def offer(source: str, bound: int | None) -> None:
        nonlocal best_bound
        if bound is not None:
            out.send(("bound", source, bound))
            best_bound = max(best_bound, bound)

    def lagrange() -> None:
        _lagrange_bounds(instance, plan, budget * float(params["lagrange_share"]), offer)

    def lp() -> None:
        left = deadline - time.perf_counter()
        opts = SolveOptions(time_limit=left * float(params["lp_share"]), seed=params["seed"], threads=1, solver=params["solver"])
        offer("lp", _lp_bound(instance, opts)[1])

    def second_chain() -> None:
        from ..heuristics.repack import insertion_order, insertion_starts, repack

        def send_plan(better: Plan) -> None:  # its best so far (throttled by repack) and its last
            out.send(("plan", "repack-worker", [int(x) for x in better.start_round]))

        start = plan
        built = None
        if params.get("chain_from_insertion"):  # the parent's chain left this basin: search it here
            built = insertion_starts(instance, insertion_order(instance), deadline)
        if built is not None:
            start = Plan.checked(instance, built)
        else:
            out.send(("want", "plan", None))
            if out.poll(5.0):  # the parent's best plan now (validated there; checked again, it is cheap)
                kind, _, starts = out.recv()
                if kind == "plan" and starts is not None:
                    theirs = Plan.checked(instance, np.asarray(starts, dtype=np.int64))
                    start = theirs if theirs.total_latency < plan.total_latency else plan
        better, _ = repack(
            instance, start, seed=params["seed"] + 2, time_limit=deadline - time.perf_counter() - 0.5, progress=send_plan,
            insertion=built is None,  # the insertion plan is the start already
        )
        if better.total_latency < start.total_latency:
            send_plan(better)

    try:
        phase("lagrange", lagrange)
        if params["with_lp"] and deadline - time.perf_counter() > 0.05:
            phase("lp", lp)
        # the core is free until the deadline: a second repack chain, unless the plan is proven
        if params["repack"] and deadline - time.perf_counter() > 1.0 and best_bound < plan.total_latency:
            phase("repack-worker", second_chain)
    finally:
        out.close()


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Hide ``__main__``'s file and spec while a ``spawn`` child starts.

    A spawned child first imports the parent's main module, so a user's script without an
    ``if __name__ == "__main__"`` guard would run again in it (the whole solve, a second time, and
    the worker's bounds lost).  The worker's target lives in this package and needs nothing from
    ``__main__``; without a file or spec, multiprocessing leaves it alone.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {key: main.__dict__[key] for key in ("__file__", "__spec__") if key in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class _BoundWorker:
    """Runs :func:`_bound_job` in a spawned process; a listener thread offers its bounds to the portfolio.

    ``spawn`` (not ``fork``): the parent may hold solver threads (HiGHS, CP-SAT), which a forked
    child would inherit in an undefined state.
    """

    def __init__(
        self, port: _Portfolio, plan: Plan, seconds: float, params: dict[str, Any], job: Callable[..., None] = _bound_job
    ):
        ctx = multiprocessing.get_context("spawn")
        self.port = port
        recv, send = ctx.Pipe(duplex=True)  # the worker asks for the best plan through it too
        self.recv = recv
        self.proc = ctx.Process(target=job, args=(send, port.instance, plan, time.time() + seconds, params), daemon=True)
        with _main_module_hidden():
            self.proc.start()  # raises in a daemonic process (a pool worker): the caller runs the phases itself
        send.close()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        port = self.port
        try:
            while True:
                kind, name, value = self.recv.recv()
                if kind == "bound":
                    port.offer_bound(int(value), name)
                elif kind == "plan":  # validated here, in this process, like every plan auto returns
                    port.offer_plan(Plan.checked(port.instance, np.asarray(value, dtype=np.int64)), name)
                elif kind == "want":  # the worker starts its own repack chain: from the best plan now
                    best = port.plan
                    self.recv.send(("plan", name, None if best is None else [int(x) for x in best.start_round]))
                elif kind == "phase":
                    port.phases[name] = round(port.phases.get(name, 0.0) + float(value), 3)
                elif kind == "skipped":
                    port.skipped[name] = str(value)
                else:
                    port.errors[name] = str(value)
                    log.warning("auto: phase %s failed: %s", name, value)
        except (EOFError, OSError):  # the worker finished (or died): nothing more will come
            pass

    def finish(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the worker, then stop it; every bound sent so far is kept."""
        self.thread.join(max(0.0, seconds))
        if self.proc.is_alive():
            self.proc.terminate()
            why = "the plan is proven optimal" if self.port.closed() else "stopped at the time limit"
            self.port.skipped.setdefault("bound-worker", why)
        self.proc.join(1.0)
        self.thread.join(1.0)
        self.recv.close()
        code = self.proc.exitcode
        if code not in (None, 0, -signal.SIGTERM):  # it died (killed, out of memory, ...): say so
            self.port.errors["bound-worker"] = f"second process ended with exit code {code}"
            log.warning("auto: %s", self.port.errors["bound-worker"])


def _registered(name: str) -> bool:
    from ..registry import METHODS

    return name in METHODS


def _fits_size(name: str, n: int) -> bool:
    from ..registry import METHODS

    spec = METHODS.get(name)
    return spec is not None and (spec.max_n is None or n <= spec.max_n)


def solve_auto(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``auto``: fast plans, bounds, exact model (tiny), ``ls``, Lagrangian, LP, ``lns``; best of all.

    ``--param`` keys: those of :data:`DEFAULTS` (phase shares, ``exact_max_n``).  The time limit
    (default :data:`DEFAULT_TIME_LIMIT` seconds) covers everything, model building included.
    """
    from ..registry import solve

    options = options or SolveOptions()
    prm = dict(DEFAULTS)
    prm.update({k: v for k, v in options.params.items() if k in DEFAULTS})
    limit = DEFAULT_TIME_LIMIT if options.time_limit is None else float(options.time_limit)
    started = time.perf_counter()
    deadline = started + limit - float(prm["reserve"]) * min(1.0, limit / 10)
    port = _Portfolio(instance, started, deadline)
    n = instance.n

    def run_phase(name: str, fn: Callable[[], None]) -> None:
        if port.closed():
            return
        if port.left() <= 0.05:
            port.skipped[name] = "no time left"
            return
        t0 = time.perf_counter()
        try:
            fn()
        except ModelTooLarge as err:  # the registry's convention for "declines this instance"
            port.skipped[name] = str(err)
            log.info("auto: phase %s declined: %s", name, err)
        except Exception as err:  # a failing method must not sink the portfolio; noted in stats
            port.errors[name] = f"{type(err).__name__}: {err}"
            log.warning("auto: phase %s failed: %s", name, port.errors[name])
        port.phases[name] = round(port.phases.get(name, 0.0) + time.perf_counter() - t0, 3)

    def sub_options(
        seconds: float, warm: bool = True, seed_offset: int = 0, progress: Callable[[Plan], None] | None = None
    ) -> SolveOptions:
        return SolveOptions(
            time_limit=max(0.05, seconds),
            seed=options.seed + seed_offset,
            threads=options.threads,
            solver=options.solver,
            warm_start=port.plan if warm else None,
            iteration_limit=None,
            params={},
            verbose=False,  # -v asks for auto's progress lines, not every solver's log
            stop=port.closed,  # a bound from the second process can prove the plan optimal mid-search
            progress=progress,
        )

    if options.warm_start is not None:  # a caller's plan competes like any other (validated at the end)
        port.offer_plan(options.warm_start, "warm_start")

    # 1. quick bounds (need no plan: the gap is known as soon as the first plan exists) ----------
    def quick_bounds() -> None:
        from ..bounds.simple import busy_time_bound, volume_bound

        port.offer_bound(volume_bound(instance), "volume")
        port.offer_bound(busy_time_bound(instance), "busy-time")  # O(n log n)

    run_phase("quick-bounds", quick_bounds)

    # 2. fast plans -------------------------------------------------------------------------------
    def fast() -> None:
        from ..baselines.best import FAST_METHODS

        # run them one by one here (not through best_fast_plan) so that the time limit is checked
        # between them; svf first: it wins on the trace backlogs, so a too-short limit still gets
        # the best of them.
        names = sorted(FAST_METHODS, key=lambda m: (m != "svf", m != "sf"))
        slowest = 0.0
        budget_end = time.perf_counter() + float(prm["fast_share"]) * port.left()
        for name in names:
            if not _registered(name):
                continue
            if port.plan is not None and (port.left() < 1.5 * slowest or time.perf_counter() + slowest > budget_end):
                port.skipped[name] = "no time left"
                continue
            t0 = time.perf_counter()
            try:
                port.offer_plan(solve(instance, name, sub_options(port.left(), warm=False)).plan, name)
            except (ModelTooLarge, RuntimeError) as err:  # declines the instance, or ran out of time
                port.skipped[name] = str(err)
            except Exception as err:  # a bug in one method must not cost the others their turn
                port.errors[name] = f"{type(err).__name__}: {err}"
                log.warning("auto: method %s failed: %s", name, port.errors[name])
            slowest = max(slowest, time.perf_counter() - t0)

    run_phase("fast", fast)

    # 6 (first). exact model for tiny instances: with a small model it runs now, before anything
    # else, since it usually proves the fast plan optimal in milliseconds (no process started); a
    # large one (full-scale token counts: 4 million nonzeros for 20 requests) waits for the bounds
    def exact() -> None:
        name = next((m for m in ("cpsat", "dp", "milp") if _fits_size(m, n)), None)
        if name is None:
            port.skipped["exact"] = "no exact method accepts this size"
            return
        res = solve(instance, name, sub_options(port.left() * float(prm["exact_share"])))
        port.offer_plan(res.plan, name)
        if res.lower_bound is not None and res.stats.get("bound_source") != "sum_output":
            port.offer_bound(res.lower_bound, name)

    exact_first = (
        n <= int(prm["exact_max_n"])
        and port.plan is not None
        and estimate_nonzeros(instance, port.plan.total_latency) <= int(prm["exact_first_nonzeros"])
    )
    if exact_first:
        run_phase("exact", exact)

    def lns_cannot_start(seconds: float) -> bool:
        """Whether ``lns`` would be skipped with ``seconds`` left (too short to load OR-Tools first)."""
        return seconds < float(prm["lns_min_seconds"]) and not _cp_sat_loaded()

    # 3. plan-space repack (insertion construction + ruin and recreate): a much better plan within
    # seconds on packed backlogs, so that the Lagrangian ascent below steps against a tighter bound
    def local_search(
        name: str, share: str, seed_offset: int = 0, phase_name: str = "", lns_rest: bool = False
    ) -> Callable[[], None]:
        """A phase running ``name`` for ``share`` of the time left; with ``lns_rest`` all of it when
        ``lns``, which gets the rest, could not start with it (the rest would go unused)."""
        phase_name = phase_name or name

        def run() -> None:
            def progress(plan: Plan) -> None:  # a long search's best so far: logged and in the history now
                port.offer_plan(plan, name)

            fraction = float(prm[share])
            if lns_rest and lns_cannot_start((1.0 - fraction) * port.left()):
                fraction = 1.0
            opts = sub_options(port.left() * fraction, seed_offset=seed_offset, progress=progress)
            res = solve(instance, name, opts)
            port.offer_plan(res.plan, name)
            searched[phase_name] = res.stats
            if res.stop_reason is StopReason.STOPPED:  # ended by port.closed(): a bound met the plan
                port.stopped_early.append(phase_name)

        return run

    searched: dict[str, dict[str, Any]] = {}  # stats of each local-search phase
    if port.plan is not None and _registered("repack"):
        run_phase("repack", local_search("repack", "repack_first_share"))
    # repack starts from the better of the best fast plan and its own insertion plan.  When the fast
    # plan was better, the insertion plan's basin is still often the better one (sharegpt at 16,384:
    # 30 s from `sf` 17,315,490, from the 2% worse insertion plan 17,088,083; docs/auto.md), so the
    # second process's chain searches it instead of following this one's chain
    short = searched.get("repack", {})
    insertion_unused = (
        short.get("insertion_objective") is not None
        and short["start_objective"] <= short["insertion_objective"] <= (1 + float(prm["insertion_basin_within"])) * short["start_objective"]
    )

    # 4-5 in parallel: with two threads allowed, the bound phases run in a second process while this
    # one improves the plan (they share nothing but the start plan)
    worker: _BoundWorker | None = None
    with_lp = _fits_size("lp", n)
    if (
        port.plan is not None
        and not port.closed()
        and options.threads >= 2
        and str(prm["parallel"]).lower() not in ("0", "false", "no")
        and limit >= float(prm["parallel_min_seconds"])
        and port.left() > 1.0
    ):
        seconds = 0.97 * port.left()
        job = {
            "with_lp": with_lp,
            "lagrange_share": float(prm["lagrange_share"]),
            "lp_share": float(prm["lp_share"]),
            "repack": _registered("repack"),
            "chain_from_insertion": insertion_unused,
            "seed": options.seed,
            "solver": options.solver,
        }
        try:
            worker = _BoundWorker(port, port.plan, seconds, job)
            log.info("auto: bound phases in a second process (%.1fs)", seconds)
        except (AssertionError, OSError, RuntimeError) as err:  # e.g. inside a daemonic pool worker
            log.info("auto: no second process (%s); bound phases run here", err)

    # 4. Lagrangian bound ---------------------------------------------------------------------------
    def lagrange() -> None:
        assert port.plan is not None
        _lagrange_bounds(instance, port.plan, port.left() * float(prm["lagrange_share"]), lambda source, bound: port.offer_bound(bound, source))

    if port.plan is not None and worker is None:
        run_phase("lagrange", lagrange)

    # 5. LP bound -----------------------------------------------------------------------------------
    def lp() -> None:
        plan, bound = _lp_bound(instance, sub_options(port.left() * float(prm["lp_share"])))
        port.offer_plan(plan, "lp")
        port.offer_bound(bound, "lp")

    if not with_lp:
        port.skipped["lp"] = "not registered or instance beyond its size limit"
    elif worker is None:
        run_phase("lp", lp)

    # 6. exact model for tiny instances whose model is large: after the bounds, so the gap is known
    # within seconds, and warm-started with repack's plan
    if n <= int(prm["exact_max_n"]) and not exact_first:
        run_phase("exact", exact)

    # 7. local search: repack again from the best plan (thousands of moves per second), else ls ------
    if _registered("repack"):
        run_phase("repack-2", local_search("repack", "repack_share", seed_offset=1, phase_name="repack-2", lns_rest=True))
    elif _registered("ls"):
        run_phase("ls", local_search("ls", "ls_share"))
    else:
        port.skipped["ls"] = "not registered"

    # 8. large-neighbourhood search with the time left ----------------------------------------------
    def lns() -> None:
        res = solve(instance, "lns", sub_options(port.left()))
        port.offer_plan(res.plan, "lns")
        if res.stats.get("bound_source") == "lns-whole-window":
            port.offer_bound(res.lower_bound, "lns")
        if res.stop_reason is StopReason.STOPPED:
            port.stopped_early.append("lns")

    left = port.left()
    if not port.closed() and left > 0.05 and lns_cannot_start(left):
        port.skipped["lns"] = f"{left:.2f} s left, less than loading OR-Tools for its windows may take"
    else:
        run_phase("lns", lns)
    if worker is not None:  # the bounds it sent are already offered; wait for the rest until the deadline
        worker.finish(0.0 if port.closed() else port.left() + 0.5)  # nothing to wait for once proven

    if port.plan is None:  # every phase failed: still answer with a plan (the shared start rule)
        from ..baselines.serving import solve_svf

        port.offer_plan(solve_svf(instance, SolveOptions()).plan, "svf")
    elapsed = port.elapsed()
    stop = StopReason.COMPLETED if port.closed() or port.left() > 0.05 else StopReason.TIME_LIMIT
    stats: dict[str, Any] = {
        "plan_source": port.plan_source,
        "bound_source": port.bound_source,
        "history": port.history,
        "phase_seconds": port.phases,
        "time_limit": limit,
    }
    if port.skipped:
        stats["skipped"] = port.skipped
    if port.errors:
        stats["errors"] = port.errors
    if port.stopped_early:
        stats["stopped_early"] = port.stopped_early
    result = SolveResult(
        "auto",
        instance,
        port.plan,
        lower_bound=port.bound,
        stop_reason=stop,
        build_seconds=0.0,
        solve_seconds=elapsed,
        stats=stats,
    )
    if math.isfinite(elapsed):
        log.info("auto: done in %.2fs, objective %s, bound %d", elapsed, port.objective, port.bound)
    return result
