"""One run of the grid, as executed in a worker: load the instance, solve, return a raw row.

An offline spec is solved by the registry; an online spec (a policy, a predictor, an eviction
mode) is executed by :func:`scheduler_milp.online.run.simulate`, whose execution has passed the
independent check (:func:`scheduler_milp.online.check.check_execution`) before it returns: a
rejected execution is the run's error.

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
        if spec.online:
            row["kind"] = "hindsight" if spec.method.startswith("hindsight:") else "online"
            row.update(_run_online(spec, instance))
        else:
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


def _run_online(spec: RunSpec, instance: Any) -> dict[str, Any]:
    """The result columns of an online run: predictions, then the checked execution."""
    from ..online.predictors import make_predictions
    from ..online.run import simulate

    assert spec.predictor is not None and spec.eviction is not None
    t0 = time.perf_counter()
    predictions = make_predictions(instance, spec.predictor, spec.seed)
    predict_seconds = time.perf_counter() - t0
    execution = simulate(
        instance,
        spec.method,
        predictions,
        spec.eviction,
        seed=spec.seed,
        time_limit=spec.time_limit,
        params=dict(spec.params),
    )
    ttft = execution.ttft_summary()
    stats = execution.stats
    bound = stats.get("plan_lower_bound") if spec.method.startswith("hindsight:") else None
    return {
        "status": "executed",
        "stop_reason": "completed",
        "objective": execution.objective,
        "lower_bound": bound,  # a hindsight plan's bound holds for the true instance
        "own_gap": None,
        "prediction_error": predictions.errors(instance)["mean_abs_log_error"],
        "evictions": execution.evictions,
        "wasted_rounds": execution.wasted_rounds,
        **{f"ttft_{k}": v for k, v in ttft.items()},
        "peak_memory": execution.peak_memory,
        "mean_memory": round(execution.mean_memory, 3),
        "makespan": execution.makespan,
        "decisions": execution.decisions,
        "policy_stats": stats,
        "build_seconds": round(predict_seconds, 6),
        "solve_seconds": round(execution.seconds, 6),
    }


def _base_row(spec: RunSpec, error: str, stop_reason: str) -> dict[str, Any]:
    """The columns every run row has, before the run fills in its results (status ``unknown``)."""
    row: dict[str, Any] = {
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
    if spec.online:
        row.update(policy=spec.method, predictor=spec.predictor, eviction=spec.eviction)
    return row


def failure_row(spec: RunSpec, error: str, stop_reason: str, wall: float) -> dict[str, Any]:
    """The row of a run that did not return one: its worker died or overran the hard timeout."""
    return {**_base_row(spec, error, stop_reason), "wall_seconds": round(wall, 6)}
