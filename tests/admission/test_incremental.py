"""The incremental admission index: a World kept current one change at a time answers every
review as a World built from scratch from the same objects does.

Random sequences of creates, edits (the same kind and name again), deletes, Namespace labels
and Service ports, drawn from the fuzz suite's objects (valid ones, twisted ones, aliases that
join and split groups of names, chains that close and open cycles), first straight into
`admission.World`, then through the webhook's `Reviewer` as kopf's watch events and indexes
hand them over. After each step the two worlds are asked the same reviews (every stored
object as an update of itself, and fresh candidates, creates and updates) and must give the
same verdict: allowed, message and warnings. The groups of names are also checked against
connected components computed here, so that a World built from scratch is not its own oracle.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import loops
from fuzz import hostile, runs
from llmgw.api.chain import TRIGGERS
from llmgw.api.provider import LLMProvider
from llmgw.core import admission, estate, objects
from llmgw.handlers import admission as handlers

Raw = dict[str, Any]
Op = tuple[Any, ...]
NAMESPACES = ("default", "team-a")
SERVICE = ("gpu", "vllm")
OURS = SimpleNamespace(group="llmgateway.dev")
RESOURCES = {
    "Namespace": SimpleNamespace(group="", plural="namespaces"),
    "Service": SimpleNamespace(group="", plural="services"),
}


@st.composite
def selecting_gateways(draw: st.DrawFn) -> Raw:
    """A gateway that takes namespaces by their labels: Namespace changes then matter."""
    return {
        "apiVersion": hostile.API_VERSION,
        "kind": "LLMGateway",
        "metadata": {"name": draw(st.sampled_from(("gw", "edge"))), "namespace": "default"},
        "spec": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}},
    }


@st.composite
def looping_chains(draw: st.DrawFn) -> Raw:
    """A chain among the served names: cycles come and go as chains are edited and deleted."""
    names = ("m0", "m1", "m2", "al-a")
    model = draw(st.sampled_from(names))
    fallbacks = draw(st.lists(st.sampled_from(names).filter(lambda m: m != model), min_size=1, unique=True))
    return {
        "apiVersion": hostile.API_VERSION,
        "kind": "FallbackChain",
        "metadata": {
            "name": draw(st.sampled_from(hostile.NAMES)),
            "namespace": draw(st.sampled_from(NAMESPACES)),
            **draw(st.sampled_from(({}, {"labels": {"team": "a"}}))),
        },
        "spec": {"model": model, "fallbacks": fallbacks, "trigger": draw(st.sampled_from(TRIGGERS))},
    }


def stored() -> st.SearchStrategy[Raw]:
    """An object as the API server could store it (its metadata names it), valid or not."""
    return st.one_of(
        hostile.providers(twist=4),
        hostile.providers(twist=4),
        hostile.chains(),
        looping_chains(),
        looping_chains(),
        hostile.gateways(),
        selecting_gateways(),
    ).filter(_named)


def _named(raw: Raw) -> bool:
    meta = raw.get("metadata")
    return (
        isinstance(meta, Mapping)
        and isinstance(meta.get("name"), str)
        and bool(meta["name"])
        and isinstance(meta.get("namespace"), str)
        and bool(meta["namespace"])
    )


LABELS = st.one_of(st.none(), st.sampled_from(({}, {"team": "a"}, {"team": "b"})))
PORTS = st.one_of(st.none(), st.sampled_from(({"http": 8000}, {"http": 9000}, {})))


def ops() -> st.SearchStrategy[list[Op]]:
    """Steps: put an object (create or edit), delete the i-th stored one, label a namespace,
    change a Service's ports; after each, with `check`, the worlds are compared."""
    return st.lists(
        st.one_of(
            st.tuples(st.just("put"), stored(), st.booleans()),
            st.tuples(st.just("put"), stored(), st.booleans()),
            st.tuples(st.just("delete"), st.integers(min_value=0, max_value=30), st.booleans()),
            st.tuples(st.just("namespace"), st.sampled_from(NAMESPACES), LABELS, st.booleans()),
            st.tuples(st.just("service"), PORTS, st.booleans()),
        ),
        min_size=1,
        max_size=25,
    )


