"""The names objects go by: one key type for a namespaced object, one for an object of any kind.

Plain tuples, as kopf's indexes and the API's own identities are, so that a key
from an index and one built here are the same value; the names say which of the
two a mapping is keyed by.
"""

from __future__ import annotations

from typing import Protocol, TypeAlias

Key: TypeAlias = tuple[str, str]
"""`(namespace, name)` of a namespaced object: a gateway, provider, chain, Service, Secret."""

ObjectId: TypeAlias = tuple[str, str, str]
"""`(kind, namespace, name)`: an object of one of our kinds, or of any kind the operator names."""


class _Meta(Protocol):
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...


class _Named(Protocol):
    @property
    def metadata(self) -> _Meta: ...


class _Kinded(_Named, Protocol):
    @property
    def kind(self) -> str: ...


def of(obj: _Named) -> Key:
    """The key of a parsed object (its metadata's namespace and name)."""
    return (obj.metadata.namespace, obj.metadata.name)


def id_of(obj: _Kinded) -> ObjectId:
    """The identity of a parsed object of one of our kinds."""
    return (obj.kind, obj.metadata.namespace, obj.metadata.name)
