"""Sample objects, and a stand-in for the API server's admission of the three kinds.

No API server runs in these tests (TESTING.md: kmock does no OpenAPI validation
and no CEL), so admission is emulated from the generated CRDs in `crds/`:

- the structural schema, with `jsonschema`;
- what `jsonschema` does not know and the API server does: it drops null
  fields, applies defaults, refuses unknown fields (kubectl's default
  `--validate=strict`), enforces `x-kubernetes-list-type` set/map
  uniqueness, and checks metadata names;
- the `x-kubernetes-validations` rules, with cel-python, each evaluated with
  `self` bound to the value at its schema node, as the API server does.

Samples live in `samples/good` and `samples/bad` (plus the shipped examples in
`config/samples`, which must be good). A bad sample carries one annotation:
`test.llmgateway.dev/expect`, a piece of one line of the errors admission gives,
or `test.llmgateway.dev/gap`, why only the operator and `llmgw validate` can
refuse it. `test.llmgateway.dev/models-accept` marks the few that admission
refuses but the models take in (pydantic's lax types, snake_case field names).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import yaml
from celpy.evaluation import CELEvalError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).parent / "samples"
EXPECT = "test.llmgateway.dev/expect"
GAP = "test.llmgateway.dev/gap"
MODELS_ACCEPT = "test.llmgateway.dev/models-accept"

INT_OR_STRING = "x-kubernetes-int-or-string"
PRESERVE = "x-kubernetes-preserve-unknown-fields"
VALIDATIONS = "x-kubernetes-validations"


@dataclass(frozen=True)
class Sample:
    id: str
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.obj["metadata"].get("annotations") or {})

    @property
    def expect(self) -> str | None:
        return self.annotations.get(EXPECT)

    @property
    def gap(self) -> str | None:
        return self.annotations.get(GAP)

    @property
    def models_accept(self) -> str | None:
        return self.annotations.get(MODELS_ACCEPT)


def _load(paths: list[Path]) -> list[Sample]:
    out = []
    for path in paths:
        for obj in yaml.safe_load_all(path.read_text()):
            # Other kinds (a kustomization.yaml beside the samples) are not ours to check.
            if obj is not None and str(obj.get("apiVersion", "")).startswith("llmgateway.dev/"):
                where = path.relative_to(ROOT)
                out.append(Sample(f"{where.parent.name}/{where.name}:{obj['metadata']['name']}", obj))
    return out


GOOD = _load(sorted(SAMPLES.glob("good/*.yaml")) + sorted((ROOT / "config" / "samples").glob("*.yaml")))
BAD = _load(sorted(SAMPLES.glob("bad/*.yaml")))


@functools.cache
def _rule_messages() -> frozenset[str]:
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            found.update(rule["message"] for rule in node.get(VALIDATIONS, ()))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for path in sorted((ROOT / "crds").glob("*.yaml")):
        visit(yaml.safe_load(path.read_text()))
    return frozenset(found)


def _by_rule(sample: Sample) -> bool:
    """Whether admission refuses the sample by a CEL rule (its expect quotes a rule's message)."""
    if not sample.expect or ": " not in sample.expect:
        return False
    message = sample.expect.split(": ", 1)[1]
    return any(m.startswith(message) for m in _rule_messages())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, samples in (
        ("good_sample", GOOD),
        ("bad_sample", BAD),
        ("rule_sample", [s for s in BAD if _by_rule(s)]),
        ("sample", GOOD + BAD),
    ):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, samples, ids=[s.id for s in samples])


