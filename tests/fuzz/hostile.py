"""Hypothesis strategies for raw objects of the three kinds: valid, invalid and hostile.

Hostile means what a careless or malicious author could put in a manifest: YAML syntax and
`os.environ/` references where a model name goes, template and shell syntax, unicode that
looks like something else, control characters, values of the wrong type, huge lists and
deeply nested passthrough maps. Names come mostly from small pools, so that objects refer to
each other (chains to models, gateways to namespaces) and the cross-object rules run too.

`json_only=True` gives objects an API server could hold (JSON: string keys, no NaN).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from hypothesis import strategies as st

API_VERSION = "llmgateway.dev/v1alpha1"
KINDS = ("LLMProvider", "FallbackChain", "LLMGateway")

INJECTIONS = (
    "a: b",
    "model_name: evil",
    "\n- x",
    "x\n- model_name: evil",
    "llama\nrouter_settings: {fallbacks: []}",
    "&anchor",
    "*anchor",
    "<<: *anchor",
    "os.environ/SECRET",
    " os.environ/SECRET",
    "os.environ/LITELLM_MASTER_KEY",
    "os.environ/LLMGW_STOLEN_0000",
    "OS.ENVIRON/SECRET",
    "{{ secret }}",
    "{% raw %}",
    "${SECRET}",
    "$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)",
    "`id`",
    "!!python/object/apply:os.system ['id']",
    "!!binary aGk=",
    "? x",
    "- x",
    "# comment",
    "---",
    "...",
    "%YAML 1.1",
    "null",
    "~",
    "true",
    "0x1F",
    "1e3",
    "'",
    '"',
    "\\",
    "x\x00y",
    "x\ry",
    "gpt\u20284o",  # line separator
    "\u202egpt-4o",  # right-to-left override
    "gpt\u200b-4o",  # zero-width space
    "ll\u0430ma",  # a Cyrillic a
    "模型",
    "🦙",
    "a" * 300,
    "",
    " ",
    "<script>alert(1)</script>",
    "a,b",
    "[a]",
    "{a: b}",
    "|",
    ">",
    "@x",
)
VALID_MODELS = ("llama-3.1-8b", "qwen-2.5-7b", "gpt-4o", "m0", "m1", "llama3:8b", "openai/gpt-4o", "x.y@z+1")
SERVED = ("m0", "m1", "m2", "llama3:8b")
"""Model names valid providers declare, few, so that chains find them."""
NAMES = ("a", "b", "vllm", "team-a", "p1", "c1", "gw")
NAMESPACES = ("default", "team-a")
TYPES = ("vllm", "ollama", "llamacpp", "openai", "anthropic", "openai-compatible")
URLS = (
    "http://vllm:8000/v1",
    "https://api.openai.com/v1",
    "http://ollama.models.svc:11434",
    "http://x:8000/v1\n  api_key: os.environ/SECRET",
    "http://x:8000/v1 api_key: os.environ/SECRET",
    "ftp://x",
    "http://",
    "javascript:alert(1)",
    "http://h:8000/v1?api_key=os.environ/SECRET",
    "os.environ/SECRET",
)
PASSTHROUGH_KEYS = (
    "max_parallel_requests",
    "stream_timeout",
    "extra_body",
    "drop_params",
    "allowed_fails",
    "cooldown_time",
    "model",
    "api_key",
    "api_base",
    "fallbacks",
    "model_group_alias",
    "cache",
    "Bad-Key",
    "os.environ/X",
    "",
)


@functools.cache
def hostile_text(*, json_only: bool = False) -> st.SearchStrategy[str]:
    """Injection attempts, or any text (UTF-8: no lone surrogates, which no file or API holds)."""
    del json_only  # the same either way
    alphabet = st.characters(exclude_categories=("Cs",))
    return st.one_of(st.sampled_from(INJECTIONS), st.text(alphabet=alphabet, max_size=24))


@functools.cache
def model_names(*, json_only: bool = False) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(VALID_MODELS), st.sampled_from(VALID_MODELS), hostile_text(json_only=json_only)
    )


@functools.cache
def junk(*, json_only: bool = False) -> st.SearchStrategy[Any]:
    """A value of a type nobody expects where it stands."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=not json_only, allow_infinity=not json_only),
        hostile_text(json_only=json_only),
        st.lists(st.integers(), max_size=3),
    )


