"""The event handlers that wake the reconciler: one poke for any change to any input.

No per-field or create/update handlers: each event hands the reconciler the current
indexes and marks the world dirty, and the reconciler renders every gateway whole.
Providers, chains, Services and EndpointSlices come from the operator's own watches
(`llmgw.handlers.watches`), whose changes reach `Reconciler.watched`; the rest come here.
An event that brings nothing the last pass did not read (kopf's replay of its listing at
start-up and after a relist; a status the operator wrote, coming back) only hands over the
indexes: on a large estate those are thousands of events that used to start a pass each,
and kept the settle window open while they came (`core/news.py`).
Services and EndpointSlices are many and mostly not ours: a change to one that no
provider names starts no pass. Secrets are not watched
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
    (GROUP, VERSION, "llmgateways"),
    ("v1", "namespaces"),
)


async def poke(memo: kopf.Memo, body: kopf.Body, resource: kopf.Resource, **kwargs: Any) -> None:
    """Wake the reconciler, unless the event's object is as the last pass read it."""
    events.adopt_queue()  # so the reconciler's own task can post Events
    rec = lifecycle.reconciler(memo)
    if rec is None:
        return
    idx = indexes.of(kwargs, rec.views)
    if resource.group == GROUP:
        news = rec.news(objects.identity(body), body, kwargs.get("type"))
    else:
        news = rec.changed(idx, *indexes.entry(resource.plural, body))
    if news:
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
        rec.poke(indexes.of(kwargs, rec.views))


def register(reg: kopf.OperatorRegistry, opts: options.Options) -> None:
    for selector in INPUT_RESOURCES:
        kopf.on.event(*selector, registry=reg, id=f"poke-{selector[-1]}")(poke)
    for selector in indexes.OWNED_RESOURCES:
        kopf.on.event(*selector, labels=indexes.OWNED, registry=reg, id=f"poke-{selector[-1]}")(poke)
    crds = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    kopf.on.event(*crds, when=_optional_crd, registry=reg, id="poke-crds")(poke_crd)
