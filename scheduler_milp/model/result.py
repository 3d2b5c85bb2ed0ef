"""What a method returns: :class:`SolveResult`, and the options every method accepts.

A result keeps *why the method stopped* (``stop_reason``) apart from *what we hold* (``status``:
no plan / a feasible plan / a proven-optimal plan / a proof of infeasibility).  The status is
derived, never asserted: ``optimal`` only when the proven lower bound equals the plan's objective.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .deadline import Deadline
from .instance import Instance, write_json_atomic
from .plan import Plan

log = logging.getLogger(__name__)


class Status(enum.StrEnum):
    """What we hold after a run (docs/formats.md plan ``status``)."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNKNOWN = "unknown"


class StopReason(enum.StrEnum):
    """Why a method stopped."""

    COMPLETED = (
        "completed"  # ran to its natural end (a heuristic finished, a solver proved its claim)
    )
    TIME_LIMIT = "time_limit"
    ITERATION_LIMIT = "iteration_limit"
    TOO_LARGE = "too_large"  # the method declined: the instance is beyond its size limit
    ERROR = "error"
    STOPPED = "stopped"  # the caller's stop criterion (SolveOptions.stop) ended it early
    INTERRUPTED = "interrupted"  # the user pressed Ctrl-C; the best plan so far is kept


class ModelTooLarge(ValueError):
    """A method declines an instance as beyond what it can build or solve (one-line message).

    A ``ValueError`` so that callers that treat bad requests alike keep working; the CLI, the
    runner (``stop_reason`` ``too_large``, counted as *declined*) and ``auto`` tell it apart.
    """


#: ``stats["bound_source"]`` of the bound every result holds at least: the sum of output lengths
TRIVIAL_BOUND_SOURCE = "sum_output"

#: what each bound source proves, in words (the summary's "certified by" line)
BOUND_SOURCES: dict[str, str] = {
    TRIVIAL_BOUND_SOURCE: "the trivial bound (every request alone, started on arrival)",
    "volume": "the volume bound (memory-time volumes packed into the budget)",
    "busy-time": "the busy-time bound (volume packed smallest first, with each request's offset)",
    "volume-bound": "the volume bound (memory-time volumes packed into the budget)",
    "busy-bound": "the busy-time bound (volume packed smallest first, with each request's offset)",
    "lagrange": "a Lagrangian relaxation of the time-indexed model's memory rows",
    "sawtooth": "the sawtooth lift of the Lagrangian (memory grows between completions)",
    "lp": "the LP relaxation of the time-indexed model",
    "lp_relaxation": "the LP relaxation of the time-indexed model",
    "cpsat": "CP-SAT's proof on the time-indexed model",
    "milp": "the MILP solver's proof on the time-indexed model",
    "dp": "the exact best-first search",
    "lns-whole-window": "CP-SAT's proof on a window holding every request",
}


def gap(objective: float | None, lower_bound: float | None) -> float | None:
    """The one gap formula (docs/model.md): ``(objective - lower_bound) / objective``."""
    if objective is None or lower_bound is None or objective <= 0:
        return None
    return max(0.0, (objective - lower_bound) / objective)


def round_bound(value: float | None, tol: float = 1e-6) -> int | None:
    """A valid integer lower bound from a float solver bound: ceil, forgiving float noise only."""
    if value is None or not math.isfinite(value):
        return None
    return math.ceil(value - tol)


@dataclass
class SolveOptions:
    """Options that every registered method accepts (methods ignore what does not apply)."""

    time_limit: float | None = None  # seconds, covering model building and solving
    seed: int = 0
    threads: int = 2
    solver: str | None = None  # Pyomo solver name for ``milp`` (default HiGHS)
    warm_start: Plan | None = None
    iteration_limit: int | None = None
    params: dict[str, Any] = field(default_factory=dict)  # method-specific knobs
    verbose: bool = False
    # polled by the long searches (repack, lns) between moves: True ends them early with the best
    # plan so far (auto uses it to stop improving a plan that a bound has proven optimal)
    stop: Callable[[], bool] | None = None
    # called by the long plan searches (repack) with a new best plan, validated, at most every few
    # seconds: auto offers it at once, so its log and gap history follow a search of many minutes
    progress: Callable[[Plan], None] | None = None
    # called with ``(best objective, best bound)`` (either may be None) whenever a portfolio's best
    # plan or bound improves: the command line's progress line
    on_improvement: Callable[[int | None, int | None], None] | None = None

    # the time budget, started by the registry when the method is called (so that building and
    # solving count); a method called directly starts it from ``time_limit`` in :meth:`budget`
    deadline: Deadline | None = None

    def budget(self) -> Deadline:
        """The run's :class:`Deadline`: the registry's, or ``time_limit`` from now."""
        return self.deadline if self.deadline is not None else Deadline.after(self.time_limit)


