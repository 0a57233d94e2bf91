"""Admission review of one object against the world the operator knows: allowed, denied, warnings.

The same rules as the reconciler and `llmgw validate`, said before the object is
stored rather than after:

- an object that fails per-object validation (`objects.parse`) is refused, with
  every finding and its field;
- a `FallbackChain` that would close a fallback cycle, in any gateway that would
  serve it, is refused with the cycle's path (`a -> b -> a`); an update that
  leaves an existing cycle as it was is let through, so an object already broken
  can still be relabelled or fixed step by step;
- everything else the status would report (fallbacks to models nothing serves or
  of another mode, contextWindow fallbacks not known to be larger, a model name
  served with mixed modes, conflicts, objects no gateway binds) is admitted with a
  warning, which kubectl prints: GitOps tools apply objects in any order, and a
  provider may well arrive after the chain that names its model.

Speed: a review must answer in milliseconds on an estate of thousands of chains,
so a chain is not checked by resolving the whole gateway. `World` indexes the
estate (names grouped with their aliases, providers by name, chains by the model
they are on) and keeps the indexes current one changed object at a time, at a
cost that grows with what the object touches, not with the estate;
a review resolves only the part of the gateway that the candidate can reach: the
chains reachable from its fallbacks and every provider of the names on the way.
That part gives the candidate exactly the findings a whole-gateway resolve gives
it (the cycles through the candidate lie inside it, and so do the chains it can
conflict with), at a cost that grows with the chains it reaches, not the estate.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmgw.api.chain import TRIGGERS, FallbackChain
from llmgw.api.gateway import LLMGateway
from llmgw.api.provider import LLMProvider
from llmgw.core import estate, findings, keys, objects, pipeline, resolve, selection
from llmgw.core.estate import Estate
from llmgw.core.findings import Finding

MAX_WARNINGS = 10


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The answer to one review."""

    allowed: bool
    message: str = ""
    """Why it is refused (empty when allowed)."""
    warnings: tuple[str, ...] = ()


