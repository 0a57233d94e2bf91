"""The indexes of every input and every object the operator owns: the world the reconciler renders from.

Level-triggered: the reconciler never reads the API server to decide; it reads these
indexes, which the watches keep current. kopf indexes what is few (gateways, Namespaces,
the objects the operator owns, by its label); the kinds that come by the thousand
(providers, chains, Services, EndpointSlices) are the operator's own watch caches
(`llmgw.handlers.watches`), whose views read like kopf's indexes. Each keeps only what is
read of an object (a whole body, a Service's named ports, a slice's ready count).
Secrets are not watched here: kopf would bring their data; `llmgw.kube.secretversions`
watches their metadata only.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
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
"""The names of the indexes: kopf's (handed to every event handler) and the watch caches'."""

Raw = dict[str, Any]
ByName = kopf.Index[Key, Raw]
"""Whole bodies by `(namespace, name)`."""
Watched = Mapping[Key, Sequence[Any]]
"""A watch cache's view (`llmgw.kube.watchcache.View`): the values filed under each key."""


@dataclasses.dataclass(frozen=True)
class Indexes:
    """The indexes of the world: kopf's, handed over by its event handlers, and the watch
    caches' views; keys are `(namespace, name)` (of the gateway, for ConfigMaps and pods; of
    the Service, for EndpointSlices)."""

    providers: Watched
    """Whole bodies, but for managedFields."""
    chains: Watched
    gateways: ByName
    namespaces: kopf.Index[str, dict[str, str]]
    """Labels by namespace name."""
    deployments: ByName
    configmaps: kopf.Index[Key, dict[str, Any]]
    """A gateway's revisions: `{"name": ..., "annotations": {...}}` each."""
    services: ByName
    backend_services: Watched
    """Named ports of every Service."""
    endpointslices: Watched
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


def of(kwargs: Mapping[str, Any], watched: Mapping[str, Any]) -> Indexes:
    """The indexes: kopf's, from a kopf handler's keyword arguments, and the watch caches' views."""
    return Indexes(**{name: watched[name] if name in watched else kwargs[name] for name in INDEXES})


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
    """kopf's index handlers; kopf starts event handlers only once all of them are filled.

    `async def`, though none of them awaits: kopf runs a plain `def` handler in a thread of
    its executor, one hop per object and index, which at start-up costs more than the
    handler itself (half the time to the first handler at 8,000 objects).
    """

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
