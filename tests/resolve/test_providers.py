"""Providers checked against each other: aliases, load balancing, Service ports."""

from __future__ import annotations

import pytest

from llmgw.core import findings


def model_names(outcome) -> list[str]:
    return [m["model_name"] for m in outcome.rendered.config["model_list"]]


def aliases(outcome) -> dict[str, str]:
    return outcome.rendered.config["router_settings"].get("model_group_alias", {})


def test_an_alias_that_is_a_served_model_name_is_not_rendered(provider, check):
    (outcome,), found = check(
        provider("p", {"name": "llama", "aliases": ["qwen", "l3"]}),
        provider("q", "qwen"),
    )
    assert {(f.name, f.field, f.reason) for f in found} == {
        ("p", "spec.models.aliases", findings.ALIAS_CONFLICT)
    }
    assert "alias 'qwen' of model 'llama' is itself a served model name" in found[0].message
    assert aliases(outcome) == {"l3": "llama"}
    assert model_names(outcome) == ["llama", "qwen"]


def test_an_alias_claimed_for_two_models_is_named_on_both_and_not_rendered(provider, check):
    (outcome,), found = check(
        provider("p", {"name": "llama", "aliases": ["chat", "l3"]}),
        provider("q", {"name": "qwen", "aliases": ["chat"]}),
    )
    assert {(f.name, f.reason) for f in found} == {
        ("p", findings.ALIAS_CONFLICT),
        ("q", findings.ALIAS_CONFLICT),
    }
    assert all("alias 'chat' is claimed for several models ('llama', 'qwen')" in f.message for f in found)
    assert aliases(outcome) == {"l3": "llama"}


def test_one_alias_of_a_load_balanced_model_is_no_clash(provider, check):
    (outcome,), found = check(
        provider("one", {"name": "llama", "aliases": ["l3"]}, url="http://one:8000"),
        provider("two", {"name": "llama", "aliases": ["l3"]}, url="http://two:8000"),
    )
    assert found == ()
    assert aliases(outcome) == {"l3": "llama"}
    assert model_names(outcome) == ["llama", "llama"]


def test_an_alias_served_only_by_a_disabled_provider_is_not_rendered(provider, check):
    (outcome,), found = check(
        provider("on", "qwen"), provider("off", {"name": "llama", "aliases": ["l3"]}, enabled=False)
    )
    assert found == ()
    assert aliases(outcome) == {}
    assert outcome.resolution.disabled[0].metadata.name == "off"


def test_two_providers_serving_one_model_name_are_one_group(provider, check):
    (outcome,), found = check(
        provider("vllm", "llama", url="http://vllm:8000"),
        provider(
            "ollama", {"name": "llama", "backendModel": "llama3.1:8b"}, type="ollama", url="http://ol:11434"
        ),
    )
    assert found == ()
    rows = outcome.rendered.config["model_list"]
    assert [(r["model_name"], r["litellm_params"]["model"]) for r in rows] == [
        ("llama", "ollama_chat/llama3.1:8b"),  # by provider: default/ollama, then default/vllm
        ("llama", "hosted_vllm/llama"),
    ]
    assert len({r["model_info"]["id"] for r in rows}) == 2


@pytest.mark.parametrize(
    ("service_ports", "api_base"),
    [
        ({("gpu", "vllm"): {"http": 8000, "metrics": 9090}}, "http://vllm.gpu.svc.cluster.local:8000/v1"),
        ({("gpu", "vllm"): {"http": 8080}}, "http://vllm.gpu.svc.cluster.local:8080/v1"),
    ],
)
def test_a_named_service_port_is_resolved_from_the_service(provider, check, service_ports, api_base):
    p = provider("p", "llama", endpoint={"service": {"name": "vllm", "namespace": "gpu", "port": "http"}})
    (outcome,), found = check(p, service_ports=service_ports)
    assert found == ()
    assert outcome.rendered.config["model_list"][0]["litellm_params"]["api_base"] == api_base


def test_a_named_port_of_a_service_in_the_providers_namespace(provider, check):
    p = provider("p", "llama", namespace="ml", endpoint={"service": {"name": "vllm", "port": "http"}})
    (outcome,), found = check(p, service_ports={("ml", "vllm"): {"http": 8000}})
    assert found == ()
    assert outcome.rendered.config["model_list"][0]["litellm_params"]["api_base"] == (
        "http://vllm.ml.svc.cluster.local:8000/v1"
    )


@pytest.mark.parametrize(
    ("service_ports", "said"),
    [
        ({}, "Service gpu/vllm is not known"),
        ({("other", "vllm"): {"http": 8000}}, "Service gpu/vllm is not known"),
        ({("gpu", "vllm"): {"grpc": 9000, "metrics": 9090}}, "named ports: grpc, metrics"),
        ({("gpu", "vllm"): {}}, "named ports: none"),
    ],
)
def test_an_unresolved_named_port_leaves_the_provider_out(provider, chain, check, service_ports, said):
    p = provider("p", "llama", endpoint={"service": {"name": "vllm", "namespace": "gpu", "port": "http"}})
    (outcome,), found = check(
        p, provider("q", "qwen"), chain("c", "qwen", "llama"), service_ports=service_ports
    )
    port = [f for f in found if f.name == "p"]
    assert [(f.field, f.reason) for f in port] == [("spec.endpoint.service.port", findings.UNRESOLVED_PORT)]
    assert said in port[0].message
    assert "'http'" in port[0].message
    assert model_names(outcome) == ["qwen"]
    # what it served is unknown now: the chain to it is left out too, and says so
    assert [f.field for f in found if f.name == "c"] == ["spec.fallbacks", "spec.fallbacks[0]"]


def test_a_numbered_port_needs_no_service(provider, check):
    p = provider("p", "llama", endpoint={"service": {"name": "vllm", "namespace": "gpu", "port": 8000}})
    (outcome,), found = check(p)
    assert found == ()
    assert outcome.rendered.config["model_list"][0]["litellm_params"]["api_base"] == (
        "http://vllm.gpu.svc.cluster.local:8000/v1"
    )
