"""The paper's experiment on real traces, and its report ``docs/experiments.md``.

How far from optimal is each policy?  Peak-hour backlogs (every request waiting at round 0) mix
70% short conversations (Azure LLM inference trace, conv) and 30% long-document summarization
(arXiv); every registered method runs on them with the resumable sweep:

- scaled-down backlogs (token counts divided by ``Setting.scale``, a few requests, ``M`` a
  multiple of the largest request's peak) that the exact methods solve: gaps to the proven optimum;
- full-size backlogs (real token counts, ``M`` in tokens): gaps to the best proven bound.

:func:`run_experiment` builds the instances and runs both sweeps (resuming from ``work``);
:func:`write_report` writes ``OUT/experiments.md`` and ``OUT/figures/experiments-*`` (PNG figures
and the two results tables as CSV), including the table of ``benchmarks/bench_auto.py``'s
records.  ``scripts/run_experiments.py`` is the command line; :data:`COMMAND` regenerates ``docs/``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..model.instance import load_instance
from ..model.result import SolveOptions
from ..registry import METHODS, solve
from .grid import RunSpec, make_grid
from .results import summarize, summary_table
from .store import META_FILE
from .sweep import run_sweep

log = logging.getLogger(__name__)

# The command that regenerates docs/experiments.md and docs/figures/experiments-* (repository root).
COMMAND = "python scripts/run_experiments.py --out docs --fresh"


@dataclass(frozen=True)
class Setting:
    """The experiment's grid: sizes, budgets, seeds and time limits."""

    small_n: tuple[int, ...] = (8, 10, 12)
    small_factors: tuple[float, ...] = (1.5, 3.0)  # M = factor x the largest request peak
    small_seeds: tuple[int, ...] = (0, 1)
    scale: int = 32
    full_n: tuple[int, ...] = (100, 1000)
    full_memory: tuple[int, ...] = (16384, 65536, 262144)
    full_seed: int = 0
    small_time_limit: float = 30.0
    full_time_limit: float = 60.0


QUICK = Setting(small_n=(6, 8), small_factors=(2.0,), small_seeds=(0,), full_n=(100,), full_memory=(65536,),
                small_time_limit=5.0, full_time_limit=5.0)  # fmt: skip


