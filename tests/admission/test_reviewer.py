"""The webhook's view of the world: indexed whole once, then kept current one change at a time,
ahead of reviews once a burst of changes pauses, and not at all for the operator's own status
writes. (That it answers as a world built from scratch: test_incremental.py.)"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from llmgw.core import admission as core
from llmgw.core import objects
from llmgw.handlers import admission, webhook

Raw = dict[str, Any]
OURS = SimpleNamespace(group="llmgateway.dev")


def indexes(*raws: Raw) -> dict[str, Any]:
    """kopf's indexes as the reviewer reads them: key -> store of values."""
    out: dict[str, Any] = {"providers": {}, "chains": {}, "gateways": {}}
    index = {"LLMProvider": "providers", "FallbackChain": "chains", "LLMGateway": "gateways"}
    for raw in raws:
        meta = raw["metadata"]
        out[index[raw["kind"]]][(meta["namespace"], meta["name"])] = [raw]
    return out


def event(idx: dict[str, Any], body: Raw, kind: str | None = "MODIFIED") -> dict[str, Any]:
    return {**idx, "body": body, "type": kind, "resource": OURS}


def versioned(raw: Raw, generation: int) -> Raw:
    raw = copy.deepcopy(raw)
    raw["metadata"]["generation"] = generation
    return raw


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Raw]:
    """The objects the reviewer parses, in order."""
    seen: list[Raw] = []
    parse = objects.parse

    def counted(raw: Raw) -> Any:
        seen.append(raw)
        return parse(raw)

    monkeypatch.setattr(objects, "parse", counted)
    return seen


async def test_a_status_write_does_not_index_the_world_again(
    provider: Callable[..., Raw], gateway: Callable[..., Raw], parses: list[Raw]
) -> None:
    p = versioned(provider("p", "a"), 1)
    idx = indexes(gateway(), p)
    reviewer = admission.Reviewer(debounce=0.01)
    first = await reviewer.world(idx)
    assert len(parses) == 2
    written = copy.deepcopy(p)
    written["status"] = {"conditions": [{"type": "Accepted", "status": "True"}]}
    idx = indexes(gateway(), written)
    reviewer.changed(event(idx, written))
    assert not reviewer.stale
    await asyncio.sleep(0.05)
    assert await reviewer.world(idx) is first
    assert len(parses) == 2
    await reviewer.stop()


async def test_a_burst_of_changes_is_taken_in_once_ahead_of_the_next_review(
    provider: Callable[..., Raw], gateway: Callable[..., Raw], parses: list[Raw]
) -> None:
    reviewer = admission.Reviewer(debounce=0.05, patience=5.0)
    first = await reviewer.world(indexes(gateway()))
    seen = set()
    for g in range(1, 21):  # a GitOps sync: 20 edits 10 ms apart
        p = versioned(provider("p", *[f"m{i}" for i in range(g)]), g)
        reviewer.changed(event(indexes(gateway(), p), p))
        await asyncio.sleep(0.01)
        seen.add(first.estate.providers)
    assert seen == {()}  # nothing taken in during the burst
    await asyncio.sleep(0.2)
    assert not reviewer.stale  # caught up after the pause, without a review asking
    assert reviewer.current is first  # in place: the world is not built again
    assert [m.name for m in first.estate.providers[0].spec.models][-1] == "m19"
    assert [r["kind"] for r in parses] == ["LLMGateway", "LLMProvider"]  # the last version only
    await reviewer.stop()


async def test_a_review_during_changes_sees_the_latest(
    provider: Callable[..., Raw], gateway: Callable[..., Raw]
) -> None:
    reviewer = admission.Reviewer(debounce=10.0)  # never ahead: the review must index
    await reviewer.world(indexes(gateway()))
    p = versioned(provider("p", "late"), 1)
    idx = indexes(gateway(), p)
    reviewer.changed(event(idx, p, kind=None))
    world = await reviewer.world(idx)
    assert [m.name for m in world.estate.providers[0].spec.models] == ["late"]
    await reviewer.stop()


async def test_labels_changed_back_during_an_indexing_are_not_lost(
    provider: Callable[..., Raw], gateway: Callable[..., Raw]
) -> None:
    reviewer = admission.Reviewer(debounce=10.0, bulk=0)  # parsed in a thread: a catch-up takes a while
    a = versioned(provider("p", "m"), 1)
    a["metadata"]["labels"] = {"team": "a"}
    await reviewer.world(indexes(gateway(), a))
    b = copy.deepcopy(a)
    b["metadata"]["labels"] = {"team": "b"}
    reviewer.changed(event(indexes(gateway(), b), b))
    building = asyncio.ensure_future(reviewer.world(indexes(gateway(), b)))
    while reviewer.building is None or reviewer.stale:  # the catch-up with b has begun
        await asyncio.sleep(0)
    reviewer.changed(event(indexes(gateway(), a), a))  # and a is back meanwhile
    await building
    world = await reviewer.world(indexes(gateway(), a))
    assert world.estate.providers[0].metadata.labels == {"team": "a"}
    await reviewer.stop()


