"""`llmgw validate` on issue 11's fields: a production gateway passes; each bad one is one sentence
naming the object and the field, with what to do, and no traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

EXIT_FINDINGS = 1
ROOT = Path(__file__).parents[2]
HPA = {"maxReplicas": 4, "targetCPUUtilizationPercentage": 70}
GW = "LLMGateway default/gw"


def _errors(llmgw: Any, write: Any, gateway: Any, provider: Any, spec: dict[str, Any]) -> list[str]:
    r = llmgw("validate", write("gw.yaml", provider("p", "a"), gateway("gw", **spec)))
    assert r.code == EXIT_FINDINGS
    return [line.split(" error: ", 1)[1] for line in r.out.splitlines() if " error: " in line]


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        (
            {"env": [{"name": "LITELLM_MASTER_KEY", "value": "sk-1234"}]},
            f"{GW} spec.env[0].name: the operator owns LITELLM_MASTER_KEY: it carries the proxy master "
            "key; set spec.masterKeySecretRef instead",
        ),
        (
            {"replicas": 3, "autoscaling": HPA},
            f"{GW} spec.replicas: may not be set together with autoscaling: the HorizontalPodAutoscaler "
            "owns the replica count (it starts from autoscaling.minReplicas); remove spec.replicas",
        ),
        (
            {"autoscaling": {**HPA, "minReplicas": 5}},
            f"{GW} spec.autoscaling.minReplicas: 5 is more than maxReplicas (4); lower minReplicas to at "
            "most 4 or raise maxReplicas",
        ),
        (
            {"route": {"hostnames": ["llm.example.com"]}},
            f"{GW} spec.route.parentRefs: a route needs at least one parentRefs entry: name the Gateway it "
            "attaches to, e.g. parentRefs: [{name: public, namespace: gateways}]",
        ),
        (
            {"probes": {"startup": {"failureThreshold": 100}}, "rollout": {"progressDeadlineSeconds": 400}},
            f"{GW} spec.rollout.progressDeadlineSeconds: 400 is shorter than the startup probe's allowance "
            "of 500 s (probes.startup initialDelaySeconds + periodSeconds x failureThreshold), so a revision "
            "still starting would be rolled back; raise it to at least 500 or shorten probes.startup",
        ),
        (
            {
                "env": [{"name": "LANGFUSE_HOST", "value": "https://langfuse.example.com"}],
                "litellmSettings": {
                    "success_callback": ["langfuse"],
                    "langfuse_secret": "os.environ/LANGFUSE_SECRET",
                },
            },
            f"{GW} spec.litellmSettings: value at .langfuse_secret reads 'LANGFUSE_SECRET' from the "
            "gateway's environment (os.environ/LANGFUSE_SECRET), which the gateway does not declare; "
            "declare LANGFUSE_SECRET in spec.env (or in spec.envFrom, by its prefix), or use a typed "
            "secret reference",
        ),
        (
            {"routerSettings": {"redis_url": "os.environ/REDIS_URL"}},
            f"{GW} spec.routerSettings: value at .redis_url reads 'REDIS_URL'",
        ),
        (
            {"generalSettings": {"master_key": "sk-1234"}},
            f"{GW} spec.generalSettings: key 'master_key' is owned by the operator; use "
            "spec.masterKeySecretRef or spec.database.urlSecretRef instead",
        ),
        (
            {"pod": {"securityContext": {"runAsUser": 0}}},
            f"{GW} spec.pod.securityContext: is not a known field",
        ),
    ],
)
def test_refused(llmgw, write, gateway, provider, spec, said):
    (line,) = _errors(llmgw, write, gateway, provider, spec)
    assert line.startswith(said)


def test_declared_env_may_be_read_by_a_passthrough(llmgw, write, gateway, provider):
    spec = {
        "env": [
            {
                "name": "LANGFUSE_PUBLIC_KEY",
                "valueFrom": {"secretKeyRef": {"name": "langfuse", "key": "public"}},
            },
            {
                "name": "LANGFUSE_SECRET_KEY",
                "valueFrom": {"secretKeyRef": {"name": "langfuse", "key": "secret"}},
            },
        ],
        "envFrom": [{"prefix": "DD_", "secretRef": {"name": "datadog"}}],
        "litellmSettings": {
            "success_callback": ["langfuse", "datadog"],
            "langfuse_public_key": "os.environ/LANGFUSE_PUBLIC_KEY",
            "langfuse_secret_key": "os.environ/LANGFUSE_SECRET_KEY",
            "datadog_api_key": "os.environ/DD_API_KEY",
        },
    }
    r = llmgw("validate", write("gw.yaml", provider("p", "a"), gateway("gw", **spec)))
    assert r.code == 0, r.out
    assert r.out.endswith("ok: 0 error(s), 0 warning(s)\n")


def test_several_problems_are_each_a_finding(llmgw, write, gateway, provider):
    lines = _errors(
        llmgw,
        write,
        gateway,
        provider,
        {"replicas": 2, "autoscaling": HPA, "rollout": {"progressDeadlineSeconds": 60}},
    )
    assert [line.split(":", 1)[0] for line in lines] == [
        f"{GW} spec.replicas",
        f"{GW} spec.rollout.progressDeadlineSeconds",
    ]


def test_a_production_gateway_validates(llmgw, provider, write):
    sample = (ROOT / "tests" / "api" / "samples" / "good" / "production.yaml").read_text()
    r = llmgw("validate", write("production.yaml", provider("p", "a", namespace="ai-platform"), sample))
    assert r.code == 0, r.out
    assert "gateway ai-platform/production" in r.out
