"""`LLMGateway.spec.pod`: the gateway pods' placement and identity, in the Pod API's words.

The shapes and names are the Pod API's own (`tolerations`, `affinity`,
`topologySpreadConstraints`, ...), so `kubectl explain llmgateway.spec.pod`
teaches what a platform engineer already knows, and the builders can copy them
into the Deployment's pod template unchanged (`model_dump(exclude_none=True)`).

What is *not* here is on purpose: no securityContext, hostNetwork, hostPID,
volumes or containers. The operator runs the proxy under the restricted pod
security standard, and nothing in `spec.pod` can weaken it. The labels and
annotations the operator sets on its pods are refused in `metadata`, rather
than silently overridden.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from llmgw.api.common import DnsSubdomain, LabelSelector, Model

# The pod labels the operator sets (core.desired.labels); the Deployment and Service select
# on the last two. Keys under OPERATOR_PREFIX are the operator's too, in labels and
# annotations alike (the config-hash annotation is `llmgateway.dev/config-hash`).
OPERATOR_PREFIX: Final = "llmgateway.dev/"
RESERVED_POD_LABELS: Final = frozenset(
    {
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/component",
        "app.kubernetes.io/managed-by",
        "llmgateway.dev/gateway",
    }
)
CONFIG_HASH_ANNOTATION: Final = "llmgateway.dev/config-hash"
MAX_METADATA_ENTRIES: Final = 64
MAX_TOLERATIONS: Final = 64
MAX_TERMS: Final = 32
MAX_SPREAD_CONSTRAINTS: Final = 16
MAX_PULL_SECRETS: Final = 16

QualifiedName = Annotated[str, StringConstraints(min_length=1, max_length=317)]
"""A label key or a topology key (`prefix/name`)."""
LabelValue = Annotated[str, StringConstraints(max_length=63)]
SelectorValue = Annotated[str, StringConstraints(max_length=253)]
INTEGER_PATTERN: Final = r"^-?[0-9]+$"
# An enum read by a CEL rule below a list needs a maxLength for the API server's cost estimate.
_ENUM_BOUND: Final[dict[str, Any]] = {"maxLength": 32}


def _reserved_keys(keys: dict[str, str], reserved: frozenset[str], what: str) -> dict[str, str]:
    found = sorted(k for k in keys if k in reserved or k.startswith(OPERATOR_PREFIX))
    if found:
        raise ValueError(
            f"{what} {', '.join(repr(k) for k in found)} {'is' if len(found) == 1 else 'are'} set by the "
            f"operator (it selects and rolls its pods by them; keys under {OPERATOR_PREFIX} are its own); "
            "use another key"
        )
    return keys


class PodMetadata(Model):
    """Labels and annotations added to the gateway pods."""

    labels: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=MAX_METADATA_ENTRIES,
        description=(
            "Labels added to the gateway pods. The operator's own keys are refused: "
            + ", ".join(sorted(RESERVED_POD_LABELS))
            + f" and any key under {OPERATOR_PREFIX}."
        ),
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_METADATA_ENTRIES,
        description=(
            f"Annotations added to the gateway pods. Keys under {OPERATOR_PREFIX} (such as "
            f"{CONFIG_HASH_ANNOTATION}) are the operator's and refused; with metrics.enabled the "
            "operator sets prometheus.io/scrape, prometheus.io/port and prometheus.io/path."
        ),
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _reserved_keys(value, RESERVED_POD_LABELS, "label")

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        return _reserved_keys(value, frozenset(), "annotation")


class Toleration(Model):
    """A toleration of a node taint (core/v1 Toleration)."""

    key: QualifiedName | None = Field(
        default=None,
        description="The taint key to tolerate; empty, with operator Exists, tolerates every taint.",
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None,
        description="Exists or Equal (the default): how key relates to value.",
        json_schema_extra=_ENUM_BOUND,
    )
    value: LabelValue | None = Field(
        default=None, description="The taint value to match with operator Equal; empty with Exists."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None,
        description="The taint effect to match (NoSchedule, PreferNoSchedule, NoExecute); empty: all.",
        json_schema_extra=_ENUM_BOUND,
    )
    toleration_seconds: int | None = Field(
        default=None,
        description="With effect NoExecute: how long the pod stays bound to a node that gets the taint.",
    )

    @model_validator(mode="after")
    def _rules(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("value must be empty when operator is Exists")
        if not self.key and self.operator != "Exists":
            raise ValueError("operator must be Exists when key is empty")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds needs effect NoExecute")
        return self


class NodeSelectorRequirement(Model):
    """A node label (or field) requirement: key, operator, values."""

    key: QualifiedName = Field(description="The label key the selector applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] = Field(
        description="In, NotIn, Exists, DoesNotExist, Gt or Lt.", json_schema_extra=_ENUM_BOUND
    )
    values: tuple[SelectorValue, ...] = Field(
        default=(),
        max_length=MAX_TERMS,
        description=(
            "Values: non-empty for In and NotIn, empty for Exists and DoesNotExist, "
            "one integer for Gt and Lt."
        ),
    )

    @model_validator(mode="after")
    def _values(self) -> NodeSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"values must not be empty with operator {self.operator}")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"values must be empty with operator {self.operator}")
        if self.operator in ("Gt", "Lt") and (
            len(self.values) != 1 or re.match(INTEGER_PATTERN, self.values[0]) is None
        ):
            raise ValueError(f"operator {self.operator} needs exactly one integer value")
        return self


class NodeSelectorTerm(Model):
    """One node selector term; its requirements are ANDed."""

    match_expressions: tuple[NodeSelectorRequirement, ...] = Field(
        default=(), max_length=MAX_TERMS, description="Requirements on node labels."
    )
    match_fields: tuple[NodeSelectorRequirement, ...] = Field(
        default=(), max_length=MAX_TERMS, description="Requirements on node fields (metadata.name)."
    )


class NodeSelector(Model):
    """Node selector terms; a node matches when any term matches (they are ORed)."""

    node_selector_terms: tuple[NodeSelectorTerm, ...] = Field(
        min_length=1, max_length=MAX_TERMS, description="The terms, ORed."
    )


class PreferredSchedulingTerm(Model):
    """A weighted node selector term the scheduler prefers."""

    weight: int = Field(ge=1, le=100, description="Weight, 1-100, added for nodes that match.")
    preference: NodeSelectorTerm = Field(description="The node selector term.")


class NodeAffinity(Model):
    """Node affinity scheduling rules."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        default=None, description="Nodes the pods must be scheduled on."
    )
    preferred_during_scheduling_ignored_during_execution: tuple[PreferredSchedulingTerm, ...] = Field(
        default=(), max_length=MAX_TERMS, description="Nodes the scheduler prefers, by weight."
    )


