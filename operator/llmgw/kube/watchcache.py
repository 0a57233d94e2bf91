"""A list-and-watch of one resource, kept as small values: the operator's own informer.

kopf gives each watched object a worker of its own (a task, a queue, a pass through its
handler machinery, a toggle of its start-up barrier), about a millisecond an object on
the event loop: at 8,000 providers and chains, 5 s before the first handler, then seconds
more of backlog that every write of the first pass waited behind. For the kinds that come
by the thousand (providers, chains, Services, EndpointSlices), a plain list and watch is
enough: the reconciler reads whole snapshots and needs no per-object handlers. Each object
is cut on receipt to what is read of it (`cut`: a body without managedFields, a Service's
named ports, a slice's ready count) and filed under the key the reader looks it up by
(`View`, which reads like a kopf index: a mapping of keys to the values filed under each).

A paged list, then a watch resumed from the last resourceVersion seen (bookmarks keep it
fresh); on 410 Gone a relist, which compares what it lists with what is held and reports
the objects deleted meanwhile as deleted, as client-go's informers do; a bounded backoff on
errors. Every request (each page, each watch (re)connect) takes a token from the client's
one rate limiter and waits out a 429's `Retry-After` (`Kube.paced`). The client is
synchronous, so each request runs in a worker thread, which also parses what it reads; a
watch's socket is shut when its task is cancelled, so that a blocked read cannot hold the
process's shutdown (and the server ends each watch after `timeoutSeconds` anyway).
`on_change` hears of every change to a kept value, on the event loop, in the order the
server sent them; a relist that finds nothing changed tells it nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

import kubernetes

from llmgw import metrics
from llmgw.kube.client import Kube

V = TypeVar("V")
T = TypeVar("T")
Key = tuple[str, str]
"""(namespace, name) of an object."""
WATCH_SECONDS = 300
"""How long the server keeps one watch open (`timeoutSeconds`) before it is resumed."""
PAGE = 500
MAX_BACKOFF = 30.0
GONE = 410
JSON = "application/json"


@dataclasses.dataclass(frozen=True)
class Source:
    """What to list and watch: one resource, cluster-wide or in one namespace at a time."""

    api_version: str
    """`v1`, `discovery.k8s.io/v1`, `llmgateway.dev/v1alpha1`."""
    kind: str
    plural: str
    list_accept: str = JSON
    watch_accept: str = JSON
    label_selector: str | None = None
    bodies: bool = True
    """Whether a change hands over the object as sent (False: only its identity, for Secrets,
    whose data must not travel even that far)."""

    def request(self, kube: Kube, scope: str | None, **kw: Any) -> Any:
        """A raw list or watch response (in a worker thread); non-2xx raise ApiException."""
        if self.label_selector:
            kw["label_selector"] = self.label_selector
        kw["_preload_content"] = False
        group, _, version = self.api_version.rpartition("/")
        if self.kind == "Secret":
            if scope is None:
                return kube.core.list_secret_for_all_namespaces(**kw)
            return kube.core.list_namespaced_secret(scope, **kw)
        if self.kind == "Service":
            if scope is None:
                return kube.core.list_service_for_all_namespaces(**kw)
            return kube.core.list_namespaced_service(scope, **kw)
        if self.kind == "EndpointSlice":
            if scope is None:
                return kube.discovery.list_endpoint_slice_for_all_namespaces(**kw)
            return kube.discovery.list_namespaced_endpoint_slice(scope, **kw)
        if scope is None:
            return kube.custom.list_cluster_custom_object(group, version, self.plural, **kw)
        return kube.custom.list_namespaced_custom_object(group, version, scope, self.plural, **kw)


Cut = Callable[[Mapping[str, Any]], tuple[Any, V] | None]
"""What is kept of an object: the key it is filed under and its value; None: nothing."""


class Change(NamedTuple, Generic[V]):
    """A change to a kept value, as `on_change` hears it."""

    type: str
    """ADDED, MODIFIED or DELETED (a relist's "deleted meanwhile" too)."""
    key: Key
    """The object's (namespace, name)."""
    body: Mapping[str, Any]
    """The object as the server sent it (a deleted one's last state; a stub of its identity
    for one a relist no longer finds)."""
    filed: Any
    """The key its value is filed under now (before, for a deletion)."""
    value: V | None
    """Its value now; None when deleted or no longer kept."""
    old: tuple[Any, V] | None
    """Where and what it was before; None when new."""


class WatchError(Exception):
    """An ERROR event in a watch stream (410: the resourceVersion expired)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"watch ended with HTTP {code}")
        self.status = code


def _lines(resp: Any) -> Iterator[bytes]:
    """The newline-delimited JSON of a watch response, as its chunks arrive."""
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=True):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        yield from (line for line in lines if line.strip())


def _status(exc: BaseException) -> int:
    if isinstance(exc, (kubernetes.client.ApiException, WatchError)):
        return int(exc.status or 0)
    return 0


def _reason(exc: BaseException) -> str:
    """What a log line says of a failure: never an error's body, which echoes the response."""
    if isinstance(exc, kubernetes.client.ApiException):
        return f"HTTP {exc.status} {exc.reason or ''}".strip()
    return f"{type(exc).__name__}: {exc}"


def _key(obj: Mapping[str, Any]) -> tuple[Key, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or "")), str(
        meta.get("resourceVersion") or ""
    )


