"""The admission webhook: kopf validating handlers for the three kinds, served over TLS.

Each review is decided by `llmgw.core.admission` against the operator's own
indexes (the same world the reconciler renders from), so `kubectl apply` hears at
apply time what the object's status would say a moment later: an invalid object
or a fallback cycle is refused, the rest is admitted, with warnings for what will
be left out. The handlers have no side effects (`sideEffects: None`), so
`kubectl apply --dry-run=server` gets the same answer as a real apply.

TLS: with `--webhook-cert-dir` the server reads `tls.crt`, `tls.key` and, when
present, `ca.crt` from that folder, as a cert-manager Certificate's Secret mounts
them, and picks up renewed files by itself. Without it, the operator makes a
self-signed certificate at start (kept in a private temporary folder). Either way
kopf keeps the ValidatingWebhookConfiguration `validating.llmgateway.dev` up to
date with the URL and CA bundle; `failurePolicy` is Ignore unless asked for Fail,
so an operator that is down never blocks `kubectl apply`. The webhooks stay registered
when the operator stops (another replica may be serving them). Several replicas must
share one certificate: use `--webhook-cert-dir` there, since each process makes its own
self-signed one.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import datetime
import ipaddress
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp.web
import kopf

from llmgw import metrics
from llmgw.api import GROUP, VERSION
from llmgw.core import admission, objects

MANAGED = "validating.llmgateway.dev"
"""The ValidatingWebhookConfiguration kopf creates and keeps up to date."""
PLURALS = ("llmproviders", "fallbackchains", "llmgateways")
DENIED_CODE = 403
CERT_FILE, KEY_FILE, CA_FILE = "tls.crt", "tls.key", "ca.crt"


Raw = Mapping[str, Any]
Snapshot = tuple[
    dict[tuple[str, str, str], Raw], dict[str, dict[str, str]], dict[tuple[str, str], dict[str, int]]
]


class Reviewer:
    """The world as the indexes hold it, parsed once per object version and indexed once per change.

    Reviews between two changes of the inputs reuse the indexed world as it is. A watch
    event on an input marks it stale (`changed`) and, after a short pause, the world is
    indexed again in a worker thread, so on a large estate neither a review nor the event
    loop (the reconciler, other reviews, health checks) waits for it. A review that finds
    the world stale waits for one indexing that began after it arrived. Only what
    admission reads counts as a change of an object (its generation, which the API server
    bumps on spec changes, and its labels): the operator's own status writes cost a
    comparison of versions, not an indexing.
    """

    def __init__(self, debounce: float = 0.2, patience: float = 2.0) -> None:
        self.debounce = debounce
        self.patience = patience
        self.last_change = self.stale_since = 0.0
        self.stale = True
        self.parsed: dict[tuple[str, str, str], tuple[str, objects.Parsed | objects.Invalid]] = {}
        self.versions: dict[tuple[str, str, str], str] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self.ports: dict[tuple[str, str], dict[str, int]] = {}
        self.current: admission.World | None = None
        self.indexes: Mapping[str, Any] | None = None
        self.building: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None

    def changed(self, event: Mapping[str, Any] | None = None) -> None:
        """A watch event on an input (kopf's handler kwargs): unless it changes nothing that
        admission reads, index the world again once changes pause, before a review asks."""
        if event is not None:
            self.indexes = event
            if not self.stale and self.building is None and self._same(event):
                return  # e.g. the operator's own status write
        now = time.monotonic()
        if not self.stale:
            self.stale_since = now
        self.stale, self.last_change = True, now
        if self.timer is None and self.indexes is not None:
            with contextlib.suppress(RuntimeError):  # no running loop
                self.timer = asyncio.get_running_loop().call_later(self.debounce, self._ahead)

    def _same(self, event: Mapping[str, Any]) -> bool:
        """Whether an event on one of our kinds leaves the object as admission last indexed it."""
        body = event.get("body")
        resource = event.get("resource")
        if event.get("type") == "DELETED" or not isinstance(body, Mapping):
            return False
        if getattr(resource, "group", None) != GROUP:
            return False  # Namespaces and Services: rare, and read whole
        oid = objects.identity(body)
        return self.versions.get(oid) == _version(body.get("metadata") or {}, body)

    def _ahead(self) -> None:
        """Index ahead of reviews once changes have paused (a burst, like a GitOps sync or the
        first listing, is indexed once), or after `patience` of changes without a pause."""
        self.timer = None
        if not self.stale or self.building is not None:
            return
        now = time.monotonic()
        wait = self.debounce - (now - self.last_change)
        if wait > 0 and now - self.stale_since < self.patience:
            self.timer = asyncio.get_running_loop().call_later(wait, self._ahead)
            return
        self._start()

    def _start(self) -> asyncio.Task[None]:
        if self.building is None:
            self.building = asyncio.get_running_loop().create_task(self._build())
        return self.building

    async def world(self, indexes: Mapping[str, Any]) -> admission.World:
        """The current world; indexed again first when an input changed since the last indexing."""
        self.indexes = indexes
        if self.current is not None and not self.stale:
            return self.current
        if self.building is not None:  # began before this review: it may miss the latest change
            await asyncio.shield(self.building)
        if self.current is None or self.stale:
            await asyncio.shield(self._start())
        assert self.current is not None
        return self.current

    async def _build(self) -> None:
        try:
            self.stale = False  # an event from here on marks it stale again
            snapshot = _snapshot(self.indexes or {})
            await asyncio.to_thread(self._index, snapshot)
        finally:
            self.building = None

    def _index(self, snapshot: Snapshot) -> None:
        """Parse what changed and index the world; runs in a worker thread."""
        began = time.perf_counter()
        raws, namespaces, ports = snapshot
        versions = {oid: _version(raw.get("metadata") or {}, raw) for oid, raw in raws.items()}
        if (
            self.current is not None
            and versions == self.versions
            and namespaces == self.namespaces
            and ports == self.ports
        ):
            return
        parsed = dict(self.parsed)
        for oid in list(parsed):
            if oid not in versions:
                del parsed[oid]
        for oid, version in versions.items():
            cached = parsed.get(oid)
            if cached is None or cached[0] != version:
                parsed[oid] = (version, objects.parse(raws[oid]))
        estate = admission.build_estate((p for _version, p in parsed.values()), namespaces=namespaces)
        estate = dataclasses.replace(estate, service_ports=ports)
        self.parsed = parsed
        self.current = admission.World(estate)
        self.versions, self.namespaces, self.ports = versions, namespaces, ports
        metrics.ADMISSION_INDEX_SECONDS.observe(time.perf_counter() - began)

    async def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.building is not None:
            with contextlib.suppress(Exception):
                await self.building


def _snapshot(indexes: Mapping[str, Any]) -> Snapshot:
    """What admission reads of the indexes, copied on the event loop (kopf changes them there)."""
    raws: dict[tuple[str, str, str], Raw] = {}
    for name in ("providers", "chains", "gateways"):
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


def register(reg: kopf.OperatorRegistry, failure_policy: str = "Ignore") -> Reviewer:
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

    for selector in (*((GROUP, VERSION, p) for p in PLURALS), ("v1", "namespaces"), ("v1", "services")):
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
    settings.admission.server = server(port=port, host=host, addr=addr, cert_dir=cert_dir)


class Unreadable(Exception):
    """An AdmissionReview that kopf could not read."""


def unreadable(review: Any) -> str | None:
    """What in an AdmissionReview kopf would fail on (with a 500 and a traceback), in words;
    None when kopf can read it. No API server sends such a review; anyone may POST one."""
    if not isinstance(review, Mapping):
        return "the body is not an AdmissionReview: a JSON object is expected"
    request = review.get("request")
    if not isinstance(request, Mapping):
        return "the AdmissionReview holds no request"
    resource = request.get("resource")
    if not isinstance(resource, Mapping) or not all(
        isinstance(resource.get(k), str) for k in ("group", "version", "resource")
    ):
        return "request.resource must give the group, version and resource as strings"
    for key in ("object", "oldObject"):
        obj = request.get(key)
        if obj is not None and not (
            isinstance(obj, Mapping) and isinstance(obj.get("metadata", {}), Mapping)
        ):
            return f"request.{key} must be an object whose metadata is an object"
        if _deeper_than(obj, MAX_DEPTH):
            return (
                f"request.{key} nests deeper than {MAX_DEPTH} levels; no object of these kinds "
                "needs that (passthrough maps may nest 8 levels)"
            )
    return None


MAX_DEPTH = 200
"""Deeper objects are refused before kopf walks them: its recursive copies fail somewhere past
400 levels, at a depth that depends on the stack at the time, so the answer would too. Up to
here a review answers in words (passthrough maps may nest only 8 levels)."""


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and maps nest deeper than `limit`, without recursion."""
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, Mapping):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        todo.extend((child, depth + 1) for child in children)
    return False