@dataclass
class SolveResult:
    """The outcome of one method on one instance."""

    method: str
    instance: Instance
    plan: Plan | None
    lower_bound: int | None = None
    stop_reason: StopReason = StopReason.COMPLETED
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    proven_infeasible: bool = False
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.plan is not None:
            # Every plan that leaves a method passes the one validator.
            problems = self.plan.violations()
            if problems:
                from .plan import PlanError

                raise PlanError(problems)
            if self.lower_bound is not None and self.lower_bound > self.plan.total_latency:
                raise AssertionError(
                    f"{self.method}: lower bound {self.lower_bound} above a valid plan's objective "
                    f"{self.plan.total_latency}: the bound is wrong"
                )
        # sum of output lengths is always a proven bound; report the best bound we hold.
        if not self.proven_infeasible:
            trivial = self.instance.trivial_lower_bound()
            if self.lower_bound is None or self.lower_bound < trivial:
                self.lower_bound = trivial
                self.stats["bound_source"] = TRIVIAL_BOUND_SOURCE

    @property
    def own_bound(self) -> int | None:
        """The method's own proven bound, ``None`` when it holds only the trivial one."""
        return None if self.stats.get("bound_source") == TRIVIAL_BOUND_SOURCE else self.lower_bound

    @property
    def objective(self) -> int | None:
        """Total latency of the plan, recomputed from its start rounds."""
        return None if self.plan is None else self.plan.total_latency

    @property
    def status(self) -> Status:
        """Derived: optimal only when the bound meets the objective."""
        if self.proven_infeasible:
            return Status.INFEASIBLE
        if self.plan is None:
            return Status.UNKNOWN
        if self.lower_bound is not None and self.lower_bound >= self.plan.total_latency:
            return Status.OPTIMAL
        return Status.FEASIBLE

    @property
    def gap(self) -> float | None:
        """``(objective - lower_bound) / objective``."""
        return gap(self.objective, self.lower_bound)

    @property
    def seconds(self) -> float:
        """Build plus solve time."""
        return self.build_seconds + self.solve_seconds

    def to_plan_dict(self) -> dict[str, Any]:
        """The plan file of docs/formats.md, with extra keys for times, gap and statistics."""
        out: dict[str, Any] = {
            "instance": self.instance.name,
            "method": self.method,
            "status": self.status.value,
            "objective": self.objective,
            "lower_bound": self.lower_bound,
            "starts": self.plan.starts_by_id() if self.plan is not None else {},
            "seconds": round(self.seconds, 6),
            "gap": self.gap,
            "stop_reason": self.stop_reason.value,
            "build_seconds": round(self.build_seconds, 6),
            "solve_seconds": round(self.solve_seconds, 6),
        }
        if self.plan is not None:
            out["average_latency"] = self.plan.average_latency
            out["makespan"] = self.plan.makespan
            out["peak_memory"] = self.plan.peak_memory
        if self.stats:
            out["stats"] = _jsonable(self.stats)
        return out

    def write(self, path: str, extra: dict[str, Any] | None = None) -> None:
        """Write the plan file atomically (``extra`` keys added, e.g. ``timing``)."""
        write_json_atomic(path, {**self.to_plan_dict(), **(extra or {})})

    def summary(self) -> str:
        """A short human summary: method, status, objective, average, bound, gap, times."""
        lines = [
            f"instance   {self.instance.name} (n={self.instance.n}, M={self.instance.memory_budget})"
        ]
        lines.append(f"method     {self.method}")
        lines.append(f"status     {self.status.value}  (stopped: {self.stop_reason.value})")
        if self.plan is not None:
            lines.append(
                f"objective  {self.objective}  (total latency; average {self.plan.average_latency:.3f} rounds)"
            )
            lines.append(
                f"makespan   {self.plan.makespan}  peak memory {self.plan.peak_memory}/{self.instance.memory_budget}"
            )
        else:
            lines.append("objective  -  (no plan)")
        src = self.stats.get("bound_source")
        lines.append(f"bound      {self.lower_bound}" + (f"  ({src})" if src else ""))
        g = self.gap
        lines.append(f"gap        {'-' if g is None else f'{100 * g:.3f}%'}")
        lines.append(f"certified  {self.certificate()}")
        lines.append(
            f"time       {self.seconds:.3f}s  (build {self.build_seconds:.3f}s, solve {self.solve_seconds:.3f}s)"
        )
        for key in ("evictions", "wasted_rounds"):
            if key in self.stats:
                lines.append(f"{key:<10} {self.stats[key]}")
        return "\n".join(lines)

    def certificate(self) -> str:
        """What the gap certifies, in words, and which kind of bound proved it."""
        if self.proven_infeasible:
            return "no plan exists: the instance is proven infeasible"
        if self.plan is None or self.lower_bound is None:
            return "nothing: no plan was found"
        # without a recorded source, the bound is the method's own (the exact methods' proofs)
        src = str(self.stats.get("bound_source", "") or self.method)
        proof = BOUND_SOURCES.get(src, f"{src}'s proven lower bound")
        if self.status is Status.OPTIMAL:
            return f"this plan is optimal: no plan has a smaller total latency (proved by {proof})"
        g = self.gap or 0.0
        return (
            f"no plan has a total latency below {self.lower_bound} (proved by {proof}), so no plan "
            f"can be more than {100 * g:.2f}% better than this one"
        )


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
