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

Every answer names the fake and the model (`backends.answer_text`); each fake is a
`backends.Fake` (tests/e2e/fakes.py serves it): it records what it received and can be told
to answer HTTP 500, in its own error shape.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Callable
from typing import Any

from aiohttp import web

from llmgw.demo import backends

EMBEDDING = (0.25, -0.5, 0.75)


def _groq_chat(name: str, model: str) -> dict[str, Any]:
    return {
        **backends.chat_completion(name, model),
        "service_tier": "on_demand",
        "x_groq": {"id": f"req_{name}"},
    }


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
                "content": {"role": "model", "parts": [{"text": backends.answer_text(name, model)}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12},
        "modelVersion": model,
    }


def _converse(name: str, model: str) -> dict[str, Any]:
    return {
        "output": {
            "message": {"role": "assistant", "content": [{"text": backends.answer_text(name, model)}]}
        },
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
    return backends.openai_error(message)


# (wire, path pattern, answer): the first whose pattern matches the percent-decoded path answers.
ROUTES: tuple[tuple[str, re.Pattern[str], Callable[[str, str, dict[str, Any]], dict[str, Any]]], ...] = (
    (
        "azure-chat",
        re.compile(r"^/openai/deployments/([^/]+)/chat/completions$"),
        lambda n, m, b: backends.chat_completion(n, m),
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
    ("openai-chat", re.compile(r"^/v1/chat/completions$"), lambda n, m, b: backends.chat_completion(n, m)),
)


class CloudFake(backends.Fake):
    """One cloud provider's API on 127.0.0.1; `received()[i].api` is the wire of ROUTES it came in on."""

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/{path:.*}", self._post)

    async def _post(self, request: web.Request) -> web.Response:
        path = request.path.rstrip("/")
        body = await backends.json_object(request)
        for wire, pattern, answer in ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            model = str(body.get("model") or "") if match.lastindex is None else match.group(1)
            if self.record(request, body, wire, model):
                return web.json_response(_error(wire, f"{self.name} is failing on purpose"), status=500)
            return web.json_response(answer(self.name, model, body))
        return web.json_response(
            {"error": {"message": f"no route POST {request.path_qs}", "type": "not_found"}}, status=404
        )
