"""Building blocks shared by the three kinds: metadata, conditions, names.

Every model is frozen and refuses unknown fields, so a typo in a manifest is an
error with a field path rather than a setting silently ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, NewType

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

GROUP = "llmgateway.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

ObjectKey = NewType("ObjectKey", str)
"""`namespace/name` of an object."""

ENV_PREFIX = "os.environ/"
"""LiteLLM reads any config value with this prefix from the environment."""

# A model name is what a client sends as `model`. It may hold `/`, `:` and `.`
# (`openai/gpt-4o`, `llama3:8b`), never whitespace, quotes or YAML syntax.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
MODEL_NAME_MAX = 253
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

ModelNameStr = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MODEL_NAME_MAX, pattern=MODEL_NAME_PATTERN),
]
DnsLabel = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
DnsSubdomain = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]


class Model(BaseModel):
    """Base of every spec model: camelCase in YAML, snake_case in Python, frozen, strict."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )


Loc = tuple[str | int, ...]


def refuse(title: str, problems: Sequence[tuple[Loc, Any, str]]) -> None:
    """Raise every (field path, value, sentence) at once, each at its own path.

    For a model validator that checks several fields together: pydantic would put a
    plain ValueError on the model, and stop at the first. The paths are relative to
    the model, in the YAML's (camelCase) names.
    """
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(
                    type=PydanticCustomError("value_error", "{message}", {"message": message}),
                    loc=loc,
                    input=value,
                )
                for loc, value, message in problems
            ],
        )


class SecretKeyRef(Model):
    """A key of a Secret in the gateway's namespace. The operator never reads its data."""

    name: DnsSubdomain = Field(description="Name of the Secret, in the gateway's namespace.")
    key: Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)] = Field(
        description="Key within the Secret."
    )


class LabelSelectorRequirement(Model):
    """One `matchExpressions` term of a Kubernetes label selector."""

    key: Annotated[str, StringConstraints(min_length=1, max_length=317)] = Field(
        description="The label key the selector applies to."
    )
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the key relates to the values: In, NotIn, Exists or DoesNotExist."
    )
    values: tuple[str, ...] = Field(
        default=(),
        description="Values for In and NotIn; must be empty for Exists and DoesNotExist.",
    )


class LabelSelector(Model):
    """A Kubernetes label selector; empty selects everything."""

    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels an object must carry, all of them."
    )
    match_expressions: tuple[LabelSelectorRequirement, ...] = Field(
        default=(), description="Further requirements, all of which must hold."
    )


class ObjectMeta(BaseModel):
    """The part of Kubernetes metadata llmgw reads. Other fields are kept out, not refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        extra="ignore",
    )

    name: DnsSubdomain = Field(description="Name of the object, unique in its namespace.")
    namespace: DnsLabel = Field(default="default", description="Namespace of the object.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels; gateways select providers and chains by them."
    )
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations.")
    generation: int | None = Field(default=None, description="Set by the API server.")
    uid: str | None = Field(default=None, description="Set by the API server.")
    resource_version: str | None = Field(default=None, description="Set by the API server.")


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(Model):
    """A condition in the standard Kubernetes shape (metav1.Condition)."""

    type: str = Field(description="Type of condition, e.g. Accepted, ResolvedRefs, Programmed, Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase word for the last transition.")
    message: str = Field(default="", description="What happened, for people.")
    last_transition_time: str | None = Field(
        default=None, description="When the condition last changed status (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation the condition was set from."
    )


Conditions = tuple[Condition, ...]
