"""The per-type settings of the cloud provider types: `spec.azure`, `spec.bedrock`, `spec.vertex`,
`spec.litellm`.

Each block is allowed only on a provider of its own type (`llmgw.api.provider` checks that, and
`llmgw.api.crdrules` repeats it as CEL). The names are LiteLLM's own parameters in the manifest's
spelling: `apiVersion` is `api_version`, `region` is `aws_region_name`, `project` and `location`
are `vertex_project` and `vertex_location`. LiteLLM has fallbacks for each (an API version that
moves with its releases, `AWS_REGION`, `us-central1`); llmgw asks for them so that a gateway does
not change backends when LiteLLM is upgraded or its environment differs.
"""

from __future__ import annotations

import difflib
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from llmgw.api import litellm_providers
from llmgw.api.common import SECRET_KEY_PATTERN, DnsSubdomain, Model, SecretKeyRef

AZURE_API_VERSION_PATTERN = r"^([0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?|v1|latest|preview)$"
AWS_REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)?-[a-z]+-[0-9]{1,2}$"
GCP_PROJECT_PATTERN = r"^([a-z0-9.-]+:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$"
GCP_LOCATION_PATTERN = r"^[a-z]+(-[a-z]+[0-9]+)?$"
LITELLM_PROVIDER_PATTERN = r"^[a-z0-9][-a-z0-9_]*$"

SecretKey = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]

TYPED_PREFIXES: dict[str, str] = {
    "anthropic": "anthropic",
    "azure": "azure",
    "bedrock": "bedrock",
    "custom_openai": "openai-compatible",
    "gemini": "gemini",
    "groq": "groq",
    "hosted_vllm": "vllm",
    "mistral": "mistral",
    "ollama": "ollama",
    "ollama_chat": "ollama",
    "openai": "openai",
    "openai_like": "openai-compatible",
    "vertex_ai": "vertex",
    "vllm": "vllm",
}
"""LiteLLM provider prefixes that have a typed llmgw type: `spec.litellm.provider` refuses them,
naming the type to use, so that each backend has one way to be written."""


class AzureSettings(Model):
    """Azure OpenAI: the API version; the resource endpoint is `endpoint.url`."""

    api_version: Annotated[str, StringConstraints(max_length=32, pattern=AZURE_API_VERSION_PATTERN)] = Field(
        description=(
            "The Azure OpenAI API version, LiteLLM's api_version (e.g. 2024-10-21, "
            "2025-01-01-preview, or v1 for the v1 API)."
        )
    )


class AwsCredentialsRef(Model):
    """A Secret holding AWS access keys, in the gateway's namespace. The operator never reads it."""

    name: DnsSubdomain = Field(description="Name of the Secret, in the gateway's namespace.")
    access_key_id_key: SecretKey = Field(description="Key of the Secret holding the access key id.")
    secret_access_key_key: SecretKey = Field(description="Key of the Secret holding the secret access key.")
    session_token_key: SecretKey | None = Field(
        default=None, description="Key of the Secret holding a session token, for temporary credentials."
    )


class BedrockSettings(Model):
    """AWS Bedrock: the region, and how the gateway signs its requests."""

    region: Annotated[str, StringConstraints(max_length=32, pattern=AWS_REGION_PATTERN)] = Field(
        description="The AWS region of the Bedrock runtime, LiteLLM's aws_region_name (e.g. us-east-1)."
    )
    credentials_secret_ref: AwsCredentialsRef | None = Field(
        default=None,
        description=(
            "Access keys from a Secret. Without it the gateway's service account identity is used "
            "(IRSA or EKS Pod Identity, through spec.pod.serviceAccountName)."
        ),
    )


class VertexSettings(Model):
    """Google Vertex AI: the project, the location, and the service account."""

    project: Annotated[str, StringConstraints(max_length=64, pattern=GCP_PROJECT_PATTERN)] = Field(
        description="The Google Cloud project id, LiteLLM's vertex_project."
    )
    location: Annotated[str, StringConstraints(max_length=64, pattern=GCP_LOCATION_PATTERN)] = Field(
        description="The Vertex AI location, LiteLLM's vertex_location (e.g. us-central1, global)."
    )
    credentials_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description=(
            "A Secret key holding a service account's JSON key. Without it the gateway's service "
            "account identity is used (GKE Workload Identity)."
        ),
    )


class LitellmSettings(Model):
    """Any other provider the pinned LiteLLM knows, by its prefix."""

    provider: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=LITELLM_PROVIDER_PATTERN)
    ] = Field(
        description=(
            f"A provider prefix LiteLLM {litellm_providers.LITELLM_VERSION} knows (e.g. sambanova, "
            "together_ai, deepseek); the models are rendered as <provider>/<backendModel>."
        )
    )

    @field_validator("provider")
    @classmethod
    def _known(cls, value: str) -> str:
        typed = TYPED_PREFIXES.get(value)
        if typed is not None:
            raise ValueError(f"{value!r} has its own type: use type: {typed} instead of type: litellm")
        if value not in litellm_providers.PROVIDERS:
            raise ValueError(unknown_provider(value))
        return value


def unknown_provider(value: str) -> str:
    """The sentence for a prefix LiteLLM does not know, with the closest ones it does."""
    best = difflib.get_close_matches(value, sorted(litellm_providers.PROVIDERS | TYPED_PREFIXES.keys()), n=3)
    said = f"{value!r} is not a provider LiteLLM {litellm_providers.LITELLM_VERSION} knows"
    if not best:
        return f"{said}; use a prefix from its provider list (litellm.provider_list)"
    said += f"; did you mean {best[0]!r}?"
    if best[0] in TYPED_PREFIXES:
        said += f" It has its own type: use type: {TYPED_PREFIXES[best[0]]}."
    if best[1:]:
        said += f" Also close: {', '.join(map(repr, best[1:]))}."
    return said
