"""Revisions larger than one ConfigMap, and revisions the API server refuses, against the API server.

The emulator here adds what a real API server does with ConfigMaps that kmock does not: it
refuses one whose data is over the size limit (`ValidateConfigMap`) or whose annotations are
over 256 KiB (`ValidateAnnotationsSize`) with 422 and the API server's kind of message, and,
where a test asks, any ConfigMap it names. The limit is lowered (to a few dozen models a
ConfigMap) both in the operator (`revisions.CONFIGMAP_LIMIT`, read when used; the operator runs
in this process) and in the emulator, so a split revision takes 60 models, not 4,000. Every
Deployment write is checked, as the emulator receives it, for naming only ConfigMaps that exist.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import kube_emulator as apiserver
import pytest
from harness import Cluster, _kubeconfig, condition, eventually, gateway, provider
from kmock._internal import enums
from kmock._internal import k8s as kk8s

from llmgw.core import estate, pipeline, render, revisions

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator")]

NS, GW = "ai", "gw"
LIMIT = 4096


class Validating(apiserver.Emulator):  # type: ignore[misc]
    """The emulator, with the API server's validation of ConfigMap sizes and refusals on demand."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.limit = 1024 * 1024
        self.refuse: Callable[[dict[str, Any]], tuple[int, str] | None] = lambda body: None
        self.refused: list[tuple[int, str]] = []  # (status, ConfigMap name) of each refused create
        self.dangling: list[str] = []  # ConfigMaps a Deployment write named while they did not exist

    def _exists(self, plural: str, namespace: str, name: str) -> bool:
        return any(
            r.plural == plural and ns == namespace and n == name and not obj.deleted
            for (r, ns, n), obj in list(self.objects.items())
        )

    def _invalid(self, body: dict[str, Any]) -> tuple[int, str] | None:
        name = body["metadata"]["name"]
        if revisions.data_size(body) > self.limit:
            return 422, f'ConfigMap "{name}" is invalid: []: Too long: must have at most {self.limit} bytes'
        if revisions.annotations_size(body["metadata"].get("annotations") or {}) > 256 * 1024:
            return (
                422,
                f'ConfigMap "{name}" is invalid: metadata.annotations: Too long: '
                "must have at most 262144 bytes",
            )
        return self.refuse(body)

    async def _handle_recorded(self, request: Any) -> Any:
        res = request.resource
        body = request.data if isinstance(request.data, dict) else {}
        if res is not None and res.plural == "configmaps" and request.action == enums.action.CREATE:
            answer = self._invalid(body)
            if answer is not None:
                self.refused.append((answer[0], body["metadata"]["name"]))
                raise kk8s.KubernetesError(status=answer[0], reason="Invalid", message=answer[1])
        if res is not None and res.plural == "deployments" and request.action != enums.action.DELETE:
            for volume in (((body.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
                "volumes"
            ) or ():
                sources = (
                    [volume]
                    if "configMap" in volume
                    else (volume.get("projected") or {}).get("sources") or ()
                )
                for source in sources:
                    name = (source.get("configMap") or {}).get("name")
                    if name and not self._exists("configmaps", request.namespace, name):
                        self.dangling.append(name)
        return await super()._handle_recorded(request)


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    """As tests/operator/conftest.py's, with the `Validating` emulator."""
    if os.environ.get("LLMGW_TEST_KUBECONFIG"):
        pytest.skip("lowers the emulated API server's limit and reads its log")
    async with Validating() as emulator, kmock.Server(emulator) as server:
        apiserver.register(emulator)
        url = str(server.url)
        monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, url.rstrip("/"))))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        c = Cluster(url, emulator)
        await c._json(
            "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
        )
        try:
            yield c
        finally:
            await c.session.close()


@pytest.fixture
def emu(cluster: Cluster) -> Validating:
    assert isinstance(cluster.emulator, Validating)
    return cluster.emulator


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch, emu: Validating) -> None:
    """A ConfigMap holds LIMIT bytes, in the operator and in the API server."""
    monkeypatch.setattr(revisions, "CONFIGMAP_LIMIT", LIMIT)
    emu.limit = LIMIT


def models(tag: str, n: int = 60) -> list[str]:
    return [f"{tag}-model-{i:03d}" for i in range(n)]


async def expected(c: Cluster) -> render.Rendered:
    raws = [*await c.list("LLMProvider", NS), *await c.list("LLMGateway", NS)]
    est = estate.build(raws)
    (gw,) = est.gateways
    return pipeline.run(est, gw).rendered


def config_volume(dep: dict[str, Any] | None) -> dict[str, Any]:
    (volume,) = [
        v
        for v in ((dep or {}).get("spec") or {}).get("template", {}).get("spec", {}).get("volumes", [])
        if v["name"] == "config"
    ] or [{}]
    return dict(volume)


def mounted(dep: dict[str, Any] | None) -> list[str]:
    volume = config_volume(dep)
    if "configMap" in volume:
        return [volume["configMap"]["name"]]
    return [s["configMap"]["name"] for s in (volume.get("projected") or {}).get("sources") or ()]


