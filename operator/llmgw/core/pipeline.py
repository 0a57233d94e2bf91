"""The whole pure pipeline: estate -> per-gateway resolution and render -> findings."""

from __future__ import annotations

import dataclasses

from llmgw.api.gateway import LLMGateway
from llmgw.core import estate as estate_mod
from llmgw.core import findings, keys, render, resolve
from llmgw.core.estate import Estate
from llmgw.core.findings import Finding


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A gateway's resolution and the config rendered from it."""

    resolution: resolve.Resolution
    rendered: render.Rendered


def gateways(estate: Estate) -> tuple[LLMGateway, ...]:
    """The gateways to render: those given, or the default one that serves everything."""
    if estate.gateways or any(b.kind == "LLMGateway" for b in estate.invalid):
        return estate.gateways
    return (estate_mod.default_gateway(),)


def run(estate: Estate, gateway: LLMGateway, *, cache_enabled: bool | None = None) -> Outcome:
    if cache_enabled is None:
        key = (gateway.metadata.namespace, gateway.metadata.name)
        cache_enabled = estate.backends.cache_available.get(key, True)
    resolution = resolve.resolve(estate, gateway)
    return Outcome(resolution, render.render(resolution, cache_enabled=cache_enabled))


def check(estate: Estate) -> tuple[list[Outcome], tuple[Finding, ...]]:
    """Every gateway's outcome, and every finding in the estate, each once.

    An object that no gateway binds is reported too (as a warning): it would
    sit in the cluster doing nothing, which is rarely what its author meant.
    """
    found: set[Finding] = set(estate.findings)
    for bad in estate.invalid:
        # Every object's own errors, whether or not a gateway binds it: an invalid
        # gateway binds nothing, and an unbound object must not pass as valid.
        found.update(bad.findings)
    outcomes = [run(estate, gw) for gw in gateways(estate)]
    selected: set[keys.ObjectId] = set()
    for o in outcomes:
        found.update(o.resolution.findings)
        selected |= o.resolution.selected
    every = [("LLMProvider", p.metadata.namespace, p.metadata.name) for p in estate.providers]
    every += [("FallbackChain", c.metadata.namespace, c.metadata.name) for c in estate.chains]
    every += [(b.kind, b.namespace, b.name) for b in estate.invalid if b.kind != "LLMGateway"]
    names = ", ".join(f"{g.metadata.namespace}/{g.metadata.name}" for g in gateways(estate))
    if any(b.kind == "LLMGateway" for b in estate.invalid):
        # An invalid gateway might have bound them; its own findings say what to fix.
        every = []
    for kind, namespace, name in every:
        if (kind, namespace, name) not in selected:
            found.add(
                Finding(
                    kind,
                    namespace,
                    name,
                    "metadata.labels",
                    findings.NOT_SELECTED,
                    f"no gateway serves it (gateways: {names or 'none'}); check the gateways' "
                    "spec.selector and spec.namespaces, or the object's labels and namespace",
                    severity="warning",
                )
            )
    return outcomes, tuple(sorted(found))
