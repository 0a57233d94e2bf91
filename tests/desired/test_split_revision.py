"""A split revision as the API server sees it: every shard a valid ConfigMap, the Deployment's
config folder a valid projected volume of them all, and the proxy's args unchanged."""

from __future__ import annotations

import pytest

from llmgw.core import desired, pods, revisions


@pytest.fixture
def split(built, monkeypatch):
    monkeypatch.setattr(revisions, "CONFIGMAP_LIMIT", 4096)
    provider = {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMProvider",
        "metadata": {"name": "p", "namespace": "ai"},
        "spec": {
            "type": "vllm",
            "endpoint": {"url": "http://vllm:8000"},
            "models": [{"name": f"m{i:03d}"} for i in range(60)],
        },
    }
    gateway = {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMGateway",
        "metadata": {"name": "gw", "namespace": "ai", "uid": "u-1", "generation": 1},
        "spec": {},
    }
    return built(gateway, provider)


def test_every_config_map_of_a_split_revision_is_valid(split, schema_valid):
    gw, rendered = split
    bodies = desired.config_maps(gw, rendered, ["LLMGateway ai/gw@1"], 1)
    assert len(bodies) > 2
    for body in bodies:
        schema_valid(body)


def test_the_deployment_mounts_a_split_revision_in_one_folder(split, schema_valid):
    gw, rendered = split
    *shards, own = desired.config_maps(gw, rendered, ["LLMGateway ai/gw@1"], 1)
    body = desired.deployment(gw, rendered, len(shards))
    schema_valid(body)
    spec = body["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "config"]
    sources = [s["configMap"]["name"] for s in volume["projected"]["sources"]]
    assert sources == [own["metadata"]["name"], *(s["metadata"]["name"] for s in shards)]
    (container,) = spec["containers"]
    assert container["args"][:2] == ["--config", f"{pods.CONFIG_DIR}/{revisions.CONFIG_KEY}"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert mount["mountPath"] == pods.CONFIG_DIR
    # No two ConfigMaps project the same file into the folder.
    files = [k for b in (own, *shards) for k in b["data"]]
    assert len(files) == len(set(files))
