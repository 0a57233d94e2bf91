"""Reading the YAML users keep in Git: files and folders, multi-document, any kinds.

This is the CLI's gatherer (the operator's is its indexes). Objects of other
kinds are skipped, except Namespaces and Services, whose labels and named
ports the pipeline can use. Where each object came from is kept, so findings
point at a file and line.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from llmgw.api import API_VERSION, GROUP
from llmgw.core import estate as estate_mod
from llmgw.core import objects

# The C loader is several times faster; without libyaml, the pure one reads the same.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SUFFIXES = (".yaml", ".yml", ".json")


class LoadError(Exception):
    """Input that cannot be read at all: a missing path, broken YAML, not a mapping."""


@dataclasses.dataclass(frozen=True)
class Source:
    path: Path
    document: int  # 0-based index of the YAML document in the file
    item: int | None = None  # index in a `kind: List`


@dataclasses.dataclass
class Loaded:
    """What the paths held: our objects, where they came from, and the context."""

    raws: list[Mapping[str, Any]] = dataclasses.field(default_factory=list)
    sources: dict[tuple[str, str, str], Source] = dataclasses.field(default_factory=dict)
    namespaces: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    service_ports: dict[tuple[str, str], dict[str, int]] = dataclasses.field(default_factory=dict)
    files: int = 0

    def estate(self) -> estate_mod.Estate:
        return estate_mod.build(self.raws, self.namespaces, self.service_ports)


def files(paths: Sequence[str | Path]) -> list[Path]:
    """Every manifest file under the paths, in a stable order."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        elif path.is_file():
            out.append(path)
        else:
            raise LoadError(f"{path}: no such file or folder")
    return out


def load(paths: Sequence[str | Path]) -> Loaded:
    found = files(paths)
    if not found:
        where = ", ".join(str(p) for p in paths)
        raise LoadError(f"{where}: no YAML files (*.yaml, *.yml, *.json) found")
    loaded = Loaded(files=len(found))
    for path in found:
        for source, raw in _documents(path):
            _take(loaded, source, raw)
    return loaded


def _documents(path: Path) -> Iterator[tuple[Source, Mapping[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"{path}: cannot be read: {exc}") from None
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        raise LoadError(_yaml_error(path, exc)) from None
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            line = document_line(path, index)
            raise LoadError(
                f"{path}:{line}: document {index + 1} is a {type(doc).__name__}, not a "
                "Kubernetes object (a mapping with apiVersion and kind)"
            )
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            for i, item in enumerate(doc["items"]):
                if isinstance(item, Mapping):
                    yield Source(path, index, i), item
        else:
            yield Source(path, index), doc


def _take(loaded: Loaded, source: Source, raw: Mapping[str, Any]) -> None:
    kind = raw.get("kind")
    api_version = raw.get("apiVersion")
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    if kind in objects.KINDS and (api_version == API_VERSION or str(api_version).startswith(f"{GROUP}/")):
        # Another version of our group is taken in too, so that it fails with a finding
        # on apiVersion rather than being passed over in silence.
        loaded.raws.append(raw)
        loaded.sources.setdefault(objects.identity(raw), source)
    elif kind == "Namespace" and api_version == "v1" and isinstance(meta.get("name"), str):
        labels = meta.get("labels")
        loaded.namespaces[meta["name"]] = dict(labels) if isinstance(labels, Mapping) else {}
    elif kind == "Service" and api_version == "v1" and isinstance(meta.get("name"), str):
        spec = raw.get("spec") if isinstance(raw.get("spec"), Mapping) else {}
        assert isinstance(spec, Mapping)
        ports = {
            p["name"]: p["port"]
            for p in spec.get("ports") or ()
            if isinstance(p, Mapping) and isinstance(p.get("name"), str) and isinstance(p.get("port"), int)
        }
        key = (str(meta.get("namespace") or "default"), meta["name"])
        loaded.service_ports[key] = ports


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"{where}: not valid YAML: {detail}"


def document_line(path: Path, index: int) -> int:
    """1-based line where the index-th document of a file starts."""
    try:
        nodes = list(yaml.compose_all(path.read_text(encoding="utf-8"), Loader=_Loader))
    except (OSError, yaml.YAMLError):
        return 1
    if index < len(nodes) and nodes[index] is not None:
        return int(nodes[index].start_mark.line) + 1
    return 1


def field_line(source: Source, field: str) -> int:
    """1-based line of a field path such as `spec.fallbacks[1]` in an object's source.

    Used only to report findings, so the file is composed again lazily; the nearest
    existing ancestor's line is given when the field itself is absent.
    """
    try:
        nodes = list(yaml.compose_all(source.path.read_text(encoding="utf-8"), Loader=_Loader))
    except (OSError, yaml.YAMLError):
        return 1
    if source.document >= len(nodes) or nodes[source.document] is None:
        return 1
    node: yaml.Node = nodes[source.document]
    if source.item is not None:
        items = _child(node, "items")
        if isinstance(items, yaml.SequenceNode) and source.item < len(items.value):
            node = items.value[source.item]
    line = int(node.start_mark.line)
    for part in _split(field):
        child = _child(node, part)
        if child is None:
            break
        node = child
        line = int(node.start_mark.line)
    return line + 1


def _split(field: str) -> Iterator[str | int]:
    for piece in field.replace("[", ".[").split("."):
        if not piece:
            continue
        if piece.startswith("[") and piece.endswith("]") and piece[1:-1].isdigit():
            yield int(piece[1:-1])
        else:
            yield piece


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return value  # type: ignore[no-any-return]
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
