"""Objects deleted while a watch lists again reach kopf as deleted.

kopf (1.45.2) answers a watch's `410 Gone` by listing the resource again and feeding each
listed object to its indexes, but an object deleted between the old stream and the new
listing never gets a DELETED event: it would stay in every index, and so in every render,
until the process restarts. client-go's informers close the same gap by comparing a new
listing with what they hold (`Replace`, `DeletedFinalStateUnknown`); this does the same in
front of kopf. Each watch stream remembers which objects it has shown; when a listing ends,
those it left out go on as DELETED events. From there it is kopf's own path for a delete: it
discards them from every index and forgets its memory of them, and our event handlers poke
the reconciler as for any delete. Nothing is listed or written beyond what kopf does anyway,
so a quiet cluster stays quiet.

This module relies on kopf privates in one place, the seam `install()` names: the module
`kopf._cogs.clients.watching` (its `infinite_watch` and `Bookmark.LISTED`) as
`kopf._core.reactor.queueing` calls it, and the stream's convention that a listed object
comes as an event of type None. `install()` checks only that those names are there, and
refuses to start when they are not; the event convention and the kopf version (the pin in
pyproject.toml, `KOPF_VERSION`) are checked by tests/operator/test_relisting.py, which drives
kopf's real watch stream through the wrapper. (Elsewhere, handlers/events.py and
handlers/rollouts.py import kopf's private `posting`, for Events.)
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

Key = tuple[str, str, str]
KOPF_VERSION = "1.45.2"
"""The kopf whose watch stream this was written against (pinned in pyproject.toml)."""
_WRAPPED = "_llmgw_relisting_wraps"


class Shown:
    """What one watch stream has shown, to tell what a new listing leaves out."""

    def __init__(self) -> None:
        self.known: dict[Key, dict[str, Any]] = {}
        self.listed: set[Key] = set()

    def observe(self, event: Mapping[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object")
        if kind == "BOOKMARK" or not isinstance(obj, Mapping):
            return
        key = _key(obj)
        if kind == "DELETED":
            self.known.pop(key, None)
            return
        self.known[key] = _tombstone(obj)
        if kind is None:  # kopf's mark of a listed object
            self.listed.add(key)

    def listing_ended(self) -> list[dict[str, Any]]:
        """The objects shown before that the listing just ended left out: they are gone.

        A listing cut short and started again counts as one, so an object can only be kept
        too long (until the next listing), never dropped while it exists.
        """
        gone = [self.known.pop(key) for key in list(self.known) if key not in self.listed]
        self.listed = set()
        return gone


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(meta.get("uid") or ""))


def _tombstone(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Only what kopf and our handlers read of a deleted object: identity and labels.

    Not the whole body: that would double the memory of every watch, and keep Secrets'
    data in memory where the operator watches their versions.
    """
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in meta}
    if meta.get("labels"):
        kept["labels"] = dict(meta["labels"])
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": kept}


def wrap(
    original: Callable[..., AsyncGenerator[Any, None]], listed: object
) -> Callable[..., AsyncIterator[Any]]:
    """kopf's stream of one resource, with a DELETED event for each object a new listing left
    out, just before the mark `listed` that ends the listing."""

    async def infinite_watch(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        shown = Shown()
        async with contextlib.aclosing(original(*args, **kwargs)) as stream:
            async for item in stream:
                if item is listed:
                    for body in shown.listing_ended():
                        meta = body["metadata"]
                        logger.info(
                            f"{body.get('kind')} {meta.get('namespace') or ''}/{meta.get('name')}: "
                            "deleted while the watch listed again; dropped from the indexes"
                        )
                        yield {"type": "DELETED", "object": body}
                elif isinstance(item, Mapping):
                    shown.observe(item)
                yield item

    setattr(infinite_watch, _WRAPPED, original)
    return infinite_watch


def install() -> None:
    """Put `wrap` in front of kopf's watch streams, once per process.

    kopf 1.45.2 private seam: `kopf._core.reactor.queueing.watcher` looks up
    `kopf._cogs.clients.watching.infinite_watch` at each call and iterates it; listed objects
    come as events of type None and each listing ends with `watching.Bookmark.LISTED` (with
    `settings.watching.initial_streaming`, the listed objects are the stream's initial ADDED
    events, which kopf retypes to None, and LISTED comes before its first BOOKMARK).
    A kopf without these names stops the operator here, with the reason, rather than letting
    deleted objects linger unnoticed; what is checked here is the names, not the behaviour.
    """
    from kopf._cogs.clients import watching
    from kopf._core.reactor import queueing

    current = getattr(watching, "infinite_watch", None)
    bookmark = getattr(getattr(watching, "Bookmark", None), "LISTED", None)
    if (
        getattr(queueing, "watching", None) is not watching
        or bookmark is None
        or current is None
        or not (inspect.isasyncgenfunction(current) or hasattr(current, _WRAPPED))
    ):
        raise RuntimeError(
            f"kopf's watch stream is not shaped as in kopf {KOPF_VERSION}; llmgw cannot drop objects "
            "deleted while a watch lists again (see llmgw/handlers/relisting.py)"
        )
    if not hasattr(current, _WRAPPED):
        watching.infinite_watch = wrap(current, bookmark)
