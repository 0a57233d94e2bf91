"""Conditions in the standard Kubernetes shape, and statuses that only change when they must.

A condition keeps its lastTransitionTime while its status stays the same, and
two statuses that differ only in transition times are equal: this is what
lets the operator write nothing when nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def condition(
    type_: str, status: bool | str, reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    value = status if isinstance(status, str) else ("True" if status else "False")
    out: dict[str, Any] = {"type": type_, "status": value, "reason": reason, "message": message}
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def merge(
    old: Sequence[Mapping[str, Any]] | None, new: Iterable[dict[str, Any]], now: str
) -> list[dict[str, Any]]:
    """New conditions, keeping each one's transition time unless its status changed."""
    before = {c.get("type"): c for c in old or ()}
    out = []
    for c in new:
        prev = before.get(c["type"])
        if prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
            c = {**c, "lastTransitionTime": prev["lastTransitionTime"]}
        else:
            c = {**c, "lastTransitionTime": now}
        out.append(c)
    return out


def _strip(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip(v) for k, v in value.items() if k != "lastTransitionTime" and v is not None}
    if isinstance(value, list | tuple):
        return [_strip(v) for v in value]
    return value


def same(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing `new` over `old` would change anything but transition times."""
    return bool(_strip(old or {}) == _strip(new))


def get(conds: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for c in conds or ():
        if c.get("type") == type_:
            return c
    return None
