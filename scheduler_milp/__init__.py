"""scheduler_milp: compute and certify schedules for LLM inference backlogs under a KV-cache budget."""

from .model.instance import Instance, InstanceError, load_example, load_instance
from .model.plan import Plan, PlanError, validate
from .model.result import SolveOptions, SolveResult, Status, StopReason, gap
from .registry import METHODS, solve

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
    "load_example",
    "load_instance",
    "solve",
    "validate",
]
__version__ = "0.1.0"
