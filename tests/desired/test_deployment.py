"""`desired.deployment`: the LiteLLM proxy a gateway runs, as the API server gets it."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from llmgw.api.gateway import DEFAULT_IMAGE
from llmgw.core import desired

HASH_ANNOTATION = "llmgateway.dev/config-hash"
SPEC_HASH_ANNOTATION = "llmgateway.dev/spec-hash"
UID = "7b1c8a8e-0d3f-4f4a-9a53-2a3c2b9f0c11"
FAST_START = {"startup": {"periodSeconds": 1, "failureThreshold": 20}}
"""A startup allowance of 20 s, so a short progressDeadlineSeconds is allowed."""


@pytest.fixture
def default(built, gateway, provider, meta):
    """A plain gateway `gw` in namespace `team` with one provider."""
    return built(
        meta(gateway("gw", namespace="team"), uid=UID, generation=2),
        provider("p", "m", namespace="team"),
    )


def container(body: dict[str, Any]) -> dict[str, Any]:
    (only,) = body["spec"]["template"]["spec"]["containers"]
    return only


def volume(body: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [v for v in body["spec"]["template"]["spec"]["volumes"] if v["name"] == name]
    return found


def env(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(body)["env"]}


def test_the_deployment_validates_against_the_kubernetes_schema(default, schema_valid):
    schema_valid(desired.deployment(*default))


def test_the_deployment_validates_with_every_optional_part(built, gateway, provider, schema_valid):
    gw, rendered = built(
        gateway(
            "gw",
            image="registry.example/litellm:1",
            replicas=3,
            resources={"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": 1073741824}},
            cache={"redis": {"host": "redis.cache.svc", "passwordSecretRef": {"name": "redis", "key": "pw"}}},
            masterKeySecretRef={"name": "mine", "key": "k"},
        ),
        provider("p", "m", type="openai", url=None, apiKeySecretRef={"name": "openai", "key": "api-key"}),
    )
    schema_valid(desired.deployment(gw, rendered))


def test_the_deployment_is_named_and_owned_by_its_gateway(default):
    gw, rendered = default
    body = desired.deployment(gw, rendered)
    meta = body["metadata"]
    assert (body["apiVersion"], body["kind"]) == ("apps/v1", "Deployment")
    assert (meta["name"], meta["namespace"]) == ("gw", "team")
    assert meta["labels"] == desired.labels(gw)
    assert meta["ownerReferences"] == [desired.owner_reference(gw)]


def test_the_deployment_selects_exactly_its_own_pods(default):
    body = desired.deployment(*default)
    selector = body["spec"]["selector"]["matchLabels"]
    template_labels = body["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= template_labels.items()
    assert selector["llmgateway.dev/gateway"] == "gw"


@pytest.mark.parametrize(
    ("spec", "image"),
    [({}, DEFAULT_IMAGE), ({"image": "registry.example/litellm:v9"}, "registry.example/litellm:v9")],
    ids=["default", "custom"],
)
def test_the_container_runs_the_gateways_image(spec, image, built, gateway, provider):
    body = desired.deployment(*built(gateway("gw", **spec), provider("p", "m")))
    assert container(body)["image"] == image


def test_the_container_serves_the_mounted_config_on_its_named_port(default):
    body = desired.deployment(*default)
    c = container(body)
    flag, path, port_flag, port = c["args"]
    assert (flag, port_flag) == ("--config", "--port")
    assert c["ports"] == [{"name": "http", "containerPort": int(port), "protocol": "TCP"}]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "config"]
    assert mount["readOnly"] is True
    assert PurePosixPath(path).parent == PurePosixPath(mount["mountPath"])
    assert "configMap" in volume(body, "config")


def test_the_config_volume_names_the_revisions_config_map(default):
    gw, rendered = default
    name = volume(desired.deployment(gw, rendered), "config")["configMap"]["name"]
    assert name.startswith("gw-config-")
    suffix = name.removeprefix("gw-config-")
    assert len(suffix) >= 8
    assert rendered.hash.startswith(suffix)


def test_the_pod_template_carries_the_render_hash(default):
    gw, rendered = default
    annotations = desired.deployment(gw, rendered)["spec"]["template"]["metadata"]["annotations"]
    assert [k for k, v in annotations.items() if v == rendered.hash] == [HASH_ANNOTATION]


def test_a_new_render_changes_the_pod_template(built, gateway, provider):
    one = desired.deployment(*built(gateway("gw"), provider("p", "m")))
    two = desired.deployment(*built(gateway("gw"), provider("p", "m", "n")))
    assert one["spec"]["template"] != two["spec"]["template"]
    assert volume(one, "config") != volume(two, "config")


def test_every_secret_the_render_reads_is_a_secret_key_ref(built, gateway, provider):
    gw, rendered = built(
        gateway(
            "gw", cache={"redis": {"host": "redis", "passwordSecretRef": {"name": "redis", "key": "pw"}}}
        ),
        provider("p", "m", type="openai", url=None, apiKeySecretRef={"name": "openai", "key": "api-key"}),
    )
    got = env(desired.deployment(gw, rendered))
    assert {(e.secret, e.key) for e in rendered.env} == {
        ("gw-master-key", "master-key"),
        ("openai", "api-key"),
        ("redis", "pw"),
    }
    for e in rendered.env:
        assert got[e.name] == {
            "name": e.name,
            "valueFrom": {"secretKeyRef": {"name": e.secret, "key": e.key}},
        }
    assert all("value" in e for name, e in got.items() if name not in {e.name for e in rendered.env})


def test_the_master_key_comes_from_the_gateways_own_secret_when_it_names_one(built, gateway, provider):
    gw, rendered = built(gateway("gw", masterKeySecretRef={"name": "mine", "key": "k"}), provider("p", "m"))
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for e in env(desired.deployment(gw, rendered)).values()
        if "valueFrom" in e
    ]
    assert refs == [{"name": "mine", "key": "k"}]


def test_the_container_runs_offline_with_a_writable_tmp(default):
    body = desired.deployment(*default)
    got = env(body)
    assert got["HF_HUB_OFFLINE"]["value"] == "1"
    assert got["HOME"]["value"] == "/tmp"
    (tmp,) = [m for m in container(body)["volumeMounts"] if m["name"] == "tmp"]
    assert tmp["mountPath"] == "/tmp"
    assert "emptyDir" in volume(body, "tmp")


@pytest.mark.parametrize(
    ("probe", "path"),
    [("livenessProbe", "/health/liveliness"), ("readinessProbe", "/health/readiness")],
)
def test_probes_ask_litellm_on_the_named_port(probe, path, default):
    c = container(desired.deployment(*default))
    assert c[probe]["httpGet"] == {"path": path, "port": c["ports"][0]["name"]}
    assert c[probe]["periodSeconds"] > 0


def test_pod_and_container_meet_the_restricted_pod_security_standard(default):
    body = desired.deployment(*default)
    pod = body["spec"]["template"]["spec"]
    c = container(body)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_a_rollout_never_takes_a_ready_pod_away_first(default):
    strategy = desired.deployment(*default)["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1


@pytest.mark.parametrize(
    ("spec", "replicas", "deadline"),
    [
        ({}, 2, 300),
        ({"replicas": 0, "rollout": {"progressDeadlineSeconds": 60}, "probes": FAST_START}, 0, 60),
    ],
    ids=["defaults", "set"],
)
def test_replicas_and_deadline_come_from_the_gateway(spec, replicas, deadline, built, gateway, provider):
    body = desired.deployment(*built(gateway("gw", **spec), provider("p", "m")))
    assert body["spec"]["replicas"] == replicas
    assert body["spec"]["progressDeadlineSeconds"] == deadline


@pytest.mark.parametrize(
    ("resources", "want"),
    [
        pytest.param(None, None, id="unset"),
        pytest.param(
            {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
            {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
            id="both",
        ),
        pytest.param({"limits": {"cpu": 2}}, {"limits": {"cpu": 2}}, id="limits-only"),
    ],
)
def test_container_resources_are_the_gateways_when_set(resources, want, built, gateway, provider):
    spec = {"resources": resources} if resources is not None else {}
    c = container(desired.deployment(*built(gateway("gw", **spec), provider("p", "m"))))
    assert c.get("resources") == want


def test_the_same_gateway_and_render_give_the_same_deployment(default):
    assert desired.deployment(*default) == desired.deployment(*default)


# --- the spec-hash annotation -----------------------------------------------------------------


def spec_hash_of(built, *raws: Any) -> str:
    return desired.deployment(*built(*raws))["metadata"]["annotations"][SPEC_HASH_ANNOTATION]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"spec": {"replicas": 3}}, id="replicas"),
        pytest.param({"spec": {"image": "registry.example/litellm:2"}}, id="image"),
        pytest.param({"spec": {"resources": {"limits": {"cpu": "1"}}}}, id="resources"),
        pytest.param(
            {"spec": {"rollout": {"progressDeadlineSeconds": 30}, "probes": FAST_START}}, id="deadline"
        ),
        pytest.param({"models": ("m", "n")}, id="render"),
        pytest.param({"name": "other"}, id="name-and-so-labels"),
    ],
)
def test_the_spec_hash_changes_when_the_spec_or_labels_do(change, built, gateway, provider):
    base = spec_hash_of(built, gateway("gw"), provider("p", "m"))
    changed = spec_hash_of(
        built,
        gateway(change.get("name", "gw"), **change.get("spec", {})),
        provider("p", *change.get("models", ("m",))),
    )
    assert changed != base


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
def test_the_spec_hash_stays_when_only_the_gateways_metadata_changes(extra, built, gateway, provider, meta):
    base = spec_hash_of(built, gateway("gw"), provider("p", "m"))
    assert spec_hash_of(built, meta(gateway("gw"), **extra), provider("p", "m")) == base


def test_the_spec_hash_annotation_is_the_hash_of_the_body(default):
    body = desired.deployment(*default)
    assert body["metadata"]["annotations"][SPEC_HASH_ANNOTATION] == desired.spec_hash(body)
