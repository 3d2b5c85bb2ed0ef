"""One run of the grid, as executed in a worker: load the instance, solve, return a raw row.

:func:`run_one` never raises: a method that declines the instance (``ModelTooLarge``) gives a
row with ``stop_reason`` ``too_large``, any other exception (including a ``ParameterError`` for
an unknown parameter) a row with its one-line ``error``.  :func:`load_plugins` imports modules
that register extra methods, in whichever process runs them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..model.params import ParameterError
from ..model.result import ModelTooLarge
from .grid import RunSpec

log = logging.getLogger(__name__)


def one_line(err: BaseException) -> str:
    """An exception as one line of at most 500 characters: ``Type: message``."""
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


def run_one(
    spec: RunSpec, instance_text: str | None = None, plugins: Sequence[str] = ()
) -> dict[str, Any]:
    """Run one grid point and return its raw row; never raises (errors go to ``error``).

    ``instance_text`` (the file's content) lets a remote worker run without the file system;
    ``plugins`` are imported first (see :func:`load_plugins`).
    """
    from ..model.instance import instance_from_dict, load_instance
    from ..model.result import SolveOptions
    from ..registry import get_method, solve

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
        row["kind"] = get_method(spec.method).kind
        options = SolveOptions(
            time_limit=spec.time_limit,
            seed=spec.seed,
            threads=spec.threads,
            params=dict(spec.params),
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
    except ModelTooLarge as err:  # beyond the method's size limit or its own model-size check
        row.update(stop_reason="too_large", error=f"declined: {one_line(err)}")
    except (
        ParameterError
    ) as err:  # an unknown or ill-typed parameter: the run's error, no traceback
        row["error"] = one_line(err)
    except Exception as err:  # a failing method is a recorded result, not the end of the sweep
        row["error"] = one_line(err)
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


def failure_row(spec: RunSpec, error: str, stop_reason: str, wall: float) -> dict[str, Any]:
    """The row of a run that did not return one: its worker died or overran the hard timeout."""
    return {**_base_row(spec, error, stop_reason), "wall_seconds": round(wall, 6)}
