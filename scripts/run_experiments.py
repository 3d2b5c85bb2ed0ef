#!/usr/bin/env python3
"""Run the experiment behind docs/experiments.md (``scheduler-milp experiments``)."""

import sys

from scheduler_milp.cli import run
from scheduler_milp.commands.experiments import main

if __name__ == "__main__":
    sys.exit(run(entry=main))
