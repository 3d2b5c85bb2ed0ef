"""Slow, obviously-correct reference implementations used only by the tests."""

from __future__ import annotations

import numpy as np

from scheduler_milp.model.instance import Instance


def future_fits(inst: Instance, running: dict[int, int], j: int, t: int) -> bool:
    """Check round by round that ``j`` started at ``t`` never breaks the budget."""
    end = max(
        [t + int(inst.output_len[j])] + [s + int(inst.output_len[i]) for i, s in running.items()]
    )
    for tau in range(t, end):
        use = 0
        for i, s in list(running.items()) + [(j, t)]:
            if s <= tau < s + inst.output_len[i]:
                use += int(inst.mem(i, tau - s + 1))
        if use > inst.memory_budget:
            return False
    return True


def round_by_round_walk(inst: Instance, priority: np.ndarray, blocking: bool = True) -> np.ndarray:
    """The priority walk of the engine, simulated one round at a time."""
    n = inst.n
    start = np.full(n, -1, dtype=np.int64)
    running: dict[int, int] = {}
    cap = inst.max_batch or n + 1
    t = 0
    while (start < 0).any():
        running = {i: s for i, s in running.items() if s + inst.output_len[i] > t}
        for j in priority:
            if start[j] >= 0 or inst.arrival[j] > t:
                continue
            if len(running) < cap and future_fits(inst, running, int(j), t):
                running[int(j)] = t
                start[j] = t
            elif blocking:
                break
        t += 1
    return start