class WebhookServer(kopf.WebhookServer):
    """kopf's webhook server, answering 400 rather than 500 (and a traceback in the log) to a
    body it cannot read: not UTF-8 or in an unknown charset, nested too deep for the JSON
    decoder, or not a review that kopf's engine can take apart (`unreadable`)."""

    @staticmethod
    async def _serve(fn: kopf.WebhookFn, http: aiohttp.web.Request) -> aiohttp.web.Response:
        async def guarded(
            request: Any,
            *,
            webhook: str | None = None,
            headers: dict[str, str] | None = None,
            sslpeer: dict[str, Any] | None = None,
        ) -> Any:
            problem = unreadable(request)
            if problem is not None:
                raise Unreadable(problem)
            return await fn(request, webhook=webhook, headers=headers, sslpeer=sslpeer)

        try:
            codecs.lookup(http.charset or "utf-8")
        except LookupError:
            raise aiohttp.web.HTTPBadRequest(reason="the body's charset is not known") from None
        try:
            response: aiohttp.web.Response = await kopf.WebhookServer._serve(guarded, http)
        except Unreadable as exc:
            raise aiohttp.web.HTTPBadRequest(reason=str(exc)) from None
        except UnicodeDecodeError:
            raise aiohttp.web.HTTPBadRequest(reason="the body is not UTF-8") from None
        except RecursionError:
            raise aiohttp.web.HTTPBadRequest(reason="the body is nested too deep") from None
        return response


