"""`FallbackChain`: for one model, the ordered models to try when it fails."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llmgw.api.common import Conditions, Model, ModelNameStr, ObjectMeta
from llmgw.api.provider import Mode

Trigger = Literal["errors", "contextWindow", "contentPolicy"]
TRIGGERS: tuple[str, ...] = Trigger.__args__  # type: ignore[attr-defined]

MAX_FALLBACKS_PER_CHAIN = 64


class ChainSpec(Model):
    """The primary model, its ordered fallbacks, and what failure triggers them."""

    model: ModelNameStr = Field(description="The primary model name (or one of its aliases).")
    fallbacks: tuple[ModelNameStr, ...] = Field(
        min_length=1,
        max_length=MAX_FALLBACKS_PER_CHAIN,
        description="Models to try in order when the primary fails.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    trigger: Trigger = Field(
        default="errors",
        description=(
            "errors (any failure: LiteLLM fallbacks), contextWindow "
            "(context_window_fallbacks) or contentPolicy (content_policy_fallbacks)."
        ),
    )

    @model_validator(mode="after")
    def _rules(self) -> ChainSpec:
        if self.model in self.fallbacks:
            raise ValueError(f"model {self.model!r} may not fall back to itself")
        seen: set[str] = set()
        repeated = sorted({f for f in self.fallbacks if f in seen or seen.add(f)})  # type: ignore[func-returns-value]
        if repeated:
            raise ValueError(f"fallbacks must be unique; repeated: {', '.join(repeated)}")
        return self


class Attempt(Model):
    """One attempt of the effective order, with what its model group declares."""

    model: str = Field(description="The model tried.")
    context_window: int | None = Field(
        default=None,
        description="The smallest context window its deployments declare; absent where none does.",
    )
    mode: Mode | None = Field(
        default=None, description="Its mode; absent where its deployments do not agree on one."
    )


class ChainStatus(Model):
    """What the operator made of the chain."""

    observed_generation: int | None = Field(default=None, description="Last generation seen.")
    conditions: Conditions = Field(
        default=(), description="Accepted: the only condition of a chain (it names no Services or Secrets)."
    )
    gateways: tuple[str, ...] = Field(default=(), description="Gateways serving this chain.")
    effective_order: tuple[str, ...] = Field(
        default=(),
        description=(
            "The order in which the gateway tries models for a request to spec.model, "
            "following the fallbacks' own chains as LiteLLM does, up to its max_fallbacks depth."
        ),
    )
    attempts: tuple[Attempt, ...] = Field(
        default=(), description="effectiveOrder, with each attempt's context window and mode where known."
    )


class FallbackChain(Model):
    """For one model, the ordered models to try when it fails."""

    api_version: Literal["llmgateway.dev/v1alpha1"] = "llmgateway.dev/v1alpha1"
    kind: Literal["FallbackChain"] = "FallbackChain"
    metadata: ObjectMeta
    spec: ChainSpec
    status: ChainStatus | None = None
