"""What a sweep keeps on disk: the append-only run log, the directory lock, provenance.

:class:`RunLog` is written by the sweep's parent process alone; :func:`read_runs` reads it back
tolerating a torn last line.  :class:`DirectoryLock` keeps two sweeps out of one directory.
:func:`git_revision` and :func:`package_versions` are stamped on every row and in ``meta.json``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

RAW_FILE = "runs.jsonl"
RESULTS_FILE = "results.csv"
META_FILE = "meta.json"
LOCK_FILE = ".lock"

VERSION_PACKAGES = (
    "scheduler_milp",
    "numpy",
    "pandas",
    "pyomo",
    "highspy",
    "ortools",
    "matplotlib",
    "ray",
)


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
            raise RuntimeError(
                f"{self.path.parent}: another sweep is writing this directory"
            ) from None
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
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
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
