"""The grid of a sweep: one :class:`RunSpec` per (instance file, method, seed), offline or online.

An *offline* spec runs a registered method (:func:`make_grid`); an *online* spec runs an online
policy under a predictor and an eviction mode through :func:`scheduler_milp.online.run.simulate`
(:func:`make_online_grid`).  A spec's :attr:`RunSpec.key` identifies the run for resuming; the
instance enters it by the hash of the file's bytes (and its path), so an edited instance file is a
new run.  An online key also names the policy, the predictor and the eviction mode.
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
    """One run of the grid: a method on an instance file with a seed and a time limit.

    An online run (``predictor`` set) names an online policy in ``method`` (``svf``,
    ``replan:svf``, ``hindsight:mcsf``, ...), the predictor spec and the eviction mode; its seed
    seeds the predictor and the policy, ``time_limit`` bounds each offline solve the policy makes
    (``replan:``, ``hindsight:``), not the run, and ``params`` are the policy's parameters.
    """

    instance_path: str
    instance_hash: str
    method: str
    seed: int = 0
    time_limit: float | None = None
    params: tuple[tuple[str, Any], ...] = ()
    threads: int = 1
    predictor: str | None = None
    eviction: str | None = None

    @property
    def online(self) -> bool:
        """Whether this is an online run (a policy under a predictor)."""
        return self.predictor is not None

    @property
    def key(self) -> str:
        """Identity for resuming: file hash and path, method (online: policy, predictor and
        eviction mode), seed, time limit, parameters."""
        params = json.dumps(dict(self.params), sort_keys=True)
        if self.online:
            return (
                f"{self.instance_hash}|{self.instance_path}|online:{self.method}|{self.predictor}"
                f"|{self.eviction}|seed={self.seed}|tl={self.time_limit}|{params}"
            )
        return f"{self.instance_hash}|{self.instance_path}|{self.method}|seed={self.seed}|tl={self.time_limit}|{params}"

    def hard_timeout(self, factor: float = 2.0, slack: float = 30.0) -> float | None:
        """Seconds after which the worker is killed (``None``: never).

        An online run has none: its ``time_limit`` bounds each offline solve of the policy, and a
        ``replan:`` run makes thousands of them on a long trace.
        """
        if self.online:
            return None
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


def make_online_grid(
    instance_paths: Sequence[str],
    policies: Sequence[str],
    predictors: Sequence[str],
    evictions: Sequence[str] = ("restart",),
    seeds: Sequence[int] = (0,),
    time_limit: float | None = None,
    params: dict[str, Any] | None = None,
) -> list[RunSpec]:
    """Every (instance, policy, predictor, eviction mode, seed) online run, instance-major.

    A clairvoyant ``hindsight:METHOD`` runs once per instance and seed (predictor ``exact``, mode
    ``restart``): its plan does not depend on predictions and never evicts.  Names are checked
    before any run (a one-line ``ParameterError`` or ``PredictionError``); each policy gets the
    ``params`` its parameter class has, typed by it, and a key no policy of the grid takes is an
    error.
    """
    from ..model.params import ParameterError
    from ..online.policies import is_clairvoyant, policy_params
    from ..online.predictors import parse_spec
    from ..online.view import EVICTION_MODES

    for spec in predictors:
        parse_spec(spec)
    bad = [m for m in evictions if m not in EVICTION_MODES]
    if bad or not evictions:
        raise ParameterError(
            f"unknown eviction mode(s) {', '.join(map(repr, bad)) or '(none given)'}; known: "
            f"{', '.join(EVICTION_MODES)}"
        )
    params = params or {}
    per_policy: dict[str, tuple[tuple[str, Any], ...]] = {}
    taken: set[str] = set()
    for policy in policies:
        cls = policy_params(policy)  # fail before any run on an unknown name
        own = {k: v for k, v in params.items() if k in cls.names()}
        parsed = cls.parse(own, policy)
        per_policy[policy] = tuple(sorted((k, getattr(parsed, k)) for k in own))
        taken.update(own)
    unused = sorted(set(params) - taken)
    if unused:
        raise ParameterError(
            f"no policy of the grid takes the parameter {', '.join(map(repr, unused))}"
        )
    grid = []
    for path in instance_paths:
        digest = file_hash(path)
        for policy in policies:
            if is_clairvoyant(policy):
                combos = [("exact", "restart")]
            else:
                combos = [(p, m) for p in predictors for m in evictions]
            for predictor, eviction in combos:
                for seed in seeds:
                    grid.append(
                        RunSpec(
                            path,
                            digest,
                            policy,
                            int(seed),
                            time_limit,
                            per_policy[policy],
                            predictor=predictor,
                            eviction=eviction,
                        )
                    )
    return grid
