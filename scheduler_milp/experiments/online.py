"""The price of uncertainty (docs/online.md): online policies against the hindsight plans and bounds.

Every policy's total latency divided by a reference, for the predictors exact, lognormal 0.25 /
0.5 / 1, interval 0.5 / 2, bins:8 and constant, in both eviction modes, on

- (a) scaled-down backlogs with a proven optimum recorded in their files (the optima of
  ``instances/optima``), against that optimum; seeded predictors with several seeds;
- (b) mixed backlogs (70% Azure conversations, 30% arXiv summarizations, all at round 0) at two
  budgets, against the best certified lower bound of the true instance (a ``lagrange`` run in the
  same grid);
- (c) the Azure conversation trace with its real arrivals, a prefix and the whole trace, against
  the best clairvoyant plan (the ``hindsight:`` runs; the ``volume-bound`` and ``busy-bound`` runs
  give the certified bound).

It is one grid of the runner (:func:`price_grid`): online runs (:func:`~.grid.make_online_grid`)
next to the offline runs that give the references, so it resumes, runs on the local pool or on
Ray, and its records are ``runs.jsonl`` / ``results.csv`` like any sweep.  :func:`build_groups`
writes the instances, :func:`run_price` runs the grid, :func:`price_tables` and
:func:`price_figure` turn the derived rows into the tables and the figure of docs/online.md.
``benchmarks/bench_online.py --price`` is the command line.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .grid import RunSpec, make_grid, make_online_grid
from .results import derive_results, is_online
from .store import RAW_FILE, read_runs
from .sweep import SweepReport, run_sweep

log = logging.getLogger(__name__)

PREDICTORS = (
    "exact",
    "lognormal:0.25",
    "lognormal:0.5",
    "lognormal:1",
    "interval:0.5",
    "interval:2",
    "bins:8",
    "constant",
)
#: predictors whose predictions do not depend on the seed (run with one seed)
UNSEEDED = ("exact", "constant", "bins:8")
POLICIES = (
    "vllm",
    "fcfs",
    "sf",
    "mcsf",
    "svf",
    "sorted-f",
    "sorted-f-robust",
    "amax",
    "amin",
    "replan:svf",
)
HINDSIGHT = ("hindsight:mcsf", "hindsight:svf", "hindsight:sorted-f")
MODES = ("restart", "resume")
#: the whole trace: fewer predictors and policies (each run takes seconds)
WHOLE_PREDICTORS = ("exact", "lognormal:0.5", "lognormal:1", "constant")
WHOLE_POLICIES = ("vllm", "mcsf", "sf", "svf", "sorted-f", "sorted-f-robust", "amax", "amin")
#: the offline bound runs of each section (their best bound is the certified reference)
BOUND_METHODS = {"b": ("lagrange",), "c": ("volume-bound", "busy-bound")}


@dataclass(frozen=True)
class PriceSetting:
    """The experiment's size: which sections, how many optima and seeds, backlog sizes, budgets."""

    sections: str = "abc"
    optima_count: int | None = None  # the first k optima files (None: all)
    optima_seeds: tuple[int, ...] = (0, 1, 2)
    mix_n: int = 1000
    mix_memories: tuple[int, ...] = (65536, 16384)
    conv_memory: int = 65536
    conv_prefix: int = 2000
    conv_whole: bool = True
    bound_time_limit: float = 120.0


#: a reduced grid that exercises every section in about a minute on 2 cores
QUICK_PRICE = PriceSetting(optima_count=3, optima_seeds=(0,), mix_n=100, mix_memories=(65536,),
                           conv_prefix=200, conv_whole=False, bound_time_limit=5.0)  # fmt: skip


@dataclass(frozen=True)
class Group:
    """Instances reported together: one table per eviction mode, policies by predictors."""

    label: str
    section: str  # "a", "b" or "c"
    title: str
    paths: tuple[str, ...]
    reference: str  # "bound": ratio to the best bound; "hindsight": to the best clairvoyant plan
    predictors: tuple[str, ...] = PREDICTORS
    policies: tuple[str, ...] = POLICIES
    hindsight: tuple[str, ...] = HINDSIGHT  # clairvoyant runs (none in section a)


