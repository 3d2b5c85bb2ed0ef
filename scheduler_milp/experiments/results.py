"""``results.csv``: the raw runs plus the columns that depend on all runs of an instance.

:func:`derive_results` pools bounds and optima over every run of an instance, :func:`write_results`
writes the table atomically, :func:`summary_table` and :func:`summarize` give the per-method view
(and :func:`online_summary_table` the per-configuration view of online runs).  Everything here is
a function of ``runs.jsonl`` alone, so the table can always be rebuilt.

A table with online runs (rows with a ``policy``) has the :data:`ONLINE_COLUMNS` as well; a table
of offline runs only has exactly :data:`RESULT_COLUMNS`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..model.result import gap as gap_formula
from .store import RAW_FILE, RESULTS_FILE, read_runs

log = logging.getLogger(__name__)

# results.csv columns, in order; timing columns are listed apart so tests can compare the rest.
TIMING_COLUMNS = (
    "build_seconds",
    "solve_seconds",
    "seconds",
    "wall_seconds",
    "finished_at",
    "host",
)
RESULT_COLUMNS = (
    "instance", "instance_path", "instance_hash", "n", "memory", "block_size", "max_batch",
    "method", "kind", "seed", "time_limit", "params", "status", "stop_reason", "objective",
    "lower_bound", "own_gap", "best_bound", "gap", "optimum", "gap_to_optimum", "win",
    "build_seconds", "solve_seconds", "seconds", "wall_seconds", "error", "conflict",
    "recorded_optimum", "key", "git_rev", "versions", "finished_at", "host",
)  # fmt: skip
#: the columns of online runs, after ``win`` (offline rows leave them empty, except the references)
ONLINE_COLUMNS = (
    "policy", "predictor", "eviction", "prediction_error", "evictions", "wasted_rounds",
    "ttft_mean", "ttft_p50", "ttft_p90", "ttft_p99", "ttft_max", "peak_memory", "mean_memory",
    "makespan", "hindsight", "hindsight_by", "ratio_hindsight", "ratio_bound",
)  # fmt: skip
_INT_COLUMNS = (
    "n", "memory", "block_size", "max_batch", "objective", "lower_bound", "best_bound", "optimum",
    "recorded_optimum", "evictions", "wasted_rounds", "ttft_max", "peak_memory", "makespan",
    "hindsight",
)  # fmt: skip


def is_online(row: dict[str, Any]) -> bool:
    """Whether a row is an online run (it names a policy)."""
    return bool(row.get("policy"))


def _is_plan(row: dict[str, Any]) -> bool:
    """Whether a row's objective is that of a plan of the true instance: an offline run or a
    clairvoyant ``hindsight:`` run (an online execution in ``resume`` mode is not a plan)."""
    return not is_online(row) or row.get("kind") == "hindsight"


def result_columns(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The columns of a table of ``rows``: :data:`RESULT_COLUMNS`, with :data:`ONLINE_COLUMNS`
    after ``win`` when some row is an online run."""
    if not any(is_online(r) for r in rows):
        return RESULT_COLUMNS
    cut = RESULT_COLUMNS.index("win") + 1
    return RESULT_COLUMNS[:cut] + ONLINE_COLUMNS + RESULT_COLUMNS[cut:]


