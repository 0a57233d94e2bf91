"""The gateway's pod template (`desired.deployment` through `core.pods`): `spec.pod`, env and
envFrom, DATABASE_URL, probes, the preStop delay and the grace period, scrape annotations."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.api import workload
from llmgw.core import desired, pods

CONFIG_HASH = "llmgateway.dev/config-hash"


def template(body: dict[str, Any]) -> dict[str, Any]:
    return body["spec"]["template"]


def pod_spec(body: dict[str, Any]) -> dict[str, Any]:
    return body["spec"]["template"]["spec"]


def container(body: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(body)["containers"]
    return only


@pytest.fixture
def plain(built, gateway, provider):
    """A gateway that sets none of the workload fields."""
    return desired.deployment(*built(gateway("gw"), provider("p", "m")))


def deployment_of(built, gateway, provider, **spec: Any) -> dict[str, Any]:
    return desired.deployment(*built(gateway("gw", **spec), provider("p", "m")))


# --- spec.pod ---------------------------------------------------------------------------------


def test_every_spec_pod_field_reaches_the_pod_template_in_the_pod_apis_words(production, production_raw):
    gw, rendered = production
    pod = production_raw()["spec"]["pod"]
    got = pod_spec(desired.deployment(gw, rendered))
    for field in (
        "nodeSelector",
        "tolerations",
        "affinity",
        "topologySpreadConstraints",
        "priorityClassName",
        "imagePullSecrets",
        "serviceAccountName",
        "terminationGracePeriodSeconds",
    ):
        assert got[field] == pod[field], field


def test_the_users_pod_labels_and_annotations_are_added(production, production_raw):
    gw, rendered = production
    meta = production_raw()["spec"]["pod"]["metadata"]
    got = template(desired.deployment(gw, rendered))["metadata"]
    assert meta["labels"].items() <= got["labels"].items()
    assert meta["annotations"].items() <= got["annotations"].items()


def test_the_operators_labels_and_the_config_hash_always_win(production):
    """The API layer refuses the operator's keys in spec.pod.metadata; were one to get through
    (a model built in code, a future field), the builder still puts the operator's on top."""
    gw, rendered = production
    metadata = gw.spec.pod.metadata.model_copy(
        update={
            "labels": {"llmgateway.dev/gateway": "other", "app.kubernetes.io/name": "x"},
            "annotations": {CONFIG_HASH: "0" * 64},
        }
    )
    pod = gw.spec.pod.model_copy(update={"metadata": metadata})
    sneaky = gw.model_copy(update={"spec": gw.spec.model_copy(update={"pod": pod})})
    got = template(desired.deployment(sneaky, rendered))["metadata"]
    assert desired.labels(gw).items() <= got["labels"].items()
    assert got["annotations"][CONFIG_HASH] == rendered.hash


def test_a_gateway_without_spec_pod_gets_no_placement_fields(plain):
    spec = pod_spec(plain)
    absent = {"nodeSelector", "tolerations", "affinity", "topologySpreadConstraints"}
    absent |= {"priorityClassName", "imagePullSecrets", "serviceAccountName"}
    assert not absent & set(spec)
    assert list(template(plain)["metadata"]["annotations"]) == [CONFIG_HASH]


def test_an_empty_selector_in_an_affinity_term_stays_empty_not_absent(production):
    """`namespaceSelector: {}` means every namespace; left out, it would mean the pod's own."""
    gw, rendered = production
    (term,) = pod_spec(desired.deployment(gw, rendered))["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["namespaceSelector"] == {}


def test_a_service_account_leaves_the_api_token_unmounted(built, gateway, provider):
    """Cloud identity (IRSA, EKS Pod Identity, Azure and GKE Workload Identity) needs no API token."""
    spec = pod_spec(deployment_of(built, gateway, provider, pod={"serviceAccountName": "llm-gateway"}))
    assert spec["serviceAccountName"] == "llm-gateway"
    assert spec["automountServiceAccountToken"] is False


def test_spec_pod_cannot_weaken_pod_security(production, plain):
    gw, rendered = production
    body = desired.deployment(gw, rendered)
    assert pod_spec(body)["securityContext"] == pod_spec(plain)["securityContext"]
    assert container(body)["securityContext"] == container(plain)["securityContext"]


# --- env and envFrom --------------------------------------------------------------------------


def test_the_users_env_comes_after_the_operators_in_its_own_order(production, production_raw):
    gw, rendered = production
    names = [e["name"] for e in container(desired.deployment(gw, rendered))["env"]]
    theirs = [e["name"] for e in production_raw()["spec"]["env"]]
    ours = ["LITELLM_LOCAL_MODEL_COST_MAP", "HOME", "XDG_CACHE_HOME", "HF_HUB_OFFLINE"]
    ours += [e.name for e in rendered.env]
    assert names == ours + theirs
    assert len(set(names)) == len(names)


def test_env_entries_keep_the_pod_apis_shape(production, production_raw):
    gw, rendered = production
    got = {e["name"]: e for e in container(desired.deployment(gw, rendered))["env"]}
    for want in production_raw()["spec"]["env"]:
        assert got[want["name"]] == want


def test_env_from_is_the_users_in_its_order(production, production_raw):
    gw, rendered = production
    assert container(desired.deployment(gw, rendered))["envFrom"] == production_raw()["spec"]["envFrom"]


def test_without_env_from_the_container_has_none(plain):
    assert "envFrom" not in container(plain)


def test_database_url_comes_from_the_secret_it_names(built, gateway, provider):
    body = deployment_of(
        built, gateway, provider, database={"urlSecretRef": {"name": "litellm-db", "key": "url"}}
    )
    (db,) = [e for e in container(body)["env"] if e["name"] == "DATABASE_URL"]
    assert db == {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "litellm-db", "key": "url"}}}


