"""Writes to the Kubernetes API through the official client, kept off the event loop.

The official client is synchronous, so every call runs in a worker thread.
Bodies are plain dicts from `llmgw.core.desired`; patches are JSON merge
patches of exactly the fields the operator owns. Reads come from kopf's
watches (the indexes), so this module only writes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import kubernetes
import urllib3

from llmgw import metrics
from llmgw.api import GROUP, VERSION

MERGE_PATCH = "application/merge-patch+json"

PLURALS = {
    "LLMProvider": "llmproviders",
    "FallbackChain": "fallbackchains",
    "LLMGateway": "llmgateways",
}


class KubeError(Exception):
    """A failed API call, with the HTTP status for callers that care (409, 404)."""

    def __init__(self, verb: str, what: str, status: int, reason: str) -> None:
        super().__init__(f"{verb} {what} failed: HTTP {status} {reason}".strip())
        self.status = status


@dataclasses.dataclass
class Kube:
    """A thin async facade over the typed APIs the operator writes through."""

    api: Any
    timeout: float = 30.0
    """Seconds a call may take, connect and read each: a hung connection must not hold a
    reconcile, or a leader's renewal, for ever (the client's default is no limit)."""

    @classmethod
    def connect(cls) -> Kube:
        """Credentials from the pod's service account, else KUBECONFIG / ~/.kube/config."""
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            # The client reads $KUBECONFIG at import; read it now, as kubectl does.
            path = os.environ.get("KUBECONFIG") or None
            kubernetes.config.load_kube_config(config_file=path)  # type: ignore[no-untyped-call]
        return cls(kubernetes.client.ApiClient())

    @property
    def core(self) -> Any:
        return kubernetes.client.CoreV1Api(self.api)

    @property
    def apps(self) -> Any:
        return kubernetes.client.AppsV1Api(self.api)

    @property
    def custom(self) -> Any:
        return kubernetes.client.CustomObjectsApi(self.api)

    async def _call(self, verb: str, resource: str, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            result = await asyncio.to_thread(fn, *args, _request_timeout=self.timeout, **kw)
        except kubernetes.client.ApiException as exc:
            metrics.API_ERRORS.labels(verb, resource, str(exc.status)).inc()
            raise KubeError(verb, what, int(exc.status or 0), str(exc.reason or "")) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # refused, reset, DNS, retries spent
            metrics.API_ERRORS.labels(verb, resource, "0").inc()
            raise KubeError(verb, what, 0, str(exc)) from None
        metrics.API_WRITES.labels(verb, resource).inc()
        return result

    async def create(self, body: Mapping[str, Any]) -> Any:
        kind = body["kind"]
        ns = body["metadata"]["namespace"]
        what = f"{kind} {ns}/{body['metadata']['name']}"
        if kind == "ConfigMap":
            return await self._call(
                "create", "configmaps", what, self.core.create_namespaced_config_map, ns, body
            )
        if kind == "Secret":
            return await self._call("create", "secrets", what, self.core.create_namespaced_secret, ns, body)
        if kind == "Service":
            return await self._call("create", "services", what, self.core.create_namespaced_service, ns, body)
        if kind == "Deployment":
            return await self._call(
                "create", "deployments", what, self.apps.create_namespaced_deployment, ns, body
            )
        raise ValueError(f"cannot create {kind}")

    async def patch(self, body: Mapping[str, Any]) -> Any:
        kind = body["kind"]
        ns = body["metadata"]["namespace"]
        name = body["metadata"]["name"]
        what = f"{kind} {ns}/{name}"
        if kind == "Service":
            fn = self.core.patch_namespaced_service
            resource = "services"
        elif kind == "Deployment":
            fn = self.apps.patch_namespaced_deployment
            resource = "deployments"
        else:
            raise ValueError(f"cannot patch {kind}")
        return await self._call("patch", resource, what, fn, name, ns, body, _content_type=MERGE_PATCH)

    async def delete_config_map(self, namespace: str, name: str) -> None:
        await self._call(
            "delete",
            "configmaps",
            f"ConfigMap {namespace}/{name}",
            self.core.delete_namespaced_config_map,
            name,
            namespace,
        )

    @property
    def coordination(self) -> Any:
        return kubernetes.client.CoordinationV1Api(self.api)

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            result = await asyncio.to_thread(
                self.coordination.read_namespaced_lease, name, namespace, _request_timeout=self.timeout
            )
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            metrics.API_ERRORS.labels("get", "leases", str(exc.status)).inc()
            raise KubeError(
                "get", f"Lease {namespace}/{name}", int(exc.status or 0), str(exc.reason or "")
            ) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise KubeError("get", f"Lease {namespace}/{name}", 0, str(exc)) from None
        data: dict[str, Any] = self.api.sanitize_for_serialization(result)
        return data

    async def create_lease(self, namespace: str, body: Mapping[str, Any]) -> Any:
        what = f"Lease {namespace}/{body['metadata']['name']}"
        return await self._call(
            "create", "leases", what, self.coordination.create_namespaced_lease, namespace, body
        )

    async def replace_lease(self, namespace: str, name: str, body: Mapping[str, Any]) -> Any:
        what = f"Lease {namespace}/{name}"
        return await self._call(
            "update", "leases", what, self.coordination.replace_namespaced_lease, name, namespace, body
        )

    async def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> Any:
        plural = PLURALS[kind]
        return await self._call(
            "patch",
            f"{plural}/status",
            f"{kind} {namespace}/{name} status",
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"status": status},
            _content_type=MERGE_PATCH,
        )
