"""``rh``: receding horizon over the requests, each window solved exactly by CP-SAT.

Requests are taken in a priority order (param ``order``: ``best`` = the start order of the best
fast plan (default), or ``svf``, ``sf``).  The window holds the ``window`` (default 8) next
uncommitted requests.  Its start rounds are optimised exactly (CP-SAT,
:func:`scheduler_milp.formulations.window.solve_window`) for the window's own total latency, next
to the memory (and batch slots) already used by the committed requests; requests beyond the window
are ignored (that is the myopia of the method).  The first half of the window by new start round
(``commit`` param, default ``window // 2``) is committed and never moved again; the rest stay in
the next window.  The last window is committed whole.

Each window starts from a hint that is feasible by construction: its requests placed one by one,
in priority order, at the earliest round at which their whole memory profile fits next to
everything placed (:meth:`scheduler_milp.heuristics.profile.Profile.earliest_after`).  The window
model's horizon is the valid horizon of docs/model.md computed inside the window:
``S_i <= UB_w - sum_{j in window} o_j + a_i`` with ``UB_w`` the hint's total latency.  CP-SAT runs
single-threaded with a deterministic time limit per window (``window_dtime``, default 1.0 units)
so the result is reproducible; the run's time limit bounds the whole run: when it is reached, the
remaining requests are placed at their earliest fit in priority order
(``stats["fallback_requests"]``).  A window the solver does not improve keeps its
hint.  The final plan passes the validator; should it not, the decoder's plan of the same order
is returned instead.  The time limit covers the priority order (the best fast plan's methods are
not started past it, the first excepted) and compiling the earliest-fit kernels of
:mod:`.profile`: when that outlasts the limit, the plan the order comes from (``best``), or else
the decoder's plan of the order, is returned (``stats["fallback"]`` ``"decoder"``, stop reason
``time_limit``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..baselines.best import best_fast_plan
from ..baselines.serving import decode_priority, sf_priority, svf_priority
from ..model.deadline import Deadline
from ..model.instance import Instance, IntArray
from ..model.params import MethodParams
from ..model.plan import Plan, validate
from ..model.result import SolveOptions, SolveResult, StopReason
from .profile import WARMUP, Profile
from .warmup import CP_SAT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RhParams(MethodParams):
    """``rh``'s parameters: window size, requests committed per window (``None``: half the
    window), priority order (``best``, ``svf``, ``sf``) and CP-SAT work units per window."""

    window: int = 8
    commit: int | None = None
    order: str = "best"
    window_dtime: float = 1.0


def _priority(
    instance: Instance, which: str, deadline: Deadline
) -> tuple[IntArray, str, Plan | None]:
    """The priority order, its name, and the plan it comes from (``best``; ``None`` otherwise)."""
    if which == "svf":
        return svf_priority(instance), "svf", None
    if which == "sf":
        return sf_priority(instance), "sf", None
    if which == "best":
        name, plan = best_fast_plan(instance, deadline=deadline)
        return plan.order().astype(np.int64), name, plan
    raise ValueError(f"rh: order must be best, svf or sf (got {which!r})")


def receding_horizon(
    instance: Instance,
    priority: IntArray,
    window: int = 8,
    commit: int | None = None,
    window_dtime: float = 1.0,
    deadline: float = math.inf,
    seed: int = 0,
) -> tuple[IntArray, dict[str, Any]]:
    """Start rounds of the receding-horizon plan for a priority order (see the module docstring)."""
    from ..formulations.window import solve_window

    if window < 1:
        raise ValueError(f"rh: window must be positive (got {window})")
    commit = max(1, window // 2) if commit is None else max(1, min(int(commit), window))
    inst = instance
    n = inst.n
    o, a = inst.output_len, inst.arrival
    start = np.full(n, -1, dtype=np.int64)
    profile = Profile(inst)
    committed: list[int] = []
    pending: list[int] = []  # uncommitted members of the current window, in priority order
    pos = 0
    stats: dict[str, Any] = {
        "windows": 0,
        "improved_windows": 0,
        "optimal_windows": 0,
        "fallback_requests": 0,
        "refused_windows": 0,
    }
    prio = [int(x) for x in priority]
    while pos < n or pending:
        while len(pending) < window and pos < n:
            pending.append(prio[pos])
            pos += 1
        win = pending
        win_arr = np.asarray(win, dtype=np.int64)
        # feasible hint: the window placed one by one in priority order, each at its earliest start
        profile.place_earliest(win_arr, 0)
        hint = {i: int(profile.start[i]) for i in win}
        profile.remove_all(win_arr)
        new = dict(hint)
        if time.perf_counter() < deadline and len(win) > 1 and CP_SAT.ready(Deadline(deadline)):
            stats["windows"] += 1
            members = np.asarray(committed + win, dtype=np.int64)
            sub = inst.subset(members, name=f"{inst.name}-rh")
            sub_start = np.concatenate([start[committed], [hint[i] for i in win]]).astype(np.int64)
            free = np.arange(len(committed), len(members), dtype=np.int64)
            ub_w = int(sum(hint[i] for i in win) + (o[win_arr] - a[win_arr]).sum())
            lo = a[win_arr].copy()
            hi = ub_w - int(o[win_arr].sum()) + a[win_arr]
            remaining = deadline - time.perf_counter()
            res = solve_window(
                sub,
                sub_start,
                free,
                lo,
                hi,
                time_limit=None if math.isinf(remaining) else max(0.01, remaining),
                deterministic_time=window_dtime,
                seed=seed,
                workers=1,
            )
            stats["improved_windows"] += int(res.improved)
            stats["optimal_windows"] += int(res.optimal)
            stats["refused_windows"] += int(bool(res.stats.get("refused")))
            new = {i: int(v) for i, v in zip(win, res.start_round.tolist(), strict=True)}
        else:
            stats["fallback_requests"] += len(win) if len(win) > 1 else 0
        last = pos >= n
        by_start = sorted(win, key=lambda i: (new[i], win.index(i)))
        take = by_start if last else by_start[:commit]
        for i in take:
            start[i] = new[i]
            profile.place(i, new[i])
            committed.append(i)
        pending = [i for i in win if start[i] < 0]
    return start, stats


def solve_rh(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``rh``: receding horizon with exact CP-SAT windows (parameters: :class:`RhParams`)."""
    options = options or SolveOptions()
    p = RhParams.of(options)
    t0 = time.perf_counter()
    deadline = options.budget()
    WARMUP.start()  # compiles (and imports CP-SAT) while the priority order is found
    CP_SAT.start()
    priority, order_name, ordered = _priority(instance, p.order, deadline)
    t1 = time.perf_counter()
    stop = StopReason.COMPLETED
    if not WARMUP.ready(deadline):  # compiling the kernels outlasted the time limit
        # the plan the order comes from, or the decoder's plan of the order
        plan = ordered if ordered is not None else decode_priority(instance, priority)
        stats: dict[str, Any] = {"fallback": "decoder", "kernels": "not compiled in time"}
        stop = StopReason.TIME_LIMIT
    else:
        starts, stats = receding_horizon(
            instance,
            priority,
            window=p.window,
            commit=p.commit,
            window_dtime=p.window_dtime,
            deadline=deadline.at,
            seed=options.seed,
        )
        if stats["fallback_requests"]:
            stop = StopReason.TIME_LIMIT
        if validate(instance, starts):
            # cannot happen if the windows keep their promise; never hand out an invalid plan
            log.warning("rh: window plan invalid, returning the decoder's plan of the same order")
            plan = decode_priority(instance, priority)
            stats["fallback"] = "decoder"
        else:
            plan = Plan.checked(instance, starts)
    stats["order"] = order_name
    log.info("rh: objective %d over %d windows", plan.total_latency, stats.get("windows", 0))
    return SolveResult(
        "rh",
        instance,
        plan,
        stop_reason=stop,
        build_seconds=t1 - t0,
        solve_seconds=time.perf_counter() - t1,
        stats=stats,
    )
