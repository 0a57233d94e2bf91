"""Each provider type renders the `litellm_params` the pinned LiteLLM (1.106.2) reads for it.

Read in LiteLLM's code, not guessed:
- azure (`main.py`, the Azure branch; `llms/azure/common_utils.py`): `azure/<deployment>`,
  `api_base` the resource endpoint (the OpenAI client adds `/openai/deployments/<d>/...`),
  `api_version`, `api_key`;
- bedrock (`llms/bedrock/base_aws_llm.py`: `get_runtime_endpoint`, the `aws_*` auth params):
  `bedrock/<model id>`, `aws_region_name`, `aws_access_key_id` / `aws_secret_access_key` /
  `aws_session_token`, `aws_bedrock_runtime_endpoint` for a private endpoint;
- vertex (`main.py` `_complete_vertex_ai`; `VertexBase.load_auth` parses a string that is not
  a path as the service account JSON): `vertex_ai/<model>`, `vertex_project`,
  `vertex_location`, `vertex_credentials`;
- gemini, mistral, groq and the long tail (`get_llm_provider_logic.py`): `<prefix>/<model>`,
  `api_key`, `api_base` when given (mistral adds `/v1` itself, gemini appends
  `/models/<model>:generateContent`).

Every credential is an `os.environ/` reference to a variable the render lists, which the
Deployment takes from the Secret (secretKeyRef) and the revision records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from llmgw.api import provider as provider_api
from llmgw.api.common import SecretKeyRef
from llmgw.core import desired, endpoints, render, revisions
from llmgw.probes import discovery

AZURE_KEY = {"name": "azure-openai", "key": "api-key"}
AWS = {"name": "aws-bedrock", "accessKeyIdKey": "access-key-id", "secretAccessKeyKey": "secret-access-key"}
GCP = {"name": "gcp-vertex-sa", "key": "key.json"}
GEMINI_KEY = {"name": "gemini", "key": "api-key"}
MISTRAL_KEY = {"name": "mistral", "key": "api-key"}
GROQ_KEY = {"name": "groq", "key": "api-key"}
SAMBANOVA_KEY = {"name": "sambanova", "key": "api-key"}


def var(name: str, key: str) -> str:
    return "os.environ/" + render.secret_env_name(SecretKeyRef(name=name, key=key))


def params(rendered: render.Rendered, model: str) -> dict[str, Any]:
    (entry,) = [m for m in rendered.config["model_list"] if m["model_name"] == model]
    return dict(entry["litellm_params"])


def info(rendered: render.Rendered, model: str) -> dict[str, Any]:
    (entry,) = [m for m in rendered.config["model_list"] if m["model_name"] == model]
    return dict(entry["model_info"])


def scalars(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from scalars(value)
    elif isinstance(node, list):
        for value in node:
            yield from scalars(value)
    else:
        yield node


@pytest.fixture
def estate(provider):
    """One provider of every new type, with credentials where the type takes them."""
    return [
        provider(
            "azure",
            {"name": "gpt-4o", "backendModel": "gpt-4o-prod", "contextWindow": 128000},
            {"name": "text-embedding-3-large", "mode": "embedding"},
            type="azure",
            url="https://contoso-eastus.openai.azure.com/",
            azure={"apiVersion": "2024-10-21"},
            apiKeySecretRef=AZURE_KEY,
        ),
        provider(
            "bedrock",
            {"name": "claude-bedrock", "backendModel": "anthropic.claude-3-5-sonnet-20240620-v1:0"},
            {"name": "titan-embed", "backendModel": "amazon.titan-embed-text-v2:0", "mode": "embedding"},
            type="bedrock",
            url=None,
            bedrock={
                "region": "us-east-1",
                "credentialsSecretRef": {**AWS, "sessionTokenKey": "session-token"},
            },
        ),
        provider(
            "vertex",
            {"name": "gemini-vertex", "backendModel": "gemini-2.0-flash-001"},
            type="vertex",
            url=None,
            vertex={"project": "acme-ml-prod", "location": "us-central1", "credentialsSecretRef": GCP},
        ),
        provider(
            "gemini",
            {"name": "gemini-flash", "backendModel": "gemini-2.0-flash"},
            type="gemini",
            url=None,
            apiKeySecretRef=GEMINI_KEY,
        ),
        provider(
            "mistral",
            {"name": "mistral-large", "backendModel": "mistral-large-latest", "rpm": 60},
            type="mistral",
            url=None,
            apiKeySecretRef=MISTRAL_KEY,
        ),
        provider(
            "groq",
            {"name": "llama-groq", "backendModel": "llama-3.3-70b-versatile"},
            type="groq",
            url="https://groq-egress.internal/openai/v1",
            apiKeySecretRef=GROQ_KEY,
        ),
        provider(
            "sambanova",
            {"name": "deepseek-samba", "backendModel": "DeepSeek-R1"},
            type="litellm",
            url=None,
            litellm={"provider": "sambanova"},
            apiKeySecretRef=SAMBANOVA_KEY,
        ),
    ]


@pytest.fixture
def built(estate, gateway, outcome):
    out = outcome(gateway("gw"), *estate)
    assert not out.resolution.findings, out.resolution.findings
    return out


@pytest.fixture
def rendered(built) -> render.Rendered:
    return built.rendered


def test_azure_is_the_deployment_at_the_resource_endpoint(rendered):
    assert params(rendered, "gpt-4o") == {
        "model": "azure/gpt-4o-prod",
        "api_base": "https://contoso-eastus.openai.azure.com",  # no /v1: the client adds the path
        "api_version": "2024-10-21",
        "api_key": var("azure-openai", "api-key"),
    }


def test_bedrock_signs_with_the_access_keys_of_its_secret(rendered):
    assert params(rendered, "claude-bedrock") == {
        "model": "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
        "aws_region_name": "us-east-1",
        "aws_access_key_id": var("aws-bedrock", "access-key-id"),
        "aws_secret_access_key": var("aws-bedrock", "secret-access-key"),
        "aws_session_token": var("aws-bedrock", "session-token"),
    }


def test_vertex_reads_its_service_account_json_from_the_environment(rendered):
    assert params(rendered, "gemini-vertex") == {
        "model": "vertex_ai/gemini-2.0-flash-001",
        "vertex_project": "acme-ml-prod",
        "vertex_location": "us-central1",
        "vertex_credentials": var("gcp-vertex-sa", "key.json"),
    }


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gemini-flash", {"model": "gemini/gemini-2.0-flash", "api_key": var("gemini", "api-key")}),
        (
            "mistral-large",
            {"model": "mistral/mistral-large-latest", "api_key": var("mistral", "api-key"), "rpm": 60},
        ),
        (
            "llama-groq",
            {
                "model": "groq/llama-3.3-70b-versatile",
                "api_base": "https://groq-egress.internal/openai/v1",  # as written: no /v1 added
                "api_key": var("groq", "api-key"),
            },
        ),
        ("deepseek-samba", {"model": "sambanova/DeepSeek-R1", "api_key": var("sambanova", "api-key")}),
    ],
)
def test_key_based_clouds_have_their_prefix_and_key(rendered, model, expected):
    assert params(rendered, model) == expected


def test_bedrock_without_credentials_uses_the_pods_identity(provider, gateway, outcome):
    out = outcome(
        gateway("gw"),
        provider(
            "b",
            {"name": "nova", "backendModel": "amazon.nova-pro-v1:0"},
            type="bedrock",
            url=None,
            bedrock={"region": "eu-west-1"},
        ),
    ).rendered
    assert params(out, "nova") == {"model": "bedrock/amazon.nova-pro-v1:0", "aws_region_name": "eu-west-1"}
    assert [e.name for e in out.env] == [render.MASTER_KEY_ENV]


def test_vertex_without_credentials_uses_workload_identity(provider, gateway, outcome):
    out = outcome(
        gateway("gw"),
        provider(
            "v",
            "gemini-2.5-pro",
            type="vertex",
            url=None,
            vertex={"project": "acme-ml-prod", "location": "global"},
        ),
    ).rendered
    assert params(out, "gemini-2.5-pro") == {
        "model": "vertex_ai/gemini-2.5-pro",
        "vertex_project": "acme-ml-prod",
        "vertex_location": "global",
    }
    assert [e.name for e in out.env] == [render.MASTER_KEY_ENV]


def test_a_private_bedrock_endpoint_is_the_runtime_endpoint_override(provider, gateway, outcome):
    out = outcome(
        gateway("gw"),
        provider(
            "b",
            {"name": "claude", "backendModel": "anthropic.claude-3-haiku-20240307-v1:0"},
            type="bedrock",
            url="https://vpce-0abc.bedrock-runtime.us-east-1.vpce.amazonaws.com/",
            bedrock={"region": "us-east-1", "credentialsSecretRef": AWS},
        ),
    ).rendered
    p = params(out, "claude")
    assert (
        p["aws_bedrock_runtime_endpoint"] == "https://vpce-0abc.bedrock-runtime.us-east-1.vpce.amazonaws.com"
    )
    assert "api_base" not in p


@pytest.mark.parametrize(
    ("type_", "settings", "url", "key"),
    [
        (
            "vertex",
            {"vertex": {"project": "acme-ml-prod", "location": "us-central1"}},
            "https://us-central1-aiplatform.googleapis.com",
            "api_base",
        ),
        ("gemini", {}, "https://gemini-proxy.internal/v1beta", "api_base"),
        ("mistral", {}, "https://mistral-proxy.internal", "api_base"),
        (
            "litellm",
            {"litellm": {"provider": "together_ai"}},
            "https://together-proxy.internal/v1",
            "api_base",
        ),
    ],
)
def test_an_endpoint_of_a_cloud_type_is_its_api_base_as_written(
    provider, gateway, outcome, type_, settings, url, key
):
    out = outcome(gateway("gw"), provider("p", "m", type=type_, url=url, **settings)).rendered
    assert params(out, "m")[key] == url


def test_modes_other_than_chat_are_model_info_mode(rendered):
    assert info(rendered, "text-embedding-3-large")["mode"] == "embedding"
    assert info(rendered, "titan-embed")["mode"] == "embedding"
    # chat is LiteLLM's own default: not rendered, so a chat model renders as it always did
    assert "mode" not in info(rendered, "gpt-4o")
    assert info(rendered, "gpt-4o")["max_input_tokens"] == 128000


@pytest.mark.parametrize("mode", ["completion", "rerank", "image_generation", "audio_transcription"])
def test_every_mode_is_rendered(provider, gateway, outcome, mode):
    out = outcome(gateway("gw"), provider("p", {"name": "m", "mode": mode})).rendered
    assert info(out, "m")["mode"] == mode


def test_a_chat_model_renders_byte_identically_with_or_without_mode_chat(provider, gateway, outcome):
    plain = outcome(gateway("gw"), provider("p", {"name": "m", "contextWindow": 8192})).rendered
    chat = outcome(
        gateway("gw"), provider("p", {"name": "m", "contextWindow": 8192, "mode": "chat"})
    ).rendered
    assert plain.text == chat.text


def test_other_params_pass_through_beside_the_typed_settings(provider, gateway, outcome):
    # Setting api_version through params is refused for type azure (tests/api/test_provider_types.py).
    out = outcome(
        gateway("gw"),
        provider(
            "a",
            {"name": "m", "params": {"max_parallel_requests": 4}},
            type="azure",
            url="https://contoso.openai.azure.com",
            azure={"apiVersion": "2024-10-21"},
        ),
    ).rendered
    assert params(out, "m") == {
        "model": "azure/m",
        "api_base": "https://contoso.openai.azure.com",
        "api_version": "2024-10-21",
        "max_parallel_requests": 4,
    }


# -- no credential but as os.environ/ -------------------------------------------------------------

SECRET_REFS = [
    ("azure-openai", "api-key"),
    ("aws-bedrock", "access-key-id"),
    ("aws-bedrock", "secret-access-key"),
    ("aws-bedrock", "session-token"),
    ("gcp-vertex-sa", "key.json"),
    ("gemini", "api-key"),
    ("mistral", "api-key"),
    ("groq", "api-key"),
    ("sambanova", "api-key"),
]
CREDENTIAL_PARAMS = {
    "api_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "vertex_credentials",
}


def test_every_credential_is_an_environment_reference_the_render_lists(rendered):
    env = {e.name for e in rendered.env}
    seen = 0
    for entry in rendered.config["model_list"]:
        for name, value in entry["litellm_params"].items():
            if name in CREDENTIAL_PARAMS:
                seen += 1
                assert isinstance(value, str), (name, value)
                assert value.startswith("os.environ/"), (name, value)
                assert value.removeprefix("os.environ/") in env
    assert seen == 13  # 2 azure + 2 x 3 bedrock + vertex + gemini + mistral + groq + sambanova


def test_no_secret_name_or_key_appears_but_in_the_header(rendered):
    words = {
        "aws-bedrock",
        "access-key-id",
        "secret-access-key",
        "session-token",
        "gcp-vertex-sa",
        "key.json",
    }
    body = "\n".join(line for line in rendered.text.splitlines() if not line.startswith("#"))
    for word in words:
        assert word not in body, word
    strings = [v for v in scalars(rendered.config) if isinstance(v, str)]
    assert not [v for v in strings for w in words if w in v]


def test_each_secret_key_reaches_the_deployment_as_a_secret_key_ref(built, rendered):
    assert {(e.secret, e.key) for e in rendered.env} - {("gw-master-key", "master-key")} == set(SECRET_REFS)
    deployment = desired.deployment(built.resolution.gateway, rendered)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    from_secrets = {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container["env"]
        if "valueFrom" in e
    }
    for name, key in SECRET_REFS:
        variable = render.secret_env_name(SecretKeyRef(name=name, key=key))
        assert from_secrets[variable] == (name, key)
        assert f"#   {variable}: Secret {name}, key {key}" in rendered.text


def test_the_revision_records_the_credentials_variables(rendered):
    recorded = json.loads(revisions.contents(rendered, [], 1).annotations[revisions.ENV])
    assert {(secret, key) for _, secret, key in recorded} >= set(SECRET_REFS)


def test_the_render_is_deterministic(estate, gateway, outcome):
    first = outcome(gateway("gw"), *estate).rendered
    again = outcome(*reversed([gateway("gw"), *estate])).rendered
    assert first.text == again.text
    assert first.hash == again.hash


def test_every_type_has_a_default_endpoint_or_is_azure_or_is_probed():
    """Cloud types may leave out the endpoint (LiteLLM's default) and are never probed; azure
    names its resource; the self-hosted types are the ones discovery reads, and the only ones
    that get `/v1` appended."""
    assert set(provider_api.PROVIDER_TYPES) == provider_api.CLOUD_TYPES | {"azure"} | discovery.PROBED_TYPES
    assert not provider_api.CLOUD_TYPES & discovery.PROBED_TYPES
    assert endpoints.OPENAI_V1 <= discovery.PROBED_TYPES
