"""Leader election on a coordination.k8s.io/v1 Lease, as client-go does it.

One replica holds the Lease and renews it; the others watch and take over
when it has not been renewed for its duration. Every write is a replace with
the resourceVersion read just before, so two replicas can never both win:
the API server refuses the second with 409.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
from typing import Any

from llmgw.kube.client import Kube, KubeError


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _fmt(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


@dataclasses.dataclass
class LeaseLock:
    kube: Kube
    namespace: str
    name: str
    identity: str
    duration: int = 15

    async def try_acquire_or_renew(self) -> bool:
        """True while this replica holds the Lease."""
        lease = await self.kube.read_lease(self.namespace, self.name)
        now = _now()
        if lease is None:
            body = self._body(now, now, transitions=0)
            try:
                await self.kube.create_lease(self.namespace, body)
            except KubeError as exc:
                if exc.status == 409:
                    return False
                raise
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        duration = int(spec.get("leaseDurationSeconds") or self.duration)
        expired = renewed is None or (now - renewed).total_seconds() > duration
        if holder != self.identity and holder and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            acquired = _parse(spec.get("acquireTime")) or now
        else:
            acquired, transitions = now, transitions + 1
        body = self._body(acquired, now, transitions)
        body["metadata"]["resourceVersion"] = (lease.get("metadata") or {}).get("resourceVersion")
        try:
            await self.kube.replace_lease(self.namespace, self.name, body)
        except KubeError as exc:
            if exc.status in (409, 404):
                return False
            raise
        return True

    async def release(self) -> None:
        """Let a standby take over at once (on a clean shutdown)."""
        lease = await self.kube.read_lease(self.namespace, self.name)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        body = self._body(_now(), _now(), int((lease.get("spec") or {}).get("leaseTransitions") or 0))
        body["spec"]["holderIdentity"] = ""
        body["spec"]["leaseDurationSeconds"] = 1
        body["spec"]["renewTime"] = _fmt(_now() - datetime.timedelta(seconds=self.duration + 1))
        body["metadata"]["resourceVersion"] = (lease.get("metadata") or {}).get("resourceVersion")
        with contextlib.suppress(KubeError):
            await self.kube.replace_lease(self.namespace, self.name, body)

    def _body(
        self, acquired: datetime.datetime, renewed: datetime.datetime, transitions: int
    ) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "llmgw"},
            },
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.duration,
                "acquireTime": _fmt(acquired),
                "renewTime": _fmt(renewed),
                "leaseTransitions": transitions,
            },
        }
