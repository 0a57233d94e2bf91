"""Fixtures of the desired-objects suite: a gateway and its render from raw manifests, the
Kubernetes schema check every object the operator sends must pass, and a production gateway
that sets every field of the workload (issue 11)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from llmgw.api.gateway import LLMGateway
from llmgw.core import estate, pipeline, render

KUBE_VERSION = "1.35.0"
"""The Kubernetes version whose schemas the objects are validated against (as in tests/deploy)."""
CHART = Path(__file__).parents[2] / "charts" / "llmgw" / "Chart.yaml"


def _supported_versions() -> tuple[str, ...]:
    """Every Kubernetes minor the chart supports (kubeVersion ">=1.N...") that kubernetes-validate
    has schemas for."""
    floor = yaml.safe_load(CHART.read_text(encoding="utf-8"))["kubeVersion"]
    match = re.fullmatch(r">=\s*1\.(\d+)\.\d+(-0)?", floor)
    assert match is not None, f"Chart.yaml kubeVersion {floor!r}: update the parsing here"
    minors = sorted({int(v.split(".")[1]) for v in kubernetes_validate.utils.all_versions()})
    return tuple(f"1.{m}.0" for m in minors if m >= int(match.group(1)))


KUBE_VERSIONS = _supported_versions()

Raw = dict[str, Any]
Built = tuple[LLMGateway, render.Rendered]


def _built(*raws: Raw) -> Built:
    """The only gateway among `raws`, and its render, as the reconciler has them."""
    est = estate.build(raws)
    assert len(est.gateways) == 1, f"not one valid gateway: {est.invalid}"
    (gw,) = est.gateways
    return gw, pipeline.run(est, gw).rendered


def _schema_valid(obj: Mapping[str, Any], version: str = KUBE_VERSION) -> None:
    """Fail the test unless the API server's schema (strict: no unknown field) takes `obj`."""
    try:
        kubernetes_validate.validate(dict(obj), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(map(str, exc.path))
        pytest.fail(
            f"{obj['kind']} {obj['metadata'].get('name')} ({version}): {where}: {exc.message}", pytrace=False
        )


def _meta(raw: Raw, **extra: Any) -> Raw:
    """`raw` with more metadata, as the API server returns it (uid, generation, ...)."""
    return {**raw, "metadata": {**raw["metadata"], **extra}}


@pytest.fixture(scope="session")
def built() -> Callable[..., Built]:
    return _built


@pytest.fixture(scope="session")
def schema_valid() -> Callable[[Mapping[str, Any]], None]:
    return _schema_valid


@pytest.fixture(scope="session")
def meta() -> Callable[..., Raw]:
    return _meta


PRODUCTION = yaml.safe_load(
    """
apiVersion: llmgateway.dev/v1alpha1
kind: LLMGateway
metadata: {name: prod, namespace: ai, uid: 0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d, generation: 3}
spec:
  image: registry.example/litellm:v1.106.2
  timeoutSeconds: 120
  masterKeySecretRef: {name: gw-master, key: key}
  cache: {redis: {host: redis.cache.svc, passwordSecretRef: {name: redis, key: password}}}
  resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}}
  pod:
    metadata:
      labels: {team: platform, app.kubernetes.io/part-of: llm}
      annotations: {cluster-autoscaler.kubernetes.io/safe-to-evict: "true"}
    nodeSelector: {kubernetes.io/os: linux}
    tolerations:
      - {key: dedicated, operator: Equal, value: llm, effect: NoSchedule}
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 60}
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms:
            - matchExpressions:
                - {key: kubernetes.io/arch, operator: In, values: [amd64, arm64]}
                - {key: cores, operator: Gt, values: ["3"]}
              matchFields: [{key: metadata.name, operator: NotIn, values: [node-broken]}]
        preferredDuringSchedulingIgnoredDuringExecution:
          - {weight: 50, preference: {matchExpressions: [{key: pool, operator: In, values: [general]}]}}
      podAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 10
            podAffinityTerm:
              labelSelector: {matchLabels: {app: redis}}
              namespaces: [cache]
              topologyKey: topology.kubernetes.io/zone
      podAntiAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {llmgateway.dev/gateway: prod}}
            namespaceSelector: {}
            topologyKey: kubernetes.io/hostname
            matchLabelKeys: [pod-template-hash]
        preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              labelSelector: {matchExpressions: [{key: llmgateway.dev/gateway, operator: Exists}]}
              topologyKey: topology.kubernetes.io/zone
              mismatchLabelKeys: [tenant]
    topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: DoNotSchedule
        labelSelector: {matchLabels: {llmgateway.dev/gateway: prod}}
        minDomains: 2
        nodeAffinityPolicy: Honor
        nodeTaintsPolicy: Ignore
        matchLabelKeys: [pod-template-hash]
    priorityClassName: platform-critical
    imagePullSecrets: [{name: regcred}, {name: mirror}]
    serviceAccountName: llm-gateway
    terminationGracePeriodSeconds: 150
  env:
    - {name: LANGFUSE_HOST, value: "https://langfuse.example.com"}
    - name: LANGFUSE_SECRET_KEY
      valueFrom: {secretKeyRef: {name: callbacks, key: langfuse-secret, optional: false}}
    - name: OTEL_SERVICE_NAME
      valueFrom: {configMapKeyRef: {name: otel, key: service, optional: true}}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name, apiVersion: v1}}
    - name: MEMORY_LIMIT_MI
      valueFrom: {resourceFieldRef: {resource: limits.memory, containerName: litellm, divisor: 1Mi}}
    - {name: EMPTY, value: ""}
  envFrom:
    - {prefix: DD_, secretRef: {name: datadog, optional: true}}
    - {configMapRef: {name: otel-env}}
  probes:
    startup: {initialDelaySeconds: 10, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 100}
    liveness: {initialDelaySeconds: 0, periodSeconds: 15, timeoutSeconds: 5, failureThreshold: 4}
    readiness: {periodSeconds: 5, failureThreshold: 2}
  rollout: {autoRollback: true, progressDeadlineSeconds: 600}
  autoscaling:
    minReplicas: 2
    maxReplicas: 10
    targetCPUUtilizationPercentage: 70
    targetMemoryUtilizationPercentage: 80
  disruptionBudget: {maxUnavailable: 1}
  service:
    type: LoadBalancer
    annotations: {service.beta.kubernetes.io/aws-load-balancer-internal: "true"}
    labels: {exposure: internal}
  route:
    parentRefs:
      - name: public
        namespace: gateways
        sectionName: https
        port: 443
        group: gateway.networking.k8s.io
        kind: Gateway
      - {name: internal}
    hostnames: [llm.example.com, "*.llm.example.com"]
  metrics: {enabled: true, serviceMonitor: true}
  database: {urlSecretRef: {name: litellm-db, key: url}}
  litellmSettings:
    success_callback: [langfuse]
    callbacks: [otel]
    langfuse_secret_key: os.environ/LANGFUSE_SECRET_KEY
    datadog_api_key: os.environ/DD_API_KEY
  routerSettings: {allowed_fails: 3, cooldown_time: 30}
  generalSettings: {store_model_in_db: false, alerting: [slack], alerting_threshold: 300}
"""
)
"""A production gateway: every field of the workload (issue 11) set."""

LABEL_KEYS_FROM = (1, 29)
"""Pod (anti-)affinity terms have matchLabelKeys / mismatchLabelKeys from Kubernetes 1.29; an
older API server drops them (with a warning) and keeps the rest of the term."""


def _production(*, label_keys: bool = True, **spec: Any) -> Raw:
    """The production gateway, with `spec` over its own, without the affinity label keys
    where `label_keys` is false (for the schemas of Kubernetes before 1.29)."""
    raw = copy.deepcopy(PRODUCTION)
    raw["spec"].update(spec)
    if not label_keys:
        affinity = raw["spec"]["pod"]["affinity"]
        for kind in ("podAffinity", "podAntiAffinity"):
            for rule, terms in affinity[kind].items():
                for term in terms:
                    target = term.get("podAffinityTerm", term) if rule.startswith("preferred") else term
                    target.pop("matchLabelKeys", None)
                    target.pop("mismatchLabelKeys", None)
    return raw


@pytest.fixture(scope="session")
def production_raw() -> Callable[..., Raw]:
    return _production


@pytest.fixture(scope="session")
def production_provider() -> Raw:
    """A provider the production gateway serves, with an API key (one more Secret variable)."""
    return {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMProvider",
        "metadata": {"name": "openai", "namespace": "ai"},
        "spec": {
            "type": "openai",
            "models": [{"name": "gpt-4o"}],
            "apiKeySecretRef": {"name": "openai", "key": "api-key"},
        },
    }


@pytest.fixture(scope="session")
def production(production_provider: Raw) -> Built:
    """The production gateway and its render."""
    return _built(_production(), production_provider)
