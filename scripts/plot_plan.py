#!/usr/bin/env python3
"""Draw a plan file as a Gantt chart with memory per round (``scheduler-milp plot``)."""

import sys

from scheduler_milp.cli import run
from scheduler_milp.commands.plot import main

if __name__ == "__main__":
    sys.exit(run(entry=main))
