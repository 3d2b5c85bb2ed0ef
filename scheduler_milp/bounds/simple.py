"""The closed-form lower bounds: volume and mean busy time, and the safe rounding every bound uses.

Both cost a sort and hold with arrivals, any block size and a batch cap (docs/bounds.md, sections
1 "Volume bound" and 2 "Mean-busy-time bound").  :func:`proven_bound` turns any float bound into a
proven integer one; the Lagrangian bounds round through it too.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..model.instance import Instance, IntArray
from ..model.result import round_bound

FloatArray = NDArray[np.float64]


def safe_ceil(value: float) -> int:
    """``value`` (a float lower bound) rounded up to an integer that is still a bound (0 at least).

    Float sums of up to ~1e10 carry a relative error of ~1e-15: a relative margin of 1e-9 (and
    1e-6 absolute) before rounding up keeps the rounding safe.
    """
    return round_bound(value - 1e-9 * abs(value) - 1e-6) or 0


def proven_bound(instance: Instance, value: float) -> int:
    """A float lower bound ``value`` on the total latency as a proven integer bound, never below ``sum o_i``."""
    return max(safe_ceil(value), instance.trivial_lower_bound())


# ---------------------------------------------------------------------- volume bound
def volume_bound_terms(instance: Instance) -> IntArray:
    """``lb_k`` for ``k = 1..n``: a lower bound on the ``k``-th smallest completion round.

    ``lb_k = max(ceil(V_(k) / M), (a+o)_(k), ceil(O_(k) / max_batch))`` where ``V_(k)`` is the sum
    of the ``k`` smallest volumes, ``(a+o)_(k)`` the ``k``-th smallest ``a_i + o_i`` and ``O_(k)``
    the sum of the ``k`` smallest output lengths (docs/bounds.md).
    """
    m = instance.memory_budget
    vol_prefix = np.cumsum(np.sort(instance.volume))
    by_volume = -(-vol_prefix // m)
    earliest = np.sort(instance.arrival + instance.output_len)
    terms = np.maximum(by_volume, earliest)
    if instance.max_batch is not None:
        out_prefix = np.cumsum(np.sort(instance.output_len))
        terms = np.maximum(terms, -(-out_prefix // instance.max_batch))
    return terms.astype(np.int64)


def volume_bound(instance: Instance) -> int:
    """The volume bound ``sum_k lb_k - sum_i a_i`` on the total latency (docs/bounds.md)."""
    total = int(volume_bound_terms(instance).sum()) - int(instance.arrival.sum())
    return max(total, instance.trivial_lower_bound())


def _mean_offsets(instance: Instance) -> FloatArray:
    """``c_i = sum_k mem_i(k) (k - 1/2) / V_i``: the memory-weighted mean of a request's rounds."""
    s = instance.prompt_len.astype(np.float64)
    o = instance.output_len.astype(np.float64)
    vol = instance.volume.astype(np.float64)
    if instance.block_size == 1:
        # sum_k (s + k)(k - 1/2) = s o^2 / 2 + o(o+1)(2o+1)/6 - o(o+1)/4
        moment = s * o * o / 2.0 + o * (o + 1) * (2 * o + 1) / 6.0 - o * (o + 1) / 4.0
        return np.asarray(moment / vol, dtype=np.float64)
    out = np.empty(instance.n)
    for i in range(instance.n):
        k = np.arange(1, int(instance.output_len[i]) + 1, dtype=np.float64)
        mem = np.asarray(
            instance.mem(i, np.arange(1, int(instance.output_len[i]) + 1)), dtype=np.float64
        )
        out[i] = float((mem * (k - 0.5)).sum()) / float(vol[i])
    return out


def _moment_bound(volume: FloatArray, cap: FloatArray, capacity: float) -> float:
    """Lower bound on ``sum_i mu_i`` (``mu_i``: volume-weighted mean time of item ``i``).

    Items have volume ``V_i``, are processed at rate at most ``cap_i`` each and ``capacity`` in
    all.  Sorted by volume ascending (weights ``w_k = 1/V_(k)`` descending), Abel summation gives
    ``sum_i mu_i = sum_k (w_k - w_(k+1)) G_k`` with ``G_k`` the first moment of the ``k`` smallest
    items' processing, and ``G_k >= P_k^2 / (2 R_k)`` with ``P_k`` their total volume and
    ``R_k = min(capacity, sum of their caps)`` their largest joint rate (docs/bounds.md).
    """
    order = np.argsort(volume, kind="stable")
    v = volume[order]
    prefix = np.cumsum(v)
    rate = np.minimum(capacity, np.cumsum(cap[order]))
    w = 1.0 / v
    dw = w - np.concatenate((w[1:], [0.0]))
    return float((dw * prefix * prefix / (2.0 * rate)).sum())


def busy_time_bound(instance: Instance) -> int:
    """The mean-busy-time bound (docs/bounds.md).

    With ``mu_i`` the memory-weighted mean time of request ``i``'s rounds, ``C_i = mu_i + o_i - c_i``
    (:func:`_mean_offsets`), and ``sum_i mu_i`` is bounded by :func:`_moment_bound` with volumes
    ``V_i``, per-request rates at most the peak memory and total rate ``M``.  The batch cap gives
    the same argument with unit heights: ``sum_i C_i >= moment(o, 1, max_batch) + sum_i o_i / 2``.
    Arrivals are ignored (a relaxation) and subtracted at the end.
    """
    m = float(instance.memory_budget)
    vol = instance.volume.astype(np.float64)
    peak = instance.peak_memory.astype(np.float64)
    value = _moment_bound(vol, peak, m) + float(
        (instance.output_len - _mean_offsets(instance)).sum()
    )
    if instance.max_batch is not None:
        out = instance.output_len.astype(np.float64)
        by_batch = (
            _moment_bound(out, np.ones(instance.n), float(instance.max_batch))
            + float(out.sum()) / 2.0
        )
        value = max(value, by_batch)
    value -= float(instance.arrival.sum())
    return proven_bound(instance, value)
