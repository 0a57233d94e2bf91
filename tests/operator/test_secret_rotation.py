"""Key rotation: with rolloutOnSecretChange, a changed Secret rolls the gateway once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from harness import Cluster, eventually, gateway, provider

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator")]


@pytest.fixture
def operator_options() -> dict[str, Any]:
    return {"watch_secret_versions": True}


def secret(name: str, value: str, namespace: str = "ai") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"api-key": value},
    }


async def config_hash(c: Cluster, name: str) -> str | None:
    dep = await c.get("Deployment", "ai", name)
    return dep and dep["spec"]["template"]["metadata"]["annotations"]["llmgateway.dev/config-hash"]


@pytest.mark.parametrize("opt_in", [True, False])
async def test_rotated_key_rolls_only_opted_in_gateways(cluster: Cluster, opt_in: bool) -> None:
    await cluster.apply(secret("openai-key", "one"))
    p = provider(
        "openai", ["gpt-4o"], type="openai", apiKeySecretRef={"name": "openai-key", "key": "api-key"}
    )
    del p["spec"]["endpoint"]
    await cluster.apply(p)
    await cluster.apply(gateway(rolloutOnSecretChange=opt_in))
    first = await eventually(lambda: config_hash(cluster, "gw"), what="first rollout")
    cm = await cluster.get("ConfigMap", "ai", f"gw-config-{first[:10]}")
    assert ("(resourceVersion " in cm["data"]["config.yaml"]) is opt_in
    assert "one" not in cm["data"]["config.yaml"]
    await asyncio.sleep(1)
    assert await config_hash(cluster, "gw") == first  # settled: no churn before the rotation
    before = len([w for w in cluster.writes() if w[:2] == ("update", "deployments")])
    await cluster.patch("Secret", "ai", "openai-key", {"stringData": {"api-key": "two"}})
    if opt_in:

        async def rolled() -> str | None:
            h = await config_hash(cluster, "gw")
            return h if h != first else None

        await eventually(rolled, what="a rollout for the rotated key")
        await asyncio.sleep(1.5)
        rollouts = [w for w in cluster.writes() if w[:2] == ("update", "deployments")]
        assert len(rollouts) - before == 1  # once, not again and again
    else:
        await asyncio.sleep(1.5)
        assert await config_hash(cluster, "gw") == first
