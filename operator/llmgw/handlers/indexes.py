"""kopf's indexes of every input and every object the operator owns: the world the reconciler renders from.

Level-triggered: the reconciler never reads the API server to decide; it reads these
indexes, which kopf keeps current from its watches. Each index keeps only what is
read of an object (a whole body, a Service's named ports, a slice's ready count).
Secrets are not watched here: kopf would bring their data; `llmgw.kube.secretversions`
watches their metadata only.

Every Service and EndpointSlice in the cluster is indexed, not only those the providers
name (`backend_services`, `endpointslices`). The named set changes with the providers and
kopf re-indexes an object only on its own events, so a Service a provider starts naming
later would be missing until the Service itself changed. No server-side selector can name
a changing set of Services across namespaces. The index values are small anyway: measured
with 2,000 Services, a `backend_services` value is about 120 bytes a Service, and kopf's
indexing bookkeeping about 1.5 KB, out of about 14 KB a Service that the operator holds for
each watched object. Keeping only the named ones would save under 1%. A real saving would
need a watch of our own that keeps only ports and ready counts (as
`llmgw.kube.secretversions` does for Secrets), so kopf could watch only our own Services.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import kopf

from llmgw import options
from llmgw.api import GROUP, VERSION
from llmgw.core import desired
from llmgw.core.keys import Key
from llmgw.handlers import rollouts

OWNED = {desired.MANAGED_BY: desired.MANAGER}
OWNED_SELECTOR = f"{desired.MANAGED_BY}={desired.MANAGER}"
COMPANIONS = {kind: f"owned_{api.plural}" for kind, api in desired.APIS.items()}
"""The index of each kind `desired.companions` returns (HPA, PDB, HTTPRoute, ServiceMonitor)."""
OWNED_RESOURCES: tuple[tuple[str, str] | tuple[str, str, str], ...] = (
    ("apps", "v1", "deployments"),
    ("v1", "configmaps"),
    ("v1", "services"),
    ("v1", "pods"),
    *((api.group, api.version, api.plural) for api in desired.APIS.values()),
)
"""What the operator writes (pods: what its Deployments make), watched by its label. The
HTTPRoute and ServiceMonitor APIs may be missing from a cluster: kopf then watches nothing
for them, and, since it makes an "indexed" toggle only for the resources it found, does not
wait for them either; when their CRD appears later it rescans and starts the watch."""
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
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
    *COMPANIONS.values(),
)
"""The ids of the indexes every event handler is handed."""

Raw = dict[str, Any]
ByName = kopf.Index[Key, Raw]
"""Whole bodies by `(namespace, name)`."""


@dataclasses.dataclass(frozen=True)
class Indexes:
    """kopf's indexes of the world, handed over by the event handlers; keys are `(namespace, name)`
    (of the gateway, for ConfigMaps and pods; of the Service, for EndpointSlices)."""

    providers: ByName
    chains: ByName
    gateways: ByName
    namespaces: kopf.Index[str, dict[str, str]]
    """Labels by namespace name."""
    deployments: ByName
    configmaps: kopf.Index[Key, dict[str, Any]]
    """A gateway's revisions: `{"name": ..., "annotations": {...}}` each."""
    services: ByName
    backend_services: kopf.Index[Key, dict[str, int]]
    """Named ports of every Service."""
    endpointslices: kopf.Index[Key, int]
    """Ready endpoints, one count per slice."""
    pods: kopf.Index[Key, dict[str, Any]] | None = None
    """`rollouts.pod_summary` of a gateway's pods."""
    owned_horizontalpodautoscalers: ByName | None = None
    owned_poddisruptionbudgets: ByName | None = None
    owned_httproutes: ByName | None = None
    owned_servicemonitors: ByName | None = None
    """The gateway's companions by kind (`COMPANIONS`): whole bodies by `(namespace, name)`."""

    def companion(self, kind: str) -> ByName | None:
        """The index of the owned objects of `kind`, one of `desired.APIS`."""
        found: ByName | None = getattr(self, COMPANIONS[kind])
        return found


def of(kwargs: Mapping[str, Any]) -> Indexes:
    """The indexes in a kopf handler's keyword arguments."""
    return Indexes(**{name: kwargs[name] for name in INDEXES})


def key(body: kopf.Body) -> Key:
    return (body.metadata.namespace or "", body.metadata.name or "")


