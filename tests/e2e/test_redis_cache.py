"""LiteLLM's Redis cache follows Redis: a real Redis, a real Prober, a real LiteLLM proxy.

The gateway asks for a Redis cache with a password from a Secret. The test
drives what the operator does: a real `Prober` checks a real `redis-server`
(small interval, threshold 3), the estate is built with the prober's verdict
as `Backends.cache_available`, exactly as the reconciler builds it, and
`pipeline.run` renders the config that a real `litellm` proxy is started on
(a new config means new pods: LiteLLM does not hot-reload). The model server
behind it is a fake that counts what it received.

- Redis up: the config has the cache; the same request twice reaches the
  backend once, the second answer comes from the cache, and the entry is in
  Redis with the gateway's TTL (so the password reached LiteLLM).
- Redis down: after `threshold` failed checks in a row, and not before, the
  prober flips; the new render has no cache (another hash), and a proxy on it
  answers every request from the backend.
- Redis back: the prober flips back after `threshold` good checks; the render
  is byte-identical to the first one; a fresh proxy on it reads what the first
  one wrote to Redis, and caches again.
- A brief outage (fewer failed checks than the threshold) flips nothing.

What LiteLLM 1.106.2 does that the test relies on (read in
.venv-litellm/lib/python3.11/site-packages/litellm): `litellm_settings.cache:
true` with `cache_params` is all it needs (`proxy/proxy_server.py`, the
`key == "cache"` branch, resolves `os.environ/` values and builds
`Cache(**cache_params)`); the cache is on by default for chat completions
(`Cache(mode=CacheMode.default_on, supported_call_types=
DEFAULT_CACHING_SUPPORTED_CALL_TYPES)`, `types/caching.py`), so no
`supported_call_types` or `mode` is needed. The proxy puts a per-process
in-memory layer in front of Redis (`caching/caching_handler.py`,
`LLMCachingHandler.__init__` wraps the RedisCache in a `DualCache`), so a
repeat in the same process does not prove Redis serves: the test checks the
entry in Redis and has a second process read it. A hit carries the header
`x-litellm-cache-key`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import string
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmgw import manifests
from llmgw.core import estate, pipeline, render
from llmgw.core.backends import Backends
from llmgw.demo import backends
from llmgw.probes import prober
from llmgw.probes import redis as redis_probe

from . import conftest, fakes, proxy, redis_server
from .redis_server import RedisServer

pytestmark = pytest.mark.e2e

GATEWAY = ("e2e", "cache")
MODEL = "cached-chat"
BACKEND_MODEL = "fake-cached-model"
TTL_SECONDS = 600
INTERVAL_S = 0.2  # the prober's Redis interval
THRESHOLD = 3  # checks in a row before the cache flips
FLIP_TIMEOUT_S = 10.0
MASTER_SECRET = ("cache-master-key", "master-key")  # the Secret the operator generates
REDIS_SECRET = ("redis", "password")
CACHE_KEY = re.compile(r"[0-9a-f]{64}")

MANIFESTS = string.Template(
    """\
apiVersion: llmgateway.dev/v1alpha1
kind: LLMGateway
metadata: {name: cache, namespace: e2e}
spec:
  numRetries: 0
  timeoutSeconds: 20
  litellmSettings:
    disable_hf_tokenizer_download: true  # no network here; see tests/e2e/estate/gateway.yaml
  cache:
    redis:
      host: 127.0.0.1
      port: $redis_port
      passwordSecretRef: {name: redis, key: password}
    ttlSeconds: $ttl
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: fake, namespace: e2e}
spec:
  type: vllm
  endpoint: {url: "$backend_url"}
  models:
    - name: $model
      backendModel: $backend_model
