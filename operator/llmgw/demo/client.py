"""A small client of the embedded Kubernetes API, over HTTP with aiohttp, as kubectl would talk.

The demo's own parts (the estate's applier, the pod runner, `llmgw demo get`) talk
to the embedded API the way any client of a cluster does, so the operator sees
their writes through its watches as it would see a kubelet's or kubectl's. The
`kubernetes` client is the kube layer's alone; this is the few calls the demo needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

CORE = {
    "Namespace": ("", "v1", "namespaces", False),
    "Secret": ("", "v1", "secrets", True),
    "ConfigMap": ("", "v1", "configmaps", True),
    "Service": ("", "v1", "services", True),
    "Pod": ("", "v1", "pods", True),
    "Event": ("", "v1", "events", True),
    "EndpointSlice": ("discovery.k8s.io", "v1", "endpointslices", True),
    "Deployment": ("apps", "v1", "deployments", True),
    "ReplicaSet": ("apps", "v1", "replicasets", True),
    "LLMGateway": ("llmgateway.dev", "v1alpha1", "llmgateways", True),
    "LLMProvider": ("llmgateway.dev", "v1alpha1", "llmproviders", True),
    "FallbackChain": ("llmgateway.dev", "v1alpha1", "fallbackchains", True),
}
"""kind -> (group, version, plural, namespaced) for the kinds the demo reads or writes."""

MERGE = {"Content-Type": "application/merge-patch+json"}
AGENT = "llmgw-demo"


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text[:300]}")
        self.status = status


def path(kind: str, namespace: str | None = None, name: str | None = None, api_version: str = "") -> str:
    """The URL path of a kind's collection or object; kinds not in CORE from their apiVersion."""
    if kind in CORE:
        group, version, plural, namespaced = CORE[kind]
    else:
        group, _, version = api_version.rpartition("/")
        plural, namespaced = kind.lower() + "s", True
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return base + (f"/{name}" if name else "")


class Api:
    """JSON over HTTP to one API server."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": AGENT}, timeout=aiohttp.ClientTimeout(total=30)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, url_path: str, body: Any = None, headers: Any = None) -> Any:
        """The answer's JSON; None for 404."""
        data = None if body is None else json.dumps(body)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        async with self.session.request(method, self.url + url_path, data=data, headers=hdrs) as rsp:
            text = await rsp.text()
            if rsp.status == 404:
                return None
            if rsp.status >= 300:
                raise ApiError(rsp.status, text)
            return json.loads(text) if text else None

    async def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        data = await self.call("GET", path(kind, namespace))
        return list((data or {}).get("items") or [])

    async def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        out = await self.call("GET", path(kind, namespace, name))
        return out if isinstance(out, dict) else None

    async def create(self, obj: Mapping[str, Any]) -> Any:
        meta = obj.get("metadata") or {}
        return await self.call(
            "POST",
            path(str(obj["kind"]), meta.get("namespace"), api_version=str(obj.get("apiVersion", ""))),
            obj,
        )

    async def patch(
        self, kind: str, namespace: str | None, name: str, patch: Any, sub: str = "", api_version: str = ""
    ) -> Any:
        url = path(kind, namespace, name, api_version) + (f"/{sub}" if sub else "")
        return await self.call("PATCH", url, patch, MERGE)

    async def delete(self, kind: str, namespace: str | None, name: str, api_version: str = "") -> Any:
        return await self.call("DELETE", path(kind, namespace, name, api_version))
