"""Writes to the Kubernetes API through the official client, kept off the event loop.

The official client is synchronous, so every call runs in a worker thread.
Bodies are plain dicts from `llmgw.core.desired`; patches are JSON merge
patches of exactly the fields the operator owns. Reads of the watched objects
come from kopf's watches (the indexes); what this module reads is the
leader-election Lease (`llmgw.kube.lease`), which it also creates and replaces, and
discovery (`api_resources`): the objects a gateway owns include kinds of optional
APIs (HTTPRoute, ServiceMonitor) that a cluster may not serve. A 404 names no such
difference, so "this API does not exist" is asked of discovery, never read off a 404
("this object does not exist").

Every call takes a token from a rate limiter first and is retried, as long as the server's
`Retry-After` says, when it is answered `429 Too Many Requests` (`llmgw.kube.ratelimit`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import kubernetes
import urllib3

from llmgw import metrics, options
from llmgw.api import GROUP, VERSION
from llmgw.kube import ratelimit

T = TypeVar("T")
MERGE_PATCH = "application/merge-patch+json"
RETRIES_429 = 5
"""Retries of a call answered 429, each after its `Retry-After` (at most 10 s): then the
caller gets the 429, and its own backoff takes over."""
HEADROOM = 4
"""Worker threads beyond the status writes' concurrency: the Lease, companions, Secrets."""

PLURALS = {
    "LLMProvider": "llmproviders",
    "FallbackChain": "fallbackchains",
    "LLMGateway": "llmgateways",
}


