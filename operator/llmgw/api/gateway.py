"""`LLMGateway`: one LiteLLM gateway, its Deployment, settings and revisions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from llmgw.api import env as env_mod
from llmgw.api import exposure, passthrough, workload
from llmgw.api import pod as pod_mod
from llmgw.api.common import (
    Conditions,
    DnsSubdomain,
    LabelSelector,
    Loc,
    Model,
    ObjectMeta,
    SecretKeyRef,
    refuse,
)

RoutingStrategy = Literal[
    "simple-shuffle",
    "least-busy",
    "usage-based-routing",
    "usage-based-routing-v2",
    "latency-based-routing",
    "cost-based-routing",
]

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
        default=300,
        ge=10,
        description=(
            "Seconds a new revision has to become available; at least the startup probe's allowance "
            f"(probes.startup: {workload.DEFAULT_STARTUP_ALLOWANCE_SECONDS} s by default)."
        ),
    )
    stuck_pod_seconds: int = Field(
        default=60,
        ge=1,
        description=(
            "Seconds a pod of a new revision may wait to start for a reason that waiting will not fix "
            "(CreateContainerConfigError for a missing Secret or key, ErrImagePull, ImagePullBackOff, "
            "InvalidImageName, ErrImageNeverPull) before the revision fails, without waiting for "
            "progressDeadlineSeconds; counted from the rollout, or from the pod's start when later. "
            "A value at or above progressDeadlineSeconds leaves only the deadline."
        ),
    )


class Resources(Model):
    """Compute resources of the gateway container (Kubernetes ResourceRequirements)."""

    requests: dict[str, str | int] = Field(default_factory=dict, description="Requests.")
    limits: dict[str, str | int] = Field(default_factory=dict, description="Limits.")


class Database(Model):
    """LiteLLM's own database (Postgres) for its virtual keys, teams and budgets."""

    url_secret_ref: SecretKeyRef = Field(
        description=(
            "Secret key holding the database URL (postgresql://...). It reaches the proxy as "
            "DATABASE_URL; it is never copied into a ConfigMap."
        )
    )


class OwnedObject(Model):
    """An object the gateway owns."""

    api_version: str = Field(description="API version of the object, e.g. autoscaling/v2.")
    kind: str = Field(description="Kind of the object, e.g. HorizontalPodAutoscaler.")
    name: str = Field(description="Name of the object, in the gateway's namespace.")


