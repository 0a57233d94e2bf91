"""Raw Kubernetes objects in, typed llmgw objects (or findings) out.

The operator and the CLI both start from plain dicts, as the API server or a
YAML file gives them. Parsing here turns pydantic's errors into findings that
name the object and the field in the manifest's own (camelCase) spelling.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from llmgw.api import common, passthrough, provider
from llmgw.api.chain import FallbackChain
from llmgw.api.gateway import LLMGateway
from llmgw.api.provider import LLMProvider
from llmgw.core import findings
from llmgw.core.findings import Finding

KINDS: dict[str, type[LLMProvider] | type[FallbackChain] | type[LLMGateway]] = {
    "LLMProvider": LLMProvider,
    "FallbackChain": FallbackChain,
    "LLMGateway": LLMGateway,
}

Parsed = LLMProvider | FallbackChain | LLMGateway

_PATTERN_HINTS = {
    provider.URL_PATTERN: "must be an http:// or https:// URL with a host, e.g. http://vllm:8000/v1",
    common.MODEL_NAME_PATTERN: (
        "must start with a letter or digit and hold only letters, digits and . _ : / @ + -"
    ),
    common.DNS_LABEL_PATTERN: "must be a DNS label (lower case letters, digits and -)",
    common.DNS_SUBDOMAIN_PATTERN: "must be a DNS subdomain (lower case letters, digits, - and .)",
    common.SECRET_KEY_PATTERN: "must hold only letters, digits, -, _ and .",
    provider.PORT_NAME_PATTERN: "must be a port number or an IANA port name",
    passthrough.KEY_PATTERN: "must be lower snake_case",
}


@dataclasses.dataclass(frozen=True)
class Invalid:
    """An object of one of our kinds that failed per-object validation."""

    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    generation: int | None
    findings: tuple[Finding, ...]


def identity(raw: Mapping[str, Any]) -> tuple[str, str, str]:
    """`(kind, namespace, name)` of a raw object, as well as can be told."""
    meta = raw.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = meta.get("name")
    namespace = meta.get("namespace") or "default"
    return (
        str(raw.get("kind", "")),
        str(namespace),
        str(name) if isinstance(name, str) and name else "<unnamed>",
    )


def parse(raw: Mapping[str, Any]) -> Parsed | Invalid:
    """Validate one raw object of a known kind; never raises for bad input."""
    kind, namespace, name = identity(raw)
    model = KINDS[kind]
    body = {k: v for k, v in raw.items() if k in ("apiVersion", "kind", "metadata", "spec")}
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        found = tuple(
            Finding(kind, namespace, name, _path(err["loc"]), findings.INVALID_SPEC, _say(err))
            for err in ([e for e in errors if _for_the_value_given(e)] or errors)
        )
    meta = raw.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    labels = meta.get("labels")
    generation = meta.get("generation")
    return Invalid(
        kind=kind,
        namespace=namespace,
        name=name,
        labels=dict(labels) if isinstance(labels, Mapping) else {},
        generation=generation if isinstance(generation, int) else None,
        findings=tuple(sorted(set(found))),
    )


def _for_the_value_given(err: Mapping[str, Any]) -> bool:
    """Of the branches of a union (`port: 8000` or `port: http`), only the one for the
    kind of value given says something useful: `'HTTP' must be an integer` does not."""
    branch = err["loc"][-1] if err["loc"] else None
    if branch == "int":
        return not isinstance(err.get("input"), str)
    if branch in ("str", "constrained-str"):
        return isinstance(err.get("input"), str)
    return True


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("int", "str", "function-after[_port_range(), int]"):
            continue  # union branch names, not fields
        elif part.startswith(("function-", "constrained-str", "literal[")):
            continue
        else:
            out += f".{part}" if out else part
    return out


_VALUE_ERROR = re.compile(r"^(Value error|Assertion failed), ")


def _say(err: Mapping[str, Any]) -> str:
    """A pydantic error as a sentence with what to do."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    shown = repr(got) if isinstance(got, str | int | float | bool) else type(got).__name__
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_HINTS.get(ctx.get("pattern", ""), f"must match {ctx.get('pattern')}")
        return f"{shown} {hint}"
    if kind == "literal_error":
        return f"{shown} is not allowed; use one of {ctx.get('expected')}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field; check the spelling against `llmgw schema` or the CRD"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{shown} must be an integer"
    if kind in ("string_type",):
        return f"{shown} must be a string"
    if kind in ("bool_type", "bool_parsing"):
        return f"{shown} must be true or false"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, not {type(got).__name__}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, not {type(got).__name__}"
    msg = _VALUE_ERROR.sub("", str(err.get("msg", "is invalid")))
    return msg[0].lower() + msg[1:] if msg else "is invalid"
