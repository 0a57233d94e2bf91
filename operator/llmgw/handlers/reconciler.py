"""The one reconciler: settle, gather a snapshot, run the pure pipeline, write the differences.

Pokes from any watch event mark the world dirty; the reconciler waits until
changes have been quiet for the settle window (bounded, so a steady stream
of changes cannot starve it), then renders every gateway from the indexes
and writes only what differs. Failed writes are retried with backoff; a
render that fails for one gateway never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import functools
import logging
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from llmgw import metrics, options
from llmgw.api.gateway import LLMGateway
from llmgw.core import (
    backends,
    conditions,
    desired,
    keys,
    news,
    objects,
    patches,
    pipeline,
    revisions,
    rollout,
    statuses,
)
from llmgw.core import estate as estate_mod
from llmgw.core.news import Mark
from llmgw.handlers import collector, companions, events, rollouts, statuswrites, watches
from llmgw.handlers import indexes as indexes_mod
from llmgw.handlers.indexes import Indexes
from llmgw.kube import leadership, secretversions
from llmgw.kube.client import Kube, KubeError, NotLeading
from llmgw.kube.watchcache import Change
from llmgw.probes.prober import Prober

MAX_BACKOFF = 60.0
INPUT_INDEXES = frozenset({"providers", "chains", "gateways"})
"""The indexes of the three kinds, whose events are judged by `news.mark`."""
REFUSED = frozenset({413, 422})
"""What the API server answers a revision ConfigMap it will never take (too large a request;
invalid): a permanent answer for those inputs, not retried until they change."""
PERMANENT = frozenset({"ConfigTooLarge", "ConfigRejected"})
"""Reasons of a failed apply that no retry can mend: only new inputs (a new render) can."""


@dataclasses.dataclass(frozen=True)
class Unstored:
    """Why the render's revision is not stored, for the gateway's Programmed condition."""

    reason: str
    message: str


def _values(index: Any) -> Iterable[Any]:
    for _key, store in list(index.items()):
        yield from list(store)


def _one(index: Any, key: Any) -> Any:
    store = index.get(key)
    if not store:
        return None
    return next(iter(store), None)


def _differing(
    wanted: Mapping[keys.ObjectId, dict[str, Any]],
    bodies: Mapping[keys.ObjectId, Mapping[str, Any]],
    now: str,
) -> dict[keys.ObjectId, dict[str, Any]]:
    """The wanted statuses, transition times merged, of the objects whose stored status differs."""
    out: dict[keys.ObjectId, dict[str, Any]] = {}
    for oid, want in wanted.items():
        body = bodies.get(oid)
        if body is None:
            continue  # the default gateway, which is no object
        old = body.get("status") or {}
        status = dict(want)
        status["conditions"] = conditions.merge(old.get("conditions"), status.get("conditions", []), now)
        if not conditions.same(old, status):
            out[oid] = status
    return out


def _statuses(
    estate: estate_mod.Estate,
    outcomes: list[pipeline.Outcome],
    gateway_statuses: Mapping[keys.ObjectId, dict[str, Any]],
    bodies: Mapping[keys.ObjectId, Mapping[str, Any]],
) -> dict[keys.ObjectId, dict[str, Any]]:
    """In a worker thread: every status the pass wants (the invalid-object gauges set from them),
    and of those, the ones that differ from the stored ones."""
    wanted = statuses.for_objects(estate, outcomes)
    wanted.update(gateway_statuses)
    for (kind, reason), count in _invalid_counts(wanted).items():
        metrics.INVALID_OBJECTS.labels(kind, reason).set(count)
    return _differing(wanted, bodies, _now())


@dataclasses.dataclass(frozen=True)
class Read:
    """What a pass read and rendered, before it writes."""

    bodies: dict[keys.ObjectId, Mapping[str, Any]]
    marks: dict[keys.ObjectId, news.Mark]
    estate: estate_mod.Estate
    gens: dict[keys.ObjectId, int | None]
    outcomes: list[pipeline.Outcome]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reconciler:
    def __init__(
        self, kube: Kube, opts: options.Options, logger: logging.Logger | logging.LoggerAdapter[Any]
    ) -> None:
        self.kube = kube
        self.settle = opts.settle_seconds
        self.max_settle = opts.settle_bound
        self.status_concurrency = opts.status_concurrency
        self.logger = logger
        self.indexes: Indexes | None = None
        self.dirty = asyncio.Event()
        self.last_poke = 0.0
        self.task: asyncio.Task[None] | None = None
        self.failures = 0
        # What this process wrote and the watches may not show yet.
        self.master_keys: set[str] = set()
        self.written_specs: dict[tuple[keys.Key, str], str] = {}
        self.created_cms: dict[keys.Key, dict[str, int]] = {}
        self.deleted_cms: set[tuple[keys.Key, str]] = set()
        self.layouts: dict[tuple[keys.Key, str], int] = {}
        """Shards of the revisions this process stored, until the watch shows their ConfigMap."""
        self.unstored: dict[keys.Key, tuple[tuple[str, tuple[str, ...]], Unstored]] = {}
        """Per gateway, the render and inputs whose revision cannot be stored, and why: not
        tried again until they change."""
        self.applied: dict[keys.Key, str] = {}
        self.announced: dict[keys.ObjectId, tuple[str, str]] = {}
        self.prober: Prober | None = None
        self.referenced_services: frozenset[keys.Key] = frozenset()
        self.referenced_secrets: frozenset[keys.Key] = frozenset()
        self.elector: leadership.Elector | None = None
        self.secret_versions: secretversions.SecretVersions | None = None
        """With --watch-secret-versions: Secrets' resourceVersions, from their metadata only."""
        self.watches: watches.Watches | None = None
        """The operator's own watches of providers, chains, Services and EndpointSlices."""
        self.held_events: list[tuple[Mapping[str, Any], str, str, str]] = []
        """The Events of the statuses this pass writes, posted once they are written."""
        self.marks: dict[keys.ObjectId, news.Mark] = {}
        """What the last pass read of each provider, chain and gateway (`news.mark`), its status
        as stored after this process's write."""
        self.written: dict[keys.ObjectId, news.Mark] = {}
        """What each object will look like once this process's status write comes back, until
        it does (it may come back only after the next pass has read the object without it)."""
        self.early: tuple[dict[str, dict[Any, list[Any]]], asyncio.Future[Read]] | None = None
        """The first pass's read, started by the first poke (`poke`)."""
        self.reading: list[tuple[keys.ObjectId, news.Mark]] | None = None
        """While a pass reads (in a thread, before its marks are in): the events judged no news
        by the last pass's marks, to be judged again by this one's."""
        self.consumed: dict[str, dict[Any, list[Any]]] = {}
        """What the last pass read of every other index, by index name and key."""
        self.passes = 0
        self.parsed: dict[keys.ObjectId, tuple[news.Mark, objects.Parsed | objects.Invalid]] = {}
        """Each input as the last pass parsed it (`estate.build`'s memo)."""
        self.rollouts = rollouts.Rollouts(self.poke)
        self.collector = collector.Collector()
        self.companions = companions.Companions(kube, self.written_specs, self.poke, logger)

    @classmethod
    def start(
        cls, kube: Kube, opts: options.Options, logger: logging.Logger | logging.LoggerAdapter[Any]
    ) -> Reconciler:
        rec = cls(kube, opts, logger)
        rec.prober = Prober(
            rec.poke,
            logger,
            interval_override=opts.probe_interval_seconds,
            redis_interval=opts.redis_interval_seconds,
            redis_threshold=opts.redis_threshold,
            timeout=opts.probe_timeout_seconds,
            concurrency=opts.probe_concurrency,
        )
        rec.prober.start()
        rec.collector.hold()
        asyncio.get_running_loop().call_later(collector.START_HOLD, rec.collector.resume)
        rec.task = asyncio.create_task(rec.run(), name="llmgw-reconciler")
        return rec

    async def stop(self) -> None:
        self.collector.release()
        self.rollouts.stop()
        self.companions.stop()
        if self.prober is not None:
            await self.prober.stop()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def poke(self, indexes: Indexes | None = None) -> None:
        if indexes is not None:
            self.indexes = indexes
        self.last_poke = time.monotonic()
        self.dirty.set()
        if not self.passes and self.early is None and self.indexes is not None and self._ready():
            # The first poke that finds kopf's indexes filled and every watch listed: the
            # reconciler's task may run only after a round of the event handlers woken with
            # it. The first pass's read starts now.
            self.early = self._start_read(self.indexes)

    @property
    def views(self) -> Mapping[str, Any]:
        """The watch caches' views, by index name (`indexes.of` merges them with kopf's)."""
        return self.watches.views if self.watches is not None else watches.EMPTY

    def _leading(self) -> bool:
        return self.elector is None or self.elector.is_leader

    def _ready(self) -> bool:
        """Whether this replica may render: it leads, kopf has filled its indexes (its first
        handler handed them over) and the operator's own watches have listed the world."""
        synced = self.watches is None or self.watches.synced
        return self.indexes is not None and self._leading() and synced

    def watched(self, name: str, change: Change[Any]) -> None:
        """A change seen by the operator's own watches: a provider or chain wakes the reconciler
        unless it is as the last pass read it; a Service or EndpointSlice only when a provider
        names its Service and what is read of it (named ports, ready endpoints) changed. The
        first lists wake nobody one object at a time: their end does (`lifecycle._watch`)."""
        if self.watches is not None and not self.watches.synced:
            return
        if name in ("providers", "chains"):
            body = change.value if change.value is not None else change.body
            if self.news(objects.identity(body), body, change.type):
                self.poke()
            return
        service = change.filed
        idx = self.indexes
        if idx is None or (service in self.referenced_services and self.changed(idx, name, service)):
            self.poke()

    def news(self, oid: keys.ObjectId, body: Mapping[str, Any], event: str | None) -> bool:
        """Whether an event on a provider, chain or gateway tells the next pass anything: not
        when the object is as the last pass read it (kopf's replay of its listing; the status
        this process wrote, coming back)."""
        if event == "DELETED":
            return True
        now = news.mark(body)
        if now == self.written.get(oid):
            del self.written[oid]
            return False
        if self.marks.get(oid) != now:
            return True
        if self.reading is not None:  # judged by the last pass's marks: again once this one's are in
            self.reading.append((oid, now))
        return False

    def changed(self, idx: Indexes, index: str, key: Any) -> bool:
        """Whether the entry `key` of the index `index` differs from what the last pass read."""
        if not self.passes:
            return True
        live = getattr(idx, index, None)
        now = list(live.get(key, ()) or ()) if live is not None else []
        return self.consumed.get(index, {}).get(key, []) != now

    def _consumed(self, idx: Indexes) -> dict[str, dict[Any, list[Any]]]:
        """What this pass reads of every index but the inputs' (`changed` compares with it)."""
        consumed: dict[str, dict[Any, list[Any]]] = {}
        for name in indexes_mod.INDEXES:
            live = getattr(idx, name, None)
            if name in INPUT_INDEXES or live is None:
                continue
            consumed[name] = {k: list(store) for k, store in list(live.items())}
        return consumed

    def _consume(self, marks: dict[keys.ObjectId, Mark]) -> None:
        """Remember what this pass read of the inputs, so that events bringing nothing new start no
        pass; an event judged while the pass was reading is judged again by these marks."""
        self.marks = marks
        self.written = {o: m for o, m in self.written.items() if o in marks and marks[o] != m}
        reading, self.reading = self.reading or [], None
        if any(marks.get(oid) != now for oid, now in reading):
            self.poke()

    async def run(self) -> None:
        while True:
            await self.dirty.wait()
            if not self._ready():  # a standby, or the first lists under way: their end pokes
                self.dirty.clear()
                continue
            started = time.monotonic()
            # The first pass starts at once: kopf runs no handler before every index is filled,
            # so the world is complete; what comes next is kopf's replay of its listing.
            while self.passes:
                quiet = time.monotonic() - self.last_poke
                waited = time.monotonic() - started
                if quiet >= self.settle or waited >= self.max_settle:
                    break
                await asyncio.sleep(min(self.settle - quiet, self.max_settle - waited))
            self.dirty.clear()
            try:
                await self.reconcile()
                self.collector.after_pass()
            except NotLeading:  # the Lease was lost mid-pass: the new leader writes the rest
                self.logger.info("no longer the leader: this pass stopped writing")
            except Exception as exc:  # never let one bad pass kill the loop
                self.failures += 1
                delay = min(MAX_BACKOFF, 0.5 * 2 ** min(self.failures, 7))
                metrics.RECONCILES.labels("all", "error").inc()
                self.logger.warning(f"reconcile failed ({exc}); retrying in {delay:.1f}s")
                asyncio.get_running_loop().call_later(delay, self.poke)
            # A pass that returns has set `failures` itself: 0, or one more when it must retry
            # (resetting it here would keep every retry at the first, shortest delay).

    async def reconcile(self) -> None:
        idx = self.indexes
        if idx is None:
            return
        if not self._leading():
            return  # a standby keeps its indexes warm and writes nothing
        if not self._ready():
            return  # the watches' first lists are under way: they poke once done
        began = time.perf_counter()
        self.passes += 1
        # On the event loop only what must be: taking the indexes' contents (kopf changes them
        # there). The rest runs in worker threads, in as few hops as the writes allow: on a large
        # estate it takes seconds, the loop must stay free for watch events, the webhook's
        # reviews and health checks, and each hop back waits its turn behind whatever the loop
        # has queued (at start-up, kopf's replay of every object: seconds a hop at 8,000).
        early, self.early = self.early, None
        consumed, reading = early if early is not None and self.passes == 1 else self._start_read(idx)
        self.consumed = consumed
        try:
            read = await reading
        except BaseException:
            self.reading = None
            raise
        self._consume(read.marks)
        bodies, estate, gens, outcomes = read.bodies, read.estate, read.gens, read.outcomes
        if self.prober is not None:
            self.prober.update(estate)
        retry = False
        gateway_statuses: dict[keys.ObjectId, dict[str, Any]] = {}
        for gw, outcome in zip(estate.gateways, outcomes, strict=True):
            applied = await self._apply(gw, outcome, idx, gens)
            if applied.error is not None and applied.error_reason not in PERMANENT:
                retry = True
            gateway_statuses[keys.id_of(gw)] = statuses.for_gateway(
                gw, outcome, applied, estate.backends.cache_available.get(keys.of(gw))
            )
        # The Secrets a gateway's pods read are those its render names.
        self.referenced_secrets = frozenset(
            (o.resolution.gateway.metadata.namespace, e.secret)
            for o in outcomes
            if o.resolution.gateway.spec.rollout_on_secret_change
            for e in o.rendered.env
        )
        for bad in estate.invalid:
            if bad.kind == "LLMGateway":
                gateway_statuses[(bad.kind, bad.namespace, bad.name)] = statuses.for_invalid_gateway(bad)
        # Which statuses differ from the stored ones is decided in a worker thread too: on an
        # unchanged estate that is thousands of comparisons and no write, which in the event
        # loop would hold up the webhook's reviews and the watches for as long.
        decide = functools.partial(_statuses, estate, outcomes, gateway_statuses, bodies)
        todo = await asyncio.to_thread(self.collector.call, decide)

        # Gateways last: a gateway's status sums up its providers and chains, so by the time it
        # says what it serves, each of them already says so too. Within each wave, writes
        # overlap (`status_concurrency` at once).

        async def write(oid: keys.ObjectId) -> bool:
            return await self._write_status(oid, bodies[oid], todo[oid])

        # The Events of what the statuses say go after the statuses: kopf posts each object's
        # Events from a task of its own, so the thousands of a first pass (an object's first
        # `Accepted` is news) would compete with its status writes at the API server.
        try:
            retry |= not await statuswrites.write(todo, write, self.status_concurrency)
        finally:
            held, self.held_events = self.held_events, []
            for event in held:
                events.post(*event)
        self._forget(estate, set(bodies))
        metrics.RECONCILE_SECONDS.observe(time.perf_counter() - began)
        metrics.RECONCILES.labels("all", "retry" if retry else "ok").inc()
        if retry:
            self.failures += 1
            delay = min(MAX_BACKOFF, 0.5 * 2 ** min(self.failures, 7))
            asyncio.get_running_loop().call_later(delay, self.poke)
        else:
            self.failures = 0

    def _start_read(self, idx: Indexes) -> tuple[dict[str, dict[Any, list[Any]]], asyncio.Future[Read]]:
        """Take what a pass reads from the indexes (on the event loop, where kopf changes them)
        and start the pure part on it in a worker thread; what the pass read of the other
        indexes, and the read under way. Events judged from now on are judged again by its marks."""
        raws = [*_values(idx.providers), *_values(idx.chains), *_values(idx.gateways)]
        namespaces = {}
        for name, store in list(idx.namespaces.items()):
            for labels in store:
                namespaces[name] = labels
        observed = self._observed(idx)
        consumed = self._consumed(idx)
        self.reading = []
        loop = asyncio.get_running_loop()
        read = functools.partial(self.collector.call, self._read, raws, namespaces, observed)
        return consumed, loop.run_in_executor(None, read)

    def _read(
        self,
        raws: list[Mapping[str, Any]],
        namespaces: Mapping[str, Mapping[str, str]],
        observed: tuple[dict[keys.Key, dict[str, int]], backends.Backends],
    ) -> Read:
        """In a worker thread: the pure part of a pass, up to each gateway's render."""
        bodies = {objects.identity(r): r for r in raws}
        marks = {oid: news.mark(r) for oid, r in bodies.items()}
        estate = estate_mod.build(raws, namespaces, *observed, memo=self.parsed)
        self._backend_metrics(estate)  # a gauge per provider
        gens = {oid: (r.get("metadata") or {}).get("generation") for oid, r in bodies.items()}
        outcomes = []
        for gw in estate.gateways:
            t0 = time.perf_counter()
            outcomes.append(pipeline.run(estate, gw))
            metrics.RENDER_SECONDS.observe(time.perf_counter() - t0)
        return Read(bodies, marks, estate, gens, outcomes)

    def _forget(self, estate: estate_mod.Estate, alive: set[keys.ObjectId]) -> None:
        """Drop what this process remembers of objects that are gone, so that a long-running
        operator's memory follows the estate, not everything it ever saw."""
        gateways = {(ns, name) for kind, ns, name in alive if kind == "LLMGateway"}
        uids = {uid for gw in estate.gateways if (uid := gw.metadata.uid)}
        for key in [k for k in self.announced if k not in alive]:
            del self.announced[key]
        for cache in (self.created_cms, self.applied, self.unstored):
            for gone in [k for k in cache if k not in gateways]:
                del cache[gone]
        self.layouts = {k: n for k, n in self.layouts.items() if k[0] in gateways}
        for spec in [k for k in self.written_specs if k[0] not in gateways]:
            del self.written_specs[spec]
        self.deleted_cms = {d for d in self.deleted_cms if d[0] in gateways}
        self.master_keys &= uids | {""}
        self.rollouts.forget(gateways)

    def _observed(self, idx: Indexes) -> tuple[dict[keys.Key, dict[str, int]], backends.Backends]:
        """Services, ready endpoints, probe results and caches, as the core reads them."""
        ports: dict[keys.Key, dict[str, int]] = {}
        for key, store in list(idx.backend_services.items()):
            for named in store:
                ports[key] = dict(named)
        ready: dict[keys.Key, int] = {}
        for key, counts in list(idx.endpointslices.items()):
            ready[key] = sum(int(n) for n in counts)
        watched = self.secret_versions
        versions: dict[keys.Key, str] = dict(watched.versions) if watched is not None else {}
        prober = self.prober
        return ports, backends.Backends(
            secret_versions=versions,
            services_known=True,
            ready_endpoints=ready,
            probes=dict(prober.probes) if prober is not None else {},
            cache_available=prober.cache_available() if prober is not None else {},
        )

    def _backend_metrics(self, estate: estate_mod.Estate) -> None:
        referenced: set[keys.Key] = set()
        for p in estate.providers:
            key = keys.of(p)
            metrics.DECLARED_MODELS.labels(*key).set(len(p.spec.models))
            service = estate.endpoints[key].service
            if service is not None:
                referenced.add(service)
                metrics.BACKEND_READY.labels(*key).set(estate.backends.ready_endpoints.get(service, 0))
        self.referenced_services = frozenset(referenced)

    async def _write_status(
        self, oid: keys.ObjectId, body: Mapping[str, Any], status: dict[str, Any]
    ) -> bool:
        """Write `status` (one of `_differing`'s) over the stored one."""
        old = body.get("status") or {}
        kind, namespace, name = oid
        self._announce(oid, body, status)
        seen = self.marks.get(oid)
        if seen is not None:  # before the write: its event may come before the answer does
            self.written[oid] = news.with_status(seen, news.merged(old, status))
        try:
            await self.kube.patch_status(kind, namespace, name, status)
        except BaseException as exc:
            self.written.pop(oid, None)  # not written: the stored status is still the old one
            if not isinstance(exc, KubeError) or isinstance(exc, NotLeading):
                raise
            if exc.status == 404:  # deleted meanwhile: the next event says so
                return True
            self.logger.warning(f"{kind} {namespace}/{name}: status not written: {exc}")
            return False
        return True

    def _announce(self, oid: keys.ObjectId, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """An Event when a condition that the README promises Events for changes."""
        for cond in status.get("conditions", []):
            if cond["type"] not in statuses.ANNOUNCED or cond["status"] == "Unknown":
                continue  # not known yet is no news
            mark = (cond["status"], cond["reason"])
            key = (*oid[1:], f"{oid[0]}/{cond['type']}")
            before = conditions.get((body.get("status") or {}).get("conditions"), cond["type"])
            if before is not None and (before.get("status"), before.get("reason")) == mark:
                continue
            if self.announced.get(key) == mark:
                continue
            self.announced[key] = mark
            kind = "Normal" if cond["status"] == "True" else "Warning"
            reason = cond["reason"] if cond["reason"] != cond["type"] else cond["type"]
            self.held_events.append((body, kind, reason, cond["message"]))

    async def _apply(
        self,
        gw: LLMGateway,
        outcome: pipeline.Outcome,
        idx: Indexes,
        gens: Mapping[keys.ObjectId, int | None],
    ) -> statuses.Rollout:
        key: keys.Key = (gw.metadata.namespace, gw.metadata.name)
        rendered = outcome.rendered
        live = _one(idx.deployments, key)
        try:
            if gw.spec.master_key_secret_ref is None and gw.metadata.uid not in self.master_keys:
                await self._create(desired.master_key_secret(gw, secrets.token_urlsafe(32)))
                self.master_keys.add(gw.metadata.uid or "")

            cms = self._config_maps(idx, key)
            shards = await self._store(gw, outcome, idx, gens, cms)
            if isinstance(shards, Unstored):
                return statuses.Rollout(
                    applied_hash=self.applied.get(key),
                    deployment=live,
                    plan=self.rollouts.last(gw),
                    error=shards.message,
                    error_reason=shards.reason,
                    **self.companions.known(gw, idx).fields(),
                )

            # Rollout watching: the render, or the last good revision when the render failed.
            status = (_one(idx.gateways, key) or {}).get("status")
            plan = self.rollouts.plan(gw, status, rendered, live, idx.pods, idx.configmaps, cms)
            running, mounts = self.rollouts.to_run(rendered, plan, idx.configmaps, key, shards)
            want = desired.deployment(gw, running, mounts)
            live_hash = revisions.template_hash(live)
            if live is None:  # with autoscaling, the one time the operator sets the replicas
                first = {**want, "spec": {"replicas": desired.initial_replicas(gw), **want["spec"]}}
                live = await self._create(first, conflict=want)
                self._rolled(gw, running.hash, None)
            elif self._differs(key, "Deployment", live, want):
                live = await self._write(want, live) or live
                if live_hash != running.hash:
                    self._rolled(gw, running.hash, live_hash)
            applied_hash = running.hash
            self.applied[key] = applied_hash
            self.rollouts.commit(gw, plan)

            svc = desired.service(gw)
            live_svc = _one(idx.services, key)
            if live_svc is None:
                if self.written_specs.get((key, "Service")) != desired.spec_hash(svc):
                    await self._create(svc)
            elif self._differs(key, "Service", live_svc, svc):
                await self._write(svc, live_svc)
            self.written_specs[(key, "Service")] = desired.spec_hash(svc)

            done = await self.companions.apply(gw, idx)
            await self._prune(gw, cms, rendered.hash, plan)
        except NotLeading:
            raise
        except KubeError as exc:
            self.logger.warning(f"LLMGateway {key[0]}/{key[1]}: {exc}; will retry")
            return statuses.Rollout(
                applied_hash=self.applied.get(key),
                deployment=live,
                error=str(exc),
                plan=self.rollouts.last(gw),
                **self.companions.known(gw, idx).fields(),
            )
        return statuses.Rollout(applied_hash=applied_hash, deployment=live, plan=plan, **done.fields())

    async def _store(
        self,
        gw: LLMGateway,
        outcome: pipeline.Outcome,
        idx: Indexes,
        gens: Mapping[keys.ObjectId, int | None],
        cms: dict[str, int],
    ) -> int | Unstored:
        """Store the render as its revision, writing only the ConfigMaps that do not exist (a split
        revision's shards before the ConfigMap that names them, so nothing ever names a missing
        one); the number of shards, or why the revision cannot be stored.

        A revision whose ConfigMap exists keeps the layout it was stored with (its annotations
        say so); one too large to store, or that the API server refused (413, 422), is not tried
        again until the render or its inputs change."""
        key = keys.of(gw)
        rendered = outcome.rendered
        own = revisions.name(gw.metadata.name, rendered.hash)
        shards = self.layouts.get((key, own))
        for row in idx.configmaps.get(key, ()) or ():
            if row["name"] == own and (stored := revisions.stored(row["annotations"])) is not None:
                shards = stored.shards
                self.layouts.pop((key, own), None)  # the watch shows it now
        if own in cms:
            shards = shards or 0
            if all(n in cms for n in revisions.names(gw.metadata.name, rendered.hash, shards)):
                self.unstored.pop(key, None)
                return shards
        inputs = statuses.inputs(gens, outcome.resolution.selected, gw)
        attempt = (rendered.hash, tuple(inputs))
        refused = self.unstored.get(key)
        if refused is not None and refused[0] == attempt:
            return refused[1]
        sequence = cms.get(own) or max(cms.values(), default=0) + 1
        # A split revision whose ConfigMap exists gets its missing shards written again, as split.
        bodies = desired.config_maps(gw, rendered, inputs, sequence, split=own in cms)
        if own in cms and len(bodies) - 1 != shards:
            return shards or 0  # stored by an operator that split otherwise: nothing to mend it with
        missing = [b for b in bodies if b["metadata"]["name"] not in cms]
        why = next((w for b in missing if (w := revisions.too_large(b)) is not None), None)
        if why is not None:
            unstored = Unstored(
                "ConfigTooLarge",
                f"revision {revisions.short(rendered.hash)} cannot be stored: {why}; the gateway keeps "
                "serving the previous revision until the inputs change",
            )
            self.unstored[key] = (attempt, unstored)
            return unstored
        # The shards at once, then the ConfigMap that names them.
        shard_bodies = [b for b in missing if b["metadata"]["name"] != own]
        for wave in (shard_bodies, [b for b in missing if b["metadata"]["name"] == own]):
            answers = await asyncio.gather(*(self._create_config_map(b) for b in wave))
            for body, refusal in zip(wave, answers, strict=True):
                name = body["metadata"]["name"]
                if refusal is None:
                    self.created_cms.setdefault(key, {})[name] = sequence
                    self.deleted_cms.discard((key, name))  # pruned before, wanted again
                    cms[name] = sequence
            rejected = next(((b, r) for b, r in zip(wave, answers, strict=True) if r is not None), None)
            if rejected is not None:
                body, exc = rejected
                unstored = Unstored(
                    "ConfigRejected",
                    f"the API server refused ConfigMap {body['metadata']['name']} of revision "
                    f"{revisions.short(rendered.hash)} (HTTP {exc.status}): {exc.message or exc}; the "
                    "gateway keeps serving the previous revision, and the operator tries again when "
                    "the inputs change",
                )
                self.logger.warning(f"LLMGateway {key[0]}/{key[1]}: {unstored.message}")
                self.unstored[key] = (attempt, unstored)
                return unstored
        self.unstored.pop(key, None)
        if shards is None or any(b["metadata"]["name"] == own for b in missing):
            shards = len(bodies) - 1  # the layout just stored
            self.layouts[(key, own)] = shards
        return shards

    async def _create_config_map(self, body: Mapping[str, Any]) -> KubeError | None:
        """Create a revision's ConfigMap; the API server's refusal (413, 422), or None."""
        try:
            await self._create(body)
        except KubeError as exc:
            if exc.status not in REFUSED:
                raise
            return exc
        return None

    def _rolled(self, gw: LLMGateway, new: str, old: str | None) -> None:
        key = keys.of(gw)
        metrics.ROLLOUTS.labels(*key).inc()
        metrics.REVISION.labels(*key).info({"revision": revisions.short(new), "hash": new})
        events.post(
            {
                "apiVersion": gw.api_version,
                "kind": gw.kind,
                "metadata": gw.metadata.model_dump(by_alias=True),
            },
            "Normal",
            "Rolled",
            f"the gateway Deployment now runs revision {revisions.short(new)}"
            + (f" (was {revisions.short(old)})" if old else ""),
        )

    def _config_maps(self, idx: Indexes, key: keys.Key) -> dict[str, int]:
        """name -> sequence of a gateway's revisions: the watch's view plus our own writes.

        Our own creates and deletes count only until the watch shows them; from then on the
        watch is the authority, so a revision someone else deletes is written again, and one
        pruned and wanted again later is created once, not on every pass.
        """
        out: dict[str, int] = {}
        for row in idx.configmaps.get(key, ()) or ():
            out[row["name"]] = revisions.sequence(row["annotations"])
        created = self.created_cms.get(key, {})
        for name in [n for n in created if n in out]:
            del created[name]  # the watch shows it now
        for name, seq in created.items():
            out[name] = seq
        for gone in [d for d in self.deleted_cms if d[0] == key]:
            if gone[1] in out:
                del out[gone[1]]
            else:
                self.deleted_cms.discard(gone)  # the watch shows the delete now
        return out

    async def _prune(self, gw: LLMGateway, cms: dict[str, int], current: str, plan: rollout.Plan) -> None:
        """Delete the revisions `revisions.prune` lets go, and nothing else."""
        key = keys.of(gw)
        doomed = revisions.prune(
            gw.metadata.name,
            cms,
            current=current,
            history=[r.revision for r in plan.history],
            keep=plan.keep,
            limit=gw.spec.revision_history_limit,
        )
        for name in doomed:
            try:
                await self.kube.delete_config_map(key[0], name)
            except KubeError as exc:
                if exc.status != 404:
                    raise
            self.deleted_cms.add((key, name))
            self.created_cms.get(key, {}).pop(name, None)
            self.layouts.pop((key, name), None)

    def _differs(self, key: keys.Key, kind: str, live: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
        return companions.differs(self.written_specs, key, kind, live, want)

    async def _create(self, body: Mapping[str, Any], conflict: Mapping[str, Any] | None = None) -> Any:
        """Create `body`; where it exists already, patch `conflict` (default: `body`) onto it."""
        try:
            owned = body["kind"] in ("Deployment", "Service")
            result = await self.kube.create(patches.annotated(body) if owned else body)
        except KubeError as exc:
            if exc.status != 409:  # already there: another pass or a restart made it
                raise
            if owned:
                return await self._write(conflict or body, None)
            return None
        return _plain(self.kube, result)

    async def _write(self, body: Mapping[str, Any], live: Mapping[str, Any] | None) -> Any:
        """Patch `body` over `live`, taking away what the operator set before and sets no more."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        result = await self.kube.patch(patches.merge_patch(live or {}, body))
        self.written_specs[(key, body["kind"])] = meta["annotations"][desired.SPEC_HASH]
        return _plain(self.kube, result)


def _plain(kube: Kube, result: Any) -> Any:
    if result is None or isinstance(result, dict):
        return result
    return kube.api.sanitize_for_serialization(result)


def _invalid_counts(wanted: Mapping[keys.ObjectId, Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for (kind, _ns, _name), status in wanted.items():
        accepted = conditions.get(status.get("conditions"), statuses.ACCEPTED)
        if accepted is not None and accepted["status"] == "False":
            counts[(kind, accepted["reason"])] = counts.get((kind, accepted["reason"]), 0) + 1
    return counts
