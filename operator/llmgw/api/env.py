"""`LLMGateway.spec.env` and `spec.envFrom`: the proxy container's own environment.

Callbacks (Langfuse, OpenTelemetry, Datadog) read their credentials from the
environment, so a gateway may declare variables, in the Pod API's shapes. The
names the operator sets itself are refused: an override would replace the
master key, the API keys it renders, or the settings that keep the proxy
offline and on a read-only root filesystem. `RESERVED_ENV` is the list the
Deployment builder sets; `declares` tells the passthrough checks which
`os.environ/NAME` a gateway may read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from llmgw.api.common import SECRET_KEY_PATTERN, DnsSubdomain, Loc, Model

MASTER_KEY_ENV: Final = "LITELLM_MASTER_KEY"
DATABASE_URL_ENV: Final = "DATABASE_URL"
OPERATOR_ENV_PREFIX: Final = "LLMGW_"
"""Every variable the operator renders for a Secret (API keys, the Redis password) starts so."""

FIXED_ENV: Final[Mapping[str, str]] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HOME": "/tmp",
    "XDG_CACHE_HOME": "/tmp/.cache",
    "HF_HUB_OFFLINE": "1",
}
"""The variables the Deployment builder sets on every gateway, with their values."""

RESERVED_ENV: Final = frozenset({MASTER_KEY_ENV, DATABASE_URL_ENV, *FIXED_ENV})
"""Names `spec.env` may not set, besides any starting with `OPERATOR_ENV_PREFIX`."""

MAX_ENV: Final = 128
MAX_ENV_FROM: Final = 32
ENV_NAME_PATTERN: Final = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
ENV_NAME_MAX: Final = 253
ENV_VALUE_MAX: Final = 32768

EnvName = Annotated[str, StringConstraints(min_length=1, max_length=ENV_NAME_MAX, pattern=ENV_NAME_PATTERN)]
KeyName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]


def reserved(name: str) -> bool:
    """Whether the operator owns an environment variable of this name."""
    return name in RESERVED_ENV or name.startswith(OPERATOR_ENV_PREFIX)


def why_reserved(name: str) -> str:
    """What the operator uses a reserved name for, and what to do instead."""
    if name == MASTER_KEY_ENV:
        return "it carries the proxy master key; set spec.masterKeySecretRef instead"
    if name == DATABASE_URL_ENV:
        return "the operator sets it from spec.database.urlSecretRef; set that instead"
    if name.startswith(OPERATOR_ENV_PREFIX):
        return (
            f"names starting {OPERATOR_ENV_PREFIX} carry the API keys and passwords the operator "
            "renders; choose another name"
        )
    return "the operator sets it on every gateway pod; choose another name"


class KeySelector(Model):
    """One key of a Secret or ConfigMap in the gateway's namespace."""

    name: DnsSubdomain = Field(description="Name of the Secret or ConfigMap, in the gateway's namespace.")
    key: KeyName = Field(description="The key to read.")
    optional: bool | None = Field(
        default=None, description="true: the pod starts without the variable when the key is missing."
    )


class ObjectFieldSelector(Model):
    """A field of the pod (Downward API)."""

    field_path: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="The pod field, e.g. metadata.name, metadata.namespace, spec.nodeName, status.podIP."
    )
    api_version: str | None = Field(default=None, description="Version of fieldPath's schema; v1.")


class ResourceFieldSelector(Model):
    """A resource request or limit of a container (Downward API)."""

    resource: Literal[
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
    ] = Field(description="The resource, e.g. limits.memory or requests.cpu.")
    container_name: str | None = Field(default=None, description="The container; the proxy's by default.")
    divisor: int | str | None = Field(default=None, description="Unit of the value, e.g. 1Mi; 1 by default.")


