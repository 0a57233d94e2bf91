"""router_settings, litellm_settings and general_settings of a gateway's config."""

from __future__ import annotations

import hashlib

import pytest

from llmgw.core import estate, pipeline, render


def router(out) -> dict:
    return out.rendered.config["router_settings"]


def test_the_three_fallback_lists_by_trigger(provider, chain, outcome):
    out = outcome(
        provider("p", "a", "b", "c"),
        chain("errors", "a", "b", "c"),
        chain("errors-b", "b", "c"),
        chain("window", "a", "c", trigger="contextWindow"),
        chain("policy", "c", "a", trigger="contentPolicy"),
    )
    assert router(out)["fallbacks"] == [{"a": ["b", "c"]}, {"b": ["c"]}]
    assert router(out)["context_window_fallbacks"] == [{"a": ["c"]}]
    assert router(out)["content_policy_fallbacks"] == [{"c": ["a"]}]


def test_without_chains_no_fallback_list_is_rendered(provider, outcome):
    settings = router(outcome(provider("p", "a")))
    assert not {"fallbacks", "context_window_fallbacks", "content_policy_fallbacks"} & set(settings)


def test_gateway_defaults(provider, gateway, outcome):
    settings = router(outcome(gateway(), provider("p", "a")))
    assert {k: settings[k] for k in ("routing_strategy", "num_retries", "timeout", "max_fallbacks")} == {
        "routing_strategy": "simple-shuffle",
        "num_retries": 2,
        "timeout": 60,
        "max_fallbacks": 5,
    }


def test_routing_retries_and_timeouts_from_the_gateway(provider, gateway, outcome):
    gw = gateway(routingStrategy="least-busy", numRetries=4, timeoutSeconds=120, maxFallbacks=3)
    settings = router(outcome(gw, provider("p", "a")))
    assert settings["routing_strategy"] == "least-busy"
    assert settings["num_retries"] == 4
    assert settings["timeout"] == 120
    assert settings["max_fallbacks"] == 3


def test_passthrough_settings_are_rendered(provider, gateway, outcome):
    gw = gateway(
        routerSettings={"allowed_fails": 3, "cooldown_time": 30, "retry_policy": {"TimeoutErrorRetries": 1}},
        litellmSettings={"drop_params": True, "json_logs": True},
    )
    out = outcome(gw, provider("p", "a"))
    assert router(out)["allowed_fails"] == 3
    assert router(out)["cooldown_time"] == 30
    assert router(out)["retry_policy"] == {"TimeoutErrorRetries": 1}
    assert out.rendered.config["litellm_settings"] == {"drop_params": True, "json_logs": True}


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"routerSettings": {"fallbacks": [{"a": ["b"]}]}}, "spec.routerSettings"),
        ({"routerSettings": {"num_retries": 9}}, "spec.routerSettings"),
        ({"litellmSettings": {"cache": True}}, "spec.litellmSettings"),
        ({"litellmSettings": {"success_callback": ["os.environ/SECRET"]}}, "spec.litellmSettings"),
    ],
)
def test_passthrough_may_not_take_what_the_operator_owns(gateway, check, settings, field):
    outcomes, found = check(gateway(**settings))
    assert outcomes == []
    assert [f.field for f in found] == [field]


def test_cache_in_redis(provider, gateway, outcome):
    gw = gateway(
        cache={
            "redis": {
                "host": "redis.cache.svc",
                "port": 6380,
                "passwordSecretRef": {"name": "redis", "key": "pw"},
            },
            "ttlSeconds": 600,
        }
    )
    out = outcome(gw, provider("p", "a"))
    litellm = out.rendered.config["litellm_settings"]
    assert litellm["cache"] is True
    assert litellm["cache_params"] == {
        "type": "redis",
        "host": "redis.cache.svc",
        "port": 6380,
        "ttl": 600,
        "password": "os.environ/LLMGW_REDIS_PASSWORD",
    }
    assert render.EnvVar("LLMGW_REDIS_PASSWORD", "redis", "pw") in out.rendered.env


def test_cache_without_a_password(provider, gateway, outcome):
    out = outcome(gateway(cache={"redis": {"host": "redis"}}), provider("p", "a"))
    assert out.rendered.config["litellm_settings"]["cache_params"] == {
        "type": "redis",
        "host": "redis",
        "port": 6379,
        "ttl": 3600,
    }
    assert [e.name for e in out.rendered.env] == ["LITELLM_MASTER_KEY"]


def test_cache_left_out_while_redis_is_unavailable(provider, gateway):
    raws = [gateway(cache={"redis": {"host": "redis", "passwordSecretRef": {"name": "r", "key": "k"}}})]
    raws.append(provider("p", "a"))
    state = estate.build(raws)
    (gw,) = state.gateways
    with_cache = pipeline.run(state, gw)
    without = pipeline.run(state, gw, cache_enabled=False)
    assert "cache" not in without.rendered.config["litellm_settings"]
    assert "LLMGW_REDIS_PASSWORD" not in without.rendered.text
    assert without.rendered.hash != with_cache.rendered.hash


def test_no_cache_by_default(provider, outcome):
    assert outcome(provider("p", "a")).rendered.config["litellm_settings"] == {}


def test_the_hash_is_the_sha256_of_the_text(provider, chain, outcome):
    out = outcome(provider("p", "a", "b"), chain("c", "a", "b"))
    assert out.rendered.hash == hashlib.sha256(out.rendered.text.encode()).hexdigest()


def test_any_change_of_input_changes_the_hash(provider, gateway, outcome):
    base = outcome(gateway(), provider("p", "a")).rendered.hash
    assert outcome(gateway(numRetries=3), provider("p", "a")).rendered.hash != base
    assert outcome(gateway(), provider("p", {"name": "a", "rpm": 5})).rendered.hash != base
    assert outcome(gateway(replicas=5), provider("p", "a")).rendered.hash == base  # not in the config


def test_the_header_names_the_gateway(provider, gateway, outcome):
    text = outcome(gateway("main", namespace="ai"), provider("p", "a", namespace="ai")).rendered.text
    assert text.startswith("# LiteLLM proxy config rendered by llmgw for LLMGateway ai/main.\n")
