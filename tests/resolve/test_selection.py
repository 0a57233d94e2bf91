"""Which providers and chains a gateway serves: label selectors and allowed namespaces."""

from __future__ import annotations

import pytest

from llmgw.api.common import LabelSelector
from llmgw.core import findings, selection

TEAM_A = {"team": "a"}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        (None, {}, True),
        ({}, {}, True),
        ({}, TEAM_A, True),
        ({"matchLabels": TEAM_A}, TEAM_A, True),
        ({"matchLabels": TEAM_A}, {"team": "a", "tier": "gpu"}, True),
        ({"matchLabels": TEAM_A}, {"team": "b"}, False),
        ({"matchLabels": TEAM_A}, {}, False),
        ({"matchLabels": {"team": "a", "tier": "gpu"}}, TEAM_A, False),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]}]}, TEAM_A, True),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["b"]}]}, TEAM_A, False),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["b"]}]}, TEAM_A, True),
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}, TEAM_A, False),
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, TEAM_A, True),
        ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, {}, True),
        ({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, TEAM_A, False),
        (
            {
                "matchLabels": TEAM_A,
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu"]}],
            },
            TEAM_A,
            False,
        ),
    ],
)
def test_label_selectors(selector, labels, expected):
    parsed = None if selector is None else LabelSelector.model_validate(selector)
    assert selection.matches(parsed, labels) is expected


def served_names(outcome) -> list[str]:
    return [p.metadata.name for p in outcome.resolution.providers]


def not_selected(found) -> set[tuple[str, str, str]]:
    return {(f.kind, f.namespace, f.name) for f in found if f.reason == findings.NOT_SELECTED}


def test_the_gateway_selector_picks_providers_and_chains_by_label(provider, chain, gateway, check):
    (outcome,), found = check(
        gateway(selector={"matchLabels": TEAM_A}),
        provider("mine", "a", "b", labels=TEAM_A),
        provider("theirs", "c", labels={"team": "b"}),
        chain("mine", "a", "b", labels=TEAM_A),
        chain("theirs", "a", "c", labels={"team": "b"}),
    )
    assert served_names(outcome) == ["mine"]
    assert [a.chain.metadata.name for a in outcome.resolution.chains] == ["mine"]
    assert not_selected(found) == {
        ("LLMProvider", "default", "theirs"),
        ("FallbackChain", "default", "theirs"),
    }
    assert all(f.severity == "warning" for f in found)
    assert all("no gateway serves it (gateways: default/gw)" in f.message for f in found)


@pytest.mark.parametrize(
    ("namespaces", "served"),
    [
        (None, ["here"]),  # Same is the default
        ({"from": "Same"}, ["here"]),
        ({"from": "All"}, ["here", "published", "private"]),
        ({"from": "Selector", "selector": {"matchLabels": {"publish": "main"}}}, ["published"]),
        (
            {
                "from": "Selector",
                "selector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["ai", "team-b"]}
                    ]
                },
            },
            ["here", "private"],
        ),
        (
            {
                "from": "Selector",
                "selector": {"matchExpressions": [{"key": "publish", "operator": "DoesNotExist"}]},
            },
            ["here", "private"],
        ),
    ],
)
def test_allowed_namespaces(provider, gateway, check, namespaces, served):
    spec = {} if namespaces is None else {"namespaces": namespaces}
    (outcome,), found = check(
        gateway(namespace="ai", **spec),
        provider("here", "a", namespace="ai"),
        provider("published", "b", namespace="team-a"),
        provider("private", "c", namespace="team-b"),
        namespaces={"team-a": {"publish": "main"}, "team-b": {}},
    )
    assert sorted(served_names(outcome)) == sorted(served)
    everything = {
        ("LLMProvider", ns, n) for ns, n in [("ai", "here"), ("team-a", "published"), ("team-b", "private")]
    }
    assert not_selected(found) == {o for o in everything if o[2] not in served}


def test_a_namespace_with_unknown_labels_has_its_name_label(provider, gateway, check):
    gw = gateway(
        namespace="ai",
        namespaces={"from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": "ml"}}},
    )
    (outcome,), found = check(gw, provider("p", "a", namespace="ml"))
    assert served_names(outcome) == ["p"]
    assert found == ()


def test_an_object_served_by_any_gateway_is_not_reported(provider, gateway, check):
    outcomes, found = check(
        gateway("one", selector={"matchLabels": TEAM_A}),
        gateway("two", selector={"matchLabels": {"team": "b"}}),
        provider("a", "a", labels=TEAM_A),
        provider("b", "b", labels={"team": "b"}),
        provider("c", "c", labels={"team": "c"}),
    )
    assert [served_names(o) for o in outcomes] == [["a"], ["b"]]
    assert not_selected(found) == {("LLMProvider", "default", "c")}
    (f,) = found
    assert "gateways: default/one, default/two" in f.message


def test_one_provider_may_be_served_by_several_gateways(provider, gateway, check):
    outcomes, found = check(gateway("one"), gateway("two"), provider("p", "a"))
    assert found == ()
    assert [served_names(o) for o in outcomes] == [["p"], ["p"]]


def test_without_a_gateway_the_default_one_serves_every_namespace(provider, check):
    (outcome,), found = check(provider("p", "a", namespace="x"), provider("q", "b", namespace="y"))
    assert found == ()
    assert outcome.resolution.gateway.metadata.name == "llmgw"
    assert served_names(outcome) == ["p", "q"]


def test_a_chain_whose_provider_is_not_selected_names_the_model(provider, chain, gateway, check):
    _, found = check(
        gateway(selector={"matchLabels": TEAM_A}),
        provider("mine", "a", labels=TEAM_A),
        provider("theirs", "b"),
        chain("c", "a", "b", labels=TEAM_A),
    )
    assert {(f.name, f.field, f.reason) for f in found} == {
        ("theirs", "metadata.labels", findings.NOT_SELECTED),
        ("c", "spec.fallbacks", findings.UNKNOWN_MODEL),
        ("c", "spec.fallbacks[0]", findings.UNKNOWN_MODEL),
    }


def test_an_invalid_object_no_gateway_serves_still_says_what_is_wrong(provider, gateway, check):
    bad = provider("bad", "a", namespace="elsewhere", type="tgi")
    _, found = check(gateway(), bad)
    assert {(f.field, f.reason, f.severity) for f in found} == {
        ("spec.type", findings.INVALID_SPEC, "error"),
        ("metadata.labels", findings.NOT_SELECTED, "warning"),
    }


def test_with_an_invalid_gateway_every_objects_own_errors_are_reported(provider, gateway, check):
    outcomes, found = check(gateway(replicas="two"), provider("bad", "a", type="tgi"), provider("ok", "b"))
    assert outcomes == []
    assert {(f.kind, f.name, f.field) for f in found} == {
        ("LLMGateway", "gw", "spec.replicas"),
        ("LLMProvider", "bad", "spec.type"),
    }
