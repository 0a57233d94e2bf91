"""Builders of raw manifests, shared by the pure-pipeline suites.

Tests start where the operator and the CLI start: plain dicts as the API server
or a YAML file gives them. The builders are fixtures, not importable names: a
`conftest` module is replaced in `sys.modules` by any other folder's conftest,
so `from conftest import ...` would break as the suite grows.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmgw.core import estate, pipeline

API_VERSION = "llmgateway.dev/v1alpha1"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what the imports and the collection made (modules, test items: most of a
    worker's objects), so that the cycle collector's full collections during the run walk only
    what the tests make. Garbage the tests make is collected as ever, ResourceWarnings and all."""
    gc.collect()
    gc.freeze()


Raw = dict[str, Any]


def _meta(name: str, namespace: str, labels: Mapping[str, str] | None) -> Raw:
    meta: Raw = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return meta


def _provider(
    name: str,
    *models: str | Raw,
    type: str = "vllm",
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    url: str | None = "http://backend:8000",
    **spec: Any,
) -> Raw:
    """An LLMProvider; models are names or `{name: ..., ...}` mappings; extra spec in camelCase."""
    body: Raw = {"type": type, "models": [{"name": m} if isinstance(m, str) else m for m in models]}
    if url is not None and "endpoint" not in spec:
        body["endpoint"] = {"url": url}
    body.update(spec)
    return {
        "apiVersion": API_VERSION,
        "kind": "LLMProvider",
        "metadata": _meta(name, namespace, labels),
        "spec": body,
    }


def _chain(
    name: str,
    model: str,
    *fallbacks: str,
    trigger: str | None = None,
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
) -> Raw:
    """A FallbackChain `model -> fallbacks`."""
    body: Raw = {"model": model, "fallbacks": list(fallbacks)}
    if trigger is not None:
        body["trigger"] = trigger
    return {
        "apiVersion": API_VERSION,
        "kind": "FallbackChain",
        "metadata": _meta(name, namespace, labels),
        "spec": body,
    }


def _gateway(
    name: str = "gw",
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    **spec: Any,
) -> Raw:
    """An LLMGateway; spec fields in camelCase."""
    return {
        "apiVersion": API_VERSION,
        "kind": "LLMGateway",
        "metadata": _meta(name, namespace, labels),
        "spec": spec,
    }


def _check(
    *raws: Raw,
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    service_ports: Mapping[tuple[str, str], Mapping[str, int]] | None = None,
) -> tuple[list[pipeline.Outcome], tuple[Any, ...]]:
    """The whole pure pipeline over raw objects: every gateway's outcome, every finding."""
    return pipeline.check(estate.build(raws, namespaces, service_ports))


def _outcome(*raws: Raw, **context: Any) -> pipeline.Outcome:
    """The outcome of the only gateway (the default one when the objects name none)."""
    outcomes, _ = _check(*raws, **context)
    (only,) = outcomes
    return only


@pytest.fixture(scope="session")
def provider() -> Callable[..., Raw]:
    return _provider


@pytest.fixture(scope="session")
def chain() -> Callable[..., Raw]:
    return _chain


@pytest.fixture(scope="session")
def gateway() -> Callable[..., Raw]:
    return _gateway


@pytest.fixture(scope="session")
def check() -> Callable[..., tuple[list[pipeline.Outcome], tuple[Any, ...]]]:
    return _check


@pytest.fixture(scope="session")
def outcome() -> Callable[..., pipeline.Outcome]:
    return _outcome


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write YAML documents (mappings, or text as is) to a file under tmp_path; returns the file."""

    def write(name: str, *docs: Raw | Sequence[Any] | str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        texts = [d if isinstance(d, str) else yaml.safe_dump(d, sort_keys=False) for d in docs]
        path.write_text("---\n".join(texts), encoding="utf-8")
        return path

    return write


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The e2e suite (a real LiteLLM proxy) runs last, as the slowest and broadest."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
