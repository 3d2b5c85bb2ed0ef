"""First calls that take seconds and cannot be interrupted, made in the background: :class:`Warmup`.

The first call of a numba-compiled function in a process compiles it, or loads its machine code
from numba's cache: several seconds on a cold cache (a fresh clone, an edited module), many more on
a loaded machine, and a call that cannot be interrupted.  Importing OR-Tools' CP-SAT (the first
window of ``lns`` and ``rh``) is another such call, about half a second.  A :class:`Warmup` makes
the first call in a background thread, once per process; a method asks :meth:`Warmup.ready` with
its deadline and waits only until then.  Past it the method goes on without (it returns its best
plan so far, or leaves out the bound the kernels compute), while the call finishes in the
background: a later phase of the same process, and the next process through numba's cache, find
it done.  Without a time limit :meth:`Warmup.ready` waits as long as the call takes, so a run
without a limit never depends on the clock.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable

from ..model.deadline import Deadline


class Warmup:
    """A first call (``call``) made once per process in a background thread, waited for until a
    deadline."""

    def __init__(self, name: str, call: Callable[[], object]):
        self.name = name
        self._call = call
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        self._error: BaseException | None = None
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        """In a forked child the thread is gone: a call not done by then starts again there."""
        self._lock = threading.Lock()
        if not self._done.is_set():
            self._started = False

    def start(self) -> None:
        """Start the call in a background thread (nothing when started before)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name=f"warm-up {self.name}", daemon=True).start()

    def _run(self) -> None:
        try:
            self._call()
        except BaseException as err:  # raised again in the caller's thread by ready()
            self._error = err
        finally:
            self._done.set()

    def ready(self, deadline: Deadline) -> bool:
        """Whether the call is done: starts it and waits for it until ``deadline`` (as long as it
        takes without a limit).  A call that failed raises here."""
        self.start()
        self._done.wait(deadline.remaining() if deadline.limited else None)
        if not self._done.is_set():
            return False
        if self._error is not None:
            raise RuntimeError(f"{self.name} failed: {self._error}") from self._error
        return True


#: importing OR-Tools' CP-SAT, which the windows of ``lns`` and ``rh`` need
CP_SAT = Warmup(
    "importing OR-Tools CP-SAT", lambda: importlib.import_module("ortools.sat.python.cp_model")
)
