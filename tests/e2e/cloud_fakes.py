"""Fake cloud providers on loopback, each speaking its provider's own wire format.

The LiteLLM proxy in front of them is the real one (1.106.2). What it sends, read in its
code and checked against these fakes:

- Azure OpenAI (`llms/azure/`: the OpenAI SDK's `AzureOpenAI` client with
  `azure_endpoint=api_base`): `POST /openai/deployments/<deployment>/chat/completions` and
  `.../embeddings`, `?api-version=<api_version>`, the key in an `api-key` header; OpenAI's
  JSON back. The SDK asks for base64 embeddings unless told otherwise, so they are
  answered in the encoding asked for.
- Gemini, Google AI Studio (`VertexBase._check_custom_proxy` with a custom api_base):
  `POST <api_base>/models/<model>:generateContent`, the key in `x-goog-api-key`; back
  `candidates[].content.parts[].text` and `usageMetadata`.
- Bedrock Converse (`llms/bedrock/chat/converse_handler.py`): `POST
  <aws_bedrock_runtime_endpoint>/model/<url-encoded model id>/converse`, SigV4-signed
  (`Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/bedrock/...`,
  `X-Amz-Security-Token` with a session token); back `output.message.content[].text`,
  `stopReason`, `usage`.
- OpenAI-style (Mistral, Groq, most of the long tail): `POST <api_base>/chat/completions`
  (Mistral's api_base gets `/v1` from LiteLLM), `Authorization: Bearer <key>`. Groq's own
  answer carries `service_tier` (`on_demand`) and `x_groq`; LiteLLM's Groq transformation
  reads `service_tier` and fails without it, so the Groq route answers with both.

Every answer names the fake and the model (`fakes.answer_text`); each fake records what it
received and can be told to answer HTTP 500, in its own error shape.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .fakes import answer_text

EMBEDDING = (0.25, -0.5, 0.75)


@dataclasses.dataclass(frozen=True)
class Call:
    """One request as the fake saw it."""

    wire: str  # azure-chat, azure-embeddings, gemini, bedrock-converse, groq-chat, openai-chat
    model: str  # the deployment, model or model id named in the path or body
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]


def _openai_chat(name: str, model: str) -> dict[str, Any]:
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


def _groq_chat(name: str, model: str) -> dict[str, Any]:
    return {**_openai_chat(name, model), "service_tier": "on_demand", "x_groq": {"id": f"req_{name}"}}


def _embeddings(model: str, body: dict[str, Any]) -> dict[str, Any]:
    given = body.get("input")
    inputs = given if isinstance(given, list) else [given]
    as_base64 = body.get("encoding_format") == "base64"
    vector: Any = (
        base64.b64encode(struct.pack(f"<{len(EMBEDDING)}f", *EMBEDDING)).decode()
        if as_base64
        else list(EMBEDDING)
    )
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(len(inputs))],
        "model": model,
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }


def _gemini(name: str, model: str) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": answer_text(name, model)}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12},
        "modelVersion": model,
    }


def _converse(name: str, model: str) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": answer_text(name, model)}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12},
        "metrics": {"latencyMs": 1},
    }


def _error(wire: str, message: str) -> dict[str, Any]:
    if wire == "gemini":
        return {"error": {"code": 500, "message": message, "status": "INTERNAL"}}
    if wire == "bedrock-converse":
        return {"message": message}
    if wire.startswith("azure"):
        return {"error": {"code": "InternalServerError", "message": message}}
    return {"error": {"message": message, "type": "server_error", "code": 500}}


# (wire, path pattern, answer): the first whose pattern matches the unquoted path answers.
ROUTES: tuple[tuple[str, re.Pattern[str], Callable[[str, str, dict[str, Any]], dict[str, Any]]], ...] = (
    (
        "azure-chat",
        re.compile(r"^/openai/deployments/([^/]+)/chat/completions$"),
        lambda n, m, b: _openai_chat(n, m),
    ),
    (
        "azure-embeddings",
        re.compile(r"^/openai/deployments/([^/]+)/embeddings$"),
        lambda n, m, b: _embeddings(m, b),
    ),
    (
        "gemini",
        re.compile(r"^(?:/v1beta|/v1)?/models/([^/:]+):generateContent$"),
        lambda n, m, b: _gemini(n, m),
    ),
    ("bedrock-converse", re.compile(r"^/model/(.+)/converse$"), lambda n, m, b: _converse(n, m)),
    ("groq-chat", re.compile(r"^/openai/v1/chat/completions$"), lambda n, m, b: _groq_chat(n, m)),
    ("openai-chat", re.compile(r"^/v1/chat/completions$"), lambda n, m, b: _openai_chat(n, m)),
)


class CloudFake:
    """One cloud provider's API on 127.0.0.1 that records what it gets and can be made to fail."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._failing = False
        self._calls: list[Call] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"fake-{name}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def failing(self) -> bool:
        with self._lock:
            return self._failing

    @failing.setter
    def failing(self, value: bool) -> None:
        with self._lock:
            self._failing = value

    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._failing = False

    def _record(self, call: Call) -> bool:
        with self._lock:
            self._calls.append(call)
            return self._failing

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(fake: CloudFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: nothing outlives close()
        server_version = f"fake-{fake.name}"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the proxy's log says what happened."""

        def _json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            split = urlsplit(self.path)
            path = unquote(split.path).rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            except ValueError:
                body = {}
            body = body if isinstance(body, dict) else {}
            for wire, pattern, answer in ROUTES:
                match = pattern.match(path)
                if match is None:
                    continue
                model = str(body.get("model") or "") if match.lastindex is None else match.group(1)
                call = Call(
                    wire=wire,
                    model=model,
                    path=path,
                    query=parse_qs(split.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                if fake._record(call):
                    self._json(500, _error(wire, f"{fake.name} is failing on purpose"))
                else:
                    self._json(200, answer(fake.name, model, body))
                return
            self._json(404, {"error": {"message": f"no route POST {self.path}", "type": "not_found"}})

    return Handler
