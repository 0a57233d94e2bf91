"""The spec-hash rule for every owned object: it changes when, and only when, what the operator
sets on that object changes, so each is written once and not again while nothing changes."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.core import desired

UID = "7b1c8a8e-0d3f-4f4a-9a53-2a3c2b9f0c11"
HPA = {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70}
ROUTE = {"parentRefs": [{"name": "public"}]}
EVERYTHING = {
    "autoscaling": HPA,
    "route": ROUTE,
    "metrics": {"enabled": True, "serviceMonitor": True},
}


def bodies(built, gateway, provider, meta=None, **spec: Any) -> dict[str, dict[str, Any] | None]:
    raw = gateway("gw", **spec)
    if meta is not None:
        raw = meta(raw)
    gw, rendered = built(raw, provider("p", "m"))
    return {
        "Deployment": desired.deployment(gw, rendered),
        "Service": desired.service(gw),
        **desired.companions(gw),
    }


def hashes(found: dict[str, dict[str, Any] | None]) -> dict[str, str | None]:
    return {
        k: None if v is None else v["metadata"]["annotations"][desired.SPEC_HASH] for k, v in found.items()
    }


@pytest.mark.parametrize(
    ("change", "kinds"),
    [
        pytest.param({"pod": {"nodeSelector": {"pool": "llm"}}}, {"Deployment"}, id="node-selector"),
        pytest.param({"pod": {"tolerations": [{"operator": "Exists"}]}}, {"Deployment"}, id="tolerations"),
        pytest.param({"pod": {"metadata": {"labels": {"team": "x"}}}}, {"Deployment"}, id="pod-labels"),
        pytest.param(
            {"pod": {"metadata": {"annotations": {"a": "b"}}}}, {"Deployment"}, id="pod-annotations"
        ),
        pytest.param({"pod": {"priorityClassName": "high"}}, {"Deployment"}, id="priority-class"),
        pytest.param({"pod": {"imagePullSecrets": [{"name": "regcred"}]}}, {"Deployment"}, id="pull-secrets"),
        pytest.param({"pod": {"serviceAccountName": "llm"}}, {"Deployment"}, id="service-account"),
        pytest.param({"pod": {"terminationGracePeriodSeconds": 120}}, {"Deployment"}, id="grace"),
        pytest.param({"env": [{"name": "A", "value": "1"}]}, {"Deployment"}, id="env"),
        pytest.param({"envFrom": [{"secretRef": {"name": "s"}}]}, {"Deployment"}, id="env-from"),
        pytest.param({"probes": {"readiness": {"periodSeconds": 7}}}, {"Deployment"}, id="probes"),
        pytest.param(
            {"database": {"urlSecretRef": {"name": "db", "key": "url"}}}, {"Deployment"}, id="database"
        ),
        pytest.param({"metrics": {"enabled": False}}, {"Deployment", "ServiceMonitor"}, id="metrics-off"),
        pytest.param({"metrics": {"enabled": True}}, {"ServiceMonitor"}, id="service-monitor-off"),
        pytest.param({"timeoutSeconds": 90}, {"Deployment"}, id="timeout"),
        pytest.param({"service": {"type": "NodePort"}}, {"Service"}, id="service-type"),
        pytest.param({"service": {"annotations": {"a": "b"}}}, {"Service"}, id="service-annotations"),
        pytest.param(
            {"autoscaling": None, "replicas": 3},
            {"Deployment", "HorizontalPodAutoscaler"},  # the default budget is the same
            id="autoscaling-to-replicas",
        ),
        pytest.param({"disruptionBudget": {"minAvailable": 1}}, {"PodDisruptionBudget"}, id="budget"),
        pytest.param({"autoscaling": {**HPA, "maxReplicas": 9}}, {"HorizontalPodAutoscaler"}, id="hpa-max"),
        pytest.param(
            {"autoscaling": {**HPA, "targetMemoryUtilizationPercentage": 80}},
            {"HorizontalPodAutoscaler"},
            id="hpa-memory",
        ),
        pytest.param({"route": {**ROUTE, "hostnames": ["a.example"]}}, {"HTTPRoute"}, id="route-hosts"),
        pytest.param(
            {"litellmSettings": {"require_auth_for_metrics_endpoint": True}},
            {"Deployment", "ServiceMonitor"},
            id="metrics-auth",
        ),
    ],
)
def test_each_setting_changes_the_hash_of_exactly_the_objects_it_reaches(
    change, kinds, built, gateway, provider
):
    base = hashes(bodies(built, gateway, provider, **EVERYTHING))
    spec = {k: v for k, v in {**EVERYTHING, **change}.items() if v is not None}
    changed = hashes(bodies(built, gateway, provider, **spec))
    moved = {k for k in base if base[k] != changed[k]}
    assert moved == kinds


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"generation": 9}, id="generation"),
        pytest.param({"uid": UID}, id="uid"),
        pytest.param({"resourceVersion": "123"}, id="resource-version"),
        pytest.param({"labels": {"team": "x"}}, id="gateway-labels"),
        pytest.param({"annotations": {"note": "x"}}, id="gateway-annotations"),
    ],
)
def test_no_hash_moves_when_only_the_gateways_metadata_changes(extra, built, gateway, provider, meta):
    base = hashes(bodies(built, gateway, provider, **EVERYTHING))
    again = hashes(bodies(built, gateway, provider, meta=lambda raw: meta(raw, **extra), **EVERYTHING))
    assert again == base


def test_every_owned_object_carries_the_envelope(built, gateway, provider, meta):
    found = bodies(built, gateway, provider, meta=lambda raw: meta(raw, uid=UID), **EVERYTHING)
    gw, _ = built(meta(gateway("gw", **EVERYTHING), uid=UID), provider("p", "m"))
    for kind, body in found.items():
        assert body is not None, kind
        assert body["kind"] == kind
        assert body["metadata"]["name"] == "gw"
        assert body["metadata"]["namespace"] == "default"
        assert body["metadata"]["ownerReferences"] == [desired.owner_reference(gw)]
        assert desired.labels(gw).items() <= body["metadata"]["labels"].items()
        assert body["metadata"]["annotations"][desired.SPEC_HASH] == desired.spec_hash(body)


def test_companions_are_keyed_by_kind_in_the_order_of_apis(built, gateway, provider):
    gw, _ = built(gateway("gw"), provider("p", "m"))
    assert list(desired.companions(gw)) == list(desired.APIS)


@pytest.mark.parametrize(
    ("kind", "api_version", "plural"),
    [
        ("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers"),
        ("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets"),
        ("HTTPRoute", "gateway.networking.k8s.io/v1", "httproutes"),
        ("ServiceMonitor", "monitoring.coreos.com/v1", "servicemonitors"),
    ],
)
def test_apis_say_where_each_kind_is_served(kind, api_version, plural, built, gateway, provider):
    api = desired.APIS[kind]
    assert (api.api_version, api.plural) == (api_version, plural)
    assert f"{api.group}/{api.version}" == api_version
    gw, _ = built(gateway("gw", **EVERYTHING), provider("p", "m"))
    body = desired.companions(gw)[kind]
    assert body is not None
    assert body["apiVersion"] == api_version


def test_the_same_gateway_gives_the_same_objects(built, gateway, provider):
    assert bodies(built, gateway, provider, **EVERYTHING) == bodies(built, gateway, provider, **EVERYTHING)
