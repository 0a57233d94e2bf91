"""A real LiteLLM proxy serves what `llmgw render` wrote: routes, aliases, fallbacks, keys.

The estate (tests/e2e/estate/) has a vLLM model with an alias and a
FallbackChain to an Ollama model, a llama.cpp model without an API key, and an
OpenAI-compatible model whose key comes from a Secret. Every backend is a fake
that names itself in its answers and counts what it received, so each test
can say which backend served a request, and how often each was asked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from llmgw.demo import backends

from . import conftest, fakes, proxy

pytestmark = pytest.mark.e2e

# The backend model ids the estate's `backendModel`s name, one per fake.
((VLLM_MODEL,), (OLLAMA_MODEL,), (LLAMACPP_MODEL,), (TGI_MODEL,)) = (
    conftest.BACKENDS[name] for name in ("vllm", "ollama", "llamacpp", "tgi")
)


@pytest.fixture(autouse=True)
def clean(servers: dict[str, backends.FakeBackend]) -> Iterator[None]:
    """Every test starts and ends with healthy fakes that have received nothing."""
    with fakes.fresh(servers.values()):
        yield


def chat(
    client: httpx.Client, model: str, headers: dict[str, str] | None = None, **extra: object
) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "Say hello."}], **extra},
        headers=headers,
    )


def answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def asked(servers: dict[str, backends.FakeBackend]) -> dict[str, int]:
    """Chat requests each fake received, by fake name (zeros left out)."""
    return {name: n for name, fake in servers.items() if (n := fake.counts().total())}


def test_the_proxy_serves_every_rendered_model_and_alias(client: httpx.Client) -> None:
    listed = client.get("/v1/models")
    assert listed.status_code == 200, listed.text
    assert sorted(m["id"] for m in listed.json()["data"]) == [
        "llama",
        "llama-3.1-8b",
        "llama-3.2-3b",
        "mistral-7b",
        "phi-3-mini",
    ]


def test_vllm_model_is_answered_by_vllm(
    client: httpx.Client, servers: dict[str, backends.FakeBackend]
) -> None:
    response = chat(client, "llama-3.1-8b")

    assert answer(response) == backends.answer_text("vllm", VLLM_MODEL)
    assert servers["vllm"].counts() == {VLLM_MODEL: 1}
    assert asked(servers) == {"vllm": 1}
    # The deployment id is the renderer's model_info.id: namespace/provider/model.
    assert response.headers["x-litellm-model-id"] == "e2e/fake-vllm/llama-3.1-8b"
    # The renderer appended /v1 to the bare URL; the fake answered on /v1/chat/completions.
    assert [r.api for r in servers["vllm"].received()] == ["openai"]


def test_failing_vllm_falls_back_to_ollama(
    client: httpx.Client, servers: dict[str, backends.FakeBackend]
) -> None:
    with servers["vllm"].failing_now():
        response = chat(client, "llama-3.1-8b")

    assert answer(response) == backends.answer_text("ollama", OLLAMA_MODEL)
    # numRetries: 0 on the gateway: one attempt at vLLM, then the FallbackChain's next model.
    assert servers["vllm"].counts() == {VLLM_MODEL: 1}
    assert servers["ollama"].counts() == {OLLAMA_MODEL: 1}
    assert asked(servers) == {"vllm": 1, "ollama": 1}
    assert response.headers["x-litellm-attempted-fallbacks"] == "1"
    assert response.headers["x-litellm-model-id"] == "e2e/fake-ollama/llama-3.2-3b"

    # Healthy again, vLLM serves the next request: a failure leaves no lasting cooldown
    # on a model group of one deployment.
    assert answer(chat(client, "llama-3.1-8b")) == backends.answer_text("vllm", VLLM_MODEL)
    assert servers["vllm"].counts() == {VLLM_MODEL: 2}


def test_alias_is_answered_by_its_model(
    client: httpx.Client, servers: dict[str, backends.FakeBackend]
) -> None:
    assert answer(chat(client, "llama")) == backends.answer_text("vllm", VLLM_MODEL)
    assert asked(servers) == {"vllm": 1}


def test_failure_without_fallback_is_reported_at_once(
    client: httpx.Client, servers: dict[str, backends.FakeBackend]
) -> None:
    started = time.monotonic()
    with servers["vllm"].failing_now():
        response = chat(client, "llama-3.1-8b", disable_fallbacks=True)
    elapsed = time.monotonic() - started

    assert response.status_code == 500, response.text
    assert "vllm is failing on purpose" in response.json()["error"]["message"]
    assert asked(servers) == {"vllm": 1}
    # Seconds, not the ~24 s of tokenizer downloads retried without network
    # (the e2e gateway sets litellmSettings.disable_hf_tokenizer_download).
    assert elapsed < 10, f"{elapsed:.1f} s"


def test_alias_follows_its_models_fallback_chain(
    client: httpx.Client, servers: dict[str, backends.FakeBackend]
) -> None:
    with servers["vllm"].failing_now():
        response = chat(client, "llama")

    assert answer(response) == backends.answer_text("ollama", OLLAMA_MODEL)
    assert asked(servers) == {"vllm": 1, "ollama": 1}


def test_ollama_model_is_answered_by_ollama(
    client: httpx.Client, servers: dict[str, backends.FakeBackend]
) -> None:
    assert answer(chat(client, "llama-3.2-3b")) == backends.answer_text("ollama", OLLAMA_MODEL)
    assert asked(servers) == {"ollama": 1}
    # ollama_chat/ speaks Ollama's own API at the server root, not the OpenAI one.
    (received,) = servers["ollama"].received()
    assert received.api == "ollama"
    assert received.body["stream"] is False


def test_llamacpp_model_without_api_key_uses_the_placeholder(
    client: httpx.Client, servers: dict[str, backends.FakeBackend]
) -> None:
    assert answer(chat(client, "phi-3-mini")) == backends.answer_text("llamacpp", LLAMACPP_MODEL)
    (received,) = servers["llamacpp"].received()
    assert received.authorization == "Bearer no-key"


def test_api_key_from_a_secret_reaches_the_backend(
    client: httpx.Client, gateway: proxy.Proxy, servers: dict[str, backends.FakeBackend]
) -> None:
    # The header of the rendered config names the variable; the fixture gave it a dummy value.
    (key,) = [value for var, value in gateway.variables.items() if var != "LITELLM_MASTER_KEY"]
    assert answer(chat(client, "mistral-7b")) == backends.answer_text("tgi", TGI_MODEL)
    (received,) = servers["tgi"].received()
    assert received.authorization == f"Bearer {key}"
    # The URL already ended in /v1, and the renderer did not add another.
    assert received.api == "openai"


def test_wrong_master_key_is_refused(client: httpx.Client, servers: dict[str, backends.FakeBackend]) -> None:
    response = chat(client, "llama-3.1-8b", headers={"Authorization": "Bearer sk-wrong"})

    # Not 401: a key that is not the master key is looked up as a virtual key in
    # LiteLLM's database, and the gateway has none (litellm/proxy/auth/
    # user_api_key_auth.py: `prisma_client is None` -> ProxyException code 400).
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "no_db_connection"
    assert asked(servers) == {}


def test_missing_key_is_refused(gateway: proxy.Proxy, servers: dict[str, backends.FakeBackend]) -> None:
    with gateway.client(key=None) as anonymous:
        response = chat(anonymous, "llama-3.1-8b")

    # LiteLLM raises "No api key passed in."; auth_exception_handler._as_proxy_exception
    # turns that into a 401 after importing `prisma`, which the official image has and
    # `litellm[proxy]` from PyPI does not: here the import fails and the answer is 500.
    # Either way the request is refused and reaches no backend.
    assert response.status_code in (401, 500), response.text
    assert asked(servers) == {}


def test_unknown_model_is_refused(client: httpx.Client, servers: dict[str, backends.FakeBackend]) -> None:
    response = chat(client, "mistral-7b-instruct")

    assert response.status_code == 400, response.text
    assert "Invalid model name" in response.json()["error"]["message"]
    assert asked(servers) == {}


@pytest.mark.parametrize("path", ["/health/liveliness", "/health/readiness"])
def test_health_endpoints_need_no_key(gateway: proxy.Proxy, path: str) -> None:
    # The gateway Deployment's probes carry no key.
    with gateway.client(key=None, timeout=10.0) as anonymous:
        assert anonymous.get(path).status_code == 200
