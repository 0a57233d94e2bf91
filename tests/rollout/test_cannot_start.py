"""Pods that cannot start for a reason waiting will not fix fail their revision after a short window."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from llmgw.core import render, revisions, rollout
from llmgw.core.rollout import AVAILABLE, FAILED, PROGRESSING, ROLLED_BACK, Record
from llmgw.handlers import rollouts

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
A, B = ("a" * 64, "b" * 64)
MISSING = 'secret "openai-key" not found'

# What the kubelet writes for each reason (reason, message).
KUBELET = {
    "CreateContainerConfigError": MISSING,
    "ErrImagePull": 'failed to pull and unpack image "ghcr.io/berriai/litellm:nope": not found',
    "ImagePullBackOff": 'Back-off pulling image "ghcr.io/berriai/litellm:nope"',
    "InvalidImageName": 'Failed to apply default image tag "litellm:": invalid reference format',
    "ErrImageNeverPull": 'Container image "litellm:dev" is not present with pull policy of Never',
}


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def history(rolled_at: float = 0) -> tuple[Record, ...]:
    """B rolled out at `rolled_at`, A the last revision that became available."""
    return (
        Record(B[:10], rollout.stamp(at(rolled_at)), PROGRESSING),
        Record(A[:10], rollout.stamp(at(-600)), AVAILABLE),
    )


def dep(hash_: str = B) -> dict[str, Any]:
    """The Deployment on `hash_`, seen by its controller, not available."""
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2, "template": {"metadata": {"annotations": {revisions.CONFIG_HASH: hash_}}}},
        "status": {
            "observedGeneration": 2,
            "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True"},
            ],
        },
    }


def pod(
    reason: str = "CreateContainerConfigError",
    message: str = MISSING,
    *,
    name: str = "gw-b-1",
    hash_: str = B,
    started: float | None = None,
    ready: bool = False,
) -> rollout.Pod:
    waiting = (rollout.Waiting("litellm", reason, message),) if reason else ()
    return rollout.Pod(
        name,
        hash_[:10],
        ready=ready,
        waiting=waiting,
        started=rollout.stamp(at(started)) if started is not None else "",
    )


def snap(now: float, *pods: rollout.Pod, **kw: Any) -> rollout.Snapshot:
    base: dict[str, Any] = {
        "wanted": B,
        "history": history(),
        "deployment": dep(),
        "pods": pods,
        "stored": {h[:10]: revisions.Stored(h[:10], h, (render.EnvVar("K", "s", "k"),)) for h in (A, B)},
        "auto_rollback": True,
        "deadline_seconds": 300,
        "limit": 10,
        "now": at(now),
        "stuck_seconds": 60,
    }
    base.update(kw)
    return rollout.Snapshot(**base)


def outcomes(p: rollout.Plan) -> list[tuple[str, str]]:
    return [(r.revision, r.outcome) for r in p.history]


@pytest.mark.parametrize("reason", sorted(KUBELET))
def test_a_pod_that_cannot_start_waits_out_the_window_then_fails_its_revision(reason: str) -> None:
    stuck = pod(reason, KUBELET[reason])
    early = rollout.plan(snap(59, stuck))
    assert early.run == B[:10]
    assert outcomes(early) == [(B[:10], PROGRESSING), (A[:10], AVAILABLE)]
    assert early.rolled_back is None
    assert early.recheck_after == 1.0

    late = rollout.plan(snap(60, stuck))
    assert late.run == A[:10]
    assert outcomes(late) == [(A[:10], PROGRESSING), (B[:10], ROLLED_BACK)]
    assert late.rolled_back == rollout.Failure(
        B[:10],
        reason,
        f"pod gw-b-1: container litellm cannot start: {reason} ({KUBELET[reason]}), still after 60s",
    )
    assert late.history[1].reason == reason


def test_the_rolled_back_condition_names_both_revisions_and_the_kubelets_reason() -> None:
    p = rollout.plan(snap(61, pod()))
    cond = p.condition
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "RolledBack",
        "True",
        "CreateContainerConfigError",
    )
    assert f"revision {B[:10]} failed: pod gw-b-1: container litellm cannot start" in cond["message"]
    assert MISSING in cond["message"]
    assert f"runs revision {A[:10]}" in cond["message"]
    assert p.history[1].message.endswith(f"; rolled back to revision {A[:10]}")
    assert p.held is not None
    assert "CreateContainerConfigError" in p.held


def test_the_reconciler_is_woken_at_the_end_of_the_window() -> None:
    assert rollout.plan(snap(10, pod())).recheck_after == 50
    # Without such a pod it is the deadline.
    assert rollout.plan(snap(10)).recheck_after == 290
    assert rollout.plan(snap(10, pod("ContainerCreating", ""))).recheck_after == 290
    # A small window, as a gateway may set it.
    assert rollout.plan(snap(0, pod(), stuck_seconds=2)).recheck_after == 2
    # The earliest window of several pods.
    two = (pod(name="gw-b-1", started=30), pod("ErrImagePull", "x", name="gw-b-2", started=20))
    assert rollout.plan(snap(40, *two)).recheck_after == 40


def test_a_pod_that_recovers_in_time_does_not_fail_its_revision() -> None:
    assert rollout.plan(snap(30, pod())).rolled_back is None
    # The Secret was created: the container is being created, then runs, not ready yet.
    for recovered in (pod("ContainerCreating", ""), pod("", ""), pod("", "", ready=True)):
        p = rollout.plan(snap(61, recovered))
        assert p.run == B[:10]
        assert p.rolled_back is None
        assert p.failed is None
        assert outcomes(p)[0] == (B[:10], PROGRESSING)
        assert p.recheck_after == 239  # back to the deadline


def test_the_window_counts_from_the_pods_start_when_it_started_after_the_rollout() -> None:
    late_pod = pod(started=100)
    p = rollout.plan(snap(130, late_pod))
    assert p.rolled_back is None
    assert p.recheck_after == 30
    assert rollout.plan(snap(160, late_pod)).rolled_back is not None
    # A pod started before the rollout time (it is not one of this rollout's) counts from the rollout.
    assert rollout.plan(snap(59, pod(started=-100))).rolled_back is None


@pytest.mark.parametrize(
    "reason",
    [
        "CreateContainerError",
        "RegistryUnavailable",
        "ImageInspectError",
        "ContainerCreating",
        "PodInitializing",
    ],
)
def test_reasons_that_often_pass_wait_for_the_deadline(reason: str) -> None:
    stuck = pod(reason, "context deadline exceeded")
    p = rollout.plan(snap(299, stuck))
    assert p.rolled_back is None
    assert p.recheck_after == 1.0
    p = rollout.plan(snap(300, stuck))
    assert p.rolled_back is not None
    assert p.rolled_back.reason == "ProgressDeadlineExceeded"
    assert reason in p.rolled_back.message


def test_pods_of_another_revision_say_nothing_of_this_one() -> None:
    p = rollout.plan(snap(120, pod(hash_=A, name="gw-a-1")))
    assert p.rolled_back is None
    assert p.recheck_after == 180


def test_nothing_is_decided_before_the_deployment_shows_the_revision() -> None:
    p = rollout.plan(snap(120, pod(), deployment=dep(A)))
    assert p.rolled_back is None
    assert p.recheck_after == 180


def test_a_window_longer_than_the_deadline_leaves_only_the_deadline() -> None:
    p = rollout.plan(snap(300, pod(), stuck_seconds=600))
    assert p.rolled_back is not None
    assert p.rolled_back.reason == "ProgressDeadlineExceeded"
    assert MISSING in p.rolled_back.message


def test_without_auto_rollback_the_revision_fails_and_stays() -> None:
    p = rollout.plan(snap(60, pod("ErrImagePull", "not found"), auto_rollback=False))
    assert p.run == B[:10]
    assert outcomes(p) == [(B[:10], FAILED), (A[:10], AVAILABLE)]
    assert p.failed is not None
    assert p.failed.reason == "ErrImagePull"
    assert p.condition["reason"] == "AutoRollbackDisabled"
    assert "ErrImagePull" in p.condition["message"]
    assert p.recheck_after is None


def test_the_pods_index_keeps_the_start_time_and_the_kubelets_words() -> None:
    body = {
        "metadata": {"name": "gw-b-1", "annotations": {revisions.CONFIG_HASH: B}},
        "status": {
            "phase": "Pending",
            "startTime": "2026-01-01T12:00:05Z",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {
                    "name": "litellm",
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "CreateContainerConfigError", "message": MISSING}},
                }
            ],
        },
    }
    got = rollouts._pod(rollouts.pod_summary(body))
    assert got == rollout.Pod(
        "gw-b-1",
        B[:10],
        ready=False,
        waiting=(rollout.Waiting("litellm", "CreateContainerConfigError", MISSING, 0),),
        started="2026-01-01T12:00:05Z",
    )
