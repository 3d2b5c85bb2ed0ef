"""Several identical engines: replica plans, routing, the pooled lower bound, the export for vLLM.

- :mod:`.plan`: :class:`~.plan.ReplicaPlan`, valid when each replica's plan passes the one
  validator on its own requests;
- :mod:`.routing`: round-robin, least-loaded by memory-time volume, the optimised assignment;
- :mod:`.bound`: the bound of every ``k``-replica plan from the pooled instance (docs/capacity.md);
- :mod:`.solve`: :func:`~.solve.solve_replicas`, route + schedule + bound in one time limit;
- :mod:`.exact`: the ``k``-replica optimum of tiny instances by enumerating assignments;
- :mod:`.export`: each request's priority for vLLM's priority scheduling.
"""
