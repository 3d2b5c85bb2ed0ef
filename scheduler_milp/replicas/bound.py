"""A lower bound for ``k`` replicas: every single-engine bound of the pooled instance (docs/capacity.md).

**Pooling.** The pooled instance has the same requests with budget ``k M`` and batch cap
``k max_batch``.  Take any ``k``-replica plan and forget the replicas: in every round the memory
in use is the sum over the replicas, each at most ``M``, so at most ``k M``; likewise at most
``k max_batch`` requests run; every start is at or after its arrival.  So its start rounds are a
plan of the pooled instance, with the same total latency.  The pooled problem is a relaxation:
its optimum is at most the ``k``-replica optimum, and every lower bound proven for the pooled
instance, whatever its proof, bounds every ``k``-replica plan.  No bound needs re-checking under
pooling, because each one is a theorem about all plans of the instance it is given, and the
``k``-replica plans are among the pooled instance's plans (each request's own peak stays below
``M <= k M``, the instance check).

What pooling gives away: a request may straddle replicas' memory in the relaxation (two halves of
two budgets); the bound is exact when the optimum of the pooled instance can be split, and weak
when few large requests dominate (``tests/replicas/test_bound.py`` measures it against exact
optima found by enumerating assignments).
"""

from __future__ import annotations

import time

import numpy as np

from ..bounds.lagrangian import best_lower_bound
from ..bounds.simple import busy_time_bound, volume_bound
from ..model.instance import Instance
from ..model.plan import Plan


def pooled_instance(instance: Instance, replicas: int) -> Instance:
    """The relaxation: same requests, budget ``k M``, batch cap ``k max_batch``."""
    return instance.replace(
        memory_budget=replicas * instance.memory_budget,
        max_batch=None if instance.max_batch is None else replicas * instance.max_batch,
        name=f"{instance.name}-pooled{replicas}",
    )


def fast_replica_bound(instance: Instance, replicas: int) -> tuple[int, str]:
    """The best closed-form bound (sum of outputs, volume, busy time) of the pooled instance."""
    pooled = pooled_instance(instance, replicas)
    found = [
        (pooled.trivial_lower_bound(), "sum_output"),
        (volume_bound(pooled), "volume"),
        (busy_time_bound(pooled), "busy-time"),
    ]
    return max(found, key=lambda x: x[0])


def replica_lower_bound(
    instance: Instance,
    replicas: int,
    time_limit: float | None = 30.0,
    start_round: np.ndarray | None = None,
) -> tuple[int, str]:
    """The best bound of :func:`best_lower_bound` on the pooled instance within ``time_limit``.

    ``start_round`` (a ``k``-replica plan's starts, valid for the pooled instance by the argument
    above) gives the Lagrangian its horizon and upper bound.
    """
    t0 = time.perf_counter()
    pooled = pooled_instance(instance, replicas)
    plan = None if start_round is None else Plan.checked(pooled, np.asarray(start_round))
    best = fast_replica_bound(instance, replicas)
    left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
    if left is not None and left <= 0:
        return best
    value, source = best_lower_bound(
        pooled, ub=None if plan is None else plan.total_latency, time_limit=left, plan=plan
    )
    return max([best, (value, source)], key=lambda x: x[0])
