"""A plan for ``k`` identical engines: which replica runs each request, and one plan per replica.

Every request runs on one replica, from start to end, without migration; each replica has the
instance's budget ``M`` (and batch cap).  A replica plan is valid exactly when each replica's
plan, on :meth:`Instance.subset` of the requests assigned to it, passes the one validator
:func:`scheduler_milp.model.plan.validate`: the validator stays the arbiter and is not changed.
Its total latency is the sum of the replicas' (docs/capacity.md, "Replicas").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.instance import Instance, IntArray
from ..model.plan import Latencies, Plan, PlanError, Violation, validate
from ..timing.clock import FloatArray, arrival_seconds, plan_segments
from ..timing.metrics import RequestTimes, times_of_segments
from ..timing.roundtime import UNIT, RoundTime


class ReplicaError(ValueError):
    """A replica assignment that is not one (one-line message)."""


def replica_indices(assignment: IntArray, replicas: int) -> list[IntArray]:
    """The request indices of each replica, ascending."""
    return [np.flatnonzero(assignment == r).astype(np.int64) for r in range(replicas)]


def check_assignment(instance: Instance, replicas: int, assignment: Any) -> IntArray:
    """``assignment`` as an int array of ``n`` replicas in ``0 .. replicas - 1`` (raises :class:`ReplicaError`)."""
    if replicas < 1:
        raise ReplicaError(f"the number of replicas must be positive (got {replicas})")
    arr = np.asarray(assignment)
    if arr.shape != (instance.n,):
        raise ReplicaError(f"{arr.size} replica numbers for {instance.n} requests")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ReplicaError("replica numbers must be integers")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero((arr < 0) | (arr >= replicas))
    if bad.size:
        i = int(bad[0])
        raise ReplicaError(
            f"request '{instance.ids[i]}': replica {int(arr[i])} is not in 0..{replicas - 1}"
        )
    return arr


def validate_replicas(
    instance: Instance, replicas: int, assignment: Any, start_round: Any
) -> list[Violation]:
    """Every violation of a replica plan: each replica's plan checked by the one validator.

    A violation found on replica ``r`` names it (``replica r: ...``); a bad assignment is a single
    violation of kind ``replica``.
    """
    try:
        arr = check_assignment(instance, replicas, assignment)
    except ReplicaError as err:
        return [Violation("replica", str(err))]
    starts = np.asarray(start_round)
    if starts.shape != (instance.n,):
        return [
            Violation("missing", f"plan has {starts.size} start rounds for {instance.n} requests")
        ]
    out: list[Violation] = []
    for r, idx in enumerate(replica_indices(arr, replicas)):
        if idx.size == 0:
            continue
        sub = instance.subset(idx, name=f"{instance.name}-replica{r}")
        for v in validate(sub, starts[idx]):
            out.append(Violation(v.kind, f"replica {r}: {v.message}", v.request, v.round, v.excess))
    return out


@dataclass(frozen=True, eq=False)
class ReplicaPlan(Latencies):
    """Start rounds and replicas of every request of ``instance``; valid by construction (:meth:`checked`)."""

    instance: Instance
    replicas: int
    assignment: IntArray
    start_round: IntArray

    @classmethod
    def checked(
        cls, instance: Instance, replicas: int, assignment: Any, start_round: Any
    ) -> ReplicaPlan:
        """Build the plan and raise :class:`PlanError` unless every replica's plan is valid."""
        problems = validate_replicas(instance, replicas, assignment, start_round)
        if problems:
            raise PlanError(problems)
        arr = np.asarray(assignment, dtype=np.int64).copy()
        st = np.asarray(start_round, dtype=np.int64).copy()
        arr.setflags(write=False)
        st.setflags(write=False)
        return cls(instance, int(replicas), arr, st)

    @classmethod
    def from_plans(cls, instance: Instance, replicas: int, assignment: Any, plans: Mapping[int, Plan]) -> ReplicaPlan:  # fmt: skip
        """Assemble from one plan per non-empty replica (``plans[r]`` on the subset of replica ``r``)."""
        arr = check_assignment(instance, replicas, assignment)
        starts = np.full(instance.n, -1, dtype=np.int64)
        for r, idx in enumerate(replica_indices(arr, replicas)):
            if idx.size == 0:
                continue
            plan = plans[r]
            if plan.instance.ids != tuple(instance.ids[i] for i in idx):
                raise ReplicaError(f"the plan of replica {r} is not on its requests")
            starts[idx] = plan.start_round
        return cls.checked(instance, replicas, arr, starts)

    def violations(self) -> list[Violation]:
        """Re-run the validator on every replica (empty when valid)."""
        return validate_replicas(self.instance, self.replicas, self.assignment, self.start_round)

    def indices(self) -> list[IntArray]:
        """Request indices of each replica."""
        return replica_indices(self.assignment, self.replicas)

    def replica_instance(self, r: int) -> Instance:
        """The sub-instance of replica ``r`` (same budget, block size and cap)."""
        return self.instance.subset(self.indices()[r], name=f"{self.instance.name}-replica{r}")

    def replica_plan(self, r: int) -> Plan:
        """The (validated) plan of replica ``r``."""
        idx = self.indices()[r]
        return Plan.checked(self.replica_instance(r), self.start_round[idx])

    def per_replica_objective(self) -> list[int]:
        """Total latency of each replica (0 for an empty one)."""
        return [int(self.latency[idx].sum()) for idx in self.indices()]

    def starts_by_id(self) -> dict[str, int]:
        """``{id: start round}``."""
        return {rid: int(v) for rid, v in zip(self.instance.ids, self.start_round, strict=True)}

    def replica_by_id(self) -> dict[str, int]:
        """``{id: replica}`` as written in plan files."""
        return {rid: int(v) for rid, v in zip(self.instance.ids, self.assignment, strict=True)}

    def times(
        self,
        model: RoundTime = UNIT,
        round_seconds: float | None = None,
        arrival: FloatArray | None = None,
    ) -> RequestTimes:
        """Per-request times in seconds: each replica on its own clock (one engine each)."""
        return replica_times(self.instance, self.replicas, self.assignment, self.start_round, model, round_seconds, arrival)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The plan-file keys of a replica plan: ``replicas``, ``starts`` and ``replica`` by id."""
        return {
            "instance": self.instance.name,
            "replicas": self.replicas,
            "objective": self.objective,
            "average_latency": self.average_latency,
            "per_replica_objective": self.per_replica_objective(),
            "starts": self.starts_by_id(),
            "replica": self.replica_by_id(),
        }


def read_replica_plan(instance: Instance, data: Mapping[str, Any]) -> ReplicaPlan:
    """The replica plan of a plan file's ``starts``, ``replica`` (by id) and ``replicas`` (a one-engine file: all on 0)."""
    starts = data.get("starts")
    if not isinstance(starts, Mapping):
        raise ReplicaError("the plan file has no 'starts' object")
    by_id = data.get("replica") or {}
    if not isinstance(by_id, Mapping):
        raise ReplicaError("'replica' must be an object by request id")
    replicas = int(data.get("replicas") or (max(by_id.values(), default=0) + 1))
    missing = [rid for rid in instance.ids if rid not in starts]
    if missing:
        raise ReplicaError(f"request '{missing[0]}' has no start round")
    st = [int(starts[rid]) for rid in instance.ids]
    assign = [int(by_id.get(rid, 0)) for rid in instance.ids]
    return ReplicaPlan.checked(instance, replicas, assign, st)


def replica_times(
    instance: Instance,
    replicas: int,
    assignment: Any,
    start_round: Any,
    model: RoundTime = UNIT,
    round_seconds: float | None = None,
    arrival: FloatArray | None = None,
) -> RequestTimes:
    """Per-request times of a replica plan (or of a one-engine plan with ``replicas=1``).

    Arrivals in seconds come from the whole instance (so that ``arrival_s`` aligned with its
    requests stays aligned); each replica's rounds run on their own clock.
    """
    arr = np.asarray(assignment, dtype=np.int64)
    starts = np.asarray(start_round, dtype=np.int64)
    if arrival is None:
        arrival = arrival_seconds(instance, model, round_seconds)
    n = instance.n
    begin, first, done = np.zeros(n), np.zeros(n), np.zeros(n)
    for idx in replica_indices(arr, replicas):
        if idx.size == 0:
            continue
        sub = instance.subset(idx) if idx.size < n else instance
        t = times_of_segments(sub, plan_segments(sub, starts[idx]), model, arrival[idx])
        begin[idx], first[idx], done[idx] = t.start, t.first_token, t.completion
    return RequestTimes(instance, model, arrival, begin, first, done)