def candidates() -> st.SearchStrategy[Raw]:
    return st.one_of(looping_chains(), hostile.chains(), hostile.providers(twist=3), hostile.gateways())


class Truth:
    """What is stored, as an API server holds it; the World built from scratch from it."""

    def __init__(self) -> None:
        self.raws: dict[tuple[str, str, str], Raw] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self.ports: dict[tuple[str, str], dict[str, int]] = {}
        self.generation = 0

    def apply(self, op: Op) -> tuple[str, Any]:
        """Apply a step; say what changed: ("object", id, raw), ("namespace", name) or ("service", key)."""
        if op[0] == "put":
            self.generation += 1  # the API server bumps it on every spec change
            raw = copy.deepcopy(op[1])
            raw["metadata"]["generation"] = self.generation
            oid = objects.identity(raw)
            self.raws[oid] = raw
            return ("object", oid, raw)
        if op[0] == "delete":
            if not self.raws:
                return ("none",)
            oid = sorted(self.raws)[op[1] % len(self.raws)]
            return ("object", oid, self.raws.pop(oid))
        if op[0] == "namespace":
            _, name, labels, _ = op
            if labels is None:
                self.namespaces.pop(name, None)
            else:
                self.namespaces[name] = dict(labels)
            return ("namespace", name)
        _, ports, _ = op
        if ports is None:
            self.ports.pop(SERVICE, None)
        else:
            self.ports[SERVICE] = dict(ports)
        return ("service", SERVICE)

    def world(self) -> admission.World:
        built = estate.build(list(self.raws.values()), self.namespaces, self.ports)
        return admission.World(built)


def assert_same(world: admission.World, truth: Truth, extra: list[tuple[Raw, Raw | None]]) -> None:
    """The incremental world answers as the World built from scratch, and groups names as the
    connected components of the alias links do."""
    fresh = truth.world()
    assert world.gateways == fresh.gateways
    assert dict(world.namespaces) == dict(fresh.namespaces)
    assert dict(world.base.service_ports) == dict(fresh.base.service_ports)
    assert world.estate == fresh.estate
    providers = [p for p in fresh.estate.providers if isinstance(p, LLMProvider)]
    names = {n for p in providers for m in p.spec.models for n in (m.name, *m.aliases)} | {"gpt-9"}
    components = _components(providers)
    for name in names:
        assert world.group(name) == fresh.group(name) == components.get(name, name), name
    for group in {world.group(n) for n in names}:
        assert world.providers_of(group).keys() == fresh.providers_of(group).keys()
        for trigger in TRIGGERS:
            on = sorted((c.metadata.namespace, c.metadata.name) for c in world.chains_on(group, trigger))
            assert on == sorted(
                (c.metadata.namespace, c.metadata.name) for c in fresh.chains_on(group, trigger)
            )
    reviews = [(raw, raw) for raw in truth.raws.values()] + extra
    for raw, old in reviews:
        assert admission.review(world, raw, old) == admission.review(fresh, raw, old), (raw, old)


def _components(providers: list[LLMProvider]) -> dict[str, str]:
    """Each linked name's group: the least name of its connected component."""
    links: dict[str, set[str]] = {}
    for p in providers:
        for m in p.spec.models:
            for alias in m.aliases:
                links.setdefault(m.name, set()).add(alias)
                links.setdefault(alias, set()).add(m.name)
    out: dict[str, str] = {}
    for start in links:
        if start in out:
            continue
        seen, todo = {start}, [start]
        while todo:
            for n in links[todo.pop()]:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        least = min(seen)
        out.update(dict.fromkeys(seen, least))
    return out


