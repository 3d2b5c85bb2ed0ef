"""The published heuristics and the improvement searches: ``sorted-f``, ``ls``, ``sorted-lp``/``lp-swap``, ``rh``, ``repack``, ``lns``."""
