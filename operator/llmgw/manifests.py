"""Reading the YAML users keep in Git: files and folders, multi-document, any kinds.

This is the CLI's gatherer (the operator's is its indexes). Objects of other
kinds are skipped, except Namespaces and Services, whose labels and named
ports the pipeline can use. Where each object came from is kept, so findings
point at a file and line.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
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
        if "*" in text and _ALIAS.search(text):
            docs = _bounded(path, text)
        else:  # no alias to bound: the fast path
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


# Where an alias (`*name`) can start a token: after a space or line break, or right after
# `[`, `{`, `,`, `:` or `?` in flow style. A `*` elsewhere (quoted, inside a plain scalar)
# is text; matching some of those too only costs the slower path.
_ALIAS = re.compile(r"(?:^|[\s\[{,:?])\*", re.MULTILINE)


def _bounded(path: Path, text: str) -> list[Any]:
    """The documents of a text with aliases, each refused if its aliases expand too far.

    A few lines of anchors can stand for billions of values (`a1: &a1 [*a0, *a0, ...]`);
    they would be shared when read, but every check walks them all. Each document is
    composed first (aliases are not expanded there), measured, and only then built.
    What aliases share is then copied, so that the objects read are those of the values
    written out: the same findings, and a render byte-identical to the operator's (whose
    objects come from the API server as JSON), with no `&id001` anchors in it.
    """
    loader = _Loader(text)
    docs: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            aliased = _check_aliases(path, len(docs), node)
            doc = loader.construct_document(node)
            docs.append(_unshared(doc) if aliased else doc)
    finally:
        loader.dispose()
    return docs


# The bound of the YAML library of kubectl and the API server (go-yaml's allowedAliasRatio):
# up to 99% of a document's values may come from aliases, scaling down to 10% between
# 400,000 and 4,000,000 values, so aliases add at most about 400,000 values to any document.
_ALIAS_RATIO_LOW = 400_000
_ALIAS_RATIO_HIGH = 4_000_000


def _allowed_alias_ratio(values: int) -> float:
    if values <= _ALIAS_RATIO_LOW:
        return 0.99
    if values >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (values - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


def _check_aliases(path: Path, index: int, root: yaml.Node) -> bool:
    """Whether the document uses aliases; LoadError if they expand too far, or without end."""
    expanded, written = _expansion(root)
    where = f"{path}:{int(root.start_mark.line) + 1}: document {index + 1}"
    if expanded is None:
        raise LoadError(
            f"{where}: a YAML alias (*name) refers to a value that holds it, which never ends; "
            "write the value out instead of the alias"
        )
    aliased = expanded - written
    if aliased > 100 and expanded > 1000 and aliased / expanded > _allowed_alias_ratio(expanded):
        raise LoadError(
            f"{where}: its YAML aliases (*name) expand {written:,} written values to {_many(expanded)}, "
            "more than kubectl and the API server accept; write the values out, or use fewer aliases"
        )
    return aliased > 0


def _many(n: int) -> str:
    return f"{n:,}" if n < 10**12 else f"more than 10^{len(str(n)) - 1}"


def _expansion(root: yaml.Node) -> tuple[int | None, int]:
    """(values the node stands for once aliases are expanded, values written) of a composed node.

    A node reached through an alias is the very node of its anchor, so sizes are summed
    once per node; None for the expanded size when an alias refers to a node that holds it.
    Iterative, as documents may nest deeper than Python's recursion limit.
    """
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_.discard(key)
            size[key] = 1 + sum(size[id(child)] for child in _children(node))
        elif key in open_:
            return None, len(size)
        elif key not in size:
            open_.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(_children(node)) if id(child) not in size)
    return size[id(root)], len(size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _unshared(doc: Any) -> Any:
    """A copy of a document in which no mapping or list appears twice (iterative: any depth)."""
    if not isinstance(doc, dict | list):
        return doc
    top: Any = type(doc)()
    stack: list[tuple[Any, Any]] = [(doc, top)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in items:
            if isinstance(value, dict | list):
                copy: Any = type(value)()
                stack.append((value, copy))
                value = copy
            if isinstance(target, dict):
                target[key] = value
            else:
                target.append(value)
    return top


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

    Used only to report findings, so the file is composed again lazily, once for all
    the findings in it (`_composed`); the nearest existing ancestor's line is given
    when the field itself is absent.
    """
    nodes = _composed(source.path)
    if nodes is None:
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


def _composed(path: Path) -> list[yaml.Node] | None:
    """A file's documents as YAML nodes, composed once per state of the file: a run that
    reports thousands of findings in one file must not compose it thousands of times."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _compose(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _compose(path: Path, _mtime_ns: int, _size: int) -> list[yaml.Node] | None:
    try:
        return list(yaml.compose_all(path.read_text(encoding="utf-8"), Loader=_Loader))
    except (OSError, yaml.YAMLError):
        return None


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
