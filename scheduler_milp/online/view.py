"""The information rule as structure: what a policy is given, and what it answers.

A policy never sees the instance.  The executor (:mod:`scheduler_milp.online.executor`) keeps the
true output lengths and the future arrivals to itself and hands the policy, at each decision
round, a :class:`View` built from public facts only:

* the requests that arrived since the policy's last call (:class:`Arrival`: id, prompt, arrival
  round, prediction and range; never the true output),
* the requests that finished since then (:class:`Finished`: the true length is known once the
  last token is out),
* the requests evicted in this round before the call (:class:`Evicted`),
* every running request's segment start and kept tokens (so the tokens produced so far), and the
  memory they hold in this round.

Requests are named by *handles*: ``0, 1, 2, ...`` in order of arrival (ties by natural id order),
so a handle says nothing about requests still to come.  The policy answers with a
:class:`Decision`: requests to evict, requests to start (both in this round) and the next round in
which it wants to be called even if nothing happens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: the run-level eviction modes: an evicted request starts over from token 1 (``restart``) or keeps
#: its tokens and holds ``s + k`` at once when started again (``resume``, vLLM's recompute)
EVICTION_MODES = ("restart", "resume")


@dataclass(frozen=True)
class Setting:
    """What every policy knows before the first request: budget, block size, cap, eviction mode."""

    memory: int
    block_size: int = 1
    max_batch: int | None = None
    eviction: str = "restart"
    seed: int = 0

    def mem(self, prompt: int, k: int) -> int:
        """``B * ceil((prompt + k) / B)``: the memory of the ``k``-th round of a request."""
        b = self.block_size
        return -(-(prompt + k) // b) * b

    def longest(self, prompt: int) -> int:
        """The largest output length a request with this prompt can have and still fit alone."""
        b = self.block_size
        return (self.memory // b) * b - prompt

    @property
    def cap(self) -> int:
        """The batch cap (a very large number when there is none)."""
        return self.max_batch if self.max_batch is not None else 2**62


@dataclass(frozen=True, slots=True)
class Arrival:
    """A request as the policy first sees it (no true output length)."""

    handle: int
    id: str
    prompt: int
    arrival: int
    predicted: int
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class Finished:
    """A request that emitted its last token: its true length and completion round."""

    handle: int
    output: int
    completion: int


@dataclass(frozen=True, slots=True)
class Evicted:
    """A request evicted in this round after producing ``produced`` tokens in all; ``kept`` of
    them survive (all in ``resume`` mode, none in ``restart`` mode)."""

    handle: int
    produced: int
    kept: int


@dataclass(frozen=True, slots=True)
class Running:
    """A running request: its current segment started in round ``start`` with ``kept`` tokens."""

    start: int
    kept: int


@dataclass(frozen=True)
class View:
    """Everything a policy may know in round ``t`` (see the module docstring)."""

    t: int
    usage: int  # memory held by the running requests in round t
    arrived: tuple[Arrival, ...] = ()
    finished: tuple[Finished, ...] = ()
    evicted: tuple[Evicted, ...] = ()
    running: Mapping[int, Running] = field(default_factory=dict)

    def produced(self, handle: int) -> int:
        """Tokens a running request has produced before round ``t``."""
        r = self.running[handle]
        return r.kept + self.t - r.start


@dataclass(frozen=True)
class Decision:
    """A policy's answer: evict these, then start these (in this round), call me again at ``wake``."""

    start: Sequence[int] = ()
    evict: Sequence[int] = ()
    wake: int | None = None


class Policy:
    """Base of the online policies: :meth:`decide` every decision round, :meth:`victims` on overflow.

    ``clairvoyant`` marks a reference policy that was given the truth (``hindsight:METHOD``); every
    other policy is built from a :class:`Setting` and parameters only.
    """

    name = "policy"
    clairvoyant = False

    def __init__(self, setting: Setting):
        self.setting = setting

    def victims(self, view: View) -> Sequence[int]:
        """Running requests to evict because round ``view.t`` would overflow (default: none, and
        the executor then evicts the most recently started until the round fits)."""
        return ()

    def decide(self, view: View) -> Decision:
        """The decision of round ``view.t``."""
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """Counters for the run record."""
        return {}
