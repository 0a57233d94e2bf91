"""The admission webhook: kopf validating handlers for the three kinds.

Each review is decided by `llmgw.core.admission` against the operator's own
indexes (the same world the reconciler renders from), so `kubectl apply` hears at
apply time what the object's status would say a moment later: an invalid object
or a fallback cycle is refused, the rest is admitted, with warnings for what will
be left out. The handlers have no side effects (`sideEffects: None`), so
`kubectl apply --dry-run=server` gets the same answer as a real apply.

kopf keeps the ValidatingWebhookConfiguration `validating.llmgateway.dev` up to
date with the URL and CA bundle of the server (`llmgw.handlers.webhook`);
`failurePolicy` is Ignore unless asked for Fail, so an operator that is down never
blocks `kubectl apply`. The webhooks stay registered when the operator stops (another
replica may be serving them).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from llmgw import metrics, options
from llmgw.api import GROUP, VERSION
from llmgw.core import admission, keys, objects
from llmgw.handlers import watches, webhook
from llmgw.kube.watchcache import Change

MANAGED = "validating.llmgateway.dev"
"""The ValidatingWebhookConfiguration kopf creates and keeps up to date."""
PLURALS = ("llmproviders", "fallbackchains", "llmgateways")
DENIED_CODE = 403


Raw = Mapping[str, Any]
Snapshot = tuple[dict[keys.ObjectId, Raw], dict[str, dict[str, str]], dict[keys.Key, dict[str, int]]]
INDEX_OF = {"LLMProvider": "providers", "FallbackChain": "chains", "LLMGateway": "gateways"}
"""The kopf index (`llmgw.handlers.indexes`) that holds each of our kinds."""
WATCHED = frozenset({"providers", "chains", "backend_services"})
"""The watches (`llmgw.handlers.watches`) whose changes admission reads."""
SYNC_WAIT = 5.0
"""Seconds a review right after start waits for the watches' first lists."""
BULK = 64
"""More objects than this to parse in one catch-up are parsed in a worker thread."""


@dataclasses.dataclass
class Batch:
    """What changed since the last catch-up, as the indexes hold it now (None: gone)."""

    objects: dict[keys.ObjectId, Raw | None] = dataclasses.field(default_factory=dict)
    namespaces: dict[str, dict[str, str] | None] = dataclasses.field(default_factory=dict)
    services: dict[keys.Key, dict[str, int] | None] = dataclasses.field(default_factory=dict)


class NotListed(Exception):
    """A review before the world is known: not refused, failed (the failurePolicy decides)."""


Versioned = tuple[str, objects.Parsed | objects.Invalid]
"""An object as parsed, with the version (`_version`) it was parsed at."""


