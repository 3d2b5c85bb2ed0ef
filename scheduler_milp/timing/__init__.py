"""Seconds instead of rounds: the round-time model, the clock of a plan or execution, the metrics.

- :mod:`.roundtime`: :class:`~.roundtime.RoundTime` (``c0 + c_prefill P + c_decode R + c_kv K``
  seconds per round), the unit model and the shipped presets, :func:`~.roundtime.parse_round_time`;
- :mod:`.clock`: when each round of a plan or an execution begins and ends, arrivals in seconds;
- :mod:`.metrics`: per-request latency, TTFT, TPOT, their summaries, throughput, SLO attainment and
  the per-request CSV;
- :mod:`.certify`: what a lower bound in rounds certifies in seconds;
- :mod:`.fit`: how the presets were fitted (docs/timing.md).

This layer imports only :mod:`scheduler_milp.model`.
"""

from .clock import TimingError, arrival_seconds, with_arrival_seconds
from .metrics import RequestTimes, execution_times, plan_times
from .roundtime import UNIT, RoundTime, RoundTimeError, parse_round_time, preset_names

__all__ = [
    "UNIT",
    "RequestTimes",
    "RoundTime",
    "RoundTimeError",
    "TimingError",
    "arrival_seconds",
    "execution_times",
    "parse_round_time",
    "plan_times",
    "preset_names",
    "with_arrival_seconds",
]
