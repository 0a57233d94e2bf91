"""The operator loop: revisions, rollouts, quiet, selection, status."""

from __future__ import annotations

import asyncio

import pytest
from harness import Cluster, chain, condition, eventually, gateway, provider

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator")]


async def deployment(c: Cluster, name: str = "gw", ns: str = "ai") -> dict | None:
    return await c.get("Deployment", ns, name)


def config_hash(dep: dict | None) -> str | None:
    if not dep:
        return None
    return dep["spec"]["template"]["metadata"]["annotations"].get("llmgateway.dev/config-hash")


async def running_config(c: Cluster) -> str:
    """The config.yaml of the revision the Deployment runs; empty before there is one."""
    dep = await deployment(c)
    cm = dep and await c.get("ConfigMap", "ai", f"gw-config-{config_hash(dep)[:10]}")
    return str(cm["data"]["config.yaml"]) if cm else ""


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
    # A pass writes the Service after the Deployment: wait for it.
    await eventually(lambda: cluster.get("Service", "ai", "gw"), what="Service ai/gw")
    assert await cluster.get("Secret", "ai", "gw-master-key") is not None
    gw = await eventually(lambda: _programmed(cluster), what="gateway Programmed")
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


async def test_cycle_is_shown_on_chains_and_left_out_of_the_render(cluster: Cluster) -> None:
    await cluster.apply(provider("vllm", ["a", "b", "c"]))
    await cluster.apply(chain("ab", "a", ["b"]))
    await cluster.apply(chain("bc", "b", ["c"]))
    await cluster.apply(chain("ca", "c", ["a"]))
    await cluster.apply(chain("ok", "a", ["c"], trigger="contextWindow"))
    await cluster.apply(gateway())

    async def cyclic(name: str) -> dict | None:
        cond = condition(await cluster.get("FallbackChain", "ai", name), "Accepted")
        return cond if cond and cond["reason"] == "FallbackCycle" else None

    for name, path in (("ab", "a -> b -> c -> a"), ("bc", "b -> c -> a -> b"), ("ca", "c -> a -> b -> c")):
        cond = await eventually(lambda n=name: cyclic(n), what=f"chain {name} FallbackCycle")
        assert cond["status"] == "False"
        assert path in cond["message"]

    # "ok" may be applied after the pass that found the cycle: wait for its own pass.
    async def accepted_ok() -> dict | None:
        got = await cluster.get("FallbackChain", "ai", "ok")
        return got if condition(got, "Accepted") else None

    ok = await eventually(accepted_ok, what="chain ok Accepted")
    assert condition(ok, "Accepted")["status"] == "True"
    assert ok["status"]["effectiveOrder"] == ["a", "c"]
    gw = await eventually(lambda: _programmed(cluster))

    async def with_ok() -> str | None:
        text = await running_config(cluster)
        return text if "context_window_fallbacks" in text else None

    config = await eventually(with_ok, what="the revision with chain ok")
    assert "\n  fallbacks:" not in config
    assert {e["name"] for e in gw["status"]["excluded"]} == {"ab", "bc", "ca"}


