"""The Kubernetes objects a gateway should own, as plain dicts.

Pure: the same gateway and render always give the same objects. The kube
layer sends them; nothing here talks to the API.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from llmgw.api import API_VERSION
from llmgw.api.gateway import LLMGateway
from llmgw.core import render

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "llmgw"
GATEWAY_LABEL = "llmgateway.dev/gateway"
REVISION_LABEL = "llmgateway.dev/revision"
CONFIG_HASH = "llmgateway.dev/config-hash"
SPEC_HASH = "llmgateway.dev/spec-hash"
SEQUENCE = "llmgateway.dev/sequence"
INPUTS = "llmgateway.dev/inputs"
ENV = "llmgateway.dev/env"
"""On a revision's ConfigMap: the Secret env its config reads, so a rollback can run it again."""
PORT = 4000
CONFIG_DIR = "/etc/litellm"
CONFIG_KEY = "config.yaml"
INPUTS_KEY = "inputs.json"
CONFIGMAP_LIMIT = 1024 * 1024
"""Kubernetes refuses ConfigMaps over 1 MiB."""
INPUTS_ANNOTATION_LIMIT = 32 * 1024
RUN_AS = 65532


def config_map_name(gateway: LLMGateway, rendered: render.Rendered) -> str:
    return f"{gateway.metadata.name}-config-{rendered.short_hash}"


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


def config_map(
    gateway: LLMGateway, rendered: render.Rendered, inputs: Sequence[str], sequence: int
) -> dict[str, Any]:
    """An immutable revision: the config, and which objects at which generation made it."""
    listed = json.dumps(sorted(inputs), separators=(",", ":"))
    annotations = {CONFIG_HASH: rendered.hash, SEQUENCE: str(sequence), ENV: _env(rendered)}
    annotations[INPUTS] = (
        listed if len(listed) <= INPUTS_ANNOTATION_LIMIT else f"{len(inputs)} objects; see data {INPUTS_KEY}"
    )
    meta = _meta(gateway, config_map_name(gateway, rendered), annotations=annotations)
    meta["labels"][REVISION_LABEL] = rendered.short_hash
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "immutable": True,
        "data": {CONFIG_KEY: rendered.text, INPUTS_KEY: listed + "\n"},
    }


def _env(rendered: render.Rendered) -> str:
    return json.dumps([[e.name, e.secret, e.key] for e in rendered.env], separators=(",", ":"))


def too_large(cm: Mapping[str, Any]) -> bool:
    return sum(len(v.encode()) for v in cm["data"].values()) > CONFIGMAP_LIMIT


def deployment(gateway: LLMGateway, rendered: render.Rendered) -> dict[str, Any]:
    """The LiteLLM proxy, mounting the revision; restricted pod security, no lost capacity."""
    spec = gateway.spec
    name = gateway.metadata.name
    env: list[dict[str, Any]] = [
        {"name": "LITELLM_LOCAL_MODEL_COST_MAP", "value": "True"},
        {"name": "HOME", "value": "/tmp"},
        {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
        # LiteLLM otherwise fetches tokenizers from Hugging Face on some errors, with retries
        # that stall requests for ~25 s where the cluster has no way out.
        {"name": "HF_HUB_OFFLINE", "value": "1"},
    ]
    env += [
        {
            "name": e.name,
            "valueFrom": {"secretKeyRef": {"name": e.secret, "key": e.key}},
        }
        for e in rendered.env
    ]
    container: dict[str, Any] = {
        "name": "litellm",
        "image": spec.image,
        "args": ["--config", f"{CONFIG_DIR}/{CONFIG_KEY}", "--port", str(PORT)],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": env,
        "livenessProbe": {
            "httpGet": {"path": "/health/liveliness", "port": "http"},
            "initialDelaySeconds": 20,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "readinessProbe": {
            "httpGet": {"path": "/health/readiness", "port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 5,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    if spec.resources is not None:
        container["resources"] = spec.resources.model_dump(exclude_defaults=True)
    template_labels = labels(gateway)
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(gateway, name, annotations={CONFIG_HASH: rendered.hash}),
        "spec": {
            "replicas": spec.replicas,
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
            "selector": {"matchLabels": {GATEWAY_LABEL: name, MANAGED_BY: MANAGER}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": template_labels,
                    "annotations": {CONFIG_HASH: rendered.hash},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "config",
                            "configMap": {"name": config_map_name(gateway, rendered)},
                        },
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                    ],
                },
            },
        },
    }
    body["metadata"]["annotations"][SPEC_HASH] = spec_hash(body)
    return body


def service(gateway: LLMGateway) -> dict[str, Any]:
    name = gateway.metadata.name
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(gateway, name, annotations={}),
        "spec": {
            "type": "ClusterIP",
            "selector": {GATEWAY_LABEL: name, MANAGED_BY: MANAGER},
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    body["metadata"]["annotations"][SPEC_HASH] = spec_hash(body)
    return body


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
    """A digest of what the operator sets, to tell a needed patch from a no-op."""
    owned = {"spec": body.get("spec"), "labels": body["metadata"].get("labels")}
    text = json.dumps(owned, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