class PodAffinityTerm(Model):
    """Pods (selected by labels, in some namespaces) that this pod should be near, by topology."""

    label_selector: LabelSelector | None = Field(default=None, description="The pods this term selects.")
    namespace_selector: LabelSelector | None = Field(
        default=None,
        description="Namespaces to look in, by label; with namespaces, their union. Empty: every namespace.",
    )
    namespaces: tuple[DnsSubdomain, ...] = Field(
        default=(),
        max_length=MAX_TERMS,
        description="Namespaces to look in; empty with no namespaceSelector: the gateway's namespace.",
    )
    topology_key: QualifiedName = Field(
        description="The node label whose value defines co-location, e.g. kubernetes.io/hostname."
    )
    match_label_keys: tuple[QualifiedName, ...] = Field(
        default=(),
        max_length=MAX_TERMS,
        description="Pod label keys whose values are added to labelSelector as In requirements.",
    )
    mismatch_label_keys: tuple[QualifiedName, ...] = Field(
        default=(),
        max_length=MAX_TERMS,
        description="Pod label keys whose values are added to labelSelector as NotIn requirements.",
    )


class WeightedPodAffinityTerm(Model):
    """A pod affinity term with a weight the scheduler adds for nodes that match."""

    weight: int = Field(ge=1, le=100, description="Weight, 1-100.")
    pod_affinity_term: PodAffinityTerm = Field(description="The pod affinity term.")


class PodAffinity(Model):
    """Pods these pods should run near."""

    required_during_scheduling_ignored_during_execution: tuple[PodAffinityTerm, ...] = Field(
        default=(), max_length=MAX_TERMS, description="Terms that must hold at scheduling."
    )
    preferred_during_scheduling_ignored_during_execution: tuple[WeightedPodAffinityTerm, ...] = Field(
        default=(), max_length=MAX_TERMS, description="Terms the scheduler prefers, by weight."
    )


