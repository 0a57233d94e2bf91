"""What `llmgw demo` and `llmgw demo get` print: the answer to `kubectl get llm`, and how to try it.

Pure: the objects read from the embedded API in, text out. Gateways with their
revision, readiness and pods; providers with their acceptance and backend;
chains with their effective order (from their status, as the operator computed
it); the last rollout or rollback from the gateway's history and its `RolledBack`
condition; and ready-to-paste `curl` commands through the local Service, with the
gateway's master key (the generated `<gateway>-master-key` Secret's value).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from llmgw.core import revisions
from llmgw.demo import kubelet


@dataclasses.dataclass(frozen=True)
class World:
    """The objects a summary is made of."""

    gateways: Sequence[Mapping[str, Any]] = ()
    providers: Sequence[Mapping[str, Any]] = ()
    chains: Sequence[Mapping[str, Any]] = ()
    deployments: Sequence[Mapping[str, Any]] = ()
    pods: Sequence[Mapping[str, Any]] = ()
    secrets: Sequence[Mapping[str, Any]] = ()
    ports: Mapping[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    """(namespace, gateway) -> the local Service's port."""
    backends: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Backend name -> what answers for it (a fake on a port, a real Ollama, failing or not)."""


def condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if isinstance(c, Mapping) and c.get("type") == type_:
            return c
    return {}


def _status(obj: Mapping[str, Any], type_: str) -> str:
    return str(condition(obj, type_).get("status") or "-")


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def master_key(world: World, gateway: Mapping[str, Any]) -> str | None:
    spec = gateway.get("spec") or {}
    ref = spec.get("masterKeySecretRef") or {}
    meta = gateway.get("metadata") or {}
    name = ref.get("name") or f"{meta.get('name')}-master-key"
    key = ref.get("key") or "master-key"
    for s in world.secrets:
        m = s.get("metadata") or {}
        if m.get("namespace") == meta.get("namespace") and m.get("name") == name:
            return kubelet.secret_values(s).get(str(key))
    return None


def _pods(world: World, gateway: Mapping[str, Any]) -> list[str]:
    meta = gateway.get("metadata") or {}
    out = []
    for p in world.pods:
        pm = p.get("metadata") or {}
        if pm.get("namespace") != meta.get("namespace"):
            continue
        if (pm.get("labels") or {}).get("llmgateway.dev/gateway") != meta.get("name"):
            continue
        cs = ((p.get("status") or {}).get("containerStatuses") or [{}])[0]
        waiting = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        state = (
            "Terminating"
            if pm.get("deletionTimestamp")
            else waiting or ("Running" if cs.get("ready") else "Starting")
        )
        rev = revisions.pod_revision(pm.get("annotations") or {})
        out.append(f"{pm.get('name')} ({rev}, {state}, restarts {cs.get('restartCount', 0)})")
    return sorted(out)


def last_rollout(gateway: Mapping[str, Any]) -> str:
    """The newest history record and the RolledBack condition, in a sentence."""
    status = gateway.get("status") or {}
    history = status.get("history") or []
    rolled = condition(gateway, "RolledBack")
    if rolled.get("status") == "True":
        return f"rolled back ({rolled.get('reason')}): {rolled.get('message')}"
    if not history:
        return "no rollout yet"
    top = history[0]
    said = f"revision {top.get('revision')}: {top.get('outcome')} since {top.get('time')}"
    failed = next((h for h in history if h.get("outcome") in ("Failed", "RolledBack")), None)
    if failed is not None:
        said += (
            f"; earlier, revision {failed.get('revision')} {failed.get('outcome')} ({failed.get('reason')})"
        )
    return said


def render(world: World) -> str:
    lines: list[str] = []
    if world.gateways:
        lines.append("LLMGateways:")
        rows = [["NAME", "READY", "REVISION", "MODELS", "REPLICAS", "SERVICE"]]
        for g in world.gateways:
            st = g.get("status") or {}
            meta = g.get("metadata") or {}
            dep = next((d for d in world.deployments if _name(d) == _name(g)), {})
            ds = dep.get("status") or {}
            want = (dep.get("spec") or {}).get("replicas", "-")
            port = world.ports.get((str(meta.get("namespace")), str(meta.get("name"))))
            rows.append(
                [
                    _name(g),
                    _status(g, "Ready"),
                    str(st.get("revision") or "-"),
                    str(st.get("models", "-")),
                    f"{ds.get('readyReplicas', 0)}/{want} ready, {ds.get('updatedReplicas', 0)} updated",
                    f"127.0.0.1:{port}" if port else "-",
                ]
            )
        lines += _table(rows)
        for g in world.gateways:
            lines.append(f"  {_name(g)} last rollout: {last_rollout(g)}")
            for p in _pods(world, g):
                lines.append(f"    pod {p}")
    if world.providers:
        lines.append("LLMProviders:")
        rows = [["NAME", "TYPE", "MODELS", "ACCEPTED", "BACKEND", "ANSWERED BY"]]
        for prov in world.providers:
            spec = prov.get("spec") or {}
            svc = (spec.get("endpoint") or {}).get("service") or {}
            rows.append(
                [
                    _name(prov),
                    str(spec.get("type", "")),
                    str((prov.get("status") or {}).get("models", len(spec.get("models") or ()))),
                    _status(prov, "Accepted"),
                    _status(prov, "BackendReady"),
                    world.backends.get(str(svc.get("name", "")), "-"),
                ]
            )
        lines += _table(rows)
    if world.chains:
        lines.append("FallbackChains:")
        rows = [["NAME", "MODEL", "TRIGGER", "ACCEPTED", "EFFECTIVE ORDER"]]
        for c in world.chains:
            spec = c.get("spec") or {}
            order = (c.get("status") or {}).get("effectiveOrder") or []
            rows.append(
                [
                    _name(c),
                    str(spec.get("model", "")),
                    str(spec.get("trigger", "errors")),
                    _status(c, "Accepted"),
                    " -> ".join(str(m) for m in order) or "-",
                ]
            )
        lines += _table(rows)
    lines += curls(world)
    return "\n".join(lines)


def curls(world: World) -> list[str]:
    out: list[str] = []
    for g in world.gateways:
        meta = g.get("metadata") or {}
        port = world.ports.get((str(meta.get("namespace")), str(meta.get("name"))))
        if not port:
            continue
        key = master_key(world, g) or "$LITELLM_MASTER_KEY"
        model = _first_model(world, g)
        body = f'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello"}}]}}'
        base = f"http://127.0.0.1:{port}"
        out.append(f"Try it (gateway {_name(g)}):")
        out.append(
            f"  curl -s {base}/v1/chat/completions -H 'Authorization: Bearer {key}' "
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
        )
        out.append(f"  curl -s {base}/v1/models -H 'Authorization: Bearer {key}'")
    return out


def _first_model(world: World, gateway: Mapping[str, Any]) -> str:
    ns = (gateway.get("metadata") or {}).get("namespace")
    for c in world.chains:
        if (c.get("metadata") or {}).get("namespace") == ns:
            return str((c.get("spec") or {}).get("model"))
    for p in world.providers:
        for m in (p.get("spec") or {}).get("models") or ():
            return str(m.get("name"))
    return "MODEL"
