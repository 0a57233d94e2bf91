"""Rollout watching and automatic rollback, against the API server.

No Deployment controller or kubelet runs here: each test writes the Deployment
status and the pods that they would, as a real cluster would show them.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from harness import Cluster, condition, eventually, gateway, provider

from llmgw import metrics, options, runner

pytestmark = [pytest.mark.integration]

HASH = "llmgateway.dev/config-hash"


async def deployment(c: Cluster) -> dict[str, Any] | None:
    return await c.get("Deployment", "ai", "gw")


def config_hash(dep: dict[str, Any] | None) -> str | None:
    if not dep:
        return None
    return dep["spec"]["template"]["metadata"]["annotations"].get(HASH)


async def runs(c: Cluster, hash_: str) -> dict[str, Any] | None:
    dep = await deployment(c)
    return dep if config_hash(dep) == hash_ else None


async def rolled_to_new(c: Cluster, old: str) -> str:
    async def moved() -> str | None:
        h = config_hash(await deployment(c))
        return h if h and h != old else None

    return str(await eventually(moved, what="a new revision on the Deployment"))


async def available(c: Cluster) -> None:
    """What the Deployment controller writes once every replica of the template is available."""
    dep = await deployment(c)
    assert dep is not None
    replicas = dep["spec"]["replicas"]
    await c.patch(
        "Deployment",
        "ai",
        "gw",
        {
            "status": {
                "observedGeneration": dep["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                ],
            }
        },
        sub="/status",
    )


async def deadline_exceeded(c: Cluster) -> None:
    """What the Deployment controller writes when the new ReplicaSet made no progress in time."""
    dep = await deployment(c)
    assert dep is not None
    await c.patch(
        "Deployment",
        "ai",
        "gw",
        {
            "status": {
                "observedGeneration": dep["metadata"]["generation"],
                "replicas": 3,
                "updatedReplicas": 1,
                "readyReplicas": 2,
                "availableReplicas": 2,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": 'ReplicaSet "gw-7d9f" has timed out progressing.',
                    },
                ],
            }
        },
        sub="/status",
    )


async def crash_looping_pod(c: Cluster, hash_: str, name: str = "gw-7d9f-x2k4") -> None:
    """A pod of the revision's ReplicaSet whose container keeps crashing, as the kubelet says it."""
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
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {
                        "name": "litellm",
                        "ready": False,
                        "restartCount": 4,
                        "state": {
                            "waiting": {
                                "reason": "CrashLoopBackOff",
                                "message": "back-off 1m20s restarting failed container=litellm",
                            }
                        },
                    }
                ],
            },
        }
    )


async def status(c: Cluster) -> dict[str, Any]:
    gw = await c.get("LLMGateway", "ai", "gw")
    return dict((gw or {}).get("status") or {})


async def history(c: Cluster) -> list[tuple[str, str]]:
    return [(r["revision"], r["outcome"]) for r in (await status(c)).get("history", [])]


async def has_history(c: Cluster, expected: list[tuple[str, str]]) -> list[tuple[str, str]] | None:
    got = await history(c)
    return got if got == expected else None


async def good_then_new(c: Cluster, **spec: Any) -> tuple[str, str]:
    """Revision A becomes available; then an edit rolls revision B. Returns both hashes."""
    await c.apply(provider("vllm", ["llama"]))
    await c.apply(gateway(**spec))
    a = config_hash(await eventually(lambda: deployment(c), what="Deployment ai/gw"))
    assert a is not None
    await available(c)
    await eventually(lambda: has_history(c, [(a[:10], "Available")]), what="revision A available")
    await c.apply(provider("vllm", ["llama", "qwen"]))
    b = await rolled_to_new(c, a)
    await eventually(
        lambda: has_history(c, [(b[:10], "Progressing"), (a[:10], "Available")]), what="B progressing"
    )
    return a, b


def rollbacks(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "llmgw_rollbacks_total", {"namespace": "ai", "gateway": "gw", "reason": reason}
    )
    return float(value or 0)