class World:
    """The estate, indexed for reviews, and kept current one object at a time.

    Built whole from an Estate, then changed by `put` (an object created or changed),
    `remove` (deleted), `set_namespace` and `set_service` (a Namespace's labels, a Service's
    named ports). Each change takes the old object's contributions out of the indexes and
    puts the new one's in, so it costs what the object touches (its names and their group
    of aliases), never the estate; a World built from scratch from the same objects answers
    every review the same (tests/admission/test_incremental.py). Reviews only read it, between
    changes.

    Indexed: the objects by id; names grouped with their aliases (the links each provider's
    models make, counted, so that taking a provider away can split a group); providers by
    each name they serve; chains by the model and trigger they are on; the gateways. The
    whole `estate` is assembled only when asked for (a gateway's review resolves it all).
    """

    def __init__(self, estate: Estate | None = None) -> None:
        estate = estate or Estate()
        self._namespaces = {ns: dict(labels) for ns, labels in estate.namespaces.items()}
        self._ports = {key: dict(ports) for key, ports in estate.service_ports.items()}
        # The estate without its objects (namespaces, Services' ports, backends): the parts that
        # reviews resolve start here. It holds the two maps above, which changes update in place.
        self.base: Estate = dataclasses.replace(
            estate,
            providers=(),
            chains=(),
            gateways=(),
            invalid=(),
            findings=(),
            namespaces=self._namespaces,
            service_ports=self._ports,
        )
        self._objects: dict[keys.ObjectId, objects.Parsed | objects.Invalid] = {}
        # Names linked by an alias: each name's neighbours, with how many models link them.
        self._links: dict[str, Counter[str]] = defaultdict(Counter)
        # A group of two or more names: each name's group (its least name), each group's names.
        self._group_of: dict[str, str] = {}
        self._members: dict[str, set[str]] = {}
        self._naming: dict[str, dict[keys.Key, LLMProvider]] = defaultdict(dict)
        self._chains_from: dict[tuple[str, str], dict[keys.Key, FallbackChain]] = defaultdict(dict)
        self._gateways_given: dict[keys.ObjectId, LLMGateway | objects.Invalid] = {}
        self._estate: Estate | None = None
        self._gateways: tuple[LLMGateway, ...] | None = None
        every: Iterable[objects.Parsed | objects.Invalid] = (
            *estate.providers,
            *estate.chains,
            *estate.gateways,
            *estate.invalid,
        )
        for obj in every:
            self.put(obj)

    # -- what reviews read ------------------------------------------------------------------

    def group(self, name: str) -> str:
        """The name a model and all its aliases share (the name itself when nothing links it)."""
        return self._group_of.get(name, name)

    def providers_of(self, group: str) -> dict[keys.Key, LLMProvider]:
        """The providers that serve a name of the group, by key."""
        return {k: p for n in self._names(group) for k, p in self._naming.get(n, {}).items()}

    def chains_on(self, group: str, trigger: str) -> list[FallbackChain]:
        """The chains on a name of the group with this trigger."""
        return [c for n in self._names(group) for c in self._chains_from.get((n, trigger), {}).values()]

    @property
    def namespaces(self) -> Mapping[str, Mapping[str, str]]:
        """Labels of namespaces, where known."""
        return self._namespaces

    @property
    def gateways(self) -> tuple[LLMGateway, ...]:
        """The gateways that serve (`pipeline.gateways` of the estate)."""
        if self._gateways is None:
            given = self._gateways_given.values()
            valid = sorted((g for g in given if isinstance(g, LLMGateway)), key=keys.of)
            broken = tuple(g for g in given if isinstance(g, objects.Invalid))
            self._gateways = pipeline.gateways(Estate(gateways=tuple(valid), invalid=broken))
        return self._gateways

    @property
    def estate(self) -> Estate:
        """Every object, as one Estate (assembled on the first read after a change)."""
        if self._estate is None:
            self._estate = dataclasses.replace(self.base, **estate.by_kind(self._objects.values()))
        return self._estate

    def _names(self, group: str) -> Iterable[str]:
        return self._members.get(group, (group,))

    # -- changes ----------------------------------------------------------------------------

    def put(self, obj: objects.Parsed | objects.Invalid) -> None:
        """An object created, or changed in place of the one of its kind and name."""
        oid = id_of(obj)
        self.remove(oid)
        self._objects[oid] = obj
        self._estate = None
        if isinstance(obj, LLMProvider):
            key = keys.of(obj)
            for m in obj.spec.models:
                for name in (m.name, *m.aliases):
                    self._naming[name][key] = obj
                for alias in m.aliases:
                    self._link(m.name, alias)
        elif isinstance(obj, FallbackChain):
            self._chains_from[(obj.spec.model, obj.spec.trigger)][keys.of(obj)] = obj
        elif isinstance(obj, LLMGateway) or obj.kind == "LLMGateway":
            self._gateways_given[oid] = obj
            self._gateways = None

    def remove(self, oid: keys.ObjectId) -> None:
        """An object deleted (nothing happens when there is none of that id)."""
        obj = self._objects.pop(oid, None)
        if obj is None:
            return
        self._estate = None
        if isinstance(obj, LLMProvider):
            key = keys.of(obj)
            split: set[str] = set()
            for m in obj.spec.models:
                for name in (m.name, *m.aliases):
                    _drop(self._naming, name, key)
                for alias in m.aliases:
                    split |= self._unlink(m.name, alias)
            for group in split:
                self._regroup(group)
        elif isinstance(obj, FallbackChain):
            _drop(self._chains_from, (obj.spec.model, obj.spec.trigger), keys.of(obj))
        elif isinstance(obj, LLMGateway) or obj.kind == "LLMGateway":
            del self._gateways_given[oid]
            self._gateways = None

    def set_namespace(self, name: str, labels: Mapping[str, str] | None) -> None:
        """A Namespace's labels (None: the namespace is gone)."""
        if labels is None:
            self._namespaces.pop(name, None)
        else:
            self._namespaces[name] = dict(labels)
        self._estate = None

    def set_service(self, key: keys.Key, ports: Mapping[str, int] | None) -> None:
        """A Service's named ports (None: the Service is gone)."""
        if ports is None:
            self._ports.pop(key, None)
        else:
            self._ports[key] = dict(ports)
        self._estate = None  # its endpoints read the ports

    def _link(self, a: str, b: str) -> None:
        if a == b:
            return
        self._links[a][b] += 1
        self._links[b][a] += 1
        ga, gb = self.group(a), self.group(b)
        if ga == gb:
            return
        keep, gone = min(ga, gb), max(ga, gb)
        names = self._members.setdefault(keep, {keep})
        for n in self._members.pop(gone, {gone}):
            self._group_of[n] = keep
            names.add(n)
        self._group_of[keep] = keep

    def _unlink(self, a: str, b: str) -> set[str]:
        """Take one link away; the group to look at again when it was the last between them."""
        if a == b:
            return set()
        for x, y in ((a, b), (b, a)):
            left = self._links[x]
            left[y] -= 1
            if left[y] == 0:
                del left[y]
            if not left:
                del self._links[x]
        return set() if b in self._links.get(a, ()) else {self.group(a)}

    def _regroup(self, group: str) -> None:
        """Split a group into the names still linked (a walk over that group only)."""
        names = self._members.pop(group, None)
        if names is None:  # already split by another link of the same provider
            return
        for n in names:
            del self._group_of[n]
        while names:
            start = names.pop()
            part, todo = {start}, [start]
            while todo:
                for n in self._links.get(todo.pop(), ()):
                    if n not in part:
                        part.add(n)
                        todo.append(n)
            names -= part
            if len(part) > 1:
                least = min(part)
                self._members[least] = part
                for n in part:
                    self._group_of[n] = least


