"""`LLMGateway`: one LiteLLM gateway, its Deployment, settings and revisions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llmgw.api import passthrough
from llmgw.api.common import (
    Conditions,
    DnsSubdomain,
    LabelSelector,
    Model,
    ObjectMeta,
    SecretKeyRef,
)

RoutingStrategy = Literal[
    "simple-shuffle",
    "least-busy",
    "usage-based-routing",
    "usage-based-routing-v2",
    "latency-based-routing",
    "cost-based-routing",
]
ROUTING_STRATEGIES: tuple[str, ...] = RoutingStrategy.__args__  # type: ignore[attr-defined]

LITELLM_VERSION = "1.106.2"
DEFAULT_IMAGE = f"ghcr.io/berriai/litellm:v{LITELLM_VERSION}"
"""The LiteLLM proxy image; the same version the e2e tests run."""


class AllowedNamespaces(Model):
    """Which namespaces may publish providers and chains to this gateway (Gateway API shape)."""

    from_: Literal["Same", "All", "Selector"] = Field(
        default="Same",
        alias="from",
        description="Same (the gateway's namespace), All, or Selector.",
    )
    selector: LabelSelector | None = Field(
        default=None, description="Namespace label selector; required when from is Selector."
    )

    @model_validator(mode="after")
    def _selector(self) -> AllowedNamespaces:
        if (self.from_ == "Selector") != (self.selector is not None):
            raise ValueError("selector is required when from is Selector, and only then")
        return self


class RedisCache(Model):
    """A Redis server for LiteLLM's response cache."""

    host: DnsSubdomain = Field(description="Redis host name, e.g. redis.cache.svc.")
    port: int = Field(default=6379, ge=1, le=65535, description="Redis port.")
    password_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the Redis password."
    )


class Cache(Model):
    """LiteLLM's response cache."""

    redis: RedisCache | None = Field(default=None, description="Cache in Redis.")
    ttl_seconds: int = Field(default=3600, ge=1, description="Seconds a cached answer lives.")


class Rollout(Model):
    """How new revisions are rolled out."""

    auto_rollback: bool = Field(
        default=True, description="Roll back to the last good revision when a rollout fails."
    )
    progress_deadline_seconds: int = Field(
        default=300, ge=10, description="Seconds a new revision has to become available."
    )


class Resources(Model):
    """Compute resources of the gateway container (Kubernetes ResourceRequirements)."""

    requests: dict[str, str | int] = Field(default_factory=dict, description="Requests.")
    limits: dict[str, str | int] = Field(default_factory=dict, description="Limits.")


