"""Rules for the free-form maps passed through to LiteLLM.

Passthrough maps are the escape hatch for LiteLLM settings without a typed
field. They may not reach the keys the operator owns, nor smuggle in an
`os.environ/` reference that would read the gateway pod's environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

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


def problems(value: Mapping[str, Any], reserved: frozenset[str], owner_hint: str) -> Iterator[str]:
    """Yield one sentence per problem in a passthrough map, or nothing when it is fine."""
    for key in sorted(value):
        if not isinstance(key, str) or not _KEY.match(key):
            yield f"key {key!r} is not a LiteLLM setting name (lower snake_case)"
        elif key in reserved:
            yield f"key {key!r} is owned by the operator; {owner_hint}"
    yield from _values(value, "", 0)


def _values(value: Any, path: str, depth: int) -> Iterator[str]:
    if depth > MAX_DEPTH:
        yield f"value at {path or '.'} nests deeper than {MAX_DEPTH} levels"
        return
    if isinstance(value, str):
        if value.strip().startswith(ENV_PREFIX):
            yield (
                f"value at {path or '.'} reads the gateway's environment ({ENV_PREFIX}...); "
                "use a typed secret reference instead"
            )
    elif isinstance(value, Mapping):
        for k in sorted(value, key=str):
            yield from _values(value[k], f"{path}.{k}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _values(item, f"{path}[{i}]", depth + 1)
