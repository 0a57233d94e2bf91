"""A Kubernetes API server for the integration tests and `llmgw demo`: kmock, plus what it lacks.

It lives in the package (the `demo` extra: `pip install 'llmgw[demo]'`) so that the
integration suite and the demo run one implementation; it was
tests/operator/kube_emulator.py.

kmock's emulator keeps objects in memory and serves list/watch/get/create/
patch/delete, but it sets no uid, creationTimestamp, generation or
resourceVersion, ignores label selectors and the Accept header, and merges
every PATCH as JSON. This subclass adds the metadata the operator relies on
(generation bumps on spec changes only, as the real API server does for CRDs
with a status subresource), serves lists and watches as PartialObjectMetadata
when the Accept header asks for it (metadata only, as the API server does),
and counts writes per resource, and lists and watches, for the tests and
benchmarks.
Resources are registered from the generated CRDs in `crds/`, so a wrong CRD
fails the tests.

Three ways kmock differs from a real kube-apiserver are mended here, so that what is measured
on it is the operator, not kmock: a named object is found by its name (kmock walks every
object on every get, create, patch and delete, so N writes cost N^2: `ByName`); a request
body may be as large as kube-apiserver takes, on any server (3 MiB; aiohttp's default, 1 MiB,
answers 413: `Emulator.__call__`); and what the API server's validation refuses for its size,
a ConfigMap's data and any object's annotations, is refused with 422 and the API server's
message (`size_errors`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import copy
import datetime
import itertools
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import kmock
import yaml
from aiohttp import web
from kmock._internal import dicts as kdicts
from kmock._internal import enums, k8s_views
from kmock._internal import k8s as kk8s
from kmock._internal import parsing as kparsing
from kmock._internal.k8s import KubernetesObjectConflictError

ROOT = Path(__file__).resolve().parents[3]
"""The source checkout, whose crds/ the resources are registered from (a wheel has none:
then the CRDs are generated from the models, which is what crds/ holds)."""

_parse_path = kparsing.parse_path


def _parse_namespaces(path: str) -> Any:
    """kmock reads `/api/v1/namespaces[/NAME]` as a namespace prefix; it is the resource itself."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        name = parts[3] if len(parts) == 4 else None
        return kparsing.ParsedPath("", "v1", "namespaces", None, name, None)
    return _parse_path(path)


kparsing.parse_path = _parse_namespaces

_guess_k8s = kparsing.guess_k8s


def _guess_with_put(k8s: Any, method: Any, query: Any) -> Any:
    """kmock knows no PUT; a replace of a named object is an update here (merged, not replaced)."""
    if k8s.group is not None and k8s.name is not None and method == enums.method.PUT:
        return enums.action.UPDATE
    return _guess_k8s(k8s, method, query)


kparsing.guess_k8s = _guess_with_put
VERBS = {"list", "watch", "get", "create", "patch", "update", "delete"}


MIB = 1024 * 1024
MAX_REQUEST_BODY = 3 * MIB
"""kube-apiserver's limit on a request body (`MaxRequestBodyBytes`); aiohttp's default, which
kmock serves with, is 1 MiB: a ConfigMap of 1 MiB of YAML is more than that as JSON."""
CONFIGMAP_LIMIT = MIB
"""`corev1.MaxSecretSize`: `ValidateConfigMap` sums the bytes of every value of data and of
binaryData (decoded from base64); keys are not counted."""
ANNOTATIONS_LIMIT = 256 * 1024
"""`TotalAnnotationSizeLimitB`: `ValidateAnnotationsSize` sums len(key) + len(value), in bytes,
over an object's annotations."""


def _bytes(value: Any) -> int:
    return len(value.encode() if isinstance(value, str) else str(value).encode())


def configmap_size(body: Mapping[str, Any]) -> int:
    """A ConfigMap's data as `ValidateConfigMap` counts it: `totalSize += len(value)` over data
    (a Go string: its UTF-8 bytes) and binaryData (a []byte: base64 on the wire, counted
    decoded; a value that is not base64 is counted as sent)."""
    total = sum(_bytes(v) for v in (body.get("data") or {}).values())
    for value in (body.get("binaryData") or {}).values():
        try:
            total += len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError, TypeError):
            total += _bytes(value)
    return total


def annotations_size(annotations: Mapping[str, Any]) -> int:
    """An object's annotations as `ValidateAnnotationsSize` counts them: the bytes of every key and value."""
    return sum(_bytes(k) + _bytes(v) for k, v in annotations.items())


