"""The cloud provider types (issue 12) and model modes, as the models and `objects.parse` take them.

Each refusal is one finding: the object, the field in the manifest's spelling, and a
sentence that says what to do.
"""

from __future__ import annotations

from typing import Any

import celpy
import pytest

from llmgw.api import clouds, crdgen, litellm_providers, provider
from llmgw.core import findings, objects

VALIDATIONS = "x-kubernetes-validations"
AZURE_URL = {"url": "https://acme.openai.azure.com"}
M = [{"name": "a"}]


def parse(spec: Any, kind: str = "LLMProvider") -> objects.Parsed | objects.Invalid:
    raw = {"apiVersion": "llmgateway.dev/v1alpha1", "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    return objects.parse(raw)


def refused(spec: Any, kind: str = "LLMProvider") -> list[tuple[str, str, str]]:
    bad = parse(spec, kind)
    assert isinstance(bad, objects.Invalid), bad
    return [(f.field, f.reason, f.message) for f in bad.findings]


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "azure", "azure": {"apiVersion": "2024-10-21"}, "endpoint": AZURE_URL, "models": M},
        {"type": "azure", "azure": {"apiVersion": "v1"}, "endpoint": AZURE_URL, "models": M},
        {"type": "azure", "azure": {"apiVersion": "2025-01-01-preview"}, "endpoint": AZURE_URL, "models": M},
        {"type": "bedrock", "bedrock": {"region": "eu-central-1"}, "models": M},
        {
            "type": "bedrock",
            "bedrock": {
                "region": "us-gov-west-1",
                "credentialsSecretRef": {"name": "aws", "accessKeyIdKey": "id", "secretAccessKeyKey": "s"},
            },
            "endpoint": {"url": "https://bedrock-runtime.us-gov-west-1.amazonaws.com"},
            "models": M,
        },
        {"type": "vertex", "vertex": {"project": "my-project", "location": "global"}, "models": M},
        {
            "type": "vertex",
            "vertex": {
                "project": "my-project",
                "location": "europe-west4",
                "credentialsSecretRef": {"name": "gcp", "key": "key.json"},
            },
            "models": M,
        },
        {"type": "gemini", "models": M},
        {"type": "mistral", "models": M},
        {"type": "groq", "endpoint": {"url": "https://groq-proxy.internal/openai/v1"}, "models": M},
        {"type": "litellm", "litellm": {"provider": "together_ai"}, "models": M},
    ],
)
def test_cloud_types_are_taken(spec: dict[str, Any]) -> None:
    assert isinstance(parse(spec), provider.LLMProvider)


def test_the_settings_read_back_by_their_design_names() -> None:
    p = parse(
        {
            "type": "bedrock",
            "bedrock": {
                "region": "us-east-1",
                "credentialsSecretRef": {"name": "aws", "accessKeyIdKey": "id", "secretAccessKeyKey": "s"},
            },
            "models": [{"name": "e", "mode": "embedding"}, {"name": "c"}],
        }
    )
    assert isinstance(p, provider.LLMProvider)
    assert p.spec.bedrock is not None
    assert p.spec.bedrock.credentials_secret_ref is not None
    assert p.spec.bedrock.region == "us-east-1"
    assert p.spec.bedrock.credentials_secret_ref.access_key_id_key == "id"
    assert p.spec.bedrock.credentials_secret_ref.session_token_key is None
    assert [m.mode for m in p.spec.models] == ["embedding", "chat"]


