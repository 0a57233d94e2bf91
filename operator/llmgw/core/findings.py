"""Findings: what is wrong with an object, said for people.

A finding names the object (`FallbackChain acc/chat`), the field
(`spec.fallbacks[1]`), what is wrong and what to do. Reasons are CamelCase
words that double as condition reasons on the object's status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Literal

Severity = Literal["error", "warning"]

# Reasons, shared with the conditions on the objects' status.
INVALID_SPEC = "InvalidSpec"
INVALID_ENDPOINT = "InvalidEndpoint"
UNKNOWN_MODEL = "UnknownModel"
FALLBACK_CYCLE = "FallbackCycle"
CONFLICT = "Conflict"
ALIAS_CONFLICT = "AliasConflict"
DUPLICATE_OBJECT = "DuplicateObject"
UNRESOLVED_PORT = "UnresolvedPort"
NOT_SELECTED = "NotSelected"
DISCOVERY_PENDING = "DiscoveryPending"
UNSERVABLE_MODEL = "UnservableModel"
INCOMPATIBLE_MODEL = "IncompatibleModel"
"""A fallback of another mode than its primary's (chat -> embedding): the link is dropped."""
NO_LARGER_CONTEXT_WINDOW = "NoLargerContextWindow"
"""A contextWindow fallback whose window is not known to be larger than the primary's."""
CONFLICTING_MODES = "ConflictingModes"
"""One model name served with several modes (a load-balanced group of mixed deployments)."""


@dataclasses.dataclass(frozen=True, order=True)
class Finding:
    """One problem with one object."""

    kind: str
    namespace: str
    name: str
    field: str
    reason: str
    message: str
    severity: Severity = "error"

    @property
    def object_ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def __str__(self) -> str:
        where = f" {self.field}" if self.field else ""
        return f"{self.object_ref}{where}: {self.message}"


def reason_of(found: Iterable[Finding]) -> str:
    """The reason an invalid object is not accepted: its findings' own when they all share
    one (`InvalidEndpoint`), else `InvalidSpec`."""
    reasons = {f.reason for f in found}
    return reasons.pop() if len(reasons) == 1 else INVALID_SPEC
