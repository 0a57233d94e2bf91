"""The gateway's pod template: the LiteLLM proxy container and the pod around it.

`desired.deployment` wraps this in the Deployment; it lives apart because most of
issue 11 lands here: the user's placement and identity (`spec.pod`, copied in the
Pod API's own words), their environment after the operator's, probes whose timing
is theirs and whose paths are ours, and a stop that lets endpoints drain first.
What the user cannot reach is kept here too: the restricted pod security, the
operator's labels and the config-hash annotation, which always win.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from llmgw.api import env as env_mod
from llmgw.api import workload
from llmgw.api.gateway import LLMGateway
from llmgw.core import render, revisions

PORT: Final = 4000
PORT_NAME: Final = "http"
CONTAINER: Final = "litellm"
CONFIG_DIR: Final = "/etc/litellm"
RUN_AS: Final = 65532
LIVENESS_PATH: Final = "/health/liveliness"
READINESS_PATH: Final = "/health/readiness"
METRICS_PATH: Final = "/metrics"

PRE_STOP_SECONDS: Final = 10
"""How long a stopping pod keeps serving before LiteLLM gets SIGTERM: time for the
EndpointSlice controller, kube-proxy and ingress controllers to stop sending it requests."""
GRACE_MARGIN_SECONDS: Final = 15
"""Added to timeoutSeconds and the preStop delay for the default grace period: LiteLLM's
own shutdown (closing its clients, its cache connection) after the last answer."""

PRE_STOP_COMMAND: Final = ("python3", "-c", f"import time; time.sleep({PRE_STOP_SECONDS})")
"""The preStop hook, an exec of the image's own Python. The Kubernetes `sleep` action
(`preStop: {sleep: {seconds: N}}`) would need no binary, but it is in the API only from 1.29
(off by default; on from 1.30, GA in 1.34), and the chart supports 1.27 and 1.28, whose API
servers refuse a hook without a handler they know. Every LiteLLM image is a Python
application, so the interpreter is always there; move to `sleep` when the chart's floor is 1.30."""

PROMETHEUS_ANNOTATIONS: Final[Mapping[str, str]] = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(PORT),
    "prometheus.io/path": METRICS_PATH,
}

_PLACEMENT: Final = (
    "node_selector",
    "tolerations",
    "affinity",
    "topology_spread_constraints",
    "priority_class_name",
    "image_pull_secrets",
    "service_account_name",
)
"""The `spec.pod` fields copied into the pod spec unchanged (in the Pod API's own words)."""


def template(
    gateway: LLMGateway, rendered: render.Rendered, own_labels: Mapping[str, str], shards: int = 0
) -> dict[str, Any]:
    """The pod template: the user's metadata under the operator's, the user's placement, the
    revision's ConfigMaps (with its `shards`, where it is split) as the config folder."""
    pod = gateway.spec.pod
    name = gateway.metadata.name
    spec: dict[str, Any] = {
        # The Kubernetes API token stays out: the proxy never calls the API server. Cloud
        # identity still works with a serviceAccountName: IRSA's and EKS Pod Identity's
        # webhooks add their own projected token volume (audience sts.amazonaws.com)
        # whatever this field says, Azure Workload Identity's webhook does the same, and
        # GKE Workload Identity answers on the node's metadata server, with no token in the pod.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": termination_grace_period_seconds(gateway),
        "containers": [container(gateway, rendered)],
        "volumes": [
            {"name": "config", **revisions.volume(name, rendered.hash, shards)},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        ],
    }
    dumped = pod.model_dump(mode="json", by_alias=True, exclude_defaults=True, include=set(_PLACEMENT))
    spec.update(dumped)
    return {
        "metadata": {
            "labels": {**pod.metadata.labels, **own_labels},
            "annotations": pod_annotations(gateway, rendered.hash),
        },
        "spec": spec,
    }


def pod_annotations(gateway: LLMGateway, config_hash: str) -> dict[str, str]:
    """The pods' annotations: the scrape defaults, the user's over them, the config hash over all."""
    scrape = PROMETHEUS_ANNOTATIONS if gateway.spec.metrics.enabled else {}
    # The user's prometheus.io/* win over the defaults (scrape "false" beside a ServiceMonitor).
    return {**scrape, **gateway.spec.pod.metadata.annotations, revisions.CONFIG_HASH: config_hash}


def container(gateway: LLMGateway, rendered: render.Rendered) -> dict[str, Any]:
    """The LiteLLM proxy: the mounted revision, the operator's env then the user's, probes."""
    spec = gateway.spec
    out: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "args": ["--config", f"{CONFIG_DIR}/{revisions.CONFIG_KEY}", "--port", str(PORT)],
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "env": env(gateway, rendered),
    }
    if spec.env_from:
        out["envFrom"] = [
            e.model_dump(mode="json", by_alias=True, exclude_defaults=True) for e in spec.env_from
        ]
    out.update(probes(gateway))
    out["lifecycle"] = {"preStop": {"exec": {"command": list(PRE_STOP_COMMAND)}}}
    out["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    out["volumeMounts"] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if spec.resources is not None:
        out["resources"] = spec.resources.model_dump(exclude_defaults=True)
    return out


def env(gateway: LLMGateway, rendered: render.Rendered) -> list[dict[str, Any]]:
    """The operator's variables (fixed ones, then the revision's Secrets), then `spec.env`.

    The API layer refuses a `spec.env` name the operator sets, so no name repeats.
    """
    # HF_HUB_OFFLINE: LiteLLM otherwise fetches tokenizers from Hugging Face on some errors,
    # with retries that stall requests for ~25 s where the cluster has no way out.
    out: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in env_mod.FIXED_ENV.items()]
    out += [
        {"name": e.name, "valueFrom": {"secretKeyRef": {"name": e.secret, "key": e.key}}}
        for e in rendered.env
    ]
    out += [e.model_dump(mode="json", by_alias=True, exclude_defaults=True) for e in gateway.spec.env]
    return out


def probes(gateway: LLMGateway) -> dict[str, dict[str, Any]]:
    """Startup, liveness and readiness: the operator's paths, the gateway's timing over the defaults.

    The startup probe holds the other two back until LiteLLM has started (minutes, for a
    large estate), so liveness needs no initial delay of its own.
    """
    p = gateway.spec.probes

    def probe(path: str, timing: workload.Timing) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": PORT_NAME}, **timing.manifest()}

    return {
        "startupProbe": probe(LIVENESS_PATH, p.startup_effective),
        "livenessProbe": probe(LIVENESS_PATH, p.liveness_effective),
        "readinessProbe": probe(READINESS_PATH, p.readiness_effective),
    }


def termination_grace_period_seconds(gateway: LLMGateway) -> int:
    """The gateway's own, or long enough for the preStop delay and then the longest answer."""
    explicit = gateway.spec.pod.termination_grace_period_seconds
    if explicit is not None:
        return explicit
    return gateway.spec.timeout_seconds + PRE_STOP_SECONDS + GRACE_MARGIN_SECONDS
