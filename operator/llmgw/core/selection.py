"""Which providers and chains a gateway serves (binding, Gateway API style)."""

from __future__ import annotations

from collections.abc import Mapping

from llmgw.api.common import LabelSelector
from llmgw.api.gateway import LLMGateway

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics; an empty selector matches everything."""
    if selector is None:
        return True
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        present = req.key in labels
        if req.operator == "In" and (not present or labels[req.key] not in req.values):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in req.values:
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True


def namespace_labels(namespace: str, known: Mapping[str, Mapping[str, str]]) -> Mapping[str, str]:
    """A namespace's labels; the API server always sets kubernetes.io/metadata.name."""
    labels = dict(known.get(namespace, {}))
    labels.setdefault(NAMESPACE_NAME_LABEL, namespace)
    return labels


def allows_namespace(gateway: LLMGateway, namespace: str, known: Mapping[str, Mapping[str, str]]) -> bool:
    allowed = gateway.spec.namespaces
    if allowed.from_ == "All":
        return True
    if allowed.from_ == "Same":
        return namespace == gateway.metadata.namespace
    return matches(allowed.selector, namespace_labels(namespace, known))


def binds(
    gateway: LLMGateway,
    namespace: str,
    labels: Mapping[str, str],
    known_namespaces: Mapping[str, Mapping[str, str]],
) -> bool:
    """Whether an object with these labels in this namespace is served by the gateway."""
    return allows_namespace(gateway, namespace, known_namespaces) and matches(gateway.spec.selector, labels)
