"""Regenerate ``instances/optima/``: small instances whose optimum two exact methods proved.

Each file is a normal instance (docs/formats.md) with an extra top-level key
``"optimum": {"value": V, "proven_by": ["milp", "cpsat"], ...}``.  An instance is written only
when ``milp`` and ``cpsat`` both report ``optimal`` with the same objective.

    python benchmarks/make_optima.py [--only NAME_SUBSTRING] [--time-limit 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from scheduler_milp.generators import random_instance
from scheduler_milp.model.instance import Instance
from scheduler_milp.model.result import SolveOptions, Status
from scheduler_milp.registry import solve

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "instances" / "optima"
log = logging.getLogger(__name__)


def trace_class(n: int, seed: int, mix: str = "conv") -> Instance:
    """The trace-shaped scaled-down class: Azure conv lengths divided by 64, M = 2.5 x largest peak."""
    from scheduler_milp.traces import sample_backlog

    return sample_backlog(mix, n, seed, scale=64, memory_factor=2.5)


def mix_class(n: int, seed: int) -> Instance:
    """The analogue of the 1,000-request mixed backlog at M = 16,384: 700 conv : 300 arXiv, tokens / 16, M = 1,024."""
    from scheduler_milp.traces import BENCHMARK_MIX, sample_backlog

    return sample_backlog(BENCHMARK_MIX, n, seed, memory=1024, scale=16)


def mix_full_class(n: int, seed: int) -> Instance:
    """The 1,000-request mixed backlog's own kind at full token counts: 700 conv : 300 arXiv, M = 16,384."""
    from scheduler_milp.traces import BENCHMARK_MIX, sample_backlog

    return sample_backlog(BENCHMARK_MIX, n, seed, memory=16384)


def specs() -> list[tuple[str, Callable[[], Instance]]]:
    """(file name, builder) of every shipped optimum instance."""
    out: list[tuple[str, Callable[[], Instance]]] = []
    for n, seed in ((6, 0), (6, 1), (8, 0), (8, 1), (10, 0), (12, 1)):
        out.append((f"rand-n{n}-s{seed}", partial(random_instance, n, seed)))
    for n, seed in ((8, 0), (10, 1)):
        out.append((f"rand-arr-n{n}-s{seed}", partial(random_instance, n, seed, arrivals=6)))
        out.append((f"rand-b2-n{n}-s{seed}", partial(random_instance, n, seed, block_size=2)))
        out.append((f"rand-cap3-n{n}-s{seed}", partial(random_instance, n, seed, max_batch=3)))
    out.append(
        ("rand-all-n8-s2", partial(random_instance, 8, 2, arrivals=4, block_size=2, max_batch=2))
    )
    for n, seed in ((8, 0), (10, 1), (12, 2)):
        out.append((f"conv-s64-n{n}-s{seed}", partial(trace_class, n, seed)))
    out.append(("code-s64-n10-s0", partial(trace_class, 10, 0, "code")))
    # about 10 requests running at once, as in the 1,000-request backlog at M = 16,384, where the
    # LP's gap to the optimum is studied (benchmarks/bench_gap_split.py)
    for seed in (0, 1):
        out.append((f"mix-s16-M1024-n20-s{seed}", partial(mix_class, 20, seed)))
    # real token counts (outputs of hundreds of rounds, prompts up to a quarter of M = 16,384): the
    # bounds are checked where memory grows token by token
    out.append(("mix-M16384-n12-s0", partial(mix_full_class, 12, 0)))
    return out


def prove(instance: Instance, time_limit: float, threads: int) -> dict | None:
    """Solve with milp and cpsat; the optimum record when both prove the same value."""
    record: dict = {"proven_by": [], "seconds": {}}
    values = set()
    for method in ("milp", "cpsat"):
        res = solve(instance, method, SolveOptions(time_limit=time_limit, threads=threads))
        record["seconds"][method] = round(res.seconds, 2)
        if res.status != Status.OPTIMAL:
            log.warning(
                "%s: %s not optimal (%s, gap %s)", instance.name, method, res.status.value, res.gap
            )
            return None
        values.add(res.objective)
        record["proven_by"].append(method)
    if len(values) != 1:
        raise AssertionError(f"{instance.name}: milp and cpsat disagree: {values}")
    record["value"] = values.pop()
    return {
        "value": record["value"],
        "proven_by": record["proven_by"],
        "seconds": record["seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    """Regenerate the optimum instances (all, or those whose name contains ``--only``)."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", default="", help="only names containing this")
    p.add_argument("--time-limit", type=float, default=300.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in specs():
        if args.only not in name:
            continue
        t0 = time.perf_counter()
        inst = make().replace(name=name)
        optimum = prove(inst, args.time_limit, args.threads)
        if optimum is None:
            print(f"{name}: not proven within {args.time_limit}s, skipped", file=sys.stderr)
            continue
        meta = dict(inst.meta)
        meta["optimum"] = optimum
        inst.replace(meta=meta).save(OUT / f"{name}.json")
        print(
            f"{name}: n={inst.n} optimum {optimum['value']} ({time.perf_counter() - t0:.1f}s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
