"""The Kubernetes objects a gateway should own, as plain dicts.

Pure: the same gateway and render always give the same objects. The kube
layer sends them; nothing here talks to the API. Every owned object comes in
the same envelope: named for its gateway, owned by it (ownerReferences), the
operator's labels, and a SPEC_HASH annotation that says whether it needs a
write. What goes inside lives with its subject: the pod template in `pods`,
the autoscaler, disruption budget, route and ServiceMonitor in `companions`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from llmgw.api import API_VERSION
from llmgw.api.gateway import LLMGateway
from llmgw.core import companions as companions_mod
from llmgw.core import pods, render, revisions

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "llmgw"
GATEWAY_LABEL = "llmgateway.dev/gateway"
SPEC_HASH = "llmgateway.dev/spec-hash"
PORT = pods.PORT


def selector(gateway: LLMGateway) -> dict[str, str]:
    """The labels that pick the gateway's own pods (the Deployment's, the Service's, the PDB's)."""
    return {GATEWAY_LABEL: gateway.metadata.name, MANAGED_BY: MANAGER}


def labels(gateway: LLMGateway) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "litellm",
        "app.kubernetes.io/instance": gateway.metadata.name,
        "app.kubernetes.io/component": "gateway",
        MANAGED_BY: MANAGER,
        GATEWAY_LABEL: gateway.metadata.name,
    }


def owner_reference(gateway: LLMGateway) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "LLMGateway",
        "name": gateway.metadata.name,
        "uid": gateway.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _meta(gateway: LLMGateway, name: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": gateway.metadata.namespace,
        "labels": labels(gateway),
        "ownerReferences": [owner_reference(gateway)],
    }
    meta.update(extra)
    return meta


def config_maps(
    gateway: LLMGateway,
    rendered: render.Rendered,
    inputs: Sequence[str],
    sequence: int,
    *,
    split: bool = False,
) -> list[dict[str, Any]]:
    """An immutable revision, in the order to create it: the shards of a split revision, then
    the ConfigMap that names them (their contents are `revisions.layout`)."""
    out: list[dict[str, Any]] = []
    for part in revisions.layout(rendered, inputs, sequence, split=split):
        meta = _meta(
            gateway,
            revisions.name(gateway.metadata.name, rendered.hash, part.shard),
            annotations=dict(part.annotations),
        )
        meta["labels"].update(part.labels)
        out.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "immutable": True, "data": part.data}
        )
    return [*out[1:], out[0]]


def deployment(gateway: LLMGateway, rendered: render.Rendered, shards: int = 0) -> dict[str, Any]:
    """The LiteLLM proxy, mounting the revision (with its `shards`, where it is split);
    restricted pod security, no lost capacity.

    With `spec.autoscaling` the body has no `spec.replicas`: a merge patch of it never
    touches the count the HorizontalPodAutoscaler sets. Create it with `initial_replicas`.
    """
    spec = gateway.spec
    name = gateway.metadata.name
    body_spec: dict[str, Any] = {}
    if spec.autoscaling is None:
        body_spec["replicas"] = spec.effective_replicas
    body_spec.update(
        {
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
            "selector": {"matchLabels": selector(gateway)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": pods.template(gateway, rendered, labels(gateway), shards),
        }
    )
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(gateway, name, annotations={revisions.CONFIG_HASH: rendered.hash}),
        "spec": body_spec,
    }
    return _stamped(body)


def initial_replicas(gateway: LLMGateway) -> int:
    """The replicas to create the Deployment with: with autoscaling, its minReplicas (the
    HorizontalPodAutoscaler owns the count from then on); else what `deployment` sets."""
    return gateway.spec.effective_replicas


def service(gateway: LLMGateway) -> dict[str, Any]:
    """The gateway's Service: `spec.service`'s type and metadata, the operator's labels winning."""
    name = gateway.metadata.name
    settings = gateway.spec.service
    meta = _meta(gateway, name, annotations=dict(settings.annotations))
    meta["labels"] = {**settings.labels, **labels(gateway)}
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": settings.type,
            "selector": selector(gateway),
            "ports": [
                {"name": pods.PORT_NAME, "port": PORT, "targetPort": pods.PORT_NAME, "protocol": "TCP"}
            ],
        },
    }
    return _stamped(body)


class Api(NamedTuple):
    """Where the API server serves a kind: /apis/<group>/<version>/namespaces/<ns>/<plural>."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


APIS: Final[Mapping[str, Api]] = {
    "HorizontalPodAutoscaler": Api("autoscaling", "v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": Api("policy", "v1", "poddisruptionbudgets"),
    "HTTPRoute": Api("gateway.networking.k8s.io", "v1", "httproutes"),
    "ServiceMonitor": Api("monitoring.coreos.com", "v1", "servicemonitors"),
}
"""The kinds `companions` returns, in the order it returns them, and where each is served."""


def companions(gateway: LLMGateway) -> dict[str, dict[str, Any] | None]:
    """Every kind of `APIS` -> its desired object `<gateway>`, or None where it must not exist
    (the reconciler deletes an owned one then)."""
    name = gateway.metadata.name
    own = selector(gateway)
    specs = {
        "HorizontalPodAutoscaler": companions_mod.autoscaler(gateway, name),
        "PodDisruptionBudget": companions_mod.disruption_budget(gateway, own),
        "HTTPRoute": companions_mod.route(gateway, name),
        "ServiceMonitor": companions_mod.service_monitor(gateway, own),
    }
    return {kind: None if spec is None else _owned(gateway, kind, spec) for kind, spec in specs.items()}


def _owned(gateway: LLMGateway, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {
        "apiVersion": APIS[kind].api_version,
        "kind": kind,
        "metadata": _meta(gateway, gateway.metadata.name, annotations={}),
        "spec": spec,
    }
    return _stamped(body)


def master_key_secret(gateway: LLMGateway, key: str) -> dict[str, Any]:
    """The generated master key; `key` comes from the caller (randomness is I/O)."""
    ref = render.master_key_ref(gateway)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(gateway, ref.name),
        "type": "Opaque",
        "stringData": {ref.key: key},
    }


def spec_hash(body: Mapping[str, Any]) -> str:
    """A digest of what the operator sets (spec, labels, annotations but this digest itself),
    to tell a needed patch from a no-op."""
    meta = body["metadata"]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != SPEC_HASH}
    owned = {"spec": body.get("spec"), "labels": meta.get("labels")}
    if annotations:  # without any, the digest is the one before annotations counted
        owned["annotations"] = annotations
    text = json.dumps(owned, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stamped(body: dict[str, Any]) -> dict[str, Any]:
    body["metadata"]["annotations"][SPEC_HASH] = spec_hash(body)
    return body