def size_errors(
    plural: str,
    body: Any,
    *,
    configmap_limit: int = CONFIGMAP_LIMIT,
    annotations_limit: int = ANNOTATIONS_LIMIT,
) -> list[tuple[str, int]]:
    """(field, limit) of each size the API server's validation refuses in this object, in the
    order it checks them (`ValidateObjectMeta` first); empty when it takes the object."""
    if not isinstance(body, Mapping):
        return []
    errors: list[tuple[str, int]] = []
    meta = body.get("metadata") or {}
    if annotations_size(meta.get("annotations") or {}) > annotations_limit:
        errors.append(("metadata.annotations", annotations_limit))
    if plural == "configmaps" and configmap_size(body) > configmap_limit:
        errors.append(("[]", configmap_limit))  # field.NewPath(""): the whole object
    return errors


def invalid_message(qualified_kind: str, name: str, errors: list[tuple[str, int]]) -> str:
    """`apierrors.NewInvalid`'s message for `field.TooLong` errors: one, or several in brackets."""
    each = [f"{field}: Too long: must have at most {limit} bytes" for field, limit in errors]
    listed = each[0] if len(each) == 1 else f"[{', '.join(each)}]"
    return f'{qualified_kind} "{name}" is invalid: {listed}'


Key = k8s_views.ArrayKey


