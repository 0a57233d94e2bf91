"""`LLMProvider`: one backend and the models it serves."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from llmgw.api import passthrough
from llmgw.api.common import (
    ENV_PREFIX,
    Conditions,
    DnsLabel,
    Model,
    ModelNameStr,
    ObjectMeta,
    SecretKeyRef,
)

ProviderType = Literal["vllm", "ollama", "llamacpp", "openai", "anthropic", "openai-compatible"]
PROVIDER_TYPES: tuple[str, ...] = ProviderType.__args__  # type: ignore[attr-defined]
CLOUD_TYPES = frozenset({"openai", "anthropic"})
"""Types with a well-known public endpoint, so `endpoint` may be left out."""

URL_PATTERN = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"
PORT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

MAX_MODELS_PER_PROVIDER = 1000
MAX_ALIASES_PER_MODEL = 64
"""Bounds that keep the CRD's CEL rules within the API server's cost budget."""

BackendModelStr = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\s'\"]+$")]


class ServiceRef(Model):
    """An in-cluster backend reached by Service DNS."""

    name: DnsLabel = Field(description="Name of the Service.")
    namespace: DnsLabel | None = Field(
        default=None, description="Namespace of the Service; defaults to the provider's namespace."
    )
    port: int | Annotated[str, StringConstraints(min_length=1, max_length=15, pattern=PORT_NAME_PATTERN)] = (
        Field(
            description="Service port, by number (1-65535) or by name.",
            # _port_range checks the number; the schema says it too (it applies to integers only).
            json_schema_extra={"minimum": 1, "maximum": 65535},
        )
    )

    @field_validator("port")
    @classmethod
    def _port_range(cls, port: int | str) -> int | str:
        if isinstance(port, int) and not 1 <= port <= 65535:
            raise ValueError("port must be between 1 and 65535")
        return port


class Endpoint(Model):
    """Where the backend listens: exactly one of `url` or `service`."""

    url: Annotated[str, StringConstraints(max_length=2048, pattern=URL_PATTERN)] | None = Field(
        default=None,
        description="Base URL of the backend, http:// or https:// (e.g. https://api.openai.com/v1).",
    )
    service: ServiceRef | None = Field(
        default=None, description="An in-cluster Service in front of the backend."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Endpoint:
        if (self.url is None) == (self.service is None):
            raise ValueError("set exactly one of endpoint.url or endpoint.service")
        return self


class ModelSpec(Model):
    """One model the provider serves."""

    name: ModelNameStr = Field(description="The name clients ask the gateway for.")
    backend_model: BackendModelStr | None = Field(
        default=None, description="The backend's own model id; defaults to name."
    )
    aliases: tuple[ModelNameStr, ...] = Field(
        default=(),
        max_length=MAX_ALIASES_PER_MODEL,
        description="More names for the same model group (LiteLLM model_group_alias).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    context_window: int | None = Field(
        default=None, ge=1, description="Maximum input tokens (model_info.max_input_tokens)."
    )
    rpm: int | None = Field(default=None, ge=1, description="Requests per minute for this deployment.")
    tpm: int | None = Field(default=None, ge=1, description="Tokens per minute for this deployment.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Any other litellm_params key, passed through. May not set model, api_base, "
            "api_key, rpm or tpm, nor read the environment."
        ),
    )

    @field_validator("name", "backend_model")
    @classmethod
    def _no_env(cls, value: str | None) -> str | None:
        if value is not None and value.startswith(ENV_PREFIX):
            raise ValueError(f"may not start with {ENV_PREFIX!r}")
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        found = list(
            passthrough.problems(
                value,
                passthrough.RESERVED_PARAMS,
                "use the typed field (endpoint, apiKeySecretRef, rpm, tpm) instead",
            )
        )
        if found:
            raise ValueError("; ".join(found))
        return value

    @model_validator(mode="after")
    def _aliases(self) -> ModelSpec:
        if self.name in self.aliases:
            raise ValueError(f"alias {self.name!r} repeats the model's own name")
        if len(set(self.aliases)) != len(self.aliases):
            raise ValueError("aliases must be unique")
        return self

    @property
    def backend_id(self) -> str:
        return self.backend_model or self.name


class Discovery(Model):
    """Probing the backend's own model list."""

    enabled: bool = Field(default=False, description="Probe the backend's model list.")
    interval_seconds: int = Field(default=60, ge=10, le=86400, description="Seconds between probes.")


class ProviderSpec(Model):
    """What backend this is, where it listens, and which models it serves."""

    type: ProviderType = Field(description="vllm, ollama, llamacpp, openai, anthropic or openai-compatible.")
    endpoint: Endpoint | None = Field(
        default=None,
        description="Where the backend listens. May be left out for openai and anthropic.",
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description=(
            "Secret key holding the API key, in the gateway's namespace. It reaches the "
            "gateway as an environment variable; it is never copied into a ConfigMap."
        ),
    )
    enabled: bool = Field(default=True, description="false keeps the object but renders nothing.")
    models: tuple[ModelSpec, ...] = Field(
        default=(),
        max_length=MAX_MODELS_PER_PROVIDER,
        description="The models this provider serves.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    discovery: Discovery = Field(default_factory=Discovery, description="Probe the backend's model list.")

    @model_validator(mode="after")
    def _rules(self) -> ProviderSpec:
        if self.endpoint is None and self.type not in CLOUD_TYPES:
            raise ValueError(f"endpoint is required for type {self.type!r}")
        counts = Counter(m.name for m in self.models)
        duplicates = sorted(n for n, c in counts.items() if c > 1)
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        if not self.models and not self.discovery.enabled:
            raise ValueError("declare at least one model, or enable discovery")
        return self


class ProviderStatus(Model):
    """What the operator made of the provider."""

    observed_generation: int | None = Field(default=None, description="Last generation seen.")
    conditions: Conditions = Field(
        default=(),
        description="Accepted, ResolvedRefs, BackendReady and, with discovery on, ModelsAvailable.",
    )
    gateways: tuple[str, ...] = Field(default=(), description="Gateways serving this provider.")
    models: int | None = Field(default=None, description="Number of models served.")
    discovered_models: tuple[str, ...] = Field(
        default=(), description="The model ids the backend reported at the last discovery probe."
    )


class LLMProvider(Model):
    """One backend (vLLM, Ollama, llama.cpp, OpenAI, Anthropic, any OpenAI-compatible)."""

    api_version: Literal["llmgateway.dev/v1alpha1"] = "llmgateway.dev/v1alpha1"
    kind: Literal["LLMProvider"] = "LLMProvider"
    metadata: ObjectMeta
    spec: ProviderSpec
    status: ProviderStatus | None = None
