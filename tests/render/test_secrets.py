"""Secrets reach LiteLLM only as environment variables: never a Secret's name or data in the config."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmgw.api.common import SecretKeyRef
from llmgw.core import render

OPENAI_KEY = {"name": "sekrit-openai", "key": "the-openai-key"}
CLAUDE_KEY = {"name": "sekrit-claude", "key": "the-claude-key"}
MASTER_KEY = {"name": "sekrit-master", "key": "the-master-key"}
REDIS_KEY = {"name": "sekrit-redis", "key": "the-redis-key"}
SECRET_WORDS = [v for ref in (OPENAI_KEY, CLAUDE_KEY, MASTER_KEY, REDIS_KEY) for v in ref.values()]


def values(node: Any) -> Iterator[Any]:
    """Every scalar in a config, keys included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from values(value)
    elif isinstance(node, list):
        for value in node:
            yield from values(value)
    else:
        yield node


@pytest.fixture
def rendered(provider, gateway, outcome):
    gw = gateway(
        masterKeySecretRef=MASTER_KEY, cache={"redis": {"host": "redis", "passwordSecretRef": REDIS_KEY}}
    )
    return outcome(
        gw,
        provider("openai", "gpt-4o", "gpt-4o-mini", type="openai", url=None, apiKeySecretRef=OPENAI_KEY),
        provider("claude", "claude-sonnet", type="anthropic", url=None, apiKeySecretRef=CLAUDE_KEY),
        provider("vllm", "llama", apiKeySecretRef=OPENAI_KEY),  # one Secret, two providers
    ).rendered


def test_every_key_is_an_environment_reference(rendered):
    env = {e.name for e in rendered.env}
    keys = [m["litellm_params"]["api_key"] for m in rendered.config["model_list"]]
    keys += [rendered.config["general_settings"]["master_key"]]
    keys += [rendered.config["litellm_settings"]["cache_params"]["password"]]
    for key in keys:
        assert key.startswith("os.environ/")
        assert key.removeprefix("os.environ/") in env


def test_no_secret_name_or_key_appears_but_in_the_header(rendered):
    body = [line for line in rendered.text.splitlines() if not line.startswith("#")]
    for word in SECRET_WORDS:
        assert not any(word in line for line in body), word
    assert not any(isinstance(v, str) and word in v for v in values(rendered.config) for word in SECRET_WORDS)


def test_the_header_says_which_secret_each_variable_comes_from(rendered):
    header = [line for line in rendered.text.splitlines() if line.startswith("#")]
    for e in rendered.env:
        assert f"#   {e.name}: Secret {e.secret}, key {e.key}" in header
    assert {(e.secret, e.key) for e in rendered.env} == {
        tuple(ref.values()) for ref in (OPENAI_KEY, CLAUDE_KEY, MASTER_KEY, REDIS_KEY)
    }


def test_one_secret_key_is_one_variable(rendered):
    names = [e.name for e in rendered.env]
    assert len(names) == len(set(names)) == 4
    keys = {m["model_name"]: m["litellm_params"]["api_key"] for m in rendered.config["model_list"]}
    assert keys["gpt-4o"] == keys["gpt-4o-mini"] == keys["llama"] != keys["claude-sonnet"]


def test_the_master_key_is_generated_when_the_gateway_names_none(provider, gateway, outcome):
    out = outcome(gateway("main"), provider("p", "a")).rendered
    assert out.config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}
    assert out.env == (render.EnvVar("LITELLM_MASTER_KEY", "main-master-key", "master-key"),)


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ({"name": "a-b", "key": "c"}, {"name": "a", "key": "b-c"}),
        ({"name": "a.b", "key": "c"}, {"name": "a-b", "key": "c"}),
        ({"name": "x", "key": "API_KEY"}, {"name": "x", "key": "api-key"}),
    ],
)
def test_variable_names_do_not_collide(one, two):
    a, b = render.secret_env_name(SecretKeyRef(**one)), render.secret_env_name(SecretKeyRef(**two))
    assert a != b
    assert all(n.isupper() or n.isdigit() or n == "_" for n in a + b)


def test_no_value_is_a_literal_secret(rendered):
    # The operator never reads a Secret, so the only key-like values are references and the
    # public placeholder for keyless servers.
    for row in rendered.config["model_list"]:
        key = row["litellm_params"].get("api_key")
        assert key is None or key == render.NO_KEY or key.startswith("os.environ/")
