"""The independent check: it accepts a valid execution and catches every kind of corruption."""

from __future__ import annotations

import copy

import pytest

from scheduler_milp.model.instance import Instance
from scheduler_milp.online.check import ExecutionError, check_execution, recount
from scheduler_milp.online.run import simulate

INST = Instance.create(12, [2, 2, 2, 4], [6, 2, 2, 3], [0, 0, 0, 2], max_batch=3)
GOOD = [[(0, 6)], [(0, 2)], [(0, 2)], [(2, 4), (6, 9)]]


def test_accepts_a_valid_execution() -> None:
    assert check_execution(INST, GOOD, "restart") == []
    rc = recount(INST, GOOD, "restart")
    assert rc.objective == 6 + 2 + 2 + 7 and rc.evictions == 1 and rc.wasted_rounds == 2
    assert (
        check_execution(
            INST, GOOD, "restart", {"objective": 17, "evictions": 1, "wasted_rounds": 2}
        )
        == []
    )


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda s: s[3].__setitem__(0, (1, 3)), "before its arrival"),
        (lambda s: s[0].__setitem__(0, (0, 5)), "last segment has 5 rounds"),
        (lambda s: s[3].__setitem__(1, (3, 6)), "overlaps"),
        (lambda s: s[3].__setitem__(0, (2, 2)), "empty segment"),
        (lambda s: s[1].clear(), "never ran"),
        (lambda s: s[3].__setitem__(1, (4, 7)), "memory"),  # r3 restarts next to r0: 7 + 5 > 12
        (lambda s: s[3].__setitem__(0, (2, 5)), "already produced every token"),
    ],
)
def test_catches_corruption(change, fragment: str) -> None:
    bad = copy.deepcopy(GOOD)
    change(bad)
    problems = check_execution(INST, bad, "restart")
    assert problems and any(fragment in p for p in problems), problems


def test_catches_the_batch_cap_and_false_claims() -> None:
    inst = INST.replace(max_batch=2)
    assert any("max_batch" in p for p in check_execution(inst, GOOD, "restart"))
    assert any(
        "objective claimed 16" in p
        for p in check_execution(INST, GOOD, "restart", {"objective": 16})
    )


def test_resume_counts_kept_tokens() -> None:
    good = [[(0, 6)], [(0, 2)], [(0, 2)], [(2, 4), (6, 7)]]
    assert check_execution(INST, good, "resume") == []
    assert any("segments produce 5 tokens" in p for p in check_execution(INST, GOOD, "resume"))
    # the kept tokens count in the memory: r3 back in round 4 would hold 4 + 2 + 1 = 7 next to r0's 7
    assert any(
        "memory" in p
        for p in check_execution(INST, [[(0, 6)], [(0, 2)], [(0, 2)], [(2, 4), (4, 5)]], "resume")
    )


def test_an_execution_checks_itself_and_a_corrupted_one_fails() -> None:
    ex = simulate(INST, "mcsf", "lognormal:0.8", "restart", seed=1)
    assert ex.check() == []
    ex.segments[0][0] = (0, ex.segments[0][0][1] + 1)
    assert ex.check()
    with pytest.raises(ExecutionError, match="invalid execution"):
        raise ExecutionError(ex.check())
