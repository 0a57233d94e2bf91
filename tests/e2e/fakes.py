"""A fake LLM backend that speaks both the OpenAI API and the Ollama API.

The LiteLLM proxy in the e2e tests is the real one; only the model servers
behind it are fakes. One `FakeBackend` serves, on a loopback port:

- OpenAI (vLLM, llama.cpp, OpenAI-compatible): `POST /v1/chat/completions`,
  `GET /v1/models`;
- Ollama: `POST /api/chat`, `GET /api/tags`, and `POST /api/show` (LiteLLM's
  `OllamaModelInfo.get_runtime_model_info` asks it for a model's context length).

What LiteLLM 1.106.2 sends and expects for `ollama_chat/<model>` was read in
`litellm/llms/ollama/chat/transformation.py`: `OllamaChatConfig.get_complete_url`
posts to `{api_base}/api/chat` (so `api_base` is the server root, no `/v1`), the
body is `{"model", "messages", "options", "stream"}`, and `transform_response`
reads `message`, `done_reason`, `prompt_eval_count` and `eval_count`.

Every answer names the fake that gave it (`answer from <name> ...`), the
backend counts the chat requests it received per model, remembers the
Authorization header of each, and can be told at runtime to fail with HTTP 500.
A plain `ThreadingHTTPServer` in a daemon thread: no event loop to share with
pytest-asyncio, and `close()` releases the socket so no ResourceWarning is left.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass(frozen=True)
class Received:
    """One chat request as the backend saw it."""

    api: str  # "openai" or "ollama"
    model: str
    authorization: str | None
    body: dict[str, Any]


def answer_text(name: str, model: str) -> str:
    """The text a fake answers with: it names the fake and the model it was asked for."""
    return f"answer from {name} for {model}"


class FakeBackend:
    """An OpenAI + Ollama model server on 127.0.0.1 that can be made to fail."""

    def __init__(self, name: str, models: tuple[str, ...]) -> None:
        self.name = name
        self.models = models
        self._lock = threading.Lock()
        self._failing = False
        self._received: list[Received] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"fake-{name}", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server root, with no path: the renderer adds `/v1` for OpenAI-style types."""
        return f"http://127.0.0.1:{self.port}"

    # -- the failure switch -------------------------------------------------

    @property
    def failing(self) -> bool:
        with self._lock:
            return self._failing

    @failing.setter
    def failing(self, value: bool) -> None:
        with self._lock:
            self._failing = value

    @contextlib.contextmanager
    def failing_now(self) -> Iterator[None]:
        """Answer every chat request with HTTP 500 inside the block."""
        self.failing = True
        try:
            yield
        finally:
            self.failing = False

    # -- what it received ---------------------------------------------------

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def counts(self) -> collections.Counter[str]:
        """Chat requests received per backend model id, failed ones included."""
        return collections.Counter(r.model for r in self.received())

    def reset(self) -> None:
        """Forget what was received and stop failing."""
        with self._lock:
            self._received.clear()
            self._failing = False

    def _record(self, received: Received) -> bool:
        """Record a chat request; True when it must fail."""
        with self._lock:
            self._received.append(received)
            return self._failing

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(backend: FakeBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so no keep-alive socket outlives close().
        protocol_version = "HTTP/1.0"
        server_version = f"fake-{backend.name}"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the proxy's own log says what happened."""

        # -- plumbing -----------------------------------------------------------

        def _json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}

        def _not_found(self) -> None:
            self._json(
                404, {"error": {"message": f"no route {self.command} {self.path}", "type": "not_found"}}
            )

        # -- routes -------------------------------------------------------------

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/v1/models":
                self._json(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": m, "object": "model", "created": 0, "owned_by": backend.name}
                            for m in backend.models
                        ],
                    },
                )
            elif path == "/api/tags":
                self._json(
                    200,
                    {
                        "models": [
                            {
                                "name": m,
                                "model": m,
                                "modified_at": "2025-01-01T00:00:00Z",
                                "size": 1,
                                "digest": "0" * 64,
                                "details": {"format": "gguf", "family": "llama"},
                            }
                            for m in backend.models
                        ]
                    },
                )
            else:
                self._not_found()

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/v1/chat/completions":
                self._chat("openai")
            elif path == "/api/chat":
                self._chat("ollama")
            elif path == "/api/show":
                body = self._body()
                name = str(body.get("model") or body.get("name") or "")
                if name not in backend.models:
                    self._json(404, {"error": f"model '{name}' not found"})
                else:
                    self._json(
                        200,
                        {"template": "{{ .Prompt }}", "model_info": {"llama.context_length": 8192}},
                    )
            else:
                self._not_found()

        def _chat(self, api: str) -> None:
            body = self._body()
            model = str(body.get("model") or "")
            fail = backend._record(Received(api, model, self.headers.get("Authorization"), body))
            if fail:
                message = f"{backend.name} is failing on purpose"
                if api == "ollama":
                    self._json(500, {"error": message})
                else:
                    self._json(500, {"error": {"message": message, "type": "server_error", "code": 500}})
                return
            if model not in backend.models:
                if api == "ollama":
                    self._json(404, {"error": f"model '{model}' not found"})
                else:
                    self._json(
                        404,
                        {"error": {"message": f"model {model} does not exist", "type": "NotFoundError"}},
                    )
                return
            text = answer_text(backend.name, model)
            if api == "ollama":
                self._json(
                    200,
                    {
                        "model": model,
                        "created_at": "2025-01-01T00:00:00Z",
                        "message": {"role": "assistant", "content": text},
                        "done_reason": "stop",
                        "done": True,
                        "prompt_eval_count": 5,
                        "eval_count": 7,
                    },
                )
            else:
                self._json(
                    200,
                    {
                        "id": f"chatcmpl-{backend.name}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
                    },
                )

    return Handler