class ByName(dict[Key, Any]):
    """kmock's store of objects (`ObjectsArray._objects`, keyed by (resource, namespace, name)),
    also indexed by name: kmock finds the object of a named request by testing every key, which
    this index narrows to the keys of that name. It is kept where kmock writes, so objects
    created, deleted (soft: the key stays) and forgotten (`del emulator.objects[key]`, `clear`)
    are always in it; the order of keys of one name is the store's own."""

    def __init__(self, items: Iterable[tuple[Key, Any]] = ()) -> None:
        super().__init__()
        self.names: dict[str | None, dict[Key, None]] = {}
        for key, value in items:
            self[key] = value

    def named(self, name: str | None) -> Iterator[Key]:
        """The keys of objects of this name, of any resource and namespace."""
        return iter(self.names.get(name, ()))

    def _unindex(self, key: Key) -> None:
        keys = self.names.get(key[2])
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self.names[key[2]]

    def __setitem__(self, key: Key, value: Any) -> None:
        if key not in self:
            self.names.setdefault(key[2], {})[key] = None
        super().__setitem__(key, value)

    def __delitem__(self, key: Key) -> None:
        super().__delitem__(key)
        self._unindex(key)

    def pop(self, key: Key, *default: Any) -> Any:
        if key in self:
            self._unindex(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[Key, Any]:
        key, value = super().popitem()
        self._unindex(key)
        return key, value

    def setdefault(self, key: Key, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> ByName:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        super().clear()
        self.names.clear()


FLOW_CONTROL = {
    "X-Kubernetes-PF-FlowSchema-UID": "8b7a0c8e-4c6b-4e64-9b0b-4f0e4a3c0001",
    "X-Kubernetes-PF-PriorityLevel-UID": "8b7a0c8e-4c6b-4e64-9b0b-4f0e4a3c0002",
}
"""The headers API Priority and Fairness sets (the UIDs of the built-in "service-accounts"
FlowSchema and "workload-low" level, made up)."""
_REASONS = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}
_GONE = {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 410, "reason": "Expired"}
META = "meta.k8s.io/v1"


class Read(NamedTuple):
    """A read request as served: what it asked for, of what, and who asked."""

    verb: str  # list | watch | get
    plural: str
    namespace: str
    accept: str
    resource_version: str | None
    agent: str


def _metadata_as(request: Any) -> str | None:
    """The `as=` of an Accept header that asks for meta.k8s.io/v1 (PartialObjectMetadata[List]); None
    when it asks for whole objects."""
    for media in str((request.headers or {}).get("Accept", "")).split(","):
        params = dict(part.strip().split("=", 1) for part in media.split(";")[1:] if "=" in part)
        if params.get("g") == "meta.k8s.io" and params.get("v") == "v1" and params.get("as"):
            return params["as"]
    return None


def _partial(obj: Any) -> dict[str, Any]:
    return {
        "apiVersion": META,
        "kind": "PartialObjectMetadata",
        "metadata": copy.deepcopy(obj.get("metadata") or {}),
    }


class WatchDropped(Exception):
    """Put into a watch bus by `Emulator.drop_watches`: ends each stream that reads it."""


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator with server-set metadata and a write log."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # kmock's ObjectsArray is frozen; its store is replaced once, before any object exists.
        object.__setattr__(self._objects, "_objects", ByName(self._objects._objects.items()))
        # What the API server's validation refuses for size (lower them to test with less data),
        # and each write refused: (verb, resource[/subresource], namespace, name, message).
        self.configmap_limit = CONFIGMAP_LIMIT
        self.annotations_limit = ANNOTATIONS_LIMIT
        self.invalid: list[tuple[str, str, str, str, str]] = []
        self.rv = itertools.count(1)
        self.writes: list[tuple[str, str, str, str]] = []
        self.agents: list[str] = []  # the User-Agent of each write, in step with `writes`
        self.silence_watches = (
            False  # a zombie API: streams stay open, events stop  # (verb, plural, namespace, name)
        )
        self.faults: collections.deque[int] = collections.deque()
        self.reads: list[Read] = []  # every list and watch of a resource, and every get of a Secret
        # False: a server that ignores the Accept header and sends whole objects.
        self.partial_metadata = True
        # Fault injection: each queued status answers the operator's next write instead of
        # the write (a 409 to a create is answered after it, as for a retry of a create whose
        # answer was lost; a 0 lets the write through). `injected`: (status, verb, resource,
        # namespace, name) of each fault answered.
        self.injected: list[tuple[int, str, str, str, str]] = []
        # A partition between one replica and the API server, for its Lease only: its Lease
        # writes hang for `lease_hang_seconds`, then fail with 504, while its other writes go
        # through (the worst case for leader election: a replica that trusted a renewal still
        # under way, rather than its own clock, would go on acting after its Lease expired).
        self.hang_lease_writes_of: str | None = None
        self.lease_hang_seconds = 6.0
        # Requests for a resource this server does not serve (a CRD not installed), answered
        # 404 as the API server does: kmock would store the object and serve it from then on.
        # (verb, plural, namespace, User-Agent).
        self.refused: list[tuple[str, str, str, str]] = []
        self.discovery: list[tuple[str, str]] = []  # (group/version, User-Agent) of each GET of one
        # The operator's status writes: how many are in flight now and at most, and ("begin" |
        # "end", resource, namespace, name) of each, in order. Each is held `status_latency`
        # seconds first, as a real API server's write takes a while (0: answered at once, and
        # then no two are ever in flight together).
        self.status_latency = 0.0
        self.status_in_flight = 0
        self.status_peak = 0
        self.status_timeline: list[tuple[str, str, str, str]] = []
        # API Priority and Fairness, as a kube-apiserver since 1.20 applies it: each response
        # names the FlowSchema and priority level its request was matched to (here only
        # /livez/ping's, which is what the operator asks; False: a server without APF).
        self.flow_control = True
        self.pings = 0

    async def __call__(self, raw_request: web.BaseRequest) -> web.StreamResponse:
        """Take request bodies of up to `MAX_REQUEST_BODY`, as kube-apiserver does, whatever limit
        the server that serves this emulator was made with (aiohttp's default: 1 MiB, 413 above)."""
        if raw_request.path == "/livez/ping":
            self.pings += 1
            return web.Response(text="ok", headers=FLOW_CONTROL if self.flow_control else {})
        limit = raw_request.client_max_size
        if limit and limit < MAX_REQUEST_BODY:
            raw_request = raw_request.clone(client_max_size=MAX_REQUEST_BODY)
        return await super().__call__(raw_request)

    def _KubernetesEmulator__get_objs(self, request: Any, strict: bool) -> list[Any]:
        """kmock's lookup, by name where the request names one: kmock's own test
        (`KubernetesEmulator.__check`) decides, on the keys of that name only, which are all the
        keys it could pass (it passes a named request only for an object of that name). Lists
        and watches, which name none, walk every object as kmock does."""
        store = self._objects._objects
        if request.name is None or not isinstance(store, ByName):
            found: list[Any] = super()._KubernetesEmulator__get_objs(request, strict)  # type: ignore[misc]
            return found
        check = self._KubernetesEmulator__check  # type: ignore[attr-defined]
        return [store[key] for key in store.named(request.name) if check(request, *key, strict=strict)]

    def _validate(self, request: Any) -> None:
        """Refuse with 422, as the API server's validation does, a create or update whose object
        (an update's: the stored object with the patch applied) is too large; see `size_errors`."""
        res = request.resource
        if request.action == enums.action.CREATE:
            body = request.data
        elif request.action == enums.action.UPDATE:
            key = (res, request.namespace, request.name)
            stored = self._objects._objects.get(key)
            if stored is None or stored.deleted or not isinstance(request.data, dict | list):
                return  # kmock answers 404
            try:
                body = kdicts.patch_dict(stored.raw, request.data)
            except Exception:  # a JSON patch that does not apply: kmock answers it
                return
        else:
            return
        errors = size_errors(
            res.plural or "",
            body,
            configmap_limit=self.configmap_limit,
            annotations_limit=self.annotations_limit,
        )
        if not errors:
            return
        meta = (body.get("metadata") if isinstance(body, Mapping) else None) or {}
        name = request.name or meta.get("name") or meta.get("generateName") or ""
        info = self.resources[res] if res in self.resources else None  # noqa: SIM401 (get() would add it)
        kind = (info.kind if info is not None else None) or (
            body.get("kind") if isinstance(body, Mapping) else None
        )
        kind = kind or res.plural or ""
        qualified = f"{kind}.{res.group}" if res.group else kind
        message = invalid_message(qualified, name, errors)
        sub = f"/{request.subresource}" if getattr(request, "subresource", None) else ""
        verb = str(request.action.name).lower()
        self.invalid.append((verb, (res.plural or "") + sub, request.namespace or "", name, message))
        causes = [
            {
                "reason": "FieldValueTooLong",
                "message": f"Too long: must have at most {limit} bytes",
                "field": field,
            }
            for field, limit in errors
        ]
        raise kk8s.KubernetesError(
            status=422,
            reason="Invalid",
            message=message,
            details={"name": name, "group": res.group or "", "kind": kind, "causes": causes},
        )

    async def _handle(self, request: Any) -> Any:
        try:
            return await self._handle_recorded(request)
        finally:
            self._forget(request)

    def _forget(self, request: Any) -> None:
        """kmock matches each request against every request it served before (by identity), and
        each reaction keeps the requests it served: both grow without end, and long runs become
        quadratic. A request is forgotten once served (a watch once it streams)."""
        self._requests[:] = [r for r in self._requests if r is not request]
        for payload in self._payloads:
            payload._requests.clear()

    async def _handle_recorded(self, request: Any) -> Any:
        res = request.resource
        conflict_after = False
        status_write: tuple[str, str, str] | None = None
        agent = str((request.headers or {}).get("User-Agent", ""))
        if res is not None and not res.plural and res.group:
            self.discovery.append((f"{res.group}/{res.version}", agent))
        if res is not None and res.plural and res not in self.resources:
            verb = str(getattr(request.action, "name", request.action)).lower()
            self.refused.append((verb, res.plural, request.namespace or "", agent))
            raise kk8s.KubernetesResourceNotFoundError()
        if res is not None and (
            request.action in (enums.action.LIST, enums.action.WATCH)
            or (request.action == enums.action.FETCH and res.plural == "secrets")
        ):
            self.reads.append(
                Read(
                    {enums.action.FETCH: "get"}.get(request.action, str(request.action.name).lower()),
                    res.plural or "",
                    request.namespace or "",
                    str((request.headers or {}).get("Accept", "")),
                    (request.params or {}).get("resourceVersion"),
                    str((request.headers or {}).get("User-Agent", "")),
                )
            )
        if res is not None and request.action in (
            enums.action.CREATE,
            enums.action.UPDATE,
            enums.action.DELETE,
        ):
            plural = res.plural or ""
            name = request.name or (request.data or {}).get("metadata", {}).get("name", "")
            sub = f"/{request.subresource}" if getattr(request, "subresource", None) else ""
            agent = (request.headers or {}).get("User-Agent", "")
            cut = self.hang_lease_writes_of
            if plural == "leases" and cut and f"({cut})" in agent:
                await asyncio.sleep(self.lease_hang_seconds)
                raise kk8s.KubernetesError(status=504, reason="GatewayTimeout", message="partitioned")
            # Validation refuses before anything is stored or counted, and before a queued
            # fault (which stands for a failure of a write the server would take).
            self._validate(request)
            if agent.startswith(("OpenAPI-Generator", "llmgw/")):  # the operator's writes, not kopf's
                code = self.faults.popleft() if self.faults and plural not in ("leases", "events") else 0
                if code:  # 0 lets a write through, to aim the next fault at a later one
                    verb = str(request.action.name).lower()
                    self.injected.append((code, verb, plural + sub, request.namespace or "", name))
                    conflict_after = code == 409 and request.action == enums.action.CREATE
                    if not conflict_after:
                        raise kk8s.KubernetesError(status=code, reason=_REASONS.get(code), message="injected")
                self.writes.append(
                    (str(request.action.name).lower(), plural + sub, request.namespace or "", name)
                )
                self.agents.append(agent)
                if sub == "/status":
                    status_write = (plural + sub, request.namespace or "", name)
            if request.action == enums.action.CREATE and isinstance(request.data, dict):
                meta = request.data.setdefault("metadata", {})
                if not meta.get("name") and meta.get("generateName"):  # kopf's Events use it
                    meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:12]}"
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault(
                    "creationTimestamp", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                )
                meta["generation"] = 1
                meta["resourceVersion"] = str(next(self.rv))
            elif request.action == enums.action.UPDATE and isinstance(request.data, dict):
                key = (res, request.namespace, request.name)
                if key in self.objects and not self.objects[key].deleted:
                    old = self.objects[key].raw
                    # Optimistic concurrency, as the API server does it for a replace that
                    # names the resourceVersion it read (leader election relies on it).
                    wanted = (request.data.get("metadata") or {}).get("resourceVersion")
                    have = (old.get("metadata") or {}).get("resourceVersion")
                    if wanted is not None and wanted != have:
                        raise KubernetesObjectConflictError()
                    new = kdicts.patch_dict(copy.deepcopy(old), copy.deepcopy(request.data))
                    meta = request.data.setdefault("metadata", {})
                    generation = old.get("metadata", {}).get("generation", 1)
                    if not request.subresource and new.get("spec") != old.get("spec"):
                        generation += 1
                    meta["generation"] = generation
                    meta["resourceVersion"] = str(next(self.rv))
        if status_write is None:
            response = await super()._handle(request)
        else:
            self.status_in_flight += 1
            self.status_peak = max(self.status_peak, self.status_in_flight)
            self.status_timeline.append(("begin", *status_write))
            try:
                if self.status_latency:
                    await asyncio.sleep(self.status_latency)
                response = await super()._handle(request)
            finally:
                self.status_in_flight -= 1
                self.status_timeline.append(("end", *status_write))
        if conflict_after:
            raise kk8s.KubernetesObjectConflictError()
        if (
            res is not None
            and request.action == enums.action.CREATE
            and response.status == 200
            and not response.prepared
        ):
            response.set_status(201)  # the real API server answers 201 Created
        return response

    def _metadata_only(self, request: Any, shape: str) -> bool:
        """Whether to answer with metadata only; 406 for a shape this request cannot have."""
        wanted = _metadata_as(request) if self.partial_metadata else None
        if wanted is None:
            return False
        if wanted != shape:
            raise kk8s.KubernetesError(status=406, reason="NotAcceptable", message=f"as={wanted}")
        return True

    async def _serve_list(self, request: Any) -> Any:
        payload: Any = await super()._serve_list(request)
        if not self._metadata_only(request, "PartialObjectMetadataList"):
            return payload
        # A real resourceVersion too, so that a watch can resume from the list (kmock says "...").
        live = [
            _number(o.raw.get("metadata", {}).get("resourceVersion"))
            for o in self.objects.values()
            if not o.deleted
        ]
        return {
            "apiVersion": META,
            "kind": "PartialObjectMetadataList",
            "metadata": {"resourceVersion": str(max([n for n in live if n is not None], default=0))},
            "items": [_partial(item) for item in payload["items"]],
        }

    async def _serve_watch(self, request: Any) -> Any:
        """kmock starts every watch by replaying every object as ADDED; the API server resumes
        from the resourceVersion the client names, so a client that reconnects (kopf does,
        every `client_timeout`) gets only what changed since. Without this, every reconnect
        replays the whole estate, which on thousands of objects is seconds of the operator's
        time that no cluster would cost it."""
        self._forget(request)
        since = _number((request.params or {}).get("resourceVersion"))
        partial = self._metadata_only(request, "PartialObjectMetadata")
        async for event in super()._serve_watch(request):
            if self.silence_watches and event:
                continue
            if since is not None and isinstance(event, dict) and event.get("type") == "ADDED":
                rv = _number(((event.get("object") or {}).get("metadata") or {}).get("resourceVersion"))
                if rv is not None and rv <= since:
                    continue  # the client has seen it
            if partial and isinstance(event, dict) and event.get("type") != "ERROR":
                event = {**event, "object": _partial(event.get("object") or {})}
            yield event

    async def drop_watches(self, *, gone: bool = False) -> int:
        """End every open watch stream, as a restarting API server or a broken connection does;
        with `gone`, answer `410 Gone` first (the resourceVersion expired: clients list again).
        Returns the number of streams ended."""
        item: Any = {"type": "ERROR", "object": _GONE} if gone else WatchDropped()
        ended = 0
        for bus in list(self._buses.values()):
            if bus.consumer_count:
                ended += bus.consumer_count
                await bus.put(item)
        return ended

    async def _stream_error(self, exc: Exception, raw_response: Any) -> None:
        if not isinstance(exc, WatchDropped):  # a dropped stream just ends, with no error event
            await super()._stream_error(exc, raw_response)

    def count(self, *, exclude: tuple[str, ...] = ("events", "leases", "kopfpeerings")) -> int:
        return sum(1 for w in self.writes if w[1].split("/")[0] not in exclude)