def derive_results(
    raw_rows: Sequence[dict[str, Any]], only_keys: set[str] | None = None
) -> list[dict[str, Any]]:
    """Add the columns that depend on all runs of an instance (bounds and optima are pooled
    over every run in the raw file, including runs outside ``only_keys``).

    ``best_bound`` = max of the runs' proven lower bounds and the file's recorded optimum;
    ``optimum`` = objective of a run whose status is optimal, else the recorded optimum;
    ``gap`` and ``gap_to_optimum`` use the one gap formula against them; ``win`` marks the runs
    with the smallest objective on their instance.  Inconsistencies (a bound above a valid plan,
    two different proven optima) are logged and noted in ``conflict``.

    Online runs (see :data:`ONLINE_COLUMNS`): ``hindsight`` is the best clairvoyant objective of
    the instance (the optimum, or the best plan of an offline or ``hindsight:`` run; ``hindsight_by``
    names it), ``ratio_hindsight`` = objective / hindsight and ``ratio_bound`` = objective /
    best_bound (below 1 only in ``resume`` mode, where an eviction is a preemption).  An online
    execution is no plan: it takes no part in ``win`` or the conflict check of the plans, has no
    ``gap``, and ``win`` marks the best policy among the online runs of the same instance,
    predictor, eviction mode and seed.  ``hindsight:`` runs are plans and count as such.
    """
    by_instance: dict[str, list[dict[str, Any]]] = {}
    for r in raw_rows:
        by_instance.setdefault(r["instance_hash"], []).append(r)
    pooled: dict[str, dict[str, Any]] = {}
    for digest, rows in by_instance.items():
        bounds = [r["lower_bound"] for r in rows if r.get("lower_bound") is not None]
        recorded = [r["recorded_optimum"] for r in rows if r.get("recorded_optimum") is not None]
        proven = sorted(
            {
                r["objective"]
                for r in rows
                if r.get("status") == "optimal" and r.get("objective") is not None
            }
        )
        objectives = [
            r["objective"] for r in rows if r.get("objective") is not None and _is_plan(r)
        ]
        conflicts = []
        optimum = proven[0] if proven else (recorded[0] if recorded else None)
        if len(set(proven) | set(recorded)) > 1:
            conflicts.append(f"different optima {sorted(set(proven) | set(recorded))}")
        best_bound = max(bounds + recorded) if (bounds or recorded) else None
        best_objective = min(objectives) if objectives else None
        if best_bound is not None and best_objective is not None and best_bound > best_objective:
            conflicts.append(f"bound {best_bound} above a valid plan's objective {best_objective}")
        for text in conflicts:
            log.warning("instance %s: %s", rows[0].get("instance_path"), text)
        pooled[digest] = {
            "optimum": optimum,
            "best_bound": best_bound,
            "best_objective": best_objective,
            "conflict": "; ".join(conflicts),
            **_hindsight_reference(rows, optimum),
        }
    kept = [r for r in raw_rows if only_keys is None or r["key"] in only_keys]
    columns = result_columns(kept)
    best_online = _best_online(raw_rows)
    out = []
    for r in kept:
        p = pooled[r["instance_hash"]]
        obj = r.get("objective")
        row = {c: r.get(c) for c in columns}
        row["best_bound"] = p["best_bound"]
        row["optimum"] = p["optimum"]
        row["conflict"] = p["conflict"]
        if _is_plan(r):
            row["gap"] = gap_formula(obj, p["best_bound"])
            row["gap_to_optimum"] = (
                gap_formula(obj, p["optimum"]) if p["optimum"] is not None else None
            )
            row["win"] = obj is not None and obj == p["best_objective"]
        else:
            row["gap"] = row["gap_to_optimum"] = None
            row["win"] = obj is not None and obj == best_online.get(_online_group(r))
        if columns is not RESULT_COLUMNS:
            row["hindsight"], row["hindsight_by"] = p["hindsight"], p["hindsight_by"]
            row["ratio_hindsight"] = _ratio(obj, p["hindsight"])
            row["ratio_bound"] = _ratio(obj, p["best_bound"])
        bs, ss = r.get("build_seconds"), r.get("solve_seconds")
        row["seconds"] = None if bs is None or ss is None else round(bs + ss, 6)
        row["error"] = r.get("error") or ""
        out.append(row)
    out.sort(
        key=lambda x: (
            str(x["instance_path"]),
            str(x["method"]),
            str(x.get("predictor") or ""),
            str(x.get("eviction") or ""),
            int(x["seed"] or 0),
        )
    )
    return out