def test_the_modes_are_litellms() -> None:
    assert provider.MODES == (
        "chat",
        "embedding",
        "completion",
        "rerank",
        "image_generation",
        "audio_transcription",
    )


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        (  # azure without apiVersion
            {"type": "azure", "endpoint": AZURE_URL, "models": M},
            (
                "spec.azure",
                findings.INVALID_SPEC,
                'type azure needs spec.azure: add azure: {apiVersion: "2024-10-21"} (the Azure OpenAI '
                "API version, LiteLLM's api_version)",
            ),
        ),
        (
            {"type": "azure", "azure": {}, "endpoint": AZURE_URL, "models": M},
            (
                "spec.azure.apiVersion",
                findings.INVALID_SPEC,
                "is required: the Azure OpenAI API version, LiteLLM's api_version (e.g. 2024-10-21, "
                "2025-01-01-preview, or v1 for the v1 API)",
            ),
        ),
        (
            {"type": "azure", "azure": {"apiVersion": "2024-10-21"}, "models": M},
            (
                "spec",
                findings.INVALID_ENDPOINT,
                "type azure needs endpoint.url, the resource endpoint, e.g. endpoint: "
                "{url: https://<resource>.openai.azure.com}",
            ),
        ),
        (
            {
                "type": "azure",
                "azure": {"apiVersion": "2024-10-21"},
                "endpoint": AZURE_URL,
                "discovery": {"enabled": True},
            },
            (
                "spec.discovery.enabled",
                findings.INVALID_SPEC,
                "type azure cannot be probed (its model list needs the API key, which the operator never "
                "reads): set discovery.enabled: false and list the deployments in models",
            ),
        ),
        (  # bedrock without a region
            {"type": "bedrock", "models": M},
            (
                "spec.bedrock",
                findings.INVALID_SPEC,
                "type bedrock needs spec.bedrock: add bedrock: {region: us-east-1} (the AWS region of the "
                "Bedrock runtime)",
            ),
        ),
        (
            {"type": "bedrock", "bedrock": {}, "models": M},
            (
                "spec.bedrock.region",
                findings.INVALID_SPEC,
                "is required: the AWS region of the Bedrock runtime, LiteLLM's aws_region_name "
                "(e.g. us-east-1)",
            ),
        ),
        (
            {"type": "bedrock", "bedrock": {"region": "US-East"}, "models": M},
            ("spec.bedrock.region", findings.INVALID_SPEC, "'US-East' must be an AWS region, e.g. us-east-1"),
        ),
        (
            {"type": "vertex", "vertex": {"project": "my-project"}, "models": M},
            (
                "spec.vertex.location",
                findings.INVALID_SPEC,
                "is required: the Vertex AI location, LiteLLM's vertex_location (e.g. us-central1, global)",
            ),
        ),
        (  # spec.vertex on a vllm provider
            {
                "type": "vllm",
                "endpoint": {"url": "http://vllm:8000"},
                "vertex": {"project": "my-project", "location": "us-central1"},
                "models": M,
            },
            (
                "spec.vertex",
                findings.INVALID_SPEC,
                "spec.vertex is only for type vertex, not 'vllm': remove it, or set type: vertex",
            ),
        ),
        (  # litellm.provider: opnai
            {"type": "litellm", "litellm": {"provider": "opnai"}, "models": M},
            (
                "spec.litellm.provider",
                findings.INVALID_SPEC,
                f"'opnai' is not a provider LiteLLM {litellm_providers.LITELLM_VERSION} knows; did you mean "
                "'openai'? It has its own type: use type: openai. Also close: 'openai_like', 'topaz'.",
            ),
        ),
        (
            {"type": "litellm", "litellm": {"provider": "sambanva"}, "models": M},
            (
                "spec.litellm.provider",
                findings.INVALID_SPEC,
                f"'sambanva' is not a provider LiteLLM {litellm_providers.LITELLM_VERSION} knows; did you "
                "mean 'sambanova'? Also close: 'sagemaker_nova', 'amazon_nova'.",
            ),
        ),
        (
            {"type": "litellm", "litellm": {"provider": "vertex_ai"}, "models": M},
            (
                "spec.litellm.provider",
                findings.INVALID_SPEC,
                "'vertex_ai' has its own type: use type: vertex instead of type: litellm",
            ),
        ),
        (  # an unknown field, with the closest known one
            {"type": "openai", "models": [{"name": "a", "contextWindw": 8192}]},
            (
                "spec.models[0].contextWindw",
                findings.INVALID_SPEC,
                "is not a known field; did you mean 'contextWindow'?",
            ),
        ),
        (
            {"type": "openai", "models": [{"name": "a", "mode": "chatt"}]},
            (
                "spec.models[0].mode",
                findings.INVALID_SPEC,
                "'chatt' is not allowed; use one of 'chat', 'embedding', 'completion', 'rerank', "
                "'image_generation' or 'audio_transcription'",
            ),
        ),
    ],
)
def test_refused_in_a_sentence(spec: dict[str, Any], said: tuple[str, str, str]) -> None:
    assert refused(spec) == [said]


