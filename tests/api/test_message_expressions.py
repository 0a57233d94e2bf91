"""The CEL rules whose messages carry the numbers (`messageExpression`), evaluated with cel-python.

The API server shows a rule's messageExpression instead of its message when the rule
fails; the sentence must then hold the numbers the models' own messages give.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import celpy
import pytest

from llmgw.api import crdgen

VALIDATIONS = "x-kubernetes-validations"
HPA = {"maxReplicas": 4, "targetCPUUtilizationPercentage": 70}


def _expressions(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, str]]]:
    for rule in node.get(VALIDATIONS, ()):
        if "messageExpression" in rule:
            yield path, rule
    for key, prop in node.get("properties", {}).items():
        yield from _expressions(prop, f"{path}.{key}" if path else key)
    if "items" in node:
        yield from _expressions(node["items"], f"{path}[]")


SCHEMA = crdgen.openapi_schema("LLMGateway")
EXPRESSIONS = list(_expressions(SCHEMA))


def _message(apiserver: Any, path: str, value: Any) -> list[str]:
    """The messageExpression of each rule at `path` that fails for `value`, evaluated."""
    out = []
    for where, rule in EXPRESSIONS:
        if where == path and not apiserver.cel.holds(rule["rule"], value):
            result = apiserver.cel.program(rule["messageExpression"]).evaluate(
                {"self": celpy.json_to_cel(value)}
            )
            out.append(str(result))
    return out


def test_there_are_message_expressions() -> None:
    assert {path for path, _ in EXPRESSIONS} == {"spec", "spec.autoscaling"}


@pytest.mark.parametrize(("path", "rule"), EXPRESSIONS, ids=[r["rule"][:60] for _, r in EXPRESSIONS])
def test_message_expression_compiles(apiserver: Any, path: str, rule: dict[str, str]) -> None:
    apiserver.cel.program(rule["messageExpression"])


@pytest.mark.parametrize(
    ("path", "value", "said"),
    [
        (
            "spec",
            {"rollout": {"progressDeadlineSeconds": 120}},
            "rollout.progressDeadlineSeconds (120) is shorter than the startup allowance (300 s: "
            "initialDelaySeconds + periodSeconds x failureThreshold); raise progressDeadlineSeconds "
            "to at least 300 or shorten probes.startup",
        ),
        (
            "spec",
            {"probes": {"startup": {"initialDelaySeconds": 20, "periodSeconds": 10, "failureThreshold": 50}}},
            "rollout.progressDeadlineSeconds (300) is shorter than the startup allowance (520 s: "
            "initialDelaySeconds + periodSeconds x failureThreshold); raise progressDeadlineSeconds "
            "to at least 520 or shorten probes.startup",
        ),
        (
            "spec",
            {"pod": {"terminationGracePeriodSeconds": 30}},
            "pod.terminationGracePeriodSeconds (30) is shorter than timeoutSeconds (60), so a rollout "
            "would cut answers still streaming; raise it to at least 60, or leave it out for the "
            "operator default",
        ),
        (
            "spec.autoscaling",
            {**HPA, "minReplicas": 9},
            "minReplicas (9) is more than maxReplicas (4); lower minReplicas or raise maxReplicas",
        ),
    ],
)
def test_message_expression_says_the_numbers(apiserver: Any, path: str, value: Any, said: str) -> None:
    assert _message(apiserver, path, value) == [said]
