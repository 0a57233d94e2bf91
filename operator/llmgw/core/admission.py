"""Admission review of one object against the world the operator knows: allowed, denied, warnings.

The same rules as the reconciler and `llmgw validate`, said before the object is
stored rather than after:

- an object that fails per-object validation (`objects.parse`) is refused, with
  every finding and its field;
- a `FallbackChain` that would close a fallback cycle, in any gateway that would
  serve it, is refused with the cycle's path (`a -> b -> a`); an update that
  leaves an existing cycle as it was is let through, so an object already broken
  can still be relabelled or fixed step by step;
- everything else the status would report (fallbacks to models nothing serves,
  conflicts, objects no gateway binds) is admitted with a warning, which kubectl
  prints: GitOps tools apply objects in any order, and a provider may well
  arrive after the chain that names its model.

Speed: a review must answer in milliseconds on an estate of thousands of chains,
so a chain is not checked by resolving the whole gateway. `World` indexes the
estate once (names grouped with their aliases, chains by the model they are on);
a review resolves only the part of the gateway that the candidate can reach: the
chains reachable from its fallbacks and every provider of the names on the way.
That part gives the candidate exactly the findings a whole-gateway resolve gives
it (the cycles through the candidate lie inside it, and so do the chains it can
conflict with), at a cost that grows with the chains it reaches, not the estate.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmgw.api.chain import TRIGGERS, FallbackChain
from llmgw.api.gateway import LLMGateway
from llmgw.api.provider import LLMProvider
from llmgw.core import estate, findings, objects, pipeline, resolve, selection
from llmgw.core.estate import Estate
from llmgw.core.findings import Finding

ObjectId = tuple[str, str, str]
"""(kind, namespace, name)."""

MAX_WARNINGS = 10


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The answer to one review."""

    allowed: bool
    message: str = ""
    """Why it is refused (empty when allowed)."""
    warnings: tuple[str, ...] = ()


class World:
    """The estate, indexed for reviews. Build once per state of the world; reviews only read it."""

    def __init__(self, estate: Estate) -> None:
        self.estate = estate
        self.gateways = pipeline.gateways(estate)
        # Union-find over names: a model and its aliases are one group.
        self._parent: dict[str, str] = {}
        for p in estate.providers:
            for m in p.spec.models:
                self._parent.setdefault(m.name, m.name)
                for alias in m.aliases:
                    self._parent.setdefault(alias, alias)
                    a, b = self.group(m.name), self.group(alias)
                    if a != b:
                        self._parent[max(a, b)] = min(a, b)
        self.providers_of: dict[str, list[LLMProvider]] = defaultdict(list)
        for p in estate.providers:
            for g in sorted({self.group(n) for m in p.spec.models for n in (m.name, *m.aliases)}):
                self.providers_of[g].append(p)
        self.chains_on: dict[tuple[str, str], list[FallbackChain]] = defaultdict(list)
        for c in estate.chains:
            self.chains_on[(self.group(c.spec.model), c.spec.trigger)].append(c)

    def group(self, name: str) -> str:
        """The name a model and all its aliases share (the name itself when nothing serves it)."""
        parent = self._parent
        root = name
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(name, name) != root:
            parent[name], name = root, parent[name]
        return root


def build_estate(
    parsed: Iterable[objects.Parsed | objects.Invalid],
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    base: Estate | None = None,
) -> Estate:
    """An Estate from objects parsed already (the webhook keeps them parsed between reviews)."""
    return dataclasses.replace(
        base or Estate(),
        **estate.by_kind(parsed),
        namespaces=dict(namespaces or (base.namespaces if base else {})),
    )


