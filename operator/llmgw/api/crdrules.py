"""What the CRDs say beyond the models' own JSON schemas: CEL rules and server defaults.

Pydantic validators are Python, so the API server cannot run them. Each entry here
repeats one validator as an `x-kubernetes-validations` CEL rule, so that admission
refuses what the models refuse. `llmgw.api.structural` places every entry in the
schema of the model it names; an entry that finds no place fails generation, so a
renamed class or field cannot drop a rule silently.

Pure data: no conversion happens here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel

from llmgw.api import (
    chain,
    clouds,
    common,
    env,
    exposure,
    gateway,
    litellm_providers,
    passthrough,
    pod,
    provider,
    workload,
)

Reason = Literal["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired"]


@dataclass(frozen=True)
class Rule:
    """One `x-kubernetes-validations` entry: a CEL rule and what a person reads when it fails."""

    rule: str
    message: str
    field_path: str | None = None
    reason: Reason | None = None
    message_expression: str | None = None
    """A CEL string the API server shows instead of `message` (with the numbers in it)."""

    def manifest(self) -> dict[str, str]:
        out = {"rule": self.rule, "message": self.message}
        if self.message_expression is not None:
            out["messageExpression"] = self.message_expression
        if self.field_path is not None:
            out["fieldPath"] = self.field_path
        if self.reason is not None:
            out["reason"] = self.reason
        return out


# --- CEL rules, mirroring the models' validators -------------------------------------------
# Keyed by model class (rules on the object) or by (model class, property) (rules on one
# field). Every entry must land somewhere in the CRDs, or generation fails: a renamed class
# or field cannot drop a rule silently.


def _cel_strings(values: Iterable[str]) -> str:
    """A CEL list literal of strings, sorted for stable output."""
    return "[" + ", ".join(f"'{v}'" for v in sorted(values)) + "]"


def _cel_map(values: Mapping[str, str]) -> str:
    """A CEL map literal of strings, sorted for stable output."""
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in sorted(values.items())) + "}"


_NO_ENV = Rule(
    rule=f"!self.startsWith('{common.ENV_PREFIX}')",
    message=f"may not start with {common.ENV_PREFIX} (that would read the gateway's environment)",
)


def _or_default(path: str, default: int) -> str:
    """`self.a.b.c` when every step is set, else `default` (CRD defaults do not reach absent parents)."""
    parts = path.split(".")
    present = " && ".join(f"has(self.{'.'.join(parts[: i + 1])})" for i in range(len(parts)))
    return f"({present} ? self.{path} : {default})"


def _one_of(fields: Iterable[str]) -> str:
    return " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields) + " == 1"


def _or_list(values: Iterable[str]) -> str:
    """`a, b or c`, sorted."""
    items = sorted(values)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _settings_rules() -> tuple[Rule, ...]:
    """Each per-type settings block only on its own type, and required there."""
    out: list[Rule] = []
    for field, owner in provider.SETTINGS.items():
        out.append(
            Rule(
                rule=f"!has(self.{field}) || self.type == '{owner}'",
                message=f"spec.{field} is only for type {owner}: remove it, or set type: {owner}",
                message_expression=(
                    f"'spec.{field} is only for type {owner}, not ' + self.type + ': remove it, "
                    f"or set type: {owner}'"
                ),
                field_path=f".{field}",
                reason="FieldValueForbidden",
            )
        )
        out.append(
            Rule(
                rule=f"self.type != '{owner}' || has(self.{field})",
                message=f"type {owner} needs spec.{field}: add {provider.SETTINGS_HINTS[field]}",
                field_path=f".{field}",
                reason="FieldValueRequired",
            )
        )
    return tuple(out)


_STARTUP = workload.STARTUP_DEFAULTS
_DEADLINE = _or_default(
    "rollout.progressDeadlineSeconds", gateway.Rollout.model_fields["progress_deadline_seconds"].default
)
_ALLOWANCE = (
    f"{_or_default('probes.startup.initialDelaySeconds', _STARTUP.initial_delay_seconds)}"
    f" + {_or_default('probes.startup.periodSeconds', _STARTUP.period_seconds)}"
    f" * {_or_default('probes.startup.failureThreshold', _STARTUP.failure_threshold)}"
)
_TIMEOUT = _or_default("timeoutSeconds", gateway.GatewaySpec.model_fields["timeout_seconds"].default)
_GRACE = "self.pod.terminationGracePeriodSeconds"
_RESERVED_ENV = (
    f"is the operator's ({', '.join(sorted(env.RESERVED_ENV))} and any name starting "
    f"{env.OPERATOR_ENV_PREFIX}): choose another name; the master key comes from "
    "spec.masterKeySecretRef, DATABASE_URL from spec.database"
)
_POD_LABELS = " && ".join(f"!('{k}' in self)" for k in sorted(pod.RESERVED_POD_LABELS))
_OPERATOR_KEYS = f"self.all(k, !k.startsWith('{pod.OPERATOR_PREFIX}'))"

OBJECT_RULES: Final[Mapping[type[BaseModel], tuple[Rule, ...]]] = {
    provider.Endpoint: (
        Rule(
            rule="has(self.url) != has(self.service)",
            message="set exactly one of endpoint.url or endpoint.service",
        ),
    ),
    provider.ProviderSpec: (
        Rule(
            # azure needs an endpoint too, and says so by the rule after this one
            rule=f"has(self.endpoint) || self.type in {_cel_strings(provider.CLOUD_TYPES | {'azure'})}",
            message="endpoint is required unless type is " + _or_list(provider.CLOUD_TYPES),
            field_path=".endpoint",
            reason="FieldValueRequired",
        ),
        Rule(
            rule="self.type != 'azure' || (has(self.endpoint) && has(self.endpoint.url))",
            message=f"type azure needs endpoint.url, {provider.AZURE_ENDPOINT_HINT}",
            field_path=".endpoint",
            reason="FieldValueRequired",
        ),
        Rule(
            rule="self.type != 'azure' || !(has(self.discovery) && has(self.discovery.enabled)"
            " && self.discovery.enabled)",
            message=(
                "type azure cannot be probed (its model list needs the API key, which the operator "
                "never reads): set discovery.enabled: false and list the deployments in models"
            ),
            field_path=".discovery",
            reason="FieldValueForbidden",
        ),
        *_settings_rules(),
        Rule(
            rule="(has(self.models) && size(self.models) > 0)"
            " || (has(self.discovery) && has(self.discovery.enabled) && self.discovery.enabled)",
            message="declare at least one model, or enable discovery",
            field_path=".models",
            reason="FieldValueRequired",
        ),
    ),
    provider.ModelSpec: (
        Rule(
            rule="!has(self.aliases) || !(self.name in self.aliases)",
            message="an alias may not repeat the model's own name",
            field_path=".aliases",
            reason="FieldValueInvalid",
        ),
    ),
    chain.ChainSpec: (
        Rule(
            rule="!(self.model in self.fallbacks)",
            message="a model may not fall back to itself: remove spec.model from fallbacks",
            field_path=".fallbacks",
            reason="FieldValueInvalid",
        ),
    ),
    gateway.AllowedNamespaces: (
        Rule(
            rule="(has(self.from) && self.from == 'Selector') == has(self.selector)",
            message="selector is required when from is Selector, and only then",
            field_path=".selector",
            reason="FieldValueInvalid",
        ),
    ),
    gateway.GatewaySpec: (
        Rule(
            rule="!(has(self.replicas) && has(self.autoscaling))",
            message=(
                "set replicas or autoscaling, not both: the HorizontalPodAutoscaler owns the "
                "replica count; remove spec.replicas"
            ),
            field_path=".replicas",
            reason="FieldValueForbidden",
        ),
        Rule(
            rule=f"{_DEADLINE} >= {_ALLOWANCE}",
            message=(
                "rollout.progressDeadlineSeconds is shorter than the startup probe's allowance "
                "(initialDelaySeconds + periodSeconds x failureThreshold); raise progressDeadlineSeconds "
                "or shorten probes.startup"
            ),
            message_expression=(
                f"'rollout.progressDeadlineSeconds (' + string({_DEADLINE}) + ') is shorter than the "
                f"startup allowance (' + string({_ALLOWANCE}) + ' s: initialDelaySeconds + "
                "periodSeconds x failureThreshold); raise progressDeadlineSeconds to at least ' + "
                f"string({_ALLOWANCE}) + ' or shorten probes.startup'"
            ),
            field_path=".rollout",
            reason="FieldValueInvalid",
        ),
        Rule(
            rule=f"!has(self.pod) || !has({_GRACE}) || {_GRACE} >= {_TIMEOUT}",
            message=(
                "pod.terminationGracePeriodSeconds is shorter than timeoutSeconds, so a rollout would "
                "cut answers still streaming; raise it, or leave it out for the operator's default"
            ),
            message_expression=(
                f"'pod.terminationGracePeriodSeconds (' + string({_GRACE}) + ') is shorter than "
                f"timeoutSeconds (' + string({_TIMEOUT}) + '), so a rollout would cut answers still "
                f"streaming; raise it to at least ' + string({_TIMEOUT}) + ', or leave it out for the "
                "operator default'"
            ),
            field_path=".pod",
            reason="FieldValueInvalid",
        ),
    ),
    workload.Autoscaling: (
        Rule(
            rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
            message="minReplicas is more than maxReplicas; lower minReplicas or raise maxReplicas",
            message_expression=(
                "'minReplicas (' + string(self.minReplicas) + ') is more than maxReplicas (' + "
                "string(self.maxReplicas) + '); lower minReplicas or raise maxReplicas'"
            ),
            field_path=".minReplicas",
            reason="FieldValueInvalid",
        ),
        Rule(
            rule="has(self.targetCPUUtilizationPercentage) || has(self.targetMemoryUtilizationPercentage)",
            message=(
                "set targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or both: "
                "the HorizontalPodAutoscaler needs a target"
            ),
            reason="FieldValueRequired",
        ),
    ),
    workload.DisruptionBudget: (
        Rule(
            rule="has(self.maxUnavailable) != has(self.minAvailable)",
            message="set exactly one of maxUnavailable or minAvailable",
            reason="FieldValueInvalid",
        ),
    ),
    exposure.Route: (
        Rule(
            rule="has(self.parentRefs) && size(self.parentRefs) > 0",
            message=(
                "a route needs at least one parentRefs entry: name the Gateway it attaches to, "
                "e.g. parentRefs: [{name: public, namespace: gateways}]"
            ),
            field_path=".parentRefs",
            reason="FieldValueRequired",
        ),
    ),
    exposure.Metrics: (
        Rule(
            rule="!(has(self.serviceMonitor) && self.serviceMonitor) || (has(self.enabled) && self.enabled)",
            message="serviceMonitor needs enabled: true (there is nothing to scrape otherwise)",
            field_path=".serviceMonitor",
            reason="FieldValueInvalid",
        ),
    ),
    env.EnvVar: (
        Rule(
            rule="has(self.value) != has(self.valueFrom)",
            message="set exactly one of value or valueFrom",
            reason="FieldValueInvalid",
        ),
    ),
    env.EnvVarSource: (
        Rule(
            rule=_one_of(("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef")),
            message="set exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef",
            reason="FieldValueInvalid",
        ),
    ),
    env.EnvFromSource: (
        Rule(
            rule="has(self.secretRef) != has(self.configMapRef)",
            message="set exactly one of secretRef or configMapRef",
            reason="FieldValueInvalid",
        ),
    ),
    pod.Toleration: (
        Rule(
            rule="!(has(self.operator) && self.operator == 'Exists' && has(self.value) && self.value != '')",
            message="value must be empty when operator is Exists",
            field_path=".value",
            reason="FieldValueInvalid",
        ),
        Rule(
            rule="(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
            message="operator must be Exists when key is empty",
            field_path=".operator",
            reason="FieldValueInvalid",
        ),
        Rule(
            rule="!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            message="tolerationSeconds needs effect NoExecute",
            field_path=".tolerationSeconds",
            reason="FieldValueInvalid",
        ),
    ),
    pod.NodeSelectorRequirement: (
        Rule(
            rule="!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
            message="values must not be empty with operator In or NotIn",
            field_path=".values",
            reason="FieldValueRequired",
        ),
        Rule(
            rule="!(self.operator in ['Exists', 'DoesNotExist'])"
            " || !has(self.values) || size(self.values) == 0",
            message="values must be empty with operator Exists or DoesNotExist",
            field_path=".values",
            reason="FieldValueForbidden",
        ),
        Rule(
            rule="!(self.operator in ['Gt', 'Lt']) || (has(self.values) && size(self.values) == 1"
            f" && self.values[0].matches('{pod.INTEGER_PATTERN}'))",
            message="operator Gt or Lt needs exactly one integer value",
            field_path=".values",
            reason="FieldValueInvalid",
        ),
    ),
    pod.TopologySpreadConstraint: (
        Rule(
            rule="!has(self.minDomains) || self.whenUnsatisfiable == 'DoNotSchedule'",
            message="minDomains needs whenUnsatisfiable DoNotSchedule",
            field_path=".minDomains",
            reason="FieldValueInvalid",
        ),
    ),
}

FIELD_RULES: Final[Mapping[tuple[type[BaseModel], str], tuple[Rule, ...]]] = {
    (provider.ModelSpec, "name"): (_NO_ENV,),
    (provider.ModelSpec, "backendModel"): (_NO_ENV,),
    (clouds.LitellmSettings, "provider"): (
        Rule(
            rule=f"!(self in {_cel_strings(clouds.TYPED_PREFIXES)})",
            message="this provider has its own llmgw type: use that type instead of type: litellm",
            message_expression=(
                "self + ' has its own type: use type: ' + "
                + _cel_map(clouds.TYPED_PREFIXES)
                + "[self] + ' instead of type: litellm'"
            ),
            reason="FieldValueForbidden",
        ),
        Rule(
            rule=f"self in {_cel_strings(litellm_providers.PROVIDERS)}",
            message=(
                f"is not a provider LiteLLM {litellm_providers.LITELLM_VERSION} knows; use a prefix "
                "from its provider list (litellm.provider_list), e.g. sambanova, together_ai, deepseek"
            ),
            reason="FieldValueInvalid",
        ),
    ),
    (env.EnvVar, "name"): (
        Rule(
            rule=f"!(self in {_cel_strings(env.RESERVED_ENV)})"
            f" && !self.startsWith('{env.OPERATOR_ENV_PREFIX}')",
            message=_RESERVED_ENV,
            reason="FieldValueForbidden",
        ),
    ),
    (env.EnvFromSource, "prefix"): (
        Rule(
            rule=f"!self.startsWith('{env.OPERATOR_ENV_PREFIX}')",
            message=(
                f"may not start {env.OPERATOR_ENV_PREFIX}, the operator's prefix for the API keys it "
                "renders; choose another prefix"
            ),
            reason="FieldValueForbidden",
        ),
    ),
    (pod.PodMetadata, "labels"): (
        Rule(
            rule=f"{_POD_LABELS} && {_OPERATOR_KEYS}",
            message=(
                f"may not set the operator's labels ({', '.join(sorted(pod.RESERVED_POD_LABELS))}, "
                f"or keys under {pod.OPERATOR_PREFIX}): it selects and rolls its pods by them; "
                "use another key"
            ),
            reason="FieldValueForbidden",
        ),
    ),
    (pod.PodMetadata, "annotations"): (
        Rule(
            rule=_OPERATOR_KEYS,
            message=(
                f"may not set annotations under {pod.OPERATOR_PREFIX} (such as "
                f"{pod.CONFIG_HASH_ANNOTATION}): they are the operator's; use another key"
            ),
            reason="FieldValueForbidden",
        ),
    ),
}


@dataclass(frozen=True)
class Passthrough:
    """The keys a passthrough map may not set, and where to look instead."""

    reserved: frozenset[str]
    hint: str


# The keys a passthrough map may not set. CEL cannot see the undeclared keys of an object
# with x-kubernetes-preserve-unknown-fields, so the reserved keys are declared (as
# int-or-string, the loosest type CEL can read) and refused by one rule each. The hints
# repeat the ones the models' validators give.
PASSTHROUGH: Final[Mapping[tuple[type[BaseModel], str], Passthrough]] = {
    (provider.ModelSpec, "params"): Passthrough(
        passthrough.RESERVED_PARAMS,
        "use the typed field (endpoint, apiKeySecretRef, rpm, tpm) instead",
    ),
    (gateway.GatewaySpec, "routerSettings"): Passthrough(
        passthrough.RESERVED_ROUTER_SETTINGS, gateway.ROUTER_SETTINGS_HINT
    ),
    (gateway.GatewaySpec, "litellmSettings"): Passthrough(
        passthrough.RESERVED_LITELLM_SETTINGS, gateway.LITELLM_SETTINGS_HINT
    ),
    (gateway.GatewaySpec, "generalSettings"): Passthrough(
        passthrough.RESERVED_GENERAL_SETTINGS, gateway.GENERAL_SETTINGS_HINT
    ),
}

# Defaults the API server must not write into stored objects. A defaulted image would pin
# every gateway to the image of the operator version that admitted it, so an upgraded
# operator would render for one LiteLLM version and run another.
NO_SERVER_DEFAULT: Final[frozenset[tuple[type[BaseModel], str]]] = frozenset({(gateway.GatewaySpec, "image")})
