"""Fake model servers for the demo: vLLM's and Ollama's wire formats, on loopback ports.

The gateway pods of `llmgw demo` are real LiteLLM proxies; only the model servers
behind them are fakes, so that the demo runs on a laptop without a GPU. One
`FakeBackend` stands for one backend Service of the estate and speaks both APIs
(the e2e suite's fakes, tests/e2e/fakes.py, ported to aiohttp so they share the
demo's event loop):

- OpenAI (vLLM, llama.cpp): `POST /v1/chat/completions` (with `stream: true`, as
  server-sent events), `GET /v1/models`;
- Ollama: `POST /api/chat` (streamed as NDJSON unless `stream: false`), `GET /api/tags`,
  `POST /api/show` (LiteLLM asks it for a model's context length).

Every answer names the fake that gave it (`answer from <name> for <model>`), so a
fallback can be seen happening; `failing` makes every chat request answer 500
(`llmgw demo fail NAME`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web


def answer_text(name: str, model: str) -> str:
    """The text a fake answers with: it names the fake and the model it was asked for."""
    return f"answer from {name} for {model}"


class FakeBackend:
    """An OpenAI + Ollama model server on 127.0.0.1 that can be made to fail."""

    def __init__(self, name: str, models: set[str] | None = None) -> None:
        self.name = name
        self.models: set[str] = set(models or ())
        """The backend model ids it serves; the demo sets them from the providers that name it."""
        self.failing = False
        self.chats = 0
        """Chat requests received, failed ones included."""
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/models", self._openai_models)
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_get("/api/tags", self._ollama_tags)
        app.router.add_post("/api/chat", self._ollama_chat)
        app.router.add_post("/api/show", self._ollama_show)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = getattr(site, "_server", None)
        sockets: Any = getattr(server, "sockets", None) or ()
        self.port = int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- routes ---------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "failing" if self.failing else "ok", "name": self.name})

    async def _openai_models(self, request: web.Request) -> web.Response:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": self.name} for m in sorted(self.models)
        ]
        return web.json_response({"object": "list", "data": data})

    async def _ollama_tags(self, request: web.Request) -> web.Response:
        rows = [
            {
                "name": m,
                "model": m,
                "modified_at": "2025-01-01T00:00:00Z",
                "size": 1,
                "digest": "0" * 64,
                "details": {"format": "gguf", "family": "llama"},
            }
            for m in sorted(self.models)
        ]
        return web.json_response({"models": rows})

    async def _ollama_show(self, request: web.Request) -> web.Response:
        body = await _body(request)
        name = str(body.get("model") or body.get("name") or "")
        if name not in self.models:
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        return web.json_response({"template": "{{ .Prompt }}", "model_info": {"llama.context_length": 8192}})

    def _refusal(self, model: str, ollama: bool) -> web.Response | None:
        """The error answer for this request, if it gets one: failing on purpose, or no such model."""
        self.chats += 1
        if self.failing:
            message = f"{self.name} is failing on purpose"
            body: Any = (
                {"error": message}
                if ollama
                else {"error": {"message": message, "type": "server_error", "code": 500}}
            )
            return web.json_response(body, status=500)
        if model not in self.models:
            if ollama:
                return web.json_response({"error": f"model '{model}' not found"}, status=404)
            error = {"message": f"model {model} does not exist", "type": "NotFoundError"}
            return web.json_response({"error": error}, status=404)
        return None

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        model = str(body.get("model") or "")
        refused = self._refusal(model, ollama=False)
        if refused is not None:
            return refused
        text = answer_text(self.name, model)
        created = int(time.time())
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": f"chatcmpl-{self.name}",
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
                }
            )
        rsp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await rsp.prepare(request)
        words = text.split(" ")
        for i, word in enumerate(words):
            chunk = {
                "id": f"chatcmpl-{self.name}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": word if i == 0 else " " + word},
                        "finish_reason": None,
                    }
                ],
            }
            await rsp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        last = {
            "id": f"chatcmpl-{self.name}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        await rsp.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
        await rsp.write_eof()
        return rsp

    async def _ollama_chat(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        model = str(body.get("model") or "")
        refused = self._refusal(model, ollama=True)
        if refused is not None:
            return refused
        text = answer_text(self.name, model)
        done = {
            "model": model,
            "created_at": "2025-01-01T00:00:00Z",
            "done_reason": "stop",
            "done": True,
            "prompt_eval_count": 5,
            "eval_count": 7,
        }
        if body.get("stream") is False:
            return web.json_response({**done, "message": {"role": "assistant", "content": text}})
        rsp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await rsp.prepare(request)
        for i, word in enumerate(text.split(" ")):
            part = {
                "model": model,
                "created_at": "2025-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": word if i == 0 else " " + word},
                "done": False,
            }
            await rsp.write((json.dumps(part) + "\n").encode())
        await rsp.write(
            (json.dumps({**done, "message": {"role": "assistant", "content": ""}}) + "\n").encode()
        )
        await rsp.write_eof()
        return rsp


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
