"""Merge patches that also take away what the operator no longer sets.

A JSON merge patch (RFC 7386) replaces lists whole but merges maps, so a key the
operator set once and leaves out now would stay on the live object for ever: the
tolerations taken out of `spec.pod`, a Service annotation removed, a budget moved
from `maxUnavailable` to `minAvailable` (which the API server refuses with both
set). So every owned object the operator writes records, in one annotation, the
paths of the map keys it set; the next patch sets to null those it sets no more.
Keys someone else added (`kubectl rollout restart`'s annotation, a controller's
labels) were never recorded, so they are left alone. Lists are not entered: a
merge patch replaces them whole anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

MANAGED = "llmgateway.dev/managed-fields"
"""Annotation with the JSON list of the map-key paths the operator last set (JSON pointers)."""

NEVER_REMOVED = frozenset({"/spec/replicas"})
"""Paths handed over to someone else when the operator stops setting them: under
autoscaling, the HorizontalPodAutoscaler owns the replicas; a null would scale to 1."""


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def paths(body: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """The JSON pointer of every map key in `body`, not entering lists."""
    for key, value in body.items():
        here = f"{prefix}/{_escape(str(key))}"
        yield here
        if isinstance(value, Mapping):
            yield from paths(value, here)


def _recorded(body: Mapping[str, Any]) -> list[str]:
    """The paths to record for `body`: everything but the record itself and its parent chain."""
    own = f"/metadata/annotations/{_escape(MANAGED)}"
    return sorted(p for p in paths(body) if p != own)


def annotated(body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` with the record of the paths it sets, ready to be created or patched."""
    out = dict(body)
    meta = dict(out.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations[MANAGED] = json.dumps(_recorded(body), separators=(",", ":"))
    meta["annotations"] = annotations
    out["metadata"] = meta
    return out


def merge_patch(live: Mapping[str, Any], want: Mapping[str, Any]) -> dict[str, Any]:
    """`want` (annotated) as a merge patch over `live`, with nulls for the keys the operator
    set last time (per `live`'s record) and sets no more."""
    patch = annotated(want)
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(MANAGED)
    try:
        before = json.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        before = []
    if not isinstance(before, list):
        return patch
    now = set(_recorded(want))
    gone = sorted({p for p in before if isinstance(p, str) and p.startswith("/")} - now - NEVER_REMOVED)
    for path in gone:
        parts = [_unescape(p) for p in path.split("/")[1:]]
        node: dict[str, Any] = patch
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                break  # an ancestor is gone too: its own null (or absence) covers this
            if not isinstance(child, dict):
                break  # now a list or a value: replaced whole by the patch
            child = dict(child)
            node[part] = child
            node = child
        else:
            node.setdefault(parts[-1], None)
    return patch