async def serving(c: Cluster, want: render.Rendered) -> dict[str, Any] | None:
    """The Deployment, once it runs `want` and the gateway says it is programmed."""
    dep = await c.get("Deployment", NS, GW)
    gw = await c.get("LLMGateway", NS, GW)
    programmed = condition(gw, "Programmed")
    if not dep or dep["spec"]["template"]["metadata"]["annotations"].get(revisions.CONFIG_HASH) != want.hash:
        return None
    return dep if programmed and programmed["status"] == "True" else None


async def available(c: Cluster) -> None:
    """What the Deployment controller writes once every replica of the template is available;
    returns once the gateway's history records the revision as available."""
    await _available(c)
    dep = await c.get("Deployment", NS, GW)
    revision = revisions.template_revision(dep)

    async def recorded() -> bool:
        gw = await c.get("LLMGateway", NS, GW)
        return {"revision": revision, "outcome": "Available"}.items() <= next(
            iter((gw.get("status") or {}).get("history") or [{}])
        ).items()

    await eventually(recorded, timeout=10, what=f"revision {revision} recorded as available")


async def _available(c: Cluster) -> None:
    dep = await c.get("Deployment", NS, GW)
    assert dep is not None
    n = dep["spec"]["replicas"]
    conds = [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
    ]
    status = {
        "observedGeneration": dep["metadata"]["generation"],
        **dict.fromkeys(("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"), n),
        "conditions": conds,
    }
    await c.patch("Deployment", NS, GW, {"status": status}, sub="/status")


async def deadline_exceeded(c: Cluster) -> None:
    dep = await c.get("Deployment", NS, GW)
    assert dep is not None
    progressing = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    status = {
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": 4,
        "updatedReplicas": 1,
        "availableReplicas": 3,
        "conditions": [{"type": "Available", "status": "True"}, {**progressing, "message": "timed out"}],
    }
    await c.patch("Deployment", NS, GW, {"status": status}, sub="/status")


@pytest.mark.usefixtures("small")
async def test_a_large_revision_is_stored_in_shards_before_the_deployment_mounts_them(
    cluster: Cluster, emu: Validating
) -> None:
    await cluster.apply(gateway(revisionHistoryLimit=2, replicas=3))
    await cluster.apply(provider("vllm", models("a")))
    want = await expected(cluster)
    assert len(want.text.encode()) > 3 * LIMIT
    dep = await eventually(lambda: serving(cluster, want), timeout=15, what="the split revision served")

    names = mounted(dep)
    assert len(names) >= 4
    assert names == list(revisions.names(GW, want.hash, len(names) - 1))
    assert "projected" in config_volume(dep)
    stored = {cm["metadata"]["name"]: cm for cm in await cluster.config_maps(NS, GW)}
    assert set(stored) == set(names)
    for cm in stored.values():
        assert revisions.data_size(cm) <= LIMIT
    # The proxy's folder: config.yaml includes every shard's file, and they hold the whole render.
    own = stored[names[0]]
    assert own["metadata"]["annotations"][revisions.SHARDS] == str(len(names) - 1)
    files = {k: v for cm in stored.values() for k, v in cm["data"].items()}
    assert all(f"- {revisions.shard_key(i)}\n" in files["config.yaml"] for i in range(1, len(names)))
    # Written in order: every shard (they go at once, in any order) before the ConfigMap that
    # names them, that before the Deployment.
    creates = [w[3] for w in emu.writes if w[:2] == ("create", "configmaps")]
    assert sorted(creates[:-1]) == sorted(names[1:])
    assert creates[-1] == names[0]
    first_deployment = next(i for i, w in enumerate(emu.writes) if w[1] == "deployments")
    last_config_map = max(i for i, w in enumerate(emu.writes) if w[1] == "configmaps")
    assert last_config_map < first_deployment
    assert emu.refused == []
    assert emu.dangling == []


