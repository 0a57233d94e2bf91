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
import logging
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from llmgw import metrics
from llmgw.api.gateway import LLMGateway
from llmgw.core import backends, conditions, desired, objects, pipeline, render, statuses
from llmgw.core import estate as estate_mod
from llmgw.handlers import probing, rollback
from llmgw.kube.client import Kube, KubeError

Key = tuple[str, str]
MAX_BACKOFF = 60.0


@dataclasses.dataclass(frozen=True)
class Indexes:
    """kopf's indexes of the world, handed over by the event handlers."""

    providers: Any
    chains: Any
    gateways: Any
    namespaces: Any
    deployments: Any
    configmaps: Any
    services: Any
    backend_services: Any
    endpointslices: Any
    secret_versions: Any = None
    pods: Any = None


def _values(index: Any) -> Iterable[Any]:
    for _key, store in list(index.items()):
        yield from list(store)


def _one(index: Any, key: Any) -> Any:
    store = index.get(key)
    if not store:
        return None
    return next(iter(store), None)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reconciler:
    def __init__(self, kube: Kube, options: Any, logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        self.kube = kube
        self.settle = float(options.settle_seconds)
        self.max_settle = max(float(options.max_settle_seconds), self.settle)
        self.logger = logger
        self.indexes: Indexes | None = None
        self.dirty = asyncio.Event()
        self.last_poke = 0.0
        self.task: asyncio.Task[None] | None = None
        self.failures = 0
        # What this process wrote and the watches may not show yet.
        self.master_keys: set[str] = set()
        self.written_specs: dict[tuple[Key, str], str] = {}
        self.created_cms: dict[Key, dict[str, int]] = {}
        self.deleted_cms: set[tuple[Key, str]] = set()
        self.previous: dict[Key, str] = {}
        self.applied: dict[Key, str] = {}
        self.announced: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.prober: probing.Prober | None = None
        self.referenced_services: frozenset[Key] = frozenset()
        self.referenced_secrets: frozenset[Key] = frozenset()
        self.elector: Any = None
        self.rollbacks = rollback.Rollbacks(self.poke)

    @classmethod
    def start(
        cls, kube: Kube, options: Any, logger: logging.Logger | logging.LoggerAdapter[Any]
    ) -> Reconciler:
        rec = cls(kube, options, logger)
        rec.prober = probing.Prober(
            rec.poke,
            logger,
            interval_override=getattr(options, "probe_interval_seconds", None),
            redis_interval=getattr(options, "redis_interval_seconds", 10.0),
            redis_threshold=getattr(options, "redis_threshold", 3),
            timeout=getattr(options, "probe_timeout_seconds", 5.0),
            concurrency=getattr(options, "probe_concurrency", 8),
        )
        rec.prober.start()
        rec.task = asyncio.create_task(rec.run(), name="llmgw-reconciler")
        return rec

    async def stop(self) -> None:
        self.rollbacks.stop()
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

    async def run(self) -> None:
        while True:
            await self.dirty.wait()
            started = time.monotonic()
            while True:
                quiet = time.monotonic() - self.last_poke
                waited = time.monotonic() - started
                if quiet >= self.settle or waited >= self.max_settle:
                    break
                await asyncio.sleep(min(self.settle - quiet, self.max_settle - waited))
            self.dirty.clear()
            try:
                await self.reconcile()
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
        if self.elector is not None and not self.elector.is_leader:
            return  # a standby keeps its indexes warm and writes nothing
        began = time.perf_counter()
        raws = [*_values(idx.providers), *_values(idx.chains), *_values(idx.gateways)]
        namespaces = {}
        for name, store in list(idx.namespaces.items()):
            for labels in store:
                namespaces[name] = labels
        # The pure work runs in a worker thread: on a large estate it takes seconds, and the
        # event loop must stay free for watch events, the webhook's reviews and health checks.
        estate = await asyncio.to_thread(estate_mod.build, raws, namespaces, *self._observed(idx))
        if self.prober is not None:
            self.prober.update(estate)
        self._backend_metrics(estate)
        bodies = {objects.identity(r): r for r in raws}
        gens = {oid: (r.get("metadata") or {}).get("generation") for oid, r in bodies.items()}
        outcomes: list[pipeline.Outcome] = []
        retry = False
        gateway_statuses: dict[tuple[str, str, str], dict[str, Any]] = {}
        for gw in estate.gateways:
            t0 = time.perf_counter()
            outcome = await asyncio.to_thread(pipeline.run, estate, gw)
            metrics.RENDER_SECONDS.observe(time.perf_counter() - t0)
            outcomes.append(outcome)
            rollout = await self._apply(gw, outcome, idx, gens)
            if rollout.error is not None:
                retry = True
            gateway_statuses[("LLMGateway", gw.metadata.namespace, gw.metadata.name)] = statuses.for_gateway(
                gw, outcome, rollout, estate.backends.cache_available.get(_key(gw))
            )
        for bad in estate.invalid:
            if bad.kind == "LLMGateway":
                gateway_statuses[(bad.kind, bad.namespace, bad.name)] = statuses.for_invalid_gateway(bad)
        wanted = await asyncio.to_thread(statuses.for_objects, estate, outcomes)
        wanted.update(gateway_statuses)
        for (kind, reason), count in _invalid_counts(wanted).items():
            metrics.INVALID_OBJECTS.labels(kind, reason).set(count)
        # Gateways last: a gateway's status sums up its providers and chains, so by the time it
        # says what it serves, each of them already says so too.
        for oid, status in sorted(wanted.items(), key=lambda item: (item[0][0] == "LLMGateway", item[0])):
            body = bodies.get(oid)
            if body is not None:
                retry |= not await self._write_status(oid, body, status)
        self._forget(estate, set(bodies))
        metrics.RECONCILE_SECONDS.observe(time.perf_counter() - began)
        metrics.RECONCILES.labels("all", "retry" if retry else "ok").inc()
        if retry:
            self.failures += 1
            delay = min(MAX_BACKOFF, 0.5 * 2 ** min(self.failures, 7))
            asyncio.get_running_loop().call_later(delay, self.poke)
        else:
            self.failures = 0

    def _forget(self, estate: estate_mod.Estate, alive: set[tuple[str, str, str]]) -> None:
        """Drop what this process remembers of objects that are gone, so that a long-running
        operator's memory follows the estate, not everything it ever saw."""
        gateways = {(ns, name) for kind, ns, name in alive if kind == "LLMGateway"}
        uids = {uid for gw in estate.gateways if (uid := gw.metadata.uid)}
        for key in [k for k in self.announced if k not in alive]:
            del self.announced[key]
        for cache in (self.created_cms, self.previous, self.applied):
            for gone in [k for k in cache if k not in gateways]:
                del cache[gone]
        for spec in [k for k in self.written_specs if k[0] not in gateways]:
            del self.written_specs[spec]
        self.deleted_cms = {d for d in self.deleted_cms if d[0] in gateways}
        self.master_keys &= uids | {""}
        self.rollbacks.forget(gateways)

    def _observed(self, idx: Indexes) -> tuple[dict[Key, dict[str, int]], backends.Backends]:
        """Services, ready endpoints, probe results and caches, as the core reads them."""
        ports: dict[Key, dict[str, int]] = {}
        for key, store in list(idx.backend_services.items()):
            for named in store:
                ports[key] = dict(named)
        ready: dict[Key, int] = {}
        for key, store in list(idx.endpointslices.items()):
            ready[key] = sum(int(n) for n in store)
        versions: dict[Key, str] = {}
        for key, store in list((idx.secret_versions or {}).items()):
            for version in store:
                versions[key] = str(version)
        prober = self.prober
        return ports, backends.Backends(
            secret_versions=versions,
            services_known=True,
            ready_endpoints=ready,
            probes=dict(prober.probes) if prober is not None else {},
            cache_available=prober.cache_available() if prober is not None else {},
        )

    def _backend_metrics(self, estate: estate_mod.Estate) -> None:
        referenced: set[Key] = set()
        for p in estate.providers:
            key = _key(p)
            metrics.DECLARED_MODELS.labels(*key).set(len(p.spec.models))
            svc = p.spec.endpoint.service if p.spec.endpoint is not None else None
            if svc is not None:
                skey = (svc.namespace or p.metadata.namespace, svc.name)
                referenced.add(skey)
                metrics.BACKEND_READY.labels(*key).set(estate.backends.ready_endpoints.get(skey, 0))
        self.referenced_services = frozenset(referenced)
        self.referenced_secrets = frozenset(
            (gw.metadata.namespace, ref.name)
            for gw in estate.gateways
            if gw.spec.rollout_on_secret_change
            for ref in _secret_refs(estate, gw)
        )

    async def _write_status(
        self, oid: tuple[str, str, str], body: Mapping[str, Any], status: dict[str, Any]
    ) -> bool:
        old = body.get("status") or {}
        status = dict(status)
        status["conditions"] = conditions.merge(old.get("conditions"), status.get("conditions", []), _now())
        if conditions.same(old, status):
            return True
        kind, namespace, name = oid
        self._announce(oid, body, status)
        try:
            await self.kube.patch_status(kind, namespace, name, status)
        except KubeError as exc:
            if exc.status == 404:  # deleted meanwhile: the next event says so
                return True
            self.logger.warning(f"{kind} {namespace}/{name}: status not written: {exc}")
            return False
        return True

    def _announce(
        self, oid: tuple[str, str, str], body: Mapping[str, Any], status: Mapping[str, Any]
    ) -> None:
        """An Event when an object's Accepted or Ready condition changes."""
        for cond in status.get("conditions", []):
            if cond["type"] not in (statuses.ACCEPTED, statuses.READY):
                continue
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
            _event(body, kind, reason, cond["message"])

    async def _apply(
        self,
        gw: LLMGateway,
        outcome: pipeline.Outcome,
        idx: Indexes,
        gens: Mapping[tuple[str, str, str], int | None],
    ) -> statuses.Rollout:
        key: Key = (gw.metadata.namespace, gw.metadata.name)
        rendered = outcome.rendered
        live = _one(idx.deployments, key)
        try:
            if gw.spec.master_key_secret_ref is None and gw.metadata.uid not in self.master_keys:
                await self._create(desired.master_key_secret(gw, secrets.token_urlsafe(32)))
                self.master_keys.add(gw.metadata.uid or "")

            cms = self._config_maps(idx, key)
            cm_name = desired.config_map_name(gw, rendered)
            if cm_name not in cms:
                sequence = max(cms.values(), default=0) + 1
                inputs = statuses.inputs(gens, outcome.resolution.selected, gw)
                cm = desired.config_map(gw, rendered, inputs, sequence)
                if desired.too_large(cm):
                    return statuses.Rollout(
                        applied_hash=self.applied.get(key),
                        deployment=live,
                        plan=self.rollbacks.last(gw),
                        error=(
                            f"the rendered config is larger than a ConfigMap can hold (1 MiB); "
                            f"revision {rendered.short_hash} is not applied, the gateway keeps "
                            "serving the previous one"
                        ),
                        error_reason="ConfigTooLarge",
                    )
                await self._create(cm)
                self.created_cms.setdefault(key, {})[cm_name] = sequence
                self.deleted_cms.discard((key, cm_name))  # pruned before, wanted again
                cms[cm_name] = sequence

            # Rollout watching: the render, or the last good revision when the render failed.
            status = (_one(idx.gateways, key) or {}).get("status")
            plan = self.rollbacks.plan(gw, status, rendered, live, idx.pods, idx.configmaps, cms)
            running = self.rollbacks.to_run(rendered, plan, idx.configmaps, key)
            want = desired.deployment(gw, running)
            live_hash = _template_hash(live)
            if live is None:
                live = await self._create(want)
                self._rolled(gw, running.hash, None)
            elif self._differs(key, "Deployment", live, want):
                live = await self._write(want) or live
                if live_hash != running.hash:
                    self._rolled(gw, running.hash, live_hash)
            applied_hash = running.hash
            self.applied[key] = applied_hash
            self.rollbacks.commit(gw, plan)

            svc = desired.service(gw)
            live_svc = _one(idx.services, key)
            if live_svc is None:
                if self.written_specs.get((key, "Service")) != desired.spec_hash(svc):
                    await self._create(svc)
            elif self._differs(key, "Service", live_svc, svc):
                await self._write(svc)
            self.written_specs[(key, "Service")] = desired.spec_hash(svc)

            await self._prune(gw, cms, cm_name, plan.keep)
        except KubeError as exc:
            self.logger.warning(f"LLMGateway {key[0]}/{key[1]}: {exc}; will retry")
            return statuses.Rollout(
                applied_hash=self.applied.get(key),
                deployment=live,
                error=str(exc),
                plan=self.rollbacks.last(gw),
            )
        return statuses.Rollout(applied_hash=applied_hash, deployment=live, plan=plan)

    def _rolled(self, gw: LLMGateway, new: str, old: str | None) -> None:
        key = (gw.metadata.namespace, gw.metadata.name)
        if old is not None:
            self.previous[key] = old
        metrics.ROLLOUTS.labels(*key).inc()
        metrics.REVISION.labels(*key).info({"revision": new[:10], "hash": new})
        _event(
            {
                "apiVersion": gw.api_version,
                "kind": gw.kind,
                "metadata": gw.metadata.model_dump(by_alias=True),
            },
            "Normal",
            "Rolled",
            f"the gateway Deployment now runs revision {new[:10]}" + (f" (was {old[:10]})" if old else ""),
        )

    def _config_maps(self, idx: Indexes, key: Key) -> dict[str, int]:
        """name -> sequence of a gateway's revisions: the watch's view plus our own writes.

        Our own creates and deletes count only until the watch shows them; from then on the
        watch is the authority, so a revision someone else deletes is written again, and one
        pruned and wanted again later is created once, not on every pass.
        """
        out: dict[str, int] = {}
        for row in idx.configmaps.get(key, ()) or ():
            try:
                out[row["name"]] = int(row["annotations"].get(desired.SEQUENCE, "0"))
            except ValueError:
                out[row["name"]] = 0
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

    async def _prune(
        self, gw: LLMGateway, cms: dict[str, int], current: str, revisions: Iterable[str] = ()
    ) -> None:
        """Old revisions go; never the current, the previous, or those of `revisions` (the
        one running and the rollback target)."""
        key = (gw.metadata.namespace, gw.metadata.name)
        keep = {current} | {f"{gw.metadata.name}-config-{r}" for r in revisions} & set(cms)
        previous = self.previous.get(key)
        if previous is not None:
            keep.add(f"{gw.metadata.name}-config-{previous[:10]}")
        newest = sorted(cms, key=lambda n: (cms[n], n), reverse=True)
        limit = gw.spec.revision_history_limit
        for name in newest:
            if len(keep) >= limit:
                break
            keep.add(name)
        for name in newest:
            if name in keep:
                continue
            try:
                await self.kube.delete_config_map(key[0], name)
            except KubeError as exc:
                if exc.status != 404:
                    raise
            self.deleted_cms.add((key, name))
            self.created_cms.get(key, {}).pop(name, None)

    def _differs(self, key: Key, kind: str, live: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
        wanted = want["metadata"]["annotations"][desired.SPEC_HASH]
        have = ((live.get("metadata") or {}).get("annotations") or {}).get(desired.SPEC_HASH)
        if have == wanted:
            self.written_specs.pop((key, kind), None)
            return False
        return bool(self.written_specs.get((key, kind)) != wanted)

    async def _create(self, body: Mapping[str, Any]) -> Any:
        try:
            result = await self.kube.create(body)
        except KubeError as exc:
            if exc.status != 409:  # already there: another pass or a restart made it
                raise
            if body["kind"] in ("Deployment", "Service"):
                return await self._write(body)
            return None
        return _plain(self.kube, result)

    async def _write(self, body: Mapping[str, Any]) -> Any:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        result = await self.kube.patch(body)
        self.written_specs[(key, body["kind"])] = meta["annotations"][desired.SPEC_HASH]
        return _plain(self.kube, result)


def _secret_refs(estate: estate_mod.Estate, gw: LLMGateway) -> list[Any]:
    """Every Secret key a gateway's pods read: API keys, master key, Redis password."""
    refs = [render.master_key_ref(gw)]
    refs += [p.spec.api_key_secret_ref for p in estate.providers if p.spec.api_key_secret_ref]
    if (
        gw.spec.cache is not None
        and gw.spec.cache.redis is not None
        and gw.spec.cache.redis.password_secret_ref
    ):
        refs.append(gw.spec.cache.redis.password_secret_ref)
    return refs


def _key(obj: Any) -> Key:
    return (obj.metadata.namespace, obj.metadata.name)


def _plain(kube: Kube, result: Any) -> Any:
    if result is None or isinstance(result, dict):
        return result
    return kube.api.sanitize_for_serialization(result)


def _template_hash(live: Mapping[str, Any] | None) -> str | None:
    if live is None:
        return None
    template = ((live.get("spec") or {}).get("template") or {}).get("metadata") or {}
    value = (template.get("annotations") or {}).get(desired.CONFIG_HASH)
    return str(value) if value is not None else None


def _invalid_counts(wanted: Mapping[tuple[str, str, str], Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for (kind, _ns, _name), status in wanted.items():
        accepted = conditions.get(status.get("conditions"), statuses.ACCEPTED)
        if accepted is not None and accepted["status"] == "False":
            counts[(kind, accepted["reason"])] = counts.get((kind, accepted["reason"]), 0) + 1
    return counts


def _event(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    rollback.post_event(body, kind, reason, message)  # kopf.event needs a queue this task lacks