def extras(data: st.DataObject, truth: Truth) -> list[tuple[Raw, Raw | None]]:
    """A few fresh reviews: creates, and updates of what is stored."""
    olds = [st.none(), *([st.sampled_from(list(truth.raws.values()))] if truth.raws else [])]
    return data.draw(st.lists(st.tuples(candidates(), st.one_of(*olds)), max_size=3), label="reviews")


@runs.random_inputs(200)
@given(st.data(), ops())
def test_a_world_changed_one_object_at_a_time_answers_as_one_built_from_scratch(
    data: st.DataObject, steps: list[Op]
) -> None:
    truth = Truth()
    world = admission.World()
    for op in steps:
        what = truth.apply(op)
        if what[0] == "object":
            _, oid, raw = what
            if oid in truth.raws:
                world.put(objects.parse(raw))
            else:
                world.remove(oid)
        elif what[0] == "namespace":
            world.set_namespace(what[1], truth.namespaces.get(what[1]))
        elif what[0] == "service":
            world.set_service(what[1], truth.ports.get(what[1]))
        if op[-1]:
            assert_same(world, truth, extras(data, truth))
    assert_same(world, truth, extras(data, truth))


# -- through the Reviewer, as kopf hands the changes over -------------------------------------------


def kopf_indexes(truth: Truth) -> dict[str, Any]:
    """kopf's indexes of what is stored: key -> store of values."""
    out: dict[str, Any] = {
        "providers": {},
        "chains": {},
        "gateways": {},
        "namespaces": {},
        "backend_services": {},
    }
    for raw in truth.raws.values():
        meta = raw["metadata"]
        out[handlers.INDEX_OF[raw["kind"]]][(meta["namespace"], meta["name"])] = [raw]
    for name, labels in truth.namespaces.items():
        out["namespaces"][name] = [labels]
    for key, ports in truth.ports.items():
        out["backend_services"][key] = [ports]
    return out


def watch_event(truth: Truth, what: tuple[str, Any], deleted: bool) -> dict[str, Any]:
    idx = kopf_indexes(truth)
    kind = "DELETED" if deleted else "MODIFIED"
    if what[0] == "object":
        return {**idx, "body": what[2], "type": kind, "resource": OURS}
    if what[0] == "namespace":
        body = {"kind": "Namespace", "metadata": {"name": what[1]}}
        return {**idx, "body": body, "type": kind, "resource": RESOURCES["Namespace"]}
    body = {"kind": "Service", "metadata": {"namespace": what[1][0], "name": what[1][1]}}
    return {**idx, "body": body, "type": kind, "resource": RESOURCES["Service"]}


@runs.random_inputs(100)
@given(st.data(), ops(), st.sampled_from((0, 2, handlers.BULK)))
def test_the_reviewer_kept_current_by_watch_events_answers_as_a_world_built_from_scratch(
    data: st.DataObject, steps: list[Op], bulk: int
) -> None:
    """Changes noted between reviews, caught up on the spot or (more than `bulk`) with their
    parsing in a worker thread; a status write in between changes nothing."""

    async def run() -> None:
        truth = Truth()
        reviewer = handlers.Reviewer(debounce=10.0, bulk=bulk)  # only reviews catch up
        for op in [("put", raw, False) for raw in data.draw(st.lists(stored(), max_size=6), label="listed")]:
            truth.apply(op)
        await reviewer.world(kopf_indexes(truth))
        for op in steps:
            what = truth.apply(op)
            if what[0] != "none":
                reviewer.changed(watch_event(truth, what, deleted=op[0] == "delete"))
            if what[0] == "object" and what[1] in truth.raws and data.draw(st.booleans(), label="status"):
                written = copy.deepcopy(what[2])
                written["status"] = {"observedGeneration": truth.generation}
                truth.raws[what[1]] = written
                reviewer.changed(watch_event(truth, ("object", what[1], written), deleted=False))
            if op[-1]:
                assert_same(await reviewer.world(kopf_indexes(truth)), truth, extras(data, truth))
        assert_same(await reviewer.world(kopf_indexes(truth)), truth, extras(data, truth))
        await reviewer.stop()

    loops.run(run())
