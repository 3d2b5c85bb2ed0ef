"""Export a plan for vLLM's priority scheduling (``scheduling_policy="priority"``), docs/capacity.md.

Each request's priority is its place in the plan's start order (start round, then position in
the instance): 0 for the first to start.  vLLM serves lower priority values first
(``LLM.generate(prompts, params, priority=[...])``), falling back to arrival order on ties; the
values here are distinct, so the order is the plan's.  For a replica plan each replica gets its
own list (one engine each), with priorities counted per replica.

What the engine does not reproduce: it admits requests greedily in this order whenever its own
memory check lets the next one in, so it may start a request earlier than the plan (when the plan
left room idle on purpose), may pre-empt a running request to admit a waiting one with a smaller
value, and its KV blocks and token budget are its own, not the instance's ``M``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..model.instance import Instance, IntArray, write_json_atomic
from ..model.plan import Plan
from .plan import ReplicaPlan

FORMAT = "vllm-priority"


def start_order_priority(instance: Instance, start_round: IntArray) -> IntArray:
    """Priority of each request: its rank in (start round, position) order, from 0."""
    order = np.lexsort((np.arange(instance.n), np.asarray(start_round, dtype=np.int64)))
    prio = np.empty(instance.n, dtype=np.int64)
    prio[order] = np.arange(instance.n)
    return prio


def _requests(instance: Instance, idx: IntArray, start_round: IntArray) -> list[dict[str, Any]]:
    prio = start_order_priority(instance.subset(idx) if idx.size < instance.n else instance, start_round[idx])  # fmt: skip
    rows = [
        {"id": instance.ids[i], "priority": int(p), "start_round": int(start_round[i])}
        for i, p in zip(idx, prio, strict=True)
    ]
    return sorted(rows, key=lambda r: r["priority"])


def vllm_priority(plan: Plan | ReplicaPlan, method: str | None = None) -> dict[str, Any]:
    """The export as a JSON-ready dict: ``requests`` (one engine) or ``replicas`` (one list each)."""
    inst = plan.instance
    start = np.asarray(plan.start_round, dtype=np.int64)
    out: dict[str, Any] = {
        "format": FORMAT,
        "instance": inst.name,
        "method": method,
        "objective": plan.total_latency,
        "usage": (
            "LLM(model=..., scheduling_policy='priority').generate(prompts, params, "
            "priority=[p[id] for id in ids]); lower values are served first"
        ),
    }
    if isinstance(plan, ReplicaPlan) and plan.replicas > 1:
        out["replicas"] = [
            {"replica": r, "requests": _requests(inst, idx, start)}
            for r, idx in enumerate(plan.indices())
        ]
    else:
        out["requests"] = _requests(inst, np.arange(inst.n, dtype=np.int64), start)
    return out


def write_vllm_priority(
    path: str | os.PathLike[str], plan: Plan | ReplicaPlan, method: str | None = None
) -> None:
    """Write :func:`vllm_priority` atomically."""
    write_json_atomic(path, vllm_priority(plan, method))