@pytest.mark.usefixtures("operator")
async def test_progress_deadline_exceeded_rolls_back_to_the_last_available_revision(cluster: Cluster) -> None:
    before = rollbacks("ProgressDeadlineExceeded")
    a, b = await good_then_new(cluster)
    await deadline_exceeded(cluster)

    dep = await eventually(lambda: runs(cluster, a), what="the Deployment back on revision A")
    volumes = dep["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": f"gw-config-{a[:10]}"}} in volumes

    async def rolled_back() -> dict[str, Any] | None:
        gw = await cluster.get("LLMGateway", "ai", "gw")
        cond = condition(gw, "RolledBack")
        return gw if cond and cond["status"] == "True" else None

    gw = await eventually(rolled_back, what="RolledBack=True")
    cond = condition(gw, "RolledBack")
    assert cond is not None
    assert cond["reason"] == "ProgressDeadlineExceeded"
    assert f"revision {b[:10]} failed" in cond["message"]
    assert "has timed out progressing" in cond["message"]
    assert f"runs revision {a[:10]}" in cond["message"]
    programmed = condition(gw, "Programmed")
    assert programmed is not None
    assert (programmed["status"], programmed["reason"]) == ("False", "RevisionFailed")
    assert gw["status"]["revision"] == a[:10]
    rows = gw["status"]["history"]
    assert [(r["revision"], r["outcome"]) for r in rows] == [(a[:10], "Progressing"), (b[:10], "RolledBack")]
    assert rows[1]["reason"] == "ProgressDeadlineExceeded"
    assert rollbacks("ProgressDeadlineExceeded") == before + 1

    async def event() -> dict[str, Any] | None:
        return next((e for e in await cluster.list("Event", "ai") if e.get("reason") == "RolledBack"), None)

    ev = await eventually(event, what="a RolledBack Event")
    assert ev["type"] == "Warning"
    assert f"rolled back to revision {a[:10]}" in ev["message"]
    assert ev["involvedObject"]["kind"] == "LLMGateway"

    # The restored revision becomes available again.
    await available(cluster)
    await eventually(lambda: has_history(cluster, [(a[:10], "Available"), (b[:10], "RolledBack")]))


@pytest.mark.usefixtures("operator")
async def test_crash_looping_pods_roll_back(cluster: Cluster) -> None:
    a, b = await good_then_new(cluster)
    await crash_looping_pod(cluster, a, name="gw-old-pod")  # an old pod crashing says nothing of B
    await asyncio.sleep(1.0)
    assert config_hash(await deployment(cluster)) == b
    await crash_looping_pod(cluster, b)
    await eventually(lambda: runs(cluster, a), what="the Deployment back on revision A")
    st = await eventually(
        # The status is written after the Deployment in a pass: wait for the one that says so.
        lambda: _when(status(cluster), rolled_back),
        what="RolledBack condition True",
    )
    cond = condition({"status": st}, "RolledBack")
    assert cond is not None
    assert cond["reason"] == "CrashLoopBackOff"
    assert "pod gw-7d9f-x2k4: container litellm is crash-looping (4 restarts)" in cond["message"]


def rolled_back(st: dict[str, Any]) -> bool:
    cond = condition({"status": st}, "RolledBack")
    return cond is not None and cond["status"] == "True"


async def _when(coro: Any, check: Any) -> Any:
    value = await coro
    return value if check(value) else None


@pytest.mark.usefixtures("operator")
async def test_no_rollback_when_auto_rollback_is_off(cluster: Cluster) -> None:
    a, b = await good_then_new(cluster, rollout={"autoRollback": False})
    await deadline_exceeded(cluster)
    await eventually(
        lambda: has_history(cluster, [(b[:10], "Failed"), (a[:10], "Available")]), what="B failed"
    )
    st = await status(cluster)
    cond = condition({"status": st}, "RolledBack")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "AutoRollbackDisabled")
    await asyncio.sleep(1.5)
    assert config_hash(await deployment(cluster)) == b


