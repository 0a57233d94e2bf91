"""Properties of the render over random sets of objects, valid or not.

Whatever users apply, the config is safe to roll out: no fallback cycle, no
fallback to a model nobody serves or of another mode, the same bytes whatever
the order the objects were read in, and every object either rendered or named
in a finding.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from llmgw.core import estate, pipeline

API_VERSION = "llmgateway.dev/v1alpha1"
MODELS = [f"m{i}" for i in range(6)]
ALIASES = ["x0", "x1", "x2"]
UNKNOWN = ["zz"]
NAMES = MODELS + ALIASES + UNKNOWN
TYPES = ["vllm", "ollama", "llamacpp", "openai", "anthropic", "openai-compatible"]
FIELDS = {
    "errors": "fallbacks",
    "contextWindow": "context_window_fallbacks",
    "contentPolicy": "content_policy_fallbacks",
}
TRIGGERS = list(FIELDS)
FALLBACK_FIELDS = list(FIELDS.values())

fast = settings(max_examples=200, deadline=None)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Strategies are built once: building them inside a draw costs more than the render.
namespaces = st.sampled_from(["default", "team"])
labels = st.sampled_from([{}, {"team": "a"}])
model_specs = st.fixed_dictionaries(
    {"name": st.sampled_from(MODELS)},
    optional={
        # may clash with model names, the model's own included (then the object is invalid)
        "aliases": st.lists(st.sampled_from(ALIASES + MODELS[:2]), unique=True, min_size=1, max_size=2),
        "contextWindow": st.integers(min_value=1, max_value=200_000),
        "rpm": st.integers(min_value=1, max_value=1000),
        # few modes, so that most links share one and some do not (groups may mix them)
        "mode": st.sampled_from(["chat", "embedding"]),
    },
)
endpoints = st.sampled_from(
    [
        None,
        {"url": "http://backend:8000"},
        {"url": "https://backend.example.com/v1"},
        {"service": {"name": "vllm", "namespace": "gpu", "port": 8000}},
        {"service": {"name": "svc", "port": "http"}},  # a named port of a known Service
        {"service": {"name": "gone", "port": "http"}},  # of an unknown one
    ]
)
keys = st.sampled_from([None, {"name": "one-key", "key": "api-key"}, {"name": "two-key", "key": "api-key"}])
provider_specs = st.fixed_dictionaries(
    {
        "type": st.sampled_from(TYPES),
        "models": st.lists(model_specs, min_size=1, max_size=4, unique_by=lambda m: m["name"]),
        "enabled": st.sampled_from([True, True, True, False]),
        "endpoint": endpoints,
        "apiKeySecretRef": keys,
    }
).map(lambda spec: {k: v for k, v in spec.items() if v is not None})
chain_names = st.sampled_from(MODELS * 3 + ALIASES + UNKNOWN)  # mostly served names
chain_specs = st.fixed_dictionaries(
    {
        "model": chain_names,
        # the model itself may be among its fallbacks: then the object is invalid
        "fallbacks": st.lists(chain_names, unique=True, min_size=1, max_size=4),
        "trigger": st.sampled_from(TRIGGERS),
    }
)
gateway_specs = st.fixed_dictionaries(
    {
        "namespaces": st.sampled_from([{"from": "Same"}, {"from": "All"}]),
        "maxFallbacks": st.integers(min_value=1, max_value=6),
    },
    optional={"selector": st.just({"matchLabels": {"team": "a"}})},
)


def objects(kind: str, prefix: str, count: int, specs: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Names come from a small pool, so some objects are defined twice (a finding too).
    return st.builds(
        lambda i, namespace, labels, spec: {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": {"name": f"{prefix}{i}", "namespace": namespace, "labels": labels},
            "spec": spec,
        },
        st.integers(0, count),
        namespaces,
        labels,
        specs,
    )


object_sets = st.builds(
    lambda ps, cs, gws: [*ps, *cs, *gws],
    st.lists(objects("LLMProvider", "p", 9, provider_specs), max_size=6),
    st.lists(objects("FallbackChain", "c", 19, chain_specs), max_size=10),
    st.lists(
        st.builds(
            lambda spec: {
                "apiVersion": API_VERSION,
                "kind": "LLMGateway",
                "metadata": {"name": "gw"},
                "spec": spec,
            },
            gateway_specs,
        ),
        max_size=1,
    ),
)


SERVICE_PORTS = {("default", "svc"): {"http": 8000}, ("team", "svc"): {"http": 8080}}


def check(raws: list[dict[str, Any]]) -> tuple[list[pipeline.Outcome], tuple[Any, ...]]:
    return pipeline.check(estate.build(raws, service_ports=SERVICE_PORTS))


def config_of(outcome: pipeline.Outcome) -> dict[str, Any]:
    """The config as LiteLLM reads it: from the rendered text, not from the render's own dict."""
    config: dict[str, Any] = yaml.load(outcome.rendered.text, Loader=LOADER)
    assert config == outcome.rendered.config
    return config


def rendered_fallbacks(config: dict[str, Any], field: str) -> dict[str, list[str]]:
    return {m: t for row in config["router_settings"].get(field, []) for m, t in row.items()}


def acyclic(g: dict[str, list[str]]) -> bool:
    """Kahn's algorithm: a graph is acyclic when every node can be taken in order."""
    nodes = set(g) | {t for targets in g.values() for t in targets}
    incoming = dict.fromkeys(nodes, 0)
    for targets in g.values():
        for t in targets:
            incoming[t] += 1
    ready = [n for n, c in incoming.items() if c == 0]
    taken = 0
    while ready:
        node = ready.pop()
        taken += 1
        for t in g.get(node, ()):
            incoming[t] -= 1
            if incoming[t] == 0:
                ready.append(t)
    return taken == len(nodes)


