#!/usr/bin/env python3
"""Make instances: random, adversarial, trace samples, trace CSV/JSONL conversion (``scheduler-milp make-instances``)."""

import sys

from scheduler_milp.cli import run
from scheduler_milp.commands.make_instances import main

if __name__ == "__main__":
    sys.exit(run(entry=main))