def _number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def crd_resources() -> dict[str, kmock.ResourceInfo]:
    out: dict[str, kmock.ResourceInfo] = {}
    for text in _crd_texts():
        crd = yaml.safe_load(text)
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served"):
                continue
            out[f"{spec['group']}/{version['name']}/{spec['names']['plural']}"] = kmock.ResourceInfo(
                kind=spec["names"]["kind"],
                namespaced=spec["scope"] == "Namespaced",
                verbs=VERBS,
                subresources=set(version.get("subresources", {})),
            )
    return out


def _crd_texts() -> list[str]:
    folder = ROOT / "crds"
    if folder.is_dir():
        return [path.read_text() for path in sorted(folder.glob("*.yaml"))]
    from llmgw.api import crdgen

    return [text for _, text in sorted(crdgen.crd_files().items())]


OPTIONAL_APIS = {
    "gateway.networking.k8s.io/v1/httproutes": kmock.ResourceInfo(
        kind="HTTPRoute", namespaced=True, verbs=VERBS, subresources={"status"}
    ),
    "monitoring.coreos.com/v1/servicemonitors": kmock.ResourceInfo(
        kind="ServiceMonitor", namespaced=True, verbs=VERBS
    ),
}
"""CRDs a cluster may or may not have (the Gateway API's, the Prometheus Operator's), as their
discovery entries; `register(..., without=...)` leaves some out, as such a cluster does."""


