"""Cross-object validation for one gateway: what it can serve, and what it leaves out.

Per-object validation is done by the models; here the objects are checked
against each other: chains to models nobody serves, alias clashes, two chains
for one model, fallback cycles, fallbacks that can never help (another mode
than the primary's; in a contextWindow chain, no larger window). Everything
left out is named with a finding; nothing is dropped silently.

A model name served by several providers is one load-balanced group, so what a
request can rely on is what all its deployments share: the group's modes are
the set of theirs (more than one is itself a finding), and its context window
is the smallest they declare. All of it is one pass over the deployments and
one over the chains' links.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llmgw.api.chain import TRIGGERS, FallbackChain
from llmgw.api.gateway import LLMGateway
from llmgw.api.provider import LLMProvider, ModelSpec
from llmgw.core import backends, findings, graph, keys, selection
from llmgw.core import endpoints as endpoints_mod
from llmgw.core.estate import Estate
from llmgw.core.findings import Finding


@dataclasses.dataclass(frozen=True)
class AcceptedChain:
    """A chain as the gateway will render it: names resolved, unknown targets dropped."""

    chain: FallbackChain
    model: str
    fallbacks: tuple[str, ...]
    dropped: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What a request to a served model can rely on, from its deployments' declarations."""

    modes: frozenset[str]
    """The modes of its deployments: one, unless the group is mixed (`ConflictingModes`)."""
    windows: tuple[int, ...] = ()
    """The distinct context windows its deployments declare, smallest first."""

    @property
    def mode(self) -> str | None:
        """The group's mode, when its deployments agree on one."""
        return next(iter(self.modes)) if len(self.modes) == 1 else None

    @property
    def context_window(self) -> int | None:
        """The smallest declared window (what any deployment can take), None if none declares one."""
        return self.windows[0] if self.windows else None


