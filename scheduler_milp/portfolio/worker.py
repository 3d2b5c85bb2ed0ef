"""``auto``'s second process: the bound phases and a second ``repack`` chain beside the plan phases.

:class:`BoundWorker` starts :func:`bound_job` in a spawned process and listens to it from a
thread of the parent, which offers each result to the :class:`~.state.PortfolioState` as soon as
it arrives.  The job runs, within the time it is given:

1. the Lagrangian bounds (:func:`lagrange_bounds`), ``lagrange_share`` of its time;
2. the LP bound (:func:`lp_bound`, when ``with_lp``), ``lp_share`` of the time left;
3. with the rest, unless its bounds already meet the plan, a second ``repack`` chain (seed + 2):
   from the parent's best plan at that moment, or, with ``chain_from_insertion``, from
   ``repack``'s insertion plan.

Messages, each a tuple ``(kind, name, value)``: from the job ``("bound", source, value)``,
``("plan", source, start rounds)``, ``("phase", name, seconds)``, ``("skipped" | "error", name,
text)`` and ``("want", "plan", None)`` (asking for the parent's best plan, answered with
``("plan", name, start rounds or None)``); the end of the pipe tells the parent the job is done.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..model.deadline import Deadline
from ..model.instance import Instance
from ..model.plan import Plan
from ..model.result import TRIVIAL_BOUND_SOURCE, ModelTooLarge, SolveOptions
from .state import PortfolioState

log = logging.getLogger("scheduler_milp.portfolio.auto")

#: seconds the job waits for the parent's best plan before it starts its chain from its own
WANT_PLAN_SECONDS = 5.0


@dataclass(frozen=True)
class BoundJob:
    """What :func:`bound_job` is asked to do; it crosses to the second process as a dict
    (:func:`dataclasses.asdict`)."""

    lagrange_share: float  # of the job's time, for the Lagrangian bounds
    lp_share: float  # of the time left after them, for the LP bound
    with_lp: bool  # whether the LP bound runs (the instance is within its size limit)
    chain_from_insertion: bool  # the second repack chain starts from repack's insertion plan
    seed: int
    solver: str | None


def lagrange_bounds(
    instance: Instance,
    plan: Plan,
    seconds: float | None,
    offer: Callable[[str, int], None],
    iterations: int = 10_000,
    method: str = "auto",
) -> None:
    """Offer the sawtooth lift at the fluid prices, the Lagrangian bound (``plan`` as upper bound,
    horizon and initial prices), then the lift at its prices, each as soon as it is known; within
    ``seconds`` (``None``: no limit) and ``iterations`` (pricings, then ascent steps); ``method``
    as in :func:`~scheduler_milp.bounds.subgradient.lagrangian`."""
    from ..bounds.lagrangian import lifted_lagrangian

    lifted_lagrangian(
        instance,
        seconds,
        offer=offer,
        ub=plan.total_latency,
        iterations=iterations,
        plan=plan,
        method=method,
    )


def lp_bound(instance: Instance, options: SolveOptions) -> tuple[Plan | None, int | None]:
    """The registered ``lp``: its plan and its bound (``None`` when it only reached ``sum o``)."""
    from ..registry import solve

    res = solve(instance, "lp", options)
    return res.plan, (
        None if res.stats.get("bound_source") == TRIVIAL_BOUND_SOURCE else res.lower_bound
    )


class _Reporter:
    """The job's end of the pipe: runs its phases and sends what they find."""

    def __init__(self, out: Connection):
        self.out = out
        self.best_bound = 0

    def phase(self, name: str, fn: Callable[[], None]) -> None:
        """Run ``fn`` as phase ``name`` (the parent's conventions: ``ModelTooLarge`` declines,
        anything else is an error), then send its duration."""
        t0 = time.perf_counter()
        try:
            fn()
        except ModelTooLarge as err:
            self.out.send(("skipped", name, str(err)))
        except Exception as err:  # reported to the parent, which notes it in stats["errors"]
            self.out.send(("error", name, f"{type(err).__name__}: {err}"))
        self.out.send(("phase", name, time.perf_counter() - t0))

    def offer(self, source: str, bound: int | None) -> None:
        """Send a bound (``None`` is ignored)."""
        if bound is not None:
            self.out.send(("bound", source, bound))
            self.best_bound = max(self.best_bound, bound)

    def send_plan(self, plan: Plan) -> None:
        """Send a plan of the second chain (the parent validates it)."""
        self.out.send(("plan", "repack-worker", [int(x) for x in plan.start_round]))

    def parents_plan(self, instance: Instance, plan: Plan) -> Plan:
        """The parent's best plan now if it is better than ``plan`` (``plan`` when no answer comes)."""
        self.out.send(("want", "plan", None))
        if self.out.poll(WANT_PLAN_SECONDS):
            kind, _, starts = self.out.recv()
            if kind == "plan" and starts is not None:  # validated there; checked again, it is cheap
                theirs = Plan.checked(instance, np.asarray(starts, dtype=np.int64))
                if theirs.total_latency < plan.total_latency:
                    return theirs
        return plan


