"""The cloud provider types, rendered by llmgw, served by a real LiteLLM proxy to fakes of each cloud.

One estate (Azure OpenAI with a chat and an embedding deployment, Bedrock with access keys
and a session token, Vertex AI with a service account key, Gemini, Mistral, Groq, SambaNova
through type litellm, a FallbackChain from Azure to Bedrock) is rendered by llmgw's real
pipeline (`estate.build` + `pipeline.run`, as the reconciler does), and ONE real `litellm`
proxy serves that config for the whole module. The harness plays the kubelet: the proxy gets
a dummy value for each Secret-backed variable the render lists, and nothing else of the
gateway's. Behind it, fakes on loopback speak each provider's own wire format
(tests/e2e/cloud_fakes.py).

Proven by a request through the proxy, in the provider's own wire format: azure (chat, and
`/v1/embeddings` for a `mode: embedding` model), bedrock (Converse, SigV4-signed with the
Secret's keys and session token, through the runtime endpoint override), gemini
(generateContent at an api_base, key in x-goog-api-key), mistral, groq and litellm/sambanova
(OpenAI-style at an api_base, bearer key), and a fallback from Azure (HTTP 500) to Bedrock.
Proven by load only: vertex (its OAuth token exchange with Google cannot be faked offline
here; the proxy lists the rendered model with provider vertex_ai).
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmgw.core import render
from llmgw.demo import backends

from . import cloud_fakes, conftest, fakes, proxy

pytestmark = pytest.mark.e2e

API_VERSION = "2024-10-21"
AZURE_CHAT = "gpt-4o-prod"  # Azure deployment names
AZURE_EMBED = "embed-large-prod"
BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"  # LiteLLM sends it to Converse
GEMINI_MODEL = "gemini-2.0-flash"
MISTRAL_MODEL = "mistral-large-latest"
GROQ_MODEL = "llama-3.3-70b-versatile"
SAMBANOVA_MODEL = "DeepSeek-R1"
FAKES = ("azure", "bedrock", "gemini", "mistral", "groq", "sambanova")
CLOUD_IDENTITY = ("AWS_", "AZURE_", "GOOGLE_", "GEMINI_")  # what the proxy may not inherit

MANIFESTS = string.Template(
    """\
apiVersion: llmgateway.dev/v1alpha1
kind: LLMGateway
metadata: {name: clouds, namespace: e2e}
spec:
  numRetries: 0
  timeoutSeconds: 20
  litellmSettings:
    disable_hf_tokenizer_download: true  # no network here; see tests/e2e/estate/gateway.yaml
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: azure-openai, namespace: e2e}
spec:
  type: azure
  endpoint: {url: "$azure_url"}
  azure: {apiVersion: "$api_version"}
  apiKeySecretRef: {name: azure-openai, key: api-key}
  models:
    - {name: gpt-4o, backendModel: $azure_chat, contextWindow: 128000}
    - {name: text-embedding-3-large, backendModel: $azure_embed, mode: embedding}
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: bedrock, namespace: e2e}
spec:
  type: bedrock
  endpoint: {url: "$bedrock_url"}
  bedrock:
    region: us-east-1
    credentialsSecretRef:
      name: aws-bedrock
      accessKeyIdKey: access-key-id
      secretAccessKeyKey: secret-access-key
      sessionTokenKey: session-token
  models:
    - {name: claude-bedrock, backendModel: "$bedrock_model", contextWindow: 200000}
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: vertex, namespace: e2e}
spec:
  type: vertex
  vertex:
    project: acme-ml-prod
    location: us-central1
    credentialsSecretRef: {name: gcp-vertex-sa, key: key.json}
  models:
    - {name: gemini-vertex, backendModel: gemini-2.0-flash-001}
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: gemini, namespace: e2e}
spec:
  type: gemini
  endpoint: {url: "$gemini_url/v1beta"}
  apiKeySecretRef: {name: gemini, key: api-key}
  models:
    - {name: gemini-flash, backendModel: $gemini_model}
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: mistral, namespace: e2e}
spec:
  type: mistral
  endpoint: {url: "$mistral_url"}
  apiKeySecretRef: {name: mistral, key: api-key}
  models:
    - {name: mistral-large, backendModel: $mistral_model}
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: groq, namespace: e2e}
spec:
  type: groq
  endpoint: {url: "$groq_url/openai/v1"}
  apiKeySecretRef: {name: groq, key: api-key}
  models:
    - {name: llama-groq, backendModel: $groq_model}
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: sambanova, namespace: e2e}
spec:
  type: litellm
  litellm: {provider: sambanova}
  endpoint: {url: "$sambanova_url/v1"}
  apiKeySecretRef: {name: sambanova, key: api-key}
  models:
    - {name: deepseek-r1, backendModel: $sambanova_model}