class Reviewer:
    """The world as the indexes hold it, indexed once, then kept current one change at a time.

    The first indexing reads everything, in a worker thread. After it, a watch event on an
    input only notes what changed (`changed`): an object's id, a Namespace's name, a Service's
    key. Once changes pause, or when a review finds changes noted, the world catches up: each
    changed object is looked up in the indexes, parsed again only when what admission reads
    of it changed (its generation, which the API server bumps on spec changes, and its
    labels), and swapped into the World's indexes (`admission.World.put`), at a cost that
    grows with what changed, not with the estate. A few changes are caught up on the spot,
    so a review never waits for a re-index of everything; many (a GitOps sync) are parsed in
    a worker thread first, and a review that arrives meanwhile waits for that. The operator's
    own status writes cost a comparison of versions, not a catch-up.
    """

    def __init__(self, debounce: float = 0.2, patience: float = 2.0, bulk: int = BULK) -> None:
        self.watches: watches.Watches | None = None
        """The operator's own watches, whose views overlay kopf's indexes, and whose changes
        come through `watched`; None in tests that hand the indexes over whole."""
        self.debounce = debounce
        self.patience = patience
        self.bulk = bulk
        self.last_change = self.stale_since = 0.0
        self.current: admission.World | None = None
        self.indexes: Mapping[str, Any] | None = None
        self.parsed: dict[keys.ObjectId, Versioned] = {}
        # Noted, not yet caught up: objects (with their key in the index), namespaces, Services;
        # `resync` when an event did not say what changed (everything is compared then).
        self.pending: dict[keys.ObjectId, keys.Key] = {}
        self.pending_namespaces: set[str] = set()
        self.pending_services: set[keys.Key] = set()
        self.resync = False
        self.building: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.stopped = False

    @property
    def stale(self) -> bool:
        """Whether the world is behind the indexes (or not indexed yet)."""
        return (
            self.current is None
            or self.resync
            or bool(self.pending or self.pending_namespaces or self.pending_services)
        )

    def changed(self, event: Mapping[str, Any] | None = None, *, indexes: bool = True) -> None:
        """A watch event on an input (kopf's handler kwargs, which hold its indexes, unless
        `indexes` is False): note what it changed, unless it changes nothing that admission
        reads, and catch up once changes pause."""
        was_stale = self.stale
        if event is None:
            self.resync = True
        else:
            if indexes:
                self.indexes = self._overlaid(event)
            if not self._note(event):
                return  # e.g. the operator's own status write
        now = time.monotonic()
        if not was_stale:
            self.stale_since = now
        self.last_change = now
        self._later(self.debounce)

    def watched(self, name: str, change: Change[Any]) -> None:
        """A change seen by the operator's own watches, noted as a kopf event would be."""
        if name in WATCHED:
            event = {"body": change.body, "resource": watches.RESOURCES[name], "type": change.type}
            self.changed(event, indexes=False)

    def _overlaid(self, kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
        """kopf's indexes in a handler's kwargs, under the watches' views."""
        if self.watches is None:
            return kwargs
        return collections.ChainMap(self.watches.views, dict(kwargs))

    def _synced(self) -> bool:
        return self.watches is None or self.watches.synced

    def _note(self, event: Mapping[str, Any]) -> bool:
        """Note what the event changed; False when it leaves what admission reads as it was."""
        body = event.get("body")
        if not isinstance(body, Mapping):
            self.resync = True
            return True
        meta = body.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))  # as the indexes key it
        settled = self.building is None and self.current is not None
        resource = event.get("resource")
        if getattr(resource, "group", None) == GROUP:
            oid = objects.identity(body)
            if oid[0] not in INDEX_OF:
                self.resync = True
                return True
            if (
                settled
                and event.get("type") != "DELETED"
                and oid not in self.pending
                and self.parsed.get(oid, ("",))[0] == _version(meta, body)
            ):
                return False
            self.pending[oid] = key
            return True
        plural = getattr(resource, "plural", None)
        if plural == "namespaces":
            name = key[1]
            if settled and name not in self.pending_namespaces and self._same_namespace(name):
                return False
            self.pending_namespaces.add(name)
            return True
        if plural == "services":
            if settled and key not in self.pending_services and self._same_service(key):
                return False
            self.pending_services.add(key)
            return True
        self.resync = True
        return True

    def _same_namespace(self, name: str) -> bool:
        assert self.current is not None
        return bool(self.current.namespaces.get(name) == _lookup(self.indexes, "namespaces", name))

    def _same_service(self, key: keys.Key) -> bool:
        assert self.current is not None
        return bool(
            self.current.base.service_ports.get(key) == _lookup(self.indexes, "backend_services", key)
        )

    def _later(self, delay: float) -> None:
        """Catch up in `delay` seconds; not before the watches' first lists (which call
        `changed` once done): the world is not known before."""
        if self.timer is None and self.indexes is not None and not self.stopped and self._synced():
            with contextlib.suppress(RuntimeError):  # no running loop
                self.timer = asyncio.get_running_loop().call_later(delay, self._ahead)

    def _ahead(self) -> None:
        """Catch up ahead of reviews once changes have paused (a burst, like a GitOps sync or
        the first listing, is taken in at once), or after `patience` of changes without a pause."""
        self.timer = None
        if not self.stale or self.building is not None:
            return
        now = time.monotonic()
        wait = self.debounce - (now - self.last_change)
        if wait > 0 and now - self.stale_since < self.patience:
            self._later(wait)
            return
        if self._small():
            self._catch_up_now()
        else:
            self._start()

    def _small(self) -> bool:
        """Whether the changes noted are few enough to catch up on the spot."""
        noted = len(self.pending) + len(self.pending_namespaces) + len(self.pending_services)
        return self.current is not None and not self.resync and noted <= self.bulk

    def _start(self) -> asyncio.Task[None]:
        if self.building is None:
            self.building = asyncio.get_running_loop().create_task(self._build())
        return self.building

    async def world(self, indexes: Mapping[str, Any]) -> admission.World:
        """The current world; first caught up with the changes noted since the last catch-up.
        Right after start, it waits (`SYNC_WAIT` at most) for the watches' first lists, and
        fails the review if they are not in: its failurePolicy decides then."""
        self.indexes = self._overlaid(indexes)
        if self.watches is not None and not await self.watches.wait_synced(SYNC_WAIT):
            raise NotListed("the operator has not listed providers and chains yet; try again")
        if self.building is not None:  # began before this review: it may miss the latest change
            await asyncio.shield(self.building)
        if self.stale:
            if self._small():
                self._catch_up_now()
            else:
                await asyncio.shield(self._start())
        assert self.current is not None
        return self.current

    def _catch_up_now(self) -> None:
        """Catch up with a few changes, here on the event loop."""
        began = time.perf_counter()
        batch = self._take()
        self._apply(batch, _parse(self._unparsed(batch)))
        metrics.ADMISSION_INDEX_SECONDS.observe(time.perf_counter() - began)

    async def _build(self) -> None:
        began = time.perf_counter()
        try:
            if self.current is None:
                snapshot = self._take_all()
                self.current, self.parsed = await asyncio.to_thread(_index, snapshot, self.parsed)
            else:
                batch = self._take()
                todo = self._unparsed(batch)
                fresh = await asyncio.to_thread(_parse, todo) if len(todo) > self.bulk else _parse(todo)
                self._apply(batch, fresh)
            metrics.ADMISSION_INDEX_SECONDS.observe(time.perf_counter() - began)
        finally:
            self.building = None
            if self.stale:  # changes noted meanwhile
                self._later(self.debounce)

    def _take_all(self) -> Snapshot:
        """Everything admission reads of the indexes, for the first indexing; nothing is pending after."""
        self.pending.clear()
        self.pending_namespaces.clear()
        self.pending_services.clear()
        self.resync = False
        return _snapshot(self.indexes or {})

    def _take(self) -> Batch:
        """What the noted changes are now, read from the indexes on the event loop (kopf changes
        them there); nothing is pending after."""
        idx = self.indexes or {}
        batch = Batch()
        if self.resync:  # compare everything, parse and swap only what differs
            assert self.current is not None
            raws, namespaces, ports = _snapshot(idx)
            batch.objects = {oid: raws.get(oid) for oid in (*raws, *self.parsed)}
            batch.namespaces = {n: namespaces.get(n) for n in (*namespaces, *self.current.namespaces)}
            batch.services = {k: ports.get(k) for k in (*ports, *self.current.base.service_ports)}
        else:
            for oid, key in self.pending.items():
                raw = _lookup(idx, INDEX_OF[oid[0]], key)
                batch.objects[oid] = raw if isinstance(raw, Mapping) else None
            for name in self.pending_namespaces:
                batch.namespaces[name] = _lookup(idx, "namespaces", name)
            for service in self.pending_services:
                batch.services[service] = _lookup(idx, "backend_services", service)
        self.pending, self.pending_namespaces, self.pending_services = {}, set(), set()
        self.resync = False
        return batch

    def _unparsed(self, batch: Batch) -> list[tuple[keys.ObjectId, str, Raw]]:
        """The objects of the batch whose version differs from the one parsed."""
        out = []
        for oid, raw in batch.objects.items():
            if raw is not None:
                version = _version(raw.get("metadata") or {}, raw)
                if self.parsed.get(oid, ("",))[0] != version:
                    out.append((oid, version, raw))
        return out

    def _apply(self, batch: Batch, fresh: Mapping[keys.ObjectId, Versioned]) -> None:
        """Swap the changed objects into the world: what each contributed out, what it is now in."""
        world = self.current
        assert world is not None
        for oid, raw in batch.objects.items():
            if raw is not None and oid not in fresh:
                continue  # as parsed already (say, labels changed and changed back)
            old = self.parsed.pop(oid, None)
            if old is not None:
                world.remove(admission.id_of(old[1]))
            if raw is not None:
                self.parsed[oid] = fresh[oid]
                world.put(fresh[oid][1])
        for name, labels in batch.namespaces.items():
            if world.namespaces.get(name) != labels:
                world.set_namespace(name, labels)
        for key, ports in batch.services.items():
            if world.base.service_ports.get(key) != ports:
                world.set_service(key, ports)

    async def stop(self) -> None:
        self.stopped = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.building is not None:
            with contextlib.suppress(Exception):
                await self.building


