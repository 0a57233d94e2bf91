"""Pods that cannot start for a reason waiting will not fix fail their revision after
`spec.rollout.stuckPodSeconds`, well before the progress deadline.

No kubelet runs here: each test writes the pod status the kubelet would (a missing
Secret, an image that cannot be pulled) and then leaves the cluster alone, so the
rollback is the operator's own doing, woken when the window ends.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from harness import Cluster, condition, eventually
from test_rollback import HASH, available, good_then_new, has_history, rollbacks, runs, status

pytestmark = [pytest.mark.integration]

WINDOW = 2
KUBELET = {
    "CreateContainerConfigError": 'secret "x" not found',
    "ErrImagePull": (
        'failed to pull and unpack image "ghcr.io/berriai/litellm:no-such-tag": '
        "ghcr.io/berriai/litellm:no-such-tag: not found"
    ),
    "InvalidImageName": 'Failed to apply default image tag "litellm:": couldn\'t parse image name',
}


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def pod_status(waiting: tuple[str, str] | None) -> dict[str, Any]:
    """The kubelet's status of a gateway pod: its container waiting (reason, message), or running."""
    state: dict[str, Any] = (
        {"waiting": {"reason": waiting[0], "message": waiting[1]}}
        if waiting
        else {"running": {"startedAt": now()}}
    )
    return {
        "phase": "Pending" if waiting else "Running",
        "startTime": now(),
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {"name": "litellm", "image": "litellm", "ready": False, "restartCount": 0, "state": state}
        ],
    }


async def pod(c: Cluster, hash_: str, waiting: tuple[str, str] | None, name: str = "gw-5c8d-q7w2") -> None:
    """A pod of the revision's ReplicaSet, and the status the kubelet writes for it."""
    await c.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": "ai",
                "labels": {"app.kubernetes.io/managed-by": "llmgw", "llmgateway.dev/gateway": "gw"},
                "annotations": {HASH: hash_},
            },
            "spec": {"containers": [{"name": "litellm", "image": "litellm"}]},
        }
    )
    await c.patch("Pod", "ai", name, {"status": pod_status(waiting)}, sub="/status")


async def rolled_back_status(c: Cluster) -> dict[str, Any] | None:
    st = await status(c)
    cond = condition({"status": st}, "RolledBack")
    return st if cond is not None and cond["status"] == "True" else None


@pytest.mark.parametrize("reason", sorted(KUBELET))
@pytest.mark.usefixtures("operator")
async def test_a_pod_that_cannot_start_rolls_its_revision_back_after_the_window(
    cluster: Cluster, reason: str
) -> None:
    before = rollbacks(reason)
    a, b = await good_then_new(cluster, rollout={"stuckPodSeconds": WINDOW})
    await pod(cluster, b, (reason, KUBELET[reason]))
    # Nothing else happens in the cluster: the operator wakes itself when the window ends.
    await eventually(lambda: runs(cluster, a), what="the Deployment back on revision A")
    st = await eventually(lambda: rolled_back_status(cluster), what="RolledBack=True")

    cond = condition({"status": st}, "RolledBack")
    assert cond is not None
    assert cond["reason"] == reason
    assert (
        f"revision {b[:10]} failed: pod gw-5c8d-q7w2: container litellm cannot start: {reason}"
        in (cond["message"])
    )
    assert KUBELET[reason] in cond["message"]
    assert f"runs revision {a[:10]}" in cond["message"]
    rows = st["history"]
    assert [(r["revision"], r["outcome"], r.get("reason")) for r in rows] == [
        (a[:10], "Progressing", None),
        (b[:10], "RolledBack", reason),
    ]
    # Not before the window (the times are whole seconds, the window is counted from B's), and
    # far from the progress deadline (300 s).
    waited = seconds(rows[0]["time"]) - seconds(rows[1]["time"])
    assert WINDOW <= waited <= WINDOW + 8
    assert rollbacks(reason) == before + 1

    async def event() -> dict[str, Any] | None:
        return next((e for e in await cluster.list("Event", "ai") if e.get("reason") == "RolledBack"), None)

    ev = await eventually(event, what="a RolledBack Event")
    assert ev["type"] == "Warning"
    assert f"revision {b[:10]} failed ({reason}: " in ev["message"]
    assert KUBELET[reason] in ev["message"]
    assert f"rolled back to revision {a[:10]}" in ev["message"]


@pytest.mark.usefixtures("operator")
async def test_a_pod_whose_secret_is_created_in_time_does_not_fail_its_revision(cluster: Cluster) -> None:
    window = 4
    a, b = await good_then_new(cluster, rollout={"stuckPodSeconds": window})
    await pod(cluster, b, ("CreateContainerConfigError", 'secret "x" not found'))
    await asyncio.sleep(1.0)
    assert await runs(cluster, b) is not None
    # The Secret is created: the kubelet starts the container.
    await pod(cluster, b, None)
    await asyncio.sleep(window + 1.5)
    assert await runs(cluster, b) is not None
    assert await has_history(cluster, [(b[:10], "Progressing"), (a[:10], "Available")])
    cond = condition({"status": await status(cluster)}, "RolledBack")
    assert cond is not None
    assert cond["status"] == "False"
    await available(cluster)
    await eventually(lambda: has_history(cluster, [(b[:10], "Available"), (a[:10], "Available")]))