def _norm(path: str | os.PathLike[str]) -> str:
    """A path as the grid records it: relative to the working directory when inside it."""
    rel = os.path.relpath(path)
    return os.path.normpath(rel if not rel.startswith("..") else os.path.abspath(path))


def build_groups(work: Path, setting: PriceSetting, optima: Sequence[str]) -> list[Group]:
    """Write the instances of (b) and (c) into ``work/instances`` (the same bytes on every call,
    so the run keys stay) and return the groups of the sections asked for."""
    from ..model.instance import load_instance
    from ..traces import BENCHMARK_MIX, sample_backlog

    groups: list[Group] = []
    folder = work / "instances"
    if "a" in setting.sections and optima:
        paths = tuple(_norm(p) for p in sorted(optima)[: setting.optima_count])
        sizes = [load_instance(p).n for p in paths]
        seeds = len(setting.optima_seeds)
        title = (
            f"(a) {len(paths)} scaled-down backlogs (n = {min(sizes)}..{max(sizes)}), ratio to the "
            f"proven optimum (mean; seeded predictors: {seeds} seed{'s' if seeds > 1 else ''})"
        )
        groups.append(Group("optima", "a", title, paths, "bound", hindsight=()))
    if "b" in setting.sections:
        for m in setting.mix_memories:
            label = f"mix{setting.mix_n}-M{m}"
            inst = sample_backlog(BENCHMARK_MIX, setting.mix_n, 0, memory=m, name=label)
            title = (
                f"(b) {setting.mix_n:,} mixed requests at round 0, M = {m:,}: ratio to the best "
                "lower bound"
            )
            groups.append(Group(label, "b", title, (_save(inst, folder, label),), "bound"))
    if "c" in setting.sections:
        m = setting.conv_memory
        whole = sample_backlog(
            "conv", None, 0, memory=m, arrivals="trace", name="conv-arrivals-all"
        )
        label = f"conv-arrivals-{setting.conv_prefix}"
        prefix = whole.subset(range(min(setting.conv_prefix, whole.n)), name=label)
        title = (
            f"(c) Azure conversations with arrivals, first {prefix.n:,} requests, M = {m:,}: "
            "ratio to the best hindsight plan"
        )
        groups.append(Group(label, "c", title, (_save(prefix, folder, label),), "hindsight"))
        if setting.conv_whole:
            title = (
                f"(c) Azure conversations with arrivals, whole trace ({whole.n:,}), M = {m:,}: "
                "ratio to the best hindsight plan"
            )
            path = _save(whole, folder, "conv-arrivals-all")
            groups.append(Group("conv-arrivals-all", "c", title, (path,), "hindsight",
                                WHOLE_PREDICTORS, WHOLE_POLICIES, HINDSIGHT[:1]))  # fmt: skip
    return groups


