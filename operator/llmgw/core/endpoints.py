"""Where each provider's backend is: its Service, its port, and the base URL LiteLLM is given.

Resolved once per estate and read by the render, the prober, statuses and
metrics, so that none of them works out on its own which Service, port or URL
a provider means.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from urllib.parse import urlsplit

from llmgw.api.provider import LLMProvider
from llmgw.core.keys import Key

OPENAI_V1 = frozenset({"vllm", "llamacpp", "openai-compatible"})
"""Types whose servers speak the OpenAI API under `/v1`.

Every other type is given its URL as written. For azure that is the resource endpoint
(`https://<resource>.openai.azure.com`: LiteLLM's Azure client adds
`/openai/deployments/<deployment>/...`, or `/openai/v1/` for api_version v1); for bedrock
the runtime endpoint; for gemini the API root (LiteLLM adds `/models/<model>:generateContent`);
mistral gets `/v1` from LiteLLM itself. A cloud type without an endpoint has no api_base at
all, which LiteLLM reads as its public endpoint (`llmgw.api.provider.CLOUD_TYPES`)."""


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One provider's backend, as far as the operator can tell."""

    service: Key | None = None
    """The in-cluster Service the endpoint names, if it names one."""
    port: int | str | None = None
    """The Service port as declared: a number or a name."""
    ports: Mapping[str, int] | None = None
    """The named ports of that Service; None when the Service is not known."""
    number: int | None = None
    """The port number, once a named port is resolved."""
    api_base: str | None = None
    """The base URL as LiteLLM wants it; None for a cloud type's default endpoint, or
    while a named port cannot be resolved."""


def resolve(p: LLMProvider, service_ports: Mapping[tuple[str, str], Mapping[str, int]]) -> Endpoint:
    """In-cluster backends are reached by Service DNS, a named port resolved through the
    Service's ports; OpenAI-style servers get `/v1` unless their URL already has a path."""
    endpoint = p.spec.endpoint
    if endpoint is None:
        return Endpoint()
    if endpoint.url is not None:
        return Endpoint(api_base=_v1(p, endpoint.url.rstrip("/")))
    svc = endpoint.service
    assert svc is not None  # the model guarantees exactly one
    key = (svc.namespace or p.metadata.namespace, svc.name)
    ports = service_ports.get(key)
    number = svc.port if isinstance(svc.port, int) else (ports or {}).get(svc.port)
    base = None
    if number is not None:
        base = _v1(p, f"http://{svc.name}.{key[0]}.svc.cluster.local:{number}")
    return Endpoint(service=key, port=svc.port, ports=ports, number=number, api_base=base)


def _v1(p: LLMProvider, base: str) -> str:
    if p.spec.type in OPENAI_V1 and urlsplit(base).path in ("", "/"):
        return base + "/v1"
    return base
