"""Argo CD: the Lua health checks, run with Lua 5.1 (as Argo CD's gopher-lua) on status fixtures.

Argo CD's convention: the script sees the object as the global `obj` and returns a table
with `status` (Healthy, Progressing, Degraded, Suspended) and `message`.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from lupa import lua51

from llmgw.core import statuses

from .conftest import ROOT

ARGOCD = ROOT / "config" / "argocd"
KINDS = ("LLMGateway", "LLMProvider", "FallbackChain")


def script(kind: str) -> str:
    return (ARGOCD / "health" / f"llmgateway.dev_{kind}.lua").read_text()


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    hs = lua.execute(script(kind))
    return str(hs["status"]), str(hs["message"] or "")


def cond(type_: str, status: str, reason: str = "", message: str = "", gen: int = 2) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason or type_,
        "message": message,
        "observedGeneration": gen,
    }


def obj(
    kind: str, *conditions: dict[str, Any], generation: int = 2, observed: int | None = 2, **status: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ai", "generation": generation},
    }
    if observed is not None or conditions or status:
        body["status"] = {"conditions": list(conditions), **status}
        if observed is not None:
            body["status"]["observedGeneration"] = observed
    return body


GOOD_GW = (
    cond(statuses.ACCEPTED, "True", message="the gateway's spec is valid"),
    cond(statuses.PROGRAMMED, "True", message="revision abc is rolled out"),
    cond(statuses.READY, "True", message="2/2 replicas ready, 2/2 updated"),
)


@pytest.mark.parametrize(
    ("kind", "body", "want", "says"),
    [
        # LLMGateway
        ("LLMGateway", obj("LLMGateway", *GOOD_GW, revision="5d1c0e2a9b"), "Healthy", "2/2 replicas ready"),
        ("LLMGateway", obj("LLMGateway", observed=None), "Progressing", "observe"),
        ("LLMGateway", obj("LLMGateway", *GOOD_GW, observed=1), "Progressing", "generation 2"),
        (
            "LLMGateway",
            obj("LLMGateway", GOOD_GW[0], cond("Programmed", "False", "Pending", "being applied")),
            "Progressing",
            "being applied",
        ),
        (
            "LLMGateway",
            obj("LLMGateway", GOOD_GW[0], GOOD_GW[1], cond("Ready", "False", "Progressing", "1/2 ready")),
            "Progressing",
            "1/2 ready",
        ),
        (
            "LLMGateway",
            obj("LLMGateway", cond("Accepted", "False", "InvalidSpec", "spec.replicas: must be >= 0")),
            "Degraded",
            "spec.replicas",
        ),
        (
            "LLMGateway",
            obj("LLMGateway", GOOD_GW[0], cond("Programmed", "False", "ConfigTooLarge", "over 1 MiB")),
            "Degraded",
            "ConfigTooLarge",
        ),
        (
            "LLMGateway",
            obj("LLMGateway", *GOOD_GW, cond("RolledBack", "True", "RolledBack", "back to 1a2b3c")),
            "Degraded",
            "back to 1a2b3c",
        ),
        (
            "LLMGateway",
            obj(
                "LLMGateway",
                GOOD_GW[0],
                GOOD_GW[1],
                cond("Ready", "False", "ProgressDeadlineExceeded", "ReplicaSet has timed out"),
            ),
            "Degraded",
            "timed out",
        ),
        (
            "LLMGateway",
            obj("LLMGateway", *GOOD_GW, cond("CacheAvailable", "False", "RedisUnreachable", "no Redis")),
            "Degraded",
            "no Redis",
        ),
        (
            "LLMGateway",
            obj("LLMGateway", GOOD_GW[0], GOOD_GW[1], cond("Ready", "False", "ScaledToZero", "0")),
            "Healthy",
            "",
        ),
        (
            "LLMGateway",
            obj("LLMGateway", GOOD_GW[0], GOOD_GW[1], {**GOOD_GW[2], "observedGeneration": 1}),
            "Progressing",
            "replicas",
        ),
        # LLMProvider
        (
            "LLMProvider",
            obj("LLMProvider", cond("Accepted", "True", message="served by ai/main")),
            "Healthy",
            "served by ai/main",
        ),
        ("LLMProvider", obj("LLMProvider", observed=None), "Progressing", "observe"),
        (
            "LLMProvider",
            obj("LLMProvider", cond("Accepted", "True"), observed=1),
            "Progressing",
            "generation 2",
        ),
        (
            "LLMProvider",
            obj("LLMProvider", cond("Accepted", "False", "InvalidSpec", "spec.type: 'vllmm'")),
            "Degraded",
            "vllmm",
        ),
        (
            "LLMProvider",
            obj("LLMProvider", cond("Accepted", "True", "Disabled", "spec.enabled is false")),
            "Suspended",
            "spec.enabled",
        ),
        (
            "LLMProvider",
            obj(
                "LLMProvider",
                cond("Accepted", "True"),
                cond("BackendReady", "False", "NoReadyEndpoints", "no ready endpoints"),
            ),
            "Progressing",
            "no ready endpoints",
        ),
        (
            "LLMProvider",
            obj(
                "LLMProvider",
                cond("Accepted", "True"),
                cond("ResolvedRefs", "False", "ServiceNotFound", "Service gpu/vllm not found"),
            ),
            "Degraded",
            "not found",
        ),
        (
            "LLMProvider",
            obj(
                "LLMProvider",
                cond("Accepted", "True"),
                cond("ModelsAvailable", "False", "ModelsMissing", "qwen is not served"),
            ),
            "Degraded",
            "qwen",
        ),
        (
            "LLMProvider",
            obj(
                "LLMProvider",
                cond("Accepted", "True", message="served"),
                cond("BackendReady", "Unknown", "NotProbed", "not probed yet"),
            ),
            "Healthy",
            "served",
        ),
        # FallbackChain
        (
            "FallbackChain",
            obj(
                "FallbackChain",
                cond("Accepted", "True", message="served by ai/main"),
                effectiveOrder=["llama", "qwen", "gpt-4o-mini"],
            ),
            "Healthy",
            "llama -> qwen -> gpt-4o-mini",
        ),
        ("FallbackChain", obj("FallbackChain", observed=None), "Progressing", "observe"),
        (
            "FallbackChain",
            obj("FallbackChain", cond("Accepted", "True"), observed=1),
            "Progressing",
            "generation",
        ),
        (
            "FallbackChain",
            obj("FallbackChain", cond("Accepted", "False", "FallbackCycle", "a -> b -> a")),
            "Degraded",
            "a -> b -> a",
        ),
    ],
)
def test_health(kind: str, body: dict[str, Any], want: str, says: str) -> None:
    status, message = health(kind, body)
    assert (status, says in message) == (want, True), message


@pytest.mark.parametrize("kind", KINDS)
def test_every_outcome_is_argo_cds_vocabulary(kind: str) -> None:
    text = script(kind)
    for word in ('"Healthy"', '"Progressing"', '"Degraded"'):
        assert word in text


def test_argocd_cm_snippet_holds_the_scripts() -> None:
    cm = yaml.safe_load((ARGOCD / "argocd-cm-health.yaml").read_text())
    assert cm["kind"] == "ConfigMap"
    assert cm["metadata"]["name"] == "argocd-cm"
    assert cm["data"] == {f"resource.customizations.health.llmgateway.dev_{k}": script(k) for k in KINDS}


def test_application_waves_put_the_crds_before_the_objects() -> None:
    apps = {a["metadata"]["name"]: a for a in yaml.safe_load_all((ARGOCD / "application.yaml").read_text())}
    wave = {
        name: int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for name, a in apps.items()
    }
    crd_wave = int(
        apps["llmgw"]["spec"]["source"]["helm"]["valuesObject"]["crds"]["annotations"][
            "argocd.argoproj.io/sync-wave"
        ]
    )
    assert crd_wave < wave["llmgw"] < wave["llmgw-estate"]
    assert apps["llmgw"]["spec"]["source"]["path"] == "charts/llmgw"
    assert (ROOT / apps["llmgw-estate"]["spec"]["source"]["path"]).is_dir()
    assert "SkipDryRunOnMissingResource=true" in apps["llmgw-estate"]["spec"]["syncPolicy"]["syncOptions"]


def test_condition_types_are_the_operators() -> None:
    """The scripts read the condition types the operator writes."""
    for name in (
        "ACCEPTED",
        "PROGRAMMED",
        "READY",
        "RESOLVED_REFS",
        "BACKEND_READY",
        "MODELS_AVAILABLE",
        "CACHE_AVAILABLE",
    ):
        value = getattr(statuses, name)
        assert any(f'"{value}"' in script(k) for k in KINDS), value
