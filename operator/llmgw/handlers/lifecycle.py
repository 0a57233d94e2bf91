"""The operator's lifecycle in kopf: login, kopf's settings and the reconciler at startup, cleanup.

What startup makes lives in kopf's memo, the one object every handler is handed;
`reconciler` and `elector` read it back typed, for the handlers and the health check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import kopf

from llmgw import __version__, options
from llmgw.api import GROUP
from llmgw.handlers import admission, indexes, watches
from llmgw.handlers import reconciler as reconciler_mod
from llmgw.kube import leadership, secretversions
from llmgw.kube.client import Kube

STATE_PREFIX = "kopf.llmgateway.dev"


def reconciler(memo: kopf.Memo) -> reconciler_mod.Reconciler | None:
    """The reconciler, once startup has made it."""
    rec: reconciler_mod.Reconciler | None = memo.get("reconciler")
    return rec


def elector(memo: kopf.Memo) -> leadership.Elector | None:
    """The leader elector, with --leader-election, once startup has made it."""
    found: leadership.Elector | None = memo.get("elector")
    return found


def register(
    reg: kopf.OperatorRegistry, opts: options.Options, reviewer: admission.Reviewer | None = None
) -> None:
    @kopf.on.login(registry=reg)
    def login(**kwargs: Any) -> Any:
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=reg)
    async def startup(
        settings: kopf.OperatorSettings,
        memo: kopf.Memo,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        **_: Any,
    ) -> None:
        # kopf's own bookkeeping, if it ever needs any, lives under our prefix; with only
        # index and event handlers it writes nothing to users' objects (no annotations,
        # no finalizers), so GitOps tools see no drift from it.
        settings.persistence.finalizer = f"{GROUP}/finalizer"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STATE_PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=STATE_PREFIX, key="last-handled-configuration"
        )
        # Our Events are posted explicitly; log lines do not become Events.
        settings.posting.level = logging.ERROR
        settings.peering.standalone = True
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        # kopf watches what the operator writes only where it owns it (a server-side filter);
        # backend Services are the operator's own watch (`watches`).
        for selector in indexes.OWNED_RESOURCES:
            settings.watching.label_selectors[selector] = indexes.OWNED_SELECTOR
        if opts.webhook:
            admission.configure(
                settings,
                port=opts.webhook_port,
                host=opts.webhook_host,
                addr=opts.webhook_addr,
                cert_dir=opts.webhook_cert_dir,
            )
        kube_factory: Callable[[], Kube] = memo["kube_factory"]
        kube = kube_factory()
        identity = opts.identity or leadership.default_identity()
        kube.api.user_agent = f"llmgw/{__version__} ({identity})"
        kube.throttle(await _client_rate(kube, opts, logger), opts.api_burst, opts.status_concurrency)
        # Not awaited: the imports run beside kopf's first listing, off the event loop.
        memo.warming = asyncio.get_running_loop().run_in_executor(None, kube.warm)
        rec = reconciler_mod.Reconciler.start(kube, opts, logger)
        memo.reconciler = rec
        _watch(rec, reviewer, kube, opts, logger)
        if opts.watch_secret_versions:
            await _watch_secret_versions(rec, kube, opts, logger)
        if opts.leader_election:
            made = leadership.Elector(
                kube,
                namespace=opts.lease_namespace,
                name=opts.lease_name,
                identity=identity,
                duration=opts.lease_duration_seconds,
                renew=opts.lease_renew_seconds,
                on_change=lambda leader: rec.poke() if leader else None,
                logger=logger,
                release_on_stop=opts.release_lease_on_stop,
            )
            rec.elector = made
            kube.fence = lambda: made.is_leader
            memo.elector = made
            made.start()

    @kopf.on.cleanup(registry=reg)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        rec = reconciler(memo)
        if rec is not None and rec.watches is not None:
            await rec.watches.stop()
        if rec is not None and rec.secret_versions is not None:
            await rec.secret_versions.stop()
        if rec is not None:
            await rec.stop()
        found = elector(memo)
        if found is not None:
            await found.stop()


async def _client_rate(
    kube: Kube, opts: options.Options, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> float:
    """The client-side rate limit: `--api-qps` as given, else (auto) none where the API server
    applies API Priority and Fairness and `options.API_QPS` where it does not or cannot say."""
    if opts.api_qps is not None:
        return opts.api_qps
    found = await kube.flow_controlled()
    if found:
        logger.info(
            "the API server applies API Priority and Fairness: no client-side rate limit (--api-qps sets one)"
        )
        return 0.0
    why = (
        "sends no API Priority and Fairness headers"
        if found is False
        else "could not be asked about API Priority and Fairness"
    )
    logger.info(f"the API server {why}: at most {options.API_QPS:g} calls a second (--api-qps)")
    return options.API_QPS


def _watch(
    rec: reconciler_mod.Reconciler,
    reviewer: admission.Reviewer | None,
    kube: Kube,
    opts: options.Options,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """Start the operator's own watches (`watches`), beside kopf's first listing: each change
    goes to the reconciler and, with the webhook, to the reviewer; their first lists, once
    all are in, wake both."""
    made = watches.Watches(kube, opts.namespaces, logger)
    rec.watches = made
    made.listeners.append(rec.watched)
    if reviewer is not None:
        reviewer.watches = made
        made.listeners.append(reviewer.watched)

    def synced() -> None:
        logger.info(f"listed {made.summary()}")
        rec.poke()
        if reviewer is not None:
            reviewer.changed()

    made.start(synced)


async def _watch_secret_versions(
    rec: reconciler_mod.Reconciler,
    kube: Kube,
    opts: options.Options,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """Secrets' metadata only, never through kopf (which would bring their data). A change
    wakes the reconciler only for a Secret that a gateway rolling on Secret changes reads.

    Startup waits (bounded) for the first list: kopf starts its watches after startup, so
    the first render already has the versions, and does not roll again once they come.
    """

    def changed(key: secretversions.Key) -> None:
        if key in rec.referenced_secrets:
            rec.poke()

    watched = secretversions.SecretVersions(kube, opts.namespaces, changed, logger)
    rec.secret_versions = watched
    watched.start()
    if not await watched.synced(kube.timeout):
        logger.warning("Secrets' metadata not listed yet; gateways may roll again once it is")