def id_of(obj: objects.Parsed | objects.Invalid) -> keys.ObjectId:
    """The identity of a parsed object, valid or not (`objects.identity` of its raw object)."""
    if isinstance(obj, objects.Invalid):
        return (obj.kind, obj.namespace, obj.name)
    return keys.id_of(obj)


def _drop(index: dict[Any, dict[keys.Key, Any]], at: Any, key: keys.Key) -> None:
    entries = index.get(at)
    if entries is not None:
        entries.pop(key, None)
        if not entries:
            del index[at]


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
    known = world.namespaces
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
    known = world.namespaces
    me = keys.of(chain)
    trigger = chain.spec.trigger
    chains: dict[keys.Key, FallbackChain] = {me: chain}
    groups: set[str] = set()
    todo = [chain.spec.model, *chain.spec.fallbacks]
    while todo:
        group = world.group(todo.pop())
        if group in groups:
            continue
        groups.add(group)
        for c in world.chains_on(group, trigger):
            key = keys.of(c)
            if key in chains or not selection.binds(gateway, key[0], c.metadata.labels, known):
                continue
            chains[key] = c
            todo += [c.spec.model, *c.spec.fallbacks]
    providers: dict[keys.Key, LLMProvider] = {}
    for group in groups:
        providers.update(world.providers_of(group))
    return dataclasses.replace(
        world.base,
        providers=tuple(providers[k] for k in sorted(providers)),
        chains=tuple(chains[k] for k in sorted(chains)),
        gateways=(gateway,),
    )


# -- providers and gateways --------------------------------------------------------------------


