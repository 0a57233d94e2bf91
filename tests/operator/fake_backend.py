"""Small fake backends for discovery tests: OpenAI-style, Ollama, garbage, and one that hangs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web


class Fake:
    """An aiohttp server on a free loopback port whose answers the test sets."""

    def __init__(self) -> None:
        self.models: list[str] = []
        self.mode = "openai"  # openai | ollama | html | garbage | hang | error
        self.hits = 0
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "html":
            return web.Response(text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if self.mode == "garbage":
            return web.Response(text='{"data": "not a list"', content_type="application/json")
        if self.mode == "error":
            return web.Response(status=503, text="overloaded")
        body: Any
        if request.path == "/api/tags":
            body = {"models": [{"name": m, "model": m} for m in self.models]}
        else:
            body = {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def __aenter__(self) -> Fake:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
