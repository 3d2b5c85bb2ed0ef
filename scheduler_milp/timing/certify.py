"""What a lower bound in rounds certifies in seconds (docs/timing.md, "What is certified in seconds").

Let ``LB`` be a proven lower bound on the total latency in rounds (of one engine, or of ``k``
replicas). Under a round-time model the total latency in seconds of any plan is bounded below by

- **the unit model**: ``LB`` itself (seconds are rounds, arrivals included); likewise ``c0 LB``
  for any model with ``c_prefill = c_decode = c_kv = 0`` whose arrivals are their rounds times
  ``c0`` (every round lasts ``c0``: the clock is the round count scaled);
- **a backlog** (every request arrives at time 0), any model:
  ``c0 LB + c_prefill rank(s) + c_decode rank(o) + c_kv rank(V)``, where
  ``rank(x) = sum_j x_[j] ceil(j / k)`` with ``x_[1] >= x_[2] >= ...`` in decreasing order, and
  ``V_i = s_i o_i + o_i (o_i + 1) / 2`` is the KV tokens request ``i`` holds summed over its rounds.
  Proof: with ``N(t)`` the requests of an engine not finished by the end of its round ``t``, the
  total latency is ``sum_t N(t) d(t)`` (each round delays everyone unfinished), and ``d(t)`` is a
  sum of four terms, each bounded on its own. ``sum_t N(t) c0 = c0 sum_i C_i >= c0 LB``. In every
  round of request ``j``'s run, ``j`` and every request of its engine completing no earlier are
  unfinished, so ``N(t) >= r_j``, its rank from the last completion; hence
  ``sum_t N(t) R(t) = sum_j sum_(t in run j) N(t) >= sum_j o_j r_j`` and likewise
  ``sum_t N(t) K(t) >= sum_j V_j r_j``. A request starting in round ``t`` is unfinished there,
  and so is every request of its engine starting later: ``sum_t N(t) P(t) >= sum_j s_j r'_j`` with
  ``r'_j`` its rank from the last start. Over ``k`` engines at most ``k`` requests have rank 1,
  ``k`` rank 2, ..., and pairing the largest values with the smallest ranks (rearrangement) gives
  each ``rank(x)``.
- **arrivals** with a model other than the unit one: only ``sum_i (c_prefill s_i + (c0 + c_decode) o_i
  + c_kv V_i)``, each request's own rounds (a round in which it runs lasts at least its own share).

The bound in rounds does not carry over with arrivals because waiting for an arrival is measured
in seconds, not rounds: a plan may wait less in a slow round than a round count says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.instance import Instance
from .clock import FloatArray
from .roundtime import RoundTime


@dataclass(frozen=True)
class SecondsBound:
    """A lower bound on the total (and mean) latency in seconds and which argument proves it."""

    total: float
    kind: str  # "unit", "backlog" or "own-rounds"
    n: int

    @property
    def mean(self) -> float:
        """The bound on the mean latency."""
        return self.total / self.n

    def describe(self) -> str:
        """What the bound certifies, in words."""
        why = {
            "unit": "the bound in rounds (every round lasts c0: seconds are rounds scaled)",
            "backlog": "c0 times the bound in rounds plus the prefill, decode and KV time every request must wait for (backlog)",
            "own-rounds": "every request's own rounds only (arrivals: the bound in rounds does not carry over)",
        }[self.kind]
        return f"no plan has a mean latency below {self.mean:.6g} s ({why})"


def kv_token_rounds(instance: Instance) -> FloatArray:
    """``V_i = sum_k (s_i + k)``: KV tokens request ``i`` holds, summed over its rounds (no block padding)."""
    s = instance.prompt_len.astype(np.float64)
    o = instance.output_len.astype(np.float64)
    return np.asarray(s * o + o * (o + 1) / 2.0, dtype=np.float64)


def rank_term(values: FloatArray, replicas: int = 1) -> float:
    """``sum_j x_[j] ceil(j / k)`` with the values in decreasing order (``k`` = ``replicas``)."""
    x = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    ranks = np.ceil(np.arange(1, x.size + 1) / max(1, replicas))
    return float((x * ranks).sum())


def seconds_lower_bound(
    instance: Instance,
    model: RoundTime,
    rounds_bound: float,
    replicas: int = 1,
    arrival_s: FloatArray | None = None,
) -> SecondsBound:
    """The bound of the module docstring from a proven bound ``rounds_bound`` on the total latency in rounds.

    ``arrival_s`` are the arrivals in seconds (``None``: the instance's arrival rounds decide
    whether it is a backlog).
    """
    if model.is_unit:
        return SecondsBound(float(rounds_bound), "unit", instance.n)
    fixed = model.c_prefill == model.c_decode == model.c_kv == 0.0
    on_grid = arrival_s is None or np.allclose(arrival_s, instance.arrival * model.c0, rtol=0, atol=1e-12)  # fmt: skip
    if fixed and on_grid:
        return SecondsBound(model.c0 * float(rounds_bound), "unit", instance.n)
    backlog = not instance.has_arrivals if arrival_s is None else not bool(np.any(arrival_s > 0))
    o = instance.output_len.astype(np.float64)
    s = instance.prompt_len.astype(np.float64)
    kv = float(kv_token_rounds(instance).sum())
    if backlog:
        total = (
            model.c0 * float(rounds_bound)
            + model.c_prefill * rank_term(s, replicas)
            + model.c_decode * rank_term(o, replicas)
            + model.c_kv * rank_term(kv_token_rounds(instance), replicas)
        )
        return SecondsBound(total, "backlog", instance.n)
    own = (
        model.c_prefill * float(s.sum())
        + (model.c0 + model.c_decode) * float(o.sum())
        + model.c_kv * kv
    )
    return SecondsBound(own, "own-rounds", instance.n)
