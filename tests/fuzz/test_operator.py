"""Fuzzed objects applied to a running operator (the emulator applies no schema, so specs of
any shape reach it; only names stay valid, for the URLs).

The operator stays alive, says on each object's status whether it took it in (and why not),
and no ConfigMap it writes, old revisions included, holds an injected value or a model that no
valid provider declares; the current revision is the pipeline's render of the same objects.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from harness import Cluster, condition, eventually, gateway, provider
from hypothesis import given

from llmgw.core import estate, pipeline, revisions

from . import hostile, runs, safe

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator")]

OBJECTS = 20
KINDS = ("LLMProvider", "FallbackChain", "LLMGateway")


def draw(n: int) -> list[dict[str, Any]]:
    """n objects from the fuzz strategies, the same ones every run."""
    out: list[dict[str, Any]] = []

    @runs.the_same_inputs(n)
    @given(hostile.objects_mixed(json_only=True))
    def collect(raw: dict[str, Any]) -> None:
        out.append(copy.deepcopy(raw))

    collect()
    return out


@pytest.fixture(scope="module")
def fuzzed() -> list[dict[str, Any]]:
    """Drawn before the operator starts: its thread uses `random`, which hypothesis forbids
    while it draws."""
    return [admissible(i, raw) for i, raw in enumerate(draw(OBJECTS))]


def admissible(i: int, raw: dict[str, Any]) -> dict[str, Any]:
    """The object under a name and namespace an API path can hold; its spec as drawn."""
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    namespace = meta.get("namespace") if meta.get("namespace") in hostile.NAMESPACES else "default"
    labels = meta.get("labels")
    labels = {k: v for k, v in labels.items() if isinstance(v, str)} if isinstance(labels, dict) else {}
    return {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": raw["kind"] if raw.get("kind") in KINDS else "LLMProvider",
        "metadata": {"name": f"fz-{i}", "namespace": namespace, "labels": labels},
        "spec": raw.get("spec"),
    }


async def inputs(c: Cluster) -> list[dict[str, Any]]:
    out = []
    for kind in KINDS:
        for ns in hostile.NAMESPACES:
            out += await c.list(kind, ns)
    return out


async def all_statuses_written(c: Cluster) -> list[dict[str, Any]] | None:
    objs = await inputs(c)
    for obj in objs:
        accepted = condition(obj, "Accepted")
        if accepted is None or accepted.get("observedGeneration") != obj["metadata"].get("generation"):
            return None
    return objs


async def test_hostile_objects_never_reach_a_config_map(
    cluster: Cluster, fuzzed: list[dict[str, Any]]
) -> None:
    await cluster.apply(gateway("fz-gw", "default", namespaces={"from": "All"}))
    applied = fuzzed
    objs: list[dict[str, Any]] = []
    for start in range(0, OBJECTS, 5):  # in four batches: a revision (or none) after each
        for obj in applied[start : start + 5]:
            await cluster.apply(obj)
        objs = await eventually(
            lambda: all_statuses_written(cluster), timeout=30, what="a status on every object"
        )
    for obj in objs:
        accepted = condition(obj, "Accepted")
        assert accepted is not None
        assert accepted["message"] or accepted["status"] == "True", obj["metadata"]["name"]

    est = estate.build(objs)
    outcomes = {
        (o.resolution.gateway.metadata.namespace, o.resolution.gateway.metadata.name): o
        for o in (pipeline.run(est, gw) for gw in est.gateways)
    }
    config_maps = [
        cm
        for ns in hostile.NAMESPACES
        for cm in await cluster.list("ConfigMap", ns)
        if (cm["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "llmgw"
    ]
    assert config_maps, "no revision was written at all"
    for cm in config_maps:  # every revision, old ones too
        safe.assert_safe_config(yaml.safe_load(cm["data"]["config.yaml"]), est.providers)
    for (ns, name), outcome in outcomes.items():
        dep = await eventually(lambda n=ns, g=name: cluster.get("Deployment", n, g), what=f"{ns}/{name}")
        current = dep["spec"]["template"]["metadata"]["annotations"]["llmgateway.dev/config-hash"]
        if current == outcome.rendered.hash:
            cm = await cluster.get("ConfigMap", ns, revisions.name(name, outcome.rendered.hash))
            assert cm["data"]["config.yaml"] == outcome.rendered.text
            safe.assert_safe_render(est, outcome)
    invalid = sum(1 for o in objs if (condition(o, "Accepted") or {}).get("status") == "False")
    print(
        f"\nfuzz inputs tried (operator): {len(applied)} objects, {invalid} not accepted, "
        f"{len(config_maps)} ConfigMaps checked"
    )

    # Still alive and working: a plain edit after the storm is rendered.
    await cluster.apply(provider("fz-after", ["after-the-storm"], namespace="default"))

    async def served() -> bool:
        dep = await cluster.get("Deployment", "default", "fz-gw")
        h = dep["spec"]["template"]["metadata"]["annotations"]["llmgateway.dev/config-hash"]
        cm = await cluster.get("ConfigMap", "default", f"fz-gw-config-{h[:10]}")
        return bool(cm and "model_name: after-the-storm" in cm["data"]["config.yaml"])

    await eventually(served, timeout=15, what="the edit after the fuzz rendered")
