"""The local Service: one loopback port that forwards HTTP to the gateway's ready pods.

It stands for the gateway's ClusterIP Service plus kube-proxy: each request goes to
the next ready pod that matches the Service's selector (round-robin), as the
EndpointSlice controller lists only ready, not terminating pods. A pod leaves the
rotation the moment it is deleted, while the preStop delay keeps it answering what
it already took; that is what makes a rollout lose no request. Answers are streamed
back as they come (server-sent events of `stream: true` included). Nothing is
retried: a client sees what a client of the cluster would see.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence

import aiohttp
from aiohttp import web

from llmgw.demo.processes import PodWorker

log = logging.getLogger("llmgw.demo.service")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


class LocalService:
    """127.0.0.1:`port` -> the ready pods `endpoints()` returns, round-robin."""

    def __init__(self, name: str, port: int, endpoints: Callable[[], Sequence[PodWorker]]) -> None:
        self.name = name
        self.port = port
        self.endpoints = endpoints
        self.forwarded = 0
        self.refused = 0
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5), auto_decompress=False
        )
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _pick(self) -> PodWorker | None:
        ready = list(self.endpoints())
        if not ready:
            return None
        return ready[next(self._turn) % len(ready)]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        pod = self._pick()
        if pod is None:
            self.refused += 1
            return web.json_response(
                {"error": {"message": f"service {self.name}: no ready endpoints", "type": "unavailable"}},
                status=503,
            )
        assert self._session is not None
        url = f"http://127.0.0.1:{pod.port}{request.rel_url}"
        headers = _forwardable(request.headers)
        body = await request.read()
        self.forwarded += 1
        rsp: web.StreamResponse | None = None
        try:
            async with self._session.request(
                request.method, url, headers=headers, data=body or None, allow_redirects=False
            ) as upstream:
                rsp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        rsp.headers.add(key, value)
                await rsp.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await rsp.write(chunk)
                await rsp.write_eof()
                return rsp
        except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            if rsp is not None and rsp.prepared:  # the client went away, or the pod mid-answer
                log.info(
                    "service %s: a streamed answer from pod %s ended early: %s", self.name, pod.name, exc
                )
                return rsp
            log.info("service %s: pod %s failed a request: %s", self.name, pod.name, exc)
            return web.json_response(
                {"error": {"message": f"pod {pod.name}: {exc}", "type": "bad_gateway"}}, status=502
            )


def _forwardable(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
