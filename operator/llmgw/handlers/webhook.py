"""The webhook's HTTPS server: kopf's own, guarded against unreadable bodies, and its certificate.

TLS: with `--webhook-cert-dir` the server reads `tls.crt`, `tls.key` and, when
present, `ca.crt` from that folder, as a cert-manager Certificate's Secret mounts
them, and picks up renewed files by itself. Without it, the operator makes a
self-signed certificate at start (kept in a private temporary folder). Several
replicas must share one certificate: use `--webhook-cert-dir` there, since each
process makes its own self-signed one. A subclass of `kopf.WebhookServer`, so it
lives with the handlers.
"""

from __future__ import annotations

import codecs
import datetime
import ipaddress
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp.web
import kopf

CERT_FILE, KEY_FILE, CA_FILE = "tls.crt", "tls.key", "ca.crt"


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
