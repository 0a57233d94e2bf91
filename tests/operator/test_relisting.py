"""`handlers/relisting.py` over kopf's real watch stream, with the API calls scripted.

kopf's `infinite_watch` runs as the operator runs it; only its list and watch requests
(`fetching.fetch_objs`, `watching.watch_objs`) are replaced by scripts. These tests are what
fails first if a kopf upgrade changes the seam the operator relies on: listed objects as
events of type None, each listing ended by `Bookmark.LISTED`, a new listing after `410 Gone`.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest
from kopf._cogs.clients import fetching, watching
from kopf._core.reactor import queueing

from llmgw.handlers import relisting

RESOURCE = kopf.Resource("llmgateway.dev", "v1alpha1", "llmproviders", kind="LLMProvider", namespaced=True)
GONE = {"type": "ERROR", "object": {"kind": "Status", "code": 410}}


def obj(name: str, rv: str = "1", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMProvider",
        "metadata": {
            "name": name,
            "namespace": "ai",
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "labels": labels,
        },
        "spec": {"type": "vllm", "models": [{"name": name}]},
    }


async def run(
    monkeypatch: pytest.MonkeyPatch, listings: list[list[dict[str, Any]]], watches: list[list[Any]]
) -> list[Any]:
    """Everything the wrapped kopf stream yields over len(listings) list-then-watch cycles;
    each scripted watch ends with 410 Gone, so kopf lists again."""
    lists, streams = iter(listings), iter(watches)

    async def fetch_objs(**_: Any) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        yield next(lists), "100"

    async def watch_objs(**_: Any) -> AsyncIterator[dict[str, Any]]:
        for event in [*next(streams), GONE]:
            yield event

    monkeypatch.setattr(fetching, "fetch_objs", fetch_objs)
    monkeypatch.setattr(watching, "watch_objs", watch_objs)
    settings = kopf.OperatorSettings()
    settings.watching.reconnect_backoff = 0
    kopfs = getattr(watching.infinite_watch, relisting._WRAPPED, watching.infinite_watch)
    stream = relisting.wrap(kopfs, watching.Bookmark.LISTED)
    return [
        item
        async for item in stream(
            settings=settings, resource=RESOURCE, namespace="ai", _iterations=len(listings)
        )
    ]


def names(items: list[Any]) -> list[str]:
    out = []
    for item in items:
        if item is watching.Bookmark.LISTED:
            out.append("LISTED")
        else:
            out.append(f"{item['type']} {item['object']['metadata']['name']}")
    return out


async def test_an_object_the_new_listing_leaves_out_is_passed_on_as_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = await run(
        monkeypatch,
        listings=[[obj("a"), obj("b", team="x")], [obj("a", "3"), obj("c"), obj("d")]],
        watches=[[{"type": "MODIFIED", "object": obj("a", "3")}, {"type": "ADDED", "object": obj("c")}], []],
    )
    assert names(items) == [
        "None a",
        "None b",
        "LISTED",
        "MODIFIED a",
        "ADDED c",
        "None a",
        "None c",
        "None d",
        "DELETED b",  # before the listing ends: the resource is whole again at LISTED
        "LISTED",
    ]
    (deleted,) = [i for i in items if i is not watching.Bookmark.LISTED and i["type"] == "DELETED"]
    # What kopf keys its indexes by, and the labels that label-filtered handlers match on; no spec.
    assert deleted["object"] == {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMProvider",
        "metadata": {
            "name": "b",
            "namespace": "ai",
            "uid": "uid-b",
            "resourceVersion": "1",
            "labels": {"team": "x"},
        },
    }


async def test_a_listing_that_leaves_nothing_out_adds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    items = await run(
        monkeypatch,
        listings=[[obj("a"), obj("b")], [obj("a"), obj("b")]],
        watches=[[], []],
    )
    assert names(items) == ["None a", "None b", "LISTED", "None a", "None b", "LISTED"]


async def test_an_empty_listing_deletes_all_and_a_seen_delete_is_not_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = await run(
        monkeypatch,
        listings=[[obj("a"), obj("b")], []],
        watches=[[{"type": "DELETED", "object": obj("a")}], []],
    )
    assert names(items) == ["None a", "None b", "LISTED", "DELETED a", "DELETED b", "LISTED"]


async def test_a_name_created_again_under_a_new_uid_drops_only_the_old_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    again = obj("a")
    again["metadata"]["uid"] = "uid-a-2"
    items = await run(monkeypatch, listings=[[obj("a")], [again]], watches=[[], []])
    deleted = [
        i["object"]["metadata"]["uid"] for i in items if isinstance(i, dict) and i["type"] == "DELETED"
    ]
    assert deleted == ["uid-a"]


def test_install_fronts_the_stream_kopfs_queueing_reads_once() -> None:
    relisting.install()
    relisting.install()
    installed = watching.infinite_watch
    kopfs = getattr(installed, relisting._WRAPPED)
    assert not hasattr(kopfs, relisting._WRAPPED)  # wrapped once, however often the registry is built
    assert kopfs.__module__ == "kopf._cogs.clients.watching"
    assert queueing.watching is watching  # where kopf's watcher looks the stream up, at each call


def test_install_refuses_a_kopf_of_another_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watching, "Bookmark", object())
    with pytest.raises(RuntimeError, match="not shaped as in kopf"):
        relisting.install()


def test_the_seam_was_checked_against_the_kopf_installed() -> None:
    """A kopf upgrade must re-read `relisting.install()`'s seam, then move this version."""
    assert importlib.metadata.version("kopf") == relisting.KOPF_VERSION
