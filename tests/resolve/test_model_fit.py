"""Fallbacks that know their models: a fallback of another mode is dropped, a contextWindow
fallback that is not larger warns, and model groups are judged by what all deployments share."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.core import estate, findings, pipeline, statuses

Raw = dict[str, Any]


def status_of(raws: list[Raw], name: str) -> dict[str, Any]:
    """The status the operator writes on FallbackChain default/<name>."""
    built = estate.build(raws)
    outcomes = [pipeline.run(built, gw) for gw in pipeline.gateways(built)]
    return statuses.for_objects(built, outcomes)[("FallbackChain", "default", name)]


def rows(outcome: pipeline.Outcome, field: str) -> dict[str, list[str]]:
    return {m: t for row in outcome.rendered.config["router_settings"].get(field, []) for m, t in row.items()}


@pytest.fixture
def estate_(provider: Any) -> list[Raw]:
    """Chat models llama (131072), qwen (32768) and mini (unknown window); embedding model embed."""
    return [
        provider(
            "gpu",
            {"name": "llama", "contextWindow": 131072, "aliases": ["llama3"]},
            {"name": "qwen", "contextWindow": 32768},
            "mini",
            {"name": "embed", "mode": "embedding", "contextWindow": 8192, "aliases": ["vectors"]},
        )
    ]


# -- modes -------------------------------------------------------------------------------------


def test_a_chat_model_falling_back_to_an_embedding_model_drops_that_link(estate_, chain, check):
    raws = [*estate_, chain("c", "llama", "embed", "qwen")]
    (outcome,), found = check(*raws)
    (f,) = found
    assert (f.field, f.reason, f.severity) == ("spec.fallbacks[0]", findings.INCOMPATIBLE_MODEL, "error")
    assert "embed (embedding) cannot serve the requests of llama (chat)" in f.message
    assert "dropped" in f.message
    assert "fall back to a chat model" in f.message
    assert rows(outcome, "fallbacks") == {"llama": ["qwen"], "llama3": ["qwen"]}
    (accepted,) = outcome.resolution.chains
    assert accepted.dropped == ("embed",)
    # The chain keeps a fallback: it stays accepted, and says what it dropped.
    (cond,) = status_of(raws, "c")["conditions"]
    assert (cond["status"], cond["reason"]) == ("True", findings.INCOMPATIBLE_MODEL)
    assert "embed (embedding)" in cond["message"]
    assert status_of(raws, "c")["effectiveOrder"] == ["llama", "qwen"]


def test_a_fallback_named_by_alias_says_which_model_it_is(estate_, chain, check):
    (_outcome,), found = check(*estate_, chain("c", "llama3", "vectors", "qwen"))
    (f,) = found
    assert f.reason == findings.INCOMPATIBLE_MODEL
    assert "vectors (model embed, embedding) cannot serve the requests of llama (chat)" in f.message


def test_a_chain_whose_every_fallback_is_of_another_mode_is_left_out(estate_, chain, check):
    raws = [*estate_, chain("c", "embed", "llama", "qwen")]
    (outcome,), found = check(*raws)
    assert {(f.field, f.reason) for f in found} == {
        ("spec.fallbacks", findings.INCOMPATIBLE_MODEL),
        ("spec.fallbacks[0]", findings.INCOMPATIBLE_MODEL),
        ("spec.fallbacks[1]", findings.INCOMPATIBLE_MODEL),
    }
    assert outcome.resolution.chains == ()
    assert "fallbacks" not in outcome.rendered.config["router_settings"]
    (cond,) = status_of(raws, "c")["conditions"]
    assert (cond["status"], cond["reason"]) == ("False", findings.INCOMPATIBLE_MODEL)
    assert "every fallback is of another mode" in cond["message"]


def test_a_chain_left_with_nothing_names_each_kind_of_drop(estate_, chain, check):
    (_outcome,), found = check(*estate_, chain("c", "llama", "embed", "gpt-9"))
    (left_out,) = (f for f in found if f.field == "spec.fallbacks")
    assert left_out.reason == findings.UNKNOWN_MODEL  # may yet be served
    assert "the unknown ones and those of another mode are dropped" in left_out.message


def test_a_dropped_link_closes_no_cycle(estate_, chain, check):
    # llama -> embed -> llama would be a cycle, but both links are dropped before cycles are sought.
    (outcome,), found = check(
        *estate_, chain("c", "llama", "embed", "qwen"), chain("d", "embed", "llama", "qwen")
    )
    assert {f.reason for f in found} == {findings.INCOMPATIBLE_MODEL}
    assert rows(outcome, "fallbacks") == {"llama": ["qwen"], "llama3": ["qwen"]}


def test_a_group_of_mixed_modes_is_named_on_each_of_its_providers(provider, chain, check):
    (outcome,), found = check(
        provider("one", "text", "chat-b"),
        provider("two", {"name": "text", "mode": "embedding"}),
        chain("c", "chat-b", "text"),
    )
    conflicts = sorted((f.name, f.field) for f in found if f.reason == findings.CONFLICTING_MODES)
    assert conflicts == [("one", "spec.models[0].mode"), ("two", "spec.models[0].mode")]
    one = next(f for f in found if f.name == "one")
    assert "model 'text' is chat here but embedding on default/two" in one.message
    assert one.severity == "error"
    # The group keeps both deployments, and shares chat with chat-b: the link is kept.
    assert outcome.resolution.info["text"].modes == {"chat", "embedding"}
    assert outcome.resolution.info["text"].mode is None
    assert rows(outcome, "fallbacks") == {"chat-b": ["text"]}
    assert {f.reason for f in found} == {findings.CONFLICTING_MODES}


def test_one_mode_across_a_group_is_quiet(provider, chain, check):
    _, found = check(provider("one", "text", "b"), provider("two", "text"), chain("c", "b", "text"))
    assert found == ()


# -- context windows ---------------------------------------------------------------------------


def test_a_context_window_fallback_to_a_smaller_window_warns_naming_both(estate_, chain, check):
    raws = [*estate_, chain("c", "llama", "qwen", trigger="contextWindow")]
    (outcome,), found = check(*raws)
    (f,) = found
    assert (f.field, f.reason, f.severity) == (
        "spec.fallbacks[0]",
        findings.NO_LARGER_CONTEXT_WINDOW,
        "warning",
    )
    assert "qwen (32768 tokens) is not larger than llama (131072 tokens)" in f.message
    assert "the link is kept" in f.message
    assert rows(outcome, "context_window_fallbacks") == {"llama": ["qwen"], "llama3": ["qwen"]}
    (cond,) = status_of(raws, "c")["conditions"]
    assert (cond["status"], cond["reason"]) == ("True", findings.NO_LARGER_CONTEXT_WINDOW)


def test_an_equal_window_is_not_larger(provider, chain, check):
    _, found = check(
        provider("p", {"name": "a", "contextWindow": 4096}, {"name": "b", "contextWindow": 4096}),
        chain("c", "a", "b", trigger="contextWindow"),
    )
    (f,) = found
    assert "b (4096 tokens) is not larger than a (4096 tokens)" in f.message


@pytest.mark.parametrize(
    ("primary", "fallback", "said"),
    [
        ("llama", "mini", "mini (unknown) is not known to be larger than llama (131072 tokens)"),
        ("mini", "llama", "llama (131072 tokens) is not known to be larger than mini (unknown)"),
    ],
)
def test_an_unknown_window_warns(estate_, chain, check, primary, fallback, said):
    (outcome,), found = check(*estate_, chain("c", primary, fallback, trigger="contextWindow"))
    (f,) = found
    assert f.reason == findings.NO_LARGER_CONTEXT_WINDOW
    assert said in f.message
    assert "declare contextWindow" in f.message
    assert rows(outcome, "context_window_fallbacks")[primary] == [fallback]


def test_a_larger_window_is_quiet(estate_, chain, check):
    _, found = check(*estate_, chain("c", "qwen", "llama", trigger="contextWindow"))
    assert found == ()


@pytest.mark.parametrize("trigger", ["errors", "contentPolicy"])
def test_other_triggers_do_not_compare_windows(estate_, chain, check, trigger):
    _, found = check(*estate_, chain("c", "llama", "qwen", "mini", trigger=trigger))
    assert found == ()


def test_a_groups_window_is_its_smallest_and_the_message_says_so(provider, chain, check):
    (outcome,), found = check(
        provider("big", {"name": "g", "contextWindow": 65536}),
        provider("small", {"name": "g", "contextWindow": 16384}, {"name": "s", "contextWindow": 32768}),
        provider("bare", "g"),  # declares none: the others' windows stand
        chain("c", "s", "g", trigger="contextWindow"),
    )
    assert outcome.resolution.info["g"].context_window == 16384
    (f,) = found
    assert (
        "g (16384 tokens, the smallest its deployments declare (16384, 65536)) is not larger than "
        "s (32768 tokens)" in f.message
    )


def test_attempts_carry_windows_and_modes_where_known(estate_, chain, gateway):
    raws = [*estate_, gateway(maxFallbacks=5), chain("c", "llama", "qwen"), chain("q", "qwen", "mini")]
    st = status_of(raws, "c")
    assert st["effectiveOrder"] == ["llama", "qwen", "mini"]
    assert st["attempts"] == [
        {"model": "llama", "contextWindow": 131072, "mode": "chat"},
        {"model": "qwen", "contextWindow": 32768, "mode": "chat"},
        {"model": "mini", "mode": "chat"},
    ]


def test_a_chain_left_out_has_no_attempts(estate_, chain):
    st = status_of([*estate_, chain("c", "gpt-9", "llama")], "c")
    assert st["effectiveOrder"] == []
    assert st["attempts"] == []
