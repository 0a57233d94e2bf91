"""Admission reviews, pure: the world the operator knows, one object in, allowed/denied/warnings out."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from llmgw.core import admission, estate, findings, objects, resolve

Raw = dict[str, Any]


def world(*raws: Raw, namespaces: dict[str, dict[str, str]] | None = None) -> admission.World:
    return admission.World(estate.build(raws, namespaces))


@pytest.fixture
def served(provider: Callable[..., Raw], gateway: Callable[..., Raw]) -> list[Raw]:
    """A gateway, and one provider serving a..e, with alias aa -> a."""
    return [gateway(), provider("p", {"name": "a", "aliases": ["aa"]}, "b", "c", "d", "e")]


def test_a_valid_chain_is_admitted_without_warnings(served, chain) -> None:
    verdict = admission.review(world(*served), chain("ab", "a", "b"))
    assert verdict == admission.Verdict(True)


def test_a_cycle_of_length_one_through_an_alias_is_refused(served, chain) -> None:
    verdict = admission.review(world(*served), chain("self", "a", "aa", "b"))
    assert not verdict.allowed
    assert "FallbackChain default/self spec.fallbacks[0]" in verdict.message
    assert "fallback cycle a -> a" in verdict.message


def test_a_cycle_of_length_two_is_refused_with_its_path(served, chain) -> None:
    w = world(*served, chain("ab", "a", "b"))
    verdict = admission.review(w, chain("ba", "b", "a"))
    assert not verdict.allowed
    assert "fallback cycle b -> a -> b (errors)" in verdict.message
    assert "remove the link that closes it" in verdict.message


def test_a_cycle_of_length_five_is_refused_with_its_path(served, chain) -> None:
    w = world(
        *served, chain("ab", "a", "b"), chain("bc", "b", "c"), chain("cd", "c", "d"), chain("de", "d", "e")
    )
    verdict = admission.review(w, chain("ea", "e", "a"))
    assert not verdict.allowed
    assert "fallback cycle e -> a -> b -> c -> d -> e (errors)" in verdict.message


def test_a_cycle_through_an_alias_elsewhere_in_the_path_is_refused(served, chain) -> None:
    w = world(*served, chain("ab", "aa", "b"))
    verdict = admission.review(w, chain("ba", "b", "aa"))
    assert not verdict.allowed
    assert "fallback cycle b -> a -> b" in verdict.message


def test_the_same_links_under_another_trigger_are_no_cycle(served, chain) -> None:
    w = world(*served, chain("ab", "a", "b"))
    verdict = admission.review(w, chain("ba", "b", "a", trigger="contextWindow"))
    assert verdict.allowed


def test_an_unknown_fallback_is_admitted_with_a_warning(served, chain) -> None:
    verdict = admission.review(world(*served), chain("c", "a", "gpt-9", "b"))
    assert verdict.allowed
    (warning,) = verdict.warnings
    assert "spec.fallbacks[0]" in warning
    assert "no enabled provider serves model 'gpt-9'" in warning


def test_a_chain_on_an_unknown_model_is_admitted_with_a_warning(served, chain) -> None:
    # GitOps applies in any order: the provider may come next.
    verdict = admission.review(world(*served), chain("c", "llama", "a"))
    assert verdict.allowed
    assert any("'llama'" in w for w in verdict.warnings)


def test_a_malformed_chain_is_refused_with_every_field(served) -> None:
    raw = {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "FallbackChain",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"model": "a b", "trigger": "sometimes"},
    }
    verdict = admission.review(world(*served), raw)
    assert not verdict.allowed
    assert verdict.message.startswith("FallbackChain default/bad is invalid: ")
    assert "spec.fallbacks: is required" in verdict.message
    assert "spec.trigger: 'sometimes' is not allowed" in verdict.message
    assert "spec.model: 'a b' must start with a letter or digit" in verdict.message


def test_an_update_that_keeps_an_old_cycle_is_admitted_with_a_warning(served, chain) -> None:
    # Stored while the webhook was off: relabelling it must not be refused.
    old = chain("ba", "b", "a")
    w = world(*served, chain("ab", "a", "b"), old)
    new = chain("ba", "b", "a", labels={"team": "x"})
    verdict = admission.review(w, new, old)
    assert verdict.allowed
    assert any("fallback cycle b -> a -> b" in x and "it was so before" in x for x in verdict.warnings)


def test_an_update_that_closes_a_cycle_is_refused(served, chain) -> None:
    old = chain("ba", "b", "c")
    w = world(*served, chain("ab", "a", "b"), old)
    verdict = admission.review(w, chain("ba", "b", "c", "a"), old)
    assert not verdict.allowed
    assert "fallback cycle b -> a -> b" in verdict.message


def test_an_update_that_breaks_a_cycle_is_admitted(served, chain) -> None:
    old = chain("ba", "b", "a")
    w = world(*served, chain("ab", "a", "b"), old)
    assert admission.review(w, chain("ba", "b", "c"), old) == admission.Verdict(True)


def test_a_chain_no_gateway_binds_is_admitted_with_a_warning(provider, gateway, chain) -> None:
    w = world(gateway(selector={"matchLabels": {"tier": "gpu"}}), provider("p", "a", "b"))
    verdict = admission.review(w, chain("ab", "a", "b"))
    assert verdict.allowed
    (warning,) = verdict.warnings
    assert "no LLMGateway binds it (gateways: default/gw)" in warning


def test_without_gateways_the_default_one_decides_as_llmgw_validate_does(provider, chain) -> None:
    w = world(provider("p", "a", "b"), chain("ab", "a", "b"))
    verdict = admission.review(w, chain("ba", "b", "a", namespace="team-x"))
    assert not verdict.allowed
    assert "fallback cycle b -> a -> b" in verdict.message


def test_cycles_are_checked_in_every_gateway_that_binds_the_chain(provider, gateway, chain) -> None:
    w = world(
        gateway("one", selector={"matchLabels": {"gw": "one"}}),
        gateway("two"),
        provider("p", "a", "b"),
        chain("ab", "a", "b"),
    )
    verdict = admission.review(w, chain("ba", "b", "a"))
    assert not verdict.allowed
    assert "(gateway default/two)" in verdict.message
    assert "gateway default/one" not in verdict.message


def test_a_valid_provider_is_admitted_and_an_invalid_one_refused(served, provider) -> None:
    w = world(*served)
    assert admission.review(w, provider("q", "x")).allowed
    verdict = admission.review(w, provider("q", "x", type="vllmm"))
    assert not verdict.allowed
    assert "spec.type: 'vllmm' is not allowed" in verdict.message


def test_a_provider_whose_alias_names_a_served_model_is_warned(served, provider) -> None:
    verdict = admission.review(world(*served), provider("q", {"name": "x", "aliases": ["b"]}))
    assert verdict.allowed
    assert any(findings.ALIAS_CONFLICT not in w and "alias 'b'" in w for w in verdict.warnings)


def test_a_provider_that_closes_a_cycle_is_admitted_with_the_cycle_as_a_warning(
    provider, gateway, chain
) -> None:
    # b -> a is dropped while nothing serves a; serving a makes it a link, and a cycle.
    w = world(gateway(), provider("p", "b"), chain("ab", "a", "b"), chain("ba", "b", "a"))
    verdict = admission.review(w, provider("q", "a"))
    assert verdict.allowed
    (warning,) = [x for x in verdict.warnings if "closes" in x]
    assert warning.startswith("LLMProvider default/q spec.models: serving these models closes ")
    assert "fallback cycle a -> b -> a (errors)" in warning or "fallback cycle b -> a -> b" in warning
    assert "FallbackChain default/ab, default/ba will be left out" in warning


def test_a_provider_edit_that_leaves_a_cycle_as_it_was_says_nothing_of_it(provider, gateway, chain) -> None:
    w = world(gateway(), provider("p", "a", "b"), chain("ab", "a", "b"), chain("ba", "b", "a"))
    verdict = admission.review(w, provider("p", "a", "b", "c"))
    assert verdict.allowed
    assert not [x for x in verdict.warnings if "cycle" in x]


def test_a_gateway_that_binds_chains_on_a_cycle_is_warned(provider, gateway, chain) -> None:
    w = world(
        gateway(selector={"matchLabels": {"team": "x"}}),
        provider("p", "a", "b"),
        chain("ab", "a", "b"),
        chain("ba", "b", "a"),
    )
    verdict = admission.review(w, gateway())
    assert verdict.allowed
    assert len(verdict.warnings) == 1
    assert "LLMGateway default/gw: binds chains on fallback cycle" in verdict.warnings[0]
    assert "FallbackChain default/ab, default/ba will be left out" in verdict.warnings[0]


def test_a_gateway_that_binds_no_provider_is_warned(served, gateway) -> None:
    verdict = admission.review(world(*served), gateway("other", selector={"matchLabels": {"x": "y"}}))
    assert verdict.allowed
    assert "binds none of the 1 LLMProvider(s) known" in verdict.warnings[0]


def test_an_invalid_gateway_is_refused(served, gateway) -> None:
    verdict = admission.review(world(*served), gateway(routerSettings={"fallbacks": []}))
    assert not verdict.allowed
    assert "spec.routerSettings" in verdict.message


def test_a_name_generated_by_the_server_is_not_a_finding(served, chain) -> None:
    raw = chain("x", "a", "b")
    raw["metadata"] = {"generateName": "chain-", "namespace": "default"}
    assert admission.review(world(*served), raw).allowed


def test_build_estate_from_parsed_objects_matches_the_loader(served, chain) -> None:
    raws = [*served, chain("ab", "a", "b"), chain("bad", "a")]
    built = estate.build(raws)
    again = admission.build_estate([objects.parse(r) for r in reversed(raws)])
    assert (again.providers, again.chains, again.gateways, again.invalid) == (
        built.providers,
        built.chains,
        built.gateways,
        built.invalid,
    )


def _random_estate(seed: int, provider, chain, gateway) -> list[Raw]:
    """Models m0..m29 (some with aliases, some disabled), chains with cycles, conflicts, aliases."""
    rnd = random.Random(seed)
    names = [f"m{i}" for i in range(30)]
    raws: list[Raw] = [gateway(namespaces={"from": "All"})]
    for p in range(6):
        models: list[Any] = []
        for n in names[p * 5 : p * 5 + 5]:
            models.append({"name": n, "aliases": [f"al-{n}"]} if rnd.random() < 0.3 else n)
        raws.append(provider(f"p{p}", *models, enabled=rnd.random() > 0.15, namespace=f"ns{p % 2}"))
    pool = [*names, "al-m3", "al-m7", "ghost"]
    for c in range(40):
        fallbacks = rnd.sample(pool, rnd.randint(1, 3))
        raws.append(
            chain(
                f"c{c}",
                rnd.choice(pool),
                *fallbacks,
                trigger=rnd.choice(["errors", "errors", "contextWindow"]),
                namespace=f"ns{c % 3}",
            )
        )
    return raws


@pytest.mark.parametrize("seed", range(12))
def test_the_reachable_part_gives_every_chain_what_the_whole_gateway_gives_it(
    seed: int, provider, chain, gateway
) -> None:
    est = estate.build(_random_estate(seed, provider, chain, gateway))
    w = admission.World(est)
    (gw,) = est.gateways
    whole = resolve.resolve(est, gw)
    for c in est.chains:
        me = (c.metadata.namespace, c.metadata.name)
        expected = tuple(f for f in whole.findings if f.kind == c.kind and (f.namespace, f.name) == me)
        assert admission.chain_findings(w, gw, c) == expected, c.metadata.name
