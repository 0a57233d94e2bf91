"""Objects read twice, and objects that fail their own validation."""

from __future__ import annotations

import itertools

from llmgw.core import findings


def test_an_object_read_twice_with_the_same_contents_is_one_object(provider, check):
    (outcome,), found = check(provider("p", "a"), provider("p", "a"))
    assert found == ()
    assert [p.metadata.name for p in outcome.resolution.providers] == ["p"]


def test_an_object_read_twice_with_different_contents_is_a_finding(provider, check):
    (outcome,), found = check(provider("p", "a"), provider("p", "b"))
    assert [(f.kind, f.name, f.field, f.reason) for f in found] == [
        ("LLMProvider", "p", "metadata.name", findings.DUPLICATE_OBJECT)
    ]
    assert "defined twice with different contents" in found[0].message
    assert len(outcome.resolution.providers) == 1


def test_which_of_two_definitions_is_kept_does_not_depend_on_the_order(provider, chain, check):
    raws = [provider("p", "a"), provider("p", "b"), provider("p", "c", enabled=False), chain("c", "a", "b")]
    results = set()
    for order in itertools.permutations(raws):
        (outcome,), found = check(*order)
        results.add((outcome.rendered.text, found))
    assert len(results) == 1


def test_one_name_in_two_namespaces_or_two_kinds_is_two_objects(provider, chain, gateway, check):
    (outcome,), found = check(
        gateway(namespaces={"from": "All"}),
        provider("x", "a"),
        provider("x", "b", namespace="other"),
        chain("x", "a", "b"),
    )
    assert found == ()
    assert len(outcome.resolution.providers) == 2
    assert len(outcome.resolution.chains) == 1


def test_an_invalid_object_is_left_out_with_every_error_by_field(provider, chain, check):
    bad = provider("bad", {"name": "a", "rpm": 0, "contextWindow": "big"}, type="tgi")
    (outcome,), found = check(bad, provider("ok", "b"), chain("c", "b", "a"))
    assert {(f.name, f.field, f.reason) for f in found} == {
        ("bad", "spec.type", findings.INVALID_SPEC),
        ("bad", "spec.models[0].rpm", findings.INVALID_SPEC),
        ("bad", "spec.models[0].contextWindow", findings.INVALID_SPEC),
        ("c", "spec.fallbacks", findings.UNKNOWN_MODEL),
        ("c", "spec.fallbacks[0]", findings.UNKNOWN_MODEL),
    }
    assert ("LLMProvider", "default", "bad") in outcome.resolution.excluded
    assert [p.metadata.name for p in outcome.resolution.providers] == ["ok"]
    assert [m["model_name"] for m in outcome.rendered.config["model_list"]] == ["b"]


def test_an_object_without_a_name_is_named_for_people(check):
    raw = {"apiVersion": "llmgateway.dev/v1alpha1", "kind": "LLMProvider", "metadata": {}, "spec": {}}
    _, found = check(raw)
    assert found
    assert {f.name for f in found} == {"<unnamed>"}
    assert "metadata.name" in {f.field for f in found}
