"""How the gateway runs as a workload: probe timing, autoscaling, the disruption budget.

LiteLLM with a few dozen models takes minutes to start, so the probes' timing
is the user's to tune while their paths stay the operator's. The defaults live
here, as numbers the Deployment builder and the rollout watcher read, so that
the allowance a model validator checks `progressDeadlineSeconds` against is
the one the pods really get.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Final

from pydantic import Field, StringConstraints, model_validator

from llmgw.api.common import Model, refuse

DEFAULT_REPLICAS: Final = 2
"""Gateway pods when neither `replicas` nor `autoscaling` is set."""


@dataclass(frozen=True)
class Timing:
    """A probe's timing with every field set, as the Deployment builder writes it."""

    initial_delay_seconds: int
    period_seconds: int
    timeout_seconds: int
    failure_threshold: int

    @property
    def allowance_seconds(self) -> int:
        """initialDelaySeconds + periodSeconds x failureThreshold: how long the probe can fail."""
        return self.initial_delay_seconds + self.period_seconds * self.failure_threshold

    def manifest(self) -> dict[str, int]:
        """The four fields of a Kubernetes probe, camelCase."""
        return {
            "initialDelaySeconds": self.initial_delay_seconds,
            "periodSeconds": self.period_seconds,
            "timeoutSeconds": self.timeout_seconds,
            "failureThreshold": self.failure_threshold,
        }

    def __str__(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.manifest().items())


STARTUP_DEFAULTS: Final = Timing(
    initial_delay_seconds=0, period_seconds=5, timeout_seconds=5, failure_threshold=60
)
"""300 s for LiteLLM to start before the liveness probe counts (a large estate takes 2+ minutes)."""
LIVENESS_DEFAULTS: Final = Timing(
    initial_delay_seconds=0, period_seconds=10, timeout_seconds=5, failure_threshold=6
)
READINESS_DEFAULTS: Final = Timing(
    initial_delay_seconds=0, period_seconds=5, timeout_seconds=5, failure_threshold=3
)
DEFAULT_STARTUP_ALLOWANCE_SECONDS: Final = STARTUP_DEFAULTS.allowance_seconds


class ProbeTiming(Model):
    """When and how often a probe runs; its path is the operator's. Unset fields keep their default."""

    initial_delay_seconds: int | None = Field(
        default=None, ge=0, le=3600, description="Seconds after the container starts before the first probe."
    )
    period_seconds: int | None = Field(default=None, ge=1, le=300, description="Seconds between probes.")
    timeout_seconds: int | None = Field(
        default=None, ge=1, le=300, description="Seconds a probe may take before it counts as failed."
    )
    failure_threshold: int | None = Field(
        default=None, ge=1, le=1000, description="Failures in a row before the probe gives up."
    )

    def over(self, default: Timing) -> Timing:
        """Every field set: this probe's own values, `default`'s where this one has none."""
        return dataclasses.replace(default, **self.model_dump(by_alias=False, exclude_none=True))


class Probes(Model):
    """Timing of the proxy's startup, liveness and readiness probes."""

    startup: ProbeTiming | None = Field(
        default=None,
        description=(
            f"The startup probe (/health/liveliness); defaults: {STARTUP_DEFAULTS}: "
            f"{DEFAULT_STARTUP_ALLOWANCE_SECONDS} s to start (initialDelaySeconds + periodSeconds x "
            "failureThreshold, the startup allowance) before the liveness probe counts. "
            "rollout.progressDeadlineSeconds may not be shorter than the startup allowance."
        ),
    )
    liveness: ProbeTiming | None = Field(
        default=None,
        description=f"The liveness probe (/health/liveliness); defaults: {LIVENESS_DEFAULTS}.",
    )
    readiness: ProbeTiming | None = Field(
        default=None,
        description=f"The readiness probe (/health/readiness); defaults: {READINESS_DEFAULTS}.",
    )

    @property
    def startup_effective(self) -> Timing:
        """The startup probe's timing, every field set."""
        return (self.startup or ProbeTiming()).over(STARTUP_DEFAULTS)

    @property
    def liveness_effective(self) -> Timing:
        """The liveness probe's timing, every field set."""
        return (self.liveness or ProbeTiming()).over(LIVENESS_DEFAULTS)

    @property
    def readiness_effective(self) -> Timing:
        """The readiness probe's timing, every field set."""
        return (self.readiness or ProbeTiming()).over(READINESS_DEFAULTS)

    @property
    def startup_allowance_seconds(self) -> int:
        """Seconds a new pod may take to start before the startup probe gives up on it."""
        return self.startup_effective.allowance_seconds


class Autoscaling(Model):
    """A HorizontalPodAutoscaler (autoscaling/v2) for the gateway Deployment."""

    min_replicas: int = Field(
        default=1, ge=1, le=100, description="The fewest pods; the Deployment is created with this many."
    )
    max_replicas: int = Field(ge=1, le=100, description="The most pods; at least minReplicas.")
    target_cpu_utilization_percentage: int | None = Field(
        default=None,
        alias="targetCPUUtilizationPercentage",
        ge=1,
        le=1000,
        description="Average CPU use, in percent of the pods' CPU requests, the HPA keeps the pods at.",
    )
    target_memory_utilization_percentage: int | None = Field(
        default=None,
        alias="targetMemoryUtilizationPercentage",
        ge=1,
        le=1000,
        description="Average memory use, in percent of the pods' memory requests, the HPA keeps the pods at.",
    )

    @model_validator(mode="after")
    def _rules(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            refuse(
                "Autoscaling",
                [
                    (
                        ("minReplicas",),
                        self.min_replicas,
                        f"{self.min_replicas} is more than maxReplicas ({self.max_replicas}); lower "
                        f"minReplicas to at most {self.max_replicas} or raise maxReplicas",
                    )
                ],
            )
        if (
            self.target_cpu_utilization_percentage is None
            and self.target_memory_utilization_percentage is None
        ):
            raise ValueError(
                "set targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or both: "
                "the HorizontalPodAutoscaler needs a target"
            )
        return self


IntOrPercent = (
    Annotated[int, Field(ge=0)]
    | Annotated[str, StringConstraints(pattern=r"^(100|[1-9]?[0-9])%$", max_length=4)]
)


class DisruptionBudget(Model):
    """A PodDisruptionBudget (policy/v1) for the gateway pods: exactly one of its two fields."""

    max_unavailable: IntOrPercent | None = Field(
        default=None, description="Pods that may be down at once during a drain: a number or a percentage."
    )
    min_available: IntOrPercent | None = Field(
        default=None, description="Pods that must stay up during a drain: a number or a percentage."
    )

    @model_validator(mode="after")
    def _one(self) -> DisruptionBudget:
        if (self.max_unavailable is None) == (self.min_available is None):
            raise ValueError("set exactly one of maxUnavailable or minAvailable")
        return self
