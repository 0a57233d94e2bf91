"""Replicas, the HorizontalPodAutoscaler and the PodDisruptionBudget a gateway owns."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.api import workload
from llmgw.core import desired

HPA = {"minReplicas": 3, "maxReplicas": 7, "targetCPUUtilizationPercentage": 60}


def built_gateway(built, gateway, provider, **spec: Any):
    return built(gateway("gw", namespace="team", **spec), provider("p", "m", namespace="team"))


def owned(built, gateway, provider, kind: str, **spec: Any) -> dict[str, Any] | None:
    gw, _ = built_gateway(built, gateway, provider, **spec)
    return desired.companions(gw)[kind]


# --- replicas ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "replicas"),
    [({}, workload.DEFAULT_REPLICAS), ({"replicas": 1}, 1), ({"replicas": 0}, 0), ({"replicas": 5}, 5)],
)
def test_without_autoscaling_the_deployment_sets_the_replicas(spec, replicas, built, gateway, provider):
    gw, rendered = built_gateway(built, gateway, provider, **spec)
    assert desired.deployment(gw, rendered)["spec"]["replicas"] == replicas
    assert desired.initial_replicas(gw) == replicas


def test_under_autoscaling_the_deployment_never_sets_replicas(built, gateway, provider):
    """So a merge patch of it leaves the count the HPA chose alone."""
    gw, rendered = built_gateway(built, gateway, provider, autoscaling=HPA)
    assert "replicas" not in desired.deployment(gw, rendered)["spec"]


def test_under_autoscaling_the_deployment_is_created_with_min_replicas(built, gateway, provider):
    gw, _ = built_gateway(built, gateway, provider, autoscaling=HPA)
    assert desired.initial_replicas(gw) == 3


def test_turning_autoscaling_off_hands_the_replicas_back(built, gateway, provider):
    on_gw, on_rendered = built_gateway(built, gateway, provider, autoscaling=HPA)
    off_gw, off_rendered = built_gateway(built, gateway, provider)
    on, off = desired.deployment(on_gw, on_rendered), desired.deployment(off_gw, off_rendered)
    assert off["spec"]["replicas"] == workload.DEFAULT_REPLICAS
    assert (
        on["metadata"]["annotations"][desired.SPEC_HASH] != off["metadata"]["annotations"][desired.SPEC_HASH]
    )


def test_under_autoscaling_a_new_minimum_does_not_touch_the_deployment(built, gateway, provider):
    """The HPA applies a new minReplicas; the Deployment needs no write."""
    one = built_gateway(built, gateway, provider, autoscaling=HPA)
    two = built_gateway(built, gateway, provider, autoscaling={**HPA, "minReplicas": 4, "maxReplicas": 9})
    assert desired.deployment(*one) == desired.deployment(*two)


# --- the HorizontalPodAutoscaler --------------------------------------------------------------


def test_no_autoscaling_no_autoscaler(built, gateway, provider):
    assert owned(built, gateway, provider, "HorizontalPodAutoscaler") is None


@pytest.mark.parametrize(
    ("targets", "metrics"),
    [
        ({"targetCPUUtilizationPercentage": 70}, [("cpu", 70)]),
        ({"targetMemoryUtilizationPercentage": 80}, [("memory", 80)]),
        (
            {"targetCPUUtilizationPercentage": 70, "targetMemoryUtilizationPercentage": 80},
            [("cpu", 70), ("memory", 80)],
        ),
    ],
    ids=["cpu", "memory", "both"],
)
def test_the_autoscaler_scales_the_deployment_on_its_targets(targets, metrics, built, gateway, provider):
    hpa = owned(
        built,
        gateway,
        provider,
        "HorizontalPodAutoscaler",
        autoscaling={"minReplicas": 2, "maxReplicas": 6, **targets},
    )
    assert hpa is not None
    assert (hpa["apiVersion"], hpa["kind"], hpa["metadata"]["name"]) == (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "gw",
    )
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gw"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": name, "target": {"type": "Utilization", "averageUtilization": pct}},
        }
        for name, pct in metrics
    ]


# --- the PodDisruptionBudget ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "exists"),
    [
        pytest.param({}, True, id="default-two-replicas"),
        pytest.param({"replicas": 1}, False, id="one-replica"),
        pytest.param({"replicas": 0}, False, id="scaled-to-zero"),
        pytest.param({"replicas": 3}, True, id="three-replicas"),
        pytest.param(
            {"autoscaling": {"minReplicas": 1, "maxReplicas": 1, "targetCPUUtilizationPercentage": 50}},
            False,
            id="hpa-max-1",
        ),
        pytest.param(
            {"autoscaling": {"minReplicas": 1, "maxReplicas": 2, "targetCPUUtilizationPercentage": 50}},
            True,
            id="hpa-max-2",
        ),
    ],
)
def test_by_default_a_budget_of_one_exists_whenever_there_can_be_two_pods(
    spec, exists, built, gateway, provider
):
    pdb = owned(built, gateway, provider, "PodDisruptionBudget", **spec)
    if not exists:
        assert pdb is None
        return
    assert pdb is not None
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]


@pytest.mark.parametrize(
    ("budget", "spec"),
    [
        ({"maxUnavailable": 2}, {"replicas": 5}),
        ({"maxUnavailable": "25%"}, {}),
        ({"minAvailable": 1}, {}),
        ({"minAvailable": "50%"}, {"replicas": 4}),
        ({"maxUnavailable": 1}, {"replicas": 1}),
    ],
)
def test_the_gateways_own_budget_is_used_as_given(budget, spec, built, gateway, provider):
    pdb = owned(built, gateway, provider, "PodDisruptionBudget", disruptionBudget=budget, **spec)
    assert pdb is not None
    assert {k: v for k, v in pdb["spec"].items() if k in ("maxUnavailable", "minAvailable")} == budget


def test_the_budget_selects_exactly_the_deployments_pods(built, gateway, provider):
    gw, rendered = built_gateway(built, gateway, provider)
    pdb = desired.companions(gw)["PodDisruptionBudget"]
    assert pdb is not None
    assert (pdb["apiVersion"], pdb["metadata"]["name"]) == ("policy/v1", "gw")
    assert pdb["spec"]["selector"] == desired.deployment(gw, rendered)["spec"]["selector"]


def test_the_budget_never_holds_a_drain_for_a_pod_that_is_not_ready(built, gateway, provider):
    pdb = owned(built, gateway, provider, "PodDisruptionBudget")
    assert pdb is not None
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