def _hindsight_reference(rows: Sequence[dict[str, Any]], optimum: int | None) -> dict[str, Any]:
    """The best clairvoyant objective of an instance's runs and who reached it."""
    plans = [(r["objective"], str(r["method"])) for r in rows
             if r.get("objective") is not None and _is_plan(r)]  # fmt: skip
    if optimum is not None:
        plans.append((optimum, "optimum"))
    if not plans:
        return {"hindsight": None, "hindsight_by": None}
    best = min(value for value, _ in plans)
    by = sorted({name for value, name in plans if value == best})
    if "optimum" in by and len(by) > 1:
        by.remove("optimum")
    return {"hindsight": best, "hindsight_by": ", ".join(by)}


def _online_group(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["instance_hash"], r.get("predictor"), r.get("eviction"), r.get("seed"))


def _best_online(rows: Sequence[dict[str, Any]]) -> dict[tuple[Any, ...], int]:
    """The smallest objective of the (non-clairvoyant) online runs of each configuration."""
    best: dict[tuple[Any, ...], int] = {}
    for r in rows:
        obj = r.get("objective")
        if is_online(r) and not _is_plan(r) and obj is not None:
            group = _online_group(r)
            best[group] = min(obj, best.get(group, obj))
    return best


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference


def write_results(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Write ``results.csv`` atomically (temporary file, fsync, rename)."""
    import pandas as pd

    columns = result_columns(rows)
    frame = pd.DataFrame(list(rows), columns=list(columns))
    for col in _INT_COLUMNS:
        if col in columns:
            frame[col] = frame[col].astype("Int64")
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as fh:
            frame.to_csv(fh, index=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def rebuild_results(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Re-derive ``results.csv`` from ``runs.jsonl`` alone (e.g. after a killed sweep)."""
    out = Path(out_dir)
    rows = derive_results(read_runs(out / RAW_FILE))
    write_results(rows, out / RESULTS_FILE)
    return rows


def summary_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method: runs, plans, optimal, errors, declined (beyond the method's size limit),
    gap mean/median/max (%) over the runs with a plan, gap to optimum, wins, time (offline runs
    only: online runs are in :func:`online_summary_table`)."""
    import numpy as np

    methods: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if not is_online(r):
            methods.setdefault(r["method"], []).append(r)
    table = []
    for method, rs in methods.items():
        gaps = np.array([100 * r["gap"] for r in rs if r.get("gap") is not None], dtype=float)
        opt_gaps = np.array(
            [100 * r["gap_to_optimum"] for r in rs if r.get("gap_to_optimum") is not None],
            dtype=float,
        )
        secs = np.array([r["seconds"] for r in rs if r.get("seconds") is not None], dtype=float)
        table.append(
            {
                "method": method,
                "runs": len(rs),
                "plans": sum(r.get("objective") is not None for r in rs),
                "optimal": sum(r.get("status") == "optimal" for r in rs),
                "errors": sum(
                    bool(r.get("error")) and r.get("stop_reason") != "too_large" for r in rs
                ),
                "declined": sum(r.get("stop_reason") == "too_large" for r in rs),
                "gap_mean": float(gaps.mean()) if gaps.size else None,
                "gap_median": float(np.median(gaps)) if gaps.size else None,
                "gap_max": float(gaps.max()) if gaps.size else None,
                "opt_gap_mean": float(opt_gaps.mean()) if opt_gaps.size else None,
                "opt_gap_max": float(opt_gaps.max()) if opt_gaps.size else None,
                "with_optimum": int(opt_gaps.size),
                "wins": sum(bool(r.get("win")) for r in rs),
                "seconds_mean": float(secs.mean()) if secs.size else None,
                "seconds_max": float(secs.max()) if secs.size else None,
            }
        )
    table.sort(
        key=lambda t: (
            t["gap_mean"] is None,
            t["gap_mean"] if t["gap_mean"] is not None else 0.0,
            t["method"],
        )
    )
    return table


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def online_summary_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (policy, predictor, eviction mode) of the online runs: runs, errors, mean ratio to the
    hindsight reference and to the best bound, mean evictions and wasted rounds, mean p99 TTFT,
    wins (best policy of its configuration) and mean time; in the order of first appearance."""
    import numpy as np

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if is_online(r):
            groups.setdefault((r["policy"], r["predictor"], r["eviction"]), []).append(r)

    def mean(rs: list[dict[str, Any]], col: str) -> float | None:
        vals = np.array([r[col] for r in rs if r.get(col) is not None], dtype=float)
        return float(vals.mean()) if vals.size else None

    return [
        {
            "policy": policy,
            "predictor": predictor,
            "eviction": eviction,
            "runs": len(rs),
            "errors": sum(bool(r.get("error")) for r in rs),
            "ratio_hindsight": mean(rs, "ratio_hindsight"),
            "ratio_bound": mean(rs, "ratio_bound"),
            "evictions": mean(rs, "evictions"),
            "wasted_rounds": mean(rs, "wasted_rounds"),
            "ttft_p99": mean(rs, "ttft_p99"),
            "wins": sum(bool(r.get("win")) for r in rs),
            "seconds_mean": mean(rs, "seconds"),
        }
        for (policy, predictor, eviction), rs in groups.items()
    ]


def _table_text(header: list[str], body: list[list[str]], markdown: bool, left: int = 1) -> str:
    """A table as markdown or fixed-width text (the first ``left`` columns left-aligned)."""
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] * left + ["---:"] * (len(header) - left)) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = [
        "  ".join(
            h.ljust(w) if i < left else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    for r in body:
        lines.append(
            "  ".join(
                c.ljust(w) if i < left else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)


def summarize(rows: Sequence[dict[str, Any]], markdown: bool = False) -> str:
    """The per-method summary as text (fixed width) or a markdown table; gaps in percent.

    With online runs, the per-configuration summary of :func:`online_summary_table` follows (the
    per-method table only when there are offline runs too).
    """
    online = any(is_online(r) for r in rows)
    parts = []
    if not online or any(not is_online(r) for r in rows):
        parts.append(_offline_summary(rows, markdown))
    if online:
        header = ["policy", "predictor", "eviction", "runs", "errors", "ratio to hindsight",
                  "ratio to bound", "evictions", "wasted rounds", "ttft p99", "wins", "time mean s"]  # fmt: skip
        body = [
            [
                t["policy"],
                t["predictor"],
                t["eviction"],
                str(t["runs"]),
                str(t["errors"]),
                _fmt(t["ratio_hindsight"]),
                _fmt(t["ratio_bound"]),
                _fmt(t["evictions"], ".1f"),
                _fmt(t["wasted_rounds"], ".1f"),
                _fmt(t["ttft_p99"], ".1f"),
                str(t["wins"]),
                _fmt(t["seconds_mean"], ".3g"),
            ]  # fmt: skip
            for t in online_summary_table(rows)
        ]
        parts.append(_table_text(header, body, markdown, left=3))
    return "\n\n".join(parts)


def _offline_summary(rows: Sequence[dict[str, Any]], markdown: bool) -> str:
    header = ["method", "runs", "plans", "optimal", "errors", "declined", "gap mean %", "gap median %", "gap max %",
              "gap to opt mean %", "gap to opt max %", "wins", "time mean s", "time max s"]  # fmt: skip
    body = []
    for t in summary_table(rows):
        opt = (_fmt(t["opt_gap_mean"]), _fmt(t["opt_gap_max"])) if t["with_optimum"] else ("-", "-")
        body.append([
            t["method"], str(t["runs"]), str(t["plans"]), str(t["optimal"]), str(t["errors"]), str(t["declined"]),
            _fmt(t["gap_mean"]), _fmt(t["gap_median"]), _fmt(t["gap_max"]), *opt, str(t["wins"]),
            _fmt(t["seconds_mean"], ".3g"), _fmt(t["seconds_max"], ".3g"),
        ])  # fmt: skip
    return _table_text(header, body, markdown)
