"""The operator loop: revisions, rollouts, quiet, selection, status."""

from __future__ import annotations

import asyncio

import pytest
from conftest import Cluster, chain, condition, eventually, gateway, provider

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator")]


async def deployment(c: Cluster, name: str = "gw", ns: str = "ai") -> dict | None:
    return await c.get("Deployment", ns, name)


def config_hash(dep: dict | None) -> str | None:
    if not dep:
        return None
    return dep["spec"]["template"]["metadata"]["annotations"].get("llmgateway.dev/config-hash")


async def test_first_render_creates_revision_deployment_service_and_key(cluster: Cluster) -> None:
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(gateway())
    dep = await eventually(lambda: deployment(cluster), what="Deployment ai/gw")
    cms = await cluster.config_maps("ai", "gw")
    assert len(cms) == 1
    cm = cms[0]
    assert cm["immutable"] is True
    assert cm["metadata"]["name"] == f"gw-config-{config_hash(dep)[:10]}"
    assert "model_name: llama" in cm["data"]["config.yaml"]
    volumes = dep["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": cm["metadata"]["name"]}} in volumes
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert dep["metadata"]["ownerReferences"][0]["kind"] == "LLMGateway"
    assert await cluster.get("Service", "ai", "gw") is not None
    assert await cluster.get("Secret", "ai", "gw-master-key") is not None
    gw = await eventually(
        lambda: _programmed(cluster), what="gateway Programmed"
    )
    assert gw["status"]["revision"] == config_hash(dep)[:10]
    assert gw["status"]["providers"] == 1


async def _programmed(c: Cluster) -> dict | None:
    gw = await c.get("LLMGateway", "ai", "gw")
    cond = condition(gw, "Programmed")
    return gw if cond and cond["status"] == "True" else None


async def test_edit_makes_new_revision_and_rolls(cluster: Cluster) -> None:
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(gateway())
    first = config_hash(await eventually(lambda: deployment(cluster)))
    await cluster.apply(provider("vllm", ["llama", "qwen"]))

    async def rolled() -> str | None:
        h = config_hash(await deployment(cluster))
        return h if h != first else None

    second = await eventually(rolled, what="a new revision")
    names = {cm["metadata"]["name"] for cm in await cluster.config_maps("ai", "gw")}
    assert names == {f"gw-config-{first[:10]}", f"gw-config-{second[:10]}"}


async def test_quiet_when_nothing_changes(cluster: Cluster, settle: float) -> None:
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(chain("c", "llama", ["qwen"]))
    await cluster.apply(gateway())
    await eventually(lambda: _programmed(cluster))
    await asyncio.sleep(5 * settle)
    before = len(cluster.writes())
    # Labels and annotations that change nothing the gateway serves.
    await cluster.patch("LLMProvider", "ai", "vllm", {"metadata": {"annotations": {"note": "x"}}})
    await cluster.patch("FallbackChain", "ai", "c", {"metadata": {"labels": {"team": "a"}}})
    await asyncio.sleep(10 * settle)
    assert cluster.writes()[before:] == []
