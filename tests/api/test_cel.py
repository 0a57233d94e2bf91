"""The CRDs' CEL rules, evaluated with cel-python as the API server evaluates them.

Each rule runs with `self` bound to the value at its schema node; absent
optional fields are absent (`has()` is false), as in Kubernetes. cel-python
does not check a rule against the schema as the API server's compiler does,
so one test here does: a rule may only read fields the schema declares.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from llmgw.api import crdgen, env, passthrough, pod

VALIDATIONS = "x-kubernetes-validations"

ENDPOINT_ONE = "set exactly one of endpoint.url or endpoint.service"
ENDPOINT_REQUIRED = "endpoint is required unless type is anthropic, bedrock, gemini, groq, litellm, mistral,"
AZURE_URL = "type azure needs endpoint.url"
AZURE_DISCOVERY = "type azure cannot be probed"
ONLY_FOR = "spec.{0} is only for type {0}"
NEEDS = "type {0} needs spec.{0}"
TYPED_PREFIX = "this provider has its own llmgw type"
UNKNOWN_PREFIX = "is not a provider LiteLLM 1.106.2 knows"
MODELS_REQUIRED = "declare at least one model, or enable discovery"
ALIAS = "an alias may not repeat the model's own name"
NO_ENV = "may not start with os.environ/"
SELF_FALLBACK = "a model may not fall back to itself"
SELECTOR = "selector is required when from is Selector, and only then"

REPLICAS_AND_HPA = "set replicas or autoscaling, not both"
DEADLINE = "rollout.progressDeadlineSeconds is shorter than the startup probe's allowance"
GRACE = "pod.terminationGracePeriodSeconds is shorter than timeoutSeconds"
MIN_MAX = "minReplicas is more than maxReplicas"
HPA_TARGET = "set targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or both"
PDB_ONE = "set exactly one of maxUnavailable or minAvailable"
PARENTS = "a route needs at least one parentRefs entry"
MONITOR = "serviceMonitor needs enabled: true"
ENV_ONE = "set exactly one of value or valueFrom"
SOURCE_ONE = "set exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef"
FROM_ONE = "set exactly one of secretRef or configMapRef"
ENV_RESERVED = "is the operator's ("
PREFIX_RESERVED = "may not start LLMGW_"
POD_LABELS = "may not set the operator's labels"
POD_ANNOTATIONS = "may not set annotations under llmgateway.dev/"
TOL_VALUE = "value must be empty when operator is Exists"
TOL_KEY = "operator must be Exists when key is empty"
TOL_SECONDS = "tolerationSeconds needs effect NoExecute"
NSR_IN = "values must not be empty with operator In or NotIn"
NSR_EXISTS = "values must be empty with operator Exists or DoesNotExist"
NSR_GT = "operator Gt or Lt needs exactly one integer value"
MIN_DOMAINS = "minDomains needs whenUnsatisfiable DoNotSchedule"

P, C, G = "LLMProvider", "FallbackChain", "LLMGateway"
HPA = {"maxReplicas": 3, "targetCPUUtilizationPercentage": 70}
SECRET_KEY = {"secretKeyRef": {"name": "callbacks", "key": "langfuse"}}
NODE_AFFINITY = "spec.pod.affinity.nodeAffinity"
NODE_SELECTOR_REQUIREMENTS = [
    f"{NODE_AFFINITY}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[].{field}[]"
    for field in ("matchExpressions", "matchFields")
] + [
    f"{NODE_AFFINITY}.preferredDuringSchedulingIgnoredDuringExecution[].preference.{field}[]"
    for field in ("matchExpressions", "matchFields")
]
URL = {"url": "https://api.openai.com/v1"}
SERVICE = {"service": {"name": "vllm", "port": 8000}}
AZURE_URL_ = {"url": "https://acme.openai.azure.com"}
M = [{"name": "a"}]
SETTINGS = {
    "azure": {"apiVersion": "2024-10-21"},
    "bedrock": {"region": "us-east-1"},
    "vertex": {"project": "my-project", "location": "us-central1"},
    "litellm": {"provider": "sambanova"},
}

# (kind, schema node, self, the start of the one message that fails, or None when all hold)
CASES: list[tuple[str, str, Any, str | None]] = [
    (P, "spec.endpoint", URL, None),
    (P, "spec.endpoint", SERVICE, None),
    (P, "spec.endpoint", {}, ENDPOINT_ONE),
    (P, "spec.endpoint", {**URL, **SERVICE}, ENDPOINT_ONE),
    (P, "spec", {"type": "vllm", "endpoint": SERVICE, "models": [{"name": "a"}]}, None),
    (P, "spec", {"type": "openai", "models": [{"name": "a"}]}, None),
    (P, "spec", {"type": "anthropic", "discovery": {"enabled": True}}, None),
    (P, "spec", {"type": "vllm", "endpoint": SERVICE, "discovery": {"enabled": True}}, None),
    (P, "spec", {"type": "vllm", "models": [{"name": "a"}]}, ENDPOINT_REQUIRED),
    (P, "spec", {"type": "openai-compatible", "models": [{"name": "a"}]}, ENDPOINT_REQUIRED),
    (P, "spec", {"type": "openai"}, MODELS_REQUIRED),
    (P, "spec", {"type": "openai", "models": []}, MODELS_REQUIRED),
    # the cloud types: the endpoint, and the per-type settings on their own type only
    (P, "spec", {"type": "azure", "endpoint": AZURE_URL_, "azure": SETTINGS["azure"], "models": M}, None),
    (P, "spec", {"type": "azure", "azure": SETTINGS["azure"], "models": M}, AZURE_URL),
    (P, "spec", {"type": "azure", "endpoint": SERVICE, "azure": SETTINGS["azure"], "models": M}, AZURE_URL),
    (
        P,
        "spec",
        {"type": "azure", "endpoint": AZURE_URL_, "azure": SETTINGS["azure"], "discovery": {"enabled": True}},
        AZURE_DISCOVERY,
    ),
    (P, "spec", {"type": "azure", "endpoint": AZURE_URL_, "models": M}, NEEDS.format("azure")),
    (P, "spec", {"type": "bedrock", "models": M}, NEEDS.format("bedrock")),
    (P, "spec", {"type": "vertex", "models": M}, NEEDS.format("vertex")),
    (P, "spec", {"type": "litellm", "models": M}, NEEDS.format("litellm")),
    (P, "spec", {"type": "bedrock", "bedrock": SETTINGS["bedrock"], "models": M}, None),
    (P, "spec", {"type": "bedrock", "bedrock": SETTINGS["bedrock"], "endpoint": URL, "models": M}, None),
    (P, "spec", {"type": "vertex", "vertex": SETTINGS["vertex"], "models": M}, None),
    (P, "spec", {"type": "litellm", "litellm": SETTINGS["litellm"], "models": M}, None),
    (P, "spec", {"type": "gemini", "models": M}, None),
    (P, "spec", {"type": "mistral", "models": M}, None),
    (P, "spec", {"type": "groq", "endpoint": URL, "models": M}, None),
    (
        P,
        "spec",
        {"type": "vllm", "endpoint": SERVICE, "vertex": SETTINGS["vertex"], "models": M},
        ONLY_FOR.format("vertex"),
    ),
    (P, "spec", {"type": "gemini", "azure": SETTINGS["azure"], "models": M}, ONLY_FOR.format("azure")),
    (P, "spec", {"type": "openai", "bedrock": SETTINGS["bedrock"], "models": M}, ONLY_FOR.format("bedrock")),
    (P, "spec", {"type": "groq", "litellm": SETTINGS["litellm"], "models": M}, ONLY_FOR.format("litellm")),
    (P, "spec.litellm.provider", "sambanova", None),
    (P, "spec.litellm.provider", "together_ai", None),
    (P, "spec.litellm.provider", "opnai", UNKNOWN_PREFIX),
    (P, "spec.litellm.provider", "vertex_ai", TYPED_PREFIX),
    (P, "spec.litellm.provider", "hosted_vllm", TYPED_PREFIX),
    (P, "spec", {"type": "openai", "discovery": {}}, MODELS_REQUIRED),
    (P, "spec", {"type": "openai", "discovery": {"enabled": False, "intervalSeconds": 60}}, MODELS_REQUIRED),
    (P, "spec.models[]", {"name": "a"}, None),
    (P, "spec.models[]", {"name": "a", "aliases": ["b", "c"]}, None),
    (P, "spec.models[]", {"name": "a", "aliases": ["b", "a"]}, ALIAS),
    (P, "spec.models[].name", "llama-3.1-8b", None),
    (P, "spec.models[].name", "os.environ/MODEL", NO_ENV),
    (P, "spec.models[].backendModel", "meta-llama/Llama-3.1-8B-Instruct", None),
    (P, "spec.models[].backendModel", "os.environ/MODEL", NO_ENV),
    (P, "spec.models[].params", {}, None),
    (P, "spec.models[].params", {"temperature": 0.2, "extra_body": {"model": "x"}}, None),
    (C, "spec", {"model": "a", "fallbacks": ["b", "c"]}, None),
    (C, "spec", {"model": "a", "fallbacks": ["b", "a"], "trigger": "errors"}, SELF_FALLBACK),
    (G, "spec.namespaces", {}, None),
    (G, "spec.namespaces", {"from": "Same"}, None),
    (G, "spec.namespaces", {"from": "All"}, None),
    (G, "spec.namespaces", {"from": "Selector", "selector": {}}, None),
    (G, "spec.namespaces", {"from": "Selector"}, SELECTOR),
    (G, "spec.namespaces", {"from": "All", "selector": {}}, SELECTOR),
    (G, "spec.namespaces", {"selector": {"matchLabels": {"team": "a"}}}, SELECTOR),
    (G, "spec.routerSettings", {"allowed_fails": 3, "cooldown_time": 30}, None),
    (G, "spec.litellmSettings", {"drop_params": True}, None),
    (G, "spec.generalSettings", {"store_model_in_db": False}, None),
    # replicas and autoscaling
    (G, "spec", {}, None),
    (G, "spec", {"replicas": 2}, None),
    (G, "spec", {"autoscaling": HPA}, None),
    (G, "spec", {"replicas": 2, "autoscaling": HPA}, REPLICAS_AND_HPA),
    (G, "spec", {"replicas": 0, "autoscaling": HPA}, REPLICAS_AND_HPA),
    # progressDeadlineSeconds against the startup allowance (default 0 + 5 x 60 = 300 s)
    (G, "spec", {"rollout": {"progressDeadlineSeconds": 300}}, None),
    (G, "spec", {"rollout": {"autoRollback": True}}, None),
    (G, "spec", {"probes": {"liveness": {"periodSeconds": 30}}}, None),
    (G, "spec", {"rollout": {"progressDeadlineSeconds": 299}}, DEADLINE),
    (G, "spec", {"probes": {"startup": {"failureThreshold": 120}}}, DEADLINE),
    (G, "spec", {"probes": {"startup": {"initialDelaySeconds": 10}}}, DEADLINE),
    (
        G,
        "spec",
        {"probes": {"startup": {"periodSeconds": 10}}, "rollout": {"progressDeadlineSeconds": 599}},
        DEADLINE,
    ),
    (
        G,
        "spec",
        {"probes": {"startup": {"failureThreshold": 120}}, "rollout": {"progressDeadlineSeconds": 600}},
        None,
    ),
    (
        G,
        "spec",
        {
            "probes": {"startup": {"periodSeconds": 2, "failureThreshold": 15}},
            "rollout": {"progressDeadlineSeconds": 30},
        },
        None,
    ),
    # an explicit grace period against timeoutSeconds (default 60)
    (G, "spec", {"pod": {}}, None),
    (G, "spec", {"pod": {"terminationGracePeriodSeconds": 60}}, None),
    (G, "spec", {"pod": {"terminationGracePeriodSeconds": 59}}, GRACE),
    (G, "spec", {"pod": {"terminationGracePeriodSeconds": 30}, "timeoutSeconds": 20}, None),
    (G, "spec", {"pod": {"terminationGracePeriodSeconds": 90}, "timeoutSeconds": 120}, GRACE),
    # autoscaling
    (G, "spec.autoscaling", HPA, None),
    (
        G,
        "spec.autoscaling",
        {"minReplicas": 3, "maxReplicas": 3, "targetMemoryUtilizationPercentage": 80},
        None,
    ),
    (G, "spec.autoscaling", {**HPA, "minReplicas": 5}, MIN_MAX),
    (G, "spec.autoscaling", {"minReplicas": 2, "maxReplicas": 4}, HPA_TARGET),
    # disruption budget, route, metrics
    (G, "spec.disruptionBudget", {"maxUnavailable": 1}, None),
    (G, "spec.disruptionBudget", {"minAvailable": "50%"}, None),
    (G, "spec.disruptionBudget", {}, PDB_ONE),
    (G, "spec.disruptionBudget", {"maxUnavailable": 1, "minAvailable": 1}, PDB_ONE),
    (G, "spec.route", {"parentRefs": [{"name": "public", "namespace": "gateways"}]}, None),
    (G, "spec.route", {}, PARENTS),
    (G, "spec.route", {"parentRefs": [], "hostnames": ["llm.example.com"]}, PARENTS),
    (G, "spec.metrics", {}, None),
    (G, "spec.metrics", {"enabled": True}, None),
    (G, "spec.metrics", {"enabled": True, "serviceMonitor": True}, None),
    (G, "spec.metrics", {"serviceMonitor": True}, MONITOR),
    (G, "spec.metrics", {"enabled": False, "serviceMonitor": True}, MONITOR),
    # env and envFrom
    (G, "spec.env[]", {"name": "LANGFUSE_HOST", "value": "https://langfuse.example.com"}, None),
    (G, "spec.env[]", {"name": "EMPTY", "value": ""}, None),
    (G, "spec.env[]", {"name": "LANGFUSE_SECRET_KEY", "valueFrom": SECRET_KEY}, None),
    (G, "spec.env[]", {"name": "A"}, ENV_ONE),
    (G, "spec.env[]", {"name": "A", "value": "x", "valueFrom": SECRET_KEY}, ENV_ONE),
    (G, "spec.env[].name", "LANGFUSE_HOST", None),
    (G, "spec.env[].name", "LITELLM_MODE", None),
    (G, "spec.env[].name", "LLMGW_X", ENV_RESERVED),
    (G, "spec.env[].name", "LLMGW_", ENV_RESERVED),
    (G, "spec.env[].valueFrom", SECRET_KEY, None),
    (G, "spec.env[].valueFrom", {"fieldRef": {"fieldPath": "metadata.name"}}, None),
    (G, "spec.env[].valueFrom", {"resourceFieldRef": {"resource": "limits.memory"}}, None),
    (G, "spec.env[].valueFrom", {"configMapKeyRef": {"name": "a", "key": "b"}}, None),
    (G, "spec.env[].valueFrom", {}, SOURCE_ONE),
    (G, "spec.env[].valueFrom", {**SECRET_KEY, "fieldRef": {"fieldPath": "metadata.name"}}, SOURCE_ONE),
    (G, "spec.envFrom[]", {"secretRef": {"name": "callbacks"}}, None),
    (G, "spec.envFrom[]", {"prefix": "CB_", "configMapRef": {"name": "callbacks"}}, None),
    (G, "spec.envFrom[]", {"prefix": "CB_"}, FROM_ONE),
    (G, "spec.envFrom[]", {"secretRef": {"name": "a"}, "configMapRef": {"name": "b"}}, FROM_ONE),
    (G, "spec.envFrom[].prefix", "CB_", None),
    (G, "spec.envFrom[].prefix", "LLMGW", None),
    (G, "spec.envFrom[].prefix", "LLMGW_", PREFIX_RESERVED),
    (G, "spec.envFrom[].prefix", "LLMGW_CB_", PREFIX_RESERVED),
    # the pod
    (G, "spec.pod.metadata.labels", {"team": "platform", "app.kubernetes.io/part-of": "llm"}, None),
    (G, "spec.pod.metadata.labels", {"llmgateway.dev/tier": "gold"}, POD_LABELS),
    (G, "spec.pod.metadata.annotations", {"vault.hashicorp.com/agent-inject": "true"}, None),
    (G, "spec.pod.metadata.annotations", {"llmgateway.dev/config-hash": "x"}, POD_ANNOTATIONS),
    (G, "spec.pod.metadata.annotations", {"llmgateway.dev/anything": "x"}, POD_ANNOTATIONS),
    (G, "spec.pod.tolerations[]", {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}, None),
    (G, "spec.pod.tolerations[]", {"operator": "Exists"}, None),
    (G, "spec.pod.tolerations[]", {"key": "gpu", "value": "a100"}, None),
    (G, "spec.pod.tolerations[]", {"key": "gpu", "effect": "NoExecute", "tolerationSeconds": 30}, None),
    (G, "spec.pod.tolerations[]", {"key": "gpu", "operator": "Exists", "value": "a100"}, TOL_VALUE),
    (G, "spec.pod.tolerations[]", {"value": "a100"}, TOL_KEY),
    (G, "spec.pod.tolerations[]", {"key": "", "operator": "Equal"}, TOL_KEY),
    (G, "spec.pod.tolerations[]", {"key": "gpu", "tolerationSeconds": 30}, TOL_SECONDS),
    (
        G,
        "spec.pod.topologySpreadConstraints[]",
        {"maxSkew": 1, "topologyKey": "z", "whenUnsatisfiable": "DoNotSchedule"},
        None,
    ),
    (
        G,
        "spec.pod.topologySpreadConstraints[]",
        {"maxSkew": 1, "topologyKey": "z", "whenUnsatisfiable": "DoNotSchedule", "minDomains": 3},
        None,
    ),
    (
        G,
        "spec.pod.topologySpreadConstraints[]",
        {"maxSkew": 1, "topologyKey": "z", "whenUnsatisfiable": "ScheduleAnyway", "minDomains": 3},
        MIN_DOMAINS,
    ),
]
for _key in sorted(pod.RESERVED_POD_LABELS):
    CASES.append((G, "spec.pod.metadata.labels", {_key: "x", "team": "a"}, POD_LABELS))
for _name in sorted(env.RESERVED_ENV):
    CASES.append((G, "spec.env[].name", _name, ENV_RESERVED))
for _path in NODE_SELECTOR_REQUIREMENTS:
    CASES += [
        (G, _path, {"key": "zone", "operator": "In", "values": ["a", "b"]}, None),
        (G, _path, {"key": "gpu", "operator": "Exists"}, None),
        (G, _path, {"key": "cores", "operator": "Gt", "values": ["-8"]}, None),
        (G, _path, {"key": "zone", "operator": "NotIn"}, NSR_IN),
        (G, _path, {"key": "zone", "operator": "In", "values": []}, NSR_IN),
        (G, _path, {"key": "gpu", "operator": "DoesNotExist", "values": ["x"]}, NSR_EXISTS),
        (G, _path, {"key": "cores", "operator": "Lt", "values": ["eight"]}, NSR_GT),
        (G, _path, {"key": "cores", "operator": "Gt", "values": ["1", "2"]}, NSR_GT),
        (G, _path, {"key": "cores", "operator": "Gt"}, NSR_GT),
    ]
# Every reserved key of every passthrough map, as a number and as a string.
for _kind, _path, _reserved in (
    (P, "spec.models[].params", passthrough.RESERVED_PARAMS),
    (G, "spec.routerSettings", passthrough.RESERVED_ROUTER_SETTINGS),
    (G, "spec.litellmSettings", passthrough.RESERVED_LITELLM_SETTINGS),
    (G, "spec.generalSettings", passthrough.RESERVED_GENERAL_SETTINGS),
):
    for _key in sorted(_reserved):
        CASES.append((_kind, _path, {_key: 1, "other_key": True}, f"key '{_key}' is owned by the operator"))
        CASES.append((_kind, _path, {_key: "x"}, f"key '{_key}' is owned by the operator"))


@pytest.mark.parametrize(("kind", "path", "value", "fails"), CASES)
def test_rule(apiserver: Any, kind: str, path: str, value: Any, fails: str | None) -> None:
    failing = apiserver.failing(kind, path, value)
    if fails is None:
        assert failing == []
    else:
        assert len(failing) == 1, failing
        assert failing[0].startswith(fails)


def _rules(
    node: Mapping[str, Any], path: str = ""
) -> Iterator[tuple[str, Mapping[str, Any], dict[str, str]]]:
    for rule in node.get(VALIDATIONS, ()):
        yield path, node, rule
    for key, prop in node.get("properties", {}).items():
        yield from _rules(prop, f"{path}.{key}" if path else key)
    if "items" in node:
        yield from _rules(node["items"], f"{path}[]")


SCHEMAS = {kind: crdgen.openapi_schema(kind) for kind in crdgen.KINDS}
RULES = [(kind, path, node, rule) for kind in crdgen.KINDS for path, node, rule in _rules(SCHEMAS[kind])]
RULE_IDS = [f"{kind}:{path}:{rule['rule']}" for kind, path, _, rule in RULES]


@pytest.mark.parametrize(("kind", "path", "node", "rule"), RULES, ids=RULE_IDS)
def test_rule_compiles(apiserver: Any, kind: str, path: str, node: Any, rule: dict[str, str]) -> None:
    apiserver.cel.program(rule["rule"])


@pytest.mark.parametrize(("kind", "path", "node", "rule"), RULES, ids=RULE_IDS)
def test_rule_has_a_failing_case(kind: str, path: str, node: Any, rule: dict[str, str]) -> None:
    """Every rule is seen to fail, with its own message, by at least one case above."""
    assert any(
        (k, p) == (kind, path) and fails is not None and rule["message"].startswith(fails)
        for k, p, _, fails in CASES
    )


_FIELDS = re.compile(r"\bself((?:\.[A-Za-z_][A-Za-z0-9_]*)*)(\()?")


def _read_fields(rule: str) -> Iterator[list[str]]:
    """The field paths a rule reads from `self` (`self.a.b` -> [a, b]; a method call is no field)."""
    for match in _FIELDS.finditer(rule):
        parts = match.group(1).split(".")[1:]
        if match.group(2):
            parts = parts[:-1]
        yield parts


@pytest.mark.parametrize(("kind", "path", "node", "rule"), RULES, ids=RULE_IDS)
def test_rule_reads_only_declared_fields(
    kind: str, path: str, node: Mapping[str, Any], rule: dict[str, str]
) -> None:
    """The API server compiles a rule against the schema: an undeclared field is an error."""
    for fields in _read_fields(rule["rule"]):
        here = node
        for field in fields:
            assert field in here.get("properties", {}), f"{path}: {field} is not declared"
            here = here["properties"][field]


@pytest.mark.parametrize(("kind", "path", "node", "rule"), RULES, ids=RULE_IDS)
def test_rule_cost_is_bounded(kind: str, path: str, node: Mapping[str, Any], rule: dict[str, str]) -> None:
    """The API server refuses a CRD whose rules might cost too much; bounds keep its estimate low.

    A rule runs once per element of every list above it and walks the lists and strings it
    reads: those need maxItems and maxLength. An enum is checked before any rule runs, and
    read here only once per object.
    """
    here: Mapping[str, Any] = SCHEMAS[kind]
    for part in path.replace("[]", ".[]").split("."):
        if part == "[]":
            assert "maxItems" in here, f"{path}: a list above a rule needs maxItems"
            here = here["items"]
        else:
            here = here["properties"][part]
    read = [node]
    for fields in _read_fields(rule["rule"]):
        target = node
        for field in fields:
            target = target["properties"][field]
        read.append(target)
    for target in read:
        if target.get("type") == "array":
            assert "maxItems" in target, f"{path}: a list a rule reads needs maxItems"
            target = target["items"]
        if target.get("type") == "string" and not ("enum" in target and "[]" not in path):
            assert "maxLength" in target, f"{path}: a string a rule reads needs maxLength"


def test_good_sample_passes_every_rule(good_sample: Any, apiserver: Any) -> None:
    """As written (before the API server's defaults) and as stored (after them)."""
    assert apiserver.cel_errors(good_sample.kind, apiserver.written(good_sample.obj)) == []
    assert apiserver.cel_errors(good_sample.kind, apiserver.stored(good_sample.obj)) == []


def test_bad_sample_fails_its_rule(rule_sample: Any, apiserver: Any) -> None:
    """A bad sample refused by a rule is refused by CEL, before and after defaults."""
    for value in (apiserver.written(rule_sample.obj), apiserver.stored(rule_sample.obj)):
        errors = apiserver.cel_errors(rule_sample.kind, value)
        assert any(rule_sample.expect in line for line in errors), errors
