"""Every object the operator sends validates against the schemas of every Kubernetes version the
chart supports (charts/llmgw/Chart.yaml kubeVersion, as far as kubernetes-validate ships them),
for a gateway that sets every field and for one that sets none.

The HTTPRoute and the ServiceMonitor are CRDs (Gateway API, prometheus-operator) that
kubernetes-validate has no schema for; tests/desired/test_exposure.py checks their shape.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from llmgw.core import desired

from .conftest import KUBE_VERSIONS, LABEL_KEYS_FROM

VALIDATED = ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")


def minor(version: str) -> tuple[int, int]:
    major, minor_, *_ = version.split(".")
    return int(major), int(minor_)


def objects(gw, rendered) -> dict[str, dict[str, Any]]:
    out = {"Deployment": desired.deployment(gw, rendered), "Service": desired.service(gw)}
    out.update({k: v for k, v in desired.companions(gw).items() if v is not None})
    return out


def test_the_supported_versions_start_at_the_charts_floor_and_reach_the_newest_schemas():
    assert KUBE_VERSIONS[0] == "1.27.0"
    assert len(KUBE_VERSIONS) >= 9  # 1.27 .. 1.35 at least
    assert [minor(v)[1] for v in KUBE_VERSIONS] == list(range(27, 27 + len(KUBE_VERSIONS)))


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_a_gateway_with_every_field_validates(
    version, built, production_raw, production_provider, schema_valid
):
    gw, rendered = built(production_raw(label_keys=minor(version) >= LABEL_KEYS_FROM), production_provider)
    found = objects(gw, rendered)
    assert set(VALIDATED) <= set(found)
    for kind in VALIDATED:
        schema_valid(found[kind], version)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_a_gateway_with_replicas_a_percentage_budget_and_no_pod_settings_validates(
    version, built, gateway, provider, schema_valid
):
    gw, rendered = built(
        gateway("small", replicas=3, disruptionBudget={"minAvailable": "50%"}, service={"type": "NodePort"}),
        provider("p", "m"),
    )
    found = objects(gw, rendered)
    assert "HorizontalPodAutoscaler" not in found
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        schema_valid(found[kind], version)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_a_plain_gateway_validates(version, built, gateway, provider, schema_valid):
    gw, rendered = built(gateway("gw"), provider("p", "m"))
    found = objects(gw, rendered)
    assert set(found) == {"Deployment", "Service", "PodDisruptionBudget"}
    for body in found.values():
        schema_valid(body, version)


def test_before_1_29_the_schema_refuses_the_affinity_label_keys(built, production_raw, production_provider):
    """Why the oldest versions are checked without them: a 1.27/1.28 API server drops them."""
    gw, rendered = built(production_raw(), production_provider)
    body = desired.deployment(gw, rendered)
    with pytest.raises(kubernetes_validate.ValidationError, match=r"matchLabelKeys|mismatchLabelKeys"):
        kubernetes_validate.validate(body, "1.28.0", strict=True)
