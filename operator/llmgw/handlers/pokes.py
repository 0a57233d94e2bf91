"""The event handlers that wake the reconciler: one poke for any change to any input.

No per-field or create/update handlers: each event hands the reconciler the current
indexes and marks the world dirty, and the reconciler renders every gateway whole.
An event that brings nothing the last pass did not read (kopf's replay of its listing at
start-up and after a relist; a status the operator wrote, coming back) only hands over the
indexes: on a large estate those are thousands of events that used to start a pass each,
and kept the settle window open while they came (`core/news.py`).
Services and EndpointSlices are many and mostly not ours: an event on one that no
provider names only hands over the indexes, without a pass. Secrets are not watched
through kopf at all (`llmgw.kube.secretversions` pokes for those a gateway reads).
A CustomResourceDefinition of an optional API a gateway may own (HTTPRoute, ServiceMonitor)
that appears, changes or goes makes the reconciler ask discovery again at once.
"""

from __future__ import annotations

from typing import Any

import kopf

from llmgw import options
from llmgw.api import GROUP, VERSION
from llmgw.core import desired, objects
from llmgw.handlers import events, indexes, lifecycle

INPUT_RESOURCES = (
    (GROUP, VERSION, "llmproviders"),
    (GROUP, VERSION, "fallbackchains"),
    (GROUP, VERSION, "llmgateways"),
    ("v1", "namespaces"),
)


async def poke(memo: kopf.Memo, body: kopf.Body, resource: kopf.Resource, **kwargs: Any) -> None:
    """Wake the reconciler, unless the event's object is as the last pass read it."""
    events.adopt_queue()  # so the reconciler's own task can post Events
    rec = lifecycle.reconciler(memo)
    if rec is None:
        return
    idx = indexes.of(kwargs)
    if resource.group == GROUP:
        news = rec.news(objects.identity(body), body, kwargs.get("type"))
    else:
        news = rec.changed(idx, *indexes.entry(resource.plural, body))
    if news:
        rec.poke(idx)
    else:
        rec.indexes = idx


async def poke_backend(memo: kopf.Memo, body: kopf.Body, resource: kopf.Resource, **kwargs: Any) -> None:
    """Services and EndpointSlices wake the reconciler only when a provider names them, and only
    when what the reconciler reads of them (named ports, ready endpoints) changed."""
    rec = lifecycle.reconciler(memo)
    if rec is None:
        return
    idx = indexes.of(kwargs)
    name = body.metadata.labels.get(indexes.SERVICE_NAME_LABEL) or body.metadata.name
    service = (body.metadata.namespace or "", name)
    index = "backend_services" if resource.plural == "services" else "endpointslices"
    if service in rec.referenced_services and rec.changed(idx, index, service):
        rec.poke(idx)
    else:
        rec.indexes = idx


OPTIONAL_CRDS = frozenset(f"{api.plural}.{api.group}" for api in desired.APIS.values() if "." in api.group)
"""The CRD names of the owned kinds that only some clusters serve (built-in groups have no dot)."""


def _optional_crd(name: str | None, **_: Any) -> bool:
    return name in OPTIONAL_CRDS


async def poke_crd(memo: kopf.Memo, spec: kopf.Spec, **kwargs: Any) -> None:
    rec = lifecycle.reconciler(memo)
    if rec is not None:
        rec.companions.served.forget(str(spec.get("group", "")))
        rec.poke(indexes.of(kwargs))


def register(reg: kopf.OperatorRegistry, opts: options.Options) -> None:
    for selector in INPUT_RESOURCES:
        kopf.on.event(*selector, registry=reg, id=f"poke-{selector[-1]}")(poke)
    for selector in indexes.OWNED_RESOURCES:
        kopf.on.event(*selector, labels=indexes.OWNED, registry=reg, id=f"poke-{selector[-1]}")(poke)
    kopf.on.event("v1", "services", registry=reg, id="poke-backend-services")(poke_backend)
    kopf.on.event("discovery.k8s.io", "v1", "endpointslices", registry=reg, id="poke-endpointslices")(
        poke_backend
    )
    crds = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    kopf.on.event(*crds, when=_optional_crd, registry=reg, id="poke-crds")(poke_crd)
