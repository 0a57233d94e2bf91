"""The prober: each provider's model list on its own interval, and each gateway's Redis.

Probes run in their own tasks with a cap on how many run at once and a
timeout each, so a backend that hangs delays nobody: the reconciler reads the
last results and never waits for a probe. A failing probe backs off. Results
that change what a status or a render says wake the reconciler; Redis flips
only after several checks in a row agree (hysteresis), so a flapping Redis
cannot flap the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from llmgw import metrics, options
from llmgw.core import keys
from llmgw.core.backends import Hysteresis, Probe
from llmgw.core.estate import Estate
from llmgw.core.keys import Key
from llmgw.probes import discovery, redis

TICK = 0.1
MAX_BACKOFF = 300.0


@dataclasses.dataclass(frozen=True)
class Target:
    kind: str  # "models" or "redis"
    type: str
    where: str  # api base URL, or host:port
    interval: float


class Prober:
    def __init__(
        self,
        on_change: Callable[[], None],
        logger: logging.Logger | logging.LoggerAdapter[Any],
        *,
        interval_override: float | None = None,
        redis_interval: float = options.REDIS_INTERVAL_SECONDS,
        redis_threshold: int = options.REDIS_THRESHOLD,
        timeout: float = options.PROBE_TIMEOUT_SECONDS,
        concurrency: int = options.PROBE_CONCURRENCY,
    ) -> None:
        self.on_change = on_change
        self.logger = logger
        self.interval_override = interval_override
        self.redis_interval = redis_interval
        self.redis_threshold = redis_threshold
        self.timeout = timeout
        self.gate = asyncio.Semaphore(concurrency)
        self.targets: dict[tuple[str, Key], Target] = {}
        self.due: dict[tuple[str, Key], float] = {}
        self.failures: dict[tuple[str, Key], int] = {}
        self.running: set[tuple[str, Key]] = set()
        self.probes: dict[Key, Probe] = {}
        self.caches: dict[Key, Hysteresis] = {}
        self.client = httpx.AsyncClient(follow_redirects=False)
        self.task: asyncio.Task[None] | None = None
        self.children: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name="llmgw-prober")

    async def stop(self) -> None:
        for t in [self.task, *self.children]:
            if t is not None:
                t.cancel()
        for t in [self.task, *self.children]:
            if t is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        await self.client.aclose()

    def cache_available(self) -> dict[Key, bool]:
        return {k: h.value for k, h in self.caches.items()}

    def update(self, estate: Estate) -> None:
        """Probe what the estate asks for now; forget what it no longer does."""
        wanted: dict[tuple[str, Key], Target] = {}
        for p in estate.providers:
            if not (p.spec.enabled and p.spec.discovery.enabled) or p.spec.type not in discovery.PROBED_TYPES:
                continue
            key = keys.of(p)
            base = estate.endpoints[key].api_base
            if base is None:
                continue
            interval = self.interval_override or float(p.spec.discovery.interval_seconds)
            wanted[("models", key)] = Target("models", p.spec.type, base, interval)
        for gw in estate.gateways:
            redis_spec = gw.spec.cache.redis if gw.spec.cache is not None else None
            if redis_spec is not None:
                key = keys.of(gw)
                where = f"{redis_spec.host}:{redis_spec.port}"
                wanted[("redis", key)] = Target("redis", "redis", where, self.redis_interval)
        for tkey in list(self.targets):
            if tkey not in wanted:
                del self.targets[tkey]
                self.due.pop(tkey, None)
                self.failures.pop(tkey, None)
                if tkey[0] == "models":
                    self.probes.pop(tkey[1], None)
                else:
                    self.caches.pop(tkey[1], None)
        now = time.monotonic()
        for tkey, target in wanted.items():
            if self.targets.get(tkey) != target:
                self.targets[tkey] = target
                self.due[tkey] = now  # new or changed: probe at once
                self.failures.pop(tkey, None)
                if tkey[0] == "redis":
                    self.caches.setdefault(tkey[1], Hysteresis(threshold=self.redis_threshold))

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            for tkey, when in list(self.due.items()):
                if when <= now and tkey not in self.running and tkey in self.targets:
                    self.running.add(tkey)
                    task = asyncio.create_task(self._probe(tkey, self.targets[tkey]))
                    self.children.add(task)
                    task.add_done_callback(self.children.discard)
            await asyncio.sleep(TICK)

    async def _probe(self, tkey: tuple[str, Key], target: Target) -> None:
        try:
            async with self.gate:
                started = time.perf_counter()
                if target.kind == "models":
                    changed, ok = await self._models(tkey[1], target)
                else:
                    changed, ok = await self._redis(tkey[1], target)
                metrics.PROBE_SECONDS.labels(target.kind).observe(time.perf_counter() - started)
            if not ok:
                metrics.PROBE_ERRORS.labels(target.kind).inc()
                self.failures[tkey] = self.failures.get(tkey, 0) + 1
            else:
                self.failures.pop(tkey, None)
            fails = self.failures.get(tkey, 0)
            delay = (
                target.interval
                if target.kind == "redis" or not fails
                else min(MAX_BACKOFF, target.interval * 2 ** min(fails - 1, 5))
            )
            if tkey in self.targets:
                self.due[tkey] = time.monotonic() + delay
            if changed:
                self.on_change()
        except Exception as exc:  # pragma: no cover - a probe must never kill the prober
            self.logger.warning(f"probe of {target.where} failed unexpectedly: {exc!r}")
            self.due[tkey] = time.monotonic() + target.interval
        finally:
            self.running.discard(tkey)

    async def _models(self, key: Key, target: Target) -> tuple[bool, bool]:
        try:
            models = await discovery.list_models(self.client, target.type, target.where, self.timeout)
            result = Probe(models=models)
        except discovery.ProbeError as exc:
            result = Probe(error=str(exc))
        before = self.probes.get(key)
        self.probes[key] = result
        metrics.DISCOVERED_MODELS.labels(*key).set(len(result.models or ()))
        return before != result, result.models is not None

    async def _redis(self, key: Key, target: Target) -> tuple[bool, bool]:
        host, port = target.where.rsplit(":", 1)
        problem = await redis.ping(host, int(port), timeout=min(self.timeout, 2.0))
        before = self.caches.get(key, Hysteresis(threshold=self.redis_threshold))
        after = before.observe(problem is None)
        self.caches[key] = after
        metrics.CACHE_AVAILABLE.labels(*key).set(1 if after.value else 0)
        if after.value != before.value:
            state = "back" if after.value else f"unreachable ({problem})"
            self.logger.warning(f"Redis {target.where} of gateway {key[0]}/{key[1]} is {state}")
        return after.value != before.value, problem is None
