"""Experiment runner: every method on every instance and seed, resumable, local or on Ray.

Layout of an output directory ``DIR``:

- ``DIR/runs.jsonl``: the raw record, one JSON object per finished run, append-only.  Each line
  is written with a single ``write`` followed by ``fsync``, so a kill at any moment loses at most
  the run in flight; a torn last line is ignored on read and cut off before the next append.
- ``DIR/results.csv``: derived from ``runs.jsonl`` (atomically rewritten at the end of a sweep):
  one row per run plus the columns that depend on all runs of an instance (best known bound,
  optimum, gap to them, wins).
- ``DIR/meta.json``: versions, git revision, command line of the last sweep.

A run is identified by its key: instance file hash and path, method, seed, time limit and
parameters.  Rerunning a sweep skips the keys already in ``runs.jsonl``.  A run that raises,
whose worker dies, or that overruns its hard timeout (its worker is killed) is recorded with
its error and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, TextIO

from .result import ModelTooLarge
from .result import gap as gap_formula

log = logging.getLogger("scheduler_milp.runner")

RAW_FILE = "runs.jsonl"
RESULTS_FILE = "results.csv"
META_FILE = "meta.json"
LOCK_FILE = ".lock"

# results.csv columns, in order; timing columns are listed apart so tests can compare the rest.
TIMING_COLUMNS = ("build_seconds", "solve_seconds", "seconds", "wall_seconds", "finished_at", "host")
RESULT_COLUMNS = (
    "instance", "instance_path", "instance_hash", "n", "memory", "block_size", "max_batch",
    "method", "kind", "seed", "time_limit", "params", "status", "stop_reason", "objective",
    "lower_bound", "own_gap", "best_bound", "gap", "optimum", "gap_to_optimum", "win",
    "build_seconds", "solve_seconds", "seconds", "wall_seconds", "error", "conflict",
    "recorded_optimum", "key", "git_rev", "versions", "finished_at", "host",
)  # fmt: skip
VERSION_PACKAGES = ("scheduler_milp", "numpy", "pandas", "pyomo", "highspy", "ortools", "matplotlib", "ray")


# ---------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: a method on an instance file with a seed and a time limit."""

    instance_path: str
    instance_hash: str
    method: str
    seed: int = 0
    time_limit: float | None = None
    params: tuple[tuple[str, Any], ...] = ()
    threads: int = 1

    @property
    def key(self) -> str:
        """Identity for resuming: file hash and path, method, seed, time limit, parameters."""
        params = json.dumps(dict(self.params), sort_keys=True)
        return f"{self.instance_hash}|{self.instance_path}|{self.method}|seed={self.seed}|tl={self.time_limit}|{params}"

    def hard_timeout(self, factor: float = 2.0, slack: float = 30.0) -> float | None:
        """Seconds after which the worker is killed (``None``: never)."""
        return None if self.time_limit is None else self.time_limit * factor + slack