def test_every_misplaced_block_is_named_at_once() -> None:
    spec = {
        "type": "gemini",
        "azure": {"apiVersion": "2024-10-21"},
        "litellm": {"provider": "sambanova"},
        "models": M,
    }
    assert [field for field, _, _ in refused(spec)] == ["spec.azure", "spec.litellm"]


@pytest.mark.parametrize("prefix", sorted(clouds.TYPED_PREFIXES))
def test_a_typed_prefix_names_its_type(prefix: str) -> None:
    ((_, _, said),) = refused({"type": "litellm", "litellm": {"provider": prefix}, "models": M})
    assert (
        said
        == f"{prefix!r} has its own type: use type: {clouds.TYPED_PREFIXES[prefix]} instead of type: litellm"
    )
    assert clouds.TYPED_PREFIXES[prefix] in provider.PROVIDER_TYPES
    assert prefix in litellm_providers.PROVIDERS


def test_cloud_types_may_leave_the_endpoint_out_but_azure() -> None:
    assert frozenset(provider.CLOUD_TYPES) == {
        "openai",
        "anthropic",
        "bedrock",
        "vertex",
        "gemini",
        "mistral",
        "groq",
        "litellm",
    }
    assert set(provider.SETTINGS) == {"azure", "bedrock", "vertex", "litellm"}


# --- unknown fields: the closest known one, at any depth, for every kind ----------------------


@pytest.mark.parametrize(
    ("kind", "spec", "field", "said"),
    [
        ("LLMProvider", {"type": "openai", "modles": M}, "spec.modles", "did you mean 'models'?"),
        (
            "LLMProvider",
            {
                "type": "vllm",
                "endpoint": {"service": {"name": "v", "port": 80, "namspace": "a"}},
                "models": M,
            },
            "spec.endpoint.service.namspace",
            "did you mean 'namespace'?",
        ),
        (
            "LLMProvider",
            {"type": "bedrock", "bedrock": {"region": "us-east-1", "credentialSecretRef": {}}, "models": M},
            "spec.bedrock.credentialSecretRef",
            "did you mean 'credentialsSecretRef'?",
        ),
        (
            "LLMProvider",
            {"type": "openai", "apiKeySecretRef": {"name": "k", "key": "k", "optinal": True}, "models": M},
            "spec.apiKeySecretRef.optinal",
            "the known fields here are key, name",
        ),
        (
            "FallbackChain",
            {"model": "a", "fallbacks": ["b"], "triger": "errors"},
            "spec.triger",
            "did you mean 'trigger'?",
        ),
        ("LLMGateway", {"replicaz": 2}, "spec.replicaz", "did you mean 'replicas'?"),
        (
            "LLMGateway",
            {"pod": {"tolerations": [{"key": "gpu", "operator": "Exists", "efect": "NoSchedule"}]}},
            "spec.pod.tolerations[0].efect",
            "did you mean 'effect'?",
        ),
        (
            "LLMGateway",
            {"cache": {"redis": {"host": "r", "prot": 6379}}},
            "spec.cache.redis.prot",
            "did you mean 'port'?",
        ),
    ],
)
def test_an_unknown_field_suggests_the_closest_known_one(kind: str, spec: Any, field: str, said: str) -> None:
    reason = findings.INVALID_ENDPOINT if field.startswith("spec.endpoint.") else findings.INVALID_SPEC
    assert (field, reason, f"is not a known field; {said}") in refused(spec, kind)