def server(*, port: int, host: str | None, addr: str, cert_dir: str | None) -> kopf.WebhookServer:
    if cert_dir:
        folder = Path(cert_dir)
        missing = [n for n in (CERT_FILE, KEY_FILE) if not (folder / n).is_file()]
        if missing:
            raise kopf.PermanentError(
                f"--webhook-cert-dir {folder}: {', '.join(missing)} not found; mount the Secret of a "
                "cert-manager Certificate there, or leave the option out to use a self-signed certificate"
            )
        ca = folder / CA_FILE
        return WebhookServer(
            addr=addr,
            port=port,
            host=host,
            certfile=str(folder / CERT_FILE),
            pkeyfile=str(folder / KEY_FILE),
            cafile=str(ca) if ca.is_file() else None,
        )
    names = [n for n in (host, addr, "localhost", "127.0.0.1") if n]
    cert, key = self_signed(names)
    folder = Path(tempfile.mkdtemp(prefix="llmgw-webhook-"))
    (folder / CERT_FILE).write_bytes(cert)
    key_path = folder / KEY_FILE
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return WebhookServer(
        addr=addr, port=port, host=host, certfile=str(folder / CERT_FILE), pkeyfile=str(key_path)
    )


def self_signed(names: Iterable[str], days: int = 3650) -> tuple[bytes, bytes]:
    """A self-signed certificate (its own CA) for these DNS names and IPs, and its key, as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    dns: list[str] = []
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for name in dict.fromkeys(names):
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            dns.append(name)
        else:
            if not ip.is_unspecified:
                ips.append(ip)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (dns or [str(ips[0])])[0])])
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ip) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
