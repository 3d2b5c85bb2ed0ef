"""Experiment runner: every method on every instance and seed, resumable, local or on Ray.

Layout of an output directory ``DIR``:

- ``DIR/runs.jsonl``: the raw record, one JSON object per finished run, append-only.  Each line
  is written with a single ``write`` followed by ``fsync``, so a kill at any moment loses at most
  the runs in flight; a torn last line is ignored on read and cut off before the next append.
- ``DIR/results.csv``: derived from ``runs.jsonl`` (atomically rewritten at the end of a sweep,
  also after Ctrl-C): one row per run plus the columns that depend on all runs of an instance
  (best known bound, optimum, gap to them, wins).
- ``DIR/meta.json``: versions, git revision, command line of the last sweep.

A run is identified by its key: instance file hash and path, method, seed, time limit and
parameters; an online run (a policy of :mod:`scheduler_milp.online` under a predictor and an
eviction mode) adds those to its key, and its row the execution's metrics and the ratios to the
references of the grid (docs/online.md, "Online grids in the runner").  Rerunning a sweep skips the keys already in ``runs.jsonl``.  A run that raises,
whose worker dies, or that overruns its hard timeout (its worker is killed) is recorded with
its error and the sweep goes on; a method that declines the instance as too large is recorded
as declined.

Modules, from the bottom up: :mod:`.grid` (run specs and keys), :mod:`.run` (one run, in a
worker), :mod:`.store` (run log, directory lock, provenance), :mod:`.results` (derived table and
summary), :mod:`.backends` (local process pool, Ray), :mod:`.sweep` (the resumable sweep),
:mod:`.report` (the experiment behind ``docs/experiments.md``) and :mod:`.online` (the price of
uncertainty, docs/online.md).
"""
