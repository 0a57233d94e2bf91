"""`conditions`: the standard condition shape, transition times, and telling a no-op write."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.api.common import Condition
from llmgw.core import conditions

T1 = "2026-01-01T00:00:00Z"
T2 = "2026-01-02T00:00:00Z"


def c(type_: str, status: str, reason: str = "R", message: str = "m", **extra: Any) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message, **extra}


# --- condition --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "want"),
    [(True, "True"), (False, "False"), ("Unknown", "Unknown"), ("True", "True")],
)
def test_condition_spells_the_status_as_kubernetes_does(status, want):
    got = conditions.condition("Ready", status, "Why", "what", 3)
    assert got == {
        "type": "Ready",
        "status": want,
        "reason": "Why",
        "message": "what",
        "observedGeneration": 3,
    }
    Condition.model_validate({**got, "lastTransitionTime": T1})


def test_condition_without_a_generation_leaves_observed_generation_out():
    assert conditions.condition("Ready", True, "Ready", "", None) == {
        "type": "Ready",
        "status": "True",
        "reason": "Ready",
        "message": "",
    }


def test_condition_at_generation_zero_keeps_it():
    assert conditions.condition("Ready", True, "Ready", "", 0)["observedGeneration"] == 0


# --- merge ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "times"),
    [
        pytest.param(None, [c("A", "True")], [T2], id="no-old-status"),
        pytest.param([], [c("A", "True")], [T2], id="no-old-conditions"),
        pytest.param([c("A", "True", lastTransitionTime=T1)], [c("A", "True")], [T1], id="unchanged"),
        pytest.param(
            [c("A", "True", "Old", "before", lastTransitionTime=T1)],
            [c("A", "True", "New", "after")],
            [T1],
            id="reason-and-message-change-only",
        ),
        pytest.param([c("A", "True", lastTransitionTime=T1)], [c("A", "False")], [T2], id="flipped"),
        pytest.param(
            [c("A", "Unknown", lastTransitionTime=T1)], [c("A", "True")], [T2], id="unknown-to-true"
        ),
        pytest.param([c("A", "True")], [c("A", "True")], [T2], id="old-without-a-time"),
        pytest.param(
            [c("A", "True", lastTransitionTime="")], [c("A", "True")], [T2], id="old-with-an-empty-time"
        ),
        pytest.param(
            [c("A", "True", lastTransitionTime=T1)],
            [c("A", "True"), c("B", "False")],
            [T1, T2],
            id="new-type",
        ),
        pytest.param(
            [c("B", "False", lastTransitionTime=T1), c("A", "True", lastTransitionTime=T1)],
            [c("A", "True"), c("B", "True")],
            [T1, T2],
            id="matched-by-type-not-position",
        ),
    ],
)
def test_merge_keeps_a_transition_time_while_the_status_stays(old, new, times):
    merged = conditions.merge(old, new, T2)
    assert [m["lastTransitionTime"] for m in merged] == times
    assert [{k: v for k, v in m.items() if k != "lastTransitionTime"} for m in merged] == new


def test_merge_drops_conditions_no_longer_given():
    old = [c("A", "True", lastTransitionTime=T1), c("Gone", "True", lastTransitionTime=T1)]
    assert [m["type"] for m in conditions.merge(old, [c("A", "True")], T2)] == ["A"]


def test_merge_changes_neither_input():
    old = [c("A", "True", lastTransitionTime=T1)]
    new = [c("A", "False")]
    conditions.merge(old, new, T2)
    assert old == [c("A", "True", lastTransitionTime=T1)]
    assert new == [c("A", "False")]


def test_merge_takes_any_iterable():
    merged = conditions.merge(None, (x for x in [c("A", "True")]), T1)
    assert merged == [c("A", "True", lastTransitionTime=T1)]


# --- same -------------------------------------------------------------------------------------


def status(*conds: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"observedGeneration": 2, "conditions": list(conds), **fields}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(status(), status(), id="equal"),
        pytest.param(
            status(c("A", "True", lastTransitionTime=T1)),
            status(c("A", "True", lastTransitionTime=T2)),
            id="transition-times-only",
        ),
        pytest.param(
            status(c("A", "True", lastTransitionTime=T1)), status(c("A", "True")), id="time-left-out"
        ),
        pytest.param(status(models=3), status(models=3, discoveredModels=None), id="none-in-new"),
        pytest.param(status(models=3, gateways=None), status(models=3), id="none-in-old"),
        pytest.param(
            status(c("A", "True", observedGeneration=None)), status(c("A", "True")), id="none-in-a-condition"
        ),
        pytest.param(None, {}, id="no-old-status-and-an-empty-one"),
        pytest.param({"revision": "abc", "models": 1}, {"models": 1, "revision": "abc"}, id="key-order"),
    ],
)
def test_same_when_only_transition_times_or_nones_differ(old, new):
    assert conditions.same(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(status(c("A", "True")), status(c("A", "False")), id="status"),
        pytest.param(status(c("A", "True", "X")), status(c("A", "True", "Y")), id="reason"),
        pytest.param(status(c("A", "True", message="a")), status(c("A", "True", message="b")), id="message"),
        pytest.param(status(c("A", "True")), status(c("A", "True"), c("B", "True")), id="new-condition"),
        pytest.param(
            status(c("A", "True"), c("B", "True")), status(c("B", "True"), c("A", "True")), id="order"
        ),
        pytest.param(status(), status(observedGeneration=3), id="generation"),
        pytest.param(status(models=3), status(models=4), id="field"),
        pytest.param(status(gateways=["a"]), status(gateways=[]), id="list"),
        pytest.param(status(discoveredModels=["x"]), status(), id="field-gone"),
        pytest.param(None, status(), id="no-old-status"),
    ],
)
def test_not_same_when_anything_else_differs(old, new):
    assert not conditions.same(old, new)


def test_same_after_merging_what_was_written():
    """What the reconciler does: merge onto the written status, then write only if not the same."""
    written = status(c("A", "True", lastTransitionTime=T1), c("B", "False", lastTransitionTime=T1))
    again = status(c("A", "True"), c("B", "False"))
    again["conditions"] = conditions.merge(written["conditions"], again["conditions"], T2)
    assert conditions.same(written, again)
    flipped = status(c("A", "True"), c("B", "True"))
    flipped["conditions"] = conditions.merge(written["conditions"], flipped["conditions"], T2)
    assert not conditions.same(written, flipped)


# --- get --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conds", "type_", "want"),
    [
        pytest.param([c("A", "True"), c("B", "False")], "B", c("B", "False"), id="found"),
        pytest.param([c("A", "True")], "B", None, id="absent"),
        pytest.param([], "A", None, id="empty"),
        pytest.param(None, "A", None, id="none"),
        pytest.param([{"status": "True"}, c("A", "True")], "A", c("A", "True"), id="skips-untyped"),
        pytest.param(
            [c("A", "True", "First"), c("A", "False", "Second")], "A", c("A", "True", "First"), id="first"
        ),
    ],
)
def test_get_finds_a_condition_by_type(conds, type_, want):
    assert conditions.get(conds, type_) == want
