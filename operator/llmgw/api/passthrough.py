"""Rules for the free-form maps passed through to LiteLLM.

Passthrough maps are the escape hatch for LiteLLM settings without a typed
field. They may not reach the keys the operator owns, nor smuggle in an
`os.environ/` reference that would read the gateway pod's environment, except
for a variable the gateway declares itself (`spec.env`, `spec.envFrom`): a
callback's credentials, never the master key or the API keys the operator renders.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from llmgw.api import env
from llmgw.api.common import ENV_PREFIX

KEY_PATTERN = r"^[a-z][a-z0-9_]*$"
_KEY = re.compile(KEY_PATTERN)
MAX_DEPTH = 8

# litellm_params owned by the operator on every deployment.
RESERVED_PARAMS = frozenset({"model", "api_base", "base_url", "api_key", "rpm", "tpm"})
# router_settings owned by typed fields on the gateway or by FallbackChain objects.
RESERVED_ROUTER_SETTINGS = frozenset(
    {
        "routing_strategy",
        "num_retries",
        "timeout",
        "max_fallbacks",
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "default_fallbacks",
        "model_group_alias",
        "model_list",
        "redis_host",
        "redis_port",
        "redis_password",
    }
)
# litellm_settings owned by typed fields or FallbackChain objects.
RESERVED_LITELLM_SETTINGS = frozenset(
    {
        "cache",
        "cache_params",
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "default_fallbacks",
        "num_retries",
        "request_timeout",
        "model_group_alias",
    }
)


# general_settings the operator renders: the master key (from LITELLM_MASTER_KEY) and the
# database (LiteLLM reads DATABASE_URL, which spec.database.urlSecretRef sets; a
# general_settings.database_url would win over it and could put a password in a ConfigMap).
RESERVED_GENERAL_SETTINGS = frozenset({"master_key", "database_url"})

Declared = Callable[[str], bool]
"""Whether the gateway declares an environment variable of this name."""


def env_reference(value: str) -> str | None:
    """NAME of a value `os.environ/NAME`, as LiteLLM reads it; None for any other value."""
    text = value.strip()
    return text.removeprefix(ENV_PREFIX) if text.startswith(ENV_PREFIX) else None


def problems(
    value: Mapping[str, Any],
    reserved: frozenset[str],
    owner_hint: str,
    declared: Declared | None = None,
) -> Iterator[str]:
    """Yield one sentence per problem in a passthrough map, or nothing when it is fine.

    A value `os.environ/NAME` is fine only when `declared(NAME)`; with no `declared` (a
    provider's params, which several gateways may serve), never.
    """
    for key in sorted(value):
        if not isinstance(key, str) or not _KEY.match(key):
            yield f"key {key!r} is not a LiteLLM setting name (lower snake_case)"
        elif key in reserved:
            yield f"key {key!r} is owned by the operator; {owner_hint}"
    yield from _values(value, "", 0, declared)


def _values(value: Any, path: str, depth: int, declared: Declared | None) -> Iterator[str]:
    if depth > MAX_DEPTH:
        yield f"value at {path or '.'} nests deeper than {MAX_DEPTH} levels"
        return
    if isinstance(value, str):
        name = env_reference(value)
        if name is not None:
            yield from _env_reference(name, path or ".", declared)
    elif isinstance(value, Mapping):
        for k in sorted(value, key=str):
            yield from _values(value[k], f"{path}.{k}", depth + 1, declared)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _values(item, f"{path}[{i}]", depth + 1, declared)


def _env_reference(name: str, path: str, declared: Declared | None) -> Iterator[str]:
    if declared is None:
        yield (
            f"value at {path} reads the gateway's environment ({ENV_PREFIX}...); "
            "use a typed secret reference instead"
        )
    elif env.reserved(name):
        yield (
            f"value at {path} reads {name!r} ({ENV_PREFIX}{name}), a variable the operator owns; "
            "a passthrough setting may read only variables the gateway declares in spec.env"
        )
    elif not declared(name):
        yield (
            f"value at {path} reads {name!r} from the gateway's environment ({ENV_PREFIX}{name}), "
            f"which the gateway does not declare; declare {name} in spec.env (or in spec.envFrom, "
            "by its prefix), or use a typed secret reference"
        )
