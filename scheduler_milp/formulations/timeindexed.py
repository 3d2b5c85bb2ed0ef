"""The time-indexed structure shared by ``milp``, ``cpsat`` and ``lp``, built from numpy arrays.

One column per (request ``i``, candidate start ``t``) with ``t`` in ``[a_i, latest_i]`` where
``latest_i = UB - sum_j o_j + a_i`` (docs/model.md: every other request contributes at least its
own ``o_j``, so in any plan of total latency ``<= UB`` request ``i`` starts no later than that).
Columns of one request are contiguous and ordered by start round.

Memory rows: column ``(i, t)`` puts ``mem_i(k)`` into the row of round ``t + k - 1`` for
``k = 1..o_i``.  Two kinds of rows are dropped because they can never bind:

* rounds in which no request can have its last round: between completions the running set only
  gains members and every member's memory only grows (docs/model.md), so such a round is
  dominated by the next round that is some request's last round;
* rounds whose largest possible load (the sum over requests of their largest coefficient in that
  row; one start per request) is at most ``M``.

Batch rows (``max_batch``) are built the same way with coefficient 1.
Everything is computed vectorised; no Python loop visits a (request, start, round) triple.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..model.deadline import Deadline
from ..model.instance import Instance, IntArray
from ..model.plan import Plan, validate
from ..model.result import ModelTooLarge

#: Default refusal limit on the number of memory-row nonzeros (:class:`ModelTooLarge` beyond).
MAX_NONZEROS = 5_000_000


class OutOfTime(Exception):
    """A model build or an evaluation ran past its deadline and was abandoned (what it had built
    is dropped; the caller answers with what it held before)."""


def check_time(deadline: Deadline | None) -> None:
    """Raise :class:`OutOfTime` when ``deadline`` has passed (``None``: never)."""
    if deadline is not None and deadline.expired():
        raise OutOfTime


#: nonzeros of rows built (or handed to a solver) between two checks of the deadline
TERMS_PER_CHECK = 20_000


def term_chunks(sizes: list[int]) -> Iterator[tuple[int, int]]:
    """Consecutive row ranges ``[first, last)`` of at most :data:`TERMS_PER_CHECK` nonzeros (rows
    of ``sizes[r]`` nonzeros; one row alone may hold more)."""
    first = total = 0
    for r, size in enumerate(sizes):
        if r > first and total + size > TERMS_PER_CHECK:
            yield first, r
            first, total = r, 0
        total += size
    if first < len(sizes):
        yield first, len(sizes)


def memory_cap() -> int:
    """Bytes a model may take: half the machine's physical memory."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


@dataclass(frozen=True, eq=False)
class SparseRows:
    """Rows ``A x <= rhs`` in CSR form; ``round_of_row`` is the round each row guards."""

    data: IntArray
    indices: IntArray
    indptr: IntArray
    round_of_row: IntArray
    rhs: int
    rhs_per_row: IntArray | None = None  # when rows have different right-hand sides

    def rhs_of(self, r: int) -> int:
        """Right-hand side of row ``r``."""
        return int(self.rhs_per_row[r]) if self.rhs_per_row is not None else self.rhs

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.round_of_row)

    @property
    def nnz(self) -> int:
        """Number of nonzeros."""
        return len(self.data)

    def row(self, r: int) -> tuple[IntArray, IntArray]:
        """Columns and coefficients of row ``r``."""
        lo, hi = int(self.indptr[r]), int(self.indptr[r + 1])
        return self.indices[lo:hi], self.data[lo:hi]


