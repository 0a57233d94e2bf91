"""How the gateway is reached and watched: its Service, an HTTPRoute, LiteLLM's own metrics.

The route is the Gateway API's HTTPRoute in its own shapes (`parentRefs`,
`hostnames`); its backend is always the gateway's Service on the proxy port.
A cluster without the HTTPRoute or ServiceMonitor API keeps serving: the
gateway says so in its `APIsAvailable` condition (reasons `RouteAPIUnavailable`,
`ServiceMonitorAPIUnavailable`).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints, model_validator

from llmgw.api.common import DNS_LABEL_PATTERN, DnsLabel, Model, refuse

MAX_PARENT_REFS: Final = 32
MAX_HOSTNAMES: Final = 16
HOSTNAME_PATTERN: Final = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

Hostname = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=HOSTNAME_PATTERN)]
ObjectName = Annotated[str, StringConstraints(min_length=1, max_length=253)]


class ServiceSettings(Model):
    """The gateway's Service `<gateway>` (port 4000)."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="ClusterIP (the default), NodePort or LoadBalancer."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        max_length=64,
        description="Annotations on the Service, e.g. for a cloud load balancer.",
    )
    labels: dict[str, Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=dict,
        max_length=64,
        description="Labels added to the Service; the operator's own labels win.",
    )


class ParentReference(Model):
    """A Gateway (or another parent) the HTTPRoute attaches to (Gateway API ParentReference)."""

    group: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None, description="API group of the parent; gateway.networking.k8s.io by default."
    )
    kind: Annotated[str, StringConstraints(min_length=1, max_length=63)] | None = Field(
        default=None, description="Kind of the parent; Gateway by default."
    )
    namespace: DnsLabel | None = Field(
        default=None, description="Namespace of the parent; the gateway's by default."
    )
    name: ObjectName = Field(description="Name of the parent.")
    section_name: (
        Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS_LABEL_PATTERN)] | None
    ) = Field(default=None, description="A listener of the parent, by name.")
    port: int | None = Field(default=None, ge=1, le=65535, description="A listener of the parent, by port.")


class Route(Model):
    """An HTTPRoute `<gateway>` (gateway.networking.k8s.io/v1) to the gateway's Service."""

    parent_refs: tuple[ParentReference, ...] = Field(
        default=(),
        max_length=MAX_PARENT_REFS,
        description="The Gateways the route attaches to; at least one.",
    )
    hostnames: tuple[Hostname, ...] = Field(
        default=(),
        max_length=MAX_HOSTNAMES,
        description="Host names the route answers for, e.g. llm.example.com; empty: those of its parents.",
    )

    @model_validator(mode="after")
    def _parents(self) -> Route:
        if not self.parent_refs:
            refuse(
                "Route",
                [
                    (
                        ("parentRefs",),
                        [],
                        "a route needs at least one parentRefs entry: name the Gateway it attaches "
                        "to, e.g. parentRefs: [{name: public, namespace: gateways}]",
                    )
                ],
            )
        return self


class Metrics(Model):
    """LiteLLM's own Prometheus metrics, on /metrics at the gateway's port."""

    enabled: bool = Field(
        default=False,
        description=(
            "Render LiteLLM's Prometheus callback, serve /metrics on port 4000, and put "
            "prometheus.io scrape annotations on the pods."
        ),
    )
    service_monitor: bool = Field(
        default=False,
        description="Create a ServiceMonitor (monitoring.coreos.com/v1) `<gateway>`; needs enabled.",
    )

    @model_validator(mode="after")
    def _monitor(self) -> Metrics:
        if self.service_monitor and not self.enabled:
            raise ValueError("serviceMonitor needs enabled: true (there is nothing to scrape otherwise)")
        return self
