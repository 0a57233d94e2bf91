"""The webhook's view of the world: indexed ahead of reviews, once per burst of changes,
and not again for the operator's own status writes."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from llmgw.handlers import admission

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


async def test_a_status_write_does_not_index_the_world_again(
    provider: Callable[..., Raw], gateway: Callable[..., Raw]
) -> None:
    p = versioned(provider("p", "a"), 1)
    idx = indexes(gateway(), p)
    reviewer = admission.Reviewer(debounce=0.01)
    first = await reviewer.world(idx)
    written = copy.deepcopy(p)
    written["status"] = {"conditions": [{"type": "Accepted", "status": "True"}]}
    idx = indexes(gateway(), written)
    reviewer.changed(event(idx, written))
    assert not reviewer.stale
    await asyncio.sleep(0.05)
    assert await reviewer.world(idx) is first
    await reviewer.stop()


async def test_a_burst_of_changes_is_indexed_once_ahead_of_the_next_review(
    provider: Callable[..., Raw], gateway: Callable[..., Raw]
) -> None:
    reviewer = admission.Reviewer(debounce=0.05, patience=5.0)
    first = await reviewer.world(indexes(gateway()))
    worlds = set()
    for g in range(1, 21):  # a GitOps sync: 20 edits 10 ms apart
        p = versioned(provider("p", *[f"m{i}" for i in range(g)]), g)
        reviewer.changed(event(indexes(gateway(), p), p))
        await asyncio.sleep(0.01)
        worlds.add(id(reviewer.current))
    assert worlds == {id(first)}  # nothing indexed during the burst
    await asyncio.sleep(0.2)
    assert not reviewer.stale  # indexed after the pause, without a review asking
    world = reviewer.current
    assert world is not None
    assert world is not first
    assert [m.name for m in world.estate.providers[0].spec.models][-1] == "m19"
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
    reviewer = admission.Reviewer(debounce=10.0)
    a = versioned(provider("p", "m"), 1)
    a["metadata"]["labels"] = {"team": "a"}
    await reviewer.world(indexes(gateway(), a))
    b = copy.deepcopy(a)
    b["metadata"]["labels"] = {"team": "b"}
    reviewer.changed(event(indexes(gateway(), b), b))
    building = asyncio.ensure_future(reviewer.world(indexes(gateway(), b)))
    while reviewer.building is None or reviewer.stale:  # the indexing of b has begun
        await asyncio.sleep(0)
    reviewer.changed(event(indexes(gateway(), a), a))  # and a is back meanwhile
    await building
    world = await reviewer.world(indexes(gateway(), a))
    assert world.estate.providers[0].metadata.labels == {"team": "a"}
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

    assert admission.unreadable(review(nested(admission.MAX_DEPTH))) is None
    problem = admission.unreadable(review(nested(admission.MAX_DEPTH + 1)))
    assert problem is not None
    assert problem.startswith(f"request.object nests deeper than {admission.MAX_DEPTH} levels")