def test_without_a_database_there_is_no_database_url(plain):
    assert "DATABASE_URL" not in {e["name"] for e in container(plain)["env"]}


# --- probes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probe", "path", "defaults"),
    [
        ("startupProbe", "/health/liveliness", workload.STARTUP_DEFAULTS),
        ("livenessProbe", "/health/liveliness", workload.LIVENESS_DEFAULTS),
        ("readinessProbe", "/health/readiness", workload.READINESS_DEFAULTS),
    ],
)
def test_probes_default_to_the_api_defaults(probe, path, defaults, plain):
    assert container(plain)[probe] == {"httpGet": {"path": path, "port": "http"}, **defaults.manifest()}


def test_the_startup_probe_allows_the_api_startup_allowance(plain):
    p = container(plain)["startupProbe"]
    allowance = p["initialDelaySeconds"] + p["periodSeconds"] * p["failureThreshold"]
    assert allowance == workload.DEFAULT_STARTUP_ALLOWANCE_SECONDS >= 300


def test_liveness_waits_on_the_startup_probe_not_on_a_delay_of_its_own(plain):
    assert container(plain)["livenessProbe"]["initialDelaySeconds"] == 0


@pytest.mark.parametrize(
    ("which", "probe"),
    [("startup", "startupProbe"), ("liveness", "livenessProbe"), ("readiness", "readinessProbe")],
)
@pytest.mark.parametrize(
    ("field", "value"),
    [("initialDelaySeconds", 7), ("periodSeconds", 3), ("timeoutSeconds", 2), ("failureThreshold", 9)],
)
def test_each_probe_timing_is_overridable_alone(which, probe, field, value, built, gateway, provider):
    # a longer deadline: a startup probe's allowance may not outlast it
    body = deployment_of(
        built, gateway, provider, probes={which: {field: value}}, rollout={"progressDeadlineSeconds": 3600}
    )
    defaults = getattr(workload, f"{which.upper()}_DEFAULTS").manifest()
    got = container(body)[probe]
    assert got == {"httpGet": got["httpGet"], **defaults, field: value}


def test_probe_overrides_keep_the_operators_paths(production, plain):
    gw, rendered = production
    body = desired.deployment(gw, rendered)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container(body)[probe]["httpGet"] == container(plain)[probe]["httpGet"]


# --- stopping: preStop and the grace period ---------------------------------------------------


def test_a_stopping_pod_keeps_serving_for_the_prestop_delay(plain):
    pre_stop = container(plain)["lifecycle"]["preStop"]
    assert pre_stop == {
        "exec": {"command": ["python3", "-c", f"import time; time.sleep({pods.PRE_STOP_SECONDS})"]}
    }
    assert pods.PRE_STOP_SECONDS >= 5


@pytest.mark.parametrize("timeout", [1, 60, 600, 3600])
def test_the_default_grace_period_outlasts_the_prestop_delay_and_the_longest_answer(
    timeout, built, gateway, provider
):
    body = deployment_of(built, gateway, provider, timeoutSeconds=timeout)
    grace = pod_spec(body)["terminationGracePeriodSeconds"]
    assert grace == timeout + pods.PRE_STOP_SECONDS + pods.GRACE_MARGIN_SECONDS
    assert grace > timeout + pods.PRE_STOP_SECONDS


def test_an_explicit_grace_period_is_the_gateways(built, gateway, provider):
    body = deployment_of(
        built, gateway, provider, timeoutSeconds=60, pod={"terminationGracePeriodSeconds": 61}
    )
    assert pod_spec(body)["terminationGracePeriodSeconds"] == 61


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_put_scrape_annotations_on_the_pods(built, gateway, provider):
    annotations = template(deployment_of(built, gateway, provider, metrics={"enabled": True}))["metadata"][
        "annotations"
    ]
    assert {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")} == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "4000",
        "prometheus.io/path": "/metrics",
    }


def test_without_metrics_there_are_no_scrape_annotations(plain):
    assert not [k for k in template(plain)["metadata"]["annotations"] if k.startswith("prometheus.io/")]


def test_the_users_scrape_annotations_win_over_the_defaults(built, gateway, provider):
    """Beside a ServiceMonitor, a gateway may turn annotation scraping off."""
    body = deployment_of(
        built,
        gateway,
        provider,
        metrics={"enabled": True, "serviceMonitor": True},
        pod={"metadata": {"annotations": {"prometheus.io/scrape": "false"}}},
    )
    assert template(body)["metadata"]["annotations"]["prometheus.io/scrape"] == "false"
