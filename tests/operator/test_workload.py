"""The gateway as a production workload: what it owns (issue 11), against the API server.

A gateway with every `spec.pod` field, env/envFrom, probes, autoscaling, a disruption
budget, a Service type, a route and a ServiceMonitor gets exactly those in its Deployment,
Service, HorizontalPodAutoscaler, PodDisruptionBudget, HTTPRoute and ServiceMonitor; each
is written once and not again while nothing changes; the HPA's replicas are never fought;
and a cluster without the HTTPRoute API still gets a serving gateway, told why it has no
route, with no create attempt on every pass.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import kube_emulator as apiserver
import pytest
from harness import Cluster, condition, eventually, gateway, provider

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator")]

COMPANIONS = {
    "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "poddisruptionbudgets": "PodDisruptionBudget",
    "httproutes": "HTTPRoute",
    "servicemonitors": "ServiceMonitor",
}
OWNED = [
    {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gw"},
    {"apiVersion": "v1", "kind": "Service", "name": "gw"},
    {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "gw"},
    {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "name": "gw"},
    {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "name": "gw"},
    {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "name": "gw"},
]
ROUTE_API = "gateway.networking.k8s.io/v1/httproutes"

POD = {
    "metadata": {"labels": {"team": "platform"}, "annotations": {"example.com/owner": "platform"}},
    "nodeSelector": {"pool": "cpu"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"}],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 50,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"llmgateway.dev/gateway": "gw"}},
                    },
                }
            ]
        }
    },
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"llmgateway.dev/gateway": "gw"}},
        }
    ],
    "priorityClassName": "llm-critical",
    "imagePullSecrets": [{"name": "regcred"}],
    "serviceAccountName": "llm-gateway",
    "terminationGracePeriodSeconds": 90,
}
ENV = [
    {"name": "LANGFUSE_HOST", "value": "http://langfuse.obs:3000"},
    {"name": "LANGFUSE_SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": "callbacks", "key": "langfuse"}}},
    {"name": "CALLBACK_MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
]
ENV_FROM = [{"secretRef": {"name": "callbacks"}}, {"configMapRef": {"name": "settings"}, "prefix": "CFG_"}]
PRODUCTION: dict[str, Any] = {
    "pod": POD,
    "env": ENV,
    "envFrom": ENV_FROM,
    "probes": {
        "startup": {"periodSeconds": 5, "failureThreshold": 50},
        "liveness": {"timeoutSeconds": 3},
        "readiness": {"periodSeconds": 2},
    },
    "autoscaling": {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70},
    "disruptionBudget": {"minAvailable": 1},
    "service": {
        "type": "LoadBalancer",
        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
        "labels": {"exposure": "public"},
    },
    "route": {"parentRefs": [{"name": "public", "namespace": "gateways"}], "hostnames": ["llm.example.com"]},
    "metrics": {"enabled": True, "serviceMonitor": True},
}


def production(**overrides: Any) -> dict[str, Any]:
    return gateway(**{**copy.deepcopy(PRODUCTION), **overrides})


async def settled(c: Cluster, owned: list[dict[str, str]] = OWNED) -> dict[str, Any] | None:
    """The gateway once it is Programmed and its status lists `owned`."""
    gw = await c.get("LLMGateway", "ai", "gw")
    cond = condition(gw, "Programmed")
    if cond and cond["status"] == "True" and (gw.get("status") or {}).get("owned") == owned:
        return dict(gw)
    return None


def emulated(c: Cluster) -> apiserver.Emulator:
    if c.emulator is None:
        pytest.skip("reads the emulator's request log")
    return c.emulator


def operator_writes(c: Cluster, since: int = 0) -> list[tuple[str, str, str, str]]:
    return [w for w in c.writes()[since:] if w[1].split("/")[0] not in ("events", "leases")]


async def test_a_production_gateway_owns_exactly_what_it_declares(cluster: Cluster) -> None:
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(production())
    gw = await eventually(lambda: settled(cluster), what="the gateway owning all six objects")

    dep = await cluster.get("Deployment", "ai", "gw")
    assert dep["spec"]["replicas"] == 2  # created with autoscaling.minReplicas
    template = dep["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "platform"
    assert template["metadata"]["labels"]["llmgateway.dev/gateway"] == "gw"
    annotations = template["metadata"]["annotations"]
    assert annotations["example.com/owner"] == "platform"
    assert annotations["prometheus.io/scrape"] == "true"
    assert "llmgateway.dev/config-hash" in annotations
    pod = template["spec"]
    for field in POD.keys() - {"metadata"}:
        assert pod[field] == POD[field], field
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["env"][-len(ENV) :] == ENV
    assert container["envFrom"] == ENV_FROM
    assert container["startupProbe"]["httpGet"]["path"] == "/health/liveliness"
    assert (container["startupProbe"]["periodSeconds"], container["startupProbe"]["failureThreshold"]) == (
        5,
        50,
    )
    assert container["livenessProbe"]["timeoutSeconds"] == 3
    assert container["readinessProbe"]["periodSeconds"] == 2

    svc = await cluster.get("Service", "ai", "gw")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
    assert svc["metadata"]["labels"]["exposure"] == "public"

    hpa = await cluster.get("HorizontalPodAutoscaler", "ai", "gw")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gw"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    ]
    pdb = await cluster.get("PodDisruptionBudget", "ai", "gw")
    assert pdb["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"]["llmgateway.dev/gateway"] == "gw"
    route = await cluster.get("HTTPRoute", "ai", "gw")
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateways"}]
    assert route["spec"]["hostnames"] == ["llm.example.com"]
    assert route["spec"]["rules"] == [{"backendRefs": [{"name": "gw", "port": 4000}]}]
    monitor = await cluster.get("ServiceMonitor", "ai", "gw")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["selector"]["matchLabels"]["llmgateway.dev/gateway"] == "gw"

    for obj in (dep, svc, hpa, pdb, route, monitor):
        (ref,) = obj["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["controller"]) == ("LLMGateway", "gw", True), obj["kind"]
    for kind in COMPANIONS.values():  # exactly one of each
        assert len(await cluster.list(kind, "ai")) == 1, kind

    programmed = condition(gw, "Programmed")["message"]
    assert (
        "owns Deployment/gw, Service/gw, HorizontalPodAutoscaler/gw, PodDisruptionBudget/gw, " in programmed
    )
    assert "HTTPRoute/gw, ServiceMonitor/gw" in programmed
    assert (condition(gw, "APIsAvailable") or {}).get("status") == "True"


async def test_each_owned_object_is_written_once_and_not_again_while_nothing_changes(
    cluster: Cluster,
) -> None:
    emulated(cluster)
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(production())
    await eventually(lambda: settled(cluster), what="the gateway owning all six objects")
    await asyncio.sleep(1)
    writes = operator_writes(cluster)
    for plural in ("deployments", "services", *COMPANIONS):
        mine = [w[0] for w in writes if w[1] == plural]
        assert mine == ["create"], (plural, mine)
    before = len(cluster.writes())
    await asyncio.sleep(10)
    assert operator_writes(cluster, before) == []


async def test_replicas_under_an_hpa_are_never_written(cluster: Cluster, settle: float) -> None:
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(production())
    await eventually(lambda: settled(cluster), what="the gateway owning all six objects")
    first = (await cluster.get("Deployment", "ai", "gw"))["spec"]["template"]["metadata"]["annotations"]
    # The HPA scales the Deployment (no controller here: the test writes what it would).
    await cluster.patch("Deployment", "ai", "gw", {"spec": {"replicas": 5}})
    # A new revision rolls the Deployment: its template changes, its replicas stay the HPA's.
    await cluster.apply(provider("vllm", ["llama", "qwen"]))

    async def rolled() -> dict[str, Any] | None:
        dep = await cluster.get("Deployment", "ai", "gw")
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        return (
            dep if annotations["llmgateway.dev/config-hash"] != first["llmgateway.dev/config-hash"] else None
        )

    await eventually(rolled, what="a rollout of the new revision")
    await asyncio.sleep(10 * settle)
    assert (await cluster.get("Deployment", "ai", "gw"))["spec"]["replicas"] == 5


async def test_removing_the_route_removes_the_httproute(cluster: Cluster) -> None:
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(production())
    await eventually(lambda: settled(cluster), what="the gateway owning all six objects")
    await cluster.patch("LLMGateway", "ai", "gw", {"spec": {"route": None}})
    without = [o for o in OWNED if o["kind"] != "HTTPRoute"]
    await eventually(lambda: settled(cluster, without), what="status.owned without the HTTPRoute")
    assert await cluster.get("HTTPRoute", "ai", "gw") is None
    assert await cluster.get("ServiceMonitor", "ai", "gw") is not None


async def test_turning_autoscaling_off_removes_the_hpa_and_hands_replicas_back(cluster: Cluster) -> None:
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(production())
    await eventually(lambda: settled(cluster), what="the gateway owning all six objects")
    await cluster.patch("Deployment", "ai", "gw", {"spec": {"replicas": 5}})  # as the HPA would
    await cluster.patch("LLMGateway", "ai", "gw", {"spec": {"autoscaling": None, "replicas": 3}})
    without = [o for o in OWNED if o["kind"] != "HorizontalPodAutoscaler"]
    await eventually(lambda: settled(cluster, without), what="status.owned without the HPA")
    assert await cluster.get("HorizontalPodAutoscaler", "ai", "gw") is None

    async def handed_back() -> bool:
        return bool((await cluster.get("Deployment", "ai", "gw"))["spec"]["replicas"] == 3)

    await eventually(handed_back, what="spec.replicas 3 on the Deployment")


async def test_what_the_gateway_stops_asking_for_is_taken_away(cluster: Cluster) -> None:
    """Merge patches merge maps: settings taken out of the gateway are nulled, so they leave the
    owned objects too, and what someone else added stays."""
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(
        production(
            service={"type": "LoadBalancer", "annotations": {"lb": "nlb"}},
            disruptionBudget={"maxUnavailable": 1},
        )
    )
    await eventually(lambda: settled(cluster), what="the gateway owning all six objects")
    restarted = "kubectl.kubernetes.io/restartedAt"
    await cluster.patch(
        "Deployment", "ai", "gw", {"spec": {"template": {"metadata": {"annotations": {restarted: "now"}}}}}
    )
    pod = {k: v for k, v in POD.items() if k not in ("nodeSelector", "affinity")}
    await cluster.patch(
        "LLMGateway",
        "ai",
        "gw",
        {
            "spec": {
                "pod": {**pod, "nodeSelector": None, "affinity": None},
                "service": {"type": "ClusterIP", "annotations": None},
                "disruptionBudget": {"maxUnavailable": None, "minAvailable": 1},
            }
        },
    )

    async def taken_away() -> bool:
        dep = await cluster.get("Deployment", "ai", "gw")
        svc = await cluster.get("Service", "ai", "gw")
        pdb = await cluster.get("PodDisruptionBudget", "ai", "gw")
        template = dep["spec"]["template"]
        return (
            "nodeSelector" not in template["spec"]
            and "affinity" not in template["spec"]
            and template["spec"]["tolerations"] == POD["tolerations"]
            and template["metadata"]["annotations"].get(restarted) == "now"
            and "lb" not in (svc["metadata"].get("annotations") or {})
            and svc["spec"]["type"] == "ClusterIP"
            and "maxUnavailable" not in pdb["spec"]
            and pdb["spec"]["minAvailable"] == 1
        )

    await eventually(taken_away, what="the settings taken out of the gateway gone from what it owns")


@pytest.mark.parametrize("missing_apis", [(ROUTE_API,)])
async def test_without_the_httproute_api_the_gateway_serves_and_says_so(
    cluster: Cluster, settle: float
) -> None:
    """kopf starts with no HTTPRoute resource to watch (and does not wait for its index); the
    gateway serves, APIsAvailable says why it has no route; there is no create attempt, and
    discovery is asked once, however many passes run. When the CRD appears, the route follows."""
    emulator = emulated(cluster)
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(gateway(replicas=1, route=PRODUCTION["route"]))
    base = [o for o in OWNED if o["kind"] in ("Deployment", "Service")]

    async def told() -> dict[str, Any] | None:
        gw = await settled(cluster, base)
        cond = condition(gw, "APIsAvailable")
        return gw if cond and cond["status"] == "False" else None

    gw = await eventually(told, what="a serving gateway told it has no route")
    cond = condition(gw, "APIsAvailable")
    assert cond["reason"] == "RouteAPIUnavailable"
    assert "HTTPRoute (gateway.networking.k8s.io/v1)" in cond["message"]
    assert "install the Gateway API CRDs, or remove spec.route" in cond["message"]
    assert "without HTTPRoute" in condition(gw, "Programmed")["message"]
    assert await cluster.get("Deployment", "ai", "gw") is not None

    # Many passes (each provider edit is one); not one create attempt, one discovery only.
    for i in range(6):
        await cluster.patch("LLMProvider", "ai", "vllm", {"metadata": {"annotations": {"pass": str(i)}}})
        await asyncio.sleep(max(0.5, 2 * settle))
    tried = [r for r in emulator.refused if r[1] == "httproutes" and r[3] != "llmgw-tests"]
    assert tried == []
    asked = [
        d for d in emulator.discovery if d[0] == "gateway.networking.k8s.io/v1" and d[1].startswith("llmgw/")
    ]
    assert len(asked) == 1, asked

    # The Gateway API is installed: kopf starts watching HTTPRoutes, the operator asks again.
    emulator.resources[ROUTE_API] = apiserver.OPTIONAL_APIS[ROUTE_API]
    await cluster._json(
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "httproutes.gateway.networking.k8s.io"},
            "spec": {
                "group": "gateway.networking.k8s.io",
                "names": {"kind": "HTTPRoute", "plural": "httproutes"},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": True, "storage": True}],
            },
        },
    )
    with_route = [*base, {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "name": "gw"}]
    gw = await eventually(lambda: settled(cluster, with_route), what="the route, once its API is there")
    assert condition(gw, "APIsAvailable")["status"] == "True"
    assert await cluster.get("HTTPRoute", "ai", "gw") is not None
    await asyncio.sleep(10 * settle)
    creates = [w for w in cluster.writes() if w[:2] == ("create", "httproutes")]
    assert len(creates) == 1  # the watch shows it: not created again
