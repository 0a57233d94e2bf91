"""The kopf registry of llmgw: indexes of every input, and the pokes that wake the reconciler.

Level-triggered: no per-field or create/update handlers. Every event on any
input updates an index and pokes the one reconciler, which re-renders every
gateway's whole config from the indexes. kopf starts event handlers only once
all indexes are filled, so the first poke also says "the world is known".
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from llmgw import __version__
from llmgw.api import GROUP, VERSION
from llmgw.core import desired
from llmgw.handlers import admission, leadership, reconciler, relisting, rollback

STATE_PREFIX = "kopf.llmgateway.dev"
OWNED = {desired.MANAGED_BY: desired.MANAGER}
OWNED_SELECTOR = f"{desired.MANAGED_BY}={desired.MANAGER}"
INPUT_RESOURCES = (
    (GROUP, VERSION, "llmproviders"),
    (GROUP, VERSION, "fallbackchains"),
    (GROUP, VERSION, "llmgateways"),
    ("v1", "namespaces"),
)
OWNED_RESOURCES = (
    ("apps", "v1", "deployments"),
    ("v1", "configmaps"),
    ("v1", "services"),
    ("v1", "pods"),
)
INDEXES = (
    "providers",
    "chains",
    "gateways",
    "namespaces",
    "deployments",
    "configmaps",
    "services",
    "backend_services",
    "endpointslices",
    "pods",
)
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclasses.dataclass
class Options:
    """What `llmgw run` was asked for."""

    namespaces: tuple[str, ...] = ()
    settle_seconds: float = 1.0
    max_settle_seconds: float = 10.0
    probe_interval_seconds: float | None = None
    """Overrides every provider's discovery interval (tests, or a cluster-wide policy)."""
    redis_interval_seconds: float = 10.0
    """Seconds between Redis checks; the cache goes after `redis_threshold` failed checks."""
    redis_threshold: int = 3
    probe_timeout_seconds: float = 5.0
    probe_concurrency: int = 8
    leader_election: bool = False
    """Only the holder of a coordination Lease acts; the others wait, watching, to take over."""
    lease_namespace: str = "default"
    lease_name: str = "llmgw-operator"
    lease_duration_seconds: float = 15.0
    lease_renew_seconds: float = 5.0
    identity: str | None = None
    release_lease_on_stop: bool = True
    watch_secret_versions: bool = False
    """Watch Secrets' metadata for gateways with rolloutOnSecretChange (needs list/watch on Secrets)."""
    webhook: bool = False
    """Serve the validating admission webhook (and manage its ValidatingWebhookConfiguration)."""
    webhook_port: int = 9443
    webhook_host: str | None = None
    """The name the API server reaches the webhook by (e.g. llmgw-webhook.llmgw-system.svc)."""
    webhook_addr: str = "0.0.0.0"
    webhook_cert_dir: str | None = None
    """tls.crt, tls.key (and ca.crt) as a cert-manager Secret mounts them; self-signed if unset."""
    webhook_failure_policy: str = "Ignore"


