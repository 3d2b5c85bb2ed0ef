"""The grid of a sweep: one :class:`RunSpec` per (instance file, method, seed).

A spec's :attr:`RunSpec.key` identifies the run for resuming; the instance enters it by the hash
of the file's bytes (and its path), so an edited instance file is a new run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


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
    """All (instance, method, seed) runs, instance-major so that early results cover instances.

    Each method gets the ``params`` its parameter class has, typed by it (so that a run's key does
    not depend on how a value was spelt); a key that no method of the grid takes is an error.
    """
    from ..model.params import ParameterError
    from ..registry import get_method

    params = params or {}
    per_method: dict[str, tuple[tuple[str, Any], ...]] = {}
    taken: set[str] = set()
    for m in methods:
        spec = get_method(m)  # fail before any run on an unknown name
        own = {k: v for k, v in params.items() if k in spec.params_class().names()}
        parsed = spec.parse_params(own)
        per_method[m] = tuple(sorted((k, getattr(parsed, k)) for k in own))
        taken.update(own)
    unused = sorted(set(params) - taken)
    if unused:
        raise ParameterError(
            f"no method of the grid takes the parameter {', '.join(map(repr, unused))}"
        )
    grid = []
    for path in instance_paths:
        digest = file_hash(path)
        for method in methods:
            for seed in seeds:
                grid.append(
                    RunSpec(
                        path, digest, method, int(seed), time_limit, per_method[method], threads
                    )
                )
    return grid