def _index(
    snapshot: Snapshot, cache: Mapping[keys.ObjectId, Versioned]
) -> tuple[admission.World, dict[keys.ObjectId, Versioned]]:
    """The whole world from a snapshot of the indexes (objects already parsed at the same
    version are not parsed again); runs in a worker thread."""
    raws, namespaces, ports = snapshot
    parsed: dict[keys.ObjectId, Versioned] = {}
    for oid, raw in raws.items():
        version = _version(raw.get("metadata") or {}, raw)
        cached = cache.get(oid)
        parsed[oid] = cached if cached is not None and cached[0] == version else (version, objects.parse(raw))
    estate = admission.build_estate((p for _version, p in parsed.values()), namespaces=namespaces)
    return admission.World(dataclasses.replace(estate, service_ports=ports)), parsed


def _parse(todo: Iterable[tuple[keys.ObjectId, str, Raw]]) -> dict[keys.ObjectId, Versioned]:
    """Parse changed objects (pure: safe in a worker thread)."""
    return {oid: (version, objects.parse(raw)) for oid, version, raw in todo}


def _lookup(indexes: Mapping[str, Any] | None, name: str, key: Any) -> Any:
    """The value a kopf index holds under a key (one value per key), or None."""
    index = (indexes or {}).get(name)
    store = index.get(key) if index is not None else None
    values = list(store) if store is not None else []
    return values[-1] if values else None


