"""PNG figures: a plan's Gantt chart with its memory per round, and per-method gap distributions.

Figures are drawn with matplotlib's object API on the Agg canvas: no pyplot state and no
display, so the functions are safe in scripts, tests and worker processes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .model.plan import Plan

log = logging.getLogger(__name__)

# Up to this many requests the Gantt rows carry request ids; beyond, the rows are a dense image.
LABEL_LIMIT = 40


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike[str]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # write then rename: a reader never sees half a PNG
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def plot_plan(
    plan: Plan, path: str | os.PathLike[str], title: str | None = None, method: str | None = None
) -> Any:
    """Gantt chart of ``plan`` (rows = requests sorted by start round) above its memory per round.

    Each row shows the wait from arrival to start (grey) and the run from start to completion
    (coloured by prompt length).  The lower panel, on the same round axis, is the memory in use
    in each round against the budget ``M``.  All rows are drawn as one line collection, so
    thousands of requests cost one artist, and ids are written only for small plans.
    Returns the matplotlib ``Figure`` (already saved).
    """
    from matplotlib.collections import LineCollection

    inst = plan.instance
    n = inst.n
    order = plan.order()
    start = plan.start_round[order].astype(float)
    completion = plan.completion[order].astype(float)
    arrival = inst.arrival[order].astype(float)
    prompt = inst.prompt_len[order].astype(float)
    rows = np.arange(n, dtype=float)
    makespan = float(plan.makespan)

    height = 3.0 + min(6.0, 0.22 * n) if n <= LABEL_LIMIT else 8.0
    fig = _figure(11.0, height)
    gantt, memory = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.2])

    # thick bars when rows are few, hairlines filling the row pitch when there are thousands
    bar_width = float(np.clip(300.0 / max(n, 1), 0.6, 9.0))
    waits = arrival < start
    if waits.any():
        segs = np.stack(
            [
                np.column_stack([arrival[waits], rows[waits]]),
                np.column_stack([start[waits], rows[waits]]),
            ],
            axis=1,
        )
        gantt.add_collection(
            LineCollection(
                list(segs), colors="0.82", linewidths=bar_width, label="waiting (arrival to start)"
            )
        )
    segs = np.stack([np.column_stack([start, rows]), np.column_stack([completion, rows])], axis=1)
    runs = LineCollection(list(segs), cmap="viridis", linewidths=bar_width, capstyle="butt")
    runs.set_array(prompt)
    gantt.add_collection(runs)
    cbar = fig.colorbar(runs, ax=gantt, pad=0.01, fraction=0.03)
    cbar.set_label("prompt length (tokens)")
    gantt.set_ylim(n - 0.5, -0.5)  # first started on top
    gantt.set_xlim(0, makespan * 1.01 + 1)
    if n <= LABEL_LIMIT:
        gantt.set_yticks(rows)
        gantt.set_yticklabels(
            [f"{inst.ids[i]} (s={inst.prompt_len[i]}, o={inst.output_len[i]})" for i in order],
            fontsize=8,
        )
    else:
        gantt.set_ylabel(f"{n} requests, sorted by start round")
    gantt.grid(axis="x", color="0.9", linewidth=0.6)
    if waits.any():
        gantt.legend(loc="lower left", fontsize=8, framealpha=0.9)
    name = method
    heading = title or (
        f"{inst.name}: {n} requests, M = {inst.memory_budget}"
        + (f", {name}" if name else "")
        + f" — total latency {plan.total_latency} (mean {plan.average_latency:.1f} rounds), makespan {plan.makespan}"
    )
    gantt.set_title(heading, fontsize=10)

    used = plan.memory_per_round.astype(float)
    rounds = np.arange(len(used) + 1, dtype=float)
    peak_share = plan.peak_memory / inst.memory_budget
    mean_share = float(used.mean()) / inst.memory_budget if len(used) else 0.0
    # round t occupies [t, t+1) on the axis, matching the Gantt bars
    memory.stairs(used, rounds, fill=True, color="tab:blue", alpha=0.35,
                  label=f"memory in use (peak {100 * peak_share:.0f}% of M, mean {100 * mean_share:.0f}%)")  # fmt: skip
    memory.stairs(used, rounds, color="tab:blue", linewidth=0.8)
    memory.axhline(
        inst.memory_budget,
        color="tab:red",
        linewidth=1.2,
        linestyle="--",
        label=f"budget M = {inst.memory_budget}",
    )
    # headroom above M keeps the legend off the curve
    memory.set_ylim(0, inst.memory_budget * 1.35)
    memory.set_xlabel("round")
    memory.set_ylabel("KV memory (tokens)")
    memory.legend(loc="upper right", ncols=2, fontsize=8, framealpha=0.9)
    memory.grid(axis="y", color="0.9", linewidth=0.6)
    _save(fig, path)
    log.info("plan figure written to %s", path)
    return fig


def _results_frame(results: Any) -> Any:
    import pandas as pd

    if isinstance(results, pd.DataFrame):
        return results
    return pd.read_csv(results)


def plot_gaps(
    results: str | os.PathLike[str] | Any,
    path: str | os.PathLike[str],
    column: str = "gap",
    title: str | None = None,
    methods: Sequence[str] | None = None,
) -> Any:
    """Per-method distribution of ``column`` (``gap`` or ``gap_to_optimum``) from a results table.

    Left: box plots (methods sorted by mean gap); right: the empirical CDF on a symmetric-log
    axis, so that zero gaps (optimal plans) and large gaps are both visible.  Gaps are in percent.
    Returns the matplotlib ``Figure`` (already saved).
    """
    frame = _results_frame(results)
    frame = frame[frame[column].notna()]
    order = (
        list(methods)
        if methods is not None
        else list(frame.groupby("method")[column].mean().sort_values().index)
    )
    data = [100.0 * frame.loc[frame["method"] == m, column].to_numpy(dtype=float) for m in order]
    keep = [(m, d) for m, d in zip(order, data, strict=True) if d.size]
    fig = _figure(12.0, max(3.5, 1.0 + 0.35 * len(keep)))
    box_ax, cdf_ax = fig.subplots(1, 2, width_ratios=[1, 1.2])
    label = "gap to the optimum" if column == "gap_to_optimum" else "gap to the best known bound"
    if not keep:
        box_ax.text(
            0.5, 0.5, f"no {column} values", ha="center", va="center", transform=box_ax.transAxes
        )
        cdf_ax.set_axis_off()
    else:
        names = [m for m, _ in keep]
        values = [d for _, d in keep]
        top = max(float(v.max()) for v in values)
        linthresh = (
            0.1  # percent: below this the axis is linear so exact zeros sit at the left edge
        )
        box_kwargs: dict[str, Any] = {"tick_labels": [f"{m} (n={len(v)})" for m, v in keep], "showmeans": True,
                                      "meanprops": {"marker": "D", "markersize": 4}}  # fmt: skip
        try:
            box_ax.boxplot(values, orientation="horizontal", **box_kwargs)
        except TypeError:  # matplotlib < 3.10 spells it vert=False
            box_ax.boxplot(values, vert=False, **box_kwargs)
        box_ax.invert_yaxis()  # best method on top
        box_ax.set_xscale("symlog", linthresh=linthresh)
        box_ax.set_xlim(-0.02, max(top * 1.5, 1.0))
        box_ax.set_xlabel(f"{label} (%)")
        box_ax.grid(axis="x", color="0.9", linewidth=0.6)
        colors = _colors(len(names))
        styles = ["-", "--", ":", "-."]
        for k, (m, v, c) in enumerate(zip(names, values, colors, strict=True)):
            xs = np.sort(v)
            ys = np.arange(1, xs.size + 1) / xs.size
            # run each curve on to the right edge at 1 so that finished curves stay visible
            edge = max(top * 1.5, 1.0)
            cdf_ax.step(
                np.concatenate([[0.0], xs, [edge]]),
                np.concatenate([[0.0], ys, [1.0]]),
                where="post",
                label=m,
                color=c,
                linewidth=1.4,
                linestyle=styles[(k // 10) % len(styles)],
            )
        cdf_ax.set_xscale("symlog", linthresh=linthresh)
        cdf_ax.set_xlim(-0.02, max(top * 1.5, 1.0))
        cdf_ax.set_ylim(0, 1.02)
        cdf_ax.set_xlabel(f"{label} (%)")
        cdf_ax.set_ylabel("share of instances with at most this gap")
        cdf_ax.grid(color="0.9", linewidth=0.6)
        # beside the panel: with many methods an inside legend hides the curves
        cdf_ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(title or f"Per-method {label}", fontsize=11)
    _save(fig, path)
    log.info("gap figure written to %s", path)
    return fig


def _colors(count: int) -> list[Any]:
    from matplotlib import colormaps

    # ten distinct colours; beyond ten methods the line style changes instead (see plot_gaps)
    cmap = colormaps["tab10"]
    return [cmap(i % cmap.N) for i in range(count)]