async def test_unknown_fallback_is_dropped_and_named(cluster: Cluster) -> None:
    await cluster.apply(provider("vllm", ["a", "b"]))
    await cluster.apply(chain("c", "a", ["gpt-9", "b"]))
    await cluster.apply(gateway())

    async def accepted() -> dict | None:
        obj = await cluster.get("FallbackChain", "ai", "c")
        cond = condition(obj, "Accepted")
        return obj if cond and cond["reason"] == "UnknownModel" else None

    obj = await eventually(accepted)
    cond = condition(obj, "Accepted")
    assert cond["status"] == "True"
    assert "'gpt-9'" in cond["message"]
    assert cond["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["effectiveOrder"] == ["a", "b"]


async def test_burst_of_60_providers_settles_into_few_rollouts(cluster: Cluster) -> None:
    await cluster.apply(provider("base", ["m-base"]))
    await cluster.apply(gateway())
    await eventually(lambda: _programmed(cluster))
    before = [w for w in cluster.writes() if w[:2] == ("update", "deployments")]
    await asyncio.gather(*(cluster.apply(provider(f"p{i}", [f"m{i}"])) for i in range(60)))

    async def all_served() -> dict | None:
        gw = await cluster.get("LLMGateway", "ai", "gw")
        return gw if (gw.get("status") or {}).get("providers") == 61 else None

    await eventually(all_served, timeout=20, what="all 61 providers served")
    dep = await cluster.get("Deployment", "ai", "gw")
    config = (await cluster.get("ConfigMap", "ai", f"gw-config-{config_hash(dep)[:10]}"))["data"][
        "config.yaml"
    ]
    assert all(f"model_name: m{i}\n" in config for i in range(60))
    rollouts = [w for w in cluster.writes() if w[:2] == ("update", "deployments")]
    assert 1 <= len(rollouts) - len(before) <= 3


async def test_deleting_a_provider_re_renders(cluster: Cluster) -> None:
    await cluster.apply(provider("one", ["a"]))
    await cluster.apply(provider("two", ["b"]))
    await cluster.apply(gateway())
    first = config_hash(await eventually(lambda: deployment(cluster)))
    await cluster.delete("LLMProvider", "ai", "two")

    async def rolled() -> str | None:
        h = config_hash(await deployment(cluster))
        return h if h != first else None

    h = await eventually(rolled)
    config = (await cluster.get("ConfigMap", "ai", f"gw-config-{h[:10]}"))["data"]["config.yaml"]
    assert "model_name: a" in config
    assert "model_name: b" not in config


async def test_pruning_keeps_revision_history_limit(cluster: Cluster) -> None:
    await cluster.apply(gateway(revisionHistoryLimit=3))
    for i in range(6):
        await cluster.apply(provider("p", [f"m{j}" for j in range(i + 1)]))

        async def has(n: int = i) -> bool:
            return f"model_name: m{n}\n" in await running_config(cluster)

        await eventually(has, what=f"revision with m{i}")
    cms = await eventually(lambda: _exactly(cluster, 3), what="three ConfigMaps left")
    current = config_hash(await deployment(cluster))[:10]
    assert f"gw-config-{current}" in {cm["metadata"]["name"] for cm in cms}


async def _exactly(c: Cluster, n: int) -> list | None:
    cms = await c.config_maps("ai", "gw")
    return cms if len(cms) == n else None


async def test_invalid_gateway_spec_leaves_the_running_gateway_alone(cluster: Cluster) -> None:
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(gateway())
    first = config_hash(await eventually(lambda: deployment(cluster)))
    await eventually(lambda: _programmed(cluster))
    await cluster.patch("LLMGateway", "ai", "gw", {"spec": {"routerSettings": {"fallbacks": []}}})

    async def refused() -> dict | None:
        cond = condition(await cluster.get("LLMGateway", "ai", "gw"), "Accepted")
        return cond if cond and cond["status"] == "False" else None

    cond = await eventually(refused)
    assert cond["reason"] == "InvalidSpec"
    assert "spec.routerSettings" in cond["message"]
    assert "'fallbacks' is owned by the operator" in cond["message"]
    assert config_hash(await deployment(cluster)) == first


async def test_gateway_ready_follows_the_deployment(cluster: Cluster) -> None:
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(gateway(replicas=2))
    await eventually(lambda: deployment(cluster))
    gw = await cluster.get("LLMGateway", "ai", "gw")
    # No Deployment controller here: the test writes what it would.
    await cluster.patch(
        "Deployment",
        "ai",
        "gw",
        {
            "status": {
                "observedGeneration": (await deployment(cluster))["metadata"]["generation"],
                "replicas": 2,
                "readyReplicas": 2,
                "updatedReplicas": 2,
                "availableReplicas": 2,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}],
            }
        },
        sub="/status",
    )

    async def ready() -> dict | None:
        cond = condition(await cluster.get("LLMGateway", "ai", "gw"), "Ready")
        return cond if cond and cond["status"] == "True" else None

    cond = await eventually(ready)
    assert cond["message"] == "2/2 replicas ready, 2/2 updated"
    assert gw is not None