class EnvVarSource(Model):
    """Where a variable's value comes from: exactly one source."""

    secret_key_ref: KeySelector | None = Field(default=None, description="A key of a Secret.")
    config_map_key_ref: KeySelector | None = Field(default=None, description="A key of a ConfigMap.")
    field_ref: ObjectFieldSelector | None = Field(default=None, description="A field of the pod.")
    resource_field_ref: ResourceFieldSelector | None = Field(
        default=None, description="A resource request or limit of the container."
    )

    @model_validator(mode="after")
    def _one(self) -> EnvVarSource:
        given = [
            s
            for s in (self.secret_key_ref, self.config_map_key_ref, self.field_ref, self.resource_field_ref)
            if s is not None
        ]
        if len(given) != 1:
            raise ValueError("set exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef")
        return self


class EnvVar(Model):
    """One environment variable of the proxy container: a value, or where to read it from."""

    name: EnvName = Field(
        description=(
            f"Name of the variable. The operator's are refused: {', '.join(sorted(RESERVED_ENV))} "
            f"and any name starting {OPERATOR_ENV_PREFIX}."
        )
    )
    value: Annotated[str, StringConstraints(max_length=ENV_VALUE_MAX)] | None = Field(
        default=None, description="The value; set exactly one of value and valueFrom."
    )
    value_from: EnvVarSource | None = Field(
        default=None, description="Where to read the value from (a Secret key, a ConfigMap key, the pod)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if reserved(value):
            raise ValueError(f"the operator owns {value}: {why_reserved(value)}")
        return value

    @model_validator(mode="after")
    def _one(self) -> EnvVar:
        if (self.value is None) == (self.value_from is None):
            raise ValueError(f"set exactly one of value or valueFrom for {self.name}")
        return self


class SourceRef(Model):
    """A whole Secret or ConfigMap in the gateway's namespace."""

    name: DnsSubdomain = Field(description="Name of the Secret or ConfigMap, in the gateway's namespace.")
    optional: bool | None = Field(default=None, description="true: the pod starts when it is missing.")


class EnvFromSource(Model):
    """Every key of a Secret or ConfigMap as a variable, optionally prefixed."""

    prefix: Annotated[str, StringConstraints(max_length=ENV_NAME_MAX)] | None = Field(
        default=None,
        description=(
            f"Prepended to every key. May not start {OPERATOR_ENV_PREFIX}. Variables set by the "
            "operator or in spec.env win over the ones read here."
        ),
    )
    secret_ref: SourceRef | None = Field(default=None, description="The Secret to read.")
    config_map_ref: SourceRef | None = Field(default=None, description="The ConfigMap to read.")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and value.startswith(OPERATOR_ENV_PREFIX):
            raise ValueError(
                f"{value!r} starts {OPERATOR_ENV_PREFIX}, the operator's prefix for the API keys "
                "it renders; choose another prefix"
            )
        return value

    @model_validator(mode="after")
    def _one(self) -> EnvFromSource:
        if (self.secret_ref is None) == (self.config_map_ref is None):
            raise ValueError("set exactly one of secretRef or configMapRef")
        return self


def duplicates(env: Sequence[EnvVar]) -> list[tuple[Loc, str, str]]:
    """(path, name, sentence) for each name declared again, naming where it came first."""
    first: dict[str, int] = {}
    out: list[tuple[Loc, str, str]] = []
    for index, var in enumerate(env):
        if var.name in first:
            out.append(
                (
                    (index, "name"),
                    var.name,
                    f"{var.name!r} is declared already, at spec.env[{first[var.name]}]; declare each "
                    "variable once",
                )
            )
        else:
            first[var.name] = index
    return out


def declares(env: Sequence[EnvVar], env_from: Sequence[EnvFromSource]) -> Callable[[str], bool]:
    """Whether a variable name is declared by `env` (by name) or `envFrom` (by prefix).

    An `envFrom` entry without a prefix may hold any key, so it declares every name; the
    operator's own names are never declared, whatever the Secrets hold (its values win).
    """
    names = frozenset(var.name for var in env)
    prefixes = tuple(source.prefix or "" for source in env_from)

    def declared(name: str) -> bool:
        return not reserved(name) and (name in names or name.startswith(prefixes))

    return declared