@dataclasses.dataclass(frozen=True)
class Resolution:
    """What one gateway serves, what it leaves out, and why."""

    gateway: LLMGateway
    providers: tuple[LLMProvider, ...]
    """Valid, enabled, selected providers, in (namespace, name) order."""
    disabled: tuple[LLMProvider, ...]
    models: Mapping[str, tuple[keys.Key, ...]]
    """Served model name -> the providers serving it."""
    aliases: Mapping[str, str]
    """Alias -> model name, clashes removed."""
    chains: tuple[AcceptedChain, ...]
    """Accepted chains, by (namespace, name)."""
    order: Mapping[keys.Key, tuple[str, ...]]
    """Effective order of attempts per accepted chain."""
    info: Mapping[str, ModelInfo]
    """Served model name -> its group's modes and context window."""
    findings: tuple[Finding, ...]
    excluded: Mapping[keys.ObjectId, Finding]
    """(kind, namespace, name) -> the first reason an object was left out entirely."""
    selected: frozenset[keys.ObjectId]
    """Every object of ours (valid or not) bound to this gateway."""
    endpoints: Mapping[keys.Key, endpoints_mod.Endpoint]
    """Each provider's backend, resolved (`Estate.endpoints`)."""
    secret_versions: Mapping[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    """resourceVersion of Secrets, where watched (for rolloutOnSecretChange)."""


def resolve(estate: Estate, gateway: LLMGateway) -> Resolution:
    ns = estate.namespaces

    def bound(namespace: str, labels: Mapping[str, str]) -> bool:
        return selection.binds(gateway, namespace, labels, ns)

    found: list[Finding] = []
    excluded: dict[keys.ObjectId, Finding] = {}
    selected: set[keys.ObjectId] = set()

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
        selected.add(("LLMProvider", *keys.of(p)))
        if not p.spec.enabled:
            disabled.append(p)
            continue
        problem = _unresolved_port(estate, p)
        if problem:
            exclude(problem)
            continue
        providers.append(_discovered(estate, p, found))

    models: dict[str, list[keys.Key]] = defaultdict(list)
    for p in providers:
        for m in p.spec.models:
            models[m.name].append(keys.of(p))
    info = _model_info(providers, found)
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
        selected.add(("FallbackChain", *keys.of(c)))
        accepted = _accept_chain(c, canonical, info, declared_elsewhere, found, exclude)
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

    # Cycles, per trigger: every chain on a cycle is left out, with its own cycle when short,
    # else pointing to its component's cycle, said once (on the chain of its first model).
    cyclic: set[keys.Key] = set()
    for trigger in TRIGGERS:
        on_model = {a.model: a for a in chains if a.chain.spec.trigger == trigger}
        places = graph.cycles({m: a.fallbacks for m, a in on_model.items()})
        for a in on_model.values():
            place = places.get(a.model)
            if place is not None:
                cyclic.add(keys.of(a.chain))
                said = _cycle_said(place, a.model, on_model[place.cycle.first].chain, trigger)
                exclude(
                    _finding(
                        a.chain,
                        "spec.fallbacks",
                        findings.FALLBACK_CYCLE,
                        f"{said}; the chain is left out until one of the chains on the cycle drops its link",
                    )
                )
    chains = [a for a in chains if keys.of(a.chain) not in cyclic]

    order: dict[keys.Key, tuple[str, ...]] = {}
    depth = gateway.spec.max_fallbacks
    for trigger in TRIGGERS:
        g = {a.model: a.fallbacks for a in chains if a.chain.spec.trigger == trigger}
        for a in chains:
            if a.chain.spec.trigger == trigger:
                order[keys.of(a.chain)] = tuple(graph.attempt_order(g, a.model, depth))

    return Resolution(
        gateway=gateway,
        providers=tuple(providers),
        disabled=tuple(disabled),
        models={k: tuple(v) for k, v in sorted(models.items())},
        aliases=dict(sorted(aliases.items())),
        chains=tuple(chains),
        order=order,
        info=info,
        findings=tuple(sorted(set(found))),
        excluded=excluded,
        selected=frozenset(selected),
        endpoints=estate.endpoints,
        secret_versions=estate.backends.secret_versions,
    )


def attempts(resolution: Resolution, tried: Sequence[str]) -> list[dict[str, Any]]:
    """A chain's effective order as `status.attempts` says it: each model, with its group's
    context window and mode where known."""
    rows: list[dict[str, Any]] = []
    for model in tried:
        row: dict[str, Any] = {"model": model}
        info = resolution.info.get(model)
        if info is not None and info.context_window is not None:
            row["contextWindow"] = info.context_window
        if info is not None and info.mode is not None:
            row["mode"] = info.mode
        rows.append(row)
    return rows


def _cycle_said(place: graph.Place, model: str, reporter: FallbackChain, trigger: str) -> str:
    """A chain's cycle in bounded words.

    Its own, or the one reported here: `fallback cycle a -> b -> c -> a (errors)`, a long one
    by its ends and length, `fallback cycle a -> b -> c -> ... -> y -> z -> a (1,000 models,
    errors)`. Any other chain names the cycle by its first model and length, and where it is
    reported: `on fallback cycle a -> ... -> a (1,000 models, errors), reported on
    FallbackChain ns/a`.
    """
    cycle = place.cycle
    long = cycle.models > graph.SHOWN
    counted = f"{cycle.models:,} models, {trigger}" if long else trigger
    if cycle.first == model:
        return f"fallback cycle {graph.format_path(cycle.path)} ({counted})"
    named = f"{cycle.first} -> ... -> {cycle.first}" if long else graph.format_path(cycle.path)
    where = f"{reporter.metadata.namespace}/{reporter.metadata.name}"
    said = f"fallback cycle {named} ({counted}), reported on FallbackChain {where}"
    if place.on_it:
        return f"on {said}"
    return f"on a cycle among the {place.loop:,} models that fall back to one another with {said}"


def _finding(obj: LLMProvider | FallbackChain, field: str, reason: str, message: str) -> Finding:
    return Finding(obj.kind, obj.metadata.namespace, obj.metadata.name, field, reason, message)


def _discovered(estate: Estate, p: LLMProvider, found: list[Finding]) -> LLMProvider:
    """A provider that declares no models serves what discovery found (nothing until it has)."""
    if p.spec.models or not p.spec.discovery.enabled:
        return p
    probe = estate.backends.probes.get(keys.of(p))
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
    ep = estate.endpoints[keys.of(p)]
    if ep.service is None or ep.number is not None:
        return None
    where = f"Service {ep.service[0]}/{ep.service[1]}"
    if ep.ports is None:
        return _finding(
            p,
            "spec.endpoint.service.port",
            findings.UNRESOLVED_PORT,
            f"port name {ep.port!r} cannot be resolved: {where} is "
            "not known; create the Service (or include its manifest), or give the port number",
        )
    named = ", ".join(sorted(ep.ports)) or "none"
    return _finding(
        p,
        "spec.endpoint.service.port",
        findings.UNRESOLVED_PORT,
        f"{where} has no port named {ep.port!r} (named ports: "
        f"{named}); use one of those names or the port number",
    )


def _model_info(providers: Sequence[LLMProvider], found: list[Finding]) -> dict[str, ModelInfo]:
    """Each served name's group: its modes and windows; a group of mixed modes is named on
    each of its providers (an error: LiteLLM balances requests over all of a name's
    deployments, so some would reach one that cannot serve them)."""
    modes: dict[str, dict[str, list[tuple[LLMProvider, int]]]] = defaultdict(lambda: defaultdict(list))
    windows: dict[str, set[int]] = defaultdict(set)
    for p in providers:
        for i, m in enumerate(p.spec.models):
            modes[m.name][m.mode].append((p, i))
            if m.context_window is not None:
                windows[m.name].add(m.context_window)
    for name, by_mode in sorted(modes.items()):
        if len(by_mode) < 2:
            continue
        for mode, deployments in sorted(by_mode.items()):
            elsewhere = "; ".join(
                f"{other} on "
                + ", ".join(sorted(f"{q.metadata.namespace}/{q.metadata.name}" for q, _ in them))
                for other, them in sorted(by_mode.items())
                if other != mode
            )
            for p, i in deployments:
                found.append(
                    _finding(
                        p,
                        f"spec.models[{i}].mode",
                        findings.CONFLICTING_MODES,
                        f"model {name!r} is {mode} here but {elsewhere}: LiteLLM balances the "
                        "requests for a name over all its deployments, so some would reach one "
                        "that cannot serve them (a fallback to or from it is dropped only when it "
                        "shares none of its modes); give the deployments one mode, or the models "
                        "different names",
                    )
                )
    return {
        name: ModelInfo(modes=frozenset(by_mode), windows=tuple(sorted(windows.get(name, ()))))
        for name, by_mode in modes.items()
    }


def _modes(i: ModelInfo) -> str:
    return " or ".join(sorted(i.modes))


def _window(i: ModelInfo) -> str:
    """`131072 tokens`, `unknown`, or the smallest of a group's windows, saying so."""
    if i.context_window is None:
        return "unknown"
    if len(i.windows) == 1:
        return f"{i.context_window} tokens"
    return (
        f"{i.context_window} tokens, the smallest its deployments declare "
        f"({', '.join(str(w) for w in i.windows)})"
    )


def _shown(target: str, resolved: str, said: str) -> str:
    """`embed (embedding)`, or for a fallback named by an alias `vectors (model embed, embedding)`."""
    return f"{target} ({said})" if target == resolved else f"{target} (model {resolved}, {said})"


def _incompatible(model: str, target: str, resolved: str, info: Mapping[str, ModelInfo]) -> str | None:
    """Why fallback `target` (model `resolved`) can never serve `model`'s requests, if it cannot."""
    primary, fallback = info[model], info[resolved]
    if primary.modes & fallback.modes:
        return None
    shown = _shown(target, resolved, _modes(fallback))
    return (
        f"{shown} cannot serve the requests of {model} ({_modes(primary)}); "
        f"it is dropped from the chain: fall back to a {_modes(primary)} model instead, or remove it"
    )


def _no_larger_window(model: str, target: str, resolved: str, info: Mapping[str, ModelInfo]) -> str | None:
    """Why contextWindow fallback `target` may not take a prompt too long for `model`, if so."""
    primary, fallback = info[model], info[resolved]
    if (
        primary.context_window is not None
        and fallback.context_window is not None
        and fallback.context_window > primary.context_window
    ):
        return None
    shown = _shown(target, resolved, _window(fallback))
    if primary.context_window is None or fallback.context_window is None:
        said = f"{shown} is not known to be larger than {model} ({_window(primary)})"
        todo = "declare contextWindow on the models' providers, or fall back to a model with a larger one"
    else:
        said = f"{shown} is not larger than {model} ({_window(primary)})"
        todo = "fall back to a model with a larger context window, or use trigger errors"
    return f"{said}, so a prompt too long for {model} may be too long for it too; the link is kept: {todo}"


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
    info: Mapping[str, ModelInfo],
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
    why_dropped: list[str] = []
    for i, target in enumerate(c.spec.fallbacks):
        resolved = resolve_name(target)
        if resolved is None:
            dropped.append(target)
            why_dropped.append(findings.UNKNOWN_MODEL)
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
            why_dropped.append(findings.FALLBACK_CYCLE)
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
            why_dropped.append(findings.CONFLICT)
            found.append(
                _finding(
                    c,
                    f"spec.fallbacks[{i}]",
                    findings.CONFLICT,
                    f"{target!r} is another name for {resolved!r}, which is already in the list; "
                    "it is dropped: remove it",
                )
            )
        elif (incompatible := _incompatible(model, target, resolved, info)) is not None:
            dropped.append(target)
            why_dropped.append(findings.INCOMPATIBLE_MODEL)
            found.append(_finding(c, f"spec.fallbacks[{i}]", findings.INCOMPATIBLE_MODEL, incompatible))
        else:
            kept.append(resolved)
            if c.spec.trigger == "contextWindow":
                smaller = _no_larger_window(model, target, resolved, info)
                if smaller is not None:
                    found.append(
                        _warning(c, f"spec.fallbacks[{i}]", findings.NO_LARGER_CONTEXT_WINDOW, smaller)
                    )
    if not kept:
        exclude(_finding(c, "spec.fallbacks", *_none_left(why_dropped)))
        return None
    return AcceptedChain(chain=c, model=model, fallbacks=tuple(kept), dropped=tuple(dropped))


_DROPPED_AS = {
    findings.UNKNOWN_MODEL: "the unknown ones",
    findings.INCOMPATIBLE_MODEL: "those of another mode",
    findings.FALLBACK_CYCLE: "the chain's own model",
}


def _none_left(why_dropped: Sequence[str]) -> tuple[str, str]:
    """The reason and message of a chain left with no fallback, from why each was dropped
    (an unknown model first, as it may yet be served; then another mode; then a cycle)."""
    reasons = set(why_dropped)
    if reasons == {findings.UNKNOWN_MODEL}:
        return findings.UNKNOWN_MODEL, "none of the fallbacks is served; the chain is left out"
    if reasons == {findings.FALLBACK_CYCLE}:
        return findings.FALLBACK_CYCLE, "no fallback is left but the chain's own model; the chain is left out"
    if reasons == {findings.INCOMPATIBLE_MODEL}:
        return (
            findings.INCOMPATIBLE_MODEL,
            "every fallback is of another mode than the chain's model; the chain is left out",
        )
    reason = next(r for r in _DROPPED_AS if r in reasons)
    parts = [_DROPPED_AS[r] for r in _DROPPED_AS if r in reasons]
    said = ", ".join(parts[:-1]) + f" and {parts[-1]}"
    return reason, f"no fallback is left once {said} are dropped; the chain is left out"
