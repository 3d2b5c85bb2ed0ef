"""``python -m scheduler_milp SUBCOMMAND ...``: the same as the ``scheduler-milp`` command."""

import sys

from .cli import console_process

sys.exit(console_process())
