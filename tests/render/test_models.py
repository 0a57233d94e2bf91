"""model_list: one LiteLLM deployment per served model, in the form each backend needs."""

from __future__ import annotations

import pytest


def only_deployment(outcome) -> dict:
    (row,) = outcome.rendered.config["model_list"]
    return row


def params(outcome) -> dict:
    return only_deployment(outcome)["litellm_params"]


@pytest.mark.parametrize(
    ("url", "api_base"),
    [
        ("http://vllm:8000", "http://vllm:8000/v1"),  # no path: the OpenAI-style /v1
        ("http://vllm:8000/", "http://vllm:8000/v1"),
        ("https://vllm.example.com", "https://vllm.example.com/v1"),
        ("http://vllm:8000/v1", "http://vllm:8000/v1"),  # a path is kept as given
        ("http://vllm:8000/v1/", "http://vllm:8000/v1"),
        ("http://gw:8000/models/llama", "http://gw:8000/models/llama"),
    ],
)
@pytest.mark.parametrize("kind", ["vllm", "llamacpp", "openai-compatible"])
def test_openai_style_servers_get_v1_unless_a_path_is_given(provider, outcome, kind, url, api_base):
    assert params(outcome(provider("p", "m", type=kind, url=url)))["api_base"] == api_base


@pytest.mark.parametrize(
    ("kind", "api_base"),
    [
        ("vllm", "http://backend.gpu.svc.cluster.local:8000/v1"),
        ("llamacpp", "http://backend.gpu.svc.cluster.local:8000/v1"),
        ("openai-compatible", "http://backend.gpu.svc.cluster.local:8000/v1"),
        ("ollama", "http://backend.gpu.svc.cluster.local:8000"),
    ],
)
def test_in_cluster_backends_are_reached_by_service_dns(provider, outcome, kind, api_base):
    p = provider(
        "p", "m", type=kind, endpoint={"service": {"name": "backend", "namespace": "gpu", "port": 8000}}
    )
    assert params(outcome(p))["api_base"] == api_base


def test_a_service_in_the_providers_own_namespace(provider, outcome):
    p = provider("p", "m", namespace="ml", endpoint={"service": {"name": "vllm", "port": 8000}})
    assert params(outcome(p))["api_base"] == "http://vllm.ml.svc.cluster.local:8000/v1"


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("vllm", "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct"),
        ("ollama", "ollama_chat/meta-llama/Llama-3.1-8B-Instruct"),
        ("llamacpp", "openai/meta-llama/Llama-3.1-8B-Instruct"),
        ("openai-compatible", "openai/meta-llama/Llama-3.1-8B-Instruct"),
        ("openai", "openai/meta-llama/Llama-3.1-8B-Instruct"),
        ("anthropic", "anthropic/meta-llama/Llama-3.1-8B-Instruct"),
    ],
)
def test_the_backend_model_with_litellms_provider_prefix(provider, outcome, kind, model):
    m = {"name": "llama", "backendModel": "meta-llama/Llama-3.1-8B-Instruct"}
    row = only_deployment(outcome(provider("p", m, type=kind)))
    assert row["model_name"] == "llama"
    assert row["litellm_params"]["model"] == model


def test_the_backend_model_defaults_to_the_name(provider, outcome):
    assert params(outcome(provider("p", "llama3:8b", type="ollama")))["model"] == "ollama_chat/llama3:8b"


@pytest.mark.parametrize("url", ["http://ollama:11434", "http://ollama:11434/"])
def test_ollama_gets_the_server_root(provider, outcome, url):
    p = params(outcome(provider("p", "llama3", type="ollama", url=url)))
    assert p["api_base"] == "http://ollama:11434"
    assert "api_key" not in p


@pytest.mark.parametrize("kind", ["llamacpp", "openai-compatible"])
def test_keyless_openai_style_servers_get_a_placeholder_key(provider, outcome, kind):
    assert params(outcome(provider("p", "m", type=kind)))["api_key"] == "no-key"


@pytest.mark.parametrize("kind", ["vllm", "ollama"])
def test_backends_without_auth_get_no_key(provider, outcome, kind):
    assert "api_key" not in params(outcome(provider("p", "m", type=kind)))


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_cloud_providers_need_no_endpoint(provider, outcome, kind):
    key = {"name": "cloud-key", "key": "api-key"}
    p = params(outcome(provider("p", "m", type=kind, url=None, apiKeySecretRef=key)))
    assert "api_base" not in p
    assert p["api_key"].startswith("os.environ/LLMGW_CLOUD_KEY_API_KEY_")


def test_a_cloud_provider_with_an_endpoint_keeps_it(provider, outcome):
    p = params(outcome(provider("p", "gpt-4o", type="openai", url="https://proxy.example.com/openai/v1")))
    assert p["api_base"] == "https://proxy.example.com/openai/v1"


def test_limits_and_context_window(provider, outcome):
    m = {"name": "m", "contextWindow": 131072, "rpm": 600, "tpm": 1_000_000}
    row = only_deployment(outcome(provider("p", m)))
    assert row["litellm_params"]["rpm"] == 600
    assert row["litellm_params"]["tpm"] == 1_000_000
    assert row["model_info"]["max_input_tokens"] == 131072


def test_optional_fields_left_out_are_not_rendered(provider, outcome):
    row = only_deployment(outcome(provider("p", "m")))
    assert set(row["litellm_params"]) == {"model", "api_base"}
    assert "max_input_tokens" not in row["model_info"]


def test_params_pass_through_next_to_the_operators_own(provider, outcome):
    m = {"name": "m", "params": {"max_parallel_requests": 8, "stream_timeout": 30, "extra_body": {"x": [1]}}}
    p = params(outcome(provider("p", m)))
    assert p["max_parallel_requests"] == 8
    assert p["stream_timeout"] == 30
    assert p["extra_body"] == {"x": [1]}
    assert p["model"] == "hosted_vllm/m"


def test_each_deployment_says_where_it_comes_from(provider, outcome):
    row = only_deployment(outcome(provider("p", "m", namespace="ml")))
    assert row["model_info"]["id"] == "ml/p/m"
    assert row["model_info"]["llmgw_provider"] == "ml/p"


def test_models_are_listed_by_name_then_provider(provider, outcome):
    out = outcome(provider("z", "b", "a"), provider("y", "c", "a"))
    assert [
        (r["model_name"], r["model_info"]["llmgw_provider"]) for r in out.rendered.config["model_list"]
    ] == [
        ("a", "default/y"),
        ("a", "default/z"),
        ("b", "default/z"),
        ("c", "default/y"),
    ]


def test_a_disabled_provider_renders_nothing(provider, outcome):
    out = outcome(provider("on", "a"), provider("off", "b", {"name": "c", "aliases": ["cc"]}, enabled=False))
    assert [r["model_name"] for r in out.rendered.config["model_list"]] == ["a"]
    assert "model_group_alias" not in out.rendered.config["router_settings"]
    assert "default/off" not in out.rendered.text
    assert [p.metadata.name for p in out.resolution.disabled] == ["off"]


def test_aliases_become_model_group_aliases(provider, outcome):
    out = outcome(
        provider("p", {"name": "llama", "aliases": ["llama3", "l"]}, {"name": "qwen", "aliases": ["q"]})
    )
    assert out.rendered.config["router_settings"]["model_group_alias"] == {
        "l": "llama",
        "llama3": "llama",
        "q": "qwen",
    }
