"""Secrets' resourceVersions from a metadata-only list and watch: Secret data never reaches the process.

`rolloutOnSecretChange` needs to know when a Secret changes, never what it holds. A
kopf watch brings whole objects, data included; the API server instead serves any
resource as its metadata alone (PartialObjectMetadata) to a client that asks for it
in the Accept header, as client-go's metadata informers do. The official client has
no typed call for that shape, but its list call takes `_headers`, and with
`_preload_content=False` hands back the raw response, which `llmgw.kube.watchcache`
reads and cuts down to namespace, name and resourceVersion on receipt, whatever the
server sent (its list, watch, relist on 410 and pacing are those of every watch cache).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from llmgw.kube import watchcache
from llmgw.kube.client import Kube

Key = tuple[str, str]
"""(namespace, name) of a Secret."""
LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
WATCH_SECONDS = 60
"""How long the server keeps one watch open (`timeoutSeconds`) before it is resumed."""
SOURCE = watchcache.Source(
    "v1", "Secret", "secrets", list_accept=LIST_ACCEPT, watch_accept=WATCH_ACCEPT, bodies=False
)


def _version(obj: Mapping[str, Any]) -> tuple[Key, str]:
    meta = obj.get("metadata") or {}
    key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
    return key, str(meta.get("resourceVersion") or "")


class SecretVersions(watchcache.WatchCache[str]):
    """The resourceVersion of every Secret in the served namespaces, kept current."""

    def __init__(
        self,
        kube: Kube,
        namespaces: tuple[str, ...],
        on_change: Callable[[Key], None],
        logger: logging.Logger | logging.LoggerAdapter[Any],
        *,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        super().__init__(
            kube,
            SOURCE,
            namespaces,
            _version,
            lambda change: on_change(change.key),
            logger,
            watch_seconds=watch_seconds,
            what="Secrets' metadata",
        )

    @property
    def versions(self) -> dict[Key, str]:
        """Each Secret's resourceVersion by (namespace, name)."""
        return {key: version for key, (_filed, version) in self.held.items()}