"""
)


# -- Redis, the backend, the manifests --------------------------------------------


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real Redis with a password, so the `os.environ/` password path is exercised."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(redis_server.binary(), workdir, password=secrets.token_hex(16))
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def backend() -> Iterator[backends.FakeBackend]:
    fake = backends.FakeBackend("cache", (BACKEND_MODEL,))
    with fakes.serving(fake):
        yield fake


@pytest.fixture
def manifest_dir(tmp_path: Path, redis: RedisServer, backend: backends.FakeBackend) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "cache.yaml").write_text(
        MANIFESTS.substitute(
            redis_port=redis.port,
            ttl=TTL_SECONDS,
            backend_url=backend.url,
            model=MODEL,
            backend_model=BACKEND_MODEL,
        )
    )
    return folder


# -- the prober, watched ----------------------------------------------------------


class Watched:
    """A real Prober on the real Redis, with a record of its checks and of the flips they caused.

    `redis.ping` is wrapped, not replaced: every check still talks to Redis; the
    wrapper only records what it answered (None when Redis is up).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.checks: list[str | None] = []
        self.flips: list[tuple[int, bool]] = []  # (checks done when it flipped, the new value)
        real_ping = redis_probe.ping

        async def ping(host: str, port: int, timeout: float = 2.0) -> str | None:
            problem = await real_ping(host, port, timeout=timeout)
            self.checks.append(problem)
            return problem

        monkeypatch.setattr(redis_probe, "ping", ping)
        self.prober = prober.Prober(
            self._changed,
            logging.getLogger(__name__),
            redis_interval=INTERVAL_S,
            redis_threshold=THRESHOLD,
            timeout=2.0,
        )

    def _changed(self) -> None:
        """What wakes the reconciler; here it records the flip."""
        self.flips.append((len(self.checks), self.available()))

    def available(self) -> bool:
        return self.prober.cache_available()[GATEWAY]

    def run_length(self, up: bool) -> int:
        """How many of the latest checks in a row found Redis up (or down)."""
        n = 0
        for problem in reversed(self.checks):
            if (problem is None) != up:
                break
            n += 1
        return n

    def assert_flipped_after_threshold(self, to: bool) -> None:
        """The last flip came with the THRESHOLD-th agreeing check in a row: not sooner, not later."""
        done, value = self.flips[-1]
        assert value is to
        assert done > THRESHOLD, f"no check before the streak: {self.checks}"
        streak = [p is None for p in self.checks[done - THRESHOLD : done]]
        assert streak == [to] * THRESHOLD, f"the flip came sooner than {THRESHOLD} checks: {self.checks}"
        assert (self.checks[done - THRESHOLD - 1] is None) is not to, (
            f"the flip came later than the {THRESHOLD}th agreeing check: {self.checks}"
        )


@pytest.fixture
async def watched(monkeypatch: pytest.MonkeyPatch, manifest_dir: Path) -> AsyncIterator[Watched]:
    w = Watched(monkeypatch)
    w.prober.update(manifests.load([manifest_dir]).estate())
    w.prober.start()
    try:
        # The first check: until then the operator assumes the cache is up.
        await until(lambda: len(w.checks) >= 1, "the prober's first Redis check")
        # Redis wants a password the prober does not have: its NOAUTH error still proves it is up.
        assert all(c is None for c in w.checks), w.checks
        assert w.available()
        yield w
    finally:
        await w.prober.stop()


async def until(condition: Callable[[], bool], what: str, timeout: float = FLIP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)
        await asyncio.sleep(0.02)


# -- the render, as the reconciler does it --------------------------------------


def operator_render(manifest_dir: Path, w: Watched) -> render.Rendered:
    """Build the estate with the prober's verdict and render the gateway, as `Reconciler.reconcile` does."""
    raws = manifests.load([manifest_dir]).raws
    built = estate.build(
        raws, backends=Backends(services_known=False, cache_available=w.prober.cache_available())
    )
    w.prober.update(built)
    (gateway,) = [g for g in built.gateways if (g.metadata.namespace, g.metadata.name) == GATEWAY]
    return pipeline.run(built, gateway).rendered


def cli_render(manifest_dir: Path) -> str:
    """`llmgw render`, offline: it cannot probe Redis and assumes the cache is up."""
    done = conftest.llmgw_render(manifest_dir)
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- the LiteLLM proxy --------------------------------------------------------------