@pytest.mark.usefixtures("small")
async def test_split_revisions_are_pruned_whole_and_rolled_back_to_whole(
    cluster: Cluster, emu: Validating
) -> None:
    await cluster.apply(gateway(revisionHistoryLimit=2, replicas=3))
    await cluster.apply(provider("vllm", models("a")))
    a = await expected(cluster)
    await eventually(lambda: serving(cluster, a), timeout=15, what="revision A")
    await available(cluster)
    a_names = revisions.names(GW, a.hash, len(mounted(await cluster.get("Deployment", NS, GW))) - 1)

    async def only(*parts: tuple[render.Rendered, int]) -> set[str] | None:
        want = {n for r, shards in parts for n in revisions.names(GW, r.hash, shards)}
        have = {cm["metadata"]["name"] for cm in await cluster.config_maps(NS, GW)}
        return have if have == want else None

    # B is small (one ConfigMap); C is split again. With a limit of 2, A goes with all its shards.
    await cluster.apply(provider("vllm", ["b"]))
    b = await expected(cluster)
    await eventually(lambda: serving(cluster, b), timeout=15, what="revision B")
    await available(cluster)
    assert mounted(await cluster.get("Deployment", NS, GW)) == [revisions.name(GW, b.hash)]
    await cluster.apply(provider("vllm", models("c", 50)))
    c = await expected(cluster)
    dep = await eventually(lambda: serving(cluster, c), timeout=15, what="revision C")
    c_shards = len(mounted(dep)) - 1
    assert c_shards >= 3
    await eventually(lambda: only((b, 0), (c, c_shards)), timeout=10, what="A pruned with its shards")
    deletes = [w[3] for w in emu.writes if w[:2] == ("delete", "configmaps")]
    assert deletes == list(a_names)  # its own ConfigMap first: no shard outlives it as a revision

    # C fails: the Deployment goes back to B, the last revision that became available.
    await deadline_exceeded(cluster)
    await eventually(lambda: mounted_now(cluster, [revisions.name(GW, b.hash)]), timeout=15, what="back on B")

    # A split revision as the rollback target: E (split) becomes available, F fails.
    await cluster.apply(provider("vllm", models("e", 45)))
    e = await expected(cluster)
    dep = await eventually(lambda: serving(cluster, e), timeout=15, what="revision E")
    e_names = mounted(dep)
    assert len(e_names) >= 3
    await available(cluster)
    await cluster.apply(provider("vllm", ["f"]))
    f = await expected(cluster)
    await eventually(lambda: serving(cluster, f), timeout=15, what="revision F")
    await deadline_exceeded(cluster)
    back = await eventually(
        lambda: mounted_now(cluster, e_names), timeout=15, what="back on E, all its shards"
    )
    assert back["spec"]["template"]["metadata"]["annotations"][revisions.CONFIG_HASH] == e.hash
    assert emu.dangling == []


async def mounted_now(c: Cluster, names: list[str]) -> dict[str, Any] | None:
    dep = await c.get("Deployment", NS, GW)
    return dep if mounted(dep) == names else None


@pytest.mark.parametrize("status", [422, 413])
async def test_a_refused_revision_says_why_and_is_not_tried_again_until_the_inputs_change(
    cluster: Cluster, emu: Validating, settle: float, status: int
) -> None:
    message = 'ConfigMap "x" is invalid: metadata.annotations: Invalid value: "refused-model": not today'
    emu.refuse = lambda body: (status, message) if "refused-model" in str(body.get("data")) else None
    await cluster.apply(gateway())
    await cluster.apply(provider("vllm", ["m0"]))
    first = await expected(cluster)
    await eventually(lambda: serving(cluster, first), timeout=15, what="the first revision")

    await cluster.apply(provider("vllm", ["m0", "refused-model"]))
    refused = await expected(cluster)

    async def rejected() -> dict[str, Any] | None:
        programmed = condition(await cluster.get("LLMGateway", NS, GW), "Programmed")
        return programmed if programmed and programmed["reason"] == "ConfigRejected" else None

    programmed = await eventually(rejected, timeout=15, what="Programmed=False ConfigRejected")
    assert programmed["status"] == "False"
    assert message in programmed["message"]
    assert f"HTTP {status}" in programmed["message"]
    assert revisions.name(GW, refused.hash) in programmed["message"]
    assert emu.refused == [(status, revisions.name(GW, refused.hash))]

    # Passes that change nothing the revision is made of (a label, a status) try nothing again,
    # and no backoff retries either (they would come after 1 s, 2 s, 4 s).
    for i in range(3):
        await cluster.patch("LLMProvider", NS, "vllm", {"metadata": {"labels": {"pass": str(i)}}})
        await asyncio.sleep(4 * settle)
    await asyncio.sleep(3.5)
    assert emu.refused == [(status, revisions.name(GW, refused.hash))]
    dep = await cluster.get("Deployment", NS, GW)
    assert dep["spec"]["template"]["metadata"]["annotations"][revisions.CONFIG_HASH] == first.hash
    assert (await rejected()) is not None

    # New inputs: tried at once, and served.
    await cluster.apply(provider("vllm", ["m0", "m1"]))
    fixed = await expected(cluster)
    await eventually(lambda: serving(cluster, fixed), timeout=15, what="the revision after the fix")
    assert len(emu.refused) == 1
    assert emu.dangling == []


@pytest.mark.usefixtures("small")
async def test_a_revision_that_cannot_be_split_small_enough_is_not_sent(
    cluster: Cluster, emu: Validating
) -> None:
    """One model's entry over the limit: the operator says so and sends nothing the API server
    would refuse (counted the API server's way)."""
    await cluster.apply(gateway())
    await cluster.apply(provider("vllm", ["m0"]))
    first = await expected(cluster)
    await eventually(lambda: serving(cluster, first), timeout=15, what="the first revision")
    huge = provider("vllm", ["m0", "m1"])
    huge["spec"]["models"][1]["params"] = {"extra_headers": {"x-note": "x" * LIMIT}}
    await cluster.apply(huge)

    async def too_large() -> dict[str, Any] | None:
        programmed = condition(await cluster.get("LLMGateway", NS, GW), "Programmed")
        return programmed if programmed and programmed["reason"] == "ConfigTooLarge" else None

    programmed = await eventually(too_large, timeout=15, what="Programmed=False ConfigTooLarge")
    assert f"at most {LIMIT}" in programmed["message"]
    assert emu.refused == []
