"""Pydantic JSON schemas turned into structural OpenAPI v3 schemas, CEL rules placed.

The Kubernetes API server wants a *structural* schema: every node typed, no `$ref`,
no `anyOf` but the int-or-string one, free-form maps marked as such. Pydantic's JSON
schema is none of these. This module inlines, unwraps and translates it node by node,
refuses what has no structural equivalent (rather than dropping it), and puts each
rule of `llmgw.api.crdrules` on the node of the model or field it names.

Pure: dicts in, dicts out. `llmgw.api.crdgen` assembles the CRDs around the result.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel

from llmgw.api import crdrules

Schema = dict[str, Any]

INT_OR_STRING: Final = "x-kubernetes-int-or-string"
PRESERVE: Final = "x-kubernetes-preserve-unknown-fields"
VALIDATIONS: Final = "x-kubernetes-validations"

# Keywords of pydantic's JSON schema that mean the same in a structural schema.
_COPIED: Final = (
    "description",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
)
# Keywords handled explicitly, or dropped on purpose (title).
_HANDLED: Final = frozenset(
    {
        "type",
        "title",
        "default",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "anyOf",
        "$ref",
        "$defs",
        *_COPIED,
    }
)
_NULL: Final[Schema] = {"type": "null"}


def properties(model: type[BaseModel], raw: Schema, names: Iterable[str]) -> dict[str, Schema]:
    """The structural schemas of some top-level properties of `model`, CEL rules included.

    `raw` is the model's `model_json_schema(by_alias=True)`. Fails when a rule of
    `crdrules` meant for `model` or a model below it found no place in the result.
    """
    ctx = _new_context(raw.get("$defs", {}))
    converted = {name: _structural(raw["properties"][name], ctx, name, None) for name in names}
    _check_placed(model, ctx)
    return converted


def _name(key: tuple[type[BaseModel], str]) -> tuple[str, str]:
    return key[0].__name__, key[1]


@dataclass
class _Context:
    """What one conversion needs: the `$defs` to inline, and which rules were placed."""

    defs: Mapping[str, Schema]
    object_rules: Mapping[str, tuple[crdrules.Rule, ...]]
    field_rules: Mapping[tuple[str, str], tuple[crdrules.Rule, ...]]
    passthroughs: Mapping[tuple[str, str], crdrules.Passthrough]
    no_default: frozenset[tuple[str, str]]
    placed: set[str | tuple[str, str]]


def _new_context(defs: Mapping[str, Schema]) -> _Context:
    return _Context(
        defs=defs,
        object_rules={cls.__name__: rules for cls, rules in crdrules.OBJECT_RULES.items()},
        field_rules={_name(key): rules for key, rules in crdrules.FIELD_RULES.items()},
        passthroughs={_name(key): p for key, p in crdrules.PASSTHROUGH.items()},
        no_default=frozenset(_name(key) for key in crdrules.NO_SERVER_DEFAULT),
        placed=set(),
    )


def _resolve(raw: Schema, ctx: _Context) -> tuple[Schema, str | None]:
    """Inline `$ref` and unwrap Optional (`anyOf: [X, null]`); keys beside them win.

    Returns the schema and the name of the model it came from, if any.
    """
    if "anyOf" in raw:
        branches = [b for b in raw["anyOf"] if b != _NULL]
        outer = {k: v for k, v in raw.items() if k != "anyOf"}
        if len(branches) == 1:
            inner, name = _resolve(branches[0], ctx)
            return {**inner, **outer}, name
        return {**outer, "anyOf": [_resolve(b, ctx)[0] for b in branches]}, None
    if "$ref" in raw:
        name = raw["$ref"].removeprefix("#/$defs/")
        outer = {k: v for k, v in raw.items() if k != "$ref"}
        inner, _ = _resolve(ctx.defs[name], ctx)
        return {**inner, **outer}, name
    return raw, None


def _int_or_string(raw: Schema, where: str) -> Schema | None:
    """Fold `anyOf: [integer, string]` into one int-or-string node, or None if it is not one.

    Kubernetes accepts the `anyOf` only in exactly this form; the branches' constraints
    move up to the node, where each applies to the values of its own type.
    """
    branches = raw.get("anyOf")
    if branches is None:
        return None
    types = sorted(b.get("type", "") for b in branches)
    if types != ["integer", "string"]:
        raise ValueError(f"{where}: Kubernetes cannot express anyOf {branches}")
    node = {k: v for k, v in raw.items() if k != "anyOf"}
    for branch in branches:
        for key, value in branch.items():
            if key == "type":
                continue
            if key in node and node[key] != value:
                raise ValueError(f"{where}: conflicting {key} in int-or-string branches")
            node[key] = value
    node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    node[INT_OR_STRING] = True
    return node


def _is_plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _structural(raw: Schema, ctx: _Context, where: str, field: tuple[str, str] | None) -> Schema:
    """One node of the structural schema; `field` is (model name, property) when a property."""
    raw, model = _resolve(raw, ctx)
    if raw.get("uniqueItems"):
        raise ValueError(f"{where}: use a tuple with x-kubernetes-list-type: set, not a set type")
    unknown = set(raw) - _HANDLED
    if unknown:
        raise ValueError(f"{where}: no structural equivalent for {sorted(unknown)}")
    folded = _int_or_string(raw, where)
    node: Schema = {}
    if folded is not None:
        raw = folded
        node["anyOf"] = raw["anyOf"]
        node[INT_OR_STRING] = True
    elif "type" in raw:
        node["type"] = raw["type"]
    else:
        raise ValueError(f"{where}: no type; a free-form value must be a dict[str, Any]")
    for key in _COPIED:
        if key in raw:
            node[key] = copy.deepcopy(raw[key])
    if "const" in raw:
        node["enum"] = [raw["const"]]
    if field in ctx.no_default:
        ctx.placed.add(field)
    elif _is_plain(raw.get("default")):
        node["default"] = raw["default"]

    if node.get("type") == "object":
        _object(raw, node, ctx, where, owner=model or where)
    elif node.get("type") == "array":
        node["items"] = _structural(raw["items"], ctx, f"{where}[]", None)

    rules: list[crdrules.Rule] = []
    if model is not None and model in ctx.object_rules:
        rules += ctx.object_rules[model]
        ctx.placed.add(model)
    if field is not None and field in ctx.field_rules:
        rules += ctx.field_rules[field]
        ctx.placed.add(field)
    if field is not None and field in ctx.passthroughs:
        rules += _reserved(node, ctx.passthroughs[field])
        ctx.placed.add(field)
    if rules:
        node[VALIDATIONS] = [r.manifest() for r in rules]
    return node


def _object(raw: Schema, node: Schema, ctx: _Context, where: str, *, owner: str) -> None:
    """Properties, a typed map, or a free-form object; `owner` names the model for field rules."""
    properties = raw.get("properties")
    extra = raw.get("additionalProperties", True)
    if properties:
        # Unknown fields: the API server prunes them (kubectl's strict field validation
        # refuses them); `additionalProperties: false` is not allowed in a structural schema.
        node["properties"] = {
            name: _structural(prop, ctx, f"{where}.{name}", (owner, name))
            for name, prop in properties.items()
        }
        if raw.get("required"):
            node["required"] = list(raw["required"])
    elif extra is True:
        node[PRESERVE] = True
    else:
        node["additionalProperties"] = _structural(extra, ctx, f"{where}.*", None)


def _reserved(node: Schema, rule: crdrules.Passthrough) -> list[crdrules.Rule]:
    """Declare a passthrough map's reserved keys and refuse each with a rule of its own."""
    if not node.get(PRESERVE):
        raise ValueError("a passthrough map must be free-form")
    node["properties"] = {
        key: {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            INT_OR_STRING: True,
            "description": f"Refused: the operator owns this key; {rule.hint}.",
        }
        for key in sorted(rule.reserved)
    }
    return [
        crdrules.Rule(
            rule=f"!has(self.{key})",
            message=f"key {key!r} is owned by the operator; {rule.hint}",
            field_path=f".{key}",
            reason="FieldValueForbidden",
        )
        for key in sorted(rule.reserved)
    ]


def _check_placed(model: type[BaseModel], ctx: _Context) -> None:
    """Fail when a rule meant for this model or one below it found no place in its schema."""
    mine = set(ctx.defs) | {model.__name__}
    wanted: set[str | tuple[str, str]] = {m for m in ctx.object_rules if m in mine}
    for keys in (ctx.field_rules, ctx.passthroughs, ctx.no_default):
        wanted |= {key for key in keys if key[0] in mine}
    missing = wanted - ctx.placed
    if missing:
        raise ValueError(f"{model.__name__}: rules for {sorted(map(str, missing))} found no place")
