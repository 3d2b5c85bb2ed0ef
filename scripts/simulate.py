#!/usr/bin/env python3
"""Run one online policy on one instance under predicted output lengths (``scheduler-milp simulate``)."""

import sys

from scheduler_milp.cli import run
from scheduler_milp.commands.simulate import main

if __name__ == "__main__":
    sys.exit(run(entry=main))
