"""What goes inside the objects a gateway owns besides its Deployment and Service.

A HorizontalPodAutoscaler, a PodDisruptionBudget, a Gateway API HTTPRoute and a
prometheus-operator ServiceMonitor, each as its `spec`, or None when the gateway
must not have one. `desired.companions` puts each in its envelope (name,
ownerReferences, labels, spec hash); the rules of when each exists are here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmgw.api.gateway import LLMGateway
from llmgw.core import pods, render


def autoscaler(gateway: LLMGateway, target: str) -> dict[str, Any] | None:
    """An autoscaling/v2 HPA spec for the Deployment `target`, with `spec.autoscaling` only."""
    scaling = gateway.spec.autoscaling
    if scaling is None:
        return None
    metrics = [
        {
            "type": "Resource",
            "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": percent}},
        }
        for resource, percent in (
            ("cpu", scaling.target_cpu_utilization_percentage),
            ("memory", scaling.target_memory_utilization_percentage),
        )
        if percent is not None
    ]
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": metrics,
    }


def most_pods(gateway: LLMGateway) -> int:
    """The most pods the gateway can run: autoscaling's maximum, else its replicas."""
    scaling = gateway.spec.autoscaling
    return scaling.max_replicas if scaling is not None else gateway.spec.effective_replicas


def disruption_budget(gateway: LLMGateway, selector: Mapping[str, str]) -> dict[str, Any] | None:
    """A policy/v1 PDB spec over the gateway's pods: the gateway's own budget, else
    `maxUnavailable: 1` whenever it can have two or more pods, else none (a budget over a
    single pod would block every drain)."""
    budget = gateway.spec.disruption_budget
    if budget is not None:
        limit = budget.model_dump(mode="json", by_alias=True, exclude_none=True)
    elif most_pods(gateway) >= 2:
        limit = {"maxUnavailable": 1}
    else:
        return None
    # A pod that is not ready serves nothing: evicting it never costs capacity, and a
    # budget that counted it would hold a node drain until a broken revision is fixed.
    return {"selector": {"matchLabels": dict(selector)}, **limit, "unhealthyPodEvictionPolicy": "AlwaysAllow"}


def route(gateway: LLMGateway, service: str) -> dict[str, Any] | None:
    """A Gateway API v1 HTTPRoute spec to the gateway's Service `service`, with `spec.route` only."""
    r = gateway.spec.route
    if r is None:
        return None
    out: dict[str, Any] = {
        "parentRefs": [p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in r.parent_refs]
    }
    if r.hostnames:
        out["hostnames"] = list(r.hostnames)
    out["rules"] = [{"backendRefs": [{"name": service, "port": pods.PORT}]}]
    return out


def service_monitor(gateway: LLMGateway, selector: Mapping[str, str]) -> dict[str, Any] | None:
    """A ServiceMonitor spec over the gateway's Service, with `metrics.serviceMonitor` only.

    Where the gateway's litellmSettings put /metrics behind a key, it scrapes with the
    master key (a Secret in the gateway's namespace, as the ServiceMonitor is).
    """
    if not (gateway.spec.metrics.enabled and gateway.spec.metrics.service_monitor):
        return None
    endpoint: dict[str, Any] = {"port": pods.PORT_NAME, "path": pods.METRICS_PATH}
    if render.metrics_need_auth(gateway):
        key = render.master_key_ref(gateway)
        endpoint["authorization"] = {"type": "Bearer", "credentials": {"name": key.name, "key": key.key}}
    return {"selector": {"matchLabels": dict(selector)}, "endpoints": [endpoint]}
