"""The command-line programs (``scheduler-milp SUBCOMMAND``, ``scripts/*.py``): thin layers over the package."""