def _review_provider(world: World, provider: LLMProvider) -> Verdict:
    meta = provider.metadata
    gateways = _binding(world, meta.namespace, meta.labels)
    if not gateways:
        return Verdict(True, warnings=(_not_bound(world, provider.kind, meta.namespace, meta.name),))
    me = keys.of(provider)
    names = {n for m in provider.spec.models for n in (m.name, *m.aliases)}
    groups = {world.group(n) for n in names}
    warned: list[str] = []
    for gw in gateways:
        others = {k: p for g in groups for k, p in world.providers_of(g).items() if k != me}
        others[me] = provider
        part = dataclasses.replace(
            world.base,
            providers=tuple(others[k] for k in sorted(others)),
            gateways=(gw,),
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
        nodes = m["path"].split(" -> ")
        if m["models"]:
            # A long cycle: every chain on it names it by its first model and length.
            name = f"{nodes[0]} -> ... -> {nodes[0]} ({m['models']} models, {m['trigger']})"
            out[f"fallback cycle {name}"].add(f.object_ref)
            continue
        # Each chain on a short cycle states it from its own model: one cycle, several rotations.
        nodes = nodes[:-1]
        first = nodes.index(min(nodes))
        rotated = [*nodes[first:], *nodes[:first], nodes[first]]
        out[f"fallback cycle {' -> '.join(rotated)} ({m['trigger']})"].add(f.object_ref)
    return out


# What `resolve` says of a chain on a cycle: its own, or one reported on another chain.
_CYCLE = re.compile(
    r"(?:on (?:a cycle among the [\d,]+ models that fall back to one another with )?)?"
    r"fallback cycle (?P<path>.+?) \((?:(?P<models>[\d,]+) models, )?(?P<trigger>\w+)\)"
)
MAX_REFS = 10


def _refs(chains: Iterable[str]) -> str:
    """`FallbackChain ns/a, ns/b`, in a stable order; a long list by its first names and count."""
    names = sorted(c.split(" ", 1)[1] for c in chains)
    if len(names) > MAX_REFS:
        names = [*names[: MAX_REFS - 1], f"and {len(names) - MAX_REFS + 1:,} more"]
    return f"FallbackChain {', '.join(names)}"


def _closed_by(
    world: World, gateway: LLMGateway, provider: LLMProvider, groups: set[str]
) -> dict[str, set[str]]:
    """The fallback cycles that `provider` (created or changed) would close in `gateway`.

    A chain's link counts only when both its ends are served, so serving a name can turn
    chains that were each fine into a cycle. Any such cycle passes through a chain on one
    of the provider's names; the part reachable from those chains (all of them together, so
    that a provider of many names on one long cycle costs two resolves of it, not two per
    name) is resolved with the provider as it is stored and as it would be.
    """
    known = world.namespaces
    me = keys.of(provider)
    starts = {
        keys.of(c): c
        for g in sorted(groups)
        for trigger in TRIGGERS
        for c in world.chains_on(g, trigger)
        if selection.binds(gateway, c.metadata.namespace, c.metadata.labels, known)
    }
    if not starts:
        return {}
    chains: dict[keys.Key, FallbackChain] = {}
    providers: dict[keys.Key, LLMProvider] = {}
    for key in sorted(starts):
        if key in chains:  # reached from an earlier start: so is all it reaches
            continue
        reached = _reachable(world, gateway, starts[key])
        chains.update((keys.of(c), c) for c in reached.chains)
        providers.update((keys.of(p), p) for p in reached.providers)
    part = dataclasses.replace(
        reached,
        providers=tuple(providers[k] for k in sorted(providers)),
        chains=tuple(chains[k] for k in sorted(chains)),
    )
    before = _cycles(resolve.resolve(part, gateway))
    others = tuple(p for p in part.providers if keys.of(p) != me)
    with_me = tuple(sorted((*others, provider), key=keys.of))
    after = _cycles(resolve.resolve(dataclasses.replace(part, providers=with_me), gateway))
    return {cycle: chains for cycle, chains in sorted(after.items()) if cycle not in before}


def _review_gateway(world: World, gateway: LLMGateway) -> Verdict:
    """Per-object rules decide; a gateway that would bind no provider, or chains on a cycle, is
    worth a word. Gateways change seldom, so this one resolves the whole gateway."""
    known = world.namespaces
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
