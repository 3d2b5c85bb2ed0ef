"""Online execution under output-length uncertainty (docs/online.md).

Predictors turn a true instance into predictions (:mod:`.predictors`); a policy sees only a
:class:`~.view.View` of what is known in each round (:mod:`.view`) and decides with the offline
start rule on its estimates (:mod:`.policies`); the executor keeps the truth, runs the policy event
by event with evictions and returns an :class:`~.executor.Execution` that the independent check
(:mod:`.check`) has accepted.
"""

from .check import ExecutionError, check_execution
from .executor import Execution, PolicyError, execute
from .policies import (
    POLICIES,
    build_policy,
    is_clairvoyant,
    policy_names,
    policy_params,
    policy_table,
)
from .predictors import PREDICTORS, PredictionError, Predictions, make_predictions, with_predictions
from .run import simulate
from .view import EVICTION_MODES, Decision, Policy, Setting, View

__all__ = [
    "EVICTION_MODES",
    "POLICIES",
    "PREDICTORS",
    "Decision",
    "Execution",
    "ExecutionError",
    "Policy",
    "PolicyError",
    "PredictionError",
    "Predictions",
    "Setting",
    "View",
    "build_policy",
    "check_execution",
    "execute",
    "is_clairvoyant",
    "make_predictions",
    "policy_names",
    "policy_params",
    "policy_table",
    "simulate",
    "with_predictions",
]