async def test_an_edit_costs_what_changed_not_a_re_index_of_everything(
    provider: Callable[..., Raw],
    gateway: Callable[..., Raw],
    chain: Callable[..., Raw],
    parses: list[Raw],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = versioned(provider("p", *[f"m{i}" for i in range(301)]), 1)
    chains = [versioned(chain(f"c{i}", f"m{i}", f"m{i + 1}"), 1) for i in range(300)]
    reviewer = admission.Reviewer(debounce=10.0)  # only reviews catch up
    world = await reviewer.world(indexes(gateway(), p, *chains))
    assert len(parses) == 302
    parses.clear()

    def everything(_: Any) -> Any:
        raise AssertionError("the whole indexes were read again")

    monkeypatch.setattr(admission, "_snapshot", everything)
    closing = versioned(chain("c299", "m299", "m0"), 2)  # c0 -> ... -> c299 -> m0: a cycle
    chains[299] = closing
    reviewer.changed(event(indexes(gateway(), p, *chains), closing))
    assert await reviewer.world(indexes(gateway(), p, *chains)) is world
    assert reviewer.building is None  # caught up on the spot, on the event loop
    assert parses == [closing]
    fresh = core.World(core.build_estate([objects.parse(r) for r in (gateway(), p, *chains)]))
    for raw in chains[::37]:
        assert core.review(world, raw, raw) == core.review(fresh, raw, raw)
    verdict = core.review(world, chain("new", "m300", "m5"))
    assert verdict == core.review(fresh, chain("new", "m300", "m5"))

    parses.clear()  # the reviews above parse their candidates
    gone = chains.pop(150)
    reviewer.changed(event(indexes(gateway(), p, *chains), gone, kind="DELETED"))
    await reviewer.world(indexes(gateway(), p, *chains))
    assert ("default", "c150") not in {
        (c.metadata.namespace, c.metadata.name) for c in world.chains_on("m150", "errors")
    }
    assert parses == []  # a delete parses nothing
    await reviewer.stop()


async def test_a_namespace_or_service_event_changes_that_one_entry(
    provider: Callable[..., Raw], gateway: Callable[..., Raw]
) -> None:
    idx = indexes(gateway(), versioned(provider("p", "m"), 1))
    idx |= {
        "namespaces": {"team-a": [{"team": "a"}]},
        "backend_services": {("gpu", "vllm"): [{"http": 8000}]},
    }
    reviewer = admission.Reviewer(debounce=10.0)
    world = await reviewer.world(idx)
    assert world.namespaces == {"team-a": {"team": "a"}}
    namespace = SimpleNamespace(group="", plural="namespaces")
    service = SimpleNamespace(group="", plural="services")
    body = {"kind": "Namespace", "metadata": {"name": "team-a"}}
    reviewer.changed({**idx, "body": body, "type": "MODIFIED", "resource": namespace})
    assert not reviewer.stale  # its labels are as they were
    idx = {**idx, "namespaces": {"team-a": [{"team": "b"}], "team-c": [{}]}}
    reviewer.changed({**idx, "body": body, "type": "MODIFIED", "resource": namespace})
    idx = {**idx, "backend_services": {}}
    svc = {"kind": "Service", "metadata": {"namespace": "gpu", "name": "vllm"}}
    reviewer.changed({**idx, "body": svc, "type": "DELETED", "resource": service})
    assert await reviewer.world(idx) is world
    assert world.namespaces == {"team-a": {"team": "b"}}  # team-c: no event for it yet
    assert world.base.service_ports == {}
    await reviewer.stop()


def test_a_review_nested_past_the_bound_is_unreadable_and_one_within_it_is_not(
    provider: Callable[..., Raw],
) -> None:
    def nested(depth: int) -> Raw:
        obj = provider("p", "m")
        value: Any = "leaf"
        for _ in range(depth - 5):  # maps and lists: the object, spec, models, [0] and params are 5
            value = {"a": value}
        obj["spec"]["models"][0]["params"] = {"extra_body": value}
        return obj

    def review(obj: Raw) -> dict[str, Any]:
        return {"request": {"resource": {"group": "g", "version": "v", "resource": "r"}, "object": obj}}

    assert webhook.unreadable(review(nested(webhook.MAX_DEPTH))) is None
    problem = webhook.unreadable(review(nested(webhook.MAX_DEPTH + 1)))
    assert problem is not None
    assert problem.startswith(f"request.object nests deeper than {webhook.MAX_DEPTH} levels")