@fast
@given(object_sets)
def test_the_rendered_fallbacks_have_no_cycle(raws):
    outcomes, _ = check(raws)
    for o in outcomes:
        for field in FALLBACK_FIELDS:
            assert acyclic(rendered_fallbacks(config_of(o), field))


@fast
@given(object_sets)
def test_every_rendered_name_is_served_by_an_enabled_provider(raws):
    outcomes, _ = check(raws)
    declared_enabled = {
        m["name"]
        for r in raws
        if r["kind"] == "LLMProvider" and r["spec"]["enabled"]
        for m in r["spec"]["models"]
    }
    for o in outcomes:
        config = config_of(o)
        served = {m["model_name"] for m in config["model_list"]}
        assert served <= declared_enabled
        aliases = config["router_settings"].get("model_group_alias", {})
        assert set(aliases.values()) <= served
        assert not set(aliases) & served
        for field in FALLBACK_FIELDS:
            for source, targets in rendered_fallbacks(config, field).items():
                assert source in served or aliases.get(source) in served
                assert targets
                assert set(targets) <= served
                assert len(set(targets)) == len(targets)
                assert aliases.get(source, source) not in targets


def groups(o: pipeline.Outcome) -> tuple[dict[str, set[str]], dict[str, set[int]]]:
    """Each rendered model name's modes and declared windows, from the providers rendered."""
    modes: dict[str, set[str]] = defaultdict(set)
    windows: dict[str, set[int]] = defaultdict(set)
    for p in o.resolution.providers:
        for m in p.spec.models:
            modes[m.name].add(m.mode)
            if m.context_window is not None:
                windows[m.name].add(m.context_window)
    return modes, windows


@fast
@given(object_sets)
def test_every_rendered_fallback_shares_a_mode_with_its_model(raws):
    outcomes, _ = check(raws)
    for o in outcomes:
        config = config_of(o)
        aliases = config["router_settings"].get("model_group_alias", {})
        modes, _ = groups(o)
        for field in FALLBACK_FIELDS:
            for source, targets in rendered_fallbacks(config, field).items():
                model = aliases.get(source, source)
                for t in targets:
                    assert modes[model] & modes[t], (model, t)


@fast
@given(object_sets)
def test_a_context_window_link_warns_exactly_when_not_known_to_be_larger(raws):
    outcomes, found = check(raws)
    warned = {(f.namespace, f.name, f.field) for f in found if f.reason == "NoLargerContextWindow"}
    for o in outcomes:
        res = o.resolution
        _, windows = groups(o)
        for a in res.chains:
            if a.chain.spec.trigger != "contextWindow":
                continue
            meta = a.chain.metadata
            mine = min(windows[a.model], default=None)
            seen: set[str] = set()
            for i, target in enumerate(a.chain.spec.fallbacks):
                model = target if target in res.models else res.aliases.get(target)
                if model not in a.fallbacks or model in seen:
                    continue  # dropped (a repeat under another name too), and named for that
                seen.add(model)
                theirs = min(windows[model], default=None)
                larger = mine is not None and theirs is not None and theirs > mine
                assert ((meta.namespace, meta.name, f"spec.fallbacks[{i}]") in warned) != larger


@fast
@given(st.data())
def test_the_same_objects_in_any_order_give_the_same_bytes(data):
    raws = data.draw(object_sets)
    shuffled = data.draw(st.permutations(raws))
    outcomes, found = check(raws)
    again, found_again = check(shuffled)
    assert [(o.rendered.hash, o.rendered.text) for o in outcomes] == [
        (o.rendered.hash, o.rendered.text) for o in again
    ]
    assert found == found_again


@fast
@given(object_sets)
def test_every_object_is_rendered_or_named_in_a_finding(raws):
    outcomes, found = check(raws)  # never raises
    named = {(f.kind, f.namespace, f.name) for f in found}
    rendered: set[tuple[str, str, str]] = set()
    disabled: set[tuple[str, str, str]] = set()
    for o in outcomes:
        res = o.resolution
        config = config_of(o)
        deployments = defaultdict(list)
        for row in config["model_list"]:
            deployments[row["model_info"]["llmgw_provider"]].append(row["model_name"])
        for p in res.providers:
            key = f"{p.metadata.namespace}/{p.metadata.name}"
            assert sorted(deployments.pop(key, [])) == sorted(m.name for m in p.spec.models)
            rendered.add(("LLMProvider", p.metadata.namespace, p.metadata.name))
        assert not deployments  # nothing rendered from anything else
        # `enabled: false` is the user's own word: kept, rendered from nothing, listed as disabled
        disabled |= {("LLMProvider", p.metadata.namespace, p.metadata.name) for p in res.disabled}
        for trigger, field in FIELDS.items():
            rows = rendered_fallbacks(config, field)
            for a in res.chains:
                if a.chain.spec.trigger == trigger:
                    assert rows[a.model] == list(a.fallbacks)
                    meta = a.chain.metadata
                    rendered.add(("FallbackChain", meta.namespace, meta.name))
                    if a.dropped:  # a fallback left out of a rendered chain is named too
                        assert ("FallbackChain", meta.namespace, meta.name) in named
        gw = res.gateway.metadata
        rendered.add(("LLMGateway", gw.namespace, gw.name))
    for raw in raws:
        meta = raw["metadata"]
        key = (raw["kind"], meta.get("namespace", "default"), meta["name"])
        assert key in rendered or key in named or key in disabled, key