def _nest(depth: int, leaf: Any, key: str) -> Any:
    value = leaf
    for i in range(depth):
        value = {key: value} if i % 2 else [value]
    return value


@functools.cache
def json_values(*, json_only: bool = False) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.sampled_from(PASSTHROUGH_KEYS), hostile_text(json_only=json_only))
    if not json_only:
        keys = st.one_of(keys, st.integers())
    scalars = junk(json_only=json_only)
    tree = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=20,
    )
    deep = st.builds(
        _nest, st.integers(min_value=6, max_value=120), scalars, st.sampled_from(PASSTHROUGH_KEYS)
    )
    return st.one_of(tree, deep)


@functools.cache
def passthrough(*, json_only: bool = False) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.sampled_from(PASSTHROUGH_KEYS), hostile_text(json_only=json_only))
    values = json_values(json_only=json_only)
    wide = st.integers(min_value=100, max_value=2000).map(lambda n: {f"k{i}": i for i in range(n)})
    return st.one_of(st.dictionaries(keys, values, max_size=5), wide, values)


@functools.cache
def secret_refs(*, json_only: bool = False) -> st.SearchStrategy[Any]:
    names = st.one_of(st.sampled_from(("openai-key", "k")), hostile_text(json_only=json_only))
    return st.one_of(
        st.fixed_dictionaries({"name": names, "key": st.one_of(st.just("api-key"), hostile_text())}),
        junk(json_only=json_only),
    )


def _huge(n: int, prefix: str) -> list[dict[str, Any]]:
    return [{"name": f"{prefix}{i}"} for i in range(n)]


@functools.cache
def provider_specs(*, json_only: bool = False) -> st.SearchStrategy[Any]:
    text = hostile_text(json_only=json_only)
    any_junk = junk(json_only=json_only)
    names = model_names(json_only=json_only)
    model = st.fixed_dictionaries(
        {"name": names},
        optional={
            "backendModel": st.one_of(names, text),
            "aliases": st.one_of(
                st.lists(names, max_size=3),
                st.integers(min_value=65, max_value=120).map(lambda n: [f"al{i}" for i in range(n)]),
                any_junk,
            ),
            "contextWindow": st.one_of(st.integers(min_value=-5, max_value=300_000), any_junk),
            "rpm": st.one_of(st.integers(min_value=-5, max_value=10_000), any_junk),
            "params": passthrough(json_only=json_only),
            "unknownField": any_junk,
        },
    )
    models = st.one_of(
        st.lists(st.one_of(model, any_junk), max_size=5),
        st.lists(model, min_size=1, max_size=4),
        st.integers(min_value=990, max_value=1100).map(lambda n: _huge(n, "bulk-")),
        any_junk,
    )
    endpoint = st.one_of(
        st.fixed_dictionaries({"url": st.one_of(st.sampled_from(URLS), text)}),
        st.fixed_dictionaries(
            {
                "service": st.fixed_dictionaries(
                    {
                        "name": st.one_of(st.sampled_from(NAMES), text),
                        "port": st.one_of(st.integers(min_value=-1, max_value=70_000), text),
                    },
                    optional={"namespace": st.one_of(st.sampled_from(NAMESPACES), text)},
                )
            }
        ),
        st.just({"url": "http://x:8000", "service": {"name": "x", "port": 80}}),
        st.just({}),
        any_junk,
    )
    spec = st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(TYPES), st.sampled_from(TYPES), text, any_junk)},
        optional={
            "endpoint": endpoint,
            "models": models,
            "apiKeySecretRef": secret_refs(json_only=json_only),
            "enabled": st.one_of(st.booleans(), any_junk),
            "discovery": st.one_of(
                st.fixed_dictionaries(
                    {"enabled": st.booleans()}, optional={"intervalSeconds": st.integers()}
                ),
                any_junk,
            ),
        },
    )
    return st.one_of(spec, spec, spec, any_junk)


