"""Backends on GPU nodes: Services, ready endpoints, discovery; readiness never rolls the gateway."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fake_backend import Fake
from harness import Cluster, condition, eventually, gateway, provider

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator")]


@pytest.fixture
def operator_options() -> dict[str, Any]:
    return {"probe_interval_seconds": 0.3, "probe_timeout_seconds": 1.0}


def service(name: str, namespace: str = "gpu", ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ports": ports or [{"name": "http", "port": 8000, "targetPort": 8000}]},
    }


def slice_(
    service_name: str, ready: list[bool], name: str | None = None, namespace: str = "gpu"
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name or f"{service_name}-abc",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [f"10.0.0.{i}"], "conditions": {"ready": r}} for i, r in enumerate(ready)
        ],
    }


async def cond(
    c: Cluster, name: str, type_: str, status: str, ns: str = "ai", reason: str | None = None
) -> dict[str, Any] | None:
    got = condition(await c.get("LLMProvider", ns, name), type_)
    if got and got["status"] == status and (reason is None or got["reason"] == reason):
        return got
    return None


async def current_config(c: Cluster) -> str:
    dep = await c.get("Deployment", "ai", "gw")
    h = dep["spec"]["template"]["metadata"]["annotations"]["llmgateway.dev/config-hash"]
    return str((await c.get("ConfigMap", "ai", f"gw-config-{h[:10]}"))["data"]["config.yaml"])


async def test_service_port_by_number_and_by_name(cluster: Cluster) -> None:
    await cluster.apply(service("vllm", ports=[{"name": "openai", "port": 8001}]))
    await cluster.apply(
        provider(
            "by-name", ["a"], endpoint={"service": {"name": "vllm", "namespace": "gpu", "port": "openai"}}
        )
    )
    await cluster.apply(
        provider("by-number", ["b"], endpoint={"service": {"name": "vllm", "namespace": "gpu", "port": 8001}})
    )
    await cluster.apply(gateway())
    for name in ("by-name", "by-number"):
        got = await eventually(
            lambda n=name: cond(cluster, n, "ResolvedRefs", "True"), what=f"{name} ResolvedRefs"
        )
        assert got["message"] == "Service gpu/vllm exists"
    config = await eventually(lambda: _with(cluster, "model_name: b"))
    assert config.count("api_base: http://vllm.gpu.svc.cluster.local:8001/v1") == 2


async def _with(c: Cluster, text: str) -> str | None:
    dep = await c.get("Deployment", "ai", "gw")
    if not dep:
        return None
    config = await current_config(c)
    return config if text in config and "model_name: a" in config else None


async def test_endpoint_readiness_is_status_only(cluster: Cluster) -> None:
    await cluster.apply(service("vllm"))
    await cluster.apply(
        provider("vllm", ["a"], endpoint={"service": {"name": "vllm", "namespace": "gpu", "port": 8000}})
    )
    await cluster.apply(gateway())
    got = await eventually(lambda: cond(cluster, "vllm", "BackendReady", "False"), what="not ready")
    assert got["reason"] == "NoReadyEndpoints"
    await eventually(lambda: cluster.get("Deployment", "ai", "gw"))
    await asyncio.sleep(1)
    revisions = [w for w in cluster.writes() if w[1] in ("configmaps", "deployments")]

    await cluster.apply(slice_("vllm", [True, True, False]))
    got = await eventually(lambda: cond(cluster, "vllm", "BackendReady", "True"), what="ready")
    assert got["message"] == "Service gpu/vllm has 2 ready endpoint(s)"
    await cluster.apply(slice_("vllm", [False, False, False]))
    await eventually(lambda: cond(cluster, "vllm", "BackendReady", "False"), what="not ready again")
    await asyncio.sleep(1)
    assert [w for w in cluster.writes() if w[1] in ("configmaps", "deployments")] == revisions


async def test_missing_service_and_missing_port_name(cluster: Cluster) -> None:
    await cluster.apply(service("vllm"))
    await cluster.apply(
        provider("ghost", ["a"], endpoint={"service": {"name": "nope", "namespace": "gpu", "port": 8000}})
    )
    await cluster.apply(
        provider("badport", ["b"], endpoint={"service": {"name": "vllm", "namespace": "gpu", "port": "grpc"}})
    )
    await cluster.apply(provider("fine", ["c"]))
    await cluster.apply(gateway())
    got = await eventually(lambda: cond(cluster, "ghost", "ResolvedRefs", "False"))
    assert got["reason"] == "ServiceNotFound"
    assert "Service gpu/nope does not exist" in got["message"]
    accepted = await eventually(lambda: _accepted(cluster, "badport", "False"))
    assert accepted["reason"] == "UnresolvedPort"
    assert "has no port named 'grpc' (named ports: http)" in accepted["message"]
    config = await eventually(lambda: _contains(cluster, "model_name: c"))
    assert "model_name: b" not in config


async def _accepted(c: Cluster, name: str, status: str) -> dict[str, Any] | None:
    return await cond(c, name, "Accepted", status)


async def _contains(c: Cluster, text: str) -> str | None:
    if not await c.get("Deployment", "ai", "gw"):
        return None
    config = await current_config(c)
    return config if text in config else None


async def test_discovery_names_missing_models_and_serves_discovered_ones(cluster: Cluster) -> None:
    async with Fake() as vllm, Fake() as ollama:
        vllm.models = ["meta-llama/Llama-3.1-8B-Instruct"]
        ollama.mode, ollama.models = "ollama", ["qwen2.5:7b", "llama3.2:3b"]
        declared = provider("vllm", [], endpoint={"url": vllm.url}, discovery={"enabled": True})
        declared["spec"]["models"] = [
            {"name": "llama", "backendModel": "meta-llama/Llama-3.1-8B-Instruct"},
            {"name": "mistral", "backendModel": "mistralai/Mistral-7B"},
        ]
        await cluster.apply(declared)
        await cluster.apply(
            provider("ollama", [], type="ollama", endpoint={"url": ollama.url}, discovery={"enabled": True})
        )
        await cluster.apply(gateway())
        got = await eventually(
            lambda: cond(cluster, "vllm", "ModelsAvailable", "False"), what="missing models"
        )
        assert got["reason"] == "ModelsMissing"
        assert "'mistralai/Mistral-7B'" in got["message"]
        config = await eventually(
            lambda: _contains(cluster, "model_name: qwen2.5:7b"), what="discovered models rendered"
        )
        assert "model_name: llama3.2:3b" in config
        assert "model: ollama_chat/qwen2.5:7b" in config

        # A pass writes statuses after the revision: wait for the provider's.
        async def discovered() -> dict[str, Any] | None:
            obj = await cluster.get("LLMProvider", "ai", "ollama")
            return obj if (obj.get("status") or {}).get("discoveredModels") else None

        obj = await eventually(discovered, what="status.discoveredModels")
        assert obj["status"]["discoveredModels"] == ["llama3.2:3b", "qwen2.5:7b"]
        assert condition(obj, "ModelsAvailable")["reason"] == "Discovered"

        # A change in what the backend serves re-renders; the same list again does not.
        ollama.models = ["qwen2.5:7b"]
        await eventually(
            lambda: _without(cluster, "model_name: llama3.2:3b"), what="re-render without llama3.2"
        )


async def _without(c: Cluster, text: str) -> str | None:
    config = await current_config(c)
    return config if text not in config else None


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("html", "answered text/html; charset=utf-8, not JSON"),
        ("garbage", "not JSON"),
        ("error", "answered HTTP 503"),
    ],
)
async def test_bad_backend_answers_are_named(cluster: Cluster, mode: str, words: str) -> None:
    async with Fake() as bad:
        bad.mode = mode
        await cluster.apply(provider("bad", ["a"], endpoint={"url": bad.url}, discovery={"enabled": True}))
        await cluster.apply(gateway())
        got = await eventually(
            lambda: cond(cluster, "bad", "ModelsAvailable", "Unknown", reason="ProbeFailed"),
            what="probe failed",
        )
        assert got["reason"] == "ProbeFailed"
        assert words in got["message"]
        assert "model_name: a" in await eventually(lambda: _contains(cluster, "model_name: a"))


async def test_hanging_backend_delays_no_one(cluster: Cluster) -> None:
    async with Fake() as hang:
        hang.mode = "hang"
        await cluster.apply(provider("hang", ["h"], endpoint={"url": hang.url}, discovery={"enabled": True}))
        await cluster.apply(provider("other", ["o1"]))
        await cluster.apply(gateway())
        await eventually(lambda: _contains(cluster, "model_name: o1"))
        started = time.monotonic()
        await cluster.apply(provider("other", ["o1", "o2"]))
        await eventually(lambda: _contains(cluster, "model_name: o2"), what="edit rolled")
        assert time.monotonic() - started < 3.0
        got = await eventually(
            lambda: cond(cluster, "hang", "ModelsAvailable", "Unknown", reason="ProbeFailed"),
            what="timeout named",
        )
        assert "timed out after 1 s" in got["message"]
