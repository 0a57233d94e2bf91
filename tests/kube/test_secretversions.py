"""`kube.secretversions` under the client's rate limiter: every list page and every watch
(re)connect takes a token from `Kube.limiter`, and a 429 is asked again after its
`Retry-After`, as `Kube`'s own calls are.

The requests are real HTTP, through the official client configured as `llmgw run` configures
it (`Kube.throttle`), to a loopback server that answers from a script; the limiter's clock
and every wait are the test's (`Clock`): nothing here sleeps for real. What the server sees
is the official client's requests, urllib3's retries included: a 429 that urllib3 sleeps out
itself would show up as a request the limiter never counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import kubernetes
import pytest

from llmgw import metrics
from llmgw.kube import client, ratelimit, secretversions

from .test_ratelimit import Clock, bucket

Reply = tuple[int, dict[str, str], bytes]


def too_many(retry_after: str) -> Reply:
    body = {"kind": "Status", "code": 429, "reason": "TooManyRequests"}
    return 429, {"Retry-After": retry_after}, json.dumps(body).encode()


def meta(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ai", "name": name, "resourceVersion": version}}


def page(secrets: Sequence[tuple[str, str]], version: str, cont: str = "") -> Reply:
    """A PartialObjectMetadataList page of (name, resourceVersion) in namespace `ai`."""
    listed = {"resourceVersion": version, **({"continue": cont} if cont else {})}
    body = {"kind": "PartialObjectMetadataList", "metadata": listed, "items": [meta(*s) for s in secrets]}
    return 200, {}, json.dumps(body).encode()


def events(*raw: dict[str, Any]) -> Reply:
    return 200, {}, b"".join(json.dumps(e).encode() + b"\n" for e in raw)


class Server(http.server.ThreadingHTTPServer):
    """Answers `GET .../secrets` from two scripts, lists and watches, and records each request."""

    daemon_threads = True

    def __init__(self, lists: list[Reply], watches: list[Reply]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.scripts = {"list": lists, "watch": watches}
        self.requests: list[tuple[str, dict[str, str], str]] = []
        """(verb, query, Accept) of every request, in order."""
        self.held = threading.Event()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        assert url.path == "/api/v1/namespaces/ai/secrets", url.path
        query = dict(urllib.parse.parse_qsl(url.query))
        verb = "watch" if query.get("watch") == "true" else "list"
        self.server.requests.append((verb, query, self.headers.get("Accept", "")))
        script = self.server.scripts[verb]
        if not script:  # past the script: a watch held open, with no event, until the test ends
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.flush()
            self.server.held.set()
            self.server.release.wait(10)
            return
        status, headers, body = script.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving(lists: list[Reply], watches: list[Reply]) -> Iterator[Server]:
    server = Server(lists, watches)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def kube(server: Server, clock: Clock, rate: float, burst: int) -> Iterator[client.Kube]:
    """A `Kube` throttled as `llmgw run` throttles it, its limiter then put on the test's clock."""
    cfg = kubernetes.client.Configuration()
    cfg.host = server.url
    k = client.Kube(kubernetes.client.ApiClient(cfg), sleep=clock.sleep)
    k.throttle(rate, burst, 1)
    k.limiter = bucket(rate, burst, clock)
    try:
        yield k
    finally:
        assert k.executor is not None
        k.executor.shutdown()
        k.api.rest_client.pool_manager.clear()


def errors_429(verb: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "llmgw_api_errors_total", {"verb": verb, "resource": "secrets", "status": "429"}
    )
    return value or 0.0


