"""Which replica acts, and whether this one still sees the cluster.

Every replica runs kopf's watches (so a standby's indexes are warm and it can
take over at once), but only the holder of the Lease reconciles and writes.
The Lease renewals double as a heartbeat: every replica watches the Lease, so
the age of the last renewal it saw is the age of its view of the cluster. A
watch that stays open but delivers nothing shows up there, and liveness fails
so that the kubelet restarts the zombie.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from llmgw.kube.client import Kube, KubeError
from llmgw.kube.lease import LeaseLock


def default_identity() -> str:
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}-{os.getpid()}"


class Elector:
    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        name: str,
        identity: str,
        duration: float,
        renew: float,
        on_change: Callable[[bool], None],
        logger: logging.Logger | logging.LoggerAdapter[Any],
        release_on_stop: bool = True,
    ) -> None:
        self.lock = LeaseLock(kube, namespace, name, identity, max(1, round(duration)))
        self.renew = renew
        self.duration = duration
        self.on_change = on_change
        self.logger = logger
        self.release_on_stop = release_on_stop
        self._leader = False
        self.renewed_at = 0.0
        # As client-go's renewDeadline: a leader that has not renewed for this long acts no
        # more, well before a standby may take the Lease (after the full duration).
        self.renew_deadline = max(renew, duration * 2 / 3)
        self.last_seen = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name="llmgw-leader-election")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self._leader and self.release_on_stop:
            await self.lock.release()
        self._leader = False

    @property
    def is_leader(self) -> bool:
        return self._leader and time.monotonic() - self.renewed_at < self.renew_deadline

    def observed(self) -> None:
        """A Lease event arrived through the watch: our view of the cluster is fresh."""
        self.last_seen = time.monotonic()

    def watch_age(self) -> float:
        return time.monotonic() - self.last_seen

    async def run(self) -> None:
        while True:
            attempt = time.monotonic()
            try:
                leader = await self.lock.try_acquire_or_renew()
            except KubeError as exc:
                self.logger.warning(f"leader election: {exc}")
                leader = False
            except Exception as exc:  # never let election die silently: step down, retry
                self.logger.error(f"leader election failed unexpectedly: {exc!r}")
                leader = False
            if leader:
                self.renewed_at = attempt
            if leader != self._leader:
                self._leader = leader
                verb = "acquired" if leader else "lost"
                self.logger.info(f"leader election: {verb} Lease {self.lock.namespace}/{self.lock.name}")
                self.on_change(leader)
            await asyncio.sleep(self.renew)
