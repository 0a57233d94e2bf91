"""How a gateway is reached and watched: its Service, an HTTPRoute, a ServiceMonitor."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from llmgw.core import desired

ROUTE = {"parentRefs": [{"name": "public", "namespace": "gateways"}], "hostnames": ["llm.example.com"]}


def gw_of(built, gateway, provider, **spec: Any):
    gw, _ = built(gateway("gw", namespace="team", **spec), provider("p", "m", namespace="team"))
    return gw


# --- the Service ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ClusterIP", "NodePort", "LoadBalancer"])
def test_the_service_has_the_gateways_type(kind, built, gateway, provider):
    assert desired.service(gw_of(built, gateway, provider, service={"type": kind}))["spec"]["type"] == kind


def test_the_service_carries_the_gateways_annotations_and_labels(built, gateway, provider):
    gw = gw_of(
        built,
        gateway,
        provider,
        service={"annotations": {"lb.example/internal": "true"}, "labels": {"exposure": "internal"}},
    )
    meta = desired.service(gw)["metadata"]
    assert meta["annotations"]["lb.example/internal"] == "true"
    assert meta["labels"] == {"exposure": "internal", **desired.labels(gw)}


def test_the_operators_labels_win_on_the_service(built, gateway, provider):
    gw = gw_of(built, gateway, provider)
    settings = gw.spec.service.model_copy(update={"labels": {"llmgateway.dev/gateway": "other", "x": "1"}})
    sneaky = gw.model_copy(update={"spec": gw.spec.model_copy(update={"service": settings})})
    labels = desired.service(sneaky)["metadata"]["labels"]
    assert labels == {"x": "1", **desired.labels(gw)}


@pytest.mark.parametrize(
    "service",
    [{"type": "NodePort"}, {"annotations": {"a": "1"}}, {"annotations": {"a": "2"}}, {"labels": {"b": "1"}}],
)
def test_the_services_spec_hash_follows_its_type_annotations_and_labels(service, built, gateway, provider):
    base = desired.service(gw_of(built, gateway, provider))["metadata"]["annotations"][desired.SPEC_HASH]
    changed = desired.service(gw_of(built, gateway, provider, service=service))
    assert changed["metadata"]["annotations"][desired.SPEC_HASH] != base
    assert changed["metadata"]["annotations"][desired.SPEC_HASH] == desired.spec_hash(changed)


def test_a_default_service_keeps_the_spec_hash_it_had_before_issue_11(built, gateway, provider):
    """Annotations count toward the digest only when there are some: an upgrade rewrites no Service."""
    svc = desired.service(gw_of(built, gateway, provider))
    before = {"spec": svc["spec"], "labels": svc["metadata"]["labels"]}  # what the digest read then
    text = json.dumps(before, sort_keys=True, separators=(",", ":"))
    assert svc["metadata"]["annotations"] == {
        desired.SPEC_HASH: hashlib.sha256(text.encode()).hexdigest()[:16]
    }


# --- the HTTPRoute ----------------------------------------------------------------------------


def test_no_route_no_httproute(built, gateway, provider):
    assert desired.companions(gw_of(built, gateway, provider))["HTTPRoute"] is None


def test_the_route_sends_its_hosts_to_the_gateways_service(built, gateway, provider):
    gw = gw_of(built, gateway, provider, route=ROUTE)
    route = desired.companions(gw)["HTTPRoute"]
    svc = desired.service(gw)
    assert route is not None
    assert (route["apiVersion"], route["kind"]) == ("gateway.networking.k8s.io/v1", "HTTPRoute")
    assert route["metadata"]["name"] == "gw"
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateways"}]
    assert route["spec"]["hostnames"] == ["llm.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule == {
        "backendRefs": [{"name": svc["metadata"]["name"], "port": svc["spec"]["ports"][0]["port"]}]
    }
    assert svc["spec"]["ports"][0]["port"] == 4000


def test_a_parent_ref_keeps_every_field_in_the_gateway_apis_words(built, gateway, provider):
    ref = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "namespace": "gateways",
        "name": "public",
        "sectionName": "https",
        "port": 443,
    }
    gw = gw_of(built, gateway, provider, route={"parentRefs": [ref, {"name": "internal"}]})
    route = desired.companions(gw)["HTTPRoute"]
    assert route is not None
    assert route["spec"]["parentRefs"] == [ref, {"name": "internal"}]


def test_a_route_without_hostnames_answers_for_its_parents(built, gateway, provider):
    gw = gw_of(built, gateway, provider, route={"parentRefs": [{"name": "public"}]})
    route = desired.companions(gw)["HTTPRoute"]
    assert route is not None
    assert "hostnames" not in route["spec"]


# --- the ServiceMonitor -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "metrics", [None, {"enabled": False}, {"enabled": True}, {"enabled": True, "serviceMonitor": False}]
)
def test_a_service_monitor_only_with_service_monitor_true(metrics, built, gateway, provider):
    spec = {"metrics": metrics} if metrics is not None else {}
    assert desired.companions(gw_of(built, gateway, provider, **spec))["ServiceMonitor"] is None


def test_the_service_monitor_scrapes_the_gateways_service(built, gateway, provider):
    gw = gw_of(
        built,
        gateway,
        provider,
        metrics={"enabled": True, "serviceMonitor": True},
        service={"labels": {"x": "1"}},
    )
    sm = desired.companions(gw)["ServiceMonitor"]
    svc = desired.service(gw)
    assert sm is not None
    assert (sm["apiVersion"], sm["kind"], sm["metadata"]["name"]) == (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        "gw",
    )
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint == {"port": svc["spec"]["ports"][0]["name"], "path": "/metrics"}


def test_the_service_monitor_selects_no_other_gateways_service(built, gateway, provider):
    one = gw_of(built, gateway, provider, metrics={"enabled": True, "serviceMonitor": True})
    other, _ = built(gateway("other", namespace="team"), provider("p", "m", namespace="team"))
    sm = desired.companions(one)["ServiceMonitor"]
    assert sm is not None
    assert (
        not sm["spec"]["selector"]["matchLabels"].items()
        <= desired.service(other)["metadata"]["labels"].items()
    )


def test_metrics_behind_a_key_are_scraped_with_the_master_key(built, gateway, provider):
    gw = gw_of(
        built,
        gateway,
        provider,
        metrics={"enabled": True, "serviceMonitor": True},
        litellmSettings={"require_auth_for_metrics_endpoint": True},
    )
    sm = desired.companions(gw)["ServiceMonitor"]
    assert sm is not None
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "gw-master-key", "key": "master-key"},
    }
