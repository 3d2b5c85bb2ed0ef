#!/usr/bin/env python3
"""Capacity planning over KV memory and replicas with certified bounds (``scheduler_milp.commands.capacity``)."""

import sys

from scheduler_milp.cli import run
from scheduler_milp.commands.capacity import main

if __name__ == "__main__":
    sys.exit(run(entry=main))