def _raw(body: Mapping[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(dict(body))


def build(options: Options) -> kopf.OperatorRegistry:
    relisting.install()  # objects deleted while a watch lists again (410 Gone) leave the indexes
    reg = kopf.OperatorRegistry()

    @kopf.on.login(registry=reg)
    def login(**kwargs: Any) -> Any:
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=reg)
    async def startup(
        settings: kopf.OperatorSettings,
        memo: Any,
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
        # Deployments and ConfigMaps are watched only where we own them (a server-side
        # filter); Services all, since providers name backend Services too.
        for selector in OWNED_RESOURCES:
            if selector[-1] != "services":
                settings.watching.label_selectors[selector] = OWNED_SELECTOR
        if options.webhook:
            admission.configure(
                settings,
                port=options.webhook_port,
                host=options.webhook_host,
                addr=options.webhook_addr,
                cert_dir=options.webhook_cert_dir,
            )
        kube = memo.kube_factory()
        identity = options.identity or leadership.default_identity()
        kube.api.user_agent = f"llmgw/{__version__} ({identity})"
        rec = reconciler.Reconciler.start(kube, options, logger)
        memo.reconciler = rec
        if options.leader_election:
            elector = leadership.Elector(
                kube,
                namespace=options.lease_namespace,
                name=options.lease_name,
                identity=identity,
                duration=options.lease_duration_seconds,
                renew=options.lease_renew_seconds,
                on_change=lambda leader: rec.poke() if leader else None,
                logger=logger,
                release_on_stop=options.release_lease_on_stop,
            )
            rec.elector = elector
            memo.elector = elector
            elector.start()

    @kopf.on.cleanup(registry=reg)
    async def cleanup(memo: Any, **_: Any) -> None:
        rec = getattr(memo, "reconciler", None)
        if rec is not None:
            await rec.stop()
        elector = getattr(memo, "elector", None)
        if elector is not None:
            await elector.stop()

    def key(body: kopf.Body) -> tuple[str, str]:
        return (body.metadata.namespace or "", body.metadata.name or "")

    @kopf.index(GROUP, VERSION, "llmproviders", registry=reg, id="providers")
    def providers(body: kopf.Body, **_: Any) -> Any:
        return {key(body): _raw(body)}

    @kopf.index(GROUP, VERSION, "fallbackchains", registry=reg, id="chains")
    def chains(body: kopf.Body, **_: Any) -> Any:
        return {key(body): _raw(body)}

    @kopf.index(GROUP, VERSION, "llmgateways", registry=reg, id="gateways")
    def gateways(body: kopf.Body, **_: Any) -> Any:
        return {key(body): _raw(body)}

    @kopf.index("v1", "namespaces", registry=reg, id="namespaces")
    def namespaces(body: kopf.Body, **_: Any) -> Any:
        return {body.metadata.name: dict(body.metadata.labels)}

    @kopf.index("apps", "v1", "deployments", labels=OWNED, registry=reg, id="deployments")
    def deployments(body: kopf.Body, **_: Any) -> Any:
        return {key(body): _raw(body)}

    @kopf.index("v1", "configmaps", labels=OWNED, registry=reg, id="configmaps")
    def configmaps(body: kopf.Body, **_: Any) -> Any:
        meta = body.metadata
        gateway = meta.labels.get(desired.GATEWAY_LABEL, "")
        return {(meta.namespace or "", gateway): {"name": meta.name, "annotations": dict(meta.annotations)}}

    @kopf.index("v1", "pods", labels=OWNED, registry=reg, id="pods")
    def pods(body: kopf.Body, **_: Any) -> Any:
        gateway = body.metadata.labels.get(desired.GATEWAY_LABEL)
        if not gateway:
            return None
        return {(body.metadata.namespace or "", gateway): rollback.pod_summary(body)}

    @kopf.index("v1", "services", labels=OWNED, registry=reg, id="services")
    def services(body: kopf.Body, **_: Any) -> Any:
        return {key(body): _raw(body)}

    @kopf.index("v1", "services", registry=reg, id="backend_services")
    def backend_services(body: kopf.Body, spec: kopf.Spec, **_: Any) -> Any:
        ports = {
            p["name"]: p["port"]
            for p in spec.get("ports") or ()
            if isinstance(p, Mapping) and p.get("name") and isinstance(p.get("port"), int)
        }
        return {key(body): ports}

    @kopf.index("discovery.k8s.io", "v1", "endpointslices", registry=reg, id="endpointslices")
    def endpointslices(body: kopf.Body, **_: Any) -> Any:
        service = body.metadata.labels.get(SERVICE_NAME_LABEL)
        if not service:
            return None
        ready = sum(
            1
            for e in body.get("endpoints") or ()
            if isinstance(e, Mapping) and ((e.get("conditions") or {}).get("ready") is not False)
        )
        return {(body.metadata.namespace or "", service): ready}

    async def poke_secret(memo: Any, body: kopf.Body, **kwargs: Any) -> None:
        rec: reconciler.Reconciler | None = getattr(memo, "reconciler", None)
        if rec is None:
            return
        if key(body) in rec.referenced_secrets:
            rec.poke(_indexes(kwargs))
        else:
            rec.indexes = _indexes(kwargs)

    if options.leader_election:

        @kopf.on.event("coordination.k8s.io", "v1", "leases", registry=reg, id="lease-heartbeat")
        async def lease_heartbeat(memo: Any, body: kopf.Body, **_: Any) -> None:
            elector: leadership.Elector | None = getattr(memo, "elector", None)
            if elector is not None and key(body) == (options.lease_namespace, options.lease_name):
                elector.observed()

    if options.watch_secret_versions:

        @kopf.index("v1", "secrets", registry=reg, id="secret_versions")
        def secret_versions(body: kopf.Body, **_: Any) -> Any:
            # Only the version: the data that came with the event is never looked at.
            return {key(body): body.metadata.get("resourceVersion", "")}

        kopf.on.event("v1", "secrets", registry=reg, id="poke-secrets")(poke_secret)

    def _indexes(kwargs: Mapping[str, Any]) -> reconciler.Indexes:
        return reconciler.Indexes(
            **{name: kwargs[name] for name in INDEXES}, secret_versions=kwargs.get("secret_versions")
        )

    async def poke(memo: Any, **kwargs: Any) -> None:
        rollback.adopt_event_queue()  # so the reconciler's own task can post Events
        rec: reconciler.Reconciler | None = getattr(memo, "reconciler", None)
        if rec is not None:
            rec.poke(_indexes(kwargs))

    async def poke_backend(memo: Any, body: kopf.Body, **kwargs: Any) -> None:
        """Services and EndpointSlices wake the reconciler only when a provider names them."""
        rec: reconciler.Reconciler | None = getattr(memo, "reconciler", None)
        if rec is None:
            return
        name = body.metadata.labels.get(SERVICE_NAME_LABEL) or body.metadata.name
        if (body.metadata.namespace or "", name) in rec.referenced_services:
            rec.poke(_indexes(kwargs))
        else:
            rec.indexes = _indexes(kwargs)

    for selector in INPUT_RESOURCES:
        kopf.on.event(*selector, registry=reg, id=f"poke-{selector[-1]}")(poke)
    for selector in OWNED_RESOURCES:
        kopf.on.event(*selector, labels=OWNED, registry=reg, id=f"poke-{selector[-1]}")(poke)
    kopf.on.event("v1", "services", registry=reg, id="poke-backend-services")(poke_backend)
    kopf.on.event("discovery.k8s.io", "v1", "endpointslices", registry=reg, id="poke-endpointslices")(
        poke_backend
    )
    if options.webhook:
        admission.register(reg, options.webhook_failure_policy)
    return reg
