"""The LiteLLM proxy config of one gateway, as deterministic bytes with a hash.

The same resolution always gives the same bytes: entries are sorted, keys are
sorted, and nothing depends on the order objects were read in. Secrets never
appear: every key is an `os.environ/VAR` reference, and the header lists which
Secret each variable comes from, so the hash covers the Deployment's env too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml

from llmgw.api.common import ENV_PREFIX, SecretKeyRef
from llmgw.api.gateway import LLMGateway
from llmgw.api.provider import LLMProvider, ModelSpec
from llmgw.core.resolve import Resolution

# The C dumper is several times faster; without libyaml, the pure one writes the same bytes.
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
MASTER_KEY_SECRET_KEY = "master-key"
REDIS_PASSWORD_ENV = "LLMGW_REDIS_PASSWORD"
NO_KEY = "no-key"
"""Placeholder key for in-cluster OpenAI-compatible servers without auth (the
OpenAI client refuses an empty key); not a secret."""

_PREFIX = {
    "vllm": "hosted_vllm/",
    "ollama": "ollama_chat/",
    "llamacpp": "openai/",
    "openai-compatible": "openai/",
    "openai": "openai/",
    "anthropic": "anthropic/",
}
_OPENAI_V1 = frozenset({"vllm", "llamacpp", "openai-compatible"})


@dataclasses.dataclass(frozen=True, order=True)
class EnvVar:
    """An environment variable of the gateway container, taken from a Secret."""

    name: str
    secret: str
    key: str


@dataclasses.dataclass(frozen=True)
class Rendered:
    """One revision of a gateway's config."""

    text: str
    hash: str
    env: tuple[EnvVar, ...]
    config: Mapping[str, Any]

    @property
    def short_hash(self) -> str:
        return self.hash[:10]


def secret_env_name(ref: SecretKeyRef) -> str:
    """A stable, collision-free variable name for a Secret key."""
    stem = re.sub(r"[^A-Z0-9]+", "_", f"{ref.name}_{ref.key}".upper()).strip("_")
    digest = hashlib.sha256(f"{ref.name}/{ref.key}".encode()).hexdigest()[:8]
    return f"LLMGW_{stem[:80]}_{digest.upper()}"


def api_base(p: LLMProvider, ports: Mapping[str, int] | None = None) -> str | None:
    """The provider's base URL as LiteLLM wants it.

    In-cluster backends are reached by Service DNS, a named port resolved through
    `ports`; OpenAI-style servers get `/v1` unless their URL already has a path.
    """
    endpoint = p.spec.endpoint
    if endpoint is None:
        return None
    if endpoint.url is not None:
        base = endpoint.url.rstrip("/")
    else:
        svc = endpoint.service
        assert svc is not None  # the model guarantees exactly one
        port = svc.port if isinstance(svc.port, int) else (ports or {}).get(svc.port, svc.port)
        namespace = svc.namespace or p.metadata.namespace
        base = f"http://{svc.name}.{namespace}.svc.cluster.local:{port}"
    if p.spec.type in _OPENAI_V1 and urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base


def master_key_ref(gateway: LLMGateway) -> SecretKeyRef:
    """The master key's Secret: the user's, or the one the operator generates."""
    return gateway.spec.master_key_secret_ref or SecretKeyRef(
        name=f"{gateway.metadata.name}-master-key", key=MASTER_KEY_SECRET_KEY
    )


