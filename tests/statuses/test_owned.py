"""A gateway's status says what it owns, and whether the cluster serves the optional APIs it asks for."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.core import statuses

ROUTE = {"parentRefs": [{"name": "public"}]}
WORKLOAD = (("apps/v1", "Deployment", "gw"), ("v1", "Service", "gw"))
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler", "gw")


@pytest.fixture
def routed(world, gateway, provider):
    est, (outcome,) = world(
        gateway("gw", route=ROUTE, metrics={"enabled": True, "serviceMonitor": True}), provider("p", "a")
    )
    return est.gateways[0], outcome


def status_of(valid, routed, **rollout: Any) -> dict[str, Any]:
    gw, outcome = routed
    status = statuses.for_gateway(gw, outcome, statuses.Rollout(outcome.rendered.hash, **rollout))
    valid("LLMGateway", status)
    return status


def cond(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    found = [c for c in status["conditions"] if c["type"] == type_]
    return found[0] if found else None


def test_owned_objects_are_listed_and_named_in_programmed(routed, valid):
    status = status_of(valid, routed, owned=(*WORKLOAD, HPA))
    assert status["owned"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gw"},
        {"apiVersion": "v1", "kind": "Service", "name": "gw"},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "gw"},
    ]
    programmed = cond(status, "Programmed")
    assert programmed["status"] == "True"
    assert programmed["message"].endswith("; owns Deployment/gw, Service/gw, HorizontalPodAutoscaler/gw")


def test_apis_available_only_when_an_optional_api_is_asked_for(routed, valid):
    assert cond(status_of(valid, routed), statuses.APIS_AVAILABLE) is None
    both = status_of(valid, routed, apis={"HTTPRoute": True, "ServiceMonitor": True})
    assert cond(both, statuses.APIS_AVAILABLE) == {
        "type": "APIsAvailable",
        "status": "True",
        "reason": "APIsAvailable",
        "message": "the cluster serves HTTPRoute (gateway.networking.k8s.io/v1) and "
        "ServiceMonitor (monitoring.coreos.com/v1)",
    }


@pytest.mark.parametrize(
    ("missing", "reason", "says"),
    [
        ("HTTPRoute", "RouteAPIUnavailable", "install the Gateway API CRDs, or remove spec.route"),
        (
            "ServiceMonitor",
            "ServiceMonitorAPIUnavailable",
            "install the Prometheus Operator's CRDs, or set spec.metrics.serviceMonitor: false",
        ),
    ],
)
def test_a_missing_api_names_itself_and_what_to_do(routed, valid, missing, reason, says):
    apis = {"HTTPRoute": True, "ServiceMonitor": True, missing: False}
    status = status_of(valid, routed, owned=WORKLOAD, apis=apis)
    found = cond(status, statuses.APIS_AVAILABLE)
    assert (found["status"], found["reason"]) == ("False", reason)
    assert says in found["message"]
    assert cond(status, "Programmed")["status"] == "True"  # the gateway serves without it
    assert f"without {missing} (see APIsAvailable)" in cond(status, "Programmed")["message"]


def test_both_missing_are_both_named_the_route_first(routed, valid):
    status = status_of(valid, routed, apis={"HTTPRoute": False, "ServiceMonitor": False})
    found = cond(status, statuses.APIS_AVAILABLE)
    assert found["reason"] == "RouteAPIUnavailable"
    assert "HTTPRoute (gateway.networking.k8s.io/v1)" in found["message"]
    assert "ServiceMonitor (monitoring.coreos.com/v1)" in found["message"]


def test_not_asked_yet_is_unknown(routed, valid):
    status = status_of(valid, routed, apis={"HTTPRoute": None, "ServiceMonitor": True})
    found = cond(status, statuses.APIS_AVAILABLE)
    assert (found["status"], found["reason"]) == ("Unknown", "NotChecked")
