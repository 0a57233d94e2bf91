"""The operator's own watches of the kinds that come by the thousand, and what their changes wake.

Providers, chains, Services and EndpointSlices are listed and watched by
`llmgw.kube.watchcache`, not kopf: kopf's per-object machinery cost a millisecond an object
on the event loop, which at 8,000 objects put the first handler 5 s after start and kept
every write of the first pass waiting seconds more behind the backlog. kopf keeps what is
few (gateways, Namespaces, the objects the operator owns) and the admission webhook's server.

Each watch keeps only what the reconciler reads of an object: a provider or chain whole but
for its managedFields; a Service's named ports; an EndpointSlice's ready count, filed under
its Service. Every Service and EndpointSlice is kept, not only those the providers name: the
named set changes with the providers, and a Service a provider starts naming must already be
known, which no server-side selector can express across namespaces. Kept this small (about
120 bytes a Service), all of them cost less than kopf's bookkeeping of a few.

A change wakes the reconciler as a kopf event did (`pokes`): a provider or chain unless it is
as the last pass read it, a Service or slice only when a provider names it and what is read
of it changed. With the webhook, it is noted for the reviewer too. The first pass waits for
every watch's first list (`synced`), as it waits for kopf's indexes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from llmgw.api import GROUP, VERSION
from llmgw.kube import watchcache
from llmgw.kube.client import Kube
from llmgw.kube.watchcache import Change, Source, WatchCache

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
API_VERSION = f"{GROUP}/{VERSION}"
SOURCES: dict[str, Source] = {
    "providers": Source(API_VERSION, "LLMProvider", "llmproviders"),
    "chains": Source(API_VERSION, "FallbackChain", "fallbackchains"),
    "backend_services": Source("v1", "Service", "services"),
    "endpointslices": Source("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"),
}
"""Each watched kind by the index name the reconciler and the reviewer read it under."""
RESOURCES = {
    name: kopf.Resource(*source.api_version.rpartition("/")[::2], source.plural)
    for name, source in SOURCES.items()
}
"""What a change says it is a change of, as a kopf event's `resource` would."""


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def body_of(source: Source) -> watchcache.Cut[dict[str, Any]]:
    """A provider or chain as the reconciler reads it: whole, but for managedFields (which can
    outweigh the rest), its kind and apiVersion set (a list's items may leave them out)."""

    def cut(obj: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        meta = dict(obj.get("metadata") or {})
        meta.pop("managedFields", None)
        return _key(obj), {**obj, "apiVersion": source.api_version, "kind": source.kind, "metadata": meta}

    return cut


def named_ports(obj: Mapping[str, Any]) -> tuple[Any, dict[str, int]]:
    """A Service's named ports."""
    spec = obj.get("spec") or {}
    ports = {
        p["name"]: p["port"]
        for p in spec.get("ports") or ()
        if isinstance(p, Mapping) and p.get("name") and isinstance(p.get("port"), int)
    }
    return _key(obj), ports


def ready_count(obj: Mapping[str, Any]) -> tuple[Any, int] | None:
    """An EndpointSlice's ready endpoints, filed under its Service; nothing without one."""
    meta = obj.get("metadata") or {}
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not service:
        return None
    ready = sum(
        1
        for e in obj.get("endpoints") or ()
        if isinstance(e, Mapping) and ((e.get("conditions") or {}).get("ready") is not False)
    )
    return (str(meta.get("namespace") or ""), str(service)), ready


CUTS: dict[str, watchcache.Cut[Any]] = {
    "providers": body_of(SOURCES["providers"]),
    "chains": body_of(SOURCES["chains"]),
    "backend_services": named_ports,
    "endpointslices": ready_count,
}

EMPTY: dict[str, watchcache.View[Any]] = {name: watchcache.View() for name in SOURCES}
"""Views of nothing, for a reconciler without watches (never the operator's)."""

Listener = Callable[[str, Change[Any]], None]
"""Told of each change, with the index name of its kind."""


class Watches:
    """The four watch caches, their views by index name, and their first lists."""

    def __init__(
        self,
        kube: Kube,
        namespaces: tuple[str, ...],
        logger: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        self.listeners: list[Listener] = []
        self.caches: dict[str, WatchCache[Any]] = {
            name: WatchCache(
                kube,
                source,
                namespaces,
                CUTS[name],
                self._told(name),
                logger,
                what=f"{source.kind}s",
            )
            for name, source in SOURCES.items()
        }
        self.views: dict[str, watchcache.View[Any]] = {name: c.view for name, c in self.caches.items()}
        self._waiting: asyncio.Task[None] | None = None

    def _told(self, name: str) -> Callable[[Change[Any]], None]:
        def told(change: Change[Any]) -> None:
            for listener in self.listeners:
                listener(name, change)

        return told

    def start(self, on_synced: Callable[[], None]) -> None:
        """Start every watch; `on_synced` once each has listed its kind."""
        for cache in self.caches.values():
            cache.start()

        async def waiting() -> None:
            await asyncio.gather(*(c.synced(None) for c in self.caches.values()))
            on_synced()

        self._waiting = asyncio.create_task(waiting(), name="llmgw-watches-synced")

    async def stop(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
        for cache in self.caches.values():
            await cache.stop()

    @property
    def synced(self) -> bool:
        """Whether every kind has been listed once: before that, the world is not known."""
        return all(c.is_synced for c in self.caches.values())

    def summary(self) -> str:
        """How many of each kind are held, for a log line."""
        return ", ".join(f"{len(c.held)} {SOURCES[n].kind}s" for n, c in self.caches.items())

    async def wait_synced(self, timeout: float) -> bool:
        return all(await asyncio.gather(*(c.synced(timeout) for c in self.caches.values())))

    def failing(self, now: float, after: float) -> str | None:
        """What the health check reports when a watch has failed for longer than `after` seconds."""
        for name, cache in self.caches.items():
            since = cache.failing_since
            if since is not None and now - since > after:
                return f"the watch of {SOURCES[name].kind}s has failed for {now - since:.0f} s"
        return None