async def until(flag: threading.Event, seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not flag.is_set():
            await asyncio.sleep(0.01)


async def test_relists_take_tokens_and_429s_are_waited_out(caplog: pytest.LogCaptureFixture) -> None:
    lists = [
        too_many("2"),
        page([("a", "1")], "10", cont="next"),
        page([("b", "2")], "10"),
        page([("b", "12")], "20"),  # the relist after 410 Gone: a and c are gone
    ]
    watches = [
        too_many("1"),
        events(
            {"type": "ADDED", "object": meta("c", "11")},
            {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}},
        ),
    ]
    before = errors_429("list"), errors_429("watch")
    clock = Clock()
    changes: list[secretversions.Key] = []
    caplog.set_level(logging.INFO)
    with serving(lists, watches) as server, kube(server, clock, rate=2, burst=1) as k:
        sv = secretversions.SecretVersions(k, ("ai",), changes.append, logging.getLogger("test-sv"))
        sv.start()
        try:
            assert await sv.synced(10)
            await until(server.held)  # the watch after the relist, open
        finally:
            await sv.stop()

    assert [(verb, q.get("continue"), q.get("resourceVersion")) for verb, q, _ in server.requests] == [
        ("list", None, None),  # 429, Retry-After: 2
        ("list", None, None),
        ("list", "next", None),
        ("watch", None, "10"),  # 429, Retry-After: 1
        ("watch", None, "10"),  # c added, then 410 Gone
        ("list", None, None),
        ("watch", None, "20"),  # held open
    ]
    assert all(a == secretversions.LIST_ACCEPT for v, _, a in server.requests if v == "list")
    # At 2 tokens a second (burst 1), on the test's clock: each request waits for its token,
    # the relist and its watch too, and each 429 waits its Retry-After (by when the bucket has
    # refilled, so the retry's own token is due at once).
    assert [round(s, 9) for s in clock.slept] == [
        2.0,  # the first page's 429
        0.5,  # the second page's token
        0.5,  # the watch's token
        1.0,  # the watch's 429
        0.5,  # the relist's token
        0.5,  # the second watch's token
    ]
    assert sv.versions == {("ai", "b"): "12"}
    assert changes == [("ai", "a"), ("ai", "b"), ("ai", "c"), ("ai", "a"), ("ai", "c"), ("ai", "b")]
    assert (errors_429("list"), errors_429("watch")) == (before[0] + 1, before[1] + 1)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no failure, no backoff


async def test_429s_beyond_the_retries_reach_the_watchers_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """After `Kube.retries` 429s in a row the list fails like any error, and the watcher's own
    backoff takes over (one real second here) before it lists again."""
    lists = [too_many("0") for _ in range(client.RETRIES_429 + 1)] + [page([("a", "1")], "5")]
    clock = Clock()
    with serving(lists, []) as server, kube(server, clock, rate=0, burst=1) as k:
        sv = secretversions.SecretVersions(k, ("ai",), lambda key: None, logging.getLogger("test-sv"))
        sv.start()
        try:
            assert await sv.synced(10)  # after one real backoff of 1 s
            await until(server.held)
        finally:
            await sv.stop()
    verbs = [verb for verb, _, _ in server.requests]
    assert verbs == ["list"] * (client.RETRIES_429 + 2) + ["watch"]
    assert clock.slept == [0.0] * client.RETRIES_429  # each Retry-After: 0, then the caller's
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert failed == ["list of Secrets' metadata in ai failed (HTTP 429 Too Many Requests); retrying in 1.0s"]
    assert sv.versions == {("ai", "a"): "1"}


def test_urllib3_leaves_429s_to_the_limiter() -> None:
    """Left alone, urllib3 sleeps a GET's (or a PUT's, a DELETE's) Retry-After out itself, in the
    worker thread, without a token and without a bound; `throttle` turns that off."""
    k = client.Kube(kubernetes.client.ApiClient())
    pool = k.api.rest_client.pool_manager
    assert "retries" not in pool.connection_pool_kw  # urllib3's default Retry(3) applies
    k.throttle(10, 10, 1)
    retries = pool.connection_pool_kw["retries"]
    assert retries.respect_retry_after_header is False
    assert retries.total == 3  # connect and read retries as before
    assert not retries.is_retry("GET", 429, has_retry_after=True)
    assert k.executor is not None
    k.executor.shutdown()

    pool.connection_pool_kw["retries"] = 5
    ratelimit.own_retry_after(pool)
    assert pool.connection_pool_kw["retries"].total == 5
    assert pool.connection_pool_kw["retries"].respect_retry_after_header is False