---
apiVersion: llmgateway.dev/v1alpha1
kind: FallbackChain
metadata: {name: gpt-4o-to-bedrock, namespace: e2e}
spec:
  model: gpt-4o
  fallbacks: [claude-bedrock]
  trigger: errors
"""
)


@pytest.fixture(scope="module")
def clouds() -> Iterator[dict[str, cloud_fakes.CloudFake]]:
    started = {name: cloud_fakes.CloudFake(name) for name in FAKES}
    with fakes.serving(*started.values()):
        yield started


@pytest.fixture(scope="module")
def rendered(clouds: dict[str, cloud_fakes.CloudFake]) -> render.Rendered:
    text = MANIFESTS.substitute(
        {f"{name}_url": fake.url for name, fake in clouds.items()},
        api_version=API_VERSION,
        azure_chat=AZURE_CHAT,
        azure_embed=AZURE_EMBED,
        bedrock_model=BEDROCK_MODEL,
        gemini_model=GEMINI_MODEL,
        mistral_model=MISTRAL_MODEL,
        groq_model=GROQ_MODEL,
        sambanova_model=SAMBANOVA_MODEL,
    )
    return conftest.pipeline_render(text).rendered


@pytest.fixture(scope="module")
def gateway(
    litellm_bin: Path, rendered: render.Rendered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[proxy.Proxy]:
    """One real proxy for the module, with the env a pod of the gateway's Deployment gets."""
    config = tmp_path_factory.mktemp("litellm-clouds") / "config.yaml"
    config.write_text(rendered.text)
    with proxy.Proxy(
        litellm_bin,
        config,
        {
            **proxy.pod_secrets(rendered.text, rendered.env),
            "AWS_EC2_METADATA_DISABLED": "true",
            "HF_HUB_OFFLINE": "1",
        },
        # Nothing of this machine's cloud identity: only what the render hands the proxy.
        inherit={k: v for k, v in os.environ.items() if not k.startswith(CLOUD_IDENTITY)},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(gateway: proxy.Proxy) -> Iterator[httpx.Client]:
    with gateway.client() as c:
        yield c


@pytest.fixture(autouse=True)
def clean(clouds: dict[str, cloud_fakes.CloudFake]) -> Iterator[None]:
    """Every test starts and ends with healthy fakes that have received nothing."""
    with fakes.fresh(clouds.values()):
        yield


def chat(client: httpx.Client, model: str, **extra: Any) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "Say hello."}], **extra},
    )


def answer(response: httpx.Response, gateway: proxy.Proxy) -> str:
    assert response.status_code == 200, f"{response.text}\n{gateway.tail()}"
    return str(response.json()["choices"][0]["message"]["content"])


def asked(clouds: dict[str, cloud_fakes.CloudFake]) -> dict[str, int]:
    return {name: n for name, fake in clouds.items() if (n := len(fake.received()))}


# -- the proxy loads every type --------------------------------------------------------------------


def test_the_proxy_loads_every_rendered_model_with_its_provider(client: httpx.Client) -> None:
    listed = client.get("/model/info")
    assert listed.status_code == 200, listed.text
    models = {m["model_name"]: m["model_info"] for m in listed.json()["data"]}
    assert {name: m["litellm_provider"] for name, m in models.items()} == {
        "gpt-4o": "azure",
        "text-embedding-3-large": "azure",
        "claude-bedrock": "bedrock",
        "gemini-vertex": "vertex_ai",  # load only: Vertex's token exchange cannot be faked offline
        "gemini-flash": "gemini",
        "mistral-large": "mistral",
        "llama-groq": "groq",
        "deepseek-r1": "sambanova",
    }
    assert models["text-embedding-3-large"]["mode"] == "embedding"
    assert models["gemini-vertex"]["id"] == "e2e/vertex/gemini-vertex"


# -- a request per type, in the provider's own wire format -----------------------------------------


def test_azure_chat_goes_to_the_deployment_with_the_api_version_and_key(
    client: httpx.Client, gateway: proxy.Proxy, clouds: dict[str, cloud_fakes.CloudFake]
) -> None:
    assert answer(chat(client, "gpt-4o"), gateway) == backends.answer_text("azure", AZURE_CHAT)
    (call,) = clouds["azure"].received()
    assert call.api == "azure-chat"
    assert call.path == f"/openai/deployments/{AZURE_CHAT}/chat/completions"
    assert call.query["api-version"] == [API_VERSION]
    assert call.headers["api-key"] == proxy.dummy("azure-openai", "api-key")
    assert call.body["messages"] == [{"role": "user", "content": "Say hello."}]
    assert asked(clouds) == {"azure": 1}


