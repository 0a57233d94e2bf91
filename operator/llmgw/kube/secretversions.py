"""Secrets' resourceVersions from a metadata-only list and watch: Secret data never reaches the process.

`rolloutOnSecretChange` needs to know when a Secret changes, never what it holds. A
kopf watch brings whole objects, data included; the API server instead serves any
resource as its metadata alone (PartialObjectMetadata) to a client that asks for it
in the Accept header, as client-go's metadata informers do. The official client has
no typed call for that shape, but its list call takes `_headers`, and with
`_preload_content=False` hands back the raw response, which is read here and cut
down to namespace, name and resourceVersion on receipt, whatever the server sent.

A list, then a watch resumed from the last resourceVersion seen; a relist on 410
Gone (which also drops the Secrets deleted meanwhile); a bounded backoff on errors.
Every request (each page of a list, each watch (re)connect) takes a token from the
client's one rate limiter and waits out a 429's `Retry-After` (`Kube.paced`), as
`Kube`'s own calls do: a relist loop cannot outrun `--api-qps`. The client is
synchronous, so each request runs in a worker thread; a watch's socket is shut
when its task is cancelled, so that a blocked read cannot hold the process's
shutdown (and the server ends each watch after `timeoutSeconds` anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import kubernetes

from llmgw import metrics
from llmgw.kube.client import Kube

Key = tuple[str, str]
"""(namespace, name) of a Secret."""
LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
WATCH_SECONDS = 60
"""How long the server keeps one watch open (`timeoutSeconds`) before it is resumed."""
PAGE = 500
MAX_BACKOFF = 30.0
GONE = 410


class Event(NamedTuple):
    """A watch event, cut down to what is kept."""

    type: str
    key: Key
    version: str
    code: int = 0
    """An ERROR event's HTTP status."""


class WatchError(Exception):
    """An ERROR event in a watch stream (410: the resourceVersion expired)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"watch ended with HTTP {code}")
        self.status = code


def _identity(obj: Mapping[str, Any]) -> tuple[Key, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or "")), str(
        meta.get("resourceVersion") or ""
    )


def _event(raw: Mapping[str, Any]) -> Event:
    """Everything but the identity and version is dropped here: a Secret's data too, should a
    server ignore the Accept header and send whole objects."""
    obj = raw.get("object") or {}
    if raw.get("type") == "ERROR":
        return Event("ERROR", ("", ""), "", int(obj.get("code") or 0))
    key, version = _identity(obj)
    return Event(str(raw.get("type") or ""), key, version)


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


class _Stream:
    """One watch response, shared by the thread that reads it and the task that may end it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, events: asyncio.Queue[Event | None]) -> None:
        self.loop = loop
        self.events = events
        self.resp: Any = None
        self.aborted = False
        self.lock = threading.Lock()

    def deliver(self, event: Event | None) -> None:
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


