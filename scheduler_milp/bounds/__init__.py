"""Lower bounds on the optimal total latency that scale to tens of thousands of requests.

Every bound is proven in docs/bounds.md; the modules, from the bottom up:

- :mod:`.simple`: the closed-form bounds (sum of outputs, volume, mean busy time);
- :mod:`.dual`: the Lagrangian dual of the time-indexed model's memory and batch rows
  (:class:`~.dual.Dual`), its result type and starting prices;
- :mod:`.colgen` and :mod:`.subgradient`: two ways to maximise it (column generation on the LP,
  projected subgradient ascent); :func:`~.subgradient.lagrangian` is the entry point;
- :mod:`.sawtooth`: the compiled sawtooth lift, a bound above the LP at the same prices;
- :mod:`.lagrangian`: the ascent and the lifts in one time budget (what ``lagrange`` and ``auto`` run);
- :mod:`.methods`: the registered ``volume-bound``, ``busy-bound`` and ``lagrange``.

This file imports none of them, and numba (the lift) and HiGHS (column generation) load only
when they run.
"""
