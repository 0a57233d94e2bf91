"""`LLMProvider`: one backend and the models it serves."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

from llmgw.api import passthrough
from llmgw.api.clouds import AzureSettings, BedrockSettings, LitellmSettings, VertexSettings
from llmgw.api.common import (
    ENV_PREFIX,
    Conditions,
    DnsLabel,
    Loc,
    Model,
    ModelNameStr,
    ObjectMeta,
    SecretKeyRef,
    refuse,
)

ProviderType = Literal[
    "vllm",
    "ollama",
    "llamacpp",
    "openai",
    "anthropic",
    "openai-compatible",
    "azure",
    "bedrock",
    "vertex",
    "gemini",
    "mistral",
    "groq",
    "litellm",
]
PROVIDER_TYPES: tuple[str, ...] = ProviderType.__args__  # type: ignore[attr-defined]
CLOUD_TYPES = frozenset({"openai", "anthropic", "bedrock", "vertex", "gemini", "mistral", "groq", "litellm"})
"""Types with a well-known public endpoint, so `endpoint` may be left out; never probed.

Not azure: an Azure OpenAI resource has its own endpoint (`endpoint.url`), and its model
list needs the API key, which the operator never reads, so discovery is refused there."""
SETTINGS: dict[str, str] = {"azure": "azure", "bedrock": "bedrock", "vertex": "vertex", "litellm": "litellm"}
"""Per-type settings blocks of `spec`, by field name (as in the manifest): the type each belongs to.
Each is required on its type and refused on any other."""
SETTINGS_HINTS: dict[str, str] = {
    "azure": 'azure: {apiVersion: "2024-10-21"} (the Azure OpenAI API version, LiteLLM\'s api_version)',
    "bedrock": "bedrock: {region: us-east-1} (the AWS region of the Bedrock runtime)",
    "vertex": "vertex: {project: my-project, location: us-central1}",
    "litellm": "litellm: {provider: sambanova} (a provider prefix the pinned LiteLLM knows)",
}
"""What to add when a type's settings block is missing."""
ENDPOINT_REQUIRED = "endpoint_required"
"""The error type of a missing endpoint: it is reported on `spec`, and is an endpoint error."""
AZURE_ENDPOINT_HINT = "the resource endpoint, e.g. endpoint: {url: https://<resource>.openai.azure.com}"

Mode = Literal["chat", "embedding", "completion", "rerank", "image_generation", "audio_transcription"]
MODES: tuple[str, ...] = Mode.__args__  # type: ignore[attr-defined]

URL_PATTERN = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"
PORT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

MAX_MODELS_PER_PROVIDER = 1000
MAX_ALIASES_PER_MODEL = 64
"""Bounds that keep the CRD's CEL rules within the API server's cost budget."""

BackendModelStr = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\s'\"]+$")]


