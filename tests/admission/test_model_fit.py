"""Admission warnings for fallbacks that cannot help, from the same findings as status and validate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llmgw.core import admission, estate, pipeline

Raw = dict[str, Any]


def world(*raws: Raw) -> admission.World:
    return admission.World(estate.build(raws))


@pytest.fixture
def served(provider: Callable[..., Raw], gateway: Callable[..., Raw]) -> list[Raw]:
    return [
        gateway(),
        provider(
            "p",
            {"name": "llama", "contextWindow": 131072},
            {"name": "qwen", "contextWindow": 32768},
            {"name": "embed", "mode": "embedding", "aliases": ["vectors"]},
        ),
    ]


def test_a_chat_chain_to_an_embedding_model_is_admitted_with_a_warning(served, chain) -> None:
    verdict = admission.review(world(*served), chain("c", "llama", "vectors", "qwen"))
    assert verdict.allowed
    (warning,) = verdict.warnings
    assert warning.startswith("FallbackChain default/c spec.fallbacks[0]: vectors (model embed, embedding)")
    assert "cannot serve the requests of llama (chat)" in warning


def test_a_context_window_fallback_to_a_smaller_window_warns(served, chain) -> None:
    verdict = admission.review(world(*served), chain("c", "llama", "qwen", trigger="contextWindow"))
    assert verdict.allowed
    (warning,) = verdict.warnings
    assert "qwen (32768 tokens) is not larger than llama (131072 tokens)" in warning


def test_a_larger_window_is_admitted_quietly(served, chain) -> None:
    verdict = admission.review(world(*served), chain("c", "qwen", "llama", trigger="contextWindow"))
    assert verdict == admission.Verdict(True)


def test_a_provider_that_mixes_a_groups_modes_is_warned(served, provider) -> None:
    verdict = admission.review(world(*served), provider("q", {"name": "llama", "mode": "completion"}))
    assert verdict.allowed
    (warning,) = verdict.warnings
    assert warning.startswith("LLMProvider default/q spec.models[0].mode: model 'llama' is completion here")


@pytest.mark.parametrize(
    "candidate",
    [
        ("c", "llama", "embed", "qwen"),
        ("c", "embed", "llama"),
        ("c", "qwen", "embed", "llama"),
    ],
)
@pytest.mark.parametrize("trigger", ["errors", "contextWindow"])
def test_the_warnings_are_the_findings_of_the_whole_pipeline(served, chain, candidate, trigger) -> None:
    c = chain(*candidate, trigger=trigger)
    _, found = pipeline.check(estate.build([*served, c]))
    verdict = admission.review(world(*served), c)
    assert verdict.allowed
    assert sorted(verdict.warnings) == sorted(str(f) for f in found if f.kind == "FallbackChain")
