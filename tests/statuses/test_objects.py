"""`statuses.for_objects`: what each provider and chain says, decided from every gateway at once."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.core import findings, statuses
from llmgw.core.backends import Backends, Probe

Statuses = dict[tuple[str, str, str], dict[str, Any]]


def decide(world, valid, *raws: Any, **context: Any) -> Statuses:
    """Every object's status, each one checked against its kind's status model."""
    out = statuses.for_objects(*world(*raws, **context))
    for (kind, _, _), status in out.items():
        valid(kind, status)
    return out


def accepted(status: dict[str, Any]) -> tuple[str, str, str]:
    (cond,) = [c for c in status["conditions"] if c["type"] == "Accepted"]
    return cond["status"], cond["reason"], cond["message"]


def p_(name: str) -> tuple[str, str, str]:
    return ("LLMProvider", "default", name)


def c_(name: str) -> tuple[str, str, str]:
    return ("FallbackChain", "default", name)


# --- accepted ---------------------------------------------------------------------------------


def test_a_served_provider_and_chain_are_accepted(provider, chain, world, valid, generation):
    out = decide(world, valid, generation(provider("p", "a", "b"), 3), generation(chain("c", "a", "b"), 7))
    assert out[p_("p")] == {
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Accepted",
                "status": "True",
                "reason": "Accepted",
                "message": "served by default/llmgw",
                "observedGeneration": 3,
            }
        ],
        "gateways": ["default/llmgw"],
        "models": 2,
    }
    assert out[c_("c")] == {
        "observedGeneration": 7,
        "conditions": [
            {
                "type": "Accepted",
                "status": "True",
                "reason": "Accepted",
                "message": "served by default/llmgw",
                "observedGeneration": 7,
            }
        ],
        "gateways": ["default/llmgw"],
        "effectiveOrder": ["a", "b"],
        "attempts": [{"model": "a", "mode": "chat"}, {"model": "b", "mode": "chat"}],
    }


def test_every_provider_chain_and_invalid_object_has_a_status_and_gateways_have_none(
    provider, chain, gateway, world, valid
):
    out = decide(
        world, valid, gateway("gw"), provider("p", "a"), chain("c", "a", "b"), provider("bad", type="x")
    )
    assert sorted(out) == [c_("c"), p_("bad"), p_("p")]


def test_an_object_served_by_several_gateways_names_them_all(provider, gateway, world, valid):
    out = decide(
        world,
        valid,
        gateway("all"),
        gateway("team", selector={"matchLabels": {"team": "x"}}),
        provider("p", "a", labels={"team": "x"}),
        provider("q", "b"),
    )
    assert out[p_("p")]["gateways"] == ["default/all", "default/team"]
    assert accepted(out[p_("p")]) == ("True", "Accepted", "served by default/all, default/team")
    assert out[p_("q")]["gateways"] == ["default/all"]


@pytest.mark.parametrize(
    ("objects", "oid", "reason", "says"),
    [
        pytest.param(
            [("provider", "q", {"name": "z", "aliases": ["a"]})],
            p_("q"),
            findings.ALIAS_CONFLICT,
            "spec.models.aliases: alias 'a' of model 'z' is itself a served model name",
            id="alias-conflict",
        ),
        pytest.param(
            [("chain", "c", "a", "b", "zz")],
            c_("c"),
            findings.UNKNOWN_MODEL,
            "spec.fallbacks[1]: no enabled provider serves model 'zz'; it is dropped",
            id="dropped-fallback",
        ),
    ],
)
def test_an_object_served_with_warnings_is_accepted_with_the_first_findings_reason(
    objects, oid, reason, says, provider, chain, world, valid
):
    build = {"provider": provider, "chain": chain}
    out = decide(world, valid, provider("p", "a", "b"), *(build[kind](*args) for kind, *args in objects))
    status, why, text = accepted(out[oid])
    assert (status, why) == ("True", reason)
    assert text.startswith("served by default/llmgw, but ")
    assert says in text
    assert out[oid]["gateways"] == ["default/llmgw"]


def test_a_provider_waiting_for_discovery_is_accepted_with_discovery_pending(provider, world, valid):
    backends = Backends(probes={("default", "d"): Probe(error="connection refused")})
    out = decide(world, valid, provider("d", discovery={"enabled": True}), backends=backends)
    status, reason, text = accepted(out[p_("d")])
    assert (status, reason) == ("True", findings.DISCOVERY_PENDING)
    assert "(connection refused)" in text


# --- not accepted -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["provider", "chain"])
def test_an_object_no_gateway_binds_is_not_selected(kind, provider, chain, gateway, world, valid):
    obj = (
        provider("x", "a", namespace="other")
        if kind == "provider"
        else chain("x", "a", "b", namespace="other")
    )
    out = decide(world, valid, gateway("gw"), provider("p", "a", "b"), obj)
    (status,) = [s for (_, ns, _), s in out.items() if ns == "other"]
    got, reason, text = accepted(status)
    assert (got, reason) == ("False", findings.NOT_SELECTED)
    assert text.startswith("no LLMGateway binds this object")
    assert status["gateways"] == []


@pytest.mark.parametrize("bound", [True, False], ids=["bound", "not-bound"])
def test_a_disabled_provider_says_disabled_whether_or_not_it_is_bound(bound, provider, gateway, world, valid):
    off = provider("off", "b", enabled=False, namespace="default" if bound else "other")
    out = decide(world, valid, gateway("gw"), provider("on", "a"), off)
    (status,) = [s for (_, _, name), s in out.items() if name == "off"]
    assert accepted(status) == ("True", "Disabled", "spec.enabled is false: the provider renders nothing")


@pytest.mark.parametrize(
    ("chains", "name", "reason", "says"),
    [
        pytest.param(
            [("c", "zz", "a", "errors")],
            "c",
            findings.UNKNOWN_MODEL,
            "spec.model: no enabled provider serves model 'zz'",
            id="unknown-model",
        ),
        pytest.param(
            [("x", "a", "b", "contextWindow"), ("y", "b", "a", "contextWindow")],
            "x",
            findings.FALLBACK_CYCLE,
            "spec.fallbacks: fallback cycle a -> b -> a (contextWindow)",
            id="cycle",
        ),
        pytest.param(
            [("first", "a", "b", "errors"), ("second", "a", "b", "errors")],
            "second",
            findings.CONFLICT,
            "spec.model: FallbackChain default/first already sets the errors fallbacks",
            id="conflict",
        ),
    ],
)
def test_an_excluded_chain_is_not_accepted_with_the_findings_reason(
    chains, name, reason, says, provider, chain, world, valid
):
    objs = [chain(n, model, fallback, trigger=trigger) for n, model, fallback, trigger in chains]
    out = decide(world, valid, provider("p", "a", "b"), *objs)
    status, why, text = accepted(out[c_(name)])
    assert (status, why) == ("False", reason)
    assert text.startswith(says)
    assert out[c_(name)]["gateways"] == []
    assert out[c_(name)]["effectiveOrder"] == []


def test_an_excluded_provider_is_not_accepted_with_the_findings_reason(provider, world, valid):
    svc = provider("s", "m", url=None, endpoint={"service": {"name": "vllm", "port": "http"}})
    out = decide(world, valid, svc, service_ports={("default", "vllm"): {"grpc": 9000}})
    status, reason, text = accepted(out[p_("s")])
    assert (status, reason) == ("False", findings.UNRESOLVED_PORT)
    assert text.startswith("spec.endpoint.service.port: Service default/vllm has no port named 'http'")
    assert out[p_("s")]["gateways"] == []


def test_an_object_one_gateway_excludes_is_not_accepted_though_another_serves_it(
    provider, chain, gateway, world, valid
):
    out = decide(
        world,
        valid,
        gateway("all"),
        gateway("team", selector={"matchLabels": {"team": "x"}}),
        provider("p", "a", labels={"team": "x"}),
        provider("q", "c"),
        chain("c", "c", "a", labels={"team": "x"}),
    )
    status, reason, text = accepted(out[c_("c")])
    assert (status, reason) == ("False", findings.UNKNOWN_MODEL)
    assert "no enabled provider serves model 'c'" in text
    assert out[c_("c")]["gateways"] == ["default/all"]
    assert out[c_("c")]["effectiveOrder"] == ["c", "a"]


def test_an_invalid_object_is_not_accepted_with_every_error(provider, world, valid, generation):
    bad = generation(provider("bad", {"name": "a", "rpm": 0}, type="nope"), 4)
    out = decide(world, valid, bad)
    status = out[p_("bad")]
    assert status["observedGeneration"] == 4
    got, reason, text = accepted(status)
    assert (got, reason) == ("False", findings.INVALID_SPEC)
    assert "spec.type: 'nope' is not allowed" in text
    assert "spec.models[0].rpm" in text
    assert set(status) == {"observedGeneration", "conditions"}


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        pytest.param({"url": "ftp://backend"}, findings.INVALID_ENDPOINT, id="bad-url"),
        pytest.param(
            {"url": "http://b:8000", "service": {"name": "b", "port": 8000}},
            findings.INVALID_ENDPOINT,
            id="url-and-service",
        ),
    ],
)
def test_an_endpoint_error_says_invalid_endpoint(provider, world, valid, endpoint, reason):
    out = decide(world, valid, provider("bad", "a", endpoint=endpoint))
    got, said, text = accepted(out[p_("bad")])
    assert (got, said) == ("False", reason)
    assert "spec.endpoint" in text


def test_an_endpoint_error_beside_another_error_is_invalid_spec(provider, world, valid):
    out = decide(world, valid, provider("bad", {"name": "a", "rpm": 0}, endpoint={"url": "ftp://b"}))
    assert accepted(out[p_("bad")])[:2] == ("False", findings.INVALID_SPEC)


# --- counts and orders ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "probe", "models", "discovered"),
    [
        pytest.param({}, None, 2, None, id="declared"),
        pytest.param({}, Probe(models=("x", "y", "z")), 2, None, id="declared-discovery-off"),
        pytest.param(
            {"discovery": {"enabled": True}}, Probe(models=("a", "x")), 2, ["a", "x"], id="discovery-on"
        ),
        pytest.param({"discovery": {"enabled": True}}, Probe(error="timeout"), 2, None, id="probe-failed"),
        pytest.param({"discovery": {"enabled": True}}, None, 2, None, id="not-probed"),
    ],
)
def test_models_counts_the_declared_models_and_discovered_models_lists_the_probe(
    spec, probe, models, discovered, provider, world, valid
):
    probes = {("default", "p"): probe} if probe is not None else {}
    out = decide(world, valid, provider("p", "a", "b", **spec), backends=Backends(probes=probes))
    assert out[p_("p")]["models"] == models
    assert out[p_("p")].get("discoveredModels") == discovered


@pytest.mark.parametrize(
    ("probe", "models"),
    [(None, 0), (Probe(error="timeout"), 0), (Probe(models=("m1", "m2", "m3")), 3)],
    ids=["not-probed", "probe-failed", "probed"],
)
def test_a_provider_that_declares_no_models_counts_what_discovery_found(
    probe, models, provider, world, valid
):
    probes = {("default", "d"): probe} if probe is not None else {}
    out = decide(world, valid, provider("d", discovery={"enabled": True}), backends=Backends(probes=probes))
    assert out[p_("d")]["models"] == models


def test_effective_order_follows_the_fallbacks_own_chains(provider, chain, world, valid):
    out = decide(world, valid, provider("p", "a", "b", "c"), chain("x", "a", "b"), chain("y", "b", "c"))
    assert out[c_("x")]["effectiveOrder"] == ["a", "b", "c"]
    assert out[c_("y")]["effectiveOrder"] == ["b", "c"]


def test_effective_order_stops_at_the_gateways_max_fallbacks(provider, chain, gateway, world, valid):
    out = decide(
        world,
        valid,
        gateway("gw", maxFallbacks=1),
        provider("p", "a", "b", "c"),
        chain("x", "a", "b"),
        chain("y", "b", "c"),
    )
    assert out[c_("x")]["effectiveOrder"] == ["a", "b"]
