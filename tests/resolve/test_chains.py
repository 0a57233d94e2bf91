"""Chains checked against what the gateway serves: unknown models, conflicts, cycles."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import pytest

from llmgw.core import findings
from llmgw.core.findings import Finding


def where(found: Iterable[Finding]) -> set[tuple[str, str, str, str]]:
    """(kind, name, field, reason) of every finding."""
    return {(f.kind, f.name, f.field, f.reason) for f in found}


def errors(found: Iterable[Finding]) -> list[Finding]:
    """The findings that are errors (a contextWindow chain without declared windows warns)."""
    return [f for f in found if f.severity == "error"]


def fallbacks(outcome: Any, field: str = "fallbacks", *, aliases: bool = False) -> dict[str, list[str]]:
    """A rendered fallback list as one mapping; the rows for aliases only when asked for."""
    config = outcome.rendered.config
    rows = config["router_settings"].get(field, [])
    names = {m["model_name"] for m in config["model_list"]}
    return {model: targets for row in rows for model, targets in row.items() if aliases or model in names}


@pytest.fixture
def served(provider):
    """One provider serving a, b, c and d, with aliases aa -> a and bb -> b."""
    return provider(
        "p",
        {"name": "a", "aliases": ["aa"]},
        {"name": "b", "aliases": ["bb"]},
        "c",
        "d",
    )


def test_an_unknown_fallback_is_dropped_and_named(served, chain, check):
    (outcome,), found = check(served, chain("ch", "a", "zz", "b"))
    assert where(found) == {("FallbackChain", "ch", "spec.fallbacks[0]", findings.UNKNOWN_MODEL)}
    (f,) = found
    assert "'zz'" in f.message
    assert "dropped" in f.message
    assert fallbacks(outcome) == {"a": ["b"]}
    (accepted,) = outcome.resolution.chains
    assert accepted.dropped == ("zz",)
    assert ("FallbackChain", "default", "ch") not in outcome.resolution.excluded


def test_a_chain_for_an_unknown_model_is_left_out(served, chain, check):
    (outcome,), found = check(served, chain("ch", "zz", "a"))
    assert where(found) == {("FallbackChain", "ch", "spec.model", findings.UNKNOWN_MODEL)}
    assert "'zz'" in found[0].message
    assert outcome.resolution.chains == ()
    assert ("FallbackChain", "default", "ch") in outcome.resolution.excluded
    assert "fallbacks" not in outcome.rendered.config["router_settings"]


def test_a_chain_none_of_whose_fallbacks_is_served_is_left_out(served, chain, check):
    (outcome,), found = check(served, chain("ch", "a", "x", "y"))
    assert where(found) == {
        ("FallbackChain", "ch", "spec.fallbacks", findings.UNKNOWN_MODEL),
        ("FallbackChain", "ch", "spec.fallbacks[0]", findings.UNKNOWN_MODEL),
        ("FallbackChain", "ch", "spec.fallbacks[1]", findings.UNKNOWN_MODEL),
    }
    assert outcome.resolution.chains == ()
    assert outcome.resolution.excluded[("FallbackChain", "default", "ch")].field == "spec.fallbacks"


@pytest.mark.parametrize(
    ("primary", "fallback", "field"), [("old", "a", "spec.model"), ("a", "old", "spec.fallbacks[0]")]
)
def test_a_model_only_a_disabled_provider_serves_names_that_provider(
    served, provider, chain, check, primary, fallback, field
):
    off = provider("legacy", "old", enabled=False)
    (outcome,), found = check(served, off, chain("ch", primary, fallback))
    (f,) = (f for f in found if f.field == field)
    assert f.reason == findings.UNKNOWN_MODEL
    assert "no enabled provider serves model 'old' (provider default/legacy is disabled)" in f.message
    assert outcome.resolution.chains == ()


def test_a_model_also_served_by_an_enabled_provider_is_served(served, provider, chain, check):
    off = provider("legacy", "a", enabled=False)
    (outcome,), found = check(served, off, chain("ch", "c", "a"))
    assert found == ()
    assert fallbacks(outcome) == {"c": ["a"]}
    assert outcome.resolution.models["a"] == (("default", "p"),)


def test_two_providers_serving_one_model_make_a_load_balanced_group(provider, chain, check):
    one = provider("one", "llama", url="http://one:8000")
    two = provider("two", "llama", url="http://two:8000")
    (outcome,), found = check(one, two, provider("other", "qwen"), chain("ch", "llama", "qwen"))
    assert found == ()
    rows = [m for m in outcome.rendered.config["model_list"] if m["model_name"] == "llama"]
    assert [r["litellm_params"]["api_base"] for r in rows] == ["http://one:8000/v1", "http://two:8000/v1"]
    assert outcome.resolution.models["llama"] == (("default", "one"), ("default", "two"))
    assert fallbacks(outcome) == {"llama": ["qwen"]}


@pytest.mark.parametrize(
    ("spec", "rendered"),
    [
        (("aa", "b"), {"a": ["b"]}),  # the chain's model by its alias
        (("a", "bb"), {"a": ["b"]}),  # a fallback by its alias
        (("aa", "bb", "c"), {"a": ["b", "c"]}),
    ],
)
def test_aliases_in_chains_are_rendered_as_the_model_names(served, chain, check, spec, rendered):
    (outcome,), found = check(served, chain("ch", *spec))
    assert found == ()
    assert fallbacks(outcome) == rendered


def test_the_aliases_of_a_chains_model_carry_its_fallbacks(served, chain, check):
    # LiteLLM looks fallbacks up by the name the client sent, before model_group_alias.
    (outcome,), found = check(served, chain("ab", "a", "bb", "c"), chain("ba", "b", "d"))
    assert found == ()
    assert fallbacks(outcome, aliases=True) == {"a": ["b", "c"], "aa": ["b", "c"], "b": ["d"], "bb": ["d"]}
    assert outcome.rendered.config["router_settings"]["model_group_alias"] == {"aa": "a", "bb": "b"}


def test_a_fallback_that_repeats_an_earlier_one_by_alias_is_dropped(served, chain, check):
    (outcome,), found = check(served, chain("ch", "a", "b", "bb", "c"))
    assert where(found) == {("FallbackChain", "ch", "spec.fallbacks[1]", findings.CONFLICT)}
    assert "'bb'" in found[0].message
    assert fallbacks(outcome) == {"a": ["b", "c"]}


@pytest.mark.parametrize(("model", "target"), [("a", "aa"), ("aa", "a")])
def test_a_model_falling_back_to_itself_by_alias_is_a_cycle_of_one(served, chain, check, model, target):
    (outcome,), found = check(served, chain("ch", model, target))
    assert where(found) == {
        ("FallbackChain", "ch", "spec.fallbacks[0]", findings.FALLBACK_CYCLE),
        ("FallbackChain", "ch", "spec.fallbacks", findings.FALLBACK_CYCLE),
    }
    assert any("a -> a" in f.message for f in found)
    assert outcome.resolution.chains == ()
    assert "fallbacks" not in outcome.rendered.config["router_settings"]


def test_a_self_fallback_by_alias_is_dropped_when_others_remain(served, chain, check):
    (outcome,), found = check(served, chain("ch", "a", "aa", "b"))
    assert where(found) == {("FallbackChain", "ch", "spec.fallbacks[0]", findings.FALLBACK_CYCLE)}
    assert fallbacks(outcome) == {"a": ["b"]}


@pytest.mark.parametrize(
    ("chains", "paths"),
    [
        ([("ab", "a", "b"), ("ba", "b", "a")], {"ab": "a -> b -> a", "ba": "b -> a -> b"}),
        ([("ab", "a", "bb"), ("ba", "b", "aa")], {"ab": "a -> b -> a", "ba": "b -> a -> b"}),
        (
            [("ab", "a", "b"), ("bc", "b", "c"), ("ca", "c", "a")],
            {"ab": "a -> b -> c -> a", "bc": "b -> c -> a -> b", "ca": "c -> a -> b -> c"},
        ),
        (
            [("ab", "a", "b"), ("bc", "b", "c"), ("cd", "c", "d"), ("da", "d", "a")],
            {"ab": "a -> b -> c -> d -> a", "da": "d -> a -> b -> c -> d"},
        ),
    ],
)
def test_every_chain_on_a_cycle_is_left_out_with_its_path(served, chain, check, chains, paths):
    (outcome,), found = check(served, *(chain(*c) for c in chains))
    assert outcome.resolution.chains == ()
    assert {f.reason for f in found} == {findings.FALLBACK_CYCLE}
    assert {f.name for f in found} == {c[0] for c in chains}
    for name, path in paths.items():
        (f,) = (f for f in found if f.name == name)
        assert f.field == "spec.fallbacks"
        assert f"fallback cycle {path} (errors)" in f.message
        assert outcome.resolution.excluded[("FallbackChain", "default", name)] == f


def test_a_cycle_of_five_is_found(provider, chain, check):
    names = ["m1", "m2", "m3", "m4", "m5"]
    chains = [chain(f"c{i}", names[i], names[(i + 1) % 5]) for i in range(5)]
    _, found = check(provider("p", *names), *chains)
    assert len(found) == 5
    assert "fallback cycle m1 -> m2 -> m3 -> m4 -> m5 -> m1" in str(found[0])


def test_disjoint_cycles_are_all_reported_and_the_rest_is_kept(served, provider, chain, check):
    more = provider("q", "x", "y", "z")
    (outcome,), found = check(
        served,
        more,
        chain("ab", "a", "b"),
        chain("ba", "b", "a"),
        chain("xy", "x", "y"),
        chain("yx", "y", "x"),
        chain("into", "c", "a"),  # leads into a cycle, is not on one
        chain("free", "z", "d"),
    )
    assert {f.name for f in found} == {"ab", "ba", "xy", "yx"}
    assert {f.reason for f in found} == {findings.FALLBACK_CYCLE}
    assert fallbacks(outcome) == {"c": ["a"], "z": ["d"]}


def test_chains_of_different_triggers_do_not_make_a_cycle(served, chain, check):
    (outcome,), found = check(
        served,
        chain("ab", "a", "b"),
        chain("ba", "b", "a", trigger="contextWindow"),
        chain("ab-policy", "a", "b", trigger="contentPolicy"),
        chain("ba-policy", "b", "c", trigger="contentPolicy"),
    )
    assert errors(found) == []  # the contextWindow chain warns: no window is declared
    assert fallbacks(outcome) == {"a": ["b"]}
    assert fallbacks(outcome, "context_window_fallbacks") == {"b": ["a"]}
    assert fallbacks(outcome, "content_policy_fallbacks") == {"a": ["b"], "b": ["c"]}


@pytest.mark.parametrize("trigger", ["errors", "contextWindow", "contentPolicy"])
def test_a_cycle_is_found_within_each_trigger(served, chain, check, trigger):
    _, found = check(served, chain("ab", "a", "b", trigger=trigger), chain("ba", "b", "a", trigger=trigger))
    cycles = errors(found)
    assert {(f.name, f.reason) for f in cycles} == {("ab", "FallbackCycle"), ("ba", "FallbackCycle")}
    assert all(f"({trigger})" in f.message for f in cycles)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("default", "a-chain"), ("default", "b-chain")),
        (("alpha", "zz"), ("beta", "aa")),  # namespace first, then name
    ],
)
def test_a_second_chain_for_one_model_and_trigger_is_a_conflict(served, chain, gateway, check, first, second):
    gw = gateway(namespaces={"from": "All"})
    (outcome,), found = check(
        served,
        gw,
        chain(second[1], "a", "c", namespace=second[0]),
        chain(first[1], "a", "b", namespace=first[0]),
    )
    assert where(found) == {("FallbackChain", second[1], "spec.model", findings.CONFLICT)}
    assert f"FallbackChain {first[0]}/{first[1]} already sets" in found[0].message
    assert found[0].namespace == second[0]
    assert fallbacks(outcome) == {"a": ["b"]}


def test_chains_for_a_model_and_its_alias_conflict(served, chain, check):
    (outcome,), found = check(served, chain("one", "a", "b"), chain("two", "aa", "c"))
    assert where(found) == {("FallbackChain", "two", "spec.model", findings.CONFLICT)}
    assert fallbacks(outcome) == {"a": ["b"]}


def test_chains_for_one_model_with_different_triggers_do_not_conflict(served, chain, check):
    (outcome,), found = check(served, chain("one", "a", "b"), chain("two", "a", "c", trigger="contextWindow"))
    assert errors(found) == []  # the contextWindow chain warns: no window is declared
    assert fallbacks(outcome) == {"a": ["b"]}
    assert fallbacks(outcome, "context_window_fallbacks") == {"a": ["c"]}


@pytest.mark.parametrize(("max_fallbacks", "order"), [(1, ("a", "b", "c")), (5, ("a", "b", "d", "c"))])
def test_the_effective_order_follows_the_fallbacks_chains(
    served, chain, gateway, check, max_fallbacks, order
):
    (outcome,), found = check(
        served, gateway(maxFallbacks=max_fallbacks), chain("ab", "a", "b", "c"), chain("bd", "b", "d")
    )
    assert found == ()
    assert outcome.resolution.order[("default", "ab")] == order
    assert outcome.resolution.order[("default", "bd")] == ("b", "d")


def test_a_chain_longer_than_the_recursion_limit(provider, chain, gateway, check):
    names = [f"m{i}" for i in range(2 * sys.getrecursionlimit())]
    providers = [provider(f"p{j}", *names[j : j + 1000]) for j in range(0, len(names), 1000)]
    chains = [chain(f"c{i}", names[i], names[i + 1]) for i in range(len(names) - 1)]
    (outcome,), found = check(gateway(maxFallbacks=50), *providers, *chains)
    assert found == ()
    assert len(outcome.resolution.chains) == len(names) - 1
    assert outcome.resolution.order[("default", "c0")] == tuple(names[:51])
    assert len(fallbacks(outcome)) == len(names) - 1
