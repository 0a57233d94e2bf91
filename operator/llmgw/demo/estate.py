"""Applying the demo's folder to the embedded API, like `kubectl apply --prune` on it, and again on edits.

Every object in DIR is applied, whatever its kind (Namespaces, Secrets,
ConfigMaps, Services and EndpointSlices as well as the three kinds), in an order
that lets each find what it needs (Namespaces first, the gateways last). An
object that is new is created; one that changed is patched with a merge patch
computed against what was applied before (so a field removed from the file is
removed, as `kubectl apply` does with its last-applied configuration); one that
is gone from the folder is deleted. Namespaces named by objects but not declared
are created, so a folder of manifests for an existing cluster applies too.
`watch` polls the folder's files (names, sizes, mtimes) and re-applies on a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from llmgw import manifests
from llmgw.demo.client import Api, ApiError

log = logging.getLogger("llmgw.demo.estate")

ORDER = {
    "Namespace": 0,
    "Secret": 1,
    "ConfigMap": 1,
    "Service": 2,
    "EndpointSlice": 3,
    "LLMProvider": 4,
    "FallbackChain": 5,
    "LLMGateway": 6,
}

Key = tuple[str, str, str, str]
"""(apiVersion, kind, namespace, name)"""

Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class EstateError(Exception):
    """The folder cannot be read: a file that is not YAML, an object without kind or name."""


def load(folder: Path) -> dict[Key, dict[str, Any]]:
    """Every object in the folder's YAML and JSON files, by key; `kind: List` unrolled."""
    out: dict[Key, dict[str, Any]] = {}
    for path in manifests.files([folder]):
        try:
            docs = list(yaml.load_all(path.read_text(), Loader=Loader))
        except (OSError, yaml.YAMLError) as exc:
            raise EstateError(f"{path}: {exc}") from exc
        for doc in docs:
            items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
            for obj in items or ():
                if obj is None:
                    continue
                if (
                    not isinstance(obj, dict)
                    or not obj.get("kind")
                    or not (obj.get("metadata") or {}).get("name")
                ):
                    raise EstateError(f"{path}: every document needs kind and metadata.name")
                meta = obj["metadata"]
                if obj["kind"] != "Namespace":
                    meta.setdefault("namespace", "default")
                out[key(obj)] = obj
    return out


def key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion", "")),
        str(obj["kind"]),
        str(meta.get("namespace") or ""),
        str(meta["name"]),
    )


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`; None where nothing changes."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None if old == new else new
    patch: dict[str, Any] = {}
    for k in old:
        if k not in new:
            patch[k] = None
    for k, v in new.items():
        if k not in old:
            patch[k] = v
        elif old[k] != v:
            sub = merge_patch(old[k], v)
            patch[k] = sub if isinstance(v, dict) and isinstance(old[k], dict) else v
    return patch or None


@dataclasses.dataclass
class Applied:
    """What one apply did, by `kind namespace/name`."""

    created: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        parts = [
            f"{word} {', '.join(names)}"
            for word, names in (
                ("created", self.created),
                ("updated", self.updated),
                ("deleted", self.deleted),
                ("failed", self.failed),
            )
            if names
        ]
        return "; ".join(parts) or "no changes"


def _label(k: Key) -> str:
    return f"{k[1]} {k[2]}/{k[3]}" if k[2] else f"{k[1]} {k[3]}"


class Applier:
    """Applies a folder to the API, remembering what it applied (its last-applied state)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.applied: dict[Key, dict[str, Any]] = {}

    async def apply(self, objects: Mapping[Key, dict[str, Any]]) -> Applied:
        done = Applied()
        namespaces = {k[2] for k in objects if k[2]} - {k[3] for k in objects if k[1] == "Namespace"}
        for ns in sorted(namespaces - {k[3] for k in self.applied if k[1] == "Namespace"}):
            with contextlib.suppress(ApiError):
                if await self.api.get("Namespace", None, ns) is None:
                    await self.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for k in sorted(objects, key=lambda k: (ORDER.get(k[1], 3), k)):
            obj = objects[k]
            try:
                before = self.applied.get(k)
                if before is None:
                    live = await self.api.get(k[1], k[2] or None, k[3]) if k[1] in _KNOWN else None
                    if live is None:
                        await self.api.create(obj)
                        done.created.append(_label(k))
                    else:
                        await self.api.patch(k[1], k[2] or None, k[3], obj, api_version=k[0])
                        done.updated.append(_label(k))
                elif before != obj:
                    patch = merge_patch(before, obj)
                    if patch is not None:
                        await self.api.patch(k[1], k[2] or None, k[3], patch, api_version=k[0])
                        done.updated.append(_label(k))
                self.applied[k] = obj
            except ApiError as exc:
                done.failed.append(f"{_label(k)} ({exc})")
        for k in sorted(set(self.applied) - set(objects), key=lambda k: (-ORDER.get(k[1], 3), k)):
            try:
                await self.api.delete(k[1], k[2] or None, k[3], api_version=k[0])
                done.deleted.append(_label(k))
            except ApiError as exc:
                done.failed.append(f"{_label(k)} ({exc})")
            del self.applied[k]
        return done


_KNOWN = frozenset(ORDER)


def fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """What says a file in the folder changed: names, sizes and mtimes."""
    out = []
    for path in manifests.files([folder]) if folder.exists() else ():
        with contextlib.suppress(OSError):
            st = path.stat()
            out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)


async def watch(
    folder: Path,
    on_change: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    interval: float = 0.5,
) -> None:
    """Call `on_change` whenever the folder's files change (polled; no inotify needed)."""
    seen = fingerprint(folder)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        now = fingerprint(folder)
        if now != seen:
            await asyncio.sleep(0.2)  # an editor's write in several steps
            seen = fingerprint(folder)
            try:
                await on_change()
            except Exception:
                log.exception("re-applying %s failed", folder)


def names(objects: Iterable[Key]) -> list[str]:
    return [_label(k) for k in objects]
