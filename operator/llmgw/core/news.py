"""What of an input object a pass reads: an event that changes none of it is no news.

kopf replays every object at start-up as an event, and every status the operator writes comes
back as one; on a large estate each of them used to start a whole pass (and kept the settle
window open while they came). A pass records, for each provider, chain and gateway it read, the
parts of the object that a pass depends on: its generation (the spec), labels, annotations,
deletion, and status (a pass compares the status it wants with the stored one, and a gateway's
history is its status). An event whose object matches that record tells the next pass nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Mark = tuple[Any, ...]


def mark(body: Mapping[str, Any]) -> Mark:
    """The parts of an input object that a pass reads, comparable with `==`.

    Not copied: a pass takes a mark of every object, on the event loop, and a deep copy of
    thousands of statuses held it up for half a second. The watch gives each version of an
    object new dicts and nobody changes them in place, so holding on to them is safe.
    """
    meta = body.get("metadata") or {}
    return (
        meta.get("uid"),
        meta.get("generation"),
        meta.get("labels") or {},
        meta.get("annotations") or {},
        meta.get("deletionTimestamp"),
        body.get("status") or {},
    )


def with_status(before: Mark, stored: Mapping[str, Any]) -> Mark:
    """`before`, its status now `stored` (what the API server holds after the operator's write)."""
    return (*before[:-1], stored)


def merged(old: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`patch` applied to `old` as a JSON merge patch (RFC 7386) applies it: what a status
    merge patch leaves stored."""
    out = dict(old)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        elif isinstance(value, Mapping):
            out[key] = merged({}, value)
        else:
            out[key] = value
    return out
