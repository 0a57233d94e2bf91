"""`llmgw validate` on fallbacks that cannot help: another mode is an error, a contextWindow
fallback that is not larger a warning; the summary shows each attempt's window."""

from __future__ import annotations

import json
from typing import Any

import pytest

Raw = dict[str, Any]


@pytest.fixture
def models(provider: Any) -> Raw:
    return provider(
        "gpu",
        {"name": "llama-3.1-8b", "contextWindow": 131072},
        {"name": "qwen-2.5-7b", "contextWindow": 32768},
        {"name": "gpt-4o-mini", "contextWindow": 128000},
        "phi",
        {"name": "text-embed", "mode": "embedding"},
    )


def test_a_chat_model_falling_back_to_an_embedding_model_is_an_error(llmgw, write, models, chain):
    path = write("estate.yaml", models, chain("c", "llama-3.1-8b", "text-embed", "qwen-2.5-7b"))
    r = llmgw("validate", path)
    assert r.code == 1
    (line,) = (x for x in r.out.splitlines() if "IncompatibleModel" in x or "cannot serve" in x)
    assert line.startswith(f"{path}:")
    assert (
        "error: FallbackChain default/c spec.fallbacks[0]: text-embed (embedding) cannot serve the "
        "requests of llama-3.1-8b (chat); it is dropped from the chain: fall back to a chat model "
        "instead, or remove it"
    ) in line
    assert "  FallbackChain default/c (errors): llama-3.1-8b (131072) -> qwen-2.5-7b (32768)\n" in r.out
    assert r.out.endswith("invalid: 1 error(s), 0 warning(s)\n")


def test_a_context_window_fallback_that_is_not_larger_warns(llmgw, write, models, chain):
    path = write(
        "estate.yaml",
        models,
        chain("c", "llama-3.1-8b", "gpt-4o-mini", "phi", trigger="contextWindow"),
    )
    r = llmgw("validate", path)
    assert r.code == 0
    assert (
        "warning: FallbackChain default/c spec.fallbacks[0]: gpt-4o-mini (128000 tokens) is not "
        "larger than llama-3.1-8b (131072 tokens)"
    ) in r.out
    assert (
        "warning: FallbackChain default/c spec.fallbacks[1]: phi (unknown) is not known to be larger "
        "than llama-3.1-8b (131072 tokens)"
    ) in r.out
    assert (
        "  FallbackChain default/c (contextWindow): llama-3.1-8b (131072) -> gpt-4o-mini (128000) -> phi\n"
    ) in r.out
    assert r.out.endswith("ok: 0 error(s), 2 warning(s)\n")
    assert llmgw("validate", "--strict", path).code == 1


def test_a_larger_window_is_quiet(llmgw, write, models, chain):
    r = llmgw(
        "validate",
        write("e.yaml", models, chain("c", "qwen-2.5-7b", "llama-3.1-8b", trigger="contextWindow")),
    )
    assert r.code == 0
    assert r.out.endswith("ok: 0 error(s), 0 warning(s)\n")


def test_json_carries_the_reasons_and_the_attempts(llmgw, write, models, chain):
    path = write(
        "estate.yaml",
        models,
        chain("c", "qwen-2.5-7b", "text-embed", "gpt-4o-mini", trigger="contextWindow"),
    )
    report = json.loads(llmgw("validate", "-o", "json", path).out)
    assert [(f["field"], f["reason"], f["severity"]) for f in report["findings"]] == [
        ("spec.fallbacks[0]", "IncompatibleModel", "error")
    ]
    (gw,) = report["gateways"]
    (c,) = gw["chains"]
    assert c["effectiveOrder"] == ["qwen-2.5-7b", "gpt-4o-mini"]
    assert c["attempts"] == [
        {"model": "qwen-2.5-7b", "contextWindow": 32768, "mode": "chat"},
        {"model": "gpt-4o-mini", "contextWindow": 128000, "mode": "chat"},
    ]


def test_a_group_of_mixed_modes_is_an_error_on_its_providers(llmgw, write, provider):
    path = write(
        "estate.yaml", provider("one", "shared"), provider("two", {"name": "shared", "mode": "rerank"})
    )
    r = llmgw("validate", path)
    assert r.code == 1
    assert (
        "error: LLMProvider default/one spec.models[0].mode: "
        "model 'shared' is chat here but rerank on default/two" in r.out
    )
    assert (
        "error: LLMProvider default/two spec.models[0].mode: "
        "model 'shared' is rerank here but chat on default/one" in r.out
    )
