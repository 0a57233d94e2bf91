"""`desired.service`, `master_key_secret`, `labels`, `owner_reference` and `spec_hash`."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llmgw.core import desired

UID = "7b1c8a8e-0d3f-4f4a-9a53-2a3c2b9f0c11"


@pytest.fixture
def default(built, gateway, provider, meta):
    return built(meta(gateway("gw", namespace="team"), uid=UID), provider("p", "m", namespace="team"))


# --- the Service ------------------------------------------------------------------------------


def test_the_service_validates_against_the_kubernetes_schema(default, schema_valid):
    gw, _ = default
    schema_valid(desired.service(gw))


def test_the_schema_check_refuses_an_unknown_field(default, schema_valid):
    """The check above is strict: a misspelt field is an error, not ignored."""
    gw, rendered = default
    body = desired.deployment(gw, rendered)
    body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(pytest.fail.Exception, match="imagePullPolicyy"):
        schema_valid(body)


def test_the_service_is_named_and_owned_by_its_gateway(default):
    gw, _ = default
    body = desired.service(gw)
    assert (body["apiVersion"], body["kind"]) == ("v1", "Service")
    assert (body["metadata"]["name"], body["metadata"]["namespace"]) == ("gw", "team")
    assert body["metadata"]["labels"] == desired.labels(gw)
    assert body["metadata"]["ownerReferences"] == [desired.owner_reference(gw)]
    assert body["metadata"]["annotations"]["llmgateway.dev/spec-hash"] == desired.spec_hash(body)


def test_the_service_reaches_the_gateways_pods_on_their_named_port(default):
    gw, rendered = default
    svc = desired.service(gw)
    dep = desired.deployment(gw, rendered)
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    (port,) = svc["spec"]["ports"]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    (named,) = [p for p in container["ports"] if p["name"] == port["targetPort"]]
    assert port["port"] == named["containerPort"]
    assert port["protocol"] == "TCP"


def test_two_gateways_in_one_namespace_select_only_their_own_pods(built, gateway, provider):
    one, _ = built(gateway("one"), provider("p", "m"))
    two, _ = built(gateway("two"), provider("p", "m"))
    a, b = desired.service(one)["spec"]["selector"], desired.service(two)["spec"]["selector"]
    assert not (a.items() <= desired.labels(two).items())
    assert not (b.items() <= desired.labels(one).items())


# --- the master key Secret --------------------------------------------------------------------


def test_the_generated_master_key_is_the_secret_the_deployment_reads(default, schema_valid):
    gw, rendered = default
    secret = desired.master_key_secret(gw, "s3cret")
    schema_valid(secret)
    assert (secret["kind"], secret["type"]) == ("Secret", "Opaque")
    assert secret["metadata"]["namespace"] == "team"
    assert secret["metadata"]["ownerReferences"] == [desired.owner_reference(gw)]
    (container,) = desired.deployment(gw, rendered)["spec"]["template"]["spec"]["containers"]
    (ref,) = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if e["name"] == "LITELLM_MASTER_KEY"]
    assert ref["name"] == secret["metadata"]["name"] == "gw-master-key"
    assert secret["stringData"] == {ref["key"]: "s3cret"}
    assert "data" not in secret


def test_the_master_key_secret_holds_only_the_key_it_is_given(default):
    gw, _ = default
    assert desired.master_key_secret(gw, "one") != desired.master_key_secret(gw, "two")
    assert desired.master_key_secret(gw, "one") == desired.master_key_secret(gw, "one")


# --- labels and owner references --------------------------------------------------------------


def test_labels_name_the_gateway_and_the_manager(default):
    gw, _ = default
    assert desired.labels(gw) == {
        "app.kubernetes.io/name": "litellm",
        "app.kubernetes.io/instance": "gw",
        "app.kubernetes.io/component": "gateway",
        "app.kubernetes.io/managed-by": "llmgw",
        "llmgateway.dev/gateway": "gw",
    }


def test_labels_are_not_the_gateways_own_labels(built, gateway, provider):
    gw, _ = built(gateway("gw", labels={"team": "x"}), provider("p", "m"))
    assert "team" not in desired.labels(gw)


def test_labels_are_a_fresh_dict_each_time(default):
    gw, _ = default
    desired.labels(gw)["extra"] = "x"
    assert "extra" not in desired.labels(gw)


def test_the_owner_reference_makes_the_gateway_the_controller(default):
    gw, _ = default
    assert desired.owner_reference(gw) == {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMGateway",
        "name": "gw",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_the_owner_reference_of_a_gateway_not_yet_stored_has_an_empty_uid(built, gateway, provider):
    gw, _ = built(gateway("gw"), provider("p", "m"))
    assert desired.owner_reference(gw)["uid"] == ""


# --- spec_hash --------------------------------------------------------------------------------


BODY: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "gw", "labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}},
    "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 4000}], "selector": {"a": "1"}},
}


def reordered(value: Any) -> Any:
    """The same value with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


def test_spec_hash_is_stable_and_a_short_hex_digest():
    digest = desired.spec_hash(BODY)
    assert digest == desired.spec_hash(copy.deepcopy(BODY))
    assert len(digest) >= 12
    int(digest, 16)


def test_spec_hash_does_not_depend_on_key_order():
    assert list(reordered(BODY)["spec"]) != list(BODY["spec"])
    assert desired.spec_hash(reordered(BODY)) == desired.spec_hash(BODY)


def changed(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(BODY)
    *parents, leaf = path.split(".")
    at = body
    for p in parents:
        at = at.setdefault(p, {})
    at[leaf] = value
    return body


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.type", "NodePort"),
        ("spec.selector", {"a": "2"}),
        ("spec.ports", [{"name": "http", "port": 4001}]),
        ("metadata.labels", {"a": "1"}),
        ("metadata.labels", {"a": "1", "b": "3"}),
        ("metadata.annotations", {"x": "z"}),
        ("metadata.annotations", {"x": "y", "more": "1"}),
    ],
)
def test_spec_hash_changes_with_the_spec_labels_and_annotations(path, value):
    assert desired.spec_hash(changed(path, value)) != desired.spec_hash(BODY)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metadata.annotations", {"x": "y", "llmgateway.dev/spec-hash": "0"}),
        ("metadata.resourceVersion", "42"),
        ("metadata.ownerReferences", []),
        ("status", {"loadBalancer": {}}),
    ],
)
def test_spec_hash_ignores_everything_but_what_the_operator_sets(path, value):
    """Annotations count (a Service's are the gateway's to set), but not the digest itself."""
    assert desired.spec_hash(changed(path, value)) == desired.spec_hash(BODY)