def build_instances(
    work: Path, setting: Setting
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Write the small and full instance files (deterministic: reruns give identical files).

    Returns ``(path, group label)`` pairs for each set.
    """
    from ..traces import BENCHMARK_MIX, sample_backlog

    small, full = [], []
    for n in setting.small_n:
        for factor in setting.small_factors:
            for seed in setting.small_seeds:
                name = f"mix-n{n}-f{factor:g}-scale{setting.scale}-s{seed}"
                inst = sample_backlog(
                    BENCHMARK_MIX,
                    n,
                    seed=seed,
                    memory_factor=factor,
                    scale=setting.scale,
                    name=name,
                )
                small.append(
                    (
                        _save(inst, work / "instances" / "small" / f"{name}.json"),
                        f"n={n}, M={factor:g}x peak",
                    )
                )
    for n in setting.full_n:
        for memory in setting.full_memory:
            name = f"mix-n{n}-M{memory}-s{setting.full_seed}"
            inst = sample_backlog(
                BENCHMARK_MIX, n, seed=setting.full_seed, memory=memory, name=name
            )
            full.append(
                (_save(inst, work / "instances" / "full" / f"{name}.json"), f"n={n}, M={memory}")
            )
    return small, full


def _save(inst: Any, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    inst.save(path)
    return str(path)


def grid_for(paths: Sequence[str], methods: Sequence[str], time_limit: float) -> list[RunSpec]:
    """Every method on every instance, leaving out methods beyond their size limit."""
    grid: list[RunSpec] = []
    for path in paths:
        n = load_instance(path).n
        usable = [m for m in methods if METHODS[m].max_n is None or n <= (METHODS[m].max_n or 0)]
        grid.extend(make_grid([path], usable, [0], time_limit, threads=1))
    return grid


# ---------------------------------------------------------------------------- tables
def _pct(x: Any) -> str:
    return "-" if x is None or pd.isna(x) else f"{100 * float(x):.2f}"


def pivot_markdown(
    frame: pd.DataFrame, column: str, groups: dict[str, str], methods: Sequence[str]
) -> str:
    """Mean ``column`` (percent) per method (rows) and instance group (columns), markdown."""
    frame = frame.assign(group=frame["instance_path"].map(groups))
    labels = list(dict.fromkeys(groups.values()))
    lines = ["| method | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for m in methods:
        cells = []
        for g in labels:
            vals = frame.loc[(frame["method"] == m) & (frame["group"] == g), column].dropna()
            cells.append(_pct(vals.mean()) if len(vals) else "-")
        if any(c != "-" for c in cells):
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def instance_markdown(frame: pd.DataFrame, groups: dict[str, str]) -> str:
    """Per instance: size, M, best plan (method), best bound (method), optimum and its provers."""
    lines = [
        "| instance | n | M | best plan | by | best bound | by | optimum | proven by |",
        "|---|---:|---:|---:|---|---:|---|---:|---|",
    ]
    for path in groups:
        rows = frame[frame["instance_path"] == os.path.normpath(path)]
        if rows.empty:
            continue
        first = rows.iloc[0]
        plans = rows.dropna(subset=["objective"])
        best_obj = plans["objective"].min() if len(plans) else None
        winners = (
            _names(plans.loc[plans["objective"] == best_obj, "method"])
            if best_obj is not None
            else "-"
        )
        bounds = rows.dropna(subset=["lower_bound"])
        best_lb = bounds["lower_bound"].max() if len(bounds) else None
        bound_by = (
            _names(bounds.loc[bounds["lower_bound"] == best_lb, "method"])
            if best_lb is not None
            else "-"
        )
        provers = _names(rows.loc[rows["status"] == "optimal", "method"]) or "-"
        optimum = first["optimum"]
        lines.append(
            f"| {first['instance']} | {first['n']} | {first['memory']} | {_int(best_obj)} | {winners} | {_int(best_lb)} | "
            f"{bound_by} | {_int(optimum)} | {provers if not pd.isna(optimum) else '-'} |"
        )
    return "\n".join(lines)


def _names(methods: Any, limit: int = 4) -> str:
    """Sorted method names, at most ``limit`` of them and a count of the rest."""
    names = sorted(set(map(str, methods)))
    return ", ".join(names[:limit]) + (
        f" and {len(names) - limit} more" if len(names) > limit else ""
    )


def headlines(rows: Sequence[dict[str, Any]], column: str, what: str) -> str:
    """A few sentences computed from the table: the best methods and the FCFS baseline."""
    table = [t for t in summary_table(rows) if t["gap_mean"] is not None]
    key = "opt_gap_mean" if column == "gap_to_optimum" else "gap_mean"
    table = [t for t in table if t[key] is not None and t["plans"] == t["runs"]]
    if not table:
        return "(no complete method)"
    table.sort(key=lambda t: t[key])
    best = ", ".join(f"`{t['method']}` {t[key]:.2f}%" for t in table[:3])
    lines = [f"- Lowest mean {what} (methods with a plan on every instance): {best}."]
    quick = [
        t
        for t in table
        if METHODS[t["method"]].kind in ("baseline", "heuristic") and (t["seconds_max"] or 0) < 5.0
    ]
    if quick:
        lines.append(
            f"- Best baseline or heuristic finishing every run within 5 s: `{quick[0]['method']}` ({quick[0][key]:.2f}%)."
        )
    for base in ("fcfs", "vllm", "sf"):
        match = [t for t in table if t["method"] == base]
        if match:
            lines.append(
                f"- `{base}`: mean {what} {match[0][key]:.2f}%, worst {match[0]['opt_gap_max' if key == 'opt_gap_mean' else 'gap_max']:.2f}%."
            )
    return "\n".join(lines)


def _showcase(pairs: Sequence[tuple[str, str]]) -> str:
    """The instance to draw: the largest n of the set, at its middle budget."""
    sized = [(load_instance(p), p) for p, _ in pairs]
    top = max(inst.n for inst, _ in sized)
    largest = sorted((inst.memory_budget, p) for inst, p in sized if inst.n == top)
    return largest[len(largest) // 2][1]


def _int(x: Any) -> str:
    return "-" if x is None or pd.isna(x) else str(int(x))


def showcase_plan(frame: pd.DataFrame, path: str) -> tuple[str, Any] | None:
    """Re-solve the instance with the best quick non-exact method of the table (its plan for a figure)."""
    rows = frame[(frame["instance_path"] == os.path.normpath(path)) & frame["objective"].notna()]
    rows = rows[
        rows["kind"].isin(["baseline", "heuristic", "bound", "portfolio"])
        & (rows["seconds"].fillna(1e9) < 10)
    ]
    if rows.empty:
        return None
    best = rows.sort_values(["objective", "seconds"]).iloc[0]
    result = solve(
        load_instance(path),
        str(best["method"]),
        SolveOptions(time_limit=30, seed=int(best["seed"])),
    )
    return str(best["method"]), result


def write_figures(figures: Path, work: Path, small_df: pd.DataFrame, full_df: pd.DataFrame,
                  small: Sequence[tuple[str, str]], full: Sequence[tuple[str, str]]) -> list[tuple[str, str, str, str]]:  # fmt: skip
    """The gap figures, a plan of each set and copies of both results tables into ``figures``.

    Returns ``(set label, method, instance name, PNG file name)`` for each plan drawn.
    """
    from ..plots import plot_gaps, plot_plan

    figures.mkdir(parents=True, exist_ok=True)
    # keep the tables next to the figures so the numbers can be re-plotted or checked
    shutil.copyfile(work / "small" / "results.csv", figures / "experiments-small.csv")
    shutil.copyfile(work / "full" / "results.csv", figures / "experiments-full.csv")
    plot_gaps(small_df, figures / "experiments-gaps-small.png", column="gap_to_optimum",
              title="Scaled-down mixed backlogs: gap to the proven optimum")  # fmt: skip
    plot_gaps(full_df, figures / "experiments-gaps-full.png", column="gap",
              title="Full-size mixed backlogs: gap to the best proven lower bound")  # fmt: skip
    plan_figs = []
    for label, df, pairs in (("small", small_df, small), ("full", full_df, full)):
        if not pairs:
            continue
        path = _showcase(pairs)
        best = showcase_plan(df, path)
        if best is not None and best[1].plan is not None:
            png = figures / f"experiments-plan-{label}.png"
            plot_plan(best[1].plan, png, method=best[0])
            plan_figs.append((label, best[0], load_instance(path).name, png.name))
    return plan_figs


# ---------------------------------------------------------------------------- the report
AUTO_RESULTS = Path("benchmarks/results/auto.jsonl")


#: the online experiment (:mod:`.online`, run by ``benchmarks/bench_online.py --price``)
ONLINE_SECTION = """## The price of uncertainty (online execution)

One command, from the repository root (interrupted, it resumes when run again; `--backend ray`
runs the same grid as Ray tasks):

```
python benchmarks/bench_online.py --price --jobs 2
```

It runs every online policy under predicted output lengths (exact, lognormal 0.25/0.5/1,
interval 0.5/2, bins:8, constant; both eviction modes) on the scaled-down optima, the
1,000-request mixed backlogs at M = 16,384 / 65,536 and the Azure conversation trace with
arrivals, as one grid of the runner above (online runs next to the offline runs of the
references, in `runs/online-price/`); tables and the regimes where each policy wins:
[online.md](online.md#the-price-of-uncertainty).

![Price of uncertainty](figures/online-price.png)
"""

#: which ``benchmarks/bench_auto.py`` command writes which rows of the certified-gap table
AUTO_ROW_COMMANDS = """Rows by command (each appends its records to `benchmarks/results/auto.jsonl`; the table shows the
latest record per instance and limit):

- `mix1000-M16384/65536/262144` (120 s): `python benchmarks/bench_auto.py`; the 1800 s row:
  `python benchmarks/bench_auto.py --memories 16384 --time-limit 1800`.
- `conv-all-M65536`: `python benchmarks/bench_auto.py --only-full`.
- `-B16` rows (block size 16, as in vLLM): `python benchmarks/bench_auto.py --block-size 16`.
- `-cap` rows: `python benchmarks/bench_auto.py --memories 32768 --max-batch 24` (with `--block-size 16`
  for `-B16-cap24`) and `--memories 65536 --max-batch 48`.
- `-arrivals` row: `python benchmarks/bench_auto.py --mix conv --arrivals --memories 8192`.
- single-trace rows (`arxiv1000-...` to `sharegpt1000-...`):
  `python benchmarks/bench_auto.py --mix arxiv bwb code conv sharegpt --memories 16384 65536`.

Plans of `auto` vary between runs by a few tenths of a percent (the phases share wall-clock time), so a
rerun of the same command gives a slightly different row; the bounds are reproducible to within a few
units."""


def auto_benchmark_markdown(path: Path = AUTO_RESULTS) -> str:
    """The certified-gap tables of ``benchmarks/bench_auto.py``.

    First the latest seed-0 record per instance and limit (a record without a ``seed`` field is
    seed 0), then, when other seeds were run, the latest gap per seed and the median.
    """
    if not path.exists():
        return f"(no records yet: run the commands above; they append to `{path}`)"
    latest: dict[tuple[str, float, int], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            latest[(str(rec["instance"]), float(rec["time_limit"]), int(rec.get("seed", 0)))] = rec
    rows = [
        "| instance | n | M | limit | objective | bound | certified gap (%) | plan won | bound won | gap (%) over time |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for (_, _, seed), rec in latest.items():
        if seed != 0:
            continue
        over = ", ".join(
            f"{t} s: {_pct(g)}"
            for t, g in (rec.get("gap_over_time") or {}).items()
            if g is not None
        )
        rows.append(
            f"| {rec['instance']} | {rec['n']:,} | {rec['memory']:,} | {rec['time_limit']:g} s | "
            f"{rec['objective']:,} | {rec['lower_bound']:,} | {_pct(rec['gap'])} | {rec['plan_source']} | "
            f"{rec['bound_source']} | {over} |"
        )
    rows += ["", AUTO_ROW_COMMANDS]
    seeds = sorted({seed for _, _, seed in latest})
    if seeds == [0] or not seeds:
        return "\n".join(rows)
    rows += [
        "",
        "Spread over seeds (one run each, the latest per seed; for the 1,000-request backlogs the seed "
        "also picks the sample, for the whole trace only `auto`'s seed; "
        "`python benchmarks/bench_auto.py --seed 0 1 2` runs them):",
        "",
        "| instance | limit | " + " | ".join(f"seed {k} (%)" for k in seeds) + " | median (%) |",
        "|---|---:|" + "---:|" * (len(seeds) + 1),
    ]
    for name, limit in dict.fromkeys((name, limit) for name, limit, _ in latest):
        gaps = [
            latest[(name, limit, k)]["gap"] if (name, limit, k) in latest else None for k in seeds
        ]
        held = [g for g in gaps if g is not None]
        if len(held) < 2:  # run with one seed only: its gap is in the table above
            continue
        rows.append(
            f"| {name} | {limit:g} s | "
            + " | ".join(_pct(g) for g in gaps)
            + f" | {_pct(statistics.median(held))} |"
        )
    return "\n".join(rows)


def write_report(out: Path, work: Path, setting: Setting, quick: bool, methods: Sequence[str],
                 small: list[tuple[str, str]], full: list[tuple[str, str]],
                 small_rows: list[dict[str, Any]], full_rows: list[dict[str, Any]], seconds: float, jobs: int) -> Path:  # fmt: skip
    """Write ``experiments.md`` with tables and figures; returns its path."""
    small_df, full_df = pd.DataFrame(small_rows), pd.DataFrame(full_rows)
    small_groups, full_groups = dict(small), dict(full)
    plan_figs = write_figures(out / "figures", work, small_df, full_df, small, full)
    meta = (
        json.loads((work / "full" / META_FILE).read_text())
        if (work / "full" / META_FILE).exists()
        else {}
    )
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    n_small = len(small)
    with_opt = (
        small_df.dropna(subset=["optimum"])["instance_path"].nunique() if len(small_df) else 0
    )
    fast = [m for m in methods if METHODS[m].kind != "exact"]
    exact = [m for m in methods if METHODS[m].kind == "exact"]
    method_lines = "\n".join(
        f"- `{m}` ({METHODS[m].kind}{f', up to n={METHODS[m].max_n}' if METHODS[m].max_n else ''}): {METHODS[m].help}"
        for m in methods
    )
    # rows of the per-group tables in the summary's order (best mean gap first)
    order_small = [str(t["method"]) for t in summary_table(small_rows)]
    order_full = [str(t["method"]) for t in summary_table(full_rows)]
    run_minutes = sum(float(r.get("wall_seconds") or 0.0) for r in [*small_rows, *full_rows]) / 60
    s = setting
    text = f"""# Experiments: how far from optimal is each policy on real traces?

Generated by one command, from the repository root (interrupted, it resumes when run again
without `--fresh`):

```
{COMMAND}{" --quick" if quick else ""}
```

{"**Quick mode**: a reduced grid for testing; the numbers below are not the full experiment." if quick else ""}
Git revision `{meta.get("git_revision", "unknown")}`; {versions}.
Machine: {meta.get("platform", "?")}, {os.cpu_count()} cores, {jobs} runs in parallel; the runs took
{run_minutes:.1f} min in all (sum over runs; this invocation {seconds / 60:.1f} min: runs already
finished in `{work}` are reused, `--fresh` reruns everything).

## Set-up

**Workload.** Peak-hour backlogs: every request is waiting at round 0, as in a burst that
overflows the KV cache. Each backlog mixes 70% short conversations (Azure LLM inference trace
2023, `conv`) and 30% long-document summarization (arXiv summarization, Llama-2 token counts),
sampled without replacement and shuffled with a fixed seed by
`scheduler_milp.traces.sample_backlog` (trace origins and licences:
`scheduler_milp/data/traces/README.md`). Prompt tokens are the request's initial KV
footprint `s_i`, output tokens its number of rounds `o_i`; memory grows by one token per round.

- **Scaled-down** ({n_small} instances): token counts divided by {s.scale} (rounded up),
  n in {{{", ".join(map(str, s.small_n))}}}, budget `M` = {", ".join(f"{f:g}" for f in s.small_factors)} x the
  largest request's peak, seeds {", ".join(map(str, s.small_seeds))}; time limit {s.small_time_limit:g} s per run.
  Optimum proven on **{with_opt} of {n_small}** instances (a run whose lower bound met its objective).
- **Full size** ({len(full)} instances): real token counts, n in {{{", ".join(map(str, s.full_n))}}},
  `M` in {{{", ".join(map(str, s.full_memory))}}} tokens, seed {s.full_seed}; time limit {s.full_time_limit:g} s per run.
  Methods whose size limit is below n are not run there.

**Gaps** use the one formula `(objective - bound) / objective`, in percent. *Gap to optimum*:
against the proven optimum of the instance (scaled-down set). *Gap*: against the best lower
bound any method proved for the instance (full-size set), so it over-states the distance to
the optimum by the bound's own weakness. A *win* is a plan with the smallest objective any
method found on the instance (ties count for all). Means are over the instances a method ran on.

**Methods** ({len(fast)} fast, {len(exact)} exact; one solver thread per run, {jobs} runs in parallel):

{method_lines}

## Scaled-down backlogs: gap to the optimum

{headlines(small_rows, "gap_to_optimum", "gap to the optimum") if small_rows else ""}

{summarize(small_rows, markdown=True) if small_rows else "(no runs)"}

Mean gap to the optimum (%) per group (instances without a proven optimum excluded):

{pivot_markdown(small_df, "gap_to_optimum", small_groups, order_small) if len(small_df) else "(no runs)"}

![gap to optimum](figures/experiments-gaps-small.png)

Per instance:

{instance_markdown(small_df, small_groups) if len(small_df) else "(no runs)"}

## Full-size backlogs: gap to the best bound

{headlines(full_rows, "gap", "gap to the best bound") if full_rows else ""}

{summarize(full_rows, markdown=True) if full_rows else "(no runs)"}

Mean gap to the best bound (%) per group:

{pivot_markdown(full_df, "gap", full_groups, order_full) if len(full_df) else "(no runs)"}

![gap to best bound](figures/experiments-gaps-full.png)

Per instance:

{instance_markdown(full_df, full_groups) if len(full_df) else "(no runs)"}

## Certified gap of `auto` at scale

`auto` within its time limit on 2 cores: mixed backlogs of 1,000 requests (700 Azure
conversations + 300 arXiv summarizations, seed 0) at three budgets, and the whole Azure
conversation trace (19,366 requests). These runs are long, so they are not part of the grid
above; the table is read from `{AUTO_RESULTS}`, written by

```
python benchmarks/bench_auto.py -v               # 1,000 requests, M = 16,384 / 65,536 / 262,144, 120 s each
python benchmarks/bench_auto.py --only-full -v   # 19,366 requests, M = 65,536, 600 s
```

{auto_benchmark_markdown()}

## Plans

{chr(10).join(f"Best quick plan on `{name}` ({label} set, `{method}`): rows are requests by start round (grey: waiting), below: memory per round against `M`.{chr(10)}{chr(10)}![{label} plan](figures/{png}){chr(10)}" for label, method, name, png in plan_figs)}

## Files

- `figures/experiments-small.csv`, `figures/experiments-full.csv`: one row per run (see
  `RESULT_COLUMNS` in `scheduler_milp/experiments/results.py` for the columns), the tables
  above are computed from them.
- Raw, resumable run logs: `{work}/small/runs.jsonl`, `{work}/full/runs.jsonl`.

## Running your own comparisons

The experiment is a thin layer over the runner behind `scripts/compare.py`:

```
python scripts/compare.py instances/toy instances/adversarial --methods fcfs,sf,svf,dp \\
    --time-limit 10 --seeds 2 --jobs 2 --out runs/mine --plot runs/mine/gaps.png
```

- Directories are searched for `*.json` instances. Every (instance, method, seed) run is one
  line of `runs/mine/runs.jsonl` (appended with one write and an fsync as soon as it ends);
  `runs/mine/results.csv` is derived from it at the end and `runs/mine/meta.json` records
  versions and the git revision (also in each row). Rerunning the same command skips finished
  runs; a killed sweep loses at most the runs in flight, and Ctrl-C
  also writes `results.csv` for the finished runs (exit status 130). Runs that raise, crash their worker or
  overrun `time limit x 2 + 30 s` (the worker is killed) are recorded with their error;
  `--retry-errors` runs them again. Finished runs are reused as they are: after changing a
  method's code, use a new `--out`.
- `optimum` is the objective of any run that proved optimality, or the `optimum.value`
  recorded in the instance file; `gap` is measured against the best bound any run proved.
- `--backend ray` runs the same grid as Ray tasks (`pip install -e ".[ray]"`); `--address
  ADDR` joins an existing cluster (instances are shipped with the tasks, the workers need the
  package installed). `--plugin FILE.py` imports a file that registers extra methods.
- `python scripts/plot_plan.py PLAN.json INSTANCE.json --out plan.png` (or
  `scripts/solve.py ... --plot plan.png`) draws one plan as above.

{ONLINE_SECTION}"""
    target = out / "experiments.md"
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, target)
    return target


def run_experiment(out: Path, work: Path, setting: Setting, methods: Sequence[str], jobs: int,
                   quick: bool = False, fresh: bool = False, progress: bool = True,
                   command: Sequence[str] | None = None, echo: Callable[[str], None] = print) -> Path:  # fmt: skip
    """Build the instances, run both sweeps (resuming from ``work``), write the report into ``out``.

    ``fresh`` deletes the run logs in ``work`` first; ``echo`` receives the progress messages
    (set sizes, the two summaries, the report's path).  Returns the path of ``experiments.md``.
    """
    started = time.monotonic()
    if fresh:
        for sub in ("small", "full"):
            shutil.rmtree(work / sub, ignore_errors=True)
    small, full = build_instances(work, setting)
    echo(
        f"scaled-down set: {len(small)} instances; full-size set: {len(full)} instances; methods: {', '.join(methods)}"
    )
    small_report = run_sweep(grid_for([p for p, _ in small], methods, setting.small_time_limit), work / "small",
                             jobs=jobs, progress=progress, command=command)  # fmt: skip
    echo(small_report.summary)
    full_report = run_sweep(grid_for([p for p, _ in full], methods, setting.full_time_limit), work / "full",
                            jobs=jobs, progress=progress, command=command)  # fmt: skip
    echo(full_report.summary)
    report = write_report(out, work, setting, quick, methods, small, full,
                          small_report.rows, full_report.rows, time.monotonic() - started, jobs)  # fmt: skip
    echo(f"report written to {report}")
    return report
