"""Fuzzed objects through `objects.parse` and the whole pipeline (`pipeline.check`).

Never an exception; every invalid object explained by findings that are sentences; every
render safe (`safe.assert_safe_render`) and the same whatever the order the objects came in.
The number of inputs tried is printed (`pytest -s`).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmgw.core import estate, objects, pipeline

from . import hostile, runs, safe

TRIED: collections.Counter[str] = collections.Counter()
many = runs.random_inputs(400)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print(f"\nfuzz inputs tried (pipeline): {dict(TRIED)}, {sum(TRIED.values())} in all")


@many
@given(hostile.raw_objects())
def test_parse_never_raises_and_explains_what_it_refuses(raw: dict[str, Any]) -> None:
    TRIED["parse"] += 1
    parsed = objects.parse(raw)
    if isinstance(parsed, objects.Invalid):
        assert parsed.findings, "refused without a word"
        for f in parsed.findings:
            safe.assert_sentence(f)
    else:
        assert parsed.kind == raw["kind"]


@settings(many, max_examples=300)
@given(hostile.estates(), st.randoms(use_true_random=False))
def test_pipeline_never_raises_and_renders_only_what_is_valid(raws: list[dict[str, Any]], rnd: Any) -> None:
    TRIED["pipeline"] += 1
    est = estate.build(raws)
    outcomes, found = pipeline.check(est)
    for f in found:
        safe.assert_sentence(f)
    for bad in est.invalid:
        assert bad.findings, f"{bad.kind} {bad.namespace}/{bad.name} refused without a word"
    for outcome in outcomes:
        safe.assert_safe_render(est, outcome)
    shuffled = list(raws)
    rnd.shuffle(shuffled)
    again, _ = pipeline.check(estate.build(shuffled))
    assert [o.rendered.hash for o in again] == [o.rendered.hash for o in outcomes]


@settings(many, max_examples=150)
@given(
    st.lists(hostile.providers(twist=4), min_size=1, max_size=3),
    st.lists(hostile.chains(), min_size=1, max_size=5),
)
def test_chains_over_hostile_providers_fall_back_only_to_declared_models(
    providers: list[dict[str, Any]], chains: list[dict[str, Any]]
) -> None:
    """More chains than the estates above: each fallback in the render names a served model."""
    TRIED["chains"] += 1
    est = estate.build([*providers, *chains])
    outcomes, found = pipeline.check(est)
    for f in found:
        safe.assert_sentence(f)
    for outcome in outcomes:
        safe.assert_safe_render(est, outcome)