def _snapshot(indexes: Mapping[str, Any]) -> Snapshot:
    """What admission reads of the indexes, copied on the event loop (kopf changes them there)."""
    raws: dict[keys.ObjectId, Raw] = {}
    for name in INDEX_OF.values():
        for raw in _values(indexes.get(name)):
            raws[objects.identity(raw)] = raw
    namespaces = {str(k): dict(v) for k, v in _items(indexes.get("namespaces"))}
    ports = {k: dict(v) for k, v in _items(indexes.get("backend_services")) if isinstance(k, tuple)}
    return raws, namespaces, ports


def _version(meta: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    """What admission reads of an object changes only with this: its spec (generation) and labels."""
    labels = meta.get("labels") or {}
    shown = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) if isinstance(labels, Mapping) else ""
    generation = meta.get("generation")
    if generation is None:
        return f"rv:{meta.get('resourceVersion') or id(raw)};{shown}"
    return f"gen:{generation};{shown}"


def _items(index: Any) -> Iterable[tuple[Any, Any]]:
    """(key, value) of a kopf index whose stores hold one value per key."""
    if index is None:
        return
    for key, store in list(index.items()):
        for value in list(store):
            yield key, value


def _values(index: Any) -> Iterable[Mapping[str, Any]]:
    for _key, value in _items(index):
        if isinstance(value, Mapping):
            yield value


class Refusals(logging.Filter):
    """kopf logs a refused review as a handler that "failed permanently", at ERROR. A refusal
    is the webhook doing its job, not an operator error: say it at INFO, as what it is."""

    PREFIXES = ("Webhook 'validate-", "Handler 'validate-")
    FAILED = " failed permanently: "

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if isinstance(msg, str) and msg.startswith(self.PREFIXES) and self.FAILED in msg:
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.msg, record.args = f"admission refused: {msg.split(self.FAILED, 1)[1]}", ()
        return True


REFUSALS = Refusals()


def register(reg: kopf.OperatorRegistry, failure_policy: str = options.WEBHOOK_FAILURE_POLICY) -> Reviewer:
    """Validating handlers for the three kinds, on create and update."""
    reviewer = Reviewer()
    logging.getLogger("kopf.objects").addFilter(REFUSALS)

    async def validate(*, body: kopf.Body, warnings: list[str], resource: Any, **kwargs: Any) -> None:
        began = time.perf_counter()
        world = await reviewer.world(kwargs)
        old = kwargs.get("old")
        verdict = admission.review(world, dict(body), dict(old) if old is not None else None)
        warnings.extend(verdict.warnings)
        kind = str(body.get("kind") or resource.kind)
        metrics.ADMISSION_REVIEWS.labels(kind, "allowed" if verdict.allowed else "denied").inc()
        metrics.ADMISSION_SECONDS.observe(time.perf_counter() - began)
        if not verdict.allowed:
            raise kopf.AdmissionError(verdict.message, code=DENIED_CODE)

    async def changed(**kwargs: Any) -> None:
        reviewer.changed(kwargs)

    async def stop(**_: Any) -> None:
        await reviewer.stop()

    kopf.on.cleanup(registry=reg, id="admission-stop")(stop)

    # Providers, chains and Services come from the operator's own watches (`Reviewer.watched`).
    for selector in ((GROUP, VERSION, "llmgateways"), ("v1", "namespaces")):
        kopf.on.event(*selector, registry=reg, id=f"admission-{selector[-1]}")(changed)
    for plural in PLURALS:
        kopf.on.validate(
            GROUP,
            VERSION,
            plural,
            id=f"validate-{plural}",
            registry=reg,
            operations=["CREATE", "UPDATE"],
            side_effects=False,
            ignore_failures=failure_policy == "Ignore",
            # Kept in the configuration when this process stops: with several replicas, one
            # that stops must not unregister the webhook the others serve.
            persistent=True,
        )(validate)
    return reviewer


def configure(
    settings: kopf.OperatorSettings,
    *,
    port: int,
    host: str | None,
    addr: str,
    cert_dir: str | None,
) -> None:
    """The webhook server and the managed ValidatingWebhookConfiguration."""
    settings.admission.managed = MANAGED
    settings.admission.server = webhook.server(port=port, host=host, addr=addr, cert_dir=cert_dir)
