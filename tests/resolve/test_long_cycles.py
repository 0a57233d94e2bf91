"""Long fallback cycles: said once, by their ends and length; every other chain on one points to it.

Short cycles (at most `graph.SHOWN` models) are said whole on every chain, as
tests/resolve/test_chains.py pins; these are the rest, and what they cost.
"""

from __future__ import annotations

import pytest

from llmgw.core import estate, findings, graph, pipeline, statuses

TAIL = "; the chain is left out until one of the chains on the cycle drops its link"


def ring(provider, chain, length, *, namespace="default", trigger=None):
    """Models m00.. on one provider and chains cNN: mNN -> the next model, the last back to m00."""
    names = [f"m{i:02d}" for i in range(length)]
    chains = [
        chain(f"c{i:02d}", names[i], names[(i + 1) % length], namespace=namespace, trigger=trigger)
        for i in range(length)
    ]
    return [provider("p", *names), *chains]


def by_name(found):
    return {f.name: f for f in found if f.reason == findings.FALLBACK_CYCLE}


def test_a_cycle_of_eight_is_still_said_whole_on_every_chain(provider, chain, check):
    _, found = check(*ring(provider, chain, 8))
    said = by_name(found)
    assert said["c00"].message == (
        "fallback cycle m00 -> m01 -> m02 -> m03 -> m04 -> m05 -> m06 -> m07 -> m00 (errors)" + TAIL
    )
    assert said["c03"].message.startswith("fallback cycle m03 -> m04 -> m05 -> m06 -> m07 -> m00 -> m01")


def test_a_long_cycle_is_said_once_by_its_ends_and_length(provider, chain, check):
    (outcome,), found = check(*ring(provider, chain, 12))
    said = by_name(found)
    assert sorted(said) == [f"c{i:02d}" for i in range(12)]
    assert said["c00"].field == "spec.fallbacks"
    assert said["c00"].message == (
        "fallback cycle m00 -> m01 -> m02 -> ... -> m10 -> m11 -> m00 (12 models, errors)" + TAIL
    )
    for name in (f"c{i:02d}" for i in range(1, 12)):
        assert said[name].message == (
            "on fallback cycle m00 -> ... -> m00 (12 models, errors), reported on FallbackChain "
            "default/c00" + TAIL
        )
    assert outcome.resolution.chains == ()
    assert "fallbacks" not in outcome.rendered.config["router_settings"]


@pytest.mark.parametrize("trigger", ["errors", "contextWindow", "contentPolicy"])
def test_the_trigger_is_said_with_the_length(provider, chain, check, trigger):
    _, found = check(*ring(provider, chain, 10, trigger=trigger))
    said = by_name(found)
    assert f"(10 models, {trigger})" in said["c00"].message
    assert f"(10 models, {trigger}), reported on FallbackChain default/c00" in said["c05"].message


def test_every_chain_on_a_long_cycle_is_not_accepted_for_the_cycle(provider, chain):
    est = estate.build(ring(provider, chain, 40))
    outcomes, _ = pipeline.check(est)
    status = statuses.for_objects(est, outcomes)
    for i in range(40):
        (accepted,) = status[("FallbackChain", "default", f"c{i:02d}")]["conditions"]
        said = (accepted["type"], accepted["status"], accepted["reason"])
        assert said == ("Accepted", "False", findings.FALLBACK_CYCLE)
        assert "fallback cycle m00 -> " in accepted["message"]
        assert len(accepted["message"]) < 300


def test_the_cycle_is_reported_on_its_first_model_whatever_the_chains_are_called(provider, chain, check):
    names = [f"m{i:02d}" for i in range(9)]
    chains = [chain(f"z-{9 - i}", names[i], names[(i + 1) % 9], namespace=f"ns{i % 3}") for i in range(9)]
    _, found = check(provider("p", *names), *chains)
    said = by_name(found)
    assert said["z-9"].namespace == "ns0"
    assert said["z-9"].message.startswith("fallback cycle m00 -> m01 -> m02 -> ... -> m07 -> m08 -> m00 (9 ")
    assert "reported on FallbackChain ns0/z-9;" in said["z-1"].message


def test_a_chain_in_a_tangle_off_the_reported_cycle_says_so(provider, chain, check):
    # a00 -> a01 -> ... -> a19 -> a00, and a00 -> b00 -> ... -> b19 -> a00: one component of 40.
    a = [f"a{i:02d}" for i in range(20)]
    b = [f"b{i:02d}" for i in range(20)]
    chains = [chain("ca00", "a00", "a01", "b00")]
    chains += [chain(f"c{a[i]}", a[i], a[(i + 1) % 20]) for i in range(1, 20)]
    chains += [chain(f"c{b[i]}", b[i], b[i + 1] if i < 19 else "a00") for i in range(20)]
    _, found = check(provider("p", *a, *b), *chains)
    said = by_name(found)
    assert len(said) == 40
    assert said["ca00"].message.startswith(
        "fallback cycle a00 -> a01 -> a02 -> ... -> a18 -> a19 -> a00 (20 "
    )
    assert said["ca05"].message.startswith(
        "on fallback cycle a00 -> ... -> a00 (20 models, errors), reported"
    )
    assert said["cb05"].message == (
        "on a cycle among the 40 models that fall back to one another with fallback cycle "
        "a00 -> ... -> a00 (20 models, errors), reported on FallbackChain default/ca00" + TAIL
    )


def test_what_is_said_of_a_cycle_does_not_grow_with_it(provider, chain, check):
    sizes = {}
    for length in (50, 400):
        _, found = check(*ring(provider, chain, length))
        said = by_name(found)
        assert len(said) == length
        sizes[length] = max(len(f.message) for f in said.values())
    assert sizes[400] <= sizes[50] + 10  # "400" is longer than "50" by a digit
    assert sizes[400] < 300


def test_a_line_into_a_long_cycle_is_kept(provider, chain, check):
    raws = ring(provider, chain, 20)
    raws[0] = provider("p", *(f"m{i:02d}" for i in range(20)), "x")
    (outcome,), found = check(*raws, chain("into", "x", "m05"))
    assert "into" not in by_name(found)
    assert [a.chain.metadata.name for a in outcome.resolution.chains] == ["into"]
    assert graph.SHOWN < 20
