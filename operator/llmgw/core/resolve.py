"""Cross-object validation for one gateway: what it can serve, and what it leaves out.

Per-object validation is done by the models; here the objects are checked
against each other: chains to models nobody serves, alias clashes, two chains
for one model, fallback cycles. Everything left out is named with a finding;
nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from llmgw.api.chain import TRIGGERS, FallbackChain
from llmgw.api.gateway import LLMGateway
from llmgw.api.provider import LLMProvider, ModelSpec
from llmgw.core import backends, findings, graph, selection
from llmgw.core.estate import Estate
from llmgw.core.findings import Finding

ObjKey = tuple[str, str]
"""`(namespace, name)`."""


def key_of(obj: LLMProvider | FallbackChain | LLMGateway) -> ObjKey:
    return (obj.metadata.namespace, obj.metadata.name)


@dataclasses.dataclass(frozen=True)
class AcceptedChain:
    """A chain as the gateway will render it: names resolved, unknown targets dropped."""

    chain: FallbackChain
    model: str
    fallbacks: tuple[str, ...]
    dropped: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Resolution:
    """What one gateway serves, what it leaves out, and why."""

    gateway: LLMGateway
    providers: tuple[LLMProvider, ...]
    """Valid, enabled, selected providers, in (namespace, name) order."""
    disabled: tuple[LLMProvider, ...]
    models: Mapping[str, tuple[ObjKey, ...]]
    """Served model name -> the providers serving it."""
    aliases: Mapping[str, str]
    """Alias -> model name, clashes removed."""
    chains: tuple[AcceptedChain, ...]
    """Accepted chains, by (namespace, name)."""
    order: Mapping[ObjKey, tuple[str, ...]]
    """Effective order of attempts per accepted chain."""
    findings: tuple[Finding, ...]
    excluded: Mapping[tuple[str, str, str], Finding]
    """(kind, namespace, name) -> the first reason an object was left out entirely."""
    selected: frozenset[tuple[str, str, str]]
    """Every object of ours (valid or not) bound to this gateway."""
    service_ports: Mapping[tuple[str, str], Mapping[str, int]]
    """Named ports of the Services the providers use, where known."""
    secret_versions: Mapping[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    """resourceVersion of Secrets, where watched (for rolloutOnSecretChange)."""


def resolve(estate: Estate, gateway: LLMGateway) -> Resolution:
    ns = estate.namespaces

    def bound(namespace: str, labels: Mapping[str, str]) -> bool:
        return selection.binds(gateway, namespace, labels, ns)

    found: list[Finding] = []
    excluded: dict[tuple[str, str, str], Finding] = {}
    selected: set[tuple[str, str, str]] = set()

    def exclude(f: Finding) -> None:
        found.append(f)
        excluded.setdefault((f.kind, f.namespace, f.name), f)

    for bad in estate.invalid:
        if bad.kind != "LLMGateway" and bound(bad.namespace, bad.labels):
            selected.add((bad.kind, bad.namespace, bad.name))
            for f in bad.findings:
                exclude(f)

    providers: list[LLMProvider] = []
    disabled: list[LLMProvider] = []
    for p in estate.providers:
        if not bound(p.metadata.namespace, p.metadata.labels):
            continue
        selected.add(("LLMProvider", *key_of(p)))
        if not p.spec.enabled:
            disabled.append(p)
            continue
        problem = _unresolved_port(estate, p)
        if problem:
            exclude(problem)
            continue
        providers.append(_discovered(estate, p, found))

    models: dict[str, list[ObjKey]] = defaultdict(list)
    for p in providers:
        for m in p.spec.models:
            models[m.name].append(key_of(p))
    declared_elsewhere = _declared_but_unserved(estate, disabled, models)

    aliases = _aliases(providers, models, found)

    def canonical(name: str) -> str | None:
        if name in models:
            return name
        return aliases.get(name)

    # Chains: resolve names, drop unknown targets, one chain per (model, trigger).
    candidates: list[AcceptedChain] = []
    for c in estate.chains:
        if not bound(c.metadata.namespace, c.metadata.labels):
            continue
        selected.add(("FallbackChain", *key_of(c)))
        accepted = _accept_chain(c, canonical, declared_elsewhere, found, exclude)
        if accepted is not None:
            candidates.append(accepted)

    owner: dict[tuple[str, str], AcceptedChain] = {}
    chains: list[AcceptedChain] = []
    for a in candidates:
        slot = (a.model, a.chain.spec.trigger)
        if slot in owner:
            first = owner[slot].chain.metadata
            exclude(
                _finding(
                    a.chain,
                    "spec.model",
                    findings.CONFLICT,
                    f"FallbackChain {first.namespace}/{first.name} already sets the "
                    f"{a.chain.spec.trigger} fallbacks of model {a.model!r}; merge the two "
                    "chains into one",
                )
            )
            continue
        owner[slot] = a
        chains.append(a)

    # Cycles, per trigger: every chain on a cycle is left out, with its path.
    cyclic: set[ObjKey] = set()
    for trigger in TRIGGERS:
        of_trigger = [a for a in chains if a.chain.spec.trigger == trigger]
        g = {a.model: a.fallbacks for a in of_trigger}
        paths = graph.cyclic_edges(g)
        for a in of_trigger:
            path = paths.get(a.model)
            if path is not None:
                cyclic.add(key_of(a.chain))
                exclude(
                    _finding(
                        a.chain,
                        "spec.fallbacks",
                        findings.FALLBACK_CYCLE,
                        f"fallback cycle {graph.format_path(path)} ({trigger}); the chain is "
                        "left out until one of the chains on the cycle drops its link",
                    )
                )
    chains = [a for a in chains if key_of(a.chain) not in cyclic]

    order: dict[ObjKey, tuple[str, ...]] = {}
    depth = gateway.spec.max_fallbacks
    for trigger in TRIGGERS:
        g = {a.model: a.fallbacks for a in chains if a.chain.spec.trigger == trigger}
        for a in chains:
            if a.chain.spec.trigger == trigger:
                order[key_of(a.chain)] = tuple(graph.attempt_order(g, a.model, depth))

    return Resolution(
        gateway=gateway,
        providers=tuple(providers),
        disabled=tuple(disabled),
        models={k: tuple(v) for k, v in sorted(models.items())},
        aliases=dict(sorted(aliases.items())),
        chains=tuple(chains),
        order=order,
        findings=tuple(sorted(set(found))),
        excluded=excluded,
        selected=frozenset(selected),
        service_ports=estate.service_ports,
        secret_versions=estate.backends.secret_versions,
    )


def _finding(obj: LLMProvider | FallbackChain, field: str, reason: str, message: str) -> Finding:
    return Finding(obj.kind, obj.metadata.namespace, obj.metadata.name, field, reason, message)


def _discovered(estate: Estate, p: LLMProvider, found: list[Finding]) -> LLMProvider:
    """A provider that declares no models serves what discovery found (nothing until it has)."""
    if p.spec.models or not p.spec.discovery.enabled:
        return p
    probe = estate.backends.probes.get(key_of(p))
    if probe is None or probe.models is None:
        found.append(
            _warning(
                p,
                "spec.models",
                findings.DISCOVERY_PENDING,
                "declares no models and its backend's model list is not known yet, so it serves "
                "nothing for now"
                + (f" ({probe.error})" if probe is not None and probe.error else "")
                + "; the operator renders what discovery finds",
            )
        )
        return p
    good, bad = backends.servable(probe.models)
    if bad:
        found.append(
            _warning(
                p,
                "spec.models",
                findings.UNSERVABLE_MODEL,
                "the backend reports models whose ids cannot be served by name: "
                + ", ".join(repr(b) for b in bad[:5])
                + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                + "; declare them under spec.models with a name and backendModel",
            )
        )
    spec = p.spec.model_copy(update={"models": tuple(ModelSpec(name=m) for m in good)})
    return p.model_copy(update={"spec": spec})


def _warning(obj: LLMProvider | FallbackChain, field: str, reason: str, message: str) -> Finding:
    return dataclasses.replace(_finding(obj, field, reason, message), severity="warning")


def _unresolved_port(estate: Estate, p: LLMProvider) -> Finding | None:
    endpoint = p.spec.endpoint
    if endpoint is None or endpoint.service is None or isinstance(endpoint.service.port, int):
        return None
    svc = endpoint.service
    namespace = svc.namespace or p.metadata.namespace
    ports = estate.service_ports.get((namespace, svc.name))
    if ports is None:
        return _finding(
            p,
            "spec.endpoint.service.port",
            findings.UNRESOLVED_PORT,
            f"port name {svc.port!r} cannot be resolved: Service {namespace}/{svc.name} is "
            "not known; create the Service (or include its manifest), or give the port number",
        )
    if svc.port not in ports:
        named = ", ".join(sorted(ports)) or "none"
        return _finding(
            p,
            "spec.endpoint.service.port",
            findings.UNRESOLVED_PORT,
            f"Service {namespace}/{svc.name} has no port named {svc.port!r} (named ports: "
            f"{named}); use one of those names or the port number",
        )
    return None


def _declared_but_unserved(
    estate: Estate, disabled: Sequence[LLMProvider], served: Mapping[str, object]
) -> dict[str, str]:
    """Model name -> why it is not served although some provider declares it."""
    why: dict[str, str] = {}
    for p in disabled:
        for m in p.spec.models:
            if m.name not in served:
                why.setdefault(m.name, f"provider {p.metadata.namespace}/{p.metadata.name} is disabled")
    return why


def _aliases(
    providers: Sequence[LLMProvider], models: Mapping[str, object], found: list[Finding]
) -> dict[str, str]:
    """Alias -> model; an alias that names a model, or two models, is dropped and named."""
    claims: dict[str, dict[str, list[LLMProvider]]] = defaultdict(lambda: defaultdict(list))
    for p in providers:
        for m in p.spec.models:
            for alias in m.aliases:
                claims[alias][m.name].append(p)
    out: dict[str, str] = {}
    for alias, targets in sorted(claims.items()):
        if alias in models:
            for model, owners in sorted(targets.items()):
                for p in owners:
                    found.append(
                        _finding(
                            p,
                            "spec.models.aliases",
                            findings.ALIAS_CONFLICT,
                            f"alias {alias!r} of model {model!r} is itself a served model name; "
                            "the alias is not rendered: rename or remove it",
                        )
                    )
            continue
        if len(targets) > 1:
            names = ", ".join(repr(t) for t in sorted(targets))
            for _model, owners in sorted(targets.items()):
                for p in owners:
                    found.append(
                        _finding(
                            p,
                            "spec.models.aliases",
                            findings.ALIAS_CONFLICT,
                            f"alias {alias!r} is claimed for several models ({names}); it is "
                            "not rendered: give each model its own alias",
                        )
                    )
            continue
        (model,) = targets
        out[alias] = model
    return out


def _accept_chain(
    c: FallbackChain,
    resolve_name: Callable[[str], str | None],
    declared_elsewhere: Mapping[str, str],
    found: list[Finding],
    exclude: Callable[[Finding], None],
) -> AcceptedChain | None:
    def unknown(name: str) -> str:
        why = declared_elsewhere.get(name)
        tail = f" ({why})" if why else ""
        return f"no enabled provider serves model {name!r}{tail}"

    model = resolve_name(c.spec.model)
    if model is None:
        exclude(
            _finding(
                c,
                "spec.model",
                findings.UNKNOWN_MODEL,
                f"{unknown(c.spec.model)}; the chain is left out until a provider serves it",
            )
        )
        return None
    kept: list[str] = []
    dropped: list[str] = []
    for i, target in enumerate(c.spec.fallbacks):
        resolved = resolve_name(target)
        if resolved is None:
            dropped.append(target)
            found.append(
                _finding(
                    c,
                    f"spec.fallbacks[{i}]",
                    findings.UNKNOWN_MODEL,
                    f"{unknown(target)}; it is dropped from the chain: add a provider that "
                    "serves it or remove it from the list",
                )
            )
        elif resolved == model:
            # The model falling back to itself under another name: a cycle of length 1.
            dropped.append(target)
            found.append(
                _finding(
                    c,
                    f"spec.fallbacks[{i}]",
                    findings.FALLBACK_CYCLE,
                    f"{target!r} and {c.spec.model!r} both name model {model!r}, so the model "
                    f"would fall back to itself (fallback cycle {model} -> {model}); it is "
                    "dropped: remove it",
                )
            )
        elif resolved in kept:
            dropped.append(target)
            found.append(
                _finding(
                    c,
                    f"spec.fallbacks[{i}]",
                    findings.CONFLICT,
                    f"{target!r} is another name for {resolved!r}, which is already in the list; "
                    "it is dropped: remove it",
                )
            )
        else:
            kept.append(resolved)
    if not kept:
        served = sum(resolve_name(t) is not None for t in dropped)
        if not served:
            why = "none of the fallbacks is served"
        elif served == len(dropped):
            why = "no fallback is left but the chain's own model"
        else:
            why = "no fallback is left once the unknown ones and the chain's own model are dropped"
        exclude(
            _finding(
                c,
                "spec.fallbacks",
                findings.FALLBACK_CYCLE if served == len(dropped) else findings.UNKNOWN_MODEL,
                f"{why}; the chain is left out",
            )
        )
        return None
    return AcceptedChain(chain=c, model=model, fallbacks=tuple(kept), dropped=tuple(dropped))
