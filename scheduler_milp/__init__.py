"""scheduler_milp: compute and certify schedules for LLM inference backlogs under a KV-cache budget."""

from .instance import Instance, InstanceError, load_instance
from .plan import Plan, PlanError, validate
from .registry import METHODS, solve
from .result import SolveOptions, SolveResult, Status, StopReason, gap

__all__ = [
    "METHODS",
    "Instance",
    "InstanceError",
    "Plan",
    "PlanError",
    "SolveOptions",
    "SolveResult",
    "Status",
    "StopReason",
    "gap",
    "load_instance",
    "solve",
    "validate",
]
__version__ = "0.1.0"