TYPED_PARAMS: dict[str, frozenset[str]] = {
    "azure": frozenset({"api_version"}),
    "bedrock": frozenset(
        {
            "aws_region_name",
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            "aws_bedrock_runtime_endpoint",
        }
    ),
    "vertex": frozenset({"vertex_project", "vertex_location", "vertex_credentials"}),
}
"""litellm_params a typed provider's own settings render; `params` may not set them there (the
long tail, type litellm, may: sagemaker, for one, takes its AWS settings through params)."""
SETTINGS_OF = {owner: field for field, owner in SETTINGS.items()}


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
    mode: Mode = Field(
        default="chat",
        description=(
            f"What the model does: {', '.join(MODES[:-1])} or {MODES[-1]}. Rendered as LiteLLM's "
            "model_info.mode; a fallback must have its primary's mode."
        ),
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

    type: ProviderType = Field(description=f"{', '.join(PROVIDER_TYPES[:-1])} or {PROVIDER_TYPES[-1]}.")
    endpoint: Endpoint | None = Field(
        default=None,
        description=(
            "Where the backend listens. May be left out for the cloud types but azure (their public "
            "endpoint); set it for a private endpoint or a proxy. azure needs url, the resource endpoint."
        ),
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description=(
            "Secret key holding the API key, in the gateway's namespace. It reaches the "
            "gateway as an environment variable; it is never copied into a ConfigMap."
        ),
    )
    azure: AzureSettings | None = Field(default=None, description="Settings for type azure, and only for it.")
    bedrock: BedrockSettings | None = Field(
        default=None, description="Settings for type bedrock, and only for it."
    )
    vertex: VertexSettings | None = Field(
        default=None, description="Settings for type vertex, and only for it."
    )
    litellm: LitellmSettings | None = Field(
        default=None, description="Settings for type litellm (any other LiteLLM provider), and only for it."
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
        self._settings()
        if self.type == "azure" and (self.endpoint is None or self.endpoint.url is None):
            raise PydanticCustomError(
                ENDPOINT_REQUIRED, f"type azure needs endpoint.url, {AZURE_ENDPOINT_HINT}"
            )
        if self.endpoint is None and self.type not in CLOUD_TYPES:
            raise PydanticCustomError(ENDPOINT_REQUIRED, f"endpoint is required for type {self.type!r}")
        counts = Counter(m.name for m in self.models)
        duplicates = sorted(n for n, c in counts.items() if c > 1)
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        if not self.models and not self.discovery.enabled:
            raise ValueError("declare at least one model, or enable discovery")
        return self

    def _settings(self) -> None:
        """Each per-type block on its own type only, and present there; all problems at once."""
        problems: list[tuple[Loc, Any, str]] = []
        for field, owner in SETTINGS.items():
            given = getattr(self, field)
            if given is not None and self.type != owner:
                problems.append(
                    (
                        (field,),
                        given.model_dump(),
                        f"spec.{field} is only for type {owner}, not {self.type!r}: remove it, "
                        f"or set type: {owner}",
                    )
                )
            elif given is None and self.type == owner:
                problems.append(
                    ((field,), None, f"type {owner} needs spec.{field}: add {SETTINGS_HINTS[field]}")
                )
        owned = TYPED_PARAMS.get(self.type, frozenset())
        for i, m in enumerate(self.models):
            for key in sorted(owned & set(m.params)):
                problems.append(
                    (
                        ("models", i, "params", key),
                        m.params[key],
                        f"{key} is set by the operator from spec.{SETTINGS_OF[self.type]} for type "
                        f"{self.type}: set it there instead",
                    )
                )
        if self.type == "azure" and self.discovery.enabled:
            problems.append(
                (
                    ("discovery", "enabled"),
                    True,
                    "type azure cannot be probed (its model list needs the API key, which the operator "
                    "never reads): set discovery.enabled: false and list the deployments in models",
                )
            )
        refuse("ProviderSpec", problems)


class ProviderStatus(Model):
    """What the operator made of the provider."""

    observed_generation: int | None = Field(default=None, description="Last generation seen.")
    conditions: Conditions = Field(
        default=(),
        description="Accepted; ResolvedRefs and BackendReady with endpoint.service; with discovery on"
        " (not for cloud types), BackendReady from the probe without a Service, and ModelsAvailable.",
    )
    gateways: tuple[str, ...] = Field(default=(), description="Gateways serving this provider.")
    models: int | None = Field(default=None, description="Number of models served.")
    discovered_models: tuple[str, ...] = Field(
        default=(), description="The model ids the backend reported at the last discovery probe."
    )


class LLMProvider(Model):
    """One backend (vLLM, Ollama, llama.cpp, OpenAI, Anthropic, Azure OpenAI, Bedrock, Vertex AI,
    Gemini, Mistral, Groq, any OpenAI-compatible, or any other provider LiteLLM knows)."""

    api_version: Literal["llmgateway.dev/v1alpha1"] = "llmgateway.dev/v1alpha1"
    kind: Literal["LLMProvider"] = "LLMProvider"
    metadata: ObjectMeta
    spec: ProviderSpec
    status: ProviderStatus | None = None
