"""Rollout watching and rollback decisions, pure: a snapshot in, a plan out."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from llmgw.core import desired, render, revisions, rollout
from llmgw.core.rollout import AVAILABLE, FAILED, PROGRESSING, ROLLED_BACK, SUPERSEDED, Record

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
ANN = revisions.CONFIG_HASH


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def rec(hash_: str, outcome: str, seconds: float = 0, **kw: str) -> Record:
    return Record(hash_[:10], rollout.stamp(at(seconds)), outcome, **kw)


def dep(
    hash_: str,
    *,
    generation: int = 2,
    observed: int | None = 2,
    available: bool = False,
    progressing: str | None = None,
    replicas: int = 2,
) -> dict[str, Any]:
    conds = [{"type": "Available", "status": "True" if available else "False"}]
    if progressing:
        conds.append({"type": "Progressing", "status": "False", "reason": progressing, "message": "too slow"})
    status: dict[str, Any] = {"conditions": conds}
    if observed is not None:
        status["observedGeneration"] = observed
    if available:
        status.update(updatedReplicas=replicas, availableReplicas=replicas, readyReplicas=replicas)
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas, "template": {"metadata": {"annotations": {ANN: hash_}}}},
        "status": status,
    }


def stored(*hashes: str) -> dict[str, revisions.Stored]:
    return {h[:10]: revisions.Stored(h[:10], h, (render.EnvVar("K", "s", "k"),)) for h in hashes}


def snap(
    wanted: str, history: tuple[Record, ...] = (), deployment: Any = None, **kw: Any
) -> rollout.Snapshot:
    base: dict[str, Any] = {
        "wanted": wanted,
        "history": history,
        "deployment": deployment,
        "pods": (),
        "stored": stored(A, B, C, D),
        "auto_rollback": True,
        "deadline_seconds": 300,
        "limit": 10,
        "now": at(60),
    }
    base.update(kw)
    return rollout.Snapshot(**base)


def plan(s: rollout.Snapshot) -> rollout.Plan:
    return rollout.plan(s)


def outcomes(p: rollout.Plan) -> list[tuple[str, str]]:
    return [(r.revision, r.outcome) for r in p.history]


def crash_pod(hash_: str, restarts: int = 3) -> rollout.Pod:
    return rollout.Pod(
        "gw-1",
        hash_[:10],
        ready=False,
        waiting=(rollout.Waiting("litellm", "CrashLoopBackOff", "back-off 40s", restarts),),
    )


def test_the_first_revision_is_rolled_out_and_watched_until_its_deadline() -> None:
    p = plan(snap(A))
    assert p.run == A[:10]
    assert outcomes(p) == [(A[:10], PROGRESSING)]
    assert p.recheck_after == 300
    assert p.condition["status"] == "False"
    assert p.condition["reason"] == "NotRolledBack"
    assert p.held is None


def test_a_revision_becomes_available_when_the_deployment_is() -> None:
    p = plan(snap(A, (rec(A, PROGRESSING),), dep(A, available=True)))
    assert outcomes(p) == [(A[:10], AVAILABLE)]
    assert p.became_available == A[:10]
    assert p.recheck_after is None


def test_a_deployment_the_controller_has_not_seen_yet_decides_nothing() -> None:
    stale = dep(A, generation=3, observed=2, available=True, progressing="ProgressDeadlineExceeded")
    p = plan(snap(A, (rec(A, PROGRESSING), rec(B, AVAILABLE)), stale))
    assert outcomes(p) == [(A[:10], PROGRESSING), (B[:10], AVAILABLE)]
    assert p.run == A[:10]


def test_a_new_render_supersedes_one_still_progressing() -> None:
    p = plan(snap(B, (rec(A, PROGRESSING),), dep(A)))
    assert p.run == B[:10]
    assert outcomes(p) == [(B[:10], PROGRESSING), (A[:10], SUPERSEDED)]


def test_a_new_render_keeps_the_available_one_as_the_rollback_target() -> None:
    p = plan(snap(B, (rec(A, AVAILABLE),), dep(A, available=True)))
    assert outcomes(p) == [(B[:10], PROGRESSING), (A[:10], AVAILABLE)]
    assert {A[:10], B[:10]} <= p.keep


def test_progress_deadline_exceeded_rolls_back_to_the_last_available_revision() -> None:
    history = (rec(B, PROGRESSING, 10), rec(A, AVAILABLE))
    p = plan(snap(B, history, dep(B, progressing="ProgressDeadlineExceeded")))
    assert p.run == A[:10]
    assert outcomes(p) == [(A[:10], PROGRESSING), (B[:10], ROLLED_BACK)]
    assert p.rolled_back == rollout.Failure(B[:10], "ProgressDeadlineExceeded", "too slow")
    assert p.history[1].message == f"too slow; rolled back to revision {A[:10]}"
    cond = p.condition
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "RolledBack",
        "True",
        "ProgressDeadlineExceeded",
    )
    assert f"revision {B[:10]} failed: too slow" in cond["message"]
    assert f"runs revision {A[:10]}" in cond["message"]
    assert p.held is not None
    assert "not rolled out again until the inputs change" in p.held
    assert A[:10] in p.keep


def test_crash_looping_pods_of_the_new_revision_roll_it_back() -> None:
    history = (rec(B, PROGRESSING, 50), rec(A, AVAILABLE))
    p = plan(snap(B, history, dep(B), pods=(crash_pod(B), crash_pod(A, 9))))
    assert p.run == A[:10]
    assert p.rolled_back is not None
    assert p.rolled_back.reason == "CrashLoopBackOff"
    assert "pod gw-1: container litellm is crash-looping (3 restarts): back-off 40s" in p.rolled_back.message


def test_a_pod_that_restarted_only_once_is_given_time() -> None:
    history = (rec(B, PROGRESSING, 50), rec(A, AVAILABLE))
    p = plan(snap(B, history, dep(B), pods=(crash_pod(B, 1),)))
    assert p.run == B[:10]
    assert p.rolled_back is None


def test_the_operators_own_deadline_names_what_the_pods_wait_for() -> None:
    pod = rollout.Pod(
        "gw-2",
        B[:10],
        ready=False,
        waiting=(rollout.Waiting("litellm", "CreateContainerError", 'failed to reserve container name "k"'),),
    )
    history = (rec(B, PROGRESSING, 0), rec(A, AVAILABLE))
    p = plan(snap(B, history, dep(B), pods=(pod,), now=at(301)))
    assert p.rolled_back is not None
    assert p.rolled_back.reason == "ProgressDeadlineExceeded"
    assert "not available 300s after it was rolled out" in p.rolled_back.message
    assert 'gw-2: litellm waiting: CreateContainerError (failed to reserve container name "k")' in (
        p.rolled_back.message
    )


def test_readiness_failing_past_the_deadline_fails_the_revision() -> None:
    pod = rollout.Pod("gw-3", B[:10], ready=False)
    p = plan(snap(B, (rec(B, PROGRESSING), rec(A, AVAILABLE)), dep(B), pods=(pod,), now=at(400)))
    assert p.rolled_back is not None
    assert "readiness probe failing" in p.rolled_back.message


def test_with_auto_rollback_off_a_failed_revision_stays() -> None:
    history = (rec(B, PROGRESSING, 10), rec(A, AVAILABLE))
    p = plan(snap(B, history, dep(B, progressing="ProgressDeadlineExceeded"), auto_rollback=False))
    assert p.run == B[:10]
    assert outcomes(p) == [(B[:10], FAILED), (A[:10], AVAILABLE)]
    assert p.rolled_back is None
    assert p.failed is not None
    assert (p.condition["status"], p.condition["reason"]) == ("False", "AutoRollbackDisabled")
    assert p.held is None


def test_turning_auto_rollback_on_rolls_a_failed_revision_back() -> None:
    history = (rec(B, FAILED, 10, reason="CrashLoopBackOff", message="x"), rec(A, AVAILABLE))
    p = plan(snap(B, history, dep(B)))
    assert p.run == A[:10]
    assert outcomes(p)[1] == (B[:10], ROLLED_BACK)


def test_a_failed_revision_that_recovers_becomes_available() -> None:
    history = (rec(B, FAILED, 10, reason="ProgressDeadlineExceeded", message="x"),)
    p = plan(snap(B, history, dep(B, available=True), auto_rollback=False))
    assert outcomes(p) == [(B[:10], AVAILABLE)]


def test_without_an_available_revision_there_is_nothing_to_roll_back_to() -> None:
    p = plan(snap(B, (rec(B, PROGRESSING),), dep(B, progressing="ProgressDeadlineExceeded")))
    assert p.run == B[:10]
    assert outcomes(p) == [(B[:10], FAILED)]
    assert (p.condition["status"], p.condition["reason"]) == ("False", "NoRollbackTarget")


def test_a_target_whose_config_map_is_gone_is_passed_over() -> None:
    history = (rec(C, PROGRESSING, 10), rec(B, AVAILABLE), rec(A, AVAILABLE))
    p = plan(snap(C, history, dep(C, progressing="ProgressDeadlineExceeded"), stored=stored(A, C)))
    assert p.run == A[:10]


def test_a_rolled_back_revision_is_not_tried_again_for_the_same_hash() -> None:
    history = (rec(A, PROGRESSING, 20), rec(B, ROLLED_BACK, 10, reason="CrashLoopBackOff", message="m"))
    first = plan(snap(B, history, dep(A, generation=3, observed=2)))
    assert first.run == A[:10]
    assert first.rolled_back is None  # announced once, when it happened
    assert first.condition["status"] == "True"
    # The restored revision becomes available: still held.
    again = plan(snap(B, first.history, dep(A, available=True)))
    assert again.run == A[:10]
    assert outcomes(again) == [(A[:10], AVAILABLE), (B[:10], ROLLED_BACK)]
    # The inputs change: a new hash is tried.
    moved = plan(snap(C, again.history, dep(A, available=True)))
    assert moved.run == C[:10]
    assert moved.held is None
    assert moved.condition["reason"] == "NotRolledBack"


def test_inputs_that_move_on_from_a_failing_revision_replace_it() -> None:
    history = (rec(B, PROGRESSING, 10), rec(A, AVAILABLE))
    p = plan(snap(C, history, dep(B, progressing="ProgressDeadlineExceeded")))
    assert p.run == C[:10]
    assert outcomes(p) == [(C[:10], PROGRESSING), (B[:10], FAILED), (A[:10], AVAILABLE)]
    assert p.rolled_back is None


def test_history_keeps_the_limit_but_never_the_rollback_target_or_a_held_revision() -> None:
    # C runs (B failed and is held), six newer revisions came and went, A is the target.
    older = tuple(rec(h * 64, SUPERSEDED) for h in "123456")
    failed = rec(B, ROLLED_BACK, reason="R", message="m")
    p = plan(snap(B, (rec(C, PROGRESSING), failed, *older, rec(A, AVAILABLE)), dep(C), limit=3))
    assert [r.revision for r in p.history] == [C[:10], B[:10], A[:10]]
    assert p.keep == {A[:10], B[:10], C[:10]}


def test_a_gateway_from_before_histories_starts_from_what_runs() -> None:
    p = plan(snap(A, (), dep(A, available=True)))
    assert outcomes(p) == [(A[:10], AVAILABLE)]
    q = plan(snap(B, (), dep(A, available=True)))
    assert outcomes(q) == [(B[:10], PROGRESSING), (A[:10], AVAILABLE)]


def test_zero_replicas_count_as_available() -> None:
    p = plan(snap(A, (rec(A, PROGRESSING),), dep(A, replicas=0)))
    assert outcomes(p) == [(A[:10], AVAILABLE)]


def test_history_survives_the_status_round_trip() -> None:
    history = (rec(B, ROLLED_BACK, reason="CrashLoopBackOff", message="m"), rec(A, AVAILABLE))
    status = {"history": rollout.history_to_status(history)}
    assert rollout.history_from_status(status) == history
    assert status["history"][1] == {
        "revision": A[:10],
        "time": "2026-01-01T12:00:00Z",
        "outcome": "Available",
    }


@pytest.mark.parametrize(
    "rows",
    [None, "x", [1], [{"revision": "a"}], [{"revision": "a", "time": "t", "outcome": "Maybe"}]],
)
def test_history_that_cannot_be_read_is_skipped(rows: Any) -> None:
    assert rollout.history_from_status({"history": rows}) == ()


def test_a_revision_is_restored_with_its_own_env() -> None:
    current = render.Rendered(text="x", hash=B, env=(render.EnvVar("NEW", "s2", "k"),), config={})
    ann = {ANN: A, revisions.ENV: '[["OLD","s1","k"]]'}
    target = revisions.stored(ann)
    assert target is not None
    back = rollout.restored(current, target)
    assert (back.hash, back.env) == (A, (render.EnvVar("OLD", "s1", "k"),))
    legacy = revisions.stored({ANN: A})
    assert legacy is not None
    assert rollout.restored(current, legacy).env == current.env
    assert revisions.stored({}) is None


def test_a_restored_revision_runs_its_own_config_map() -> None:
    from llmgw.core import estate

    gw = estate.default_gateway()
    back = rollout.restored(
        render.Rendered(text="", hash=B, env=(), config={}), revisions.Stored(A[:10], A, ())
    )
    body = desired.deployment(gw, back)
    volumes = body["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": f"llmgw-config-{A[:10]}"}} in volumes
    assert body["spec"]["template"]["metadata"]["annotations"][ANN] == A


def test_plans_are_frozen() -> None:
    p = plan(snap(A))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.run = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("want", "total", "updated", "ready", "done"),
    [
        (1, 2, 1, 1, False),  # one replica, mid-rollout: the one available pod is the old one
        (1, 1, 1, 1, True),
        (2, 3, 2, 2, False),  # two replicas: an old pod is still there
        (2, 2, 2, 1, False),  # every pod updated, one not available yet
        (2, 2, 2, 2, True),
    ],
)
def test_a_rollout_is_done_when_no_old_pod_is_left_and_every_new_one_is_available(
    want: int, total: int, updated: int, ready: int, done: bool
) -> None:
    d = dep(A, available=True, replicas=want)
    d["status"].update(replicas=total, updatedReplicas=updated, availableReplicas=ready)
    assert rollout.available(d) is done
