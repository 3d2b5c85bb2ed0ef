#!/usr/bin/env python3
"""Compare methods over instance sets, resumable, local or on Ray (``scheduler-milp compare``)."""

import sys

from scheduler_milp.cli import run
from scheduler_milp.commands.compare import main

if __name__ == "__main__":
    sys.exit(run(entry=main))
