"""Which optional APIs the cluster serves, asked of discovery at a slow, bounded pace.

A gateway may own kinds that only some clusters have: an HTTPRoute (the Gateway API's
CRDs) or a ServiceMonitor (the Prometheus Operator's). Where one is missing the gateway
keeps serving and says so; it must not try to create the object on every pass, nor
retry with backoff for ever. So the answer is remembered: an API that is served stays
served until a write says otherwise (`lost`); one that is missing is asked about again
at most every `recheck` seconds, or at once when a CustomResourceDefinition of its group
changes (`forget`, from the CRD watch).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from llmgw.kube.client import CustomApi, Kube

RECHECK_SECONDS = 60.0
"""How often, at most, discovery is asked again about an API found missing."""

Coordinates = tuple[str, str, str]
"""(group, version, plural)."""


def _coordinates(api: CustomApi) -> Coordinates:
    return (api.group, api.version, api.plural)


class Served:
    def __init__(
        self,
        kube: Kube,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        recheck: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.logger = logger
        self.recheck = recheck
        self.clock = clock
        self._known: dict[Coordinates, tuple[bool, float]] = {}
        """Whether each API asked about is served, and when discovery said so."""

    def known(self, api: CustomApi) -> bool | None:
        """The last answer, without asking; None before the first."""
        found = self._known.get(_coordinates(api))
        return None if found is None else found[0]

    async def serves(self, api: CustomApi) -> bool:
        """Whether the cluster serves `api`: remembered, or asked of discovery when the answer
        is missing or a "no" older than `recheck`. Raises KubeError when discovery fails."""
        key = _coordinates(api)
        found = self._known.get(key)
        now = self.clock()
        if found is not None and (found[0] or now - found[1] < self.recheck):
            return found[0]
        plurals = await self.kube.api_resources(api.group, api.version)
        served = plurals is not None and api.plural in plurals
        if found is None or found[0] != served:
            where = f"{api.plural}.{api.group}/{api.version}"
            if served:
                self.logger.info(f"the cluster serves {where}")
            else:
                self.logger.warning(
                    f"the cluster does not serve {where}; asking again in {self.recheck:.0f}s "
                    "or when its CustomResourceDefinition appears"
                )
        self._known[key] = (served, now)
        return served

    def lost(self, api: CustomApi) -> None:
        """A write answered 404: ask discovery again on the next `serves`."""
        self._known.pop(_coordinates(api), None)

    def forget(self, group: str) -> None:
        """A CustomResourceDefinition of `group` changed: ask discovery again."""
        for key in [k for k in self._known if k[0] == group]:
            del self._known[key]

    def next_check(self, among: Iterable[CustomApi]) -> float | None:
        """Seconds until the soonest of the missing APIs `among` may be asked about again; None
        when none of them is known to be missing."""
        now = self.clock()
        waits = [
            max(0.0, found[1] + self.recheck - now)
            for api in among
            if (found := self._known.get(_coordinates(api))) is not None and not found[0]
        ]
        return min(waits, default=None)
