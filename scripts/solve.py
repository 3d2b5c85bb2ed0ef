#!/usr/bin/env python3
"""Solve one instance with one registered method: ``python scripts/solve.py INSTANCE --method NAME``."""

import sys

from scheduler_milp.cli import main

if __name__ == "__main__":
    sys.exit(main())
