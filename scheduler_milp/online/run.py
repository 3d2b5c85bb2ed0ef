"""One online run from names: predictor spec, policy name, eviction mode (the library entry point).

:func:`simulate` is what ``scripts/simulate.py`` and the benchmarks call: it makes the
predictions, builds the policy (giving the true instance only to ``hindsight:METHOD``) and runs
the executor, whose result has already passed the independent check.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..model.instance import Instance
from ..timing.roundtime import RoundTime
from .executor import Execution, execute
from .policies import build_policy
from .predictors import Predictions, make_predictions
from .view import Setting


def simulate(
    instance: Instance,
    policy: str,
    predictor: str | Predictions = "exact",
    eviction: str = "restart",
    seed: int = 0,
    time_limit: float | None = None,
    params: dict[str, Any] | None = None,
    run_limit: float | None = None,
    clock: RoundTime | None = None,
    arrival_s: Any = None,
) -> Execution:
    """Run ``policy`` online on ``instance`` with predictions from ``predictor``.

    ``time_limit``: seconds of each offline solve the policy makes (``replan:``, ``hindsight:``);
    ``run_limit``: seconds for the whole run (``TimeoutError`` beyond); ``clock``: a round-time
    model on whose clock requests are admitted by their arrival in seconds (``arrival_s``, default
    the instance's; ``execute``).  ``seconds`` of the
    result covers the predictions, the policy's construction (a hindsight plan) and the run.
    """
    t0 = time.perf_counter()
    predictions = (
        predictor
        if isinstance(predictor, Predictions)
        else make_predictions(instance, predictor, seed)
    )
    setting = Setting(
        instance.memory_budget, instance.block_size, instance.max_batch, eviction, seed
    )
    pol = build_policy(
        policy,
        setting,
        params,
        oracle=instance if policy.startswith("hindsight:") else None,
        seconds=time_limit,
    )
    deadline = math.inf if run_limit is None else t0 + run_limit
    execution = execute(
        instance,
        pol,
        predictions,
        eviction,
        seed=seed,
        deadline=deadline,
        clock=clock,
        arrival_s=arrival_s,
    )
    execution.seconds = time.perf_counter() - t0
    return execution


def write_run(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write a run record atomically; one line per request in ``segments`` and ``completion``."""
    path = Path(path)
    head = {k: v for k, v in record.items() if k not in ("segments", "completion")}
    parts = [json.dumps(head, indent=2)[:-2]]
    for key in ("segments", "completion"):
        if key in record:
            rows = ",\n".join(
                f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in record[key].items()
            )
            parts.append(f',\n  "{key}": {{\n{rows}\n  }}')
    text = "".join(parts) + "\n}\n"
    fd, tmp = tempfile.mkstemp(
        dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
