"""``results.csv``: the raw runs plus the columns that depend on all runs of an instance.

:func:`derive_results` pools bounds and optima over every run of an instance, :func:`write_results`
writes the table atomically, :func:`summary_table` and :func:`summarize` give the per-method view.
Everything here is a function of ``runs.jsonl`` alone, so the table can always be rebuilt.
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
        objectives = [r["objective"] for r in rows if r.get("objective") is not None]
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
        }
    out = []
    for r in raw_rows:
        if only_keys is not None and r["key"] not in only_keys:
            continue
        p = pooled[r["instance_hash"]]
        obj = r.get("objective")
        row = {c: r.get(c) for c in RESULT_COLUMNS}
        row["best_bound"] = p["best_bound"]
        row["optimum"] = p["optimum"]
        row["conflict"] = p["conflict"]
        row["gap"] = gap_formula(obj, p["best_bound"])
        row["gap_to_optimum"] = gap_formula(obj, p["optimum"]) if p["optimum"] is not None else None
        row["win"] = obj is not None and obj == p["best_objective"]
        bs, ss = r.get("build_seconds"), r.get("solve_seconds")
        row["seconds"] = None if bs is None or ss is None else round(bs + ss, 6)
        row["error"] = r.get("error") or ""
        out.append(row)
    out.sort(key=lambda x: (str(x["instance_path"]), str(x["method"]), int(x["seed"] or 0)))
    return out


def write_results(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Write ``results.csv`` atomically (temporary file, fsync, rename)."""
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=list(RESULT_COLUMNS))
    for col in (
        "n",
        "memory",
        "block_size",
        "max_batch",
        "objective",
        "lower_bound",
        "best_bound",
        "optimum",
        "recorded_optimum",
    ):
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
    gap mean/median/max (%) over the runs with a plan, gap to optimum, wins, time."""
    import numpy as np

    methods: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
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


def summarize(rows: Sequence[dict[str, Any]], markdown: bool = False) -> str:
    """The per-method summary as text (fixed width) or a markdown table; gaps in percent."""
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
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = [
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    for r in body:
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)
