"""Prometheus metrics of the operator (prometheus-client).

Collectors live in their own registry so tests and several operators in one
process do not collide; `serve` exposes it on the metrics port.
"""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)

REGISTRY = CollectorRegistry(auto_describe=True)
# The process's own figures (memory, CPU, open files, the cyclic GC's collections), as every
# Prometheus client library exports them: a leak or GC pauses show without a profiler.
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

RECONCILES = Counter(
    "llmgw_reconciles",
    "Reconciles of gateways, by kind of trigger and result.",
    ["kind", "result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "llmgw_reconcile_duration_seconds",
    "Time to reconcile every gateway once (gather, render, apply).",
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RENDER_SECONDS = Histogram(
    "llmgw_render_duration_seconds",
    "Time of the pure pipeline (validation, graph, render) per gateway.",
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
REVISION = Info(
    "llmgw_gateway_revision",
    "Current config revision of each gateway.",
    ["namespace", "gateway"],
    registry=REGISTRY,
)
ROLLOUTS = Counter(
    "llmgw_rollouts",
    "Rollouts of a gateway Deployment to a new config revision.",
    ["namespace", "gateway"],
    registry=REGISTRY,
)
INVALID_OBJECTS = Gauge(
    "llmgw_invalid_objects",
    "Objects left out of renders, by kind and reason.",
    ["kind", "reason"],
    registry=REGISTRY,
)
API_WRITES = Counter(
    "llmgw_api_writes",
    "Writes to the Kubernetes API, by verb and resource.",
    ["verb", "resource"],
    registry=REGISTRY,
)
API_ERRORS = Counter(
    "llmgw_api_errors",
    "Failed Kubernetes API calls, by verb, resource and HTTP status.",
    ["verb", "resource", "status"],
    registry=REGISTRY,
)


BACKEND_READY = Gauge(
    "llmgw_backend_ready_endpoints",
    "Ready endpoints of each provider's Service (0 when none or missing).",
    ["namespace", "provider"],
    registry=REGISTRY,
)
DECLARED_MODELS = Gauge(
    "llmgw_provider_declared_models",
    "Models each provider declares.",
    ["namespace", "provider"],
    registry=REGISTRY,
)
DISCOVERED_MODELS = Gauge(
    "llmgw_provider_discovered_models",
    "Models each provider's backend reported at its last probe (0 when it failed).",
    ["namespace", "provider"],
    registry=REGISTRY,
)
PROBE_SECONDS = Histogram(
    "llmgw_probe_duration_seconds",
    "Time of one probe, by kind (models, redis).",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PROBE_ERRORS = Counter(
    "llmgw_probe_errors",
    "Failed probes, by kind (models, redis).",
    ["kind"],
    registry=REGISTRY,
)
CACHE_AVAILABLE = Gauge(
    "llmgw_gateway_cache_available",
    "Whether each gateway's Redis cache is in its config (1) or left out as unreachable (0).",
    ["namespace", "gateway"],
    registry=REGISTRY,
)
ROLLBACKS = Counter(
    "llmgw_rollbacks",
    "Automatic rollbacks of a gateway to its last available revision, by why the new one failed.",
    ["namespace", "gateway", "reason"],
    registry=REGISTRY,
)
ROLLOUT_FAILURES = Counter(
    "llmgw_rollout_failures",
    "Revisions that failed to become available and were not rolled back, by reason.",
    ["namespace", "gateway", "reason"],
    registry=REGISTRY,
)
ADMISSION_REVIEWS = Counter(
    "llmgw_admission_reviews",
    "Admission reviews answered by the webhook, by kind and result (allowed, denied).",
    ["kind", "result"],
    registry=REGISTRY,
)
ADMISSION_INDEX_SECONDS = Histogram(
    "llmgw_admission_index_duration_seconds",
    "Time to index the world for the webhook again after a change (in a worker thread).",
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ADMISSION_SECONDS = Histogram(
    "llmgw_admission_duration_seconds",
    "Time to decide one admission review.",
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)


def serve(port: int) -> None:
    """Expose /metrics on a background thread."""
    start_http_server(port, registry=REGISTRY)
