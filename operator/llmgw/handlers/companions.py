"""The applier of what a gateway owns besides its Deployment and Service.

`desired.companions` says, for each kind (HorizontalPodAutoscaler, PodDisruptionBudget,
HTTPRoute, ServiceMonitor), the object the gateway should have, or None where it must
have none. This writes the differences, by the same rule as for the Deployment: an
object is written only when its spec hash differs from the live one's (and from what
this process last wrote and the watch may not show yet), created when missing, and
deleted when it must not exist. While nothing changes it writes nothing.

HTTPRoute and ServiceMonitor are CRDs that a cluster may lack. Then the gateway goes on
serving without them, its status says so, and the API is asked about again only at the
pace `llmgw.kube.apis` allows (or when its CRD appears): no create attempt on every pass,
no retrying with backoff for ever.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from llmgw.api.gateway import LLMGateway
from llmgw.core import desired, keys, patches
from llmgw.handlers.indexes import Indexes
from llmgw.kube import apis
from llmgw.kube.client import Kube, KubeError

OPTIONAL = frozenset(kind for kind, api in desired.APIS.items() if "." in api.group)
"""Kinds of APIs only some clusters serve: CRDs (a built-in group has no dot)."""

Owned = tuple[str, str, str]
"""(apiVersion, kind, name) of an object a gateway owns."""


WORKLOAD = (("apps/v1", "Deployment"), ("v1", "Service"))


@dataclasses.dataclass(frozen=True)
class Applied:
    owned: tuple[Owned, ...] = ()
    """What the gateway owns now, its revisions and master key aside."""
    apis: Mapping[str, bool | None] = dataclasses.field(default_factory=dict)
    """For each optional kind the gateway asks for: whether the cluster serves it (None: not known)."""

    def fields(self) -> dict[str, Any]:
        """As `statuses.Rollout`'s keyword arguments."""
        return {"owned": self.owned, "apis": dict(self.apis)}


def _one(index: Any, key: keys.Key) -> Any:
    store = index.get(key) if index is not None else None
    return next(iter(store), None) if store else None


def _hash(body: Mapping[str, Any]) -> str:
    return str(((body.get("metadata") or {}).get("annotations") or {}).get(desired.SPEC_HASH))


def differs(
    written: MutableMapping[tuple[keys.Key, str], str],
    key: keys.Key,
    kind: str,
    live: Mapping[str, Any],
    want: Mapping[str, Any],
) -> bool:
    """Whether `want` needs writing over `live`: their spec hashes differ, and it is not what this
    process last wrote (which the watch may not show yet). Once the watch shows it, it forgets."""
    wanted = _hash(want)
    if _hash(live) == wanted:
        written.pop((key, kind), None)
        return False
    return written.get((key, kind)) != wanted


class Companions:
    def __init__(
        self,
        kube: Kube,
        written: MutableMapping[tuple[keys.Key, str], str],
        poke: Callable[[], None],
        logger: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        self.kube = kube
        self.written = written
        """The reconciler's `written_specs`: forgotten with the gateway."""
        self.poke = poke
        self.logger = logger
        self.served = apis.Served(kube, logger)
        self._recheck: asyncio.TimerHandle | None = None

    def stop(self) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None

    def known(self, gw: LLMGateway, idx: Indexes) -> Applied:
        """What is known without writing (for a pass that failed before the companions): the
        live companions, and the last word on each optional API the gateway asks for."""
        key = keys.of(gw)
        name = gw.metadata.name
        live = {"Deployment": idx.deployments, "Service": idx.services}
        owned = tuple((v, kind, name) for v, kind in WORKLOAD if _one(live[kind], key) is not None)
        owned += tuple(
            (desired.APIS[kind].api_version, kind, name)
            for kind in desired.APIS
            if _one(idx.companion(kind), key) is not None
        )
        asked = {
            kind: self.served.known(desired.APIS[kind])
            for kind, want in desired.companions(gw).items()
            if want is not None and kind in OPTIONAL
        }
        return Applied(owned, asked)

    async def apply(self, gw: LLMGateway, idx: Indexes) -> Applied:
        """Write what differs, after the Deployment and Service are written; raises KubeError when
        a write fails (the pass retries)."""
        key = keys.of(gw)
        owned: list[Owned] = [(v, kind, gw.metadata.name) for v, kind in WORKLOAD]
        asked: dict[str, bool | None] = {}
        for kind, want in desired.companions(gw).items():
            api = desired.APIS[kind]
            custom = api if kind in OPTIONAL else None
            live = _one(idx.companion(kind), key)
            if want is None:
                if live is not None or (key, kind) in self.written:
                    await self._delete(kind, key, custom)
                continue
            if custom is not None:
                asked[kind] = await self.served.serves(custom)
                if not asked[kind]:
                    continue
            if not await self._write(kind, key, live, want, custom):
                asked[kind] = False  # the API went away since discovery said it was there
                continue
            owned.append((api.api_version, kind, gw.metadata.name))
        self._schedule([desired.APIS[kind] for kind, served in asked.items() if not served])
        return Applied(tuple(owned), asked)

    async def _write(
        self,
        kind: str,
        key: keys.Key,
        live: Mapping[str, Any] | None,
        want: Mapping[str, Any],
        custom: desired.Api | None,
    ) -> bool:
        """Create or patch as needed; False when the API turned out to be missing."""
        try:
            if live is None:
                if self.written.get((key, kind)) == _hash(want):
                    return True  # created by this process; the watch has not shown it yet
                try:
                    await self.kube.create(patches.annotated(want), custom)
                except KubeError as exc:
                    if exc.status != 409:  # already there: a restart, or another pass made it
                        raise
                    await self.kube.patch(patches.merge_patch({}, want), custom)
            elif differs(self.written, key, kind, live, want):
                await self.kube.patch(patches.merge_patch(live, want), custom)
            else:
                return True
        except KubeError as exc:
            if exc.status != 404:
                raise
            if custom is not None:  # the whole API may be gone, or only the object: ask which
                self.served.lost(custom)
                if not await self.served.serves(custom):
                    return False
            if live is None:
                raise
            await self.kube.create(want, custom)  # deleted since the watch showed it
        self.written[(key, kind)] = _hash(want)
        return True

    async def _delete(self, kind: str, key: keys.Key, custom: desired.Api | None) -> None:
        try:
            await self.kube.delete(kind, key[0], key[1], custom)
        except KubeError as exc:
            if exc.status != 404:  # gone already (or its whole API is)
                raise
        self.written.pop((key, kind), None)

    def _schedule(self, missing: list[desired.Api]) -> None:
        """While an API a gateway asks for is missing, one pass when it may be asked about again
        (the CRD watch may be denied, or miss the moment the CRD is established)."""
        if self._recheck is not None:
            return
        delay = self.served.next_check(missing)
        if delay is None:
            return

        def due() -> None:
            self._recheck = None
            self.poke()

        self._recheck = asyncio.get_running_loop().call_later(delay + 0.1, due)