def test_an_embedding_model_answers_on_v1_embeddings(
    client: httpx.Client, gateway: proxy.Proxy, clouds: dict[str, cloud_fakes.CloudFake]
) -> None:
    response = client.post(
        "/v1/embeddings", json={"model": "text-embedding-3-large", "input": ["hello", "world"]}
    )
    assert response.status_code == 200, f"{response.text}\n{gateway.tail()}"
    data = response.json()["data"]
    assert [d["index"] for d in data] == [0, 1]
    assert all(d["embedding"] == pytest.approx(list(cloud_fakes.EMBEDDING)) for d in data)
    (call,) = clouds["azure"].received()
    assert call.api == "azure-embeddings"
    assert call.path == f"/openai/deployments/{AZURE_EMBED}/embeddings"
    assert call.query["api-version"] == [API_VERSION]
    assert call.body["input"] == ["hello", "world"]
    assert call.headers["api-key"] == proxy.dummy("azure-openai", "api-key")


def test_bedrock_converse_is_signed_with_the_secrets_keys_at_the_runtime_endpoint(
    client: httpx.Client, gateway: proxy.Proxy, clouds: dict[str, cloud_fakes.CloudFake]
) -> None:
    assert answer(chat(client, "claude-bedrock"), gateway) == backends.answer_text("bedrock", BEDROCK_MODEL)
    (call,) = clouds["bedrock"].received()
    assert call.api == "bedrock-converse"
    assert call.path == f"/model/{BEDROCK_MODEL}/converse"
    authorization = call.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=")
    key_id, _date, region, service, _ = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    assert (key_id, region, service) == (proxy.dummy("aws-bedrock", "access-key-id"), "us-east-1", "bedrock")
    assert call.headers["x-amz-security-token"] == proxy.dummy("aws-bedrock", "session-token")
    assert call.body["messages"] == [{"role": "user", "content": [{"text": "Say hello."}]}]


def test_gemini_generate_content_at_the_api_base_with_the_key(
    client: httpx.Client, gateway: proxy.Proxy, clouds: dict[str, cloud_fakes.CloudFake]
) -> None:
    assert answer(chat(client, "gemini-flash"), gateway) == backends.answer_text("gemini", GEMINI_MODEL)
    (call,) = clouds["gemini"].received()
    assert call.api == "gemini"
    assert call.path == f"/v1beta/models/{GEMINI_MODEL}:generateContent"
    assert call.headers["x-goog-api-key"] == proxy.dummy("gemini", "api-key")
    assert call.body["contents"] == [{"role": "user", "parts": [{"text": "Say hello."}]}]


@pytest.mark.parametrize(
    ("model", "fake", "wire", "backend", "path"),
    [
        (
            "mistral-large",
            "mistral",
            "openai-chat",
            MISTRAL_MODEL,
            "/v1/chat/completions",
        ),  # LiteLLM adds /v1
        ("llama-groq", "groq", "groq-chat", GROQ_MODEL, "/openai/v1/chat/completions"),  # the URL as written
        ("deepseek-r1", "sambanova", "openai-chat", SAMBANOVA_MODEL, "/v1/chat/completions"),  # type litellm
    ],
)
def test_openai_style_clouds_at_the_api_base_with_the_key(
    client: httpx.Client,
    gateway: proxy.Proxy,
    clouds: dict[str, cloud_fakes.CloudFake],
    model: str,
    fake: str,
    wire: str,
    backend: str,
    path: str,
) -> None:
    assert answer(chat(client, model), gateway) == backends.answer_text(fake, backend)
    (call,) = clouds[fake].received()
    assert (call.api, call.path, call.model) == (wire, path, backend)
    assert call.headers["authorization"] == f"Bearer {proxy.dummy(fake, 'api-key')}"
    assert asked(clouds) == {fake: 1}


# -- a fallback across clouds ----------------------------------------------------------------------


def test_a_failing_azure_deployment_falls_back_to_bedrock(
    client: httpx.Client, gateway: proxy.Proxy, clouds: dict[str, cloud_fakes.CloudFake]
) -> None:
    clouds["azure"].failing = True
    response = chat(client, "gpt-4o")

    assert answer(response, gateway) == backends.answer_text("bedrock", BEDROCK_MODEL)
    assert response.headers["x-litellm-attempted-fallbacks"] == "1"
    assert response.headers["x-litellm-model-id"] == "e2e/bedrock/claude-bedrock"
    assert [c.api for c in clouds["azure"].received()] == ["azure-chat"]  # numRetries: 0
    assert [c.api for c in clouds["bedrock"].received()] == ["bedrock-converse"]
    assert asked(clouds).keys() == {"azure", "bedrock"}
