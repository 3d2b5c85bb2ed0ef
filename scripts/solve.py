#!/usr/bin/env python3
"""Solve one instance with one registered method: ``python scripts/solve.py INSTANCE --method NAME``."""

import sys

from scheduler_milp.cli import run

if __name__ == "__main__":
    sys.exit(run())
