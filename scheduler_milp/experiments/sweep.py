"""The resumable sweep: skip finished runs, execute the rest on a backend, derive the table.

:func:`run_sweep` holds the directory lock, appends each finished run to ``runs.jsonl`` as it
arrives, writes ``meta.json`` and, at the end or on Ctrl-C (:class:`SweepInterrupted`),
``results.csv`` for the runs finished so far.  :class:`Progress` is its progress bar.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .backends import LocalPool, run_ray
from .grid import RunSpec
from .results import derive_results, summarize, write_results
from .store import (
    META_FILE,
    RAW_FILE,
    RESULTS_FILE,
    DirectoryLock,
    RunLog,
    git_revision,
    package_versions,
    read_runs,
)

log = logging.getLogger(__name__)


class Progress:
    """A dependency-free progress bar on stderr: runs done/total, elapsed, estimated time left."""

    def __init__(
        self, total: int, already_done: int = 0, stream: TextIO | None = None, enabled: bool = True
    ):
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
            # the rate of the runs started by this sweep; runs already in the log cost nothing
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
        elif force or (
            self.done != self._last_done
            and (self.done >= self.total or now - self._last_line >= 10)
        ):
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last_line = now
            self._last_done = self.done

    def close(self) -> None:
        """End the in-place line."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class SweepReport:
    """What a sweep did: runs in the grid, skipped (already done), run now, and the table."""

    total: int
    skipped: int
    ran: int
    results_path: Path
    summary: str
    rows: list[dict[str, Any]] = field(default_factory=list)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep, raised once the finished runs' ``results.csv`` is written.

    A :class:`KeyboardInterrupt`, so callers that do not expect it still stop; ``report.rows``
    are the grid's runs finished so far, ``report.ran`` those of them recorded by this sweep.
    """

    def __init__(self, report: SweepReport):
        super().__init__(f"sweep interrupted: {len(report.rows)} of {report.total} runs finished")
        self.report = report


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
    """Run the grid into ``out_dir`` (resuming), then derive ``results.csv`` and the summary.

    On Ctrl-C the backend stops (runs in flight are lost, finished ones are in ``runs.jsonl``),
    ``results.csv`` is written for the finished runs and :class:`SweepInterrupted` is raised.
    """
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

        interrupted = False
        try:
            if not todo:
                pass
            elif backend == "local":
                LocalPool(jobs, plugins).run(todo, on_row, limit, tick=bar.update)
            elif backend == "ray":
                run_ray(todo, on_row, limit, jobs, address, tick=bar.update, plugins=plugins)
            else:
                raise ValueError(f"unknown backend {backend!r} (local or ray)")
        except KeyboardInterrupt:
            interrupted = True
        finally:
            runlog.close()
            bar.close()
        rows = derive_results(read_runs(raw_path), only_keys={s.key for s in specs})
        results_path = out / RESULTS_FILE
        write_results(rows, results_path)
        ran = count[0] - skipped if interrupted else len(todo)
        report = SweepReport(len(specs), skipped, ran, results_path, summarize(rows), rows)
        if interrupted:
            raise SweepInterrupted(report)
        return report


def _write_meta(
    out: Path,
    revision: str,
    versions: dict[str, str],
    command: Sequence[str] | None,
    backend: str,
    jobs: int,
) -> None:
    """``meta.json``: provenance and command line of this sweep."""
    from ..model.instance import write_json_atomic

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