def chat(gateway: proxy.Proxy, content: str) -> httpx.Response:
    """Ask the cached model; the answer must be the backend's, from it or from the cache."""
    with gateway.client() as client:
        response = client.post(
            "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": content}]}
        )
    assert response.status_code == 200, f"{response.status_code} {response.text}\n{gateway.tail()}"
    assert response.json()["choices"][0]["message"]["content"] == backends.answer_text("cache", BACKEND_MODEL)
    return response


@pytest.fixture
def proxies(
    litellm_bin: Path, tmp_path: Path, redis: RedisServer
) -> Iterator[Callable[[render.Rendered], proxy.Proxy]]:
    """Make proxies on renders (not started: `start` blocks, run it in a thread), with the env
    a pod of the gateway's Deployment gets: each variable the render lists, from the Secret key
    it names (the Deployment's secretKeyRef). Every one is terminated at the end."""
    made: list[proxy.Proxy] = []
    assert redis.password is not None
    cluster_secrets = {MASTER_SECRET: proxy.MASTER_KEY, REDIS_SECRET: redis.password}

    def make(rendered: render.Rendered) -> proxy.Proxy:
        assert proxy.header_secrets(rendered.text).keys() == {e.name for e in rendered.env}
        workdir = tmp_path / f"litellm-{len(made) + 1}"
        workdir.mkdir()
        (workdir / "config.yaml").write_text(rendered.text)
        variables = {e.name: cluster_secrets[(e.secret, e.key)] for e in rendered.env}
        made.append(proxy.Proxy(litellm_bin, workdir / "config.yaml", {**variables, "HF_HUB_OFFLINE": "1"}))
        return made[-1]

    try:
        yield make
    finally:
        for each in made:
            each.close()


# -- the tests ----------------------------------------------------------------------


def cache_entries(redis: RedisServer) -> dict[str, int]:
    """The response cache's keys in Redis, with their remaining TTL in seconds.

    LiteLLM also uses the cache's Redis for its own coordination (usage counters,
    `daily_metrics_report_sent`; `init_cache` in proxy/proxy_server.py returns it
    as the coordination Redis): those keys are left out. A response's key is a
    SHA-256 (`Cache.get_cache_key` in caching/caching.py).
    """
    keys = redis.command("KEYS", "*")
    assert isinstance(keys, list)
    return {str(k): int(str(redis.command("TTL", str(k)))) for k in keys if CACHE_KEY.fullmatch(str(k))}


async def written(redis: RedisServer, count: int, gateway: proxy.Proxy) -> dict[str, int]:
    """The cache's entries once there are `count`: LiteLLM writes them in a task of its own
    after it has answered (`create_cache_write_task` in caching/caching_handler.py)."""
    deadline = time.monotonic() + 5.0
    while len(entries := cache_entries(redis)) < count:
        if time.monotonic() > deadline:
            pytest.fail(
                f"{len(entries)} cache entries in Redis, not {count} (a wrong password?); "
                f"the proxy's log:\n{gateway.tail()}",
                pytrace=False,
            )
        await asyncio.sleep(0.05)
    assert len(entries) == count, entries
    return entries


