"""The sawtooth lift: a Lagrangian bound stronger than the time-indexed LP (docs/bounds.md, section 4).

No relaxation over rounds sees that memory grows between completions: in the LP some request
completes (fractionally) in every round, so memory can stay at ``M``. In a plan, if the first of
the ``b`` requests running in round ``r`` to end runs its last round ``d`` rounds later, all ``b``
grow by ``d`` until then, so ``usage(r) + b d <= M``. With ``E`` the set of rounds that are some
request's last round and ``delta(r)`` the distance from ``r`` to the next round of ``E``, every plan
satisfies (block size 1; with blocks, see the end of this docstring)

* ``usage(r) + |running(r)| delta(r) <= M`` in every round ``r``, and
* ``sum_i m_i (s_i + 1) <= W = n M - sum_i (o_i - 1)``, where ``m_i`` is the number of rounds of
  ``E`` inside request ``i``'s run (in such a round the requests that go on hold at least
  ``s_i + 1`` each, the ending ones their peaks, at most ``M`` in all, and ``|E| <= n``).

Pricing the first with the Lagrangian's ``lambda_r >= 0`` and the second with ``theta >= 0`` splits
the bound by request again. Inside a run cut into ``m`` segments ``sum delta = sum L (L - 1) / 2 >=
o (o / m - 1) / 2``, so request ``i`` started in round ``t`` pays at least

``t + o_i - a_i + sum_k lambda_(t+k-1) (s_i + k) + min_(1 <= m <= o_i) [lam_min o_i (o_i / m - 1) / 2 + theta (s_i + 1) m]``

with ``lam_min`` the smallest price over its run, and ``L_saw(lambda, theta) = sum_i min_t (...) -
M sum_r lambda_r - theta W`` is a lower bound for every ``lambda, theta >= 0``. ``theta = 0`` gives
back the Lagrangian ``L(lambda)``; :func:`sawtooth_bound` takes the prices of the Lagrangian ascent
and maximises over ``theta`` (``L_saw`` is concave in ``theta``: a minimum of affine functions).

The second fact is priced in a stronger form: in a round of ``E`` at age ``A`` of request ``i``
it holds ``s_i + A``, not only ``s_i + 1`` (docs/bounds.md, "The cuts' ages"). A run's cut cost
then depends on where the cuts fall; its cheapest value ``H_i(rho)`` is tabulated per request
(:func:`_cut_costs`) and read on chords (:func:`_cut_lower`), and the larger of the two lower
bounds is taken per start.

With block size ``B > 1`` a request holds ``B ceil((s_i + k) / B) >= s_i + k`` and grows by at
least ``B floor(d / B)`` over ``d`` rounds, so ``usage(r) + sum_(i running) (mem_i(age + delta(r)) -
mem_i(age)) <= M`` and the second fact stands as it is (docs/bounds.md, "Blocks"): runs are priced
at their true memory (prefix sums per residue of the round modulo ``B``), and a segment of ``L``
rounds counts at least ``sum_(j < L) B floor(j / B) >= L (L - 1) / 2 - (B - 1) L / 2`` of sawtooth.

With a batch cap the batch rows ``|running(r)| <= max_batch`` may be priced too, as in the
Lagrangian (``nu_r >= 0``): each run pays the sum of its rounds' ``nu_r`` and ``max_batch sum_r
nu_r`` is subtracted (docs/bounds.md, section 4, "Computation").

The kernel is compiled with numba (one pass over every ``(request, start)`` pair evaluates a whole
grid of ``theta`` values); only the lifts in :mod:`.lagrangian` import it, when they run, so
that the other bounds never load numba.
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit
from numpy.typing import NDArray

from ..model.instance import Instance

FloatArray = NDArray[np.float64]

#: the ``theta`` grid of a pass, as multiples of the mean price (two passes: wide, then around the best)
WIDE_GRID = np.geomspace(1e-4, 10.0, 16)
FINE_SPAN = 4.0
#: the ratios ``rho = theta / lam_min`` at which each request's cut cost ``H_i(rho)`` is tabulated
CUT_RHOS = np.geomspace(1e-5, 1e3, 49)
_LOG_RHO0 = float(
    math.log(CUT_RHOS[0])
)  # the grid's log start and inverse log step: the interval of a rho
_INV_LOG_STEP = float(1.0 / math.log(CUT_RHOS[1] / CUT_RHOS[0]))


@njit(cache=True, nogil=True)
def _cut_costs(prompt, output, rhos, out):  # pragma: no cover - compiled
    """``out[i, g] = H_i(rhos[g])``: the cheapest way to cut request ``i``'s run.

    ``H_i(rho) = min over m and real L_1..L_m >= 0 with sum L = o_i of
    sum_j L_j (L_j - 1) / 2 + rho ((m - 1) s_i + sum_(j < m) A_j)``, ``A_j = L_1 + ... + L_j``: the
    sawtooth of ``m`` segments plus the memory the ``m - 1`` cuts inside the run hold (prompt and
    age). For fixed ``m`` the minimiser is ``L_k = mu - rho (m - k)`` when all are ``>= 0``
    (``mu = (o + rho m (m - 1) / 2) / m``); when the first is negative, leading segments are 0 and
    the cost is at least that of fewer cuts, and so for every larger ``m``: the loop stops there.
    """
    for i in range(output.size):
        o = float(output[i])
        s = float(prompt[i])
        for g in range(rhos.size):
            rho = rhos[g]
            best = o * (o - 1.0) / 2.0  # m = 1
            m = 2
            while m <= output[i]:
                mu = (o + rho * m * (m - 1) / 2.0) / m
                if mu - rho * (m - 1) < 0.0:
                    break
                c1 = m * (m - 1) / 2.0
                c2 = (m - 1) * m * (2.0 * m - 1) / 6.0
                sum_sq = m * mu * mu - 2.0 * mu * rho * c1 + rho * rho * c2
                sum_cl = mu * c1 - rho * c2
                cost = sum_sq / 2.0 - o / 2.0 + rho * ((m - 1) * s + sum_cl)
                if cost < best:
                    best = cost
                m += 1
            out[i, g] = best


@njit(cache=True, nogil=True)
def _cut_lower(row, rho, log_rho, rhos, log_rho0, inv_log_step):  # pragma: no cover - compiled
    """A lower bound of the concave, non-decreasing ``H_i(rho)`` from its table ``row`` at ``rhos`` (chords).

    ``log_rho`` (about ``log(rho)``) only picks the interval; the chord is checked against ``rho``.
    """
    last = row.size - 1
    if rho <= rhos[0]:
        # chord from H(0) = 0 to the first grid point: below a concave function
        return row[0] * max(rho, 0.0) / rhos[0]
    if rho >= rhos[last]:
        return row[last]  # non-decreasing
    g = max(0, min(int((log_rho - log_rho0) * inv_log_step), last - 1))
    # float rounding may put rho just outside [rhos[g], rhos[g + 1]]: step to the right interval
    while g > 0 and rho < rhos[g]:
        g -= 1
    while g < last - 1 and rho > rhos[g + 1]:
        g += 1
    return row[g] + (row[g + 1] - row[g]) * (rho - rhos[g]) / (rhos[g + 1] - rhos[g])


@njit(cache=True, nogil=True)
def _lifted(
    base,
    low,
    o,
    s1,
    inv_root,
    thetas,
    log_thetas,
    cost,
    cut_row,
    rhos,
    log_rho0,
    inv_log_step,
    aged,
    block,
):  # pragma: no cover - compiled
    """Lower ``cost[k]`` to the lifted cost of one start (``base``, ``low`` = smallest price of the run).

    The run's part is the larger of two lower bounds of the same quantity: equal segments with
    every inner cut charged ``s + 1`` (closed form), and the tabulated cut cost with the cuts'
    ages (``_cut_costs``).  With blocks (``block > 1``) a segment of ``L`` rounds prices at least
    ``sum_(j < L) B floor(j / B) >= L (L - B) / 2 = L (L - 1) / 2 - (B - 1) L / 2`` of sawtooth, so
    the part loses ``low (B - 1) o / 2`` and is never below the last cut's ``theta s1``
    (docs/bounds.md, "Blocks").
    """
    log_low = math.log(low) if aged and low > 0.0 else 0.0
    shortfall = low * (block - 1) * o / 2.0
    for k in range(thetas.size):
        m = 1.0
        if low > 0.0:
            # the real minimiser of low o^2 / (2m) + theta s1 m, clamped to 1 <= m <= o
            m = min(max(o * math.sqrt(low / (2.0 * s1)) * inv_root[k], 1.0), float(o))
        part = low * o * (o / m - 1.0) / 2.0 + thetas[k] * s1 * m
        # with B = 1 the max is the part itself (it is >= theta s1); it only grows with the part
        if base + max(thetas[k] * s1, part - shortfall) >= cost[k]:
            continue  # the larger part can only be larger still
        if aged and low > 0.0:
            rho = thetas[k] / low
            with_ages = thetas[k] * s1 + low * _cut_lower(
                cut_row, rho, log_thetas[k] - log_low, rhos, log_rho0, inv_log_step
            )
            if with_ages > part:
                part = with_ages
        c = base + max(thetas[k] * s1, part - shortfall)
        if c < cost[k]:
            cost[k] = c


@njit(cache=True, nogil=True)
def _pass(
    prefix,
    moment,
    excess,
    block,
    batch,
    table,
    horizon,
    prompt,
    output,
    arrival,
    first,
    last,
    thetas,
    out,
    cuts,
    rhos,
    log_rho0,
    inv_log_step,
    aged,
):  # pragma: no cover - compiled
    """Add ``min_t`` of the lifted cost of requests ``first..last-1`` to ``out[k]`` for each ``thetas[k]``.

    ``batch``: prefix sums of the batch prices (all 0 without a batch cap); a run pays their sum.

    ``excess[:, q]``: prefix sums of ``price[r] ((q - r) mod B)``, the block rounding a run pays on
    top of ``s + k`` (read only when ``block > 1``; round-major, so that consecutive starts read
    neighbouring memory).
    """
    n_theta = thetas.size
    inv_root = 1.0 / np.sqrt(thetas)
    log_thetas = np.log(thetas)
    cost = np.empty(n_theta)
    base = np.empty(horizon + 1)
    for i in range(first, last):
        o = output[i]
        a = arrival[i]
        s1 = prompt[i] + 1.0
        level = 0
        while (2 << level) <= o:
            level += 1
        span = 1 << level
        # every start after the priced horizon costs more than the first of them: t <= max(H, a)
        count = max(horizon, a) - a + 1
        best_t = a
        for j in range(count):
            t = a + j
            if t < horizon:
                base[j] = (
                    t
                    + o
                    - a
                    + (s1 - t) * (prefix[t + o] - prefix[t])
                    + (moment[t + o] - moment[t])
                    + (batch[t + o] - batch[t])
                )
                if block > 1:  # mem(k) = s + k + ((t - s - 1 - r) mod B) in round r = t + k - 1
                    q = (
                        (t - int(s1)) % block + block
                    ) % block  # non-negative whatever the sign rule
                    base[j] += excess[t + o, q] - excess[t, q]
            else:
                base[j] = float(t + o - a)
            if base[j] < base[best_t - a]:
                best_t = t
        # the lift is >= 0, so only starts whose base cost is below the lifted cost of the
        # cheapest start can win: evaluate that one first, then those
        for k in range(n_theta):
            cost[k] = np.inf
        for phase in range(2):
            ceiling = np.inf if phase == 0 else cost.max()
            for j in range(count):
                t = a + j
                if (phase == 0 and t != best_t) or (
                    phase == 1 and (t == best_t or base[j] >= ceiling)
                ):
                    continue
                low = min(table[level, t], table[level, t + o - span]) if t < horizon else 0.0
                _lifted(
                    base[j],
                    low,
                    o,
                    s1,
                    inv_root,
                    thetas,
                    log_thetas,
                    cost,
                    cuts[i],
                    rhos,
                    log_rho0,
                    inv_log_step,
                    aged,
                    block,
                )
        for k in range(n_theta):
            out[k] += cost[k]


def _range_min_table(padded: FloatArray) -> FloatArray:
    """``table[j, t] = min(padded[t : t + 2**j])`` (sparse table; entries past the end are +inf)."""
    length = padded.size
    levels = max(1, int(math.floor(math.log2(max(length, 1)))) + 1)
    table = np.full((levels, length), np.inf)
    table[0] = padded
    for j in range(1, levels):
        half = 1 << (j - 1)
        table[j, : length - half] = np.minimum(table[j - 1, : length - half], table[j - 1, half:])
    return table


class _Tables:
    """Prefix sums and the range-minimum table of the memory prices, and prefix sums of the batch
    prices (all 0 without a batch cap); shared by every ``theta``."""

    def __init__(
        self, instance: Instance, prices: FloatArray, batch_prices: FloatArray | None = None
    ):
        lam = np.maximum(np.asarray(prices, dtype=np.float64), 0.0)
        self.n = instance.n
        self.horizon = int(lam.size)
        self.output = instance.output_len.astype(np.int64)
        self.prompt = instance.prompt_len.astype(np.float64)
        self.arrival = instance.arrival.astype(np.int64)
        padded = np.zeros(self.horizon + int(self.output.max()) + 1)
        padded[: self.horizon] = lam
        self.prefix = np.concatenate(([0.0], np.cumsum(padded)))
        self.moment = np.concatenate(([0.0], np.cumsum(padded * np.arange(padded.size))))
        self.table = _range_min_table(padded)
        self.block = int(instance.block_size)
        self.excess = np.zeros((1, 1))
        if self.block > 1:  # excess[r, q] = sum_(r' < r) price[r'] ((q - r') mod B)
            rounds = np.arange(padded.size)
            self.excess = np.zeros((padded.size + 1, self.block))
            for q in range(self.block):
                self.excess[1:, q] = np.cumsum(padded * ((q - rounds) % self.block))
        self.budget = float(instance.n) * instance.memory_budget - float((self.output - 1).sum())
        self.fixed = float(instance.memory_budget) * float(lam.sum())
        # batch prices of rounds 0..H-1 (any others are taken as 0, which keeps it a bound)
        mu = np.zeros(padded.size)
        if batch_prices is not None and instance.max_batch is not None:
            kept = np.maximum(np.asarray(batch_prices, dtype=np.float64)[: self.horizon], 0.0)
            mu[: kept.size] = kept
            self.fixed += float(instance.max_batch) * float(kept.sum())
        self.batch = np.concatenate(([0.0], np.cumsum(mu)))
        self.scale = float(lam.mean()) if self.horizon and lam.any() else 1.0
        self._cuts = np.empty((self.n, CUT_RHOS.size))  # the cut-cost table, built on demand
        self._cuts_done = 0  # requests whose rows of the table are built

    def cuts(self, deadline: float = math.inf, chunk: int = 1024) -> FloatArray | None:
        """``H_i`` at :data:`CUT_RHOS` for every request (:func:`_cut_costs`), built once, in
        compiled chunks with ``deadline`` checked between (``None`` past it; a later call goes
        on where this one stopped)."""
        while self._cuts_done < self.n:
            if time.perf_counter() >= deadline:
                return None
            first, last = self._cuts_done, min(self.n, self._cuts_done + chunk)
            _cut_costs(
                self.prompt[first:last], self.output[first:last], CUT_RHOS, self._cuts[first:last]
            )
            self._cuts_done = last
        return self._cuts

    def values(
        self, thetas: FloatArray, deadline: float = math.inf, chunk: int = 64, aged: bool = True
    ) -> FloatArray | None:
        """``L_saw`` at these prices for each ``theta > 0`` of ``thetas``; ``None`` past ``deadline``.

        ``aged=False`` leaves out the cuts' ages (``_cut_costs``): a weaker bound, faster.
        """
        grid = np.asarray(thetas, dtype=np.float64)
        if (grid <= 0).any():
            raise ValueError("lifted_values: every theta must be > 0")
        out = np.zeros(grid.size)
        cuts = self.cuts(deadline) if aged else np.empty((self.n, 1))  # rows unread without ages
        if cuts is None:
            return None
        for first in range(0, self.n, chunk):  # compiled chunks, the deadline checked between
            if time.perf_counter() >= deadline:
                return None
            last = min(self.n, first + chunk)
            _pass(
                self.prefix,
                self.moment,
                self.excess,
                self.block,
                self.batch,
                self.table,
                self.horizon,
                self.prompt,
                self.output,
                self.arrival,
                first,
                last,
                grid,
                out,
                cuts,
                CUT_RHOS,
                _LOG_RHO0,
                _INV_LOG_STEP,
                aged,
            )
        return np.asarray(out - self.fixed - grid * self.budget, dtype=np.float64)


def lifted_values(
    instance: Instance,
    prices: FloatArray,
    thetas: FloatArray,
    deadline: float = math.inf,
    batch_prices: FloatArray | None = None,
) -> FloatArray | None:
    """``L_saw(prices, theta)`` for each ``theta > 0`` of ``thetas`` (module docstring); ``None`` past ``deadline``.

    Valid lower bounds on the total latency for every block size (blocks: docs/bounds.md, section 4).
    ``batch_prices`` (rounds ``0..len(prices)-1``, used only with a batch cap) price the batch rows.
    """
    return _Tables(instance, prices, batch_prices).values(thetas, deadline)


def sawtooth_bound(
    instance: Instance,
    prices: FloatArray,
    deadline: float = math.inf,
    batch_prices: FloatArray | None = None,
) -> tuple[float, float] | None:
    """``max_theta L_saw(prices, theta)`` and its ``theta`` (module docstring); ``None`` past the deadline.

    ``prices[r] >= 0`` are memory prices of rounds ``0..H-1`` (0 beyond), e.g. the Lagrangian's
    best. ``None`` when ``deadline`` (``time.perf_counter()``) passes before the first grid is done.
    With block size ``B > 1`` runs are priced at their true (block-rounded) memory and their growth
    in whole blocks (docs/bounds.md, section 4, "Blocks").
    With a batch cap, ``batch_prices[r] >= 0`` price the rows ``|running(r)| <= max_batch`` as in
    the Lagrangian (each run pays the sum of its rounds' prices, and ``max_batch sum_r
    batch_prices[r]`` is subtracted); ``None`` takes them as 0. Cost: two compiled passes
    over the ``(request, start)`` pairs below ``H`` (a wide grid of ``theta``, then a fine one
    around its best), each evaluating the grid only at starts that can still win.
    """
    tab = _Tables(instance, prices, batch_prices)
    best_value, best_theta = -math.inf, 0.0
    grid = tab.scale * WIDE_GRID
    for aged in (
        False,
        True,
    ):  # the wide grid without the cuts' ages (fast), the fine grid with them
        values = tab.values(grid, deadline, aged=aged)
        if values is None:
            break
        k = int(np.argmax(values))
        if values[k] > best_value:
            best_value, best_theta = float(values[k]), float(grid[k])
        grid = best_theta * np.geomspace(1.0 / FINE_SPAN, FINE_SPAN, WIDE_GRID.size)
    return None if best_value == -math.inf else (best_value, best_theta)