class Item(NamedTuple):
    """One object as received (cut in the reading thread): its key, version, kept value."""

    type: str
    key: Key
    version: str
    body: Mapping[str, Any]
    kept: tuple[Any, Any] | None
    code: int = 0
    """An ERROR event's HTTP status."""


class _Stream:
    """One watch response, shared by the thread that reads it and the task that may end it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, events: asyncio.Queue[Item | None]) -> None:
        self.loop = loop
        self.events = events
        self.resp: Any = None
        self.aborted = False
        self.lock = threading.Lock()

    def deliver(self, event: Item | None) -> None:
        """Hand an event (None: the end) to the task, from the reading thread."""
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)

    def attach(self, resp: Any) -> None:
        """From the opening thread: the response to read; closed at once if the task has gone."""
        with self.lock:
            self.resp = resp
            aborted = self.aborted
        if aborted:
            self.close()

    def close(self) -> None:
        """Close the response, once, by whoever comes first: the reading thread at its end, or
        the task when it never started one (nothing reads it then)."""
        with self.lock:
            resp, self.resp = self.resp, None
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.close()
                resp.release_conn()

    def abort(self) -> None:
        """Unblock the reading thread: shut the socket's read side (closing a socket under a
        blocked TLS read can deadlock); the thread then closes the response itself."""
        with self.lock:
            self.aborted = True
            resp = self.resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()


class View(Mapping[Any, tuple[V, ...]]):
    """The kept values by the key they are filed under, read like a kopf index: each key maps
    to the values of every object filed under it (one, for most; every slice of a Service)."""

    def __init__(self) -> None:
        self._filed: dict[Any, dict[Key, V]] = {}

    def __getitem__(self, filed: Any) -> tuple[V, ...]:
        return tuple(self._filed[filed].values())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._filed)

    def __len__(self) -> int:
        return len(self._filed)

    def _put(self, filed: Any, key: Key, value: V) -> None:
        self._filed.setdefault(filed, {})[key] = value

    def _drop(self, filed: Any, key: Key) -> None:
        values = self._filed.get(filed)
        if values is not None:
            values.pop(key, None)
            if not values:
                del self._filed[filed]


class WatchCache(Generic[V]):
    """Every object of `source` in the served namespaces, cut to its kept value, kept current."""

    def __init__(
        self,
        kube: Kube,
        source: Source,
        namespaces: tuple[str, ...],
        cut: Cut[V],
        on_change: Callable[[Change[V]], None],
        logger: logging.Logger | logging.LoggerAdapter[Any],
        *,
        watch_seconds: int = WATCH_SECONDS,
        what: str | None = None,
    ) -> None:
        self.kube = kube
        self.source = source
        self.scopes: tuple[str | None, ...] = namespaces or (None,)
        """One list-and-watch per namespace served, or one across all (None)."""
        self.cut = cut
        self.on_change = on_change
        self.logger = logger
        self.watch_seconds = watch_seconds
        self.what = what or f"{source.kind}s"
        self.view: View[V] = View()
        self.held: dict[Key, tuple[Any, V]] = {}
        """Each object's filing key and value."""
        self.failing_since: float | None = None
        """When the requests began to fail (monotonic), until one succeeds."""
        self._listed: set[str | None] = set()
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._threads = concurrent.futures.ThreadPoolExecutor(
            2 * len(self.scopes), thread_name_prefix=f"llmgw-watch-{source.plural}"
        )
        """Threads of its own: an open watch holds one for as long as it is open, and the
        event loop's default executor (CPUs + 4 threads) would run out of them on a small
        node, holding up every other call that runs there."""

    def _off_loop(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(scope), name=f"llmgw-watch-{self.source.plural}-{scope or 'all'}")
            for scope in self.scopes
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._threads.shutdown(wait=False)

    @property
    def is_synced(self) -> bool:
        """Whether every scope has been listed once (what is held is the world, then)."""
        return self._synced.is_set()

    async def synced(self, timeout: float | None) -> bool:
        """Whether every scope has been listed once, waiting at most `timeout` seconds (None: until it is)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), timeout)
        return self._synced.is_set()

    async def _run(self, scope: str | None) -> None:
        where = f" in {scope}" if scope else ""
        version: str | None = None
        failures = 0
        while True:
            verb = "list"
            try:
                if version is None:
                    version = await self._list(scope)
                    self.failing_since = None
                verb = "watch"
                version = await self._watch(scope, version)
                failures = 0
                self.failing_since = None
            except Exception as exc:  # the watch must outlive any one failure
                if _status(exc) == GONE:
                    self.logger.info(f"the resourceVersion of {self.what}{where} expired; listing again")
                    version = None
                    continue
                failures += 1
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                delay = min(MAX_BACKOFF, 0.5 * 2 ** min(failures, 7))
                metrics.API_ERRORS.labels(verb, self.source.plural, str(_status(exc))).inc()
                self.logger.warning(
                    f"{verb} of {self.what}{where} failed ({_reason(exc)}); retrying in {delay:.1f}s"
                )
                await asyncio.sleep(delay)

    def _item(self, kind: str, obj: Mapping[str, Any]) -> Item:
        """In the reading thread: the object cut down to what is kept (nothing else stays)."""
        key, version = _key(obj)
        kept = self.cut(obj) if kind != "DELETED" else None
        body = obj if self.source.bodies and (kept is not None or kind == "DELETED") else self._stub(key)
        return Item(kind, key, version, body, kept)

    def _stub(self, key: Key) -> dict[str, Any]:
        """What a change says of an object whose body is not kept: its identity."""
        meta: dict[str, Any] = {"name": key[1]}
        if key[0]:
            meta["namespace"] = key[0]
        return {"apiVersion": self.source.api_version, "kind": self.source.kind, "metadata": meta}

    def _read_page(self, scope: str | None, cont: str | None) -> tuple[list[Item], str, str | None]:
        resp = self.source.request(
            self.kube,
            scope,
            limit=PAGE,
            _continue=cont,
            _headers={"Accept": self.source.list_accept},
            _request_timeout=self.kube.timeout,
        )
        try:
            page = json.loads(resp.data)
        finally:
            resp.release_conn()
        items = [self._item("ADDED", item) for item in page.get("items") or ()]
        meta = page.get("metadata") or {}
        return items, str(meta.get("resourceVersion") or ""), meta.get("continue") or None

    async def _list(self, scope: str | None) -> str:
        """Every object of the scope, paged; those held but no longer listed are deleted."""
        seen: dict[Key, Item] = {}
        cont: str | None = None
        while True:
            read = functools.partial(self._off_loop, self._read_page, scope, cont)
            items, version, cont = await self.kube.paced("list", self.source.plural, read)
            seen.update((item.key, item) for item in items)
            if not cont:
                break
        for key in [k for k in self.held if (scope is None or k[0] == scope) and k not in seen]:
            self._set(Item("DELETED", key, "", self._stub(key), None))
        for item in seen.values():
            self._set(item)
        self._listed.add(scope)
        if self._listed.issuperset(self.scopes):
            self._synced.set()
        return version

    async def _watch(self, scope: str | None, version: str) -> str:
        """One watch request, from `version` until the server ends it; returns the last version seen."""
        events: asyncio.Queue[Item | None] = asyncio.Queue()
        stream = _Stream(asyncio.get_running_loop(), events)
        reader: asyncio.Future[None] | None = None
        try:
            opening = functools.partial(self._off_loop, self._open_watch, scope, version, stream)
            await self.kube.paced("watch", self.source.plural, opening)
            reader = self._off_loop(self._read_watch, stream)
            while (event := await events.get()) is not None:
                if event.type == "ERROR":
                    raise WatchError(event.code)
                if event.type in ("ADDED", "MODIFIED", "DELETED"):
                    self._set(event)
                version = event.version or version  # BOOKMARKs carry only a version
            await reader
        finally:
            stream.abort()
            if reader is None:  # opened (or opening) but never read
                stream.close()
            elif not reader.done():  # its end, now near, concerns nobody
                reader.add_done_callback(lambda f: f.cancelled() or f.exception())
        return version

    def _open_watch(self, scope: str | None, version: str, stream: _Stream) -> None:
        """In a worker thread: open the watch (a 429 raises, to be retried) and hand it over."""
        stream.attach(
            self.source.request(
                self.kube,
                scope,
                watch=True,
                resource_version=version or None,
                allow_watch_bookmarks=True,
                timeout_seconds=self.watch_seconds,
                _headers={"Accept": self.source.watch_accept},
                _request_timeout=(self.kube.timeout, self.watch_seconds + self.kube.timeout),
            )
        )

    def _read_watch(self, stream: _Stream) -> None:
        """In a worker thread: hand each event of the open watch over, cut, then close it."""
        try:
            resp = stream.resp
            if resp is not None and not stream.aborted:
                for line in _lines(resp):
                    stream.deliver(self._event(json.loads(line)))
        except Exception:
            if not stream.aborted:
                raise
        finally:
            stream.close()
            stream.deliver(None)

    def _event(self, raw: Mapping[str, Any]) -> Item:
        obj = raw.get("object") or {}
        kind = str(raw.get("type") or "")
        if kind == "ERROR":
            return Item("ERROR", ("", ""), "", {}, None, int(obj.get("code") or 0))
        if kind == "BOOKMARK":
            return Item("BOOKMARK", ("", ""), _key(obj)[1], {}, None)
        return self._item(kind, obj)

    def _set(self, item: Item) -> None:
        """Hold what the item keeps (nothing, when deleted or not kept) and tell of a change."""
        old = self.held.get(item.key)
        if item.kept is None:
            if old is None:
                return
            del self.held[item.key]
            self.view._drop(old[0], item.key)
            filed, value, kind = old[0], None, "DELETED"
        else:
            if old == item.kept:
                return
            filed, value = item.kept
            if old is not None:
                self.view._drop(old[0], item.key)
            self.held[item.key] = (filed, value)
            self.view._put(filed, item.key, value)
            kind = "ADDED" if old is None else "MODIFIED"
        self.on_change(Change(kind, item.key, item.body, filed, value, old))