class GatewaySpec(Model):
    """Which providers and chains to serve, and how to run the LiteLLM proxy."""

    selector: LabelSelector = Field(
        default_factory=LabelSelector,
        description="Label selector for providers and chains; empty selects all.",
    )
    namespaces: AllowedNamespaces = Field(
        default_factory=AllowedNamespaces,
        description="Namespaces whose providers and chains may bind to this gateway.",
    )
    image: str = Field(
        default=DEFAULT_IMAGE,
        min_length=1,
        description=(
            "LiteLLM proxy image. Left out, the operator runs the image it is tested with "
            f"({DEFAULT_IMAGE}), and moves to the next one when it is upgraded."
        ),
    )
    replicas: int = Field(default=2, ge=0, le=100, description="Gateway pods.")
    routing_strategy: RoutingStrategy = Field(
        default="simple-shuffle", description="LiteLLM router routing_strategy."
    )
    num_retries: int = Field(default=2, ge=0, le=20, description="Retries per request.")
    timeout_seconds: int = Field(default=60, ge=1, le=3600, description="Request timeout.")
    max_fallbacks: int = Field(
        default=5, ge=1, le=50, description="LiteLLM max_fallbacks: how deep fallbacks go."
    )
    master_key_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the proxy master key; generated if absent.",
    )
    cache: Cache | None = Field(default=None, description="Response cache.")
    revision_history_limit: int = Field(
        default=10, ge=2, le=100, description="Config revisions kept, current included."
    )
    rollout: Rollout = Field(default_factory=Rollout, description="Rollout and rollback.")
    rollout_on_secret_change: bool = Field(
        default=False,
        description=(
            "Roll the gateway when a Secret it reads (API keys, master key, Redis password) "
            "changes: LiteLLM reads keys only at start. Needs the operator to watch Secret "
            "metadata (chart value secretVersions.watch); it never reads Secret data."
        ),
    )
    resources: Resources | None = Field(default=None, description="Gateway container resources.")
    router_settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Passthrough LiteLLM router_settings; fallbacks come only from FallbackChains.",
    )
    litellm_settings: dict[str, Any] = Field(
        default_factory=dict, description="Passthrough LiteLLM litellm_settings."
    )

    @field_validator("router_settings")
    @classmethod
    def _router(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _checked(
            value,
            passthrough.RESERVED_ROUTER_SETTINGS,
            "use the typed gateway field or a FallbackChain instead",
        )

    @field_validator("litellm_settings")
    @classmethod
    def _litellm(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _checked(
            value,
            passthrough.RESERVED_LITELLM_SETTINGS,
            "use the typed gateway field (cache, numRetries, timeoutSeconds) or a FallbackChain",
        )


def _checked(value: dict[str, Any], reserved: frozenset[str], hint: str) -> dict[str, Any]:
    found = list(passthrough.problems(value, reserved, hint))
    if found:
        raise ValueError("; ".join(found))
    return value


class ExcludedObject(Model):
    """An object the gateway left out of its render, and why."""

    kind: str = Field(description="Kind of the object left out: LLMProvider or FallbackChain.")
    namespace: str = Field(description="Namespace of the object left out.")
    name: str = Field(description="Name of the object left out.")
    reason: str = Field(description="A CamelCase word for why, e.g. FallbackCycle.")
    message: str = Field(description="Why, for people.")


RevisionOutcome = Literal["Progressing", "Available", "Failed", "RolledBack", "Superseded"]


class RevisionRecord(Model):
    """One config revision the gateway Deployment was pointed at, and how it went."""

    revision: str = Field(
        description="First 10 hex digits of the config hash; its ConfigMap is <gateway>-config-<revision>."
    )
    time: str = Field(description="When the Deployment was last pointed at it (RFC 3339).")
    outcome: RevisionOutcome = Field(
        description=(
            "Progressing (not yet available), Available (became available: a rollback target), "
            "Failed (did not become available in time), RolledBack (failed, and the gateway went "
            "back to the last available revision), or Superseded (replaced before it became available)."
        )
    )
    reason: str | None = Field(default=None, description="Why it failed, e.g. CrashLoopBackOff.")
    message: str | None = Field(default=None, description="What failed, for people.")


class GatewayStatus(Model):
    """What the gateway serves and which revision runs."""

    observed_generation: int | None = Field(default=None, description="Last generation seen.")
    conditions: Conditions = Field(default=(), description="Accepted, Programmed, Ready, RolledBack.")
    revision: str | None = Field(default=None, description="Current config revision (hash).")
    config_map: str | None = Field(default=None, description="ConfigMap of the current revision.")
    providers: int | None = Field(default=None, description="Providers served.")
    models: int | None = Field(default=None, description="Model names served.")
    chains: int | None = Field(default=None, description="Fallback chains served.")
    excluded: tuple[ExcludedObject, ...] = Field(
        default=(), description="Objects left out of the render, with the reason."
    )
    history: tuple[RevisionRecord, ...] = Field(
        default=(),
        description=(
            "The last revisionHistoryLimit revisions rolled out, newest first; the first is the one "
            "the Deployment runs. A revision that failed is not rolled out again until the inputs change."
        ),
    )


class LLMGateway(Model):
    """One LiteLLM gateway: its Deployment, Service, settings and config revisions."""

    api_version: Literal["llmgateway.dev/v1alpha1"] = "llmgateway.dev/v1alpha1"
    kind: Literal["LLMGateway"] = "LLMGateway"
    metadata: ObjectMeta
    spec: GatewaySpec = Field(default_factory=GatewaySpec)
    status: GatewayStatus | None = None
