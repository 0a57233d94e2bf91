"""Integration harness: the real operator (`llmgw run`'s entry point) against an API server over HTTP.

By default the API server is kmock's emulator (see `kube_emulator.py`). With
`LLMGW_TEST_KUBECONFIG=PATH` the same tests run against a real cluster (e.g. kind) where the
CRDs from `crds/` are installed; there, tests that inspect the emulator's write log
are skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import kube_emulator as apiserver
import pytest

pytestmark = pytest.mark.integration

GROUP_PATH = "/apis/llmgateway.dev/v1alpha1"
PLURALS = {"LLMProvider": "llmproviders", "FallbackChain": "fallbackchains", "LLMGateway": "llmgateways"}
OWNED_APIS = {
    "HorizontalPodAutoscaler": "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "HTTPRoute": "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes",
    "ServiceMonitor": "/apis/monitoring.coreos.com/v1/namespaces/{ns}/servicemonitors",
}


class Cluster:
    """The test's own client of the API server: plain HTTP, as kubectl would do it."""

    def __init__(self, url: str, emulator: apiserver.Emulator | None) -> None:
        self.url = url.rstrip("/")
        self.emulator = emulator
        self.session = aiohttp.ClientSession(headers={"User-Agent": "llmgw-tests"})

    @staticmethod
    def path(kind: str, namespace: str, name: str | None = None) -> str:
        if kind in PLURALS:
            base = f"{GROUP_PATH}/namespaces/{namespace}/{PLURALS[kind]}"
        elif kind == "Deployment":
            base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        elif kind in OWNED_APIS:
            base = OWNED_APIS[kind].format(ns=namespace)
        elif kind == "EndpointSlice":
            base = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        elif kind == "Namespace":
            return "/api/v1/namespaces" + (f"/{name}" if name else "")
        else:
            base = f"/api/v1/namespaces/{namespace}/{kind.lower()}s"
        return base + (f"/{name}" if name else "")

    async def _json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        async with self.session.request(method, self.url + path, json=body, **kw) as rsp:
            text = await rsp.text()
            if rsp.status == 404:
                return None
            assert rsp.status < 300, f"{method} {path}: {rsp.status} {text}"
            return json.loads(text) if text else None

    async def apply(self, obj: dict[str, Any]) -> Any:
        meta = obj["metadata"]
        meta.setdefault("namespace", "default")
        kind = obj["kind"]
        existing = await self.get(kind, meta["namespace"], meta["name"])
        if existing is None:
            return await self._json("POST", self.path(kind, meta["namespace"]), obj)
        return await self._json(
            "PATCH",
            self.path(kind, meta["namespace"], meta["name"]),
            obj,
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def patch(self, kind: str, namespace: str, name: str, patch: Any, sub: str = "") -> Any:
        return await self._json(
            "PATCH",
            self.path(kind, namespace, name) + sub,
            patch,
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def get(self, kind: str, namespace: str, name: str) -> Any:
        return await self._json("GET", self.path(kind, namespace, name))

    async def delete(self, kind: str, namespace: str, name: str) -> Any:
        return await self._json("DELETE", self.path(kind, namespace, name))

    async def list(self, kind: str, namespace: str) -> list[Any]:
        data = await self._json("GET", self.path(kind, namespace))
        return list((data or {}).get("items", []))

    async def config_maps(self, namespace: str, gateway: str) -> list[dict[str, Any]]:
        return [
            cm
            for cm in await self.list("ConfigMap", namespace)
            if (cm["metadata"].get("labels") or {}).get("llmgateway.dev/gateway") == gateway
        ]

    def writes(self) -> list[tuple[str, str, str, str]]:
        assert self.emulator is not None
        return list(self.emulator.writes)


async def eventually(
    check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll an async or sync check until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last: {last!r}")


def _kubeconfig(tmp: Path, url: str) -> Path:
    path = tmp / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": url}}],
                "users": [{"name": "test", "user": {"token": "test-token"}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                "current-context": "test",
            }
        )
    )
    return path


def provider(name: str, models: list[str], namespace: str = "ai", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "vllm",
        "endpoint": {"service": {"name": name, "namespace": "gpu", "port": 8000}},
        "models": [{"name": m} for m in models],
    }
    body.update(spec)
    return {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMProvider",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def chain(name: str, model: str, fallbacks: list[str], namespace: str = "ai", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "FallbackChain",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": model, "fallbacks": fallbacks, **spec},
    }


def gateway(name: str = "gw", namespace: str = "ai", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMGateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return None


if os.environ.get("LLMGW_DEBUG_OPERATOR"):  # pragma: no cover
    import logging

    logging.basicConfig(level=logging.DEBUG)


async def running(opts: Any, name: str = "llmgw-operator") -> AsyncIterator[None]:
    """The real operator, started as `llmgw run` starts it, in its own thread and event loop,
    for as long as the caller iterates.

    Its own loop, as in production: kopf treats every task of its loop as its own,
    and the API server's tasks must not be among them.
    """
    from llmgw import runner

    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(runner.operate(opts, stop_flag=stop, ready_flag=ready))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=main, name=name, daemon=True)
    thread.start()
    await asyncio.get_running_loop().run_in_executor(None, ready.wait, 15)
    try:
        yield
    finally:
        stop.set()
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 15)
        assert not thread.is_alive(), "the operator did not stop within 15 s"
        assert not errors, f"the operator crashed: {errors!r}"