@functools.cache
def chain_specs(*, json_only: bool = False) -> st.SearchStrategy[Any]:
    names = model_names(json_only=json_only)
    any_junk = junk(json_only=json_only)
    spec = st.fixed_dictionaries(
        {
            "model": st.one_of(names, any_junk),
            "fallbacks": st.one_of(
                st.lists(names, max_size=4),
                st.integers(min_value=65, max_value=200).map(lambda n: [f"f{i}" for i in range(n)]),
                any_junk,
            ),
        },
        optional={
            "trigger": st.one_of(
                st.sampled_from(("errors", "contextWindow", "contentPolicy")),
                st.sampled_from(("", "all", "ERRORS")),
            )
        },
    )
    return st.one_of(spec, spec, spec, any_junk)


@functools.cache
def gateway_specs(*, json_only: bool = False) -> st.SearchStrategy[Any]:
    text = hostile_text(json_only=json_only)
    any_junk = junk(json_only=json_only)
    labels = st.dictionaries(
        st.one_of(st.sampled_from(("team",)), text), st.one_of(st.just("a"), text), max_size=2
    )
    spec = st.fixed_dictionaries(
        {},
        optional={
            "routerSettings": passthrough(json_only=json_only),
            "litellmSettings": passthrough(json_only=json_only),
            "selector": st.one_of(st.fixed_dictionaries({"matchLabels": labels}), any_junk),
            "namespaces": st.one_of(
                st.sampled_from(({"from": "All"}, {"from": "Same"}, {"from": "Selector"}, {"from": "Any"})),
                any_junk,
            ),
            "replicas": st.one_of(st.integers(min_value=-1, max_value=101), any_junk),
            "routingStrategy": st.one_of(st.sampled_from(("simple-shuffle", "least-busy")), text),
            "maxFallbacks": st.one_of(st.integers(min_value=0, max_value=60), any_junk),
            "masterKeySecretRef": secret_refs(json_only=json_only),
            "cache": st.one_of(
                st.fixed_dictionaries(
                    {"redis": st.fixed_dictionaries({"host": st.one_of(st.just("redis.cache.svc"), text)})},
                    optional={"ttlSeconds": st.one_of(st.integers(), any_junk)},
                ),
                any_junk,
            ),
            "revisionHistoryLimit": st.one_of(st.integers(min_value=0, max_value=200), any_junk),
        },
    )
    return st.one_of(spec, spec, spec, any_junk)


SPECS = {"LLMProvider": provider_specs, "FallbackChain": chain_specs, "LLMGateway": gateway_specs}


@functools.cache
def raw_objects(kind: str | None = None, *, json_only: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """One raw object; its metadata and spec may be anything, its kind is one of ours."""
    kinds = st.just(kind) if kind else st.sampled_from(KINDS)
    text = hostile_text(json_only=json_only)
    any_junk = junk(json_only=json_only)
    meta = st.one_of(
        st.fixed_dictionaries(
            {"name": st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES), text)},
            optional={
                "namespace": st.one_of(st.sampled_from(NAMESPACES), text),
                "labels": st.one_of(st.dictionaries(text, text, max_size=2), any_junk),
                "generation": st.one_of(st.integers(min_value=1, max_value=9), any_junk),
            },
        ),
        any_junk,
    )

    def build(kind: str, api_version: Any, metadata: Any, draw_spec: Any) -> dict[str, Any]:
        return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": draw_spec}

    return kinds.flatmap(
        lambda k: st.builds(
            build,
            st.just(k),
            st.one_of(
                st.just(API_VERSION), st.just(API_VERSION), st.sampled_from(("llmgateway.dev/v1", "v1"))
            ),
            meta,
            SPECS[k](json_only=json_only),
        )
    )