def register(k: Emulator, *, without: tuple[str, ...] = ()) -> None:
    """Every resource the operator uses; `without`: keys of OPTIONAL_APIS this cluster lacks."""
    for key, info in OPTIONAL_APIS.items():
        if key not in without:
            k.resources[key] = info
    builtin = {
        "v1/namespaces": ("Namespace", False, set()),
        "v1/events": ("Event", True, set()),
        "v1/configmaps": ("ConfigMap", True, set()),
        "v1/secrets": ("Secret", True, set()),
        "v1/services": ("Service", True, set()),
        "apps/v1/deployments": ("Deployment", True, {"status"}),
        "discovery.k8s.io/v1/endpointslices": ("EndpointSlice", True, set()),
        "apiextensions.k8s.io/v1/customresourcedefinitions": ("CustomResourceDefinition", False, set()),
        "coordination.k8s.io/v1/leases": ("Lease", True, set()),
        # What a gateway owns with autoscaling and a disruption budget.
        "autoscaling/v2/horizontalpodautoscalers": ("HorizontalPodAutoscaler", True, {"status"}),
        "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", True, {"status"}),
        # Gateway pods, for rollout watching (no controller makes them: tests create them).
        "v1/pods": ("Pod", True, {"status"}),
        # kopf manages the webhook's configuration when the webhook is on.
        "admissionregistration.k8s.io/v1/validatingwebhookconfigurations": (
            "ValidatingWebhookConfiguration",
            False,
            set(),
        ),
    }
    for key, (kind, namespaced, subs) in builtin.items():
        k.resources[key] = kmock.ResourceInfo(
            kind=kind, namespaced=namespaced, verbs=VERBS, subresources=subs
        )
    for key, info in crd_resources().items():
        k.resources[key] = info