class SecretVersions:
    """The resourceVersion of every Secret in the served namespaces, kept current."""

    def __init__(
        self,
        kube: Kube,
        namespaces: tuple[str, ...],
        on_change: Callable[[Key], None],
        logger: logging.Logger | logging.LoggerAdapter[Any],
        *,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self.kube = kube
        self.scopes: tuple[str | None, ...] = namespaces or (None,)
        """One list-and-watch per namespace served, or one across all (None)."""
        self.on_change = on_change
        self.logger = logger
        self.watch_seconds = watch_seconds
        self.versions: dict[Key, str] = {}
        self._listed: set[str | None] = set()
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(scope), name=f"llmgw-secret-versions-{scope or 'all'}")
            for scope in self.scopes
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def synced(self, timeout: float) -> bool:
        """Whether every scope has been listed once, waiting at most `timeout` seconds: a render
        before that would miss versions, and roll again when they come."""
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
                verb = "watch"
                version = await self._watch(scope, version)
                failures = 0
            except Exception as exc:  # the watch must outlive any one failure
                if _status(exc) == GONE:
                    self.logger.info(f"Secrets' resourceVersion{where} expired; listing them again")
                    version = None
                    continue
                failures += 1
                delay = min(MAX_BACKOFF, 0.5 * 2 ** min(failures, 7))
                metrics.API_ERRORS.labels(verb, "secrets", str(_status(exc))).inc()
                self.logger.warning(
                    f"{verb} of Secrets' metadata{where} failed ({_reason(exc)}); retrying in {delay:.1f}s"
                )
                await asyncio.sleep(delay)

    def _request(self, scope: str | None, **kw: Any) -> Any:
        """A raw list or watch response (in a worker thread); non-2xx raise ApiException."""
        core = self.kube.core
        if scope is None:
            return core.list_secret_for_all_namespaces(_preload_content=False, **kw)
        return core.list_namespaced_secret(scope, _preload_content=False, **kw)

    def _read_page(self, scope: str | None, cont: str | None) -> tuple[dict[Key, str], str, str | None]:
        resp = self._request(
            scope,
            limit=PAGE,
            _continue=cont,
            _headers={"Accept": LIST_ACCEPT},
            _request_timeout=self.kube.timeout,
        )
        try:
            page = json.loads(resp.data)
        finally:
            resp.release_conn()
        items = dict(_identity(item) for item in page.get("items") or ())
        meta = page.get("metadata") or {}
        return items, str(meta.get("resourceVersion") or ""), meta.get("continue") or None

    async def _list(self, scope: str | None) -> str:
        """Every Secret of the scope, paged; those no longer listed are dropped."""
        seen: dict[Key, str] = {}
        cont: str | None = None
        while True:
            read = functools.partial(asyncio.to_thread, self._read_page, scope, cont)
            items, version, cont = await self.kube.paced("list", "secrets", read)
            seen.update(items)
            if not cont:
                break
        for key in [k for k in self.versions if (scope is None or k[0] == scope) and k not in seen]:
            self._set(key, None)
        for key, found in seen.items():
            self._set(key, found)
        self._listed.add(scope)
        if self._listed.issuperset(self.scopes):
            self._synced.set()
        return version

    async def _watch(self, scope: str | None, version: str) -> str:
        """One watch request, from `version` until the server ends it; returns the last version seen."""
        events: asyncio.Queue[Event | None] = asyncio.Queue()
        stream = _Stream(asyncio.get_running_loop(), events)
        reader: asyncio.Future[None] | None = None
        try:
            opening = functools.partial(asyncio.to_thread, self._open_watch, scope, version, stream)
            await self.kube.paced("watch", "secrets", opening)
            reader = asyncio.ensure_future(asyncio.to_thread(self._read_watch, stream))
            while (event := await events.get()) is not None:
                if event.type == "ERROR":
                    raise WatchError(event.code)
                if event.type == "DELETED":
                    self._set(event.key, None)
                elif event.type in ("ADDED", "MODIFIED"):
                    self._set(event.key, event.version)
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
            self._request(
                scope,
                watch=True,
                resource_version=version or None,
                allow_watch_bookmarks=True,
                timeout_seconds=self.watch_seconds,
                _headers={"Accept": WATCH_ACCEPT},
                _request_timeout=(self.kube.timeout, self.watch_seconds + self.kube.timeout),
            )
        )

    def _read_watch(self, stream: _Stream) -> None:
        """In a worker thread: hand each event of the open watch over, then close it."""
        try:
            resp = stream.resp
            if resp is not None and not stream.aborted:
                for line in _lines(resp):
                    stream.deliver(_event(json.loads(line)))
        except Exception:
            if not stream.aborted:
                raise
        finally:
            stream.close()
            stream.deliver(None)

    def _set(self, key: Key, version: str | None) -> None:
        if version is None:
            if self.versions.pop(key, None) is None:
                return
        elif self.versions.get(key) == version:
            return
        else:
            self.versions[key] = version
        self.on_change(key)
