"""Raw Kubernetes objects in, typed llmgw objects (or findings) out.

The operator and the CLI both start from plain dicts, as the API server or a
YAML file gives them. Parsing here turns pydantic's errors into findings that
name the object and the field in the manifest's own (camelCase) spelling.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from llmgw.api import clouds, common, passthrough, provider
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
    clouds.AZURE_API_VERSION_PATTERN: "must be an Azure OpenAI API version, e.g. 2024-10-21 or v1",
    clouds.AWS_REGION_PATTERN: "must be an AWS region, e.g. us-east-1",
    clouds.GCP_PROJECT_PATTERN: "must be a Google Cloud project id (6-30 lower case letters, digits and -)",
    clouds.GCP_LOCATION_PATTERN: "must be a Vertex AI location, e.g. us-central1 or global",
    clouds.LITELLM_PROVIDER_PATTERN: "must be a LiteLLM provider prefix (lower case, digits, _ and -)",
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
            Finding(kind, namespace, name, _path(err["loc"]), _reason(kind, err), _say(model, err))
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


def _reason(kind: str, err: Mapping[str, Any]) -> str:
    """InvalidEndpoint for what is wrong with a provider's endpoint (a bad URL, both or
    neither of url and service, a bad service port, no endpoint where one is required),
    InvalidSpec for the rest."""
    if kind != "LLMProvider":
        return findings.INVALID_SPEC
    path = _path(err["loc"])
    if (
        path == "spec.endpoint"
        or path.startswith("spec.endpoint.")
        or err["type"] == provider.ENDPOINT_REQUIRED
    ):
        return findings.INVALID_ENDPOINT
    return findings.INVALID_SPEC


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


_SENTENCE = re.compile(r"\.\s+(?=[A-Z])")
_VALUE_ERROR = re.compile(r"^(Value error|Assertion failed), ")


def _say(root: type[BaseModel], err: Mapping[str, Any]) -> str:
    """A pydantic error as a sentence with what to do; `root` is the kind's model."""
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
        return "is required" + _what(root, err["loc"])
    if kind == "extra_forbidden":
        return "is not a known field; " + _closest(root, err["loc"])
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


# --- walking a model class along an error's `loc` ------------------------------------------


def _closest(root: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """`did you mean 'contextWindow'?` for an unknown field, from the fields of the model(s)
    at its parent path, in the manifest's spelling."""
    unknown = loc[-1] if loc else None
    known = sorted({_alias(n, f) for m in _models_at(root, loc[:-1]) for n, f in m.model_fields.items()})
    close = difflib.get_close_matches(str(unknown), known, n=1) if known else []
    if close:
        return f"did you mean {close[0]!r}?"
    if known:
        return f"the known fields here are {', '.join(known)}"
    return "check the spelling against `llmgw schema` or the CRD"


def _what(root: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """`: <the field's description>`, the first sentence of it, when the field can be found."""
    if not loc:
        return ""
    for model in _models_at(root, loc[:-1]):
        field = _field(model, loc[-1])
        if field is not None and field.description:
            first = _SENTENCE.split(field.description)[0].rstrip(".")
            if first:
                return f": {first[0].lower()}{first[1:]}"
    return ""


def _alias(name: str, field: FieldInfo) -> str:
    return field.alias or name


def _field(model: type[BaseModel], part: int | str) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if part in (name, _alias(name, field)):
            return field
    return None


def _models_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[type[BaseModel]]:
    """The model classes a value at `loc` may be, walking fields, lists, tuples, dicts and
    unions (and skipping the names pydantic gives union branches); empty where it is not a
    model (a free-form map, a scalar) or the path cannot be followed."""
    here: list[Any] = [root]
    for part in loc:
        here = [t for h in here for t in _unwrap(h)]
        named = [h for h in here if _is_model(h) and h.__name__ == part]
        if named:
            here = named  # a union branch, by its class name
            continue
        step: list[Any] = []
        for h in here:
            origin, args = typing.get_origin(h), typing.get_args(h)
            if _is_model(h):
                field = _field(h, part)
                if field is not None:
                    step.append(field.annotation)
            elif origin in (tuple, list) and isinstance(part, int) and args:
                step.append(args[0])
            elif origin is dict and isinstance(part, str) and len(args) == 2:
                step.append(args[1])
        if not step and isinstance(part, str) and part.startswith(_BRANCHES):
            continue  # a branch name such as `function-after[...]` or `int`: stay put
        here = step
    return [m for h in here for m in _unwrap(h) if _is_model(m)]


_BRANCHES = ("function-", "constrained-str", "literal[", "int", "str", "tagged-union[")


def _unwrap(tp: Any) -> list[Any]:
    """The types a value of `tp` may be: Optional and unions split, Annotated stripped."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(tp) if a is not type(None) for t in _unwrap(a)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)