def _second_chain(
    report: _Reporter, instance: Instance, plan: Plan, deadline: Deadline, job: BoundJob
) -> None:
    """A ``repack`` chain (seed + 2) until half a second before ``deadline``: from the insertion plan
    with ``job.chain_from_insertion`` (when it is built in time), else from the parent's best plan."""
    from ..heuristics.repack import insertion_order, insertion_starts, repack

    built = (
        insertion_starts(instance, insertion_order(instance), deadline.at)
        if job.chain_from_insertion
        else None
    )
    start = (
        Plan.checked(instance, built) if built is not None else report.parents_plan(instance, plan)
    )
    better, _ = repack(
        instance, start, seed=job.seed + 2, time_limit=deadline.remaining() - 0.5, progress=report.send_plan,
        insertion=built is None,  # the insertion plan is the start already
    )  # fmt: skip
    if better.total_latency < start.total_latency:  # its last plan (progress is throttled)
        report.send_plan(better)


def _start_chain_kernels() -> None:
    """Import the earliest-fit kernels' module and start compiling (or loading) them."""
    from ..heuristics.profile import WARMUP

    WARMUP.start()


def bound_job(
    out: Connection, instance: Instance, plan: Plan, wall_deadline: float, params: dict[str, Any]
) -> None:
    """The second process's work (see the module docstring); ``params`` are a :class:`BoundJob`'s fields.

    ``wall_deadline`` is ``time.time()`` at the end of the job's time: the wall clock is the one
    both processes share, so the job ends on the parent's clock however long this process took to
    start.  ``out`` is closed at the end.
    """
    # Ctrl-C reaches the whole process group: the parent handles it (and ends this daemonic process)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    budget = max(0.0, wall_deadline - time.time())  # less what spawning and imports took
    deadline = Deadline.after(budget)
    job = BoundJob(**params)
    report = _Reporter(out)
    # the second chain's kernels (and numba itself) load in the background while the bounds run
    threading.Thread(target=_start_chain_kernels, daemon=True).start()

    def lp() -> None:
        options = SolveOptions(
            time_limit=deadline.remaining() * job.lp_share,
            seed=job.seed,
            threads=1,
            solver=job.solver,
        )
        report.offer("lp", lp_bound(instance, options)[1])

    try:
        report.phase(
            "lagrange",
            lambda: lagrange_bounds(instance, plan, budget * job.lagrange_share, report.offer),
        )
        if job.with_lp and deadline.remaining() > 0.05:
            report.phase("lp", lp)
        # the core is free until the deadline: a second repack chain, unless the plan is proven
        if deadline.remaining() > 1.0 and report.best_bound < plan.total_latency:
            report.phase(
                "repack-worker", lambda: _second_chain(report, instance, plan, deadline, job)
            )
    finally:
        out.close()


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
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
    saved: dict[str, Any] = {
        key: main.__dict__[key] for key in ("__file__", "__spec__") if key in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class BoundWorker:
    """Runs ``job`` (:func:`bound_job`) in a spawned process for ``seconds``; a listener thread offers
    its bounds and plans to ``port`` as they arrive and answers its requests for the best plan.

    ``spawn`` (not ``fork``): the parent may hold solver threads (HiGHS, CP-SAT), which a forked
    child would inherit in an undefined state.  Starting raises (``AssertionError``, ``OSError`` or
    ``RuntimeError``) where no process can be started, e.g. inside a daemonic pool worker.
    """

    def __init__(
        self,
        port: PortfolioState,
        plan: Plan,
        seconds: float,
        params: dict[str, Any],
        job: Callable[..., None] = bound_job,
    ):
        ctx = multiprocessing.get_context("spawn")
        self.port = port
        recv, send = ctx.Pipe(duplex=True)  # the worker asks for the best plan through it too
        self.recv = recv
        self.proc = ctx.Process(
            target=job, args=(send, port.instance, plan, time.time() + seconds, params), daemon=True
        )
        with main_module_hidden():
            self.proc.start()
        send.close()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        try:
            while True:
                self._handle(*self.recv.recv())
        except (EOFError, OSError):  # the worker finished (or died): nothing more will come
            pass

    def _handle(self, kind: str, name: str, value: Any) -> None:
        port = self.port
        if kind == "bound":
            port.offer_bound(int(value), name)
        elif kind == "plan":  # validated here, in this process, like every plan auto returns
            port.offer_plan(Plan.checked(port.instance, np.asarray(value, dtype=np.int64)), name)
        elif kind == "want":  # the worker starts its own repack chain: from the best plan now
            best = port.plan
            self.recv.send(
                ("plan", name, None if best is None else [int(x) for x in best.start_round])
            )
        elif kind == "phase":
            port.add_phase_seconds(name, float(value))
        elif kind == "skipped":
            port.skipped[name] = str(value)
        else:
            port.errors[name] = str(value)
            log.warning("auto: phase %s failed: %s", name, value)

    def finish(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the worker to end, then stop it; every bound sent so far is kept."""
        until = Deadline.after(seconds)
        self.thread.join(until.remaining())
        if not self.thread.is_alive():  # the job closed its end: its process is exiting
            self.proc.join(until.remaining())
        if self.proc.is_alive():
            self.proc.terminate()
            why = (
                "the plan is proven optimal" if self.port.closed() else "stopped at the time limit"
            )
            self.port.skipped.setdefault("bound-worker", why)
        self.proc.join(1.0)
        self.thread.join(1.0)
        self.recv.close()
        code = self.proc.exitcode
        if code not in (None, 0, -signal.SIGTERM):  # it died (killed, out of memory, ...): say so
            self.port.errors["bound-worker"] = f"second process ended with exit code {code}"
            log.warning("auto: %s", self.port.errors["bound-worker"])