# --- walking a schema and a value together ---------------------------------------------------


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def fits(schema: Mapping[str, Any], value: Any) -> bool:
    """Whether the value has the schema's type (CEL never sees a value of the wrong type)."""
    if schema.get(INT_OR_STRING):
        return isinstance(value, int | str) and not isinstance(value, bool)
    kind = schema.get("type")
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("integer", "number"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def walk(
    schema: Mapping[str, Any], value: Any, path: str = ""
) -> Iterator[tuple[Mapping[str, Any], Any, str]]:
    """Every (schema node, value, path) where the value is present and of the node's type."""
    if value is None or not fits(schema, value):
        return
    yield schema, value, path
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                yield from walk(properties[key], item, join(path, key))
            elif isinstance(extra, dict):
                yield from walk(extra, item, join(path, key))
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from walk(schema["items"], item, join(path, index))


def node_at(schema: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """The schema node at a path like `spec.models[].params` (`[]`: the items of a list)."""
    node = schema
    for part in path.replace("[]", ".[]").split("."):
        if not part:
            continue
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


# --- what the API server does ----------------------------------------------------------------


def without_nulls(value: Any) -> Any:
    """The API server drops null fields whose schema is not nullable (none of ours is)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def defaulted(schema: Mapping[str, Any], value: Any) -> Any:
    """The value with the schema's defaults filled in, as the API server stores it."""
    if not fits(schema, value):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out = {
            key: defaulted(properties.get(key) or (extra if isinstance(extra, dict) else {}), item)
            for key, item in value.items()
        }
        for key, prop in properties.items():
            if key not in out and "default" in prop:
                out[key] = copy.deepcopy(prop["default"])
        return out
    if isinstance(value, list) and "items" in schema:
        return [defaulted(schema["items"], item) for item in value]
    return value


def as_jsonschema(node: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAPI schema node as JSON Schema, with the API server's strict field validation."""
    out: dict[str, Any] = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in node:
        out["properties"] = {k: as_jsonschema(v) for k, v in node["properties"].items()}
        if not node.get(PRESERVE):
            out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = as_jsonschema(node["additionalProperties"])
    if "items" in node:
        out["items"] = as_jsonschema(node["items"])
    if node.get(INT_OR_STRING):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def list_type_errors(schema: Mapping[str, Any], value: Any) -> Iterator[str]:
    """jsonschema does not know x-kubernetes-list-type; the API server refuses duplicates."""
    for node, item, path in walk(schema, value):
        list_type = node.get("x-kubernetes-list-type")
        if not isinstance(item, list) or list_type not in ("set", "map"):
            continue
        seen: list[Any] = []
        for index, element in enumerate(item):
            if list_type == "map":
                keys = node["x-kubernetes-list-map-keys"]
                element = {k: element.get(k) for k in keys} if isinstance(element, dict) else element
            if element in seen:
                yield f"{join(path, index)}: Duplicate value: {element!r}"
            seen.append(element)


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def metadata_errors(metadata: Any) -> Iterator[str]:
    """The CRD says nothing of metadata: the API server checks the names of custom objects itself."""
    if not isinstance(metadata, dict):
        yield "metadata: Required value"
        return
    name, namespace = metadata.get("name", ""), metadata.get("namespace", "default")
    if not (isinstance(name, str) and len(name) <= 253 and _DNS_SUBDOMAIN.match(name)):
        yield f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain"
    if not (isinstance(namespace, str) and len(namespace) <= 63 and _DNS_LABEL.match(namespace)):
        yield f"metadata.namespace: Invalid value: {namespace!r}: a lowercase RFC 1123 label"


class Cel:
    """cel-python, compiling each rule once."""

    def __init__(self) -> None:
        self.env = celpy.Environment()
        self.programs: dict[str, Any] = {}

    def program(self, rule: str) -> Any:
        if rule not in self.programs:
            self.programs[rule] = self.env.program(self.env.compile(rule))
        return self.programs[rule]

    def holds(self, rule: str, value: Any) -> bool:
        """Whether a rule holds with `self` bound to `value`; an evaluation error fails it."""
        try:
            result = self.program(rule).evaluate({"self": celpy.json_to_cel(value)})
        except CELEvalError:
            return False
        if isinstance(result, CELEvalError):
            return False
        return bool(result)


def rule_sites(schema: Mapping[str, Any], value: Any) -> Iterator[tuple[str, dict[str, str], Any]]:
    """Each (path, rule, self) the API server would evaluate for a value."""
    for node, item, path in walk(schema, value):
        for rule in node.get(VALIDATIONS, ()):
            yield path, rule, item


class ApiServer:
    """Admission of custom objects as the API server does it, from the CRDs in a folder."""

    def __init__(self, crds: Path) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}
        for path in sorted(crds.glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            (version,) = crd["spec"]["versions"]
            self.schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
        self.cel = Cel()
        self.validators = {
            kind: jsonschema.Draft202012Validator(as_jsonschema(schema))
            for kind, schema in self.schemas.items()
        }

    def written(self, obj: Mapping[str, Any]) -> Any:
        """The object as the API server first sees it: null fields dropped."""
        return without_nulls(obj)

    def stored(self, obj: Mapping[str, Any]) -> Any:
        """The object as the API server validates and stores it: nulls dropped, defaults in."""
        return defaulted(self.schemas[obj["kind"]], without_nulls(obj))

    def errors(self, obj: Mapping[str, Any]) -> list[str]:
        """One line per reason admission refuses the object, `path: message`; empty if admitted."""
        kind = obj["kind"]
        value = self.stored(obj)
        out = list(metadata_errors(value.get("metadata")))
        out += [
            f"{_path(e.absolute_path) or '<object>'}: {e.message}"
            for e in self.validators[kind].iter_errors(value)
        ]
        out += list_type_errors(self.schemas[kind], value)
        out += self.cel_errors(kind, value)
        return out

    def failing(self, kind: str, path: str, value: Any) -> list[str]:
        """The messages of the rules at one schema node that fail with `self` bound to `value`."""
        rules = node_at(self.schemas[kind], path)[VALIDATIONS]
        return [r["message"] for r in rules if not self.cel.holds(r["rule"], value)]

    def cel_errors(self, kind: str, value: Any) -> list[str]:
        return [
            f"{path}{rule.get('fieldPath', '')}: {rule['message']}"
            for path, rule, item in rule_sites(self.schemas[kind], value)
            if not self.cel.holds(rule["rule"], item)
        ]


def _path(parts: Any) -> str:
    path = ""
    for part in parts:
        path = join(path, part)
    return path


@pytest.fixture(scope="session")
def apiserver() -> ApiServer:
    return ApiServer(ROOT / "crds")
