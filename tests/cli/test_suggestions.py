"""Unknown fields suggest the closest known one, for every kind, wherever a manifest is judged:
`llmgw validate`, the object's status, and admission (all three read `objects.parse`).

And the cloud provider types' refusals (issue 12), as `llmgw validate` prints them.
"""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.core import admission, estate, objects, pipeline, statuses

EXIT_FINDINGS = 1

# (raw object, the line `llmgw validate` prints, at its start)
TYPOS: list[tuple[dict[str, Any], str]] = [
    (
        {
            "kind": "LLMProvider",
            "spec": {"type": "openai", "models": [{"name": "a", "contextWindw": 8192}]},
        },
        "LLMProvider default/x spec.models[0].contextWindw: is not a known field; "
        "did you mean 'contextWindow'?",
    ),
    (
        {"kind": "FallbackChain", "spec": {"model": "a", "fallbacks": ["b"], "trigerr": "errors"}},
        "FallbackChain default/x spec.trigerr: is not a known field; did you mean 'trigger'?",
    ),
    (
        {"kind": "LLMGateway", "spec": {"rollout": {"autoRolback": True}}},
        "LLMGateway default/x spec.rollout.autoRolback: is not a known field; did you mean 'autoRollback'?",
    ),
]


def _raw(raw: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "llmgateway.dev/v1alpha1", "metadata": {"name": "x", "namespace": "default"}, **raw}


@pytest.mark.parametrize(("raw", "said"), TYPOS, ids=[r["kind"] for r, _ in TYPOS])
def test_validate_suggests_the_closest_field(llmgw, write, raw, said):
    r = llmgw("validate", write("bad.yaml", _raw(raw)))
    assert r.code == EXIT_FINDINGS
    assert any(line.endswith(f" error: {said}") for line in r.out.splitlines()), r.out


@pytest.mark.parametrize(("raw", "said"), TYPOS, ids=[r["kind"] for r, _ in TYPOS])
def test_admission_suggests_the_closest_field(raw, said):
    verdict = admission.review(admission.World(estate.build([])), _raw(raw))
    assert not verdict.allowed
    field, message = said.split(" ", 2)[2].split(": ", 1)
    assert f"{field}: {message}" in verdict.message


@pytest.mark.parametrize(("raw", "said"), TYPOS, ids=[r["kind"] for r, _ in TYPOS])
def test_status_suggests_the_closest_field(gateway, raw, said):
    bad = objects.parse(_raw(raw))
    assert isinstance(bad, objects.Invalid)
    message = said.split(": ", 1)[1]
    if bad.kind == "LLMGateway":
        status = statuses.for_invalid_gateway(bad)
    else:
        world = estate.build([gateway(), _raw(raw)])
        outcomes, _ = pipeline.check(world)
        status = statuses.for_objects(world, outcomes)[(bad.kind, bad.namespace, bad.name)]
    (accepted,) = [c for c in status["conditions"] if c["type"] == "Accepted"]
    assert accepted["status"] == "False"
    assert message in accepted["message"]


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        (
            {
                "type": "azure",
                "endpoint": {"url": "https://acme.openai.azure.com"},
                "models": [{"name": "a"}],
            },
            "LLMProvider default/x spec.azure: type azure needs spec.azure: add azure: {apiVersion: ",
        ),
        (
            {"type": "bedrock", "bedrock": {}, "models": [{"name": "a"}]},
            "LLMProvider default/x spec.bedrock.region: is required: the AWS region of the Bedrock runtime",
        ),
        (
            {
                "type": "vllm",
                "endpoint": {"url": "http://vllm:8000"},
                "vertex": {"project": "my-project", "location": "us-central1"},
                "models": [{"name": "a"}],
            },
            "LLMProvider default/x spec.vertex: spec.vertex is only for type vertex, not 'vllm': remove it, "
            "or set type: vertex",
        ),
        (
            {"type": "litellm", "litellm": {"provider": "opnai"}, "models": [{"name": "a"}]},
            "LLMProvider default/x spec.litellm.provider: 'opnai' is not a provider LiteLLM 1.106.2 knows; "
            "did you mean 'openai'?",
        ),
    ],
)
def test_validate_refuses_cloud_settings_in_a_sentence(llmgw, write, spec, said):
    r = llmgw("validate", write("bad.yaml", _raw({"kind": "LLMProvider", "spec": spec})))
    assert r.code == EXIT_FINDINGS
    assert said in r.out