def gateway_key(body: kopf.Body) -> Key:
    """The key of a gateway's ConfigMaps and pods in their indexes: the gateway's own."""
    return (body.metadata.namespace or "", body.metadata.labels.get(desired.GATEWAY_LABEL, ""))


BY_GATEWAY = frozenset({"configmaps", "pods"})
"""Owned kinds indexed by their gateway's key (several objects each), not by their own."""
OWNED_INDEX = {
    "deployments": "deployments",
    "configmaps": "configmaps",
    "services": "services",
    "pods": "pods",
    **{desired.APIS[kind].plural: index for kind, index in COMPANIONS.items()},
}
"""The index that holds each owned resource (by plural)."""


def entry(plural: str, body: kopf.Body) -> tuple[str, Any]:
    """The index and key that hold what the reconciler reads of an owned object or a Namespace."""
    if plural == "namespaces":
        return "namespaces", body.metadata.name
    if plural in BY_GATEWAY:
        return plural, gateway_key(body)
    return OWNED_INDEX[plural], key(body)


def _raw(body: Mapping[str, Any]) -> Raw:
    return copy.deepcopy(dict(body))


def register(reg: kopf.OperatorRegistry, opts: options.Options) -> None:
    """The index handlers; kopf starts event handlers only once all of them are filled.

    `async def`, though none of them awaits: kopf runs a plain `def` handler in a thread of
    its executor, one hop per object and index, which at start-up costs more than the
    handler itself (half the time to the first handler at 8,000 objects).
    """

    @kopf.index(GROUP, VERSION, "llmproviders", registry=reg, id="providers")
    async def providers(body: kopf.Body, **_: Any) -> Any:
        return {key(body): _raw(body)}

    @kopf.index(GROUP, VERSION, "fallbackchains", registry=reg, id="chains")
    async def chains(body: kopf.Body, **_: Any) -> Any:
        return {key(body): _raw(body)}

    @kopf.index(GROUP, VERSION, "llmgateways", registry=reg, id="gateways")
    async def gateways(body: kopf.Body, **_: Any) -> Any:
        return {key(body): _raw(body)}

    @kopf.index("v1", "namespaces", registry=reg, id="namespaces")
    async def namespaces(body: kopf.Body, **_: Any) -> Any:
        return {body.metadata.name: dict(body.metadata.labels)}

    @kopf.index("apps", "v1", "deployments", labels=OWNED, registry=reg, id="deployments")
    async def deployments(body: kopf.Body, **_: Any) -> Any:
        return {key(body): _raw(body)}

    @kopf.index("v1", "configmaps", labels=OWNED, registry=reg, id="configmaps")
    async def configmaps(body: kopf.Body, **_: Any) -> Any:
        meta = body.metadata
        return {gateway_key(body): {"name": meta.name, "annotations": dict(meta.annotations)}}

    @kopf.index("v1", "pods", labels=OWNED, registry=reg, id="pods")
    async def pods(body: kopf.Body, **_: Any) -> Any:
        if not body.metadata.labels.get(desired.GATEWAY_LABEL):
            return None
        return {gateway_key(body): rollouts.pod_summary(body)}

    @kopf.index("v1", "services", labels=OWNED, registry=reg, id="services")
    async def services(body: kopf.Body, **_: Any) -> Any:
        return {key(body): _raw(body)}

    async def owned(body: kopf.Body, **_: Any) -> Any:
        return {key(body): _raw(body)}

    for kind, index in COMPANIONS.items():
        api = desired.APIS[kind]
        kopf.index(api.group, api.version, api.plural, labels=OWNED, registry=reg, id=index)(owned)

    @kopf.index("v1", "services", registry=reg, id="backend_services")
    async def backend_services(body: kopf.Body, spec: kopf.Spec, **_: Any) -> Any:
        ports = {
            p["name"]: p["port"]
            for p in spec.get("ports") or ()
            if isinstance(p, Mapping) and p.get("name") and isinstance(p.get("port"), int)
        }
        return {key(body): ports}

    @kopf.index("discovery.k8s.io", "v1", "endpointslices", registry=reg, id="endpointslices")
    async def endpointslices(body: kopf.Body, **_: Any) -> Any:
        service = body.metadata.labels.get(SERVICE_NAME_LABEL)
        if not service:
            return None
        ready = sum(
            1
            for e in body.get("endpoints") or ()
            if isinstance(e, Mapping) and ((e.get("conditions") or {}).get("ready") is not False)
        )
        return {(body.metadata.namespace or "", service): ready}