GENERAL_SETTINGS_HINT = "use spec.masterKeySecretRef or spec.database.urlSecretRef instead"
ROUTER_SETTINGS_HINT = "use the typed gateway field or a FallbackChain instead"
LITELLM_SETTINGS_HINT = "use the typed gateway field (cache, numRetries, timeoutSeconds) or a FallbackChain"


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
    replicas: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description=(
            f"Gateway pods; {workload.DEFAULT_REPLICAS} when left out. Not with autoscaling, "
            "which owns the count."
        ),
    )
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
    # --- the gateway as a production workload ---
    pod: pod_mod.PodSettings = Field(
        default_factory=pod_mod.PodSettings,
        description=(
            "Placement and identity of the gateway pods, in the Pod API's words, merged into the "
            "Deployment's pod template. Pod security stays the operator's (restricted)."
        ),
    )
    env: tuple[env_mod.EnvVar, ...] = Field(
        default=(),
        max_length=env_mod.MAX_ENV,
        description=(
            "Environment variables of the proxy container, e.g. a callback's credentials; "
            "litellmSettings, routerSettings and generalSettings may read them as os.environ/NAME. "
            f"The operator's are refused: {', '.join(sorted(env_mod.RESERVED_ENV))} "
            f"and {env_mod.OPERATOR_ENV_PREFIX}*."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    env_from: tuple[env_mod.EnvFromSource, ...] = Field(
        default=(),
        max_length=env_mod.MAX_ENV_FROM,
        description=(
            "Secrets and ConfigMaps whose keys become variables of the proxy container; the "
            "operator's variables and spec.env win over them."
        ),
    )
    probes: workload.Probes = Field(
        default_factory=workload.Probes,
        description="Timing of the startup, liveness and readiness probes; their paths are the operator's.",
    )
    autoscaling: workload.Autoscaling | None = Field(
        default=None,
        description=(
            "A HorizontalPodAutoscaler <gateway>. The Deployment is created with minReplicas and the "
            "operator never writes its replicas again. Not with replicas."
        ),
    )
    disruption_budget: workload.DisruptionBudget | None = Field(
        default=None,
        description=(
            "A PodDisruptionBudget <gateway>. Left out: maxUnavailable 1 whenever the gateway can "
            "have two or more pods, none for a single pod."
        ),
    )
    service: exposure.ServiceSettings = Field(
        default_factory=exposure.ServiceSettings, description="The gateway's Service <gateway>."
    )
    route: exposure.Route | None = Field(
        default=None,
        description=(
            "A Gateway API HTTPRoute <gateway> to the Service. Where the cluster has no HTTPRoute "
            "API the gateway keeps serving and says so in its APIsAvailable condition."
        ),
    )
    metrics: exposure.Metrics = Field(
        default_factory=exposure.Metrics, description="LiteLLM's own Prometheus metrics."
    )
    database: Database | None = Field(
        default=None, description="LiteLLM's own Postgres, for its keys, teams and budgets."
    )
    # Passthroughs come after env and envFrom: their validators read which variables are declared.
    router_settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Passthrough LiteLLM router_settings; fallbacks come only from FallbackChains.",
    )
    litellm_settings: dict[str, Any] = Field(
        default_factory=dict, description="Passthrough LiteLLM litellm_settings."
    )
    general_settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Passthrough LiteLLM general_settings; master_key and database_url are the operator's.",
    )

    @field_validator("env")
    @classmethod
    def _env(cls, value: tuple[env_mod.EnvVar, ...]) -> tuple[env_mod.EnvVar, ...]:
        refuse("GatewaySpec.env", env_mod.duplicates(value))
        return value

    @field_validator("router_settings")
    @classmethod
    def _router(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return _checked(value, passthrough.RESERVED_ROUTER_SETTINGS, ROUTER_SETTINGS_HINT, info)

    @field_validator("litellm_settings")
    @classmethod
    def _litellm(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return _checked(value, passthrough.RESERVED_LITELLM_SETTINGS, LITELLM_SETTINGS_HINT, info)

    @field_validator("general_settings")
    @classmethod
    def _general(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return _checked(value, passthrough.RESERVED_GENERAL_SETTINGS, GENERAL_SETTINGS_HINT, info)

    @model_validator(mode="after")
    def _workload(self) -> GatewaySpec:
        found: list[tuple[Loc, Any, str]] = []
        if self.replicas is not None and self.autoscaling is not None:
            found.append(
                (
                    ("replicas",),
                    self.replicas,
                    "may not be set together with autoscaling: the HorizontalPodAutoscaler owns the "
                    "replica count (it starts from autoscaling.minReplicas); remove spec.replicas",
                )
            )
        allowance = self.probes.startup_allowance_seconds
        deadline = self.rollout.progress_deadline_seconds
        if deadline < allowance:
            found.append(
                (
                    ("rollout", "progressDeadlineSeconds"),
                    deadline,
                    f"{deadline} is shorter than the startup probe's allowance of {allowance} s "
                    "(probes.startup initialDelaySeconds + periodSeconds x failureThreshold), so a "
                    f"revision still starting would be rolled back; raise it to at least {allowance} "
                    "or shorten probes.startup",
                )
            )
        grace = self.pod.termination_grace_period_seconds
        if grace is not None and grace < self.timeout_seconds:
            found.append(
                (
                    ("pod", "terminationGracePeriodSeconds"),
                    grace,
                    f"{grace} is shorter than timeoutSeconds ({self.timeout_seconds}), so a rollout "
                    f"would cut answers still streaming; raise it to at least {self.timeout_seconds}, "
                    "or leave it out for the operator's default",
                )
            )
        refuse("GatewaySpec", found)
        return self

    @property
    def effective_replicas(self) -> int:
        """The replicas the Deployment is created with: replicas, else autoscaling.minReplicas,
        else DEFAULT_REPLICAS. With autoscaling, the HPA owns the count after creation."""
        if self.replicas is not None:
            return self.replicas
        if self.autoscaling is not None:
            return self.autoscaling.min_replicas
        return workload.DEFAULT_REPLICAS

    @property
    def declared_env(self) -> passthrough.Declared:
        """Whether a variable is declared by env (by name) or envFrom (by prefix)."""
        return env_mod.declares(self.env, self.env_from)


def _checked(
    value: dict[str, Any], reserved: frozenset[str], hint: str, info: ValidationInfo
) -> dict[str, Any]:
    # env and envFrom come first; when either failed, nothing counts as declared rather than
    # everything, and the failure is reported where it is.
    declared = env_mod.declares(info.data.get("env", ()), info.data.get("env_from", ()))
    found = list(passthrough.problems(value, reserved, hint, declared))
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
    conditions: Conditions = Field(
        default=(),
        description=(
            "Accepted, Programmed (its message says what the gateway owns), Ready, RolledBack, "
            "with cache.redis CacheAvailable, and with route or metrics.serviceMonitor APIsAvailable "
            "(reasons RouteAPIUnavailable, ServiceMonitorAPIUnavailable when the cluster lacks the API)."
        ),
    )
    revision: str | None = Field(default=None, description="Current config revision (hash).")
    config_map: str | None = Field(default=None, description="ConfigMap of the current revision.")
    providers: int | None = Field(default=None, description="Providers served.")
    models: int | None = Field(default=None, description="Model names served.")
    chains: int | None = Field(default=None, description="Fallback chains served.")
    excluded: tuple[ExcludedObject, ...] = Field(
        default=(), description="Objects left out of the render, with the reason."
    )
    excluded_count: int | None = Field(
        default=None, description="How many objects are left out; excluded lists the first 100."
    )
    owned: tuple[OwnedObject, ...] = Field(
        default=(),
        description=(
            "Objects the gateway owns besides its config revisions: its Deployment, Service, and "
            "with their settings a HorizontalPodAutoscaler, PodDisruptionBudget, HTTPRoute, ServiceMonitor."
        ),
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