class PodAntiAffinity(Model):
    """Pods these pods should run away from (spread gateway pods over nodes or zones)."""

    required_during_scheduling_ignored_during_execution: tuple[PodAffinityTerm, ...] = Field(
        default=(), max_length=MAX_TERMS, description="Terms that must hold at scheduling."
    )
    preferred_during_scheduling_ignored_during_execution: tuple[WeightedPodAffinityTerm, ...] = Field(
        default=(), max_length=MAX_TERMS, description="Terms the scheduler prefers, by weight."
    )


class Affinity(Model):
    """Node affinity, pod affinity and pod anti-affinity (core/v1 Affinity)."""

    node_affinity: NodeAffinity | None = Field(default=None, description="Node affinity rules.")
    pod_affinity: PodAffinity | None = Field(default=None, description="Pod affinity rules.")
    pod_anti_affinity: PodAntiAffinity | None = Field(default=None, description="Pod anti-affinity rules.")


class TopologySpreadConstraint(Model):
    """How the gateway pods spread over a topology (zones, nodes)."""

    max_skew: int = Field(ge=1, description="The most the pod count may differ between two domains.")
    topology_key: QualifiedName = Field(
        description="The node label that defines a domain, e.g. topology.kubernetes.io/zone."
    )
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = Field(
        description="DoNotSchedule or ScheduleAnyway: what to do with a pod that would exceed maxSkew.",
        json_schema_extra=_ENUM_BOUND,
    )
    label_selector: LabelSelector | None = Field(
        default=None,
        description="The pods counted; usually the gateway's own (llmgateway.dev/gateway: <gateway>).",
    )
    min_domains: int | None = Field(
        default=None, ge=1, description="With DoNotSchedule: the fewest eligible domains counted."
    )
    node_affinity_policy: Literal["Honor", "Ignore"] | None = Field(
        default=None, description="Honor (the default) or Ignore the pods' node affinity when counting."
    )
    node_taints_policy: Literal["Honor", "Ignore"] | None = Field(
        default=None, description="Honor or Ignore (the default) node taints when counting."
    )
    match_label_keys: tuple[QualifiedName, ...] = Field(
        default=(),
        max_length=MAX_TERMS,
        description="Pod label keys whose values narrow the counted pods (e.g. pod-template-hash).",
    )

    @model_validator(mode="after")
    def _min_domains(self) -> TopologySpreadConstraint:
        if self.min_domains is not None and self.when_unsatisfiable != "DoNotSchedule":
            raise ValueError("minDomains needs whenUnsatisfiable DoNotSchedule")
        return self


class LocalObjectReference(Model):
    """An object in the gateway's namespace, by name."""

    name: DnsSubdomain = Field(description="Name of the object, in the gateway's namespace.")


class PodSettings(Model):
    """Placement and identity of the gateway pods, merged into the Deployment's pod template."""

    metadata: PodMetadata = Field(
        default_factory=PodMetadata, description="Labels and annotations added to the pods."
    )
    node_selector: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=MAX_METADATA_ENTRIES,
        description="Node labels a node must carry for the pods to run on it.",
    )
    tolerations: tuple[Toleration, ...] = Field(
        default=(), max_length=MAX_TOLERATIONS, description="Taints the pods tolerate."
    )
    affinity: Affinity | None = Field(default=None, description="Node and pod (anti-)affinity.")
    topology_spread_constraints: tuple[TopologySpreadConstraint, ...] = Field(
        default=(),
        max_length=MAX_SPREAD_CONSTRAINTS,
        description="How the pods spread over zones and nodes.",
    )
    priority_class_name: DnsSubdomain | None = Field(
        default=None, description="The PriorityClass of the pods."
    )
    image_pull_secrets: tuple[LocalObjectReference, ...] = Field(
        default=(),
        max_length=MAX_PULL_SECRETS,
        description="Secrets (kubernetes.io/dockerconfigjson) to pull the image from a private registry.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    service_account_name: DnsSubdomain | None = Field(
        default=None,
        description=(
            "The ServiceAccount the pods run as: their cloud identity (IRSA, Workload Identity). "
            "Its token is mounted only as the cloud's own webhook adds it; the operator does not "
            "automount the Kubernetes API token."
        ),
    )
    termination_grace_period_seconds: int | None = Field(
        default=None,
        ge=1,
        le=3600,
        description=(
            "Seconds a stopping pod has to finish its requests. Left out, the operator sets "
            "timeoutSeconds plus its preStop delay plus a margin, so a rollout does not cut a "
            "streaming answer; set, it may not be shorter than timeoutSeconds."
        ),
    )