def file_hash(path: str | os.PathLike[str]) -> str:
    """First 16 hex digits of the SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def expand_instances(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Instance files named by ``paths``: files as given, directories searched for ``*.json``."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(str(f) for f in sorted(path.rglob("*.json")) if f.is_file())
        elif path.exists():
            out.append(str(path))
        else:
            raise FileNotFoundError(f"{p}: no such instance file or directory")
    seen: set[str] = set()
    unique = []
    for f in out:
        norm = os.path.normpath(f)
        if norm not in seen:
            seen.add(norm)
            unique.append(norm)
    return unique


def make_grid(
    instance_paths: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int] = (0,),
    time_limit: float | None = None,
    params: dict[str, Any] | None = None,
    threads: int = 1,
) -> list[RunSpec]:
    """All (instance, method, seed) runs, instance-major so that early results cover instances."""
    from .registry import get_method

    for m in methods:
        get_method(m)  # fail before any run on an unknown name
    frozen_params = tuple(sorted((params or {}).items()))
    grid = []
    for path in instance_paths:
        digest = file_hash(path)
        for method in methods:
            for seed in seeds:
                grid.append(RunSpec(path, digest, method, int(seed), time_limit, frozen_params, threads))
    return grid


# ---------------------------------------------------------------------------- one run
def _one_line(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".replace("\n", " ")
    return text[:500]


def _recorded_optimum(meta: Any) -> int | None:
    opt = meta.get("optimum") if hasattr(meta, "get") else None
    if isinstance(opt, dict):
        opt = opt.get("value")
    if isinstance(opt, (int, float)) and not isinstance(opt, bool) and math.isfinite(opt):
        return int(opt)
    return None


_LOADED_PLUGINS: set[str] = set()


def load_plugins(plugins: Sequence[str]) -> None:
    """Import plugin modules (dotted names or ``.py`` files) that register extra methods.

    Each process imports each plugin once; workers do it before their first run, so methods
    defined outside the package can run in a sweep.
    """
    import importlib
    import importlib.util

    for plugin in plugins:
        if plugin in _LOADED_PLUGINS:
            continue
        if plugin.endswith(".py"):
            name = "scheduler_milp_plugin_" + hashlib.sha256(plugin.encode()).hexdigest()[:12]
            module_spec = importlib.util.spec_from_file_location(name, plugin)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"cannot load plugin file {plugin}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            importlib.import_module(plugin)
        _LOADED_PLUGINS.add(plugin)


def run_one(spec: RunSpec, instance_text: str | None = None, plugins: Sequence[str] = ()) -> dict[str, Any]:
    """Run one grid point and return its raw row; never raises (errors go to ``error``).

    ``instance_text`` (the file's content) lets a remote worker run without the file system;
    ``plugins`` are imported first (see :func:`load_plugins`).
    """
    from .instance import instance_from_dict, load_instance
    from .registry import get_method, solve
    from .result import SolveOptions

    started = time.perf_counter()
    row = _base_row(spec, error="", stop_reason="error")
    try:
        load_plugins(plugins)
        if instance_text is not None:
            instance = instance_from_dict(json.loads(instance_text), source=spec.instance_path)
        else:
            instance = load_instance(spec.instance_path)
        row.update(
            instance=instance.name,
            n=instance.n,
            memory=instance.memory_budget,
            block_size=instance.block_size,
            max_batch=instance.max_batch,
            recorded_optimum=_recorded_optimum(instance.meta),
        )
        method = get_method(spec.method)
        row["kind"] = method.kind
        if method.max_n is not None and instance.n > method.max_n:
            # declined up front: the method's own size limit, not a failure of the sweep
            row.update(stop_reason="too_large", error=f"declined: n={instance.n} > max_n={method.max_n}")
        else:
            options = SolveOptions(
                time_limit=spec.time_limit, seed=spec.seed, threads=spec.threads, params=dict(spec.params)
            )
            result = solve(instance, spec.method, options)
            row.update(
                status=result.status.value,
                stop_reason=result.stop_reason.value,
                objective=result.objective,
                lower_bound=result.lower_bound,
                own_gap=result.gap,
                build_seconds=round(result.build_seconds, 6),
                solve_seconds=round(result.solve_seconds, 6),
            )
    except ModelTooLarge as err:  # the method's own model-size check: declined, like max_n above
        row.update(stop_reason="too_large", error=f"declined: {_one_line(err)}")
    except Exception as err:  # a failing method is a recorded result, not the end of the sweep
        row["error"] = _one_line(err)
        log.debug("run %s failed", spec.key, exc_info=True)
    row["wall_seconds"] = round(time.perf_counter() - started, 6)
    return row


def _base_row(spec: RunSpec, error: str, stop_reason: str) -> dict[str, Any]:
    """The columns every run row has, before the run fills in its results (status ``unknown``)."""
    return {
        "key": spec.key,
        "instance_path": spec.instance_path,
        "instance_hash": spec.instance_hash,
        "instance": Path(spec.instance_path).stem,
        "method": spec.method,
        "seed": spec.seed,
        "time_limit": spec.time_limit,
        "params": json.dumps(dict(spec.params), sort_keys=True),
        "status": "unknown",
        "stop_reason": stop_reason,
        "error": error,
    }


def _failure_row(spec: RunSpec, error: str, stop_reason: str, wall: float) -> dict[str, Any]:
    return {**_base_row(spec, error, stop_reason), "wall_seconds": round(wall, 6)}


# ---------------------------------------------------------------------------- the raw log
class RunLog:
    """Append-only JSON-lines file of finished runs (single writer: the sweep's parent process)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _repair_tail(self) -> None:
        # A kill during a write can leave a torn last line; the next append would glue onto it
        # and be lost with it, so cut the file back to its last complete line first.
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            log.warning("%s: dropping a torn last line (%d bytes)", self.path, len(data) - keep)
            with open(self.path, "r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, row: dict[str, Any]) -> None:
        """Write one row as one line: a single write, then fsync."""
        data = (json.dumps(row, sort_keys=True, default=str) + "\n").encode()
        written = os.write(self._fd, data)
        while written < len(data):  # regular files write whole; be safe on odd file systems
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)

    def close(self) -> None:
        """Close the file descriptor."""
        os.close(self._fd)


def read_runs(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a ``runs.jsonl`` (later rows of the same key replace earlier ones; bad lines skipped)."""
    p = Path(path)
    if not p.exists():
        return []
    rows: dict[str, dict[str, Any]] = {}
    lines = p.read_bytes().split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if number < len(lines):  # only the last line may be torn by a kill
                log.warning("%s:%d: skipping a corrupt line", p, number)
            continue
        if isinstance(row, dict) and "key" in row:
            rows.pop(row["key"], None)
            rows[row["key"]] = row
    return list(rows.values())


class DirectoryLock:
    """Exclusive ``flock`` on ``DIR/.lock``: two sweeps never write one directory."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK_FILE
        self._fh: TextIO | None = None

    def __enter__(self) -> DirectoryLock:
        self._fh = open(self.path, "w")  # noqa: SIM115 - held for the lock's lifetime
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            raise RuntimeError(f"{self.path.parent}: another sweep is writing this directory") from None
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._fh is not None
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        self._fh.close()


# ---------------------------------------------------------------------------- provenance
def git_revision() -> str:
    """``git rev-parse HEAD`` of the package's checkout, ``+dirty`` if modified, ``unknown`` outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    """Python and the main packages' versions (``-`` when not installed)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in VERSION_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


# ---------------------------------------------------------------------------- progress
class Progress:
    """A dependency-free progress bar on stderr: runs done/total, elapsed, estimated time left."""

    def __init__(self, total: int, already_done: int = 0, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.already = already_done
        self.done = already_done
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and total > 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last_line = -math.inf
        self._last_done = -1

    @staticmethod
    def _clock(seconds: float) -> str:
        s = int(round(seconds))
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"

    def line(self) -> str:
        """The current progress line."""
        elapsed = time.monotonic() - self.started
        width = 24
        frac = self.done / self.total if self.total else 1.0
        filled = int(width * frac)
        bar = "#" * filled + "-" * (width - filled)
        new = self.done - self.already
        if self.done >= self.total:
            left = "done"
        elif new > 0:
            # the rate of this session's runs; earlier sessions' runs cost nothing now
            left = "~" + self._clock(elapsed / new * (self.total - self.done))
        else:
            left = "?"
        return f"[{bar}] {self.done}/{self.total} runs  elapsed {self._clock(elapsed)}  left {left}"

    def update(self, done: int | None = None, force: bool = False) -> None:
        """Redraw (TTY: in place; otherwise a line at most every 10 s and at the end)."""
        if done is not None:
            self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line() + "\033[K")
            self.stream.flush()
        elif force or (self.done != self._last_done and (self.done >= self.total or now - self._last_line >= 10)):
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last_line = now
            self._last_done = self.done

    def close(self) -> None:
        """End the in-place line."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------------- local backend
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
        self.ctx.set_forkserver_preload(["numpy", "scheduler_milp.registry", "scheduler_milp.instance"])
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
                        row = _failure_row(
                            spec, f"worker died (exit code {code})", "error", time.monotonic() - w.started
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
                        log.warning("%s: killing worker after %.0f s (hard timeout)", spec.key, limit)
                        self._replace(w)
                        w.spec = None
                        on_row(_failure_row(spec, f"hard timeout: worker killed after {limit:g} s", "time_limit", now - w.started))
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
def _run_ray(
    specs: Sequence[RunSpec],
    on_row: Callable[[dict[str, Any]], None],
    hard_timeout: Callable[[RunSpec], float | None],
    jobs: int | None,
    address: str | None,
    tick: Callable[[], None] = lambda: None,
    plugins: Sequence[str] = (),
) -> None:
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
                    row = _failure_row(spec, _one_line(err), "error", time.monotonic() - t0)
                on_row(row)
            now = time.monotonic()
            for ref, (spec, t0) in list(in_flight.items()):
                limit = hard_timeout(spec)
                if limit is not None and now - t0 > limit:
                    ray.cancel(ref, force=True)
                    del in_flight[ref]
                    on_row(_failure_row(spec, f"hard timeout: task cancelled after {limit:g} s", "time_limit", now - t0))
            tick()
    finally:
        if started_here:
            ray.shutdown()


# ---------------------------------------------------------------------------- the sweep
@dataclass
class SweepReport:
    """What a sweep did: runs in the grid, skipped (already done), run now, and the table."""

    total: int
    skipped: int
    ran: int
    results_path: Path
    summary: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def run_sweep(
    specs: Sequence[RunSpec],
    out_dir: str | os.PathLike[str],
    jobs: int = 1,
    backend: str = "local",
    address: str | None = None,
    timeout_factor: float = 2.0,
    timeout_slack: float = 30.0,
    retry_errors: bool = False,
    progress: bool = True,
    command: Sequence[str] | None = None,
    plugins: Sequence[str] = (),
) -> SweepReport:
    """Run the grid into ``out_dir`` (resuming), then derive ``results.csv`` and the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with DirectoryLock(out):
        raw_path = out / RAW_FILE
        done_rows = {r["key"]: r for r in read_runs(raw_path)}
        todo = []
        for spec in specs:
            row = done_rows.get(spec.key)
            if row is None or (retry_errors and row.get("error")):
                todo.append(spec)
        skipped = len(specs) - len(todo)
        log.info("%d runs in the grid, %d already done, %d to run", len(specs), skipped, len(todo))
        revision = git_revision()
        versions = package_versions()
        version_text = ";".join(f"{k}={v}" for k, v in versions.items())
        _write_meta(out, revision, versions, command, backend, jobs)
        bar = Progress(len(specs), skipped, enabled=progress)
        bar.update(force=True)
        runlog = RunLog(raw_path)
        count = [skipped]
        host = platform.node()

        def on_row(row: dict[str, Any]) -> None:
            row.update(git_rev=revision, versions=version_text, host=row.get("host", host),
                       finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # fmt: skip
            runlog.append(row)
            count[0] += 1
            if row.get("error"):
                log.info("%s on %s: %s", row["method"], row["instance_path"], row["error"])
            bar.update(count[0])

        def limit(spec: RunSpec) -> float | None:
            return spec.hard_timeout(timeout_factor, timeout_slack)

        try:
            if not todo:
                pass
            elif backend == "local":
                LocalPool(jobs, plugins).run(todo, on_row, limit, tick=bar.update)
            elif backend == "ray":
                _run_ray(todo, on_row, limit, jobs, address, tick=bar.update, plugins=plugins)
            else:
                raise ValueError(f"unknown backend {backend!r} (local or ray)")
        finally:
            runlog.close()
            bar.close()
        rows = derive_results(read_runs(raw_path), only_keys={s.key for s in specs})
        results_path = out / RESULTS_FILE
        write_results(rows, results_path)
        return SweepReport(len(specs), skipped, len(todo), results_path, summarize(rows), rows)


def _write_meta(out: Path, revision: str, versions: dict[str, str], command: Sequence[str] | None, backend: str, jobs: int) -> None:
    from .instance import write_json_atomic

    write_json_atomic(
        out / META_FILE,
        {
            "git_revision": revision,
            "versions": versions,
            "command": list(command) if command is not None else None,
            "backend": backend,
            "jobs": jobs,
            "host": platform.node(),
            "platform": platform.platform(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )


# ---------------------------------------------------------------------------- derived table
def derive_results(raw_rows: Sequence[dict[str, Any]], only_keys: set[str] | None = None) -> list[dict[str, Any]]:
    """Add the columns that depend on all runs of an instance (bounds and optima are pooled
    over every run in the raw file, including runs outside ``only_keys``).

    ``best_bound`` = max of the runs' proven lower bounds and the file's recorded optimum;
    ``optimum`` = objective of a run whose status is optimal, else the recorded optimum;
    ``gap`` and ``gap_to_optimum`` use the one gap formula against them; ``win`` marks the runs
    with the smallest objective on their instance.  Inconsistencies (a bound above a valid plan,
    two different proven optima) are logged and noted in ``conflict``.
    """
    by_instance: dict[str, list[dict[str, Any]]] = {}
    for r in raw_rows:
        by_instance.setdefault(r["instance_hash"], []).append(r)
    pooled: dict[str, dict[str, Any]] = {}
    for digest, rows in by_instance.items():
        bounds = [r["lower_bound"] for r in rows if r.get("lower_bound") is not None]
        recorded = [r["recorded_optimum"] for r in rows if r.get("recorded_optimum") is not None]
        proven = sorted({r["objective"] for r in rows if r.get("status") == "optimal" and r.get("objective") is not None})
        objectives = [r["objective"] for r in rows if r.get("objective") is not None]
        conflicts = []
        optimum = proven[0] if proven else (recorded[0] if recorded else None)
        if len(set(proven) | set(recorded)) > 1:
            conflicts.append(f"different optima {sorted(set(proven) | set(recorded))}")
        best_bound = max(bounds + recorded) if (bounds or recorded) else None
        best_objective = min(objectives) if objectives else None
        if best_bound is not None and best_objective is not None and best_bound > best_objective:
            conflicts.append(f"bound {best_bound} above a valid plan's objective {best_objective}")
        for text in conflicts:
            log.warning("instance %s: %s", rows[0].get("instance_path"), text)
        pooled[digest] = {"optimum": optimum, "best_bound": best_bound, "best_objective": best_objective, "conflict": "; ".join(conflicts)}
    out = []
    for r in raw_rows:
        if only_keys is not None and r["key"] not in only_keys:
            continue
        p = pooled[r["instance_hash"]]
        obj = r.get("objective")
        row = {c: r.get(c) for c in RESULT_COLUMNS}
        row["best_bound"] = p["best_bound"]
        row["optimum"] = p["optimum"]
        row["conflict"] = p["conflict"]
        row["gap"] = gap_formula(obj, p["best_bound"])
        row["gap_to_optimum"] = gap_formula(obj, p["optimum"]) if p["optimum"] is not None else None
        row["win"] = obj is not None and obj == p["best_objective"]
        bs, ss = r.get("build_seconds"), r.get("solve_seconds")
        row["seconds"] = None if bs is None or ss is None else round(bs + ss, 6)
        row["error"] = r.get("error") or ""
        out.append(row)
    out.sort(key=lambda x: (str(x["instance_path"]), str(x["method"]), int(x["seed"] or 0)))
    return out


def write_results(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Write ``results.csv`` atomically (temporary file, fsync, rename)."""
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=list(RESULT_COLUMNS))
    for col in ("n", "memory", "block_size", "max_batch", "objective", "lower_bound", "best_bound", "optimum", "recorded_optimum"):
        frame[col] = frame[col].astype("Int64")
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as fh:
            frame.to_csv(fh, index=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def rebuild_results(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Re-derive ``results.csv`` from ``runs.jsonl`` alone (e.g. after a killed sweep)."""
    out = Path(out_dir)
    rows = derive_results(read_runs(out / RAW_FILE))
    write_results(rows, out / RESULTS_FILE)
    return rows


def summary_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method: runs, plans, optimal, errors, declined (beyond the method's size limit),
    gap mean/median/max (%) over the runs with a plan, gap to optimum, wins, time."""
    import numpy as np

    methods: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        methods.setdefault(r["method"], []).append(r)
    table = []
    for method, rs in methods.items():
        gaps = np.array([100 * r["gap"] for r in rs if r.get("gap") is not None], dtype=float)
        opt_gaps = np.array([100 * r["gap_to_optimum"] for r in rs if r.get("gap_to_optimum") is not None], dtype=float)
        secs = np.array([r["seconds"] for r in rs if r.get("seconds") is not None], dtype=float)
        table.append(
            {
                "method": method,
                "runs": len(rs),
                "plans": sum(r.get("objective") is not None for r in rs),
                "optimal": sum(r.get("status") == "optimal" for r in rs),
                "errors": sum(bool(r.get("error")) and r.get("stop_reason") != "too_large" for r in rs),
                "declined": sum(r.get("stop_reason") == "too_large" for r in rs),
                "gap_mean": float(gaps.mean()) if gaps.size else None,
                "gap_median": float(np.median(gaps)) if gaps.size else None,
                "gap_max": float(gaps.max()) if gaps.size else None,
                "opt_gap_mean": float(opt_gaps.mean()) if opt_gaps.size else None,
                "opt_gap_max": float(opt_gaps.max()) if opt_gaps.size else None,
                "with_optimum": int(opt_gaps.size),
                "wins": sum(bool(r.get("win")) for r in rs),
                "seconds_mean": float(secs.mean()) if secs.size else None,
                "seconds_max": float(secs.max()) if secs.size else None,
            }
        )
    table.sort(key=lambda t: (t["gap_mean"] is None, t["gap_mean"] if t["gap_mean"] is not None else 0.0, t["method"]))
    return table


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def summarize(rows: Sequence[dict[str, Any]], markdown: bool = False) -> str:
    """The per-method summary as text (fixed width) or a markdown table; gaps in percent."""
    header = ["method", "runs", "plans", "optimal", "errors", "declined", "gap mean %", "gap median %", "gap max %",
              "gap to opt mean %", "gap to opt max %", "wins", "time mean s", "time max s"]  # fmt: skip
    body = []
    for t in summary_table(rows):
        opt = (_fmt(t["opt_gap_mean"]), _fmt(t["opt_gap_max"])) if t["with_optimum"] else ("-", "-")
        body.append([
            t["method"], str(t["runs"]), str(t["plans"]), str(t["optimal"]), str(t["errors"]), str(t["declined"]),
            _fmt(t["gap_mean"]), _fmt(t["gap_median"]), _fmt(t["gap_max"]), *opt, str(t["wins"]),
            _fmt(t["seconds_mean"], ".3g"), _fmt(t["seconds_max"], ".3g"),
        ])  # fmt: skip
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True)))]
    for r in body:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(lines)
