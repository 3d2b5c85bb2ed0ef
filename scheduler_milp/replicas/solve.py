"""Schedule ``k`` replicas: route, schedule each replica with a registered method, bound the whole.

:func:`solve_replicas` is the entry point of ``--replicas K`` and of ``scripts/capacity.py``. Its
time limit (or the caller's deadline) covers everything: with ``optimised`` routing a third of the plan's time improves the
assignment, the rest schedules the replicas one after the other (each gets an equal share of
what is left); :data:`BOUND_SHARE` of the whole is kept for the pooled lower bound
(:mod:`.bound`), computed after the plan so that the Lagrangian gets its horizon. The caller's
stop flag (Ctrl-C) ends the current replica's method with its best plan, the remaining replicas
get their fast plans and the bound is the closed-form one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model.deadline import Deadline
from ..model.instance import Instance
from ..model.result import SolveOptions, gap
from ..registry import solve
from .bound import fast_replica_bound, replica_lower_bound
from .plan import ReplicaPlan, replica_indices
from .routing import ROUTINGS, improve, route

#: share of the time limit kept for the lower bound of the pooled instance
BOUND_SHARE = 0.25
#: seconds of the pooled bound when no time limit is given
DEFAULT_BOUND_SECONDS = 30.0
#: share of the plan's time that ``optimised`` routing spends moving requests
IMPROVE_SHARE = 1 / 3


@dataclass
class ReplicaResult:
    """A replica plan, its proven lower bound (of every ``k``-replica plan) and how it was found."""

    instance: Instance
    replicas: int
    method: str
    routing: str
    plan: ReplicaPlan
    lower_bound: int | None = None
    bound_source: str | None = None
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = self.plan.violations()  # the one validator, on every replica
        if problems:
            from ..model.plan import PlanError

            raise PlanError(problems)
        if self.lower_bound is not None and self.lower_bound > self.plan.total_latency:
            raise AssertionError(
                f"replica bound {self.lower_bound} above a valid plan's objective "
                f"{self.plan.total_latency}: the bound is wrong"
            )

    @property
    def objective(self) -> int:
        """Total latency over all replicas."""
        return self.plan.total_latency

    @property
    def gap(self) -> float | None:
        """``(objective - lower_bound) / objective``."""
        return gap(self.objective, self.lower_bound)

    @property
    def status(self) -> str:
        """``optimal`` when the bound meets the objective, else ``feasible``."""
        return (
            "optimal"
            if self.lower_bound is not None and self.lower_bound >= self.objective
            else "feasible"
        )

    def certificate(self) -> str:
        """What the gap certifies, in words."""
        if self.lower_bound is None:
            return "nothing: no bound"
        if self.status == "optimal":
            return f"this plan is optimal for {self.replicas} replicas (proved by {self.bound_source} on the pooled instance)"
        return (
            f"no plan on {self.replicas} replicas has a total latency below {self.lower_bound} "
            f"({self.bound_source} on the pooled instance), so none is more than "
            f"{100 * (self.gap or 0.0):.2f}% better than this one"
        )

    def summary(self) -> str:
        """A short human summary, like :meth:`SolveResult.summary`."""
        inst, plan = self.instance, self.plan
        g = self.gap
        return "\n".join(
            [
                f"instance   {inst.name} (n={inst.n}, M={inst.memory_budget} per replica)",
                f"replicas   {self.replicas} (routing {self.routing})",
                f"method     {self.method}",
                f"status     {self.status}",
                f"objective  {self.objective}  (total latency; average {plan.average_latency:.3f} rounds)",
                f"replica    objectives {plan.per_replica_objective()}, sizes {self.stats.get('per_replica_size')}",
                f"bound      {self.lower_bound}  ({self.bound_source}, pooled instance)",
                f"gap        {'-' if g is None else f'{100 * g:.3f}%'}",
                f"certified  {self.certificate()}",
                f"time       {self.seconds:.3f}s",
            ]
        )

    def write(self, path: str, extra: dict[str, Any] | None = None) -> None:
        """Write the plan file atomically (``extra`` keys added, e.g. ``timing``)."""
        from ..model.instance import write_json_atomic

        write_json_atomic(path, {**self.to_plan_dict(), **(extra or {})})

    def to_plan_dict(self) -> dict[str, Any]:
        """The plan file: the one-engine keys plus ``replicas`` and ``replica`` by id."""
        out = self.plan.to_dict()
        out.update(
            method=self.method,
            routing=self.routing,
            status=self.status,
            lower_bound=self.lower_bound,
            bound_source=self.bound_source,
            gap=self.gap,
            seconds=round(self.seconds, 6),
            stats=self.stats,
        )
        return out


def solve_replicas(
    instance: Instance,
    replicas: int,
    method: str = "auto",
    routing: str = "least-loaded",
    options: SolveOptions | None = None,
    bound: bool = True,
    evaluate: str = "svf",
) -> ReplicaResult:
    """Route, schedule every replica with ``method``, and bound (module docstring)."""
    if routing not in ROUTINGS:
        raise ValueError(f"unknown routing {routing!r}; known: {', '.join(ROUTINGS)}")
    if replicas < 1:
        raise ValueError(f"the number of replicas must be positive (got {replicas})")
    options = options or SolveOptions()
    t0 = time.perf_counter()
    budget = options.budget()  # the caller's deadline, or the time limit from now
    plan_deadline = budget.share(1.0 - BOUND_SHARE) if bound else budget
    stopped = options.stop or (lambda: False)
    stats: dict[str, Any] = {}
    assignment = np.zeros(instance.n, dtype=np.int64) if replicas == 1 else route(instance, replicas, routing)  # fmt: skip
    if routing == "optimised" and replicas > 1:
        until = (
            plan_deadline.share(IMPROVE_SHARE) if plan_deadline.limited else Deadline.after(10.0)
        )
        assignment, stats["improve"] = improve(
            instance, replicas, assignment, until.at, evaluate, options.seed, stop=stopped
        )
    groups = replica_indices(assignment, replicas)
    starts = np.zeros(instance.n, dtype=np.int64)
    own_bounds: list[int] = []
    methods_used: list[str] = []
    for r, idx in enumerate(groups):
        if idx.size == 0:
            continue
        remaining = [g for g in groups[r:] if g.size]
        left = plan_deadline.remaining() / len(remaining) if plan_deadline.limited else None
        sub = instance.subset(idx, name=f"{instance.name}-replica{r}")
        result = solve(sub, method, _options(options, left))
        if result.plan is None:  # the method ended without a plan: the fast plan stands in
            result = solve(sub, evaluate, SolveOptions(seed=options.seed))
            methods_used.append(evaluate)
        else:
            methods_used.append(method)
        assert result.plan is not None
        starts[idx] = result.plan.start_round
        own_bounds.append(int(result.lower_bound or 0))
    plan = ReplicaPlan.checked(instance, replicas, assignment, starts)
    stats["per_replica_objective"] = plan.per_replica_objective()
    stats["per_replica_size"] = [int(g.size) for g in groups]
    stats["methods"] = methods_used
    # the replicas' own bounds bound this assignment only, not every k-replica plan
    stats["assignment_bound"] = int(sum(own_bounds))
    if stopped():
        stats["interrupted"] = True
    if bound and not stopped():
        left = budget.remaining() if budget.limited else DEFAULT_BOUND_SECONDS
        lb, src = replica_lower_bound(instance, replicas, max(0.1, left), plan.start_round)
    else:
        lb, src = fast_replica_bound(instance, replicas)
    if replicas == 1 and stats["assignment_bound"] > (lb or 0):
        lb, src = stats["assignment_bound"], "method"  # one replica: its own bound is global
    return ReplicaResult(
        instance, replicas, method, routing if replicas > 1 else "-", plan, lb, src,
        time.perf_counter() - t0, stats,
    )  # fmt: skip


def _options(base: SolveOptions, time_limit: float | None) -> SolveOptions:
    """One replica's options: its share of the time, the caller's seed, threads and stop flag."""
    return SolveOptions(
        time_limit=None if time_limit is None or not math.isfinite(time_limit) else time_limit,
        stop=base.stop,
        seed=base.seed,
        threads=base.threads,
        params=dict(base.params),
        verbose=base.verbose,
    )
