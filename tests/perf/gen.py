"""Deterministic generator of a large llmgw estate, laid out like a GitOps repository.

`write(folder, models=10_000, chains=5_000)` writes a handful of multi-document
YAML files (one gateway, Services with named ports, providers split by team,
chains split by trigger) and returns a summary. The same arguments always give
the same bytes: names and choices are arithmetic on indexes, no randomness.

What it holds, so that the render does real work on every path:
- 10 models per provider; provider types cycle through vllm, ollama, llamacpp,
  openai-compatible, openai and anthropic. In-cluster types use a Service with
  a port number, or (one in four) a named port resolved through a Service
  manifest; openai and anthropic use an API key Secret, as do some
  openai-compatible ones; every 7th provider leaves out `endpoint` (cloud types).
- Models carry backendModel, contextWindow, rpm/tpm and params on a share of
  entries; one in three has an alias; every 50th model name is served by two
  providers (a load-balanced model group).
- Chains are acyclic by construction: chain c is on model 2c and falls back
  only to models with a larger index (so at most one chain per two models).
  Triggers: 70% errors, 20% contextWindow, 10% contentPolicy; fallbacks name
  1 to 3 models, sometimes by alias.
- Objects are spread over 8 team namespaces; the gateway takes `from: All`.

Run directly to write an estate: `python tests/perf/gen.py OUT_DIR [--models N] [--chains M]`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

MODELS_PER_PROVIDER = 10
NAMESPACES = tuple(f"team-{t}" for t in ("search", "chat", "code", "docs", "voice", "vision", "ops", "ml"))
TYPES = ("vllm", "ollama", "llamacpp", "openai-compatible", "openai", "anthropic")
CLOUD = {"openai", "anthropic"}
PORTS = {"vllm": 8000, "ollama": 11434, "llamacpp": 8080, "openai-compatible": 8000}
PROVIDER_FILES = 4
CHAIN_TRIGGERS = ("errors", "contextWindow", "contentPolicy")


def model_name(i: int) -> str:
    return f"model-{i:06d}"


def alias_name(i: int) -> str:
    return f"alias-{i:06d}"


def has_alias(i: int) -> bool:
    return i % 3 == 0


def _namespace(p: int) -> str:
    return NAMESPACES[p % len(NAMESPACES)]


def _provider(p: int, models: int, per: int = MODELS_PER_PROVIDER) -> dict[str, Any]:
    kind = TYPES[p % len(TYPES)]
    ns = _namespace(p)
    spec: dict[str, Any] = {"type": kind}
    named_port = kind not in CLOUD and p % 4 == 1
    if kind in CLOUD:
        if p % 7 != 0:
            url = "https://api.openai.com/v1" if kind == "openai" else "https://api.anthropic.com"
            spec["endpoint"] = {"url": url}
        spec["apiKeySecretRef"] = {"name": f"{kind}-key-{p % 5}", "key": "api-key"}
    elif kind == "openai-compatible" and p % 2 == 0:
        spec["endpoint"] = {"url": f"https://inference-{p}.example.com/v1"}
        spec["apiKeySecretRef"] = {"name": f"inference-{p % 11}", "key": "token"}
    else:
        port: int | str = "http" if named_port else PORTS[kind]
        spec["endpoint"] = {"service": {"name": f"{kind}-{p}", "namespace": "gpu-models", "port": port}}
    entries = []
    first = p * per
    for i in range(first, min(first + per, models)):
        # Every 50th model is also served by the next provider: a load-balanced group.
        name_index = i - per if i % 50 == 5 and i >= per else i
        m: dict[str, Any] = {"name": model_name(name_index)}
        if i % 2 == 0:
            m["backendModel"] = f"org-{i % 13}/Model-{name_index}-Instruct"
        if has_alias(i) and name_index == i:
            m["aliases"] = [alias_name(i)]
        if i % 4 != 3:
            m["contextWindow"] = (4096, 8192, 32768, 131072, 200000)[i % 5]
        if i % 5 == 0:
            m["rpm"] = 100 + i % 900
        if i % 10 == 0:
            m["tpm"] = 100_000 + i
        if i % 6 == 0:
            m["params"] = {"max_parallel_requests": 1 + i % 16, "stream_timeout": 30}
        entries.append(m)
    spec["models"] = entries
    return {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMProvider",
        "metadata": {
            "name": f"{kind}-{p}",
            "namespace": ns,
            "labels": {"tier": "cloud" if kind in CLOUD else "gpu", "team": ns.removeprefix("team-")},
        },
        "spec": spec,
    }


def _services(providers: int) -> Iterator[dict[str, Any]]:
    for p in range(providers):
        kind = TYPES[p % len(TYPES)]
        if kind not in CLOUD and p % 4 == 1 and not (kind == "openai-compatible" and p % 2 == 0):
            yield {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"{kind}-{p}", "namespace": "gpu-models"},
                "spec": {
                    "selector": {"app": f"{kind}-{p}"},
                    "ports": [{"name": "http", "port": PORTS[kind], "targetPort": PORTS[kind]}],
                },
            }


def _served(i: int, per: int = MODELS_PER_PROVIDER) -> bool:
    """Whether model i's own name is served (load-balanced duplicates reuse another's)."""
    return not (i % 50 == 5 and i >= per)


def _chain(c: int, models: int, per: int = MODELS_PER_PROVIDER) -> dict[str, Any]:
    # One chain per even model index (never a load-balanced duplicate, which are odd),
    # so no two chains share a (model, trigger) slot; fallbacks only go upwards.
    primary = 2 * c
    trigger = CHAIN_TRIGGERS[0] if c % 10 < 7 else CHAIN_TRIGGERS[1] if c % 10 < 9 else CHAIN_TRIGGERS[2]
    count = 1 + c % 3
    fallbacks: list[str] = []
    j = primary
    for k in range(count):
        j += 1 + (c + 7 * k) % 11
        while not _served(j, per):
            j += 1
        if j >= models:
            break
        fallbacks.append(alias_name(j) if has_alias(j) and k % 2 == 1 else model_name(j))
    if not fallbacks:  # the last chains: the next served model up
        fallbacks.append(model_name(next(j for j in range(primary + 1, models) if _served(j, per))))
    ns = NAMESPACES[c % len(NAMESPACES)]
    spec: dict[str, Any] = {"model": model_name(primary), "fallbacks": fallbacks}
    if trigger != "errors" or c % 2:
        spec["trigger"] = trigger
    return {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "FallbackChain",
        "metadata": {"name": f"chain-{c:05d}", "namespace": ns, "labels": {"team": ns.removeprefix("team-")}},
        "spec": spec,
    }


def _gateway(cache: bool = True) -> dict[str, Any]:
    gw: dict[str, Any] = {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMGateway",
        "metadata": {"name": "main", "namespace": "ai-platform"},
        "spec": {
            "namespaces": {"from": "All"},
            "routingStrategy": "simple-shuffle",
            "numRetries": 2,
            "timeoutSeconds": 60,
            "maxFallbacks": 5,
            "cache": {
                "redis": {"host": "redis.cache.svc", "passwordSecretRef": {"name": "redis", "key": "pw"}}
            },
            "routerSettings": {"allowed_fails": 3, "cooldown_time": 30},
            "litellmSettings": {"drop_params": True},
        },
    }
    if not cache:  # an operator leaves out a Redis it cannot reach; `llmgw render` cannot probe
        del gw["spec"]["cache"]
    return gw


def _dump(path: Path, docs: list[dict[str, Any]], comment: str) -> int:
    text = f"# {comment}\n" + yaml.dump_all(
        docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096
    )
    path.write_text(text, encoding="utf-8")
    return len(text.encode())


def write(
    folder: Path,
    models: int = 10_000,
    chains: int = 5_000,
    *,
    models_per_provider: int = MODELS_PER_PROVIDER,
    cache: bool = True,
) -> dict[str, int]:
    """Write the estate under `folder` (created; existing files of the same names replaced).

    `models_per_provider` and `cache` (the gateway's Redis) change the shape; the defaults are
    the estate described above, byte for byte."""
    if models < 50 or chains > models // 2:
        raise ValueError("at least 50 models, and at most one chain per two models")
    folder.mkdir(parents=True, exist_ok=True)
    per = models_per_provider
    providers = -(-models // per)
    size = _dump(folder / "gateway.yaml", [_gateway(cache)], "The platform gateway; it serves every team.")
    services = list(_services(providers))
    size += _dump(folder / "services.yaml", services, "Services with named ports for in-cluster backends.")
    per_file = -(-providers // PROVIDER_FILES)
    for f in range(PROVIDER_FILES):
        docs = [_provider(p, models, per) for p in range(f * per_file, min((f + 1) * per_file, providers))]
        size += _dump(folder / f"providers-{f}.yaml", docs, f"Providers, part {f + 1} of {PROVIDER_FILES}.")
    by_trigger: dict[str, list[dict[str, Any]]] = {t: [] for t in CHAIN_TRIGGERS}
    for c in range(chains):
        doc = _chain(c, models, per)
        by_trigger[doc["spec"].get("trigger", "errors")].append(doc)
    for trigger, docs in by_trigger.items():
        size += _dump(folder / f"chains-{trigger}.yaml", docs, f"Fallback chains triggered by {trigger}.")
    return {
        "models": models,
        "providers": providers,
        "services": len(services),
        "chains": chains,
        "files": 2 + PROVIDER_FILES + len(CHAIN_TRIGGERS),
        "bytes": size,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--chains", type=int, default=5_000)
    args = ap.parse_args(argv)
    print(write(args.folder, args.models, args.chains))
    return 0


if __name__ == "__main__":
    sys.exit(main())
