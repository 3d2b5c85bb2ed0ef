"""``milp``: the time-indexed model in Pyomo, solved by HiGHS (default) or another Pyomo solver.

The rows come from :mod:`.timeindexed` as CSR arrays and enter Pyomo one ``LinearExpression``
per row (building the model costs a few list conversions, not one expression per triple).
HiGHS runs through Pyomo's APPSI interface, which passes a complete starting solution
(``warmstart``), a time limit, zero gap tolerances and reads the dual bound.

Building the Pyomo model and handing it to HiGHS take time in proportion to the nonzeros (tens of
seconds for the largest accepted models on a loaded machine) and the time limit covers both: the
rows are built, and handed to APPSI, in blocks with the deadline checked between them, and past
it the answer is the warm start (:class:`~.prepare.Unsolved`, stop reason ``time_limit``).  The
HiGHS model is the one ``set_instance`` builds (same columns, rows and order).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.deadline import Deadline
from ..model.instance import Instance
from ..model.result import SolveOptions, SolveResult
from .prepare import ExactParams, Prepared, Unsolved, finish, prepare, unsolved_result
from .timeindexed import OutOfTime, TimeIndexed, check_time, term_chunks

log = logging.getLogger(__name__)

#: Option names of the other Pyomo solvers: (time limit, relative gap, absolute gap).
_LEGACY_OPTIONS: dict[str, tuple[str, str, str]] = {
    "gurobi": ("TimeLimit", "MIPGap", "MIPGapAbs"),
    "gurobi_direct": ("TimeLimit", "MIPGap", "MIPGapAbs"),
    "cplex": ("timelimit", "mipgap", "mip_tolerances_absmipgap"),
    "cplex_direct": ("timelimit", "mip_tolerances_mipgap", "mip_tolerances_absmipgap"),
    "cbc": ("seconds", "ratioGap", "allowableGap"),
    "glpk": ("tmlim", "mipgap", "mipgap"),
    "scip": ("limits/time", "limits/gap", "limits/absgap"),
}


#: Peak memory of building and solving the Pyomo model per estimated nonzero
#: (:func:`.timeindexed.estimate_nonzeros`), measured roughly on the trace classes; the model is
#: declined when the estimate exceeds :func:`.timeindexed.memory_cap`.
BYTES_PER_NONZERO = 500

#: the constraint blocks of :func:`build_pyomo`, in the order HiGHS receives them
BLOCKS = ("one_start", "memory", "batch", "symmetry")


@dataclass(frozen=True)
class MilpParams(ExactParams):
    """``milp``'s parameters: the shared exact-model keys and ``symmetry`` (order identical
    requests)."""

    symmetry: bool = True


def symmetry_rows(model: TimeIndexed) -> tuple[list[int], list[int], list[int]]:
    """CSR rows ``S_i - S_j <= 0`` for consecutive members of each identical-request group.

    ``S_i = sum_t t x_it``; requests with identical ``(s, o, a)`` are interchangeable
    (docs/model.md), so ordering their starts by index keeps at least one optimal plan.
    """
    data: list[int] = []
    indices: list[int] = []
    indptr = [0]
    off = model.col_offset
    for group in model.identical_groups():
        for i, j in zip(group[:-1], group[1:], strict=True):
            ci = np.arange(off[i], off[i + 1])
            cj = np.arange(off[j], off[j + 1])
            indices += ci.tolist() + cj.tolist()
            data += model.col_start[ci].tolist() + (-model.col_start[cj]).tolist()
            indptr.append(len(data))
    return data, indices, indptr


def _add_rows(
    m: Any,
    name: str,
    xs: list[Any],
    data: list[int],
    indices: list[int],
    indptr: list[int],
    lower: int | None,
    upper: int,
    deadline: Deadline | None = None,
) -> None:
    """Add ``m.<name>``: an indexed Pyomo constraint, one LinearExpression per CSR row (no
    expression per triple), in row order; :class:`~.timeindexed.OutOfTime` past ``deadline``."""
    import pyomo.environ as pyo
    from pyomo.core.expr.numeric_expr import LinearExpression

    n_rows = len(indptr) - 1
    setattr(m, name, pyo.Constraint(range(n_rows)))
    con = getattr(m, name)
    sizes = [indptr[r + 1] - indptr[r] for r in range(n_rows)]
    for first, last in term_chunks(sizes):
        check_time(deadline)
        for r in range(first, last):
            lo, hi = indptr[r], indptr[r + 1]
            body = LinearExpression(
                constant=0, linear_coefs=data[lo:hi], linear_vars=[xs[c] for c in indices[lo:hi]]
            )
            con[r] = (lower, body, upper)


def build_pyomo(model: TimeIndexed, symmetry: bool = True, deadline: Deadline | None = None) -> Any:
    """The Pyomo model of a time-indexed structure (binary ``x``, one start each, memory rows).

    Its constraint blocks are :data:`BLOCKS` (those without rows left out); raises
    :class:`~.timeindexed.OutOfTime` when ``deadline`` passes while it is built.
    """
    import pyomo.environ as pyo
    from pyomo.core.expr.numeric_expr import LinearExpression

    n_cols = model.n_cols
    m = pyo.ConcreteModel(name=model.instance.name)
    m.x = pyo.Var(range(n_cols), domain=pyo.Binary)
    xs = [m.x[j] for j in range(n_cols)]
    m.obj = pyo.Objective(
        expr=LinearExpression(constant=0, linear_coefs=model.col_cost.tolist(), linear_vars=xs),
        sense=pyo.minimize,
    )
    offsets = model.col_offset.tolist()
    _add_rows(m, "one_start", xs, [1] * n_cols, list(range(n_cols)), offsets, 1, 1, deadline)
    for name, rows in (("memory", model.memory_rows), ("batch", model.batch_rows)):
        if rows is not None and rows.n_rows:
            _add_rows(
                m,
                name,
                xs,
                rows.data.tolist(),
                rows.indices.tolist(),
                rows.indptr.tolist(),
                None,
                rows.rhs,
                deadline,
            )
    if symmetry:
        data, indices, indptr = symmetry_rows(model)
        if len(indptr) > 1:
            _add_rows(m, "symmetry", xs, data, indices, indptr, None, 0, deadline)
    return m


def highs_instance(opt: Any, m: Any, deadline: Deadline | None = None) -> None:
    """``opt.set_instance(m)`` for APPSI's HiGHS, in chunks of rows with ``deadline`` checked between.

    The variables enter with the objective (in index order, as ``set_instance`` adds them from the
    first rows), then the rows of :data:`BLOCKS` in order: the HiGHS model is the one
    ``set_instance`` builds.  APPSI's checks for changes before a solve are switched off (nothing
    changes after this).  Raises :class:`~.timeindexed.OutOfTime` past ``deadline``.
    """
    blocks = [getattr(m, name) for name in BLOCKS if hasattr(m, name)]
    for block in blocks:
        block.deactivate()
    try:
        opt.set_instance(m)  # the objective and its variables
        for block in blocks:
            rows = list(block.values())
            sizes = [len(getattr(row.body, "linear_vars", (0,))) for row in rows]
            for first, last in term_chunks(sizes):
                check_time(deadline)
                opt.add_constraints(rows[first:last])
    finally:
        for block in blocks:
            block.activate()
    update = opt.update_config
    for key in (
        "check_for_new_or_removed_constraints",
        "check_for_new_or_removed_vars",
        "check_for_new_or_removed_params",
        "check_for_new_objective",
        "update_constraints",
        "update_vars",
        "update_params",
        "update_named_expressions",
        "update_objective",
    ):
        setattr(update, key, False)


def _set_start(m: Any, model: TimeIndexed, prepared: Prepared) -> None:
    if prepared.hint is None:
        return
    x = model.indicator(prepared.hint.start_round)
    for j, v in enumerate(x.tolist()):
        m.x[j].set_value(v)


def _solve_highs(m: Any, prepared: Prepared, options: SolveOptions) -> dict[str, Any]:
    import highspy
    from pyomo.contrib.appsi.solvers import Highs

    # one HiGHS thread pool per process: reset it so that our ``threads`` value is accepted
    highspy.Highs.resetGlobalScheduler(True)
    opt = Highs()
    try:
        highs_instance(opt, m, prepared.deadline)
    except OutOfTime:
        raise prepared.unsolved("time limit reached while handing the model to HiGHS") from None
    remaining = prepared.remaining()
    opt.config.load_solution = False
    opt.config.warmstart = prepared.hint is not None
    opt.config.mip_gap = 0.0
    opt.config.stream_solver = bool(options.verbose)  # the log once, through the logger (stderr)
    if remaining is not None:
        opt.config.time_limit = max(remaining, 0.01)
    fd, log_path = tempfile.mkstemp(prefix="highs-", suffix=".log")
    os.close(fd)
    opt.highs_options = {
        "mip_rel_gap": 0.0,
        "mip_abs_gap": 0.0,
        "threads": int(options.threads),
        "random_seed": int(options.seed),
        "log_file": log_path,
        "output_flag": True,
        "log_to_console": False,
    }
    try:
        res = opt.solve(m)
        with open(log_path, errors="replace") as fh:
            highs_log = fh.read()
    finally:
        os.unlink(log_path)
    from pyomo.contrib.appsi.base import TerminationCondition as TC

    values = None
    if res.best_feasible_objective is not None:
        primals = res.solution_loader.get_primals()
        values = np.array([primals[m.x[j]] for j in range(len(m.x))], dtype=float)
    tc = res.termination_condition
    # HiGHS says so in its log when it accepted the complete starting solution.
    accepted = re.search(r"Assessing feasibility of MIP solution[^:]*: feasible", highs_log)
    first_user = re.search(
        r"MIP start solution is feasible[:,] objective value is\s*([-+0-9.eE]+)", highs_log
    )
    return {
        "values": values,
        "bound": res.best_objective_bound,
        "timed_out": tc == TC.maxTimeLimit,
        "infeasible": tc == TC.infeasible,
        "termination": str(tc.name),
        "warm_start_accepted": None if prepared.hint is None else accepted is not None,
        "warm_start_solver_objective": None if first_user is None else float(first_user.group(1)),
        "log": highs_log,
    }


def _solve_legacy(
    name: str, m: Any, prepared: Prepared, options: SolveOptions, remaining: float | None
) -> dict[str, Any]:
    import pyomo.environ as pyo
    from pyomo.opt import SolverStatus, TerminationCondition

    opt = pyo.SolverFactory(name)
    if opt is None or not opt.available(exception_flag=False):
        raise RuntimeError(
            f"solver '{name}' is not installed/available: Pyomo cannot find its executable or library"
        )
    tl, rel, abs_ = _LEGACY_OPTIONS.get(
        name.split("_")[0], ("time_limit", "mip_rel_gap", "mip_abs_gap")
    )
    if remaining is not None:
        opt.options[tl] = max(remaining, 0.01)
    opt.options[rel] = 0.0
    if abs_ != rel:
        opt.options[abs_] = 0.0
    kwargs: dict[str, Any] = {"load_solutions": False, "tee": bool(options.verbose)}
    if prepared.hint is not None and getattr(opt, "warm_start_capable", lambda: False)():
        kwargs["warmstart"] = True
    res = opt.solve(m, **kwargs)
    values = None
    if len(res.solution) > 0:
        m.solutions.load_from(res)
        values = np.array([pyo.value(m.x[j]) for j in range(len(m.x))], dtype=float)
    tc = res.solver.termination_condition
    bound = res.problem.lower_bound
    try:
        bound = float(bound)
    except (TypeError, ValueError):
        bound = None
    if tc == TerminationCondition.optimal and values is not None:
        bound = max(bound or -np.inf, float(np.dot(values, prepared.model.col_cost)))
    return {
        "values": values,
        "bound": bound,
        "timed_out": tc in (TerminationCondition.maxTimeLimit,)
        or res.solver.status == SolverStatus.aborted,
        "infeasible": tc == TerminationCondition.infeasible,
        "termination": str(tc),
        "warm_start_accepted": None,
        "warm_start_solver_objective": None,
        "log": "",
    }


def solve_milp(instance: Instance, options: SolveOptions | None = None) -> SolveResult:
    """``milp``: time-indexed MILP (Pyomo) solved to zero gap by HiGHS or ``options.solver``.

    Parameters: :class:`MilpParams` (``warm_start`` passes the best fast plan, or
    ``options.warm_start``, as a complete start).  The time limit covers the fast plans, model
    building, handing the model to the solver and solving; the solver gets what is left.  When
    it passes before the solver starts (module docstring), the result holds the warm start (or
    the best fast plan) with stop reason ``time_limit``.
    """
    options = options or SolveOptions()
    params = MilpParams.of(options)
    solver = (options.solver or "highs").lower()
    if solver not in ("highs", "appsi_highs"):
        import pyomo.environ as pyo

        probe = pyo.SolverFactory(solver)
        if probe is None or not probe.available(exception_flag=False):
            raise RuntimeError(
                f"solver '{solver}' is not installed/available: Pyomo cannot find it (try --solver highs)"
            )
    try:
        return _solve_milp(instance, options, params, solver)
    except Unsolved as err:
        return unsolved_result("milp", err)


def _solve_milp(
    instance: Instance, options: SolveOptions, params: MilpParams, solver: str
) -> SolveResult:
    prepared = prepare(
        instance, options, params, bytes_per_nonzero=BYTES_PER_NONZERO, interruptible=True
    )
    try:
        m = build_pyomo(prepared.model, symmetry=params.symmetry, deadline=prepared.deadline)
        _set_start(m, prepared.model, prepared)
        check_time(prepared.deadline)
    except OutOfTime:
        raise prepared.unsolved("time limit reached while building the model") from None
    build_seconds = time.perf_counter() - prepared.started
    t0 = time.perf_counter()
    if solver in ("highs", "appsi_highs"):
        out = _solve_highs(m, prepared, options)
    else:
        out = _solve_legacy(solver, m, prepared, options, prepared.remaining())
    solve_seconds = time.perf_counter() - t0
    starts = None
    if out["values"] is not None:
        starts = prepared.model.starts_from_values(out["values"])
    stats = {
        "solver": solver,
        "termination": out["termination"],
        "warm_start_accepted": out.get("warm_start_accepted"),
        "warm_start_solver_objective": out.get("warm_start_solver_objective"),
    }
    if params.keep_log:
        stats["solver_log"] = out.get("log", "")
    return finish(
        "milp",
        prepared,
        starts,
        out["bound"],
        bool(out["timed_out"]),
        build_seconds,
        solve_seconds,
        stats,
        proven_infeasible=bool(out["infeasible"]) and starts is None,
    )
