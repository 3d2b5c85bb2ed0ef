"""Where the runs execute: a local pool of worker processes, or Ray tasks.

Both take the specs to run, hand each finished run's row to ``on_row`` in the parent process,
and enforce a hard timeout per run (the local pool kills and replaces the worker, Ray cancels
the task), recording the overrun as a failed run.  Workers that die are recorded likewise.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from .grid import RunSpec
from .run import failure_row, one_line, run_one

log = logging.getLogger(__name__)


def _worker_main(conn: Connection, parent_pid: int) -> None:
    """Worker loop: receive a spec, send back its row; exit when the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # Solver banners and logs (written by C code to fd 1) would garble the sweep's own output;
    # warnings and errors still reach stderr.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)

    def watchdog() -> None:
        # The sweep's parent may be SIGKILLed: do not outlive it by a long solve.
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent_pid, 0)
            except OSError:
                os._exit(1)

    threading.Thread(target=watchdog, daemon=True).start()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        spec = RunSpec(**message["spec"])
        row = run_one(spec, plugins=message["plugins"])
        try:
            conn.send(row)
        except (BrokenPipeError, OSError):
            return


@dataclass
class _Worker:
    process: Any
    conn: Connection
    spec: RunSpec | None = None
    started: float = 0.0


def _spec_message(spec: RunSpec, plugins: Sequence[str]) -> dict[str, Any]:
    return {"spec": asdict(spec), "plugins": list(plugins)}


class LocalPool:
    """Persistent worker processes, one run at a time each; an overdue worker is killed and replaced."""

    def __init__(self, jobs: int, plugins: Sequence[str] = ()):
        self.jobs = max(1, jobs)
        self.plugins = list(plugins)
        # forkserver: workers do not inherit the parent's threads or locks (safe with Ray or
        # solver threads in the parent) and start fast from a server that pre-imported numpy.
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(
            ["numpy", "scheduler_milp.registry", "scheduler_milp.model.instance"]
        )
        self.workers: list[_Worker] = []

    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(child_conn, os.getpid()), daemon=True)
        proc.start()
        child_conn.close()
        return _Worker(proc, parent_conn)

    def _retire(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=10)
        worker.conn.close()

    def run(
        self,
        specs: Sequence[RunSpec],
        on_row: Callable[[dict[str, Any]], None],
        hard_timeout: Callable[[RunSpec], float | None],
        tick: Callable[[], None] = lambda: None,
    ) -> None:
        """Run ``specs``; ``on_row`` receives each finished (or failed) run's row in the parent."""
        pending = deque(specs)
        self.workers = [self._spawn() for _ in range(min(self.jobs, len(pending)))]
        try:
            while True:
                for w in self.workers:
                    if w.spec is None and pending:
                        w.spec = pending.popleft()
                        w.started = time.monotonic()
                        w.conn.send(_spec_message(w.spec, self.plugins))
                busy = [w for w in self.workers if w.spec is not None]
                if not busy:
                    break
                now = time.monotonic()
                deadlines = [w.started + t for w in busy if (t := hard_timeout(w.spec)) is not None]  # type: ignore[arg-type]
                wait_for = min([1.0] + [max(0.0, d - now) for d in deadlines])
                ready = wait([w.conn for w in busy], timeout=wait_for)
                for w in busy:
                    if w.conn not in ready:
                        continue
                    spec = w.spec
                    assert spec is not None
                    try:
                        row = w.conn.recv()
                    except (EOFError, OSError):
                        w.process.join(timeout=5)
                        code = w.process.exitcode
                        row = failure_row(
                            spec,
                            f"worker died (exit code {code})",
                            "error",
                            time.monotonic() - w.started,
                        )
                        self._replace(w)
                    w.spec = None
                    on_row(row)
                now = time.monotonic()
                for w in self.workers:
                    if w.spec is None:
                        continue
                    limit = hard_timeout(w.spec)
                    if limit is not None and now - w.started > limit:
                        spec = w.spec
                        log.warning(
                            "%s: killing worker after %.0f s (hard timeout)", spec.key, limit
                        )
                        self._replace(w)
                        w.spec = None
                        on_row(
                            failure_row(
                                spec,
                                f"hard timeout: worker killed after {limit:g} s",
                                "time_limit",
                                now - w.started,
                            )
                        )
                tick()
        finally:
            for w in self.workers:
                with contextlib.suppress(BrokenPipeError, OSError):
                    w.conn.send(None)
            for w in self.workers:
                w.process.join(timeout=5)
                self._retire(w)
            self.workers = []

    def _replace(self, worker: _Worker) -> None:
        self._retire(worker)
        fresh = self._spawn()
        worker.process, worker.conn = fresh.process, fresh.conn


# ---------------------------------------------------------------------------- Ray backend
def run_ray(
    specs: Sequence[RunSpec],
    on_row: Callable[[dict[str, Any]], None],
    hard_timeout: Callable[[RunSpec], float | None],
    jobs: int | None,
    address: str | None,
    tick: Callable[[], None] = lambda: None,
    plugins: Sequence[str] = (),
) -> None:
    """Run ``specs`` as Ray tasks, at most ``jobs`` at a time (default: the cluster's CPUs).

    Joins the cluster at ``address`` or starts Ray locally (and shuts it down afterwards);
    ``on_row`` receives each finished, failed or cancelled run's row in the calling process.
    """
    try:
        import ray
    except ImportError:
        raise RuntimeError("the ray backend needs Ray: pip install 'scheduler_milp[ray]'") from None

    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is not None:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = jobs or os.cpu_count() or 1
        ray.init(**kwargs)
        started_here = True
    try:
        in_flight_max = jobs or max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote_run = ray.remote(num_cpus=1, max_retries=0)(run_one)
        # Ship the instance files' contents: cluster nodes need not share our file system.
        texts: dict[str, Any] = {}
        pending = deque(specs)
        in_flight: dict[Any, tuple[RunSpec, float]] = {}
        while pending or in_flight:
            while pending and len(in_flight) < in_flight_max:
                spec = pending.popleft()
                if spec.instance_path not in texts:
                    texts[spec.instance_path] = ray.put(Path(spec.instance_path).read_text())
                ref = remote_run.remote(spec, texts[spec.instance_path], list(plugins))
                in_flight[ref] = (spec, time.monotonic())
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in ready:
                spec, t0 = in_flight.pop(ref)
                try:
                    row = ray.get(ref)
                except Exception as err:  # a worker crash surfaces here
                    row = failure_row(spec, one_line(err), "error", time.monotonic() - t0)
                on_row(row)
            now = time.monotonic()
            for ref, (spec, t0) in list(in_flight.items()):
                limit = hard_timeout(spec)
                if limit is not None and now - t0 > limit:
                    ray.cancel(ref, force=True)
                    del in_flight[ref]
                    on_row(
                        failure_row(
                            spec,
                            f"hard timeout: task cancelled after {limit:g} s",
                            "time_limit",
                            now - t0,
                        )
                    )
            tick()
    finally:
        if started_here:
            ray.shutdown()
