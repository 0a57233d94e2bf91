"""Findings: what is wrong with an object, said for people.

A finding names the object (`FallbackChain acc/chat`), the field
(`spec.fallbacks[1]`), what is wrong and what to do. Reasons are CamelCase
words that double as condition reasons on the object's status.
"""

from __future__ import annotations

import dataclasses
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
