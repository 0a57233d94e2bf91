"""Fixtures of the status suites: an estate from raw manifests, and the check every status passes.

A status is what the operator writes to the API server, so besides what a test
asserts, each one must be a status the kind's own model (and so its CRD) accepts,
as written: with the transition times the reconciler merges in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from pydantic import BaseModel

from llmgw.api.chain import ChainStatus
from llmgw.api.gateway import GatewayStatus
from llmgw.api.provider import ProviderStatus
from llmgw.core import conditions, estate, pipeline
from llmgw.core.backends import Backends

NOW = "2026-01-01T00:00:00Z"
MODELS: dict[str, type[BaseModel]] = {
    "LLMGateway": GatewayStatus,
    "LLMProvider": ProviderStatus,
    "FallbackChain": ChainStatus,
}

Raw = dict[str, Any]
World = tuple[estate.Estate, list[pipeline.Outcome]]


def _valid(kind: str, status: Mapping[str, Any]) -> dict[str, Any]:
    """`status` as the API server would get it; fails the test unless the kind's model takes it."""
    written = dict(status)
    written["conditions"] = conditions.merge(None, status.get("conditions", []), NOW)
    model = MODELS[kind]
    model.model_validate(status)  # the models refuse unknown fields: nothing said is lost
    model.model_validate(written)
    return written


def _world(
    *raws: Raw,
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    service_ports: Mapping[tuple[str, str], Mapping[str, int]] | None = None,
    backends: Backends | None = None,
) -> World:
    """The estate built from raw objects, and every gateway's outcome, as the reconciler has them."""
    est = estate.build(raws, namespaces, service_ports, backends)
    return est, [pipeline.run(est, gw) for gw in pipeline.gateways(est)]


def _generation(raw: Raw, generation: int) -> Raw:
    """`raw` as the API server returns it after `generation` writes to its spec."""
    return {**raw, "metadata": {**raw["metadata"], "generation": generation}}


@pytest.fixture(scope="session")
def valid() -> Callable[[str, Mapping[str, Any]], dict[str, Any]]:
    return _valid


@pytest.fixture(scope="session")
def world() -> Callable[..., World]:
    return _world


@pytest.fixture(scope="session")
def generation() -> Callable[[Raw, int], Raw]:
    return _generation
