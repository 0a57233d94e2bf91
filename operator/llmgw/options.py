"""What `llmgw run` was asked for, typed, with one default per knob.

A module of its own, importing nothing from llmgw, so that the CLI, the runner, the
handlers and the prober all read the same defaults and none of them has to import
another to know them.
"""

from __future__ import annotations

import dataclasses

SETTLE_SECONDS = 1.0
MAX_SETTLE_SECONDS = 10.0
REDIS_INTERVAL_SECONDS = 10.0
REDIS_THRESHOLD = 3
PROBE_TIMEOUT_SECONDS = 5.0
PROBE_CONCURRENCY = 8
LEASE_NAMESPACE = "default"
LEASE_NAME = "llmgw-operator"
WEBHOOK_PORT = 9443
WEBHOOK_FAILURE_POLICY = "Ignore"
STATUS_CONCURRENCY = 10
"""Status writes in flight at once. What an API server rations is seats (requests in flight:
kube-apiserver's default --max-mutating-requests-inflight is 200; API Priority and Fairness
gives service accounts' "workload-low" level about 245 of its 600 seats), and 10 is 4-5% of
that. It sustains 10 / latency writes a second, 500 even at 20 ms a write, so on a healthy
server API_QPS, not the round trips, is what bounds a pass."""
API_QPS = 200.0
"""Calls a second to the API server, on average, when it does not apply API Priority and
Fairness (`API_QPS_AUTO`): a guard against a hot loop more than a fairness mechanism. At 5 ms
a write, one write after another is 200 a second, so this limit never makes a pass slower
than that while it caps what any bug can send. For comparison: client-go's default 5 (burst
10), controller-runtime's 20/30 before v0.21, kube-scheduler's 50/100, Karpenter's 200/300."""
API_QPS_AUTO = "auto"
"""`--api-qps auto`, the default: no client-side rate limit when the API server applies API
Priority and Fairness (every response then names its FlowSchema and priority level), else
`API_QPS`. SIG API Machinery's advice since APF went beta (1.20), and controller-runtime's
default since v0.21: the server's fairness (its seats, queues and 429s, which the operator
honours) protects it better than a fixed client-side rate, which at 200 a second made an
8,000-object first pass spend 37 s writing statuses. An explicit number is always honoured."""
API_BURST = 400
"""Calls at once before `API_QPS` applies: the first pass on an estate of a few hundred objects
is not throttled at all."""


@dataclasses.dataclass(frozen=True)
class Options:
    """What `llmgw run` was asked for."""

    namespaces: tuple[str, ...] = ()
    settle_seconds: float = SETTLE_SECONDS
    """A render waits until the inputs have been quiet this long, and at most `settle_bound`."""
    max_settle_seconds: float = MAX_SETTLE_SECONDS
    """Read through `settle_bound`, which never lets it cut the quiet time short."""
    probe_interval_seconds: float | None = None
    """Overrides every provider's discovery interval (tests, or a cluster-wide policy)."""
    redis_interval_seconds: float = REDIS_INTERVAL_SECONDS
    """Seconds between Redis checks; the cache goes after `redis_threshold` failed checks."""
    redis_threshold: int = REDIS_THRESHOLD
    probe_timeout_seconds: float = PROBE_TIMEOUT_SECONDS
    probe_concurrency: int = PROBE_CONCURRENCY
    leader_election: bool = False
    """Only the holder of a coordination Lease acts; the others wait, watching, to take over."""
    lease_namespace: str = LEASE_NAMESPACE
    lease_name: str = LEASE_NAME
    lease_duration_seconds: float = 15.0
    lease_renew_seconds: float = 5.0
    identity: str | None = None
    release_lease_on_stop: bool = True
    watch_secret_versions: bool = False
    """List and watch Secrets' metadata only (PartialObjectMetadata; their data never reaches the
    operator) for gateways with rolloutOnSecretChange (needs list/watch on Secrets)."""
    webhook: bool = False
    """Serve the validating admission webhook (and manage its ValidatingWebhookConfiguration)."""
    webhook_port: int = WEBHOOK_PORT
    webhook_host: str | None = None
    """The name the API server reaches the webhook by (e.g. llmgw-webhook.llmgw-system.svc)."""
    webhook_addr: str = "0.0.0.0"
    webhook_cert_dir: str | None = None
    """tls.crt, tls.key (and ca.crt) as a cert-manager Secret mounts them; self-signed if unset."""
    webhook_failure_policy: str = WEBHOOK_FAILURE_POLICY
    status_concurrency: int = STATUS_CONCURRENCY
    """Statuses written at once in a pass (providers' and chains' together, then gateways')."""
    api_qps: float | None = None
    """Client-side rate limit of every call to the API server (0: none); `api_burst` at once.
    None (`--api-qps auto`): none when the server applies API Priority and Fairness, else
    `API_QPS`."""
    api_burst: int = API_BURST

    @property
    def settle_bound(self) -> float:
        """The longest a render waits after the first change: a steady stream of changes
        cannot starve the reconciler, and a settle window longer than the bound still holds."""
        return max(self.settle_seconds, self.max_settle_seconds)
