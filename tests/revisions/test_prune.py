"""Which revision ConfigMaps may go: a pure decision from what the API holds."""

from __future__ import annotations

import datetime

import pytest

from llmgw.core import revisions, rollout
from llmgw.core.rollout import AVAILABLE, FAILED, PROGRESSING, ROLLED_BACK, SUPERSEDED, Record

GW = "gw"
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def rev(i: int) -> str:
    """Revision number i, as a full render hash."""
    return f"{i:02d}" + "f" * 62


def cm(i: int) -> str:
    return revisions.name(GW, rev(i))


def live(*numbers: int) -> dict[str, int]:
    """Revision ConfigMaps that exist: name -> sequence (revision i was made i-th)."""
    return {cm(i): i for i in numbers}


def short(*numbers: int) -> list[str]:
    return [revisions.short(rev(i)) for i in numbers]


def test_under_the_limit_nothing_goes():
    assert revisions.prune(GW, live(1, 2, 3), current=rev(3), history=short(3, 2), limit=10) == ()


def test_at_the_limit_the_oldest_go_newest_first():
    doomed = revisions.prune(GW, live(*range(1, 8)), current=rev(7), history=short(7, 6), limit=3)
    assert doomed == tuple(cm(i) for i in (4, 3, 2, 1))


@pytest.mark.parametrize("limit", [1, 2])
def test_the_current_and_the_previous_are_kept_beyond_the_limit(limit):
    doomed = revisions.prune(GW, live(1, 2, 3, 4), current=rev(4), history=short(4, 2), limit=limit)
    assert cm(4) not in doomed
    assert cm(2) not in doomed  # the previous: what ran before, though older than 3
    assert cm(1) in doomed


def test_the_rollback_target_and_what_runs_are_kept_beyond_the_limit():
    # Revision 6 is the render, 5 failed and was rolled back to 1, which runs now.
    doomed = revisions.prune(
        GW,
        live(1, 2, 3, 4, 5, 6),
        current=rev(6),
        history=short(1, 5, 4),
        keep=short(1),
        limit=2,
    )
    assert cm(6) not in doomed
    assert cm(1) not in doomed  # runs, and is the rollback target
    assert cm(5) not in doomed  # the previous one
    assert set(doomed) == {cm(2), cm(3), cm(4)}


def test_a_revision_named_but_gone_takes_no_room():
    # The previous revision's ConfigMap was deleted by hand: the limit still fills with real ones.
    doomed = revisions.prune(GW, live(3, 4, 5), current=rev(5), history=short(5, 1), limit=2)
    assert doomed == (cm(3),)


def test_the_current_render_is_kept_before_the_watch_shows_it():
    doomed = revisions.prune(GW, live(1, 2), current=rev(3), history=short(3, 2), limit=1)
    assert cm(3) not in doomed
    assert cm(2) not in doomed


def test_same_sequence_is_ordered_by_name():
    names = {revisions.name(GW, "b" * 64): 1, revisions.name(GW, "a" * 64): 1, cm(9): 9}
    doomed = revisions.prune(GW, names, current=rev(9), history=short(9), limit=2)
    assert doomed == (revisions.name(GW, "a" * 64),)


def test_other_gateways_revisions_are_not_named():
    doomed = revisions.prune(GW, live(1, 2, 3), current=rev(3), history=short(3), limit=1)
    assert all(name.startswith(f"{GW}-config-") for name in doomed)


def _plan(history: tuple[Record, ...], wanted: str, stored: tuple[int, ...]) -> rollout.Plan:
    snap = rollout.Snapshot(
        wanted=wanted,
        history=history,
        deployment=None,
        pods=(),
        stored={
            revisions.short(rev(i)): revisions.Stored(revisions.short(rev(i)), rev(i), ()) for i in stored
        },
        auto_rollback=True,
        deadline_seconds=300,
        limit=3,
        now=T0,
    )
    return rollout.plan(snap)


@pytest.mark.parametrize(
    "history",
    [
        (Record(short(5)[0], "2026-01-01T11:00:00Z", PROGRESSING),),
        (
            Record(short(1)[0], "2026-01-01T11:00:00Z", PROGRESSING),
            Record(short(5)[0], "2026-01-01T10:00:00Z", ROLLED_BACK, "CrashLoopBackOff", "boom"),
            Record(short(4)[0], "2026-01-01T09:00:00Z", SUPERSEDED),
            Record(short(3)[0], "2026-01-01T08:00:00Z", FAILED),
            Record(short(1)[0] + "x", "2026-01-01T07:00:00Z", AVAILABLE),
        ),
    ],
)
def test_a_restart_decides_the_same(history):
    """What the prune decision reads survives a restart: the history from the gateway's
    status and the ConfigMaps from the API, never what the process remembered."""
    stored = (1, 2, 3, 4, 5)
    before = _plan(history, rev(6), stored)
    doomed = revisions.prune(
        GW,
        live(*stored, 6),
        current=rev(6),
        history=[r.revision for r in before.history],
        keep=before.keep,
        limit=3,
    )
    # A new process: the history is what the status says, read back.
    status = {"history": rollout.history_to_status(before.history)}
    after = rollout.history_from_status(status)
    assert after == before.history
    again = revisions.prune(
        GW,
        live(*stored, 6),
        current=rev(6),
        history=[r.revision for r in after],
        keep=before.keep,
        limit=3,
    )
    assert again == doomed
    assert cm(6) not in doomed