@pytest.mark.usefixtures("operator")
async def test_a_failed_hash_is_not_tried_again_until_the_inputs_change(
    cluster: Cluster, settle: float
) -> None:
    a, b = await good_then_new(cluster)
    await deadline_exceeded(cluster)
    await eventually(lambda: runs(cluster, a), what="rolled back to A")
    await available(cluster)
    await eventually(lambda: has_history(cluster, [(a[:10], "Available"), (b[:10], "RolledBack")]))
    # Changes that do not change the render: B's hash again; it is not rolled out.
    await cluster.patch("LLMProvider", "ai", "vllm", {"metadata": {"labels": {"touched": "yes"}}})
    await cluster.patch("LLMGateway", "ai", "gw", {"metadata": {"annotations": {"note": "x"}}})
    await asyncio.sleep(10 * settle)
    assert config_hash(await deployment(cluster)) == a
    # New inputs, a new hash: tried.
    await cluster.apply(provider("vllm", ["llama", "qwen", "mistral"]))
    c = await rolled_to_new(cluster, a)
    assert c not in (a, b)
    await eventually(
        lambda: has_history(cluster, [(c[:10], "Progressing"), (a[:10], "Available"), (b[:10], "RolledBack")])
    )
    cond = condition({"status": await status(cluster)}, "RolledBack")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "NotRolledBack")


async def test_the_failed_hash_is_remembered_across_a_restart(cluster: Cluster, settle: float) -> None:
    loop = asyncio.get_running_loop()

    def start() -> tuple[threading.Thread, threading.Event]:
        stop, ready = threading.Event(), threading.Event()
        opts = options.Options(settle_seconds=settle, max_settle_seconds=3.0)
        thread = threading.Thread(
            target=lambda: asyncio.run(runner.operate(opts, stop_flag=stop, ready_flag=ready)), daemon=True
        )
        thread.start()
        ready.wait(15)
        return thread, stop

    thread, stop = await loop.run_in_executor(None, start)
    a, b = await good_then_new(cluster)
    await deadline_exceeded(cluster)
    await eventually(lambda: runs(cluster, a), what="rolled back to A")
    await eventually(lambda: has_history(cluster, [(a[:10], "Progressing"), (b[:10], "RolledBack")]))
    stop.set()
    await loop.run_in_executor(None, thread.join, 15)

    thread, stop = await loop.run_in_executor(None, start)
    try:
        await asyncio.sleep(10 * settle)
        assert config_hash(await deployment(cluster)) == a
        assert await history(cluster) == [(a[:10], "Progressing"), (b[:10], "RolledBack")]
    finally:
        stop.set()
        await loop.run_in_executor(None, thread.join, 15)


@pytest.mark.usefixtures("operator")
async def test_history_and_pruning_keep_the_rollback_target(cluster: Cluster) -> None:
    await cluster.apply(provider("vllm", ["m0"]))
    await cluster.apply(gateway(revisionHistoryLimit=2))
    a = config_hash(await eventually(lambda: deployment(cluster)))
    assert a is not None
    await available(cluster)
    await eventually(lambda: has_history(cluster, [(a[:10], "Available")]))
    # Four revisions that never become available, each superseding the last.
    latest = a
    for i in range(1, 5):
        await cluster.apply(provider("vllm", [f"m{j}" for j in range(i + 1)]))
        latest = await rolled_to_new(cluster, latest)
    names = {cm["metadata"]["name"] for cm in await cluster.config_maps("ai", "gw")}
    assert f"gw-config-{a[:10]}" in names  # the rollback target outlives the limit
    assert f"gw-config-{latest[:10]}" in names

    # The Deployment is written before the gateway's status in a pass: wait for the status.
    async def head_is_latest() -> list[tuple[str, str]] | None:
        got = await history(cluster)
        return got if got and got[0] == (latest[:10], "Progressing") else None

    rows = await eventually(head_is_latest, what="the latest revision at the head of status.history")
    assert (a[:10], "Available") in rows
    assert len(rows) <= 3
    # And the target is there when it is needed.
    await deadline_exceeded(cluster)
    await eventually(lambda: runs(cluster, a), what="rolled back to A past the history limit")
