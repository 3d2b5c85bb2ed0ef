"""The one deadline object: from now, or from the start of the process (the command line's)."""

from __future__ import annotations

import math
import subprocess
import sys

from scheduler_milp.model.deadline import Deadline, process_age


def test_a_deadline_from_process_start_is_earlier_by_the_process_age() -> None:
    age = process_age()
    assert age > 0.0  # pytest has been running for a while
    from_start = Deadline.since_process_start(100.0)
    from_now = Deadline.after(100.0)
    assert from_start.at <= from_now.at - age + 1e-6
    assert not Deadline.since_process_start(None).limited


def test_process_age_counts_the_time_before_any_import() -> None:
    """A process that sleeps 0.3 s before asking is at least 0.3 s old."""
    code = (
        "import time; time.sleep(0.3)\n"
        "from scheduler_milp.model.deadline import process_age\n"
        "print(process_age())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    age = float(out.stdout)
    assert math.isfinite(age) and age >= 0.3


def test_share_and_within_never_extend_a_deadline() -> None:
    d = Deadline.after(50.0)
    assert d.share(0.5).at <= d.at and d.within(1000.0).at == d.at
    assert d.within(1.0).at < d.at
