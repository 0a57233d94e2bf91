"""What must hold of every render and every finding, whatever went in.

A render is safe when its bytes say exactly what the operator meant (the YAML read back is
the config it built: no YAML syntax smuggled in through a string), every value LiteLLM would
read from the environment is one the operator put there, and every model name, alias and
fallback in it is one that a valid provider bound to the gateway declares. LiteLLM resolves
`os.environ/` in values, not in keys, so keys are checked against the declared names instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml

from llmgw.api.provider import LLMProvider
from llmgw.core import objects, pipeline
from llmgw.core.estate import Estate
from llmgw.core.findings import Finding

OWN_ENV = re.compile(r"os\.environ/(LLMGW_[A-Z0-9_]+|LITELLM_MASTER_KEY)")
ENV_FIELDS = {"api_key", "master_key", "password"}
"""The only keys whose values the operator points at the environment."""
FALLBACK_FIELDS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def plain(value: Any) -> Any:
    """Tuples as lists, NaN as a marker: a config as YAML gives it back."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "<nan>"
    return value


def values(value: Any, key: Any = None) -> Iterator[tuple[Any, str]]:
    """(the key it stands under, string) for every string value in a config."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from values(v, k)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from values(v, key)
    elif isinstance(value, str):
        yield key, value


def assert_safe_render(est: Estate, outcome: pipeline.Outcome) -> None:
    rendered = outcome.rendered
    config = yaml.load(rendered.text, Loader=LOADER)
    assert plain(config) == plain(rendered.config), "the YAML read back differs from the config built"
    bound = outcome.resolution.providers
    assert {id(p) for p in bound} <= {id(p) for p in est.providers}, "a provider not parsed as valid"
    assert_safe_config(config, bound)


def assert_safe_config(config: Mapping[str, Any], providers: Iterable[LLMProvider]) -> None:
    """A config (read back from YAML) reads only the operator's own environment variables,
    and names only models, aliases and providers that these valid providers declare."""
    for key, value in values(config):
        if value.strip().startswith("os.environ/"):
            assert OWN_ENV.fullmatch(value), f"{key}: {value!r} reads the environment"
            assert key in ENV_FIELDS, f"{key}: {value!r} reads the environment"
    providers = list(providers)
    names = {m.name for p in providers for m in p.spec.models}
    aliases = {a for p in providers for m in p.spec.models for a in m.aliases}
    owners = {f"{p.metadata.namespace}/{p.metadata.name}" for p in providers}
    for entry in config["model_list"]:
        assert entry["model_name"] in names, entry["model_name"]
        assert entry["model_info"]["llmgw_provider"] in owners
    router = config["router_settings"]
    for field in FALLBACK_FIELDS:
        for row in router.get(field, ()):
            for model, targets in row.items():
                assert model in names | aliases, (field, model)
                assert all(t in names | aliases for t in targets), (field, targets)
    for alias, model in (router.get("model_group_alias") or {}).items():
        assert alias in aliases, alias
        assert model in names, model
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}


def assert_sentence(f: Finding) -> None:
    """A finding says, in words, which object and field and what is wrong."""
    assert f.kind in objects.KINDS
    assert isinstance(f.message, str)
    assert len(f.message.split()) >= 2, f.message
    assert "Traceback" not in f.message
    assert "pydantic" not in f.message
    assert str(f).startswith(f"{f.kind} {f.namespace}/{f.name}")
