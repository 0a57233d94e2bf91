"""Asking a backend which models it serves: OpenAI-style `/v1/models`, Ollama `/api/tags`.

Errors are sentences for the provider's status: a timeout, a refused
connection, an HTTP error, or an answer that is not the JSON the API promises
(an HTML error page from a proxy, say) all say what happened and where.

The probe assumes no model mode: it only reads the model list, which names
embedding, rerank or transcription models as it names chat ones, and never
sends an inference request, so a backend that serves no chat model is as
healthy as one that does. Only the self-hosted types are probed: the cloud
types' model lists need the credentials the operator never reads (and say
nothing of a gateway's own deployments).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

MAX_BODY = 4 * 1024 * 1024
PROBED_TYPES = frozenset({"vllm", "ollama", "llamacpp", "openai-compatible"})
"""The provider types whose model list is read, without a key, at their own endpoint."""


class ProbeError(Exception):
    """A probe that could not tell which models the backend serves."""


def models_url(provider_type: str, api_base: str) -> str:
    """Where the backend lists its models; `api_base` as the renderer gives it."""
    base = api_base.rstrip("/")
    if provider_type == "ollama":
        return f"{base}/api/tags"
    if base.endswith("/v1"):
        return f"{base}/models"
    return f"{base}/v1/models"


async def list_models(
    client: httpx.AsyncClient, provider_type: str, api_base: str, timeout: float
) -> tuple[str, ...]:
    """The backend's model ids, sorted and unique."""
    url = models_url(provider_type, api_base)
    try:
        response = await client.get(url, timeout=timeout)
    except httpx.TimeoutException:
        raise ProbeError(f"GET {url} timed out after {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise ProbeError(f"GET {url} failed: {type(exc).__name__}: {exc}".rstrip(": ")) from None
    if response.status_code != 200:
        raise ProbeError(f"GET {url} answered HTTP {response.status_code}")
    body = response.content[:MAX_BODY]
    try:
        data: Any = json.loads(body)
    except ValueError:
        kind = response.headers.get("content-type", "unknown content type")
        raise ProbeError(f"GET {url} answered {kind}, not JSON: {body[:60]!r}") from None
    ids = _ollama(data) if provider_type == "ollama" else _openai(data)
    if ids is None:
        raise ProbeError(
            f"GET {url} answered JSON without the expected model list "
            + ("('models': [{'name': ...}])" if provider_type == "ollama" else "('data': [{'id': ...}])")
        )
    return tuple(sorted(set(ids)))


def _openai(data: Any) -> list[str] | None:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return None
    return [m["id"] for m in data["data"] if isinstance(m, dict) and isinstance(m.get("id"), str)]


def _ollama(data: Any) -> list[str] | None:
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        return None
    out = []
    for m in data["models"]:
        if isinstance(m, dict):
            name = m.get("name") or m.get("model")
            if isinstance(name, str):
                out.append(name)
    return out
