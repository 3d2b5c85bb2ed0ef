#!/usr/bin/env python3
"""Solve one instance with one registered method: ``python scripts/solve.py INSTANCE --method NAME``."""

from scheduler_milp.cli import solve_process

if __name__ == "__main__":
    solve_process()
