"""The LiteLLM proxy config of one gateway, as deterministic bytes with a hash.

The same resolution always gives the same bytes: entries are sorted, keys are
sorted, and nothing depends on the order objects were read in. Secrets never
appear: every key is an `os.environ/VAR` reference, and the header lists which
Secret each variable comes from, so the hash covers the Deployment's env too.
Passthrough settings are copied as they are, `os.environ/NAME` values included:
the API layer lets through only the names a gateway declares in `spec.env`.

Each provider type becomes the `litellm_params` the pinned LiteLLM reads for it (read in
its code, `litellm/llms/<provider>/` and `litellm_core_utils/get_llm_provider_logic.py`):
a model prefix, the endpoint as `api_base` (Bedrock: `aws_bedrock_runtime_endpoint`), the
API key, and the per-type settings (`api_version`; `aws_region_name` and the AWS keys;
`vertex_project`, `vertex_location`, `vertex_credentials`). A cloud type without an
endpoint gets no `api_base`: LiteLLM's own default. Without credentials, LiteLLM falls
back to the pod's identity (IRSA / EKS Pod Identity, GKE Workload Identity).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from llmgw.api import env as env_mod
from llmgw.api.common import ENV_PREFIX, SecretKeyRef
from llmgw.api.gateway import LLMGateway
from llmgw.api.provider import LLMProvider, ModelSpec
from llmgw.core import keys
from llmgw.core.resolve import Resolution

# The C dumper is several times faster; without libyaml, the pure one writes the same bytes.
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
MASTER_KEY_SECRET_KEY = "master-key"
REDIS_PASSWORD_ENV = "LLMGW_REDIS_PASSWORD"
DATABASE_URL_ENV = env_mod.DATABASE_URL_ENV
PROMETHEUS_CALLBACK = "prometheus"
METRICS_AUTH_SETTING = "require_auth_for_metrics_endpoint"
"""LiteLLM 1.106 asks for a key on /metrics unless this litellm_setting is false."""
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
    "azure": "azure/",
    "bedrock": "bedrock/",
    "vertex": "vertex_ai/",
    "gemini": "gemini/",
    "mistral": "mistral/",
    "groq": "groq/",
}
"""LiteLLM's model prefix per type; type litellm uses `spec.litellm.provider`."""
CHAT = "chat"
"""LiteLLM's mode when `model_info.mode` is absent; rendered only for other modes, so a chat
model's entry is what it was before modes existed."""


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


def secret_env_name(ref: SecretKeyRef) -> str:
    """A stable, collision-free variable name for a Secret key."""
    stem = re.sub(r"[^A-Z0-9]+", "_", f"{ref.name}_{ref.key}".upper()).strip("_")
    digest = hashlib.sha256(f"{ref.name}/{ref.key}".encode()).hexdigest()[:8]
    return f"LLMGW_{stem[:80]}_{digest.upper()}"


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
        shared = _provider_params(p, resolution.endpoints[keys.of(p)].api_base, secret)
        for index, m in enumerate(p.spec.models):
            entries.append(
                (
                    (m.name, p.metadata.namespace, p.metadata.name, index),
                    _deployment(p, m, shared),
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

    if spec.database is not None:
        # LiteLLM reads DATABASE_URL itself; as a Secret variable of the revision, a rotated
        # URL rolls the gateway like an API key does (rolloutOnSecretChange).
        ref = spec.database.url_secret_ref
        env[DATABASE_URL_ENV] = EnvVar(DATABASE_URL_ENV, ref.name, ref.key)

    litellm: dict[str, Any] = dict(spec.litellm_settings)
    if spec.metrics.enabled:
        litellm["callbacks"] = _with_prometheus(litellm.get("callbacks"))
        # Scrapers (pod annotations, a ServiceMonitor) come without a key; a gateway that
        # wants /metrics behind the master key says so in litellmSettings.
        litellm.setdefault(METRICS_AUTH_SETTING, False)
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
        "general_settings": {**spec.general_settings, "master_key": ENV_PREFIX + MASTER_KEY_ENV},
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


def metrics_need_auth(gateway: LLMGateway) -> bool:
    """Whether the gateway's /metrics asks for a key: only when its litellmSettings say so."""
    value = gateway.spec.litellm_settings.get(METRICS_AUTH_SETTING, False)
    return value is not False  # LiteLLM's own test: anything but false requires auth


def _with_prometheus(callbacks: Any) -> list[Any]:
    """The user's callbacks, in their order and each once, then LiteLLM's Prometheus logger."""
    given = (
        [] if callbacks is None else list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]
    )
    out: list[Any] = []
    for item in [*given, PROMETHEUS_CALLBACK]:
        if item not in out:
            out.append(item)
    return out


def _provider_params(
    p: LLMProvider, base: str | None, secret: Callable[[SecretKeyRef], str]
) -> dict[str, Any]:
    """The litellm_params every model of a provider shares: endpoint, key, per-type settings.

    `secret` registers a Secret key as an environment variable of the gateway and returns
    its `os.environ/` reference: the only way a credential reaches the config."""
    spec = p.spec
    out: dict[str, Any] = {}
    if base is not None:
        # LiteLLM's Bedrock handlers read the runtime endpoint override under its own name
        # (`BaseAWSLLM.get_runtime_endpoint`), and sign for it.
        out["aws_bedrock_runtime_endpoint" if spec.type == "bedrock" else "api_base"] = base
    if spec.api_key_secret_ref is not None:
        out["api_key"] = secret(spec.api_key_secret_ref)
    elif spec.type in ("llamacpp", "openai-compatible"):
        out["api_key"] = NO_KEY
    if spec.azure is not None:
        out["api_version"] = spec.azure.api_version
    if spec.bedrock is not None:
        out["aws_region_name"] = spec.bedrock.region
        aws = spec.bedrock.credentials_secret_ref
        if aws is not None:
            out["aws_access_key_id"] = secret(SecretKeyRef(name=aws.name, key=aws.access_key_id_key))
            out["aws_secret_access_key"] = secret(SecretKeyRef(name=aws.name, key=aws.secret_access_key_key))
            if aws.session_token_key is not None:
                out["aws_session_token"] = secret(SecretKeyRef(name=aws.name, key=aws.session_token_key))
    if spec.vertex is not None:
        out["vertex_project"] = spec.vertex.project
        out["vertex_location"] = spec.vertex.location
        if spec.vertex.credentials_secret_ref is not None:
            # A path or the JSON itself: LiteLLM's `VertexBase.load_auth` parses a string that
            # is not a file as the service account's JSON.
            out["vertex_credentials"] = secret(spec.vertex.credentials_secret_ref)
    return out


def _model(p: LLMProvider, m: ModelSpec) -> str:
    if p.spec.litellm is not None:
        return f"{p.spec.litellm.provider}/{m.backend_id}"
    return _PREFIX[p.spec.type] + m.backend_id


def _deployment(p: LLMProvider, m: ModelSpec, shared: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = dict(m.params)
    params["model"] = _model(p, m)
    params.update(shared)  # typed fields win over the params escape hatch
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
    if m.mode != CHAT:
        info["mode"] = m.mode
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