def review(world: World, raw: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> Verdict:
    """Whether to admit `raw` (a create, or an update of `old`) into the world.

    Never raises: what is not an object of one of the three kinds (another kind, no kind,
    not a mapping) is refused in a sentence, and an `old` that is not the same kind is
    taken as no old object at all.
    """
    kind = raw.get("kind") if isinstance(raw, Mapping) else None
    if not isinstance(kind, str) or kind not in objects.KINDS:
        return Verdict(False, _not_ours(raw))
    parsed = objects.parse(_named(raw))
    if isinstance(parsed, objects.Invalid):
        return Verdict(False, _invalid_message(parsed))
    if isinstance(parsed, FallbackChain):
        return _review_chain(world, parsed, old)
    if isinstance(parsed, LLMProvider):
        return _review_provider(world, parsed)
    return _review_gateway(world, parsed)


def _named(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """A create with `generateName` may reach admission without a name yet."""
    meta = raw.get("metadata")
    if isinstance(meta, Mapping) and not meta.get("name") and meta.get("generateName"):
        return {**raw, "metadata": {**meta, "name": str(meta["generateName"]).rstrip("-.") or "x"}}
    return raw


def _not_ours(raw: Any) -> str:
    kinds = f"{', '.join(list(objects.KINDS)[:-1])} or {list(objects.KINDS)[-1]}"
    if not isinstance(raw, Mapping):
        shown = "null" if raw is None else f"a {type(raw).__name__}"
        return f"the object under review is {shown}, not an object of kind {kinds}"
    _kind, namespace, name = objects.identity(raw)
    kind = raw.get("kind")
    said = f"kind {str(kind)[:100]!r}" if kind not in (None, "") else "no kind"
    return f"{namespace}/{name} has {said}; this webhook reviews only objects of kind {kinds}"


def _invalid_message(bad: objects.Invalid) -> str:
    said = "; ".join(f"{f.field}: {f.message}" if f.field else f.message for f in bad.findings)
    return f"{bad.kind} {bad.namespace}/{bad.name} is invalid: {said}"


def _binding(world: World, namespace: str, labels: Mapping[str, str]) -> list[LLMGateway]:
    known = world.estate.namespaces
    return [g for g in world.gateways if selection.binds(g, namespace, labels, known)]


def _not_bound(world: World, kind: str, namespace: str, name: str) -> str:
    names = ", ".join(f"{g.metadata.namespace}/{g.metadata.name}" for g in world.gateways) or "none"
    return (
        f"{kind} {namespace}/{name}: no LLMGateway binds it (gateways: {names}); it is stored but "
        "serves nothing until a gateway's spec.selector and spec.namespaces take it in"
    )


# -- chains ------------------------------------------------------------------------------------


def _review_chain(world: World, chain: FallbackChain, old_raw: Mapping[str, Any] | None) -> Verdict:
    meta = chain.metadata
    gateways = _binding(world, meta.namespace, meta.labels)
    if not gateways:
        return Verdict(True, warnings=(_not_bound(world, chain.kind, meta.namespace, meta.name),))
    same_kind = isinstance(old_raw, Mapping) and old_raw.get("kind") == chain.kind
    old = objects.parse(_named(old_raw)) if old_raw is not None and same_kind else None
    old_chain = old if isinstance(old, FallbackChain) else None
    refused: list[str] = []
    warned: list[str] = []
    for gw in gateways:
        found = chain_findings(world, gw, chain)
        where = f" (gateway {gw.metadata.namespace}/{gw.metadata.name})" if len(gateways) > 1 else ""
        cycles = [f for f in found if f.reason == findings.FALLBACK_CYCLE]
        if cycles and old_chain is not None:
            before = {_cycle_text(f) for f in chain_findings(world, gw, old_chain)}
            kept = [f for f in cycles if _cycle_text(f) in before]
            for f in kept:
                warned.append(f"{f}{where}; it was so before this change")
            cycles = [f for f in cycles if _cycle_text(f) not in before]
        named = f" (gateway {gw.metadata.namespace}/{gw.metadata.name})"
        for f in cycles:
            refused.append(f"{f.object_ref} {f.field}: {_cycle_text(f)}{named}")
        warned += [f"{f}{where}" for f in found if f.reason != findings.FALLBACK_CYCLE]
    warnings = _dedupe(warned)
    if refused:
        message = "; ".join(_dedupe(refused)) + (
            ". A fallback cycle would leave every chain on it out of the gateway's config: "
            "remove the link that closes it"
        )
        return Verdict(False, message, warnings)
    return Verdict(True, warnings=warnings)


def _cycle_text(f: Finding) -> str:
    """The part of a cycle finding that names the cycle, without what the status says next."""
    return f.message.split(";")[0]


def chain_findings(world: World, gateway: LLMGateway, chain: FallbackChain) -> tuple[Finding, ...]:
    """The findings `resolve` gives `chain` in `gateway` once it replaces its namesake."""
    part = _reachable(world, gateway, chain)
    res = resolve.resolve(part, gateway)
    me = (chain.metadata.namespace, chain.metadata.name)
    return tuple(f for f in res.findings if f.kind == chain.kind and (f.namespace, f.name) == me)


def _reachable(world: World, gateway: LLMGateway, chain: FallbackChain) -> Estate:
    """The part of the gateway's estate that decides `chain`'s findings."""
    known = world.estate.namespaces
    me = resolve.key_of(chain)
    trigger = chain.spec.trigger
    chains: dict[tuple[str, str], FallbackChain] = {me: chain}
    groups: set[str] = set()
    todo = [chain.spec.model, *chain.spec.fallbacks]
    while todo:
        group = world.group(todo.pop())
        if group in groups:
            continue
        groups.add(group)
        for c in world.chains_on.get((group, trigger), ()):
            key = resolve.key_of(c)
            if key in chains or not selection.binds(gateway, key[0], c.metadata.labels, known):
                continue
            chains[key] = c
            todo += [c.spec.model, *c.spec.fallbacks]
    providers: dict[tuple[str, str], LLMProvider] = {}
    for group in groups:
        for p in world.providers_of.get(group, ()):
            providers[resolve.key_of(p)] = p
    return dataclasses.replace(
        world.estate,
        providers=tuple(providers[k] for k in sorted(providers)),
        chains=tuple(chains[k] for k in sorted(chains)),
        gateways=(gateway,),
        invalid=(),
        findings=(),
    )


# -- providers and gateways --------------------------------------------------------------------


def _review_provider(world: World, provider: LLMProvider) -> Verdict:
    meta = provider.metadata
    gateways = _binding(world, meta.namespace, meta.labels)
    if not gateways:
        return Verdict(True, warnings=(_not_bound(world, provider.kind, meta.namespace, meta.name),))
    me = resolve.key_of(provider)
    names = {n for m in provider.spec.models for n in (m.name, *m.aliases)}
    groups = {world.group(n) for n in names}
    warned: list[str] = []
    for gw in gateways:
        others = {
            resolve.key_of(p): p
            for g in groups
            for p in world.providers_of.get(g, ())
            if resolve.key_of(p) != me
        }
        others[me] = provider
        part = dataclasses.replace(
            world.estate,
            providers=tuple(others[k] for k in sorted(others)),
            chains=(),
            gateways=(gw,),
            invalid=(),
            findings=(),
        )
        where = f" (gateway {gw.metadata.namespace}/{gw.metadata.name})" if len(gateways) > 1 else ""
        res = resolve.resolve(part, gw)
        warned += [
            f"{f}{where}"
            for f in res.findings
            if f.kind == provider.kind and (f.namespace, f.name) == (meta.namespace, meta.name)
        ]
        named = f" (gateway {gw.metadata.namespace}/{gw.metadata.name})"
        for cycle, chains in _closed_by(world, gw, provider, groups).items():
            warned.append(
                f"{provider.kind} {meta.namespace}/{meta.name} spec.models: serving these models closes "
                f"{cycle}{named}; {_refs(chains)} will be left out of its config until one of them "
                "drops its link"
            )
    return Verdict(True, warnings=_dedupe(warned))


def _cycles(res: resolve.Resolution) -> dict[str, set[str]]:
    """Each fallback cycle a resolution found (its path), with the chains on it."""
    out: dict[str, set[str]] = defaultdict(set)
    for f in res.findings:
        m = _CYCLE.match(f.message) if f.reason == findings.FALLBACK_CYCLE else None
        if m is None:
            continue
        # Each chain on a cycle states it from its own model: one cycle, several rotations.
        nodes = m["path"].split(" -> ")[:-1]
        first = nodes.index(min(nodes))
        rotated = [*nodes[first:], *nodes[:first], nodes[first]]
        out[f"fallback cycle {' -> '.join(rotated)} ({m['trigger']})"].add(f.object_ref)
    return out


_CYCLE = re.compile(r"fallback cycle (?P<path>.+?) \((?P<trigger>\w+)\)")


def _refs(chains: Iterable[str]) -> str:
    """`FallbackChain ns/a, ns/b`, in a stable order."""
    names = sorted(c.split(" ", 1)[1] for c in chains)
    return f"FallbackChain {', '.join(names)}"


def _closed_by(
    world: World, gateway: LLMGateway, provider: LLMProvider, groups: set[str]
) -> dict[str, set[str]]:
    """The fallback cycles that `provider` (created or changed) would close in `gateway`.

    A chain's link counts only when both its ends are served, so serving a name can turn
    chains that were each fine into a cycle. Any such cycle passes through a chain on one
    of the provider's names; the part reachable from those chains is resolved with the
    provider as it is stored and as it would be.
    """
    known = world.estate.namespaces
    me = resolve.key_of(provider)
    starts = {
        resolve.key_of(c): c
        for g in sorted(groups)
        for trigger in TRIGGERS
        for c in world.chains_on.get((g, trigger), ())
        if selection.binds(gateway, c.metadata.namespace, c.metadata.labels, known)
    }
    before: dict[str, set[str]] = defaultdict(set)
    after: dict[str, set[str]] = defaultdict(set)
    for key in sorted(starts):
        part = _reachable(world, gateway, starts[key])
        for cycle, chains in _cycles(resolve.resolve(part, gateway)).items():
            before[cycle] |= chains
        others = tuple(p for p in part.providers if resolve.key_of(p) != me)
        with_me = tuple(sorted((*others, provider), key=resolve.key_of))
        for cycle, chains in _cycles(
            resolve.resolve(dataclasses.replace(part, providers=with_me), gateway)
        ).items():
            after[cycle] |= chains
    return {cycle: chains for cycle, chains in sorted(after.items()) if cycle not in before}


def _review_gateway(world: World, gateway: LLMGateway) -> Verdict:
    """Per-object rules decide; a gateway that would bind no provider, or chains on a cycle, is
    worth a word. Gateways change seldom, so this one resolves the whole gateway."""
    known = world.estate.namespaces
    providers = world.estate.providers
    meta = gateway.metadata
    if providers and not any(
        selection.binds(gateway, p.metadata.namespace, p.metadata.labels, known) for p in providers
    ):
        return Verdict(
            True,
            warnings=(
                f"LLMGateway {meta.namespace}/{meta.name}: binds none of the {len(providers)} "
                "LLMProvider(s) known; check spec.selector and spec.namespaces",
            ),
        )
    part = dataclasses.replace(world.estate, gateways=(gateway,), invalid=(), findings=())
    warned = [
        f"LLMGateway {meta.namespace}/{meta.name}: binds chains on {cycle}; {_refs(chains)} will be "
        "left out of its config until one of them drops its link"
        for cycle, chains in sorted(_cycles(resolve.resolve(part, gateway)).items())
    ]
    return Verdict(True, warnings=_dedupe(warned))


def _dedupe(items: Sequence[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(items))
    if len(out) > MAX_WARNINGS:
        out = (*out[: MAX_WARNINGS - 1], f"and {len(out) - MAX_WARNINGS + 1} more")
    return out