def _save(inst: Any, folder: Path, label: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{label}.json"
    inst.save(path)
    return _norm(path)


def price_grid(groups: Sequence[Group], setting: PriceSetting) -> list[RunSpec]:
    """Every run of the experiment: the online runs and the offline runs of the references,
    longest first (bounds, then large instances, ``replan:`` first) so that the pool ends together."""
    specs: list[tuple[int, RunSpec]] = []
    for g in groups:
        for path in g.paths:
            n = _size(path)
            runs: list[RunSpec] = []
            for pred in g.predictors:
                seeds = (0,) if g.section != "a" or pred in UNSEEDED else setting.optima_seeds
                runs += make_online_grid([path], g.policies, [pred], MODES, seeds)
            runs += make_online_grid([path], g.hindsight, ["exact"], MODES[:1])
            if g.section in BOUND_METHODS:
                methods = BOUND_METHODS[g.section]
                bounds = make_grid([path], methods, [0], setting.bound_time_limit, threads=1)
                specs += [(-(10**12), s) for s in bounds]
            specs += [(-n * (4 if s.method.startswith("replan:") else 1), s) for s in runs]
    specs.sort(key=lambda x: x[0])
    return [s for _, s in specs]


def _size(path: str) -> int:
    from ..model.instance import load_instance

    return load_instance(path).n


def run_price(
    work: Path,
    setting: PriceSetting,
    optima: Sequence[str],
    jobs: int = 2,
    backend: str = "local",
    address: str | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
) -> tuple[list[Group], SweepReport]:
    """Build the instances and run the grid into ``work`` (resuming); the groups and the report."""
    groups = build_groups(work, setting, optima)
    grid = price_grid(groups, setting)
    log.info("price of uncertainty: %d runs in the grid", len(grid))
    report = run_sweep(grid, work, jobs=jobs, backend=backend, address=address,
                       progress=progress, command=command)  # fmt: skip
    return groups, report


def price_rows(work: Path, groups: Sequence[Group], setting: PriceSetting) -> list[dict[str, Any]]:
    """The derived rows of the grid's finished runs, from ``work/runs.jsonl`` alone."""
    keys = {s.key for s in price_grid(groups, setting)}
    return derive_results(read_runs(work / RAW_FILE), only_keys=keys)


# ---------------------------------------------------------------------- tables
Key = tuple[str, str, str, str]


def _by_group(rows: Sequence[dict[str, Any]], groups: Sequence[Group]) -> dict[str, str]:
    return {os.path.normpath(p): g.label for g in groups for p in g.paths}


def ratios(rows: Sequence[dict[str, Any]], groups: Sequence[Group]) -> dict[Key, float]:
    """``(group, policy, predictor, eviction)`` -> mean ratio of the runs to the group's reference."""
    where = _by_group(rows, groups)
    kind = {g.label: g.reference for g in groups}
    acc: dict[Key, list[float]] = defaultdict(list)
    for r in rows:
        label = where.get(os.path.normpath(str(r["instance_path"])))
        if label is None or not is_online(r) or r.get("objective") is None:
            continue
        value = r["ratio_hindsight"] if kind[label] == "hindsight" else r["ratio_bound"]
        if value is not None:
            acc[(label, r["policy"], r["predictor"], r["eviction"])].append(float(value))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def mean_errors(rows: Sequence[dict[str, Any]], groups: Sequence[Group]) -> dict[tuple[str, str], float]:  # fmt: skip
    """``(group, predictor)`` -> mean absolute log error of the predictions."""
    where = _by_group(rows, groups)
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        label = where.get(os.path.normpath(str(r["instance_path"])))
        if label is not None and is_online(r) and r.get("prediction_error") is not None:
            acc[(label, r["predictor"])].append(float(r["prediction_error"]))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def references(rows: Sequence[dict[str, Any]], group: Group) -> dict[str, Any] | None:
    """The reference numbers of a one-instance group: best bound and its method, best
    hindsight plan and its policy or method, and that plan's ratio to the bound."""
    if len(group.paths) != 1:
        return None
    path = os.path.normpath(group.paths[0])
    mine = [r for r in rows if os.path.normpath(str(r["instance_path"])) == path]
    if not mine:
        return None
    bound, plan = mine[0].get("best_bound"), mine[0].get("hindsight")
    provers = [r for r in mine if bound is not None and r.get("lower_bound") == bound]
    # name the bound methods of the grid before the hindsight runs' own bounds
    provers = [r for r in provers if r.get("kind") != "hindsight"] or provers
    bound_by = sorted({str(r["method"]) for r in provers})
    # and the hindsight runs before the offline runs that reached the same plan
    plan_names = str(mine[0].get("hindsight_by") or "").split(", ")
    plan_by = [m for m in plan_names if m.startswith("hindsight:")] or plan_names
    return {
        "bound": bound,
        "bound_by": ", ".join(bound_by) or "recorded optimum",
        "plan": plan,
        "plan_by": ", ".join(plan_by),
        "plan_ratio": None if not bound or plan is None else plan / bound,
    }


def price_tables(rows: Sequence[dict[str, Any]], groups: Sequence[Group]) -> str:
    """The markdown tables: one per group and eviction mode, policies by predictors (each
    column headed by the predictor's mean absolute log error; the best ratio in bold)."""
    rat = ratios(rows, groups)
    errs = mean_errors(rows, groups)
    out: list[str] = []
    for g in groups:
        preds = [p for p in PREDICTORS if any(k[0] == g.label and k[2] == p for k in rat)]
        if not preds:
            continue
        out.append(f"### {g.title}\n")
        ref = references(rows, g)
        if ref is not None and ref["bound"] is not None:
            line = f"Reference: lower bound {ref['bound']:,} (`{ref['bound_by']}`)"
            if ref["plan_ratio"] is not None:
                line += f"; best hindsight plan `{ref['plan_by']}` = {ref['plan_ratio']:.3f} x the bound"
            out.append(line + ".\n")
        for mode in MODES:
            pols = [p for p in POLICIES if any((g.label, p, q, mode) in rat for q in preds)]
            if not pols:
                continue
            head = " | ".join(f"{q} ({errs.get((g.label, q), 0.0):.2f})" for q in preds)
            lines = [
                f"**{mode}** (column: predictor and its mean absolute log error)\n",
                f"| policy | {head} |",
                "|---|" + "---:|" * len(preds),
            ]
            best = {
                q: min(
                    (rat[(g.label, p, q, mode)] for p in pols if (g.label, p, q, mode) in rat),
                    default=None,
                )  # fmt: skip
                for q in preds
            }
            for p in pols:
                cells = []
                for q in preds:
                    v = rat.get((g.label, p, q, mode))
                    low = best[q]
                    if v is None:
                        cells.append("-")
                    elif low is not None and v <= low + 1e-12:
                        cells.append(f"**{v:.3f}**")
                    else:
                        cells.append(f"{v:.3f}")
                lines.append(f"| `{p}` | " + " | ".join(cells) + " |")
            out.append("\n".join(lines) + "\n")
    return "\n".join(out)


LINE_PREDICTORS = ("exact", "lognormal:0.25", "lognormal:0.5", "lognormal:1")
POINT_MARKERS = {"interval:0.5": "^", "interval:2": "v", "bins:8": "s", "constant": "x"}


def price_figure(rows: Sequence[dict[str, Any]], groups: Sequence[Group], path: Path) -> bool:
    """Ratio against prediction error on the (b) backlogs, one line per policy (the lognormal
    family; the other predictors as markers), the best hindsight plan as the floor; one panel per
    backlog and eviction mode.  ``False`` (nothing drawn) without (b) runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rat = ratios(rows, groups)
    errs = mean_errors(rows, groups)
    panels = [g for g in groups if g.section == "b" and any(k[0] == g.label for k in rat)]
    if not panels:
        return False
    top = 2.0
    fig, axes = plt.subplots(len(panels), 2, figsize=(12, 4.5 * len(panels)), sharex=True,
                             squeeze=False)  # fmt: skip
    colors = plt.get_cmap("tab10")
    for row, g in enumerate(panels):
        ref = references(rows, g)
        for col, mode in enumerate(MODES):
            ax = axes[row][col]
            for k, pol in enumerate(POLICIES):
                color = colors(k % 10)
                pts = [(errs[(g.label, q)], rat[(g.label, pol, q, mode)])
                       for q in LINE_PREDICTORS if (g.label, pol, q, mode) in rat]  # fmt: skip
                if pts:
                    ax.plot([p[0] for p in pts], [min(p[1], top) for p in pts], marker="o", ms=3,
                            color=color, label=pol)  # fmt: skip
                for q, marker in POINT_MARKERS.items():
                    if (g.label, pol, q, mode) in rat:
                        ax.plot(errs[(g.label, q)], min(rat[(g.label, pol, q, mode)], top),
                                marker=marker, color=color, ls="none")  # fmt: skip
            if ref is not None and ref["plan_ratio"] is not None:
                ax.axhline(ref["plan_ratio"], color="black", ls="--", lw=1,
                           label=f"{ref['plan_by']} (clairvoyant)")  # fmt: skip
            ax.axhline(1.0, color="grey", ls=":", lw=1)
            ax.set_ylim(0.98, top + 0.02)
            ax.set_title(f"{g.label}, {mode}")
            ax.set_ylabel(f"total latency / lower bound (capped at {top:g})")
            if row == len(panels) - 1:
                ax.set_xlabel("prediction error: mean |log(predicted / true)|")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for q, marker in POINT_MARKERS.items():
        handles.append(plt.Line2D([], [], color="grey", marker=marker, ls="none"))
        labels.append(q)
    axes[0][0].legend(handles, labels, fontsize=7, ncol=2, loc="upper left")
    fig.suptitle(
        "Price of uncertainty, mixed requests (70% conv + 30% arXiv) at round 0\n"
        "lines: exact and lognormal sigma 0.25 / 0.5 / 1; markers: interval, bins, constant"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