class CustomApi(Protocol):
    """Where a custom resource lives: `/apis/{group}/{version}/namespaces/{ns}/{plural}`."""

    @property
    def group(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def plural(self) -> str: ...


class KubeError(Exception):
    """A failed API call, with the HTTP status for callers that care (409, 404), and the API
    server's own message where it sent one (why a 422 refused an object)."""

    def __init__(self, verb: str, what: str, status: int, reason: str, message: str = "") -> None:
        super().__init__(f"{verb} {what} failed: HTTP {status} {reason}".strip())
        self.status = status
        self.message = message


class NotLeading(KubeError):
    """A write refused before it is sent: this replica no longer holds the leader Lease."""

    def __init__(self, verb: str, what: str) -> None:
        super().__init__(verb, what, 0, "not sent: this replica no longer holds the leader Lease")


def _unread(fn: Callable[..., Any]) -> Callable[..., None]:
    """`fn` (a typed API's method) asked for the raw response, which is drained and handed
    back to the connection pool unparsed; an error answer still raises as `fn` would."""

    def call(*args: Any, **kw: Any) -> None:
        resp = fn(*args, _preload_content=False, **kw)
        resp.drain_conn()
        resp.release_conn()

    return call


def _message(exc: Any) -> str:
    """The `message` of the Status an API server answers an error with; '' without one."""
    try:
        status = json.loads(exc.body or "")
    except (TypeError, ValueError):
        return ""
    message = status.get("message") if isinstance(status, dict) else None
    return str(message)[:2000] if message else ""


@dataclasses.dataclass
class Kube:
    """A thin async facade over the typed APIs the operator writes through."""

    api: Any
    timeout: float = 30.0
    """Seconds a call may take, connect and read each: a hung connection must not hold a
    reconcile, or a leader's renewal, for ever (the client's default is no limit)."""
    limiter: ratelimit.TokenBucket = dataclasses.field(
        default_factory=lambda: ratelimit.TokenBucket(options.API_QPS, options.API_BURST)
    )
    """Every call takes a token first (`throttle` sets the rate from `llmgw run`'s options)."""
    retries: int = RETRIES_429
    executor: concurrent.futures.Executor | None = None
    """Where the synchronous client's calls run; None: the event loop's default executor."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    fence: Callable[[], bool] | None = None
    """With leader election: whether this replica may write now. Checked before every write
    but the Lease's own, so a pass that began as the leader stops writing mid-way once the
    renew deadline passes, not only at its next start."""

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

    def throttle(self, qps: float, burst: int, concurrency: int) -> None:
        """At most `qps` calls a second on average and `burst` at once, and threads (and pooled
        connections) enough for `concurrency` calls at a time plus `HEADROOM`: the event
        loop's default executor has min(32, CPUs + 4) threads, which would cap the status
        writes' concurrency on a small node without saying so."""
        self.limiter = ratelimit.TokenBucket(qps, burst)
        workers = max(1, concurrency) + HEADROOM
        self.executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="llmgw-kube")
        pool = getattr(getattr(self.api, "rest_client", None), "pool_manager", None)
        if isinstance(pool, urllib3.PoolManager):  # connections beyond maxsize are dropped
            pool.connection_pool_kw["maxsize"] = max(
                int(pool.connection_pool_kw.get("maxsize") or 1), workers
            )
            ratelimit.own_retry_after(pool)  # clears the pool too

    async def _send(self, verb: str, resource: str, fn: Any, *args: Any, **kw: Any) -> Any:
        """`fn(*args, **kw)` in a worker thread once the limiter gives a token; a 429 is asked
        again after its `Retry-After`, `retries` times at most, then raised like any error."""
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, _request_timeout=self.timeout, **kw)
        return await self.paced(verb, resource, lambda: loop.run_in_executor(self.executor, call))

    async def paced(self, verb: str, resource: str, request: Callable[[], Awaitable[T]]) -> T:
        """`request()` under this client's limiter and 429 retries (`ratelimit.paced`), for a
        caller that sends a request of its own (`llmgw.kube.secretversions`)."""
        return await ratelimit.paced(
            self.limiter,
            request,
            retries=self.retries,
            sleep=self.sleep,
            on_429=lambda: metrics.API_ERRORS.labels(verb, resource, "429").inc(),  # no series before one
        )

    # The API classes, made once. The client imports each API's module on its first use, and
    # CoreV1Api's alone takes about a second (a pydantic wrapper for each of its hundreds of
    # methods): in the event loop, that held up every review and watch event at the operator's
    # first ConfigMap write. `warm` makes them in a worker thread at start-up instead.
    @functools.cached_property
    def core(self) -> Any:
        return kubernetes.client.CoreV1Api(self.api)

    @functools.cached_property
    def apps(self) -> Any:
        return kubernetes.client.AppsV1Api(self.api)

    @functools.cached_property
    def custom(self) -> Any:
        return kubernetes.client.CustomObjectsApi(self.api)

    @functools.cached_property
    def discovery(self) -> Any:
        return kubernetes.client.DiscoveryV1Api(self.api)

    @functools.cached_property
    def autoscaling(self) -> Any:
        return kubernetes.client.AutoscalingV2Api(self.api)

    @functools.cached_property
    def policy(self) -> Any:
        return kubernetes.client.PolicyV1Api(self.api)

    async def flow_controlled(self) -> bool | None:
        """Whether the API server applies API Priority and Fairness (`ratelimit.flow_controlled`),
        from one `GET /livez/ping` (open to every client, as cert-manager asks it); None when it
        could not be asked. Any answer carries the headers, an error's too."""

        def ask() -> Mapping[str, str]:
            method, url, headers, _, _ = self.api.param_serialize(
                "GET", "/livez/ping", auth_settings=["BearerToken"]
            )
            resp = self.api.call_api(method, url, header_params=headers, _request_timeout=self.timeout)
            resp.read()  # whatever its status: the headers are what is asked
            return dict(resp.headers or {})

        try:
            headers = await asyncio.get_running_loop().run_in_executor(self.executor, ask)
        except (OSError, urllib3.exceptions.HTTPError):
            return None
        return ratelimit.flow_controlled(headers)

    def warm(self) -> None:
        """Import and make every API class this client uses (for a worker thread)."""
        for api in (self.core, self.apps, self.custom, self.discovery, self.autoscaling, self.policy):
            assert api is not None

    async def _call(self, verb: str, resource: str, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        if self.fence is not None and resource != "leases" and not self.fence():
            raise NotLeading(verb, what)
        try:
            result = await self._send(verb, resource, fn, *args, **kw)
        except kubernetes.client.ApiException as exc:
            metrics.API_ERRORS.labels(verb, resource, str(exc.status)).inc()
            status, reason = int(exc.status or 0), str(exc.reason or "")
            raise KubeError(verb, what, status, reason, _message(exc)) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # refused, reset, DNS, retries spent
            metrics.API_ERRORS.labels(verb, resource, "0").inc()
            raise KubeError(verb, what, 0, str(exc)) from None
        metrics.API_WRITES.labels(verb, resource).inc()
        return result

    async def create(self, body: Mapping[str, Any], api: CustomApi | None = None) -> Any:
        """Create `body`; `api` for a custom resource's kind (HTTPRoute, ServiceMonitor)."""
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
        if kind == "HorizontalPodAutoscaler":
            return await self._call(
                "create",
                "horizontalpodautoscalers",
                what,
                self.autoscaling.create_namespaced_horizontal_pod_autoscaler,
                ns,
                body,
            )
        if kind == "PodDisruptionBudget":
            return await self._call(
                "create",
                "poddisruptionbudgets",
                what,
                self.policy.create_namespaced_pod_disruption_budget,
                ns,
                body,
            )
        if api is not None:
            return await self._call(
                "create",
                api.plural,
                what,
                self.custom.create_namespaced_custom_object,
                api.group,
                api.version,
                ns,
                api.plural,
                body,
            )
        raise ValueError(f"cannot create {kind}")

    async def patch(self, body: Mapping[str, Any], api: CustomApi | None = None) -> Any:
        """A JSON merge patch of `body` onto the object it names; `api` as for `create`."""
        kind = body["kind"]
        ns = body["metadata"]["namespace"]
        name = body["metadata"]["name"]
        what = f"{kind} {ns}/{name}"
        if api is not None:
            return await self._call(
                "patch",
                api.plural,
                what,
                self.custom.patch_namespaced_custom_object,
                api.group,
                api.version,
                ns,
                api.plural,
                name,
                body,
                _content_type=MERGE_PATCH,
            )
        if kind == "Service":
            fn = self.core.patch_namespaced_service
            resource = "services"
        elif kind == "Deployment":
            fn = self.apps.patch_namespaced_deployment
            resource = "deployments"
        elif kind == "HorizontalPodAutoscaler":
            fn = self.autoscaling.patch_namespaced_horizontal_pod_autoscaler
            resource = "horizontalpodautoscalers"
        elif kind == "PodDisruptionBudget":
            fn = self.policy.patch_namespaced_pod_disruption_budget
            resource = "poddisruptionbudgets"
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

    async def delete(self, kind: str, namespace: str, name: str, api: CustomApi | None = None) -> None:
        """Delete an owned object of `kind` (an HPA, PDB, or with `api` a custom resource's)."""
        what = f"{kind} {namespace}/{name}"
        if api is not None:
            await self._call(
                "delete",
                api.plural,
                what,
                self.custom.delete_namespaced_custom_object,
                api.group,
                api.version,
                namespace,
                api.plural,
                name,
            )
        elif kind == "HorizontalPodAutoscaler":
            await self._call(
                "delete",
                "horizontalpodautoscalers",
                what,
                self.autoscaling.delete_namespaced_horizontal_pod_autoscaler,
                name,
                namespace,
            )
        elif kind == "PodDisruptionBudget":
            await self._call(
                "delete",
                "poddisruptionbudgets",
                what,
                self.policy.delete_namespaced_pod_disruption_budget,
                name,
                namespace,
            )
        else:
            raise ValueError(f"cannot delete {kind}")

    async def api_resources(self, group: str, version: str) -> frozenset[str] | None:
        """The resources (plurals) discovery lists for `group/version`; None when the cluster does
        not serve that group/version at all. Discovery is open to every authenticated client
        (the `system:discovery` role): no RBAC of the operator's own."""
        try:
            result = await self._send("get", "discovery", self.custom.get_api_resources, group, version)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            metrics.API_ERRORS.labels("get", "discovery", str(exc.status)).inc()
            raise KubeError(
                "get", f"discovery of {group}/{version}", int(exc.status or 0), str(exc.reason or "")
            ) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            metrics.API_ERRORS.labels("get", "discovery", "0").inc()
            raise KubeError("get", f"discovery of {group}/{version}", 0, str(exc)) from None
        data: dict[str, Any] = self.api.sanitize_for_serialization(result) or {}
        return frozenset(str(r.get("name", "")) for r in data.get("resources") or ())

    @property
    def coordination(self) -> Any:
        return kubernetes.client.CoordinationV1Api(self.api)

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            result = await self._send(
                "get", "leases", self.coordination.read_namespaced_lease, name, namespace
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

    async def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge `status` into the stored one. The answer (the whole object) is not read: a
        first pass writes thousands of statuses, and parsing each object back was about a
        fifth of the client's CPU a write; the object's watch event brings it anyway."""
        plural = PLURALS[kind]
        await self._call(
            "patch",
            f"{plural}/status",
            f"{kind} {namespace}/{name} status",
            _unread(self.custom.patch_namespaced_custom_object_status),
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"status": status},
            _content_type=MERGE_PATCH,
        )