async def test_selection_by_labels_and_namespaces(cluster: Cluster) -> None:
    await cluster.apply(gateway(selector={"matchLabels": {"tier": "gpu"}}, namespaces={"from": "All"}))
    await cluster.apply(
        {
            **provider("in-team", ["a"], namespace="team-a"),
            "metadata": {"name": "in-team", "namespace": "team-a", "labels": {"tier": "gpu"}},
        }
    )
    await cluster.apply(provider("unlabelled", ["b"]))

    async def served(n: int) -> dict | None:
        gw = await cluster.get("LLMGateway", "ai", "gw")
        return gw if (gw.get("status") or {}).get("providers") == n else None

    await eventually(lambda: served(1), what="one provider served")
    other = await eventually(
        lambda: _reason(cluster, "LLMProvider", "ai", "unlabelled", "NotSelected"), what="NotSelected"
    )
    assert condition(other, "Accepted")["status"] == "False"
    # Relabelling moves it in.
    await cluster.patch("LLMProvider", "ai", "unlabelled", {"metadata": {"labels": {"tier": "gpu"}}})
    await eventually(lambda: served(2), what="two providers served")

    async def serving() -> dict | None:
        obj = await cluster.get("LLMProvider", "ai", "unlabelled")
        return obj if (obj.get("status") or {}).get("gateways") == ["ai/gw"] else None

    obj = await eventually(serving, what="status.gateways of the relabelled provider")
    assert condition(obj, "Accepted")["status"] == "True"


async def _reason(c: Cluster, kind: str, ns: str, name: str, reason: str) -> dict | None:
    obj = await c.get(kind, ns, name)
    cond = condition(obj, "Accepted")
    return obj if cond and cond["reason"] == reason else None


async def test_namespace_selector_follows_namespace_labels(cluster: Cluster) -> None:
    await cluster.apply(gateway(namespaces={"from": "Selector", "selector": {"matchLabels": {"llm": "yes"}}}))
    await cluster.apply(provider("p", ["a"], namespace="team-b"))
    await eventually(lambda: _reason(cluster, "LLMProvider", "team-b", "p", "NotSelected"))
    await cluster.patch("Namespace", "", "team-b", {"metadata": {"labels": {"llm": "yes"}}})
    await eventually(lambda: _reason(cluster, "LLMProvider", "team-b", "p", "Accepted"), what="accepted")


async def test_ten_seconds_of_quiet_write_nothing(cluster: Cluster) -> None:
    await cluster.apply(provider("vllm", ["llama", "qwen"]))
    await cluster.apply(chain("c", "llama", ["qwen"]))
    await cluster.apply(gateway())
    await eventually(lambda: _programmed(cluster))
    await asyncio.sleep(1)
    before = len(cluster.writes())
    await asyncio.sleep(10)
    assert cluster.writes()[before:] == []


async def test_a_gateway_status_is_written_after_those_of_what_it_serves(cluster: Cluster) -> None:
    """Whoever sees the gateway say what it serves sees each provider and chain say so too."""
    await cluster.apply(provider("vllm", ["llama", "qwen"]))
    await cluster.apply(chain("c", "llama", ["qwen"]))
    await cluster.apply(gateway())
    await eventually(lambda: _programmed(cluster))
    statuses = [w[1] for w in cluster.writes() if w[1].endswith("/status")]
    first_gateway = statuses.index("llmgateways/status")
    assert {"llmproviders/status", "fallbackchains/status"} <= set(statuses[:first_gateway])