def _not_env(text: str) -> bool:
    return not text.strip().startswith("os.environ/")


@functools.cache
def kind_values(*, json_only: bool = False) -> st.SearchStrategy[Any]:
    """Passthrough values a valid object may hold: any text but an environment reference."""
    strings = hostile_text(json_only=json_only).filter(_not_env)
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), strings
    )
    keys = st.sampled_from(("a", "b_c", "headers", "x"))
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
        max_leaves=8,
    )


@functools.cache
def valid_passthrough(keys: tuple[str, ...], *, json_only: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), kind_values(json_only=json_only), max_size=3)


MODEL_PARAMS = (
    "max_parallel_requests",
    "stream_timeout",
    "extra_body",
    "drop_params",
    "input_cost_per_token",
)
ROUTER = ("allowed_fails", "cooldown_time", "retry_policy", "enable_pre_call_checks")
LITELLM = ("drop_params", "set_verbose", "success_callback", "json_logs")


@functools.cache
def _twists(json_only: bool) -> st.SearchStrategy[Any]:
    """What a field becomes in a twisted object: hostile text, junk, or an environment read
    nested 1 to 12 levels deep."""
    env = st.builds(_nest, st.integers(min_value=1, max_value=12), st.just("os.environ/SECRET"), st.just("a"))
    return st.one_of(
        hostile_text(json_only=json_only), junk(json_only=json_only), json_values(json_only=json_only), env
    )


@st.composite
def _mutated(
    draw: st.DrawFn, raw: dict[str, Any], paths: list[tuple[str, ...]], json_only: bool
) -> dict[str, Any]:
    """The object with one field (or two) made hostile or junk."""
    raw = copy.deepcopy(raw)
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        path = draw(st.sampled_from(paths))
        value = draw(_twists(json_only))
        target: Any = raw
        for step in path[:-1]:
            if isinstance(target, dict):
                target = target.setdefault(step, {})
            elif isinstance(target, list) and target:
                target = target[0]
        if isinstance(target, dict):
            target[path[-1]] = value
        elif isinstance(target, list) and target and isinstance(target[0], dict):
            target[0][path[-1]] = value
    return raw


@functools.cache
def _models(json_only: bool) -> st.SearchStrategy[list[dict[str, Any]]]:
    model = st.fixed_dictionaries(
        {"name": st.sampled_from(SERVED)},
        optional={
            "aliases": st.lists(st.sampled_from(("al-a", "al-b", "x.y@z+1", "m1")), max_size=2, unique=True),
            "contextWindow": st.integers(min_value=1, max_value=300_000),
            "params": valid_passthrough(MODEL_PARAMS, json_only=json_only),
            "backendModel": st.sampled_from(("meta-llama/Llama-3.1-8B-Instruct", "qwen2.5:7b")),
        },
    )
    return st.lists(model, min_size=2, max_size=4, unique_by=lambda m: m["name"])


