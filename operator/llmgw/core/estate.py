"""The snapshot a gateway's render is computed from.

One gatherer (the CLI's file loader or the operator's indexes) fills an
`Estate`; everything after that is a pure function of it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from llmgw.api.chain import FallbackChain
from llmgw.api.common import ObjectMeta
from llmgw.api.gateway import AllowedNamespaces, GatewaySpec, LLMGateway
from llmgw.api.provider import LLMProvider
from llmgw.core import endpoints, findings, keys, news, objects
from llmgw.core.backends import Backends
from llmgw.core.findings import Finding

DEFAULT_GATEWAY_NAME = "llmgw"
DEFAULT_GATEWAY_NAMESPACE = "default"


@dataclasses.dataclass(frozen=True)
class Estate:
    """Every input of every gateway, already parsed."""

    providers: tuple[LLMProvider, ...] = ()
    chains: tuple[FallbackChain, ...] = ()
    gateways: tuple[LLMGateway, ...] = ()
    invalid: tuple[objects.Invalid, ...] = ()
    # Labels of namespaces, where known (for `namespaces.from: Selector`).
    namespaces: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    # Named ports of Services, where known: (namespace, name) -> {port name: number}.
    service_ports: Mapping[keys.Key, Mapping[str, int]] = dataclasses.field(default_factory=dict)
    # Problems found while gathering (duplicate objects and the like).
    findings: tuple[Finding, ...] = ()
    # What the operator observed of Services, endpoints, backends and caches.
    backends: Backends = dataclasses.field(default_factory=Backends)

    @functools.cached_property
    def endpoints(self) -> Mapping[keys.Key, endpoints.Endpoint]:
        """Each provider's backend, resolved once for everyone who needs it."""
        return {keys.of(p): endpoints.resolve(p, self.service_ports) for p in self.providers}


def default_gateway() -> LLMGateway:
    """The gateway that serves everything when the input names none."""
    return LLMGateway(
        metadata=ObjectMeta(name=DEFAULT_GATEWAY_NAME, namespace=DEFAULT_GATEWAY_NAMESPACE),
        spec=GatewaySpec(namespaces=AllowedNamespaces(from_="All")),
    )


def build(
    raws: Iterable[Mapping[str, Any]],
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    service_ports: Mapping[keys.Key, Mapping[str, int]] | None = None,
    backends: Backends | None = None,
    memo: MutableMapping[keys.ObjectId, tuple[news.Mark, objects.Parsed | objects.Invalid]] | None = None,
) -> Estate:
    """Parse raw objects of our kinds into an Estate; other kinds must be filtered out first.

    Objects are ordered by (namespace, name), so the order they were read in never
    shows in what follows. Two different objects with the same kind, namespace and
    name are a finding (only one of them could exist in a cluster); the one kept is
    chosen by content, not by the order they came in.

    `memo`, kept by a caller that builds again and again (the operator, a pass at a time),
    holds each object as parsed last time: one whose uid, generation (the API server bumps it
    on every spec change), labels, annotations and deletion are unchanged is not parsed again
    (its `metadata.resourceVersion` is then that of the version first parsed). Entries of
    objects that are gone are dropped.
    """
    seen: dict[keys.ObjectId, Mapping[str, Any]] = {}
    found: list[Finding] = []
    for raw in raws:
        key = objects.identity(raw)
        if key in seen:
            if seen[key] != raw:
                found.append(
                    Finding(
                        *key,
                        field="metadata.name",
                        reason=findings.DUPLICATE_OBJECT,
                        message=(
                            "is defined twice with different contents; only one object of a "
                            "kind and name can exist in a namespace, so keep one definition"
                        ),
                    )
                )
                if _canonical(raw) < _canonical(seen[key]):
                    seen[key] = raw
            continue
        seen[key] = raw
    if memo is None:
        parsed = [objects.parse(seen[key]) for key in sorted(seen)]
    else:
        parsed = [_parse(key, seen[key], memo) for key in sorted(seen)]
        for gone in [key for key in memo if key not in seen]:
            del memo[gone]
    return Estate(
        **by_kind(parsed),
        namespaces=dict(namespaces or {}),
        service_ports=dict(service_ports or {}),
        findings=tuple(sorted(set(found))),
        backends=backends or Backends(),
    )


def _parse(
    key: keys.ObjectId,
    raw: Mapping[str, Any],
    memo: MutableMapping[keys.ObjectId, tuple[news.Mark, objects.Parsed | objects.Invalid]],
) -> objects.Parsed | objects.Invalid:
    mark = news.mark(raw)[:-1]  # all but the status, which parsing does not read
    hit = memo.get(key)
    if hit is not None and mark[1] is not None and hit[0] == mark:
        return hit[1]
    obj = objects.parse(raw)
    memo[key] = (mark, obj)
    return obj


def by_kind(parsed: Iterable[objects.Parsed | objects.Invalid]) -> dict[str, Any]:
    """Parsed objects as an Estate's `providers`, `chains`, `gateways` and `invalid`, each in
    (namespace, name) order, so the order they came in never shows."""
    providers: list[LLMProvider] = []
    chains: list[FallbackChain] = []
    gateways: list[LLMGateway] = []
    invalid: list[objects.Invalid] = []
    for obj in parsed:
        if isinstance(obj, objects.Invalid):
            invalid.append(obj)
        elif isinstance(obj, LLMProvider):
            providers.append(obj)
        elif isinstance(obj, FallbackChain):
            chains.append(obj)
        else:
            gateways.append(obj)
    by_key = lambda o: (o.metadata.namespace, o.metadata.name)  # noqa: E731
    return {
        "providers": tuple(sorted(providers, key=by_key)),
        "chains": tuple(sorted(chains, key=by_key)),
        "gateways": tuple(sorted(gateways, key=by_key)),
        "invalid": tuple(sorted(invalid, key=lambda o: (o.kind, o.namespace, o.name))),
    }


def _canonical(raw: Any) -> str:
    """A raw object as text that does not depend on the order of its keys."""
    return json.dumps(_plain(raw), sort_keys=True, default=repr)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
