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

from llmgw.api import crdgen, passthrough

VALIDATIONS = "x-kubernetes-validations"

ENDPOINT_ONE = "set exactly one of endpoint.url or endpoint.service"
ENDPOINT_REQUIRED = "endpoint is required unless type is anthropic or openai"
MODELS_REQUIRED = "declare at least one model, or enable discovery"
ALIAS = "an alias may not repeat the model's own name"
NO_ENV = "may not start with os.environ/"
SELF_FALLBACK = "a model may not fall back to itself"
SELECTOR = "selector is required when from is Selector, and only then"

P, C, G = "LLMProvider", "FallbackChain", "LLMGateway"
URL = {"url": "https://api.openai.com/v1"}
SERVICE = {"service": {"name": "vllm", "port": 8000}}

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
]
# Every reserved key of every passthrough map, as a number and as a string.
for _kind, _path, _reserved in (
    (P, "spec.models[].params", passthrough.RESERVED_PARAMS),
    (G, "spec.routerSettings", passthrough.RESERVED_ROUTER_SETTINGS),
    (G, "spec.litellmSettings", passthrough.RESERVED_LITELLM_SETTINGS),
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