async def test_the_cache_follows_redis(
    watched: Watched,
    manifest_dir: Path,
    redis: RedisServer,
    backend: backends.FakeBackend,
    proxies: Callable[[render.Rendered], proxy.Proxy],
) -> None:
    # -- Redis up: the render has the cache, and LiteLLM caches in Redis -----------
    first = operator_render(manifest_dir, watched)
    litellm_settings: dict[str, Any] = dict(first.config["litellm_settings"])
    assert litellm_settings["cache"] is True
    assert litellm_settings["cache_params"] == {
        "type": "redis",
        "host": "127.0.0.1",
        "port": redis.port,
        "ttl": TTL_SECONDS,
        "password": f"os.environ/{render.REDIS_PASSWORD_ENV}",
    }
    assert f"#   {render.REDIS_PASSWORD_ENV}: Secret redis, key password\n" in first.text
    assert redis.password is not None
    assert redis.password not in first.text
    # The CLI, which cannot probe, writes the same bytes as the operator with Redis up.
    assert cli_render(manifest_dir) == first.text

    one = proxies(first)
    await asyncio.to_thread(one.start)
    miss = chat(one, "What is a cache?")
    assert backend.counts()[BACKEND_MODEL] == 1
    assert "x-litellm-cache-key" not in miss.headers
    ((key, ttl),) = (await written(redis, 1, one)).items()
    assert TTL_SECONDS - 30 < ttl <= TTL_SECONDS, "the entry lives ttlSeconds"
    hit = chat(one, "What is a cache?")
    assert backend.counts()[BACKEND_MODEL] == 1, "the second identical request must come from the cache"
    assert hit.headers.get("x-litellm-cache-key") == key
    # Keep what the first proxy wrote across the restart below, as a Redis with persistence would.
    assert redis.command("SAVE") == "OK"

    # -- Redis down: after THRESHOLD failed checks the render drops the cache -------
    redis.stop()
    await until(lambda: not watched.available(), "the prober to see Redis down")
    watched.assert_flipped_after_threshold(False)
    without = operator_render(manifest_dir, watched)
    assert "cache" not in without.config["litellm_settings"]
    assert "cache_params" not in without.config["litellm_settings"]
    assert render.REDIS_PASSWORD_ENV not in {e.name for e in without.env}
    assert render.REDIS_PASSWORD_ENV not in without.text
    assert without.hash != first.hash
    # Until the new pods are ready the old one keeps answering, Redis or not
    # (a new question, so not from its in-memory layer either).
    chat(one, "Still there without Redis?")
    assert backend.counts()[BACKEND_MODEL] == 2

    two = proxies(without)
    await asyncio.to_thread(two.start)
    one.close()  # a rolling update: the old pod goes once the new one is up
    before = backend.counts()[BACKEND_MODEL]
    for _ in range(2):
        assert "x-litellm-cache-key" not in chat(two, "What is a cache?").headers
    assert backend.counts()[BACKEND_MODEL] == before + 2, "without a cache every request reaches the backend"

    # -- Redis back: after THRESHOLD good checks the render is the first one again --
    redis.start()
    await until(watched.available, "the prober to see Redis back")
    watched.assert_flipped_after_threshold(True)
    again = operator_render(manifest_dir, watched)
    assert again.text == first.text
    assert again.hash == first.hash
    assert key in cache_entries(redis), "the entry the first proxy wrote is back from the dump"

    three = proxies(again)
    await asyncio.to_thread(three.start)
    two.close()
    before = backend.counts()[BACKEND_MODEL]
    # A new process, so its in-memory layer is empty: this answer comes from Redis,
    # written there by the first proxy (the cache is shared across pods).
    assert chat(three, "What is a cache?").headers.get("x-litellm-cache-key") == key
    assert backend.counts()[BACKEND_MODEL] == before
    # And it caches new answers again.
    chat(three, "Is the cache back?")
    assert backend.counts()[BACKEND_MODEL] == before + 1
    await written(redis, 2, three)
    assert chat(three, "Is the cache back?").headers.get("x-litellm-cache-key")
    assert backend.counts()[BACKEND_MODEL] == before + 1

    # Two flips in all, down and back: no flapping while the proxies started.
    assert [value for _, value in watched.flips] == [False, True]


async def test_a_brief_outage_flips_nothing(watched: Watched, manifest_dir: Path, redis: RedisServer) -> None:
    first = operator_render(manifest_dir, watched)
    redis.stop()
    # One check short of the threshold, then Redis is back.
    await until(lambda: watched.run_length(up=False) >= THRESHOLD - 1, "failed checks")
    assert watched.available(), f"{THRESHOLD - 1} failed checks must not flip the cache"
    redis.start()
    await until(lambda: watched.run_length(up=True) >= THRESHOLD, "good checks")
    assert watched.flips == []
    assert watched.available()
    assert operator_render(manifest_dir, watched).hash == first.hash