def test_the_walk_follows_lists_unions_and_dicts() -> None:
    from llmgw.api.gateway import LLMGateway

    at = objects._models_at
    assert at(provider.LLMProvider, ("spec", "models", 3)) == [provider.ModelSpec]
    assert at(provider.LLMProvider, ("spec", "endpoint", "service")) == [provider.ServiceRef]
    assert at(provider.LLMProvider, ("spec", "models", 0, "params")) == []  # free-form: no suggestion
    assert at(provider.LLMProvider, ("spec", "nothing", "here")) == []
    assert at(LLMGateway, ("spec", "pod", "metadata", "labels")) == []
    assert at(provider.LLMProvider, ("spec", "endpoint", "service", "port", "int")) == []


# --- the CEL messageExpressions of the provider's rules -----------------------------------------


def _expressions(node: Any, path: str = "") -> list[tuple[str, dict[str, str]]]:
    out = [(path, r) for r in node.get(VALIDATIONS, ()) if "messageExpression" in r]
    for key, prop in node.get("properties", {}).items():
        out += _expressions(prop, f"{path}.{key}" if path else key)
    if "items" in node:
        out += _expressions(node["items"], f"{path}[]")
    return out


EXPRESSIONS = _expressions(crdgen.openapi_schema("LLMProvider"))


@pytest.mark.parametrize(
    ("path", "value", "said"),
    [
        (
            "spec",
            {"type": "vllm", "vertex": {"project": "p", "location": "l"}, "models": M},
            "spec.vertex is only for type vertex, not vllm: remove it, or set type: vertex",
        ),
        (
            "spec",
            {"type": "openai", "bedrock": {"region": "us-east-1"}, "models": M},
            "spec.bedrock is only for type bedrock, not openai: remove it, or set type: bedrock",
        ),
        (
            "spec.litellm.provider",
            "vertex_ai",
            "vertex_ai has its own type: use type: vertex instead of type: litellm",
        ),
    ],
)
def test_message_expressions_name_the_type(apiserver: Any, path: str, value: Any, said: str) -> None:
    out = [
        str(apiserver.cel.program(rule["messageExpression"]).evaluate({"self": celpy.json_to_cel(value)}))
        for where, rule in EXPRESSIONS
        if where == path and not apiserver.cel.holds(rule["rule"], value)
    ]
    assert out == [said]


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"type": "bedrock", "bedrock": {"region": "us-east-1"}}, "aws_region_name"),
        ({"type": "bedrock", "bedrock": {"region": "us-east-1"}}, "aws_secret_access_key"),
        (
            {"type": "vertex", "vertex": {"project": "my-project", "location": "us-central1"}},
            "vertex_credentials",
        ),
        (
            {
                "type": "azure",
                "azure": {"apiVersion": "2024-10-21"},
                "endpoint": {"url": "https://a.openai.azure.com"},
            },
            "api_version",
        ),
    ],
)
def test_params_may_not_set_what_the_type_renders(spec: dict[str, Any], key: str) -> None:
    models = [{"name": "m", "params": {key: "x", "max_tokens": 5}}]
    (found,) = refused({**spec, "models": models})
    assert found[0] == f"spec.models[0].params.{key}"
    assert "set it there instead" in found[2]


def test_the_long_tail_may_pass_aws_settings_through_params() -> None:
    spec = {
        "type": "litellm",
        "litellm": {"provider": "sagemaker"},
        "models": [{"name": "m", "params": {"aws_region_name": "eu-west-1"}}],
    }
    assert not isinstance(parse(spec), objects.Invalid)