def render(resolution: Resolution, *, cache_enabled: bool = True) -> Rendered:
    """The LiteLLM config for one gateway."""
    gw = resolution.gateway
    spec = gw.spec
    master = master_key_ref(gw)
    env: dict[str, EnvVar] = {MASTER_KEY_ENV: EnvVar(MASTER_KEY_ENV, master.name, master.key)}

    def secret(ref: SecretKeyRef) -> str:
        name = secret_env_name(ref)
        env[name] = EnvVar(name, ref.name, ref.key)
        return ENV_PREFIX + name

    entries: list[tuple[tuple[str, str, str, int], dict[str, Any]]] = []
    for p in resolution.providers:
        ports = None
        if p.spec.endpoint is not None and p.spec.endpoint.service is not None:
            svc = p.spec.endpoint.service
            ports = resolution.service_ports.get((svc.namespace or p.metadata.namespace, svc.name))
        base = api_base(p, ports)
        key = secret(p.spec.api_key_secret_ref) if p.spec.api_key_secret_ref else None
        if key is None and p.spec.type in ("llamacpp", "openai-compatible"):
            key = NO_KEY
        for index, m in enumerate(p.spec.models):
            entries.append(
                (
                    (m.name, p.metadata.namespace, p.metadata.name, index),
                    _deployment(p, m, base, key),
                )
            )
    entries.sort(key=lambda e: e[0])

    router: dict[str, Any] = dict(spec.router_settings)
    router.update(
        routing_strategy=spec.routing_strategy,
        num_retries=spec.num_retries,
        timeout=spec.timeout_seconds,
        max_fallbacks=spec.max_fallbacks,
    )
    aliases_of: dict[str, list[str]] = {}
    for alias, model in resolution.aliases.items():
        aliases_of.setdefault(model, []).append(alias)
    for trigger, field in (
        ("errors", "fallbacks"),
        ("contextWindow", "context_window_fallbacks"),
        ("contentPolicy", "content_policy_fallbacks"),
    ):
        # LiteLLM looks fallbacks up by the name the client asked for, without resolving
        # model_group_alias first, so each alias of a chain's model carries the chain too.
        rows = sorted(
            (name, list(a.fallbacks))
            for a in resolution.chains
            if a.chain.spec.trigger == trigger
            for name in (a.model, *aliases_of.get(a.model, ()))
        )
        if rows:
            router[field] = [{model: targets} for model, targets in rows]
    if resolution.aliases:
        router["model_group_alias"] = dict(resolution.aliases)

    litellm: dict[str, Any] = dict(spec.litellm_settings)
    if spec.cache is not None and spec.cache.redis is not None and cache_enabled:
        redis = spec.cache.redis
        params: dict[str, Any] = {
            "type": "redis",
            "host": redis.host,
            "port": redis.port,
            "ttl": spec.cache.ttl_seconds,
        }
        if redis.password_secret_ref is not None:
            ref = redis.password_secret_ref
            env[REDIS_PASSWORD_ENV] = EnvVar(REDIS_PASSWORD_ENV, ref.name, ref.key)
            params["password"] = ENV_PREFIX + REDIS_PASSWORD_ENV
        litellm.update(cache=True, cache_params=params)

    config: dict[str, Any] = {
        "model_list": [body for _, body in entries],
        "router_settings": router,
        "litellm_settings": litellm,
        "general_settings": {"master_key": ENV_PREFIX + MASTER_KEY_ENV},
    }
    env_vars = tuple(sorted(env.values()))
    text = _header(resolution, env_vars) + yaml.dump(
        config,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Rendered(text=text, hash=digest, env=env_vars, config=config)


def _deployment(p: LLMProvider, m: ModelSpec, base: str | None, key: str | None) -> dict[str, Any]:
    params: dict[str, Any] = dict(m.params)
    params["model"] = _PREFIX[p.spec.type] + m.backend_id
    if base is not None:
        params["api_base"] = base
    if key is not None:
        params["api_key"] = key
    if m.rpm is not None:
        params["rpm"] = m.rpm
    if m.tpm is not None:
        params["tpm"] = m.tpm
    info: dict[str, Any] = {
        "id": f"{p.metadata.namespace}/{p.metadata.name}/{m.name}",
        "llmgw_provider": f"{p.metadata.namespace}/{p.metadata.name}",
    }
    if m.context_window is not None:
        info["max_input_tokens"] = m.context_window
    return {"model_name": m.name, "litellm_params": params, "model_info": info}


def _header(resolution: Resolution, env: tuple[EnvVar, ...]) -> str:
    gw = resolution.gateway.metadata
    lines = [
        f"# LiteLLM proxy config rendered by llmgw for LLMGateway {gw.namespace}/{gw.name}.",
        "# Do not edit: the operator owns it. Environment variables from Secrets:",
    ]
    # With rolloutOnSecretChange, the Secrets' versions are part of the revision: a
    # rotated key makes a new revision, and the revision says which versions it saw.
    versions = resolution.secret_versions if resolution.gateway.spec.rollout_on_secret_change else {}
    generated = resolution.gateway.spec.master_key_secret_ref is None
    for e in env:
        # The generated master key is the operator's own and never rotates under it.
        own = generated and e.name == MASTER_KEY_ENV
        version = None if own else versions.get((gw.namespace, e.secret))
        seen = f" (resourceVersion {version})" if version is not None else ""
        lines.append(f"#   {e.name}: Secret {e.secret}, key {e.key}{seen}")
    return "\n".join(lines) + "\n"