@dataclass(frozen=True, eq=False)
class TimeIndexed:
    """Columns, objective and constraint rows of the time-indexed model of one instance."""

    instance: Instance
    upper_bound: int  # total latency of a known feasible plan: defines the windows
    latest: IntArray  # latest candidate start per request
    col_offset: IntArray  # columns of request i are col_offset[i]:col_offset[i+1]
    col_request: IntArray
    col_start: IntArray
    col_cost: IntArray  # latency t + o_i - a_i of the column
    memory_rows: SparseRows
    batch_rows: SparseRows | None

    def completion_count_rows(self) -> SparseRows:
        """Rows ``#{i : C_i <= T} <= K(T)`` with ``K(T) = #{k : cap_k <= T}`` (see :func:`completion_caps`).

        Valid because the ``k``-th completion is at least ``cap_k``; not implied by the LP of the
        memory rows (a cardinality, not a volume, inequality).  Only rows that cut are kept.
        """
        inst = self.instance
        caps = completion_caps(inst)
        end = self.col_start + inst.output_len[self.col_request]  # completion of each column
        horizon = self.horizon
        rounds = np.arange(1, horizon + 1, dtype=np.int64)
        allowed = np.searchsorted(caps, rounds, side="right")  # K(T)
        # requests that can complete by T at all: earliest completion a_i + o_i <= T
        possible = np.searchsorted(np.sort(inst.arrival + inst.output_len), rounds, side="right")
        kept = rounds[allowed < possible]  # the rows T that cut, ascending
        # column (i, t) counts in every kept row T >= its completion: rows first_row.. of ``kept``
        # (only the kept rows' entries are generated: all rounds' would be n_cols * horizon)
        first_row = np.searchsorted(kept, end, side="left")
        per_col = len(kept) - first_row
        ent_col = np.repeat(np.arange(self.n_cols, dtype=np.int64), per_col)
        offs = np.zeros(self.n_cols + 1, dtype=np.int64)
        offs[1:] = np.cumsum(per_col)
        ent_row = first_row[ent_col] + np.arange(len(ent_col), dtype=np.int64) - offs[ent_col]
        order = np.argsort(ent_row, kind="stable")  # by row, then by column
        indptr = np.zeros(len(kept) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(np.bincount(ent_row, minlength=len(kept)))
        return SparseRows(
            np.ones(len(ent_col), dtype=np.int64),
            ent_col[order],
            indptr,
            kept,
            0,
            rhs_per_row=allowed[kept - 1].astype(np.int64),
        )

    @property
    def n_cols(self) -> int:
        """Number of (request, start) columns."""
        return len(self.col_request)

    @property
    def horizon(self) -> int:
        """One past the last round any column can occupy."""
        return int((self.latest + self.instance.output_len).max())

    @property
    def nnz(self) -> int:
        """Nonzeros of memory and batch rows (the size measure used for refusals)."""
        return self.memory_rows.nnz + (self.batch_rows.nnz if self.batch_rows is not None else 0)

    def column_of(self, start_round: IntArray) -> IntArray:
        """Column index of each request's start; raises ValueError when a start is outside its window."""
        s = np.asarray(start_round, dtype=np.int64)
        inst = self.instance
        if (s < inst.arrival).any() or (s > self.latest).any():
            bad = int(np.flatnonzero((s < inst.arrival) | (s > self.latest))[0])
            raise ValueError(
                f"request '{inst.ids[bad]}' starts in round {int(s[bad])}, outside its window "
                f"[{int(inst.arrival[bad])}, {int(self.latest[bad])}]"
            )
        return self.col_offset[:-1] + s - inst.arrival

    def indicator(self, start_round: IntArray) -> np.ndarray:
        """The 0/1 column vector of a plan (each start inside its window)."""
        x = np.zeros(self.n_cols, dtype=np.int64)
        x[self.column_of(start_round)] = 1
        return x

    def starts_from_values(self, values: np.ndarray) -> IntArray:
        """Start rounds from (near-)integral column values: the largest value of each request."""
        vals = np.asarray(values, dtype=float)
        idx = np.empty(self.instance.n, dtype=np.int64)
        for i in range(self.instance.n):
            lo, hi = int(self.col_offset[i]), int(self.col_offset[i + 1])
            idx[i] = lo + int(np.argmax(vals[lo:hi]))
        return self.col_start[idx]

    def mean_start(self, values: np.ndarray) -> np.ndarray:
        """Fractional mean start ``sum_t t x_it`` of each request (LP-guided orders)."""
        vals = np.asarray(values, dtype=float)
        return np.bincount(
            self.col_request, weights=vals * self.col_start, minlength=self.instance.n
        )

    def identical_groups(self) -> list[IntArray]:
        """Groups (size >= 2) of requests with identical ``(s, o, a)``, each in index order."""
        inst = self.instance
        keys = np.stack([inst.prompt_len, inst.output_len, inst.arrival], axis=1)
        _, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        groups = []
        for g in np.unique(inverse):
            members = np.flatnonzero(inverse == g)
            if len(members) >= 2:
                groups.append(members)
        return groups


def completion_caps(
    instance: Instance, volume: IntArray | None = None, output_len: IntArray | None = None
) -> IntArray:
    """``cap[k-1]``: a lower bound on the ``k``-th smallest completion round of any plan.

    The ``k`` requests completed first hold, in rounds before the ``k``-th completion ``C_(k)``,
    their whole memory-time volume, at most ``M`` per round: ``C_(k) >= ceil(V_k / M)`` with
    ``V_k`` the sum of the ``k`` smallest volumes.  One of them has output at least the ``k``-th
    smallest ``o``, so ``C_(k) >= o_(k)``; with ``max_batch`` ``b`` also ``C_(k) >= ceil(O_k / b)``
    (``O_k``: sum of the ``k`` smallest outputs, each request fills one batch slot per round).
    """
    vol = np.sort(instance.volume if volume is None else volume)
    out = np.sort(instance.output_len if output_len is None else output_len)
    m = instance.memory_budget
    cap = np.maximum(-(-np.cumsum(vol) // m), out)
    if instance.max_batch is not None:
        cap = np.maximum(cap, -(-np.cumsum(out) // instance.max_batch))
    return cap.astype(np.int64)


def energy_lower_bound(instance: Instance) -> int:
    """The volume (energy) bound on total latency: ``sum_k cap_k - sum_i a_i``, at least ``sum o``.

    See :func:`completion_caps`; latency is completion minus arrival.  Usually far above
    ``sum_i o_i`` when memory is the bottleneck.
    """
    return max(
        int(completion_caps(instance).sum() - instance.arrival.sum()),
        instance.trivial_lower_bound(),
    )


def latest_starts(instance: Instance, upper_bound: int, tight: bool = True) -> IntArray:
    """Latest useful start of every request for plans of total latency at most ``upper_bound``.

    docs/model.md: ``latest_i = UB - sum_j o_j + a_i``, because every other request contributes at
    least its own ``o_j``.  With ``tight=True`` the others contribute at least the energy bound of the
    instance without ``i`` (removing a request from a valid plan leaves a valid plan of the rest,
    so their latencies add up to at least that bound): ``latest_i = UB - LB(rest_i) - o_i + a_i``.
    Never the heuristic's makespan.
    """
    if upper_bound < instance.trivial_lower_bound():
        raise ValueError(
            f"upper bound {upper_bound} below sum of output lengths {instance.trivial_lower_bound()}"
        )
    loose = (upper_bound - instance.trivial_lower_bound() + instance.arrival).astype(np.int64)
    if not tight or instance.n == 1:
        return loose
    vol, out, arr = instance.volume, instance.output_len, instance.arrival
    rest_bound = np.empty(instance.n, dtype=np.int64)
    keep = np.ones(instance.n, dtype=bool)
    for i in range(instance.n):
        keep[i] = False
        caps = completion_caps(instance, vol[keep], out[keep])
        rest_bound[i] = max(int(caps.sum() - arr[keep].sum()), int(out[keep].sum()))
        keep[i] = True
    tight_latest = upper_bound - rest_bound - out + arr
    return np.minimum(loose, tight_latest).astype(np.int64)


def estimate_nonzeros(instance: Instance, upper_bound: int) -> int:
    """Nonzeros of the memory rows before row reduction (cheap; used to refuse huge models)."""
    window = upper_bound - instance.trivial_lower_bound() + 1
    return int(window * int(instance.output_len.sum()))


def _rows(
    round_of_entry: IntArray,
    col_of_entry: IntArray,
    coef_of_entry: IntArray,
    keep_round: np.ndarray,
    rhs: int,
) -> SparseRows:
    """CSR rows for the kept rounds, entries sorted by (round, column)."""
    sel = keep_round[round_of_entry]
    r, c, v = round_of_entry[sel], col_of_entry[sel], coef_of_entry[sel]
    order = np.lexsort((c, r))
    r, c, v = r[order], c[order], v[order]
    kept_rounds = np.flatnonzero(keep_round).astype(np.int64)
    row_index = np.full(len(keep_round), -1, dtype=np.int64)
    row_index[kept_rounds] = np.arange(len(kept_rounds))
    counts = (
        np.bincount(row_index[r], minlength=len(kept_rounds))
        if len(r)
        else np.zeros(len(kept_rounds), dtype=np.int64)
    )
    indptr = np.zeros(len(kept_rounds) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(counts)
    return SparseRows(v.astype(np.int64), c.astype(np.int64), indptr, kept_rounds, rhs)


def build(
    instance: Instance,
    upper_bound: int,
    max_nonzeros: int = MAX_NONZEROS,
    tight: bool = True,
    latest_override: IntArray | None = None,
    bytes_per_nonzero: float | None = None,
    deadline: Deadline | None = None,
) -> TimeIndexed:
    """Build the time-indexed structure for plans of total latency at most ``upper_bound``.

    ``latest_override`` replaces the derived latest starts (tests use it to show that a makespan
    horizon is wrong; never use it to solve).  Raises
    :class:`~scheduler_milp.model.result.ModelTooLarge` (a ``ValueError``) before building when
    the memory rows would hold more than ``max_nonzeros`` nonzeros, or, given the solver's
    ``bytes_per_nonzero``, when the model would take more than :func:`memory_cap`; and
    :class:`OutOfTime` when ``deadline`` passes between two of its steps (each a few vectorised
    passes over the entries).
    """
    inst = instance
    n = inst.n
    est = estimate_nonzeros(inst, upper_bound)
    if est > max_nonzeros:
        raise ModelTooLarge(
            f"time-indexed model too large: about {est:,} nonzeros (limit {max_nonzeros:,}; n={n}, "
            f"upper bound {upper_bound}); use a heuristic or raise max_nonzeros"
        )
    if bytes_per_nonzero is not None and est * bytes_per_nonzero > memory_cap():
        raise ModelTooLarge(
            f"time-indexed model too large for this machine: about {est:,} nonzeros would take about "
            f"{est * bytes_per_nonzero / 2**30:.1f} GiB, over the cap of {memory_cap() / 2**30:.1f} GiB "
            f"(half its memory; n={n}, upper bound {upper_bound}); use a heuristic or lower max_nonzeros"
        )
    a = inst.arrival
    o = inst.output_len
    latest = latest_starts(inst, upper_bound, tight=tight)
    if latest_override is not None:
        latest = np.maximum(np.asarray(latest_override, dtype=np.int64), a)
    check_time(deadline)
    window = latest - a + 1
    col_offset = np.zeros(n + 1, dtype=np.int64)
    col_offset[1:] = np.cumsum(window)
    n_cols = int(col_offset[-1])
    col_request = np.repeat(np.arange(n, dtype=np.int64), window)
    col_start = a[col_request] + np.arange(n_cols, dtype=np.int64) - col_offset[col_request]
    col_cost = col_start + o[col_request] - a[col_request]

    # entries: column (i, t) occupies rounds t .. t+o_i-1 with coefficient mem_i(k)
    per_col = o[col_request]
    ent_offset = np.zeros(n_cols + 1, dtype=np.int64)
    ent_offset[1:] = np.cumsum(per_col)
    n_ent = int(ent_offset[-1])
    ent_col = np.repeat(np.arange(n_cols, dtype=np.int64), per_col)
    k = np.arange(n_ent, dtype=np.int64) - ent_offset[ent_col] + 1
    ent_round = col_start[ent_col] + k - 1
    ent_req = col_request[ent_col]
    ent_mem = np.asarray(inst.mem(ent_req, k), dtype=np.int64)
    horizon = int((latest + o).max())
    check_time(deadline)

    # rounds that are some column's last round (the only rows that can bind, see module doc)
    is_last = np.zeros(horizon, dtype=bool)
    is_last[col_start + per_col - 1] = True
    # largest load of each round: request i's largest coefficient in round r comes from its
    # earliest column covering r, i.e. k = min(r - a_i + 1, o_i), when r is in its reach.
    rounds = np.arange(horizon, dtype=np.int64)[None, :]
    covered = (rounds >= a[:, None]) & (rounds <= (latest + o - 1)[:, None])
    kmax = np.minimum(rounds - a[:, None] + 1, o[:, None])
    biggest = np.where(covered, inst.mem(np.arange(n)[:, None], np.maximum(kmax, 1)), 0)
    keep_mem = is_last & (biggest.sum(axis=0) > inst.memory_budget)
    check_time(deadline)
    memory_rows = _rows(ent_round, ent_col, ent_mem, keep_mem, inst.memory_budget)

    batch_rows = None
    if inst.max_batch is not None:
        check_time(deadline)
        keep_batch = is_last & (covered.sum(axis=0) > inst.max_batch)
        batch_rows = _rows(
            ent_round, ent_col, np.ones(n_ent, dtype=np.int64), keep_batch, inst.max_batch
        )

    return TimeIndexed(
        instance=inst,
        upper_bound=int(upper_bound),
        latest=latest,
        col_offset=col_offset,
        col_request=col_request,
        col_start=col_start,
        col_cost=col_cost,
        memory_rows=memory_rows,
        batch_rows=batch_rows,
    )


def check_plan_fits(model: TimeIndexed, plan: Plan) -> bool:
    """True when every start of ``plan`` lies inside its request's window."""
    s = plan.start_round
    return bool(((s >= model.instance.arrival) & (s <= model.latest)).all())


def left_justify(plan: Plan) -> Plan:
    """Shift requests one round earlier while the plan stays valid (objective never grows).

    The result satisfies the left-shift dominance of :func:`left_shift_terms`, so it can serve as
    a hint for a model that contains those constraints.
    """
    inst = plan.instance
    starts = plan.start_round.copy()
    changed = True
    while changed:
        changed = False
        for i in np.argsort(starts, kind="stable").tolist():
            while starts[i] > inst.arrival[i]:
                starts[i] -= 1
                if validate(inst, starts):
                    starts[i] += 1
                    break
                changed = True
    return Plan.checked(inst, starts)


def round_entries(model: TimeIndexed) -> SparseRows:
    """Every (round, column, mem) entry as CSR rows by round ``0..horizon-1`` (no row dropped)."""
    inst = model.instance
    o = inst.output_len
    per_col = o[model.col_request]
    offs = np.zeros(model.n_cols + 1, dtype=np.int64)
    offs[1:] = np.cumsum(per_col)
    ent_col = np.repeat(np.arange(model.n_cols, dtype=np.int64), per_col)
    k = np.arange(len(ent_col), dtype=np.int64) - offs[ent_col] + 1
    ent_round = model.col_start[ent_col] + k - 1
    ent_mem = np.asarray(inst.mem(model.col_request[ent_col], k), dtype=np.int64)
    return _rows(
        ent_round, ent_col, ent_mem, np.ones(model.horizon, dtype=bool), inst.memory_budget
    )


def left_shift_terms(model: TimeIndexed) -> list[tuple[int, int, IntArray, IntArray, IntArray]]:
    """Per column ``(i, t)`` with ``t > a_i``: what must hold for it in every optimal plan.

    Returns ``(column, threshold, load_cols, load_coefs, end_cols)``: in an optimal plan with
    ``S_i = t``, either the others' memory in round ``t - 1`` is at least ``threshold``
    (``= M - mem_i(1) + 1``; with ``max_batch`` the caller also accepts a full batch there), or
    some other request has its last round in ``[t, t + o_i - 2]`` (one of ``end_cols`` is 1).

    Why (docs/exact.md, left-shift dominance): moving ``i`` to ``t - 1`` lowers the objective by
    one; in a round ``r`` of ``[t, t + o_i - 2]`` in which no other request has its last round, the
    others running at ``r`` still run at ``r + 1`` holding at least as much, and ``i`` now holds
    what it held at ``r + 1``, so round ``r`` is no fuller than round ``r + 1`` was.  Only round
    ``t - 1`` and rounds where another request ends can block the move.
    """
    inst = model.instance
    entries = round_entries(model)
    end = model.col_start + inst.output_len[model.col_request] - 1  # last round of each column
    order = np.argsort(end, kind="stable")
    end_sorted = end[order]
    out = []
    for c in range(model.n_cols):
        i = int(model.col_request[c])
        t = int(model.col_start[c])
        if t <= int(inst.arrival[i]):
            continue
        lo_i, hi_i = int(model.col_offset[i]), int(model.col_offset[i + 1])
        cols, coefs = (
            entries.row(t - 1)
            if t - 1 < entries.n_rows
            else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        )
        other = (cols < lo_i) | (cols >= hi_i)
        threshold = inst.memory_budget - int(inst.mem(i, 1)) + 1
        o_i = int(inst.output_len[i])
        a, b = (
            np.searchsorted(end_sorted, t, side="left"),
            np.searchsorted(end_sorted, t + o_i - 2, side="right"),
        )
        ends = order[a:b]
        ends = ends[(ends < lo_i) | (ends >= hi_i)]
        out.append((c, threshold, cols[other], coefs[other], np.sort(ends)))
    return out