@st.composite
def providers(draw: st.DrawFn, *, json_only: bool = False, twist: int = 2) -> dict[str, Any]:
    """A valid provider, or (one time in `twist`) one with a hostile twist."""
    raw = {
        "apiVersion": API_VERSION,
        "kind": "LLMProvider",
        "metadata": {"name": draw(st.sampled_from(NAMES)), "namespace": draw(st.sampled_from(NAMESPACES))},
        "spec": {
            "type": draw(st.sampled_from(TYPES)),
            "endpoint": draw(
                st.sampled_from(
                    (
                        {"url": "http://vllm:8000/v1"},
                        {"service": {"name": "vllm", "namespace": "gpu", "port": 8000}},
                    )
                )
            ),
            "models": draw(_models(json_only)),
        },
    }
    if draw(st.booleans()):
        raw["spec"]["apiKeySecretRef"] = {"name": "openai-key", "key": "api-key"}
    if draw(st.integers(min_value=1, max_value=twist)) == 1:
        paths = [
            ("metadata", "name"),
            ("metadata", "namespace"),
            ("spec", "type"),
            ("spec", "endpoint", "url"),
            ("spec", "models", "name"),
            ("spec", "models", "aliases"),
            ("spec", "models", "backendModel"),
            ("spec", "models", "params", "extra_body"),
            ("spec", "models", "params", "headers"),
            ("spec", "apiKeySecretRef", "name"),
            ("spec", "models"),
            ("spec",),
        ]
        raw = draw(_mutated(raw, paths, json_only))
    return raw


CHAIN_POOL = st.sampled_from((*SERVED, *SERVED, *SERVED, "al-a", "al-b", "gpt-9"))


@st.composite
def chains(draw: st.DrawFn, *, json_only: bool = False) -> dict[str, Any]:
    raw = {
        "apiVersion": API_VERSION,
        "kind": "FallbackChain",
        "metadata": {"name": draw(st.sampled_from(NAMES)), "namespace": draw(st.sampled_from(NAMESPACES))},
        "spec": {
            "model": (model := draw(CHAIN_POOL)),
            "fallbacks": draw(
                st.lists(CHAIN_POOL, min_size=1, max_size=3, unique=True).map(
                    lambda fs: [f for f in fs if f != model] or ["gpt-9"]
                )
            ),
            "trigger": draw(st.sampled_from(("errors", "contextWindow", "contentPolicy"))),
        },
    }
    if draw(st.integers(min_value=0, max_value=2)) == 0:  # a third of them
        paths = [
            ("spec", "model"),
            ("spec", "fallbacks"),
            ("spec", "trigger"),
            ("metadata", "name"),
            ("spec",),
        ]
        raw = draw(_mutated(raw, paths, json_only))
    return raw


@st.composite
def gateways(draw: st.DrawFn, *, json_only: bool = False) -> dict[str, Any]:
    raw = {
        "apiVersion": API_VERSION,
        "kind": "LLMGateway",
        "metadata": {"name": draw(st.sampled_from(("gw", "edge"))), "namespace": "default"},
        "spec": {
            "namespaces": {"from": draw(st.sampled_from(("All", "All", "Same")))},
            "routerSettings": draw(valid_passthrough(ROUTER, json_only=json_only)),
            "litellmSettings": draw(valid_passthrough(LITELLM, json_only=json_only)),
        },
    }
    if draw(st.booleans()):
        paths = [
            ("spec", "routerSettings", "allowed_fails"),
            ("spec", "routerSettings", "fallbacks"),
            ("spec", "routerSettings", "model_group_alias"),
            ("spec", "litellmSettings", "success_callback"),
            ("spec", "litellmSettings", "cache_params"),
            ("spec", "masterKeySecretRef"),
            ("spec", "cache"),
            ("spec", "selector"),
            ("spec", "namespaces"),
            ("spec",),
        ]
        raw = draw(_mutated(raw, paths, json_only))
    return raw


@functools.cache
def objects_mixed(*, json_only: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly valid objects with hostile twists, and some hostile through and through."""
    return st.one_of(
        providers(json_only=json_only),
        providers(json_only=json_only),
        providers(json_only=json_only),
        chains(json_only=json_only),
        chains(json_only=json_only),
        gateways(json_only=json_only),
        raw_objects(json_only=json_only),
    )


@functools.cache
def estates(*, json_only: bool = False) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A handful of objects that refer to each other; sometimes no gateway at all."""
    return st.lists(objects_mixed(json_only=json_only), min_size=2, max_size=10)
