"""Fake model servers: vLLM's and Ollama's wire formats, on loopback ports.

The gateway pods of `llmgw demo` are real LiteLLM proxies, and so is the proxy of the e2e
suite; only the model servers behind them are fakes, so that both run on a laptop without
a GPU. This module is their one implementation: the demo serves the fakes on its own event
loop, the e2e suite (tests/e2e/fakes.py) on a loop in a thread of its own, together with
its fakes of cloud APIs, which are built on `Fake` too. One `FakeBackend` stands for one
backend Service and speaks both APIs:

- OpenAI (vLLM, llama.cpp, OpenAI-compatible): `POST /v1/chat/completions` (with
  `stream: true`, as server-sent events), `GET /v1/models`;
- Ollama: `POST /api/chat` (streamed as NDJSON unless `stream: false`), `GET /api/tags`,
  `POST /api/show` (LiteLLM's `OllamaModelInfo.get_runtime_model_info` asks it for a
  model's context length).

What LiteLLM 1.106.2 sends and expects for `ollama_chat/<model>` was read in
`litellm/llms/ollama/chat/transformation.py`: `OllamaChatConfig.get_complete_url` posts to
`{api_base}/api/chat` (so `api_base` is the server root, no `/v1`), the body is
`{"model", "messages", "options", "stream"}`, and `transform_response` reads `message`,
`done_reason`, `prompt_eval_count` and `eval_count`.

Every answer names the fake that gave it (`answer from <name> for <model>`), so a
fallback can be seen happening; `failing` makes every chat request answer 500
(`llmgw demo fail NAME`); every chat request is recorded (`received`, `counts`), so a
test can say which backend served a request and what the proxy sent it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

RECEIVED_KEPT = 10_000
"""Requests a fake remembers: more than any test makes, and a bound for a demo left running."""


def answer_text(name: str, model: str) -> str:
    """The text a fake answers with: it names the fake and the model it was asked for."""
    return f"answer from {name} for {model}"


def chat_completion(name: str, model: str) -> dict[str, Any]:
    """An OpenAI chat completion (not streamed) from fake `name`, with usage 5 + 7 tokens."""
    return {
        "id": f"chatcmpl-{name}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer_text(name, model)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def openai_error(message: str) -> dict[str, Any]:
    """The body of an OpenAI-style HTTP 500."""
    return {"error": {"message": message, "type": "server_error", "code": 500}}


@dataclasses.dataclass(frozen=True)
class Received:
    """One request as a fake saw it."""

    api: str  # the API it came in on: "openai" or "ollama" for a FakeBackend; other fakes name theirs
    model: str  # the model asked for, in the body or the path
    path: str  # percent-decoded
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any  # the JSON body ({} for none)

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


class Fake:
    """An HTTP server on 127.0.0.1 that records what it is asked and can be made to fail.

    A subclass adds its routes (`routes`) and calls `record` for each request it answers.
    What it received may be read from another thread (the e2e suite serves fakes from one),
    hence the lock: it is never held across an await.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.failing = False
        self.port = 0
        self._lock = threading.Lock()
        self._received: collections.deque[Received] = collections.deque(maxlen=RECEIVED_KEPT)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The server root, with no path."""
        return f"http://127.0.0.1:{self.port}"

    def routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self.routes(app.router)
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

    # -- what it received ---------------------------------------------------------------

    def record(self, request: web.Request, body: Any, api: str, model: str) -> bool:
        """Record a request; True when it must fail."""
        received = Received(
            api=api,
            model=model,
            path=request.path,
            query=parse_qs(request.query_string),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        with self._lock:
            self._received.append(received)
        return self.failing

    def received(self) -> list[Received]:
        """The requests recorded since the start or the last `reset`, oldest first."""
        with self._lock:
            return list(self._received)

    def counts(self) -> collections.Counter[str]:
        """Requests recorded per model, failed ones included."""
        return collections.Counter(r.model for r in self.received())

    def reset(self) -> None:
        """Forget what was received and stop failing."""
        with self._lock:
            self._received.clear()
        self.failing = False

    @contextlib.contextmanager
    def failing_now(self) -> Iterator[None]:
        """Answer every request with HTTP 500 inside the block."""
        self.failing = True
        try:
            yield
        finally:
            self.failing = False


class FakeBackend(Fake):
    """An OpenAI + Ollama model server on 127.0.0.1 that can be made to fail."""

    def __init__(self, name: str, models: Iterable[str] | None = None) -> None:
        super().__init__(name)
        self.models: set[str] = set(models or ())
        """The backend model ids it serves; the demo sets them from the providers that name it."""
        self.chats = 0
        """Chat requests received since the start, failed ones included."""

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/v1/models", self._openai_models)
        router.add_post("/v1/chat/completions", self._openai_chat)
        router.add_get("/api/tags", self._ollama_tags)
        router.add_post("/api/chat", self._ollama_chat)
        router.add_post("/api/show", self._ollama_show)
        router.add_get("/health", self._health)

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
        body = await json_object(request)
        name = str(body.get("model") or body.get("name") or "")
        if name not in self.models:
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        return web.json_response({"template": "{{ .Prompt }}", "model_info": {"llama.context_length": 8192}})

    async def _chat(
        self, request: web.Request, ollama: bool
    ) -> tuple[dict[str, Any], str, web.Response | None]:
        """A chat request, recorded: its body, the model it asks for, and its error answer if it
        gets one (failing on purpose, or no such model)."""
        body = await json_object(request)
        model = str(body.get("model") or "")
        return body, model, self._refusal(request, body, model, ollama)

    def _refusal(
        self, request: web.Request, body: dict[str, Any], model: str, ollama: bool
    ) -> web.Response | None:
        self.chats += 1
        if self.record(request, body, "ollama" if ollama else "openai", model):
            message = f"{self.name} is failing on purpose"
            return web.json_response({"error": message} if ollama else openai_error(message), status=500)
        if model not in self.models:
            if ollama:
                return web.json_response({"error": f"model '{model}' not found"}, status=404)
            error = {"message": f"model {model} does not exist", "type": "NotFoundError"}
            return web.json_response({"error": error}, status=404)
        return None

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        body, model, refused = await self._chat(request, ollama=False)
        if refused is not None:
            return refused
        if not body.get("stream"):
            return web.json_response(chat_completion(self.name, model))
        text = answer_text(self.name, model)
        created = int(time.time())
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
        body, model, refused = await self._chat(request, ollama=True)
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


async def json_object(request: web.Request) -> dict[str, Any]:
    """The JSON object of a request's body; {} for none, another JSON value or no JSON."""
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
