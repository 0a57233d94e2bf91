"""`statuses.backend_conditions`: ResolvedRefs, BackendReady and ModelsAvailable of one provider."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.core import statuses
from llmgw.core.backends import Backends, Probe

SERVICE = {"service": {"name": "vllm", "port": 8000}}
NAMED = {"service": {"name": "vllm", "port": "http"}}
ELSEWHERE = {"service": {"name": "vllm", "namespace": "models", "port": 8000}}
PORTS = {("default", "vllm"): {"http": 8000}}


def conditions_of(world, valid, raw: dict[str, Any], **context: Any) -> list[dict[str, Any]]:
    est, _ = world(raw, **context)
    (p,) = est.providers
    conds = statuses.backend_conditions(est, p)
    valid("LLMProvider", {"conditions": conds})
    return conds


def table(conds: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c["reason"]) for c in conds]


@pytest.mark.parametrize(
    ("endpoint", "ports", "backends", "want", "says"),
    [
        pytest.param(
            SERVICE,
            {},
            Backends(services_known=False),
            [("ResolvedRefs", "Unknown", "NotChecked"), ("BackendReady", "Unknown", "NotChecked")],
            "Service default/vllm not looked up",
            id="not-looked-up",
        ),
        pytest.param(
            SERVICE,
            {},
            Backends(services_known=True),
            [("ResolvedRefs", "False", "ServiceNotFound"), ("BackendReady", "False", "ServiceNotFound")],
            "Service default/vllm does not exist; create it or fix spec.endpoint.service",
            id="service-missing",
        ),
        pytest.param(
            NAMED,
            {("default", "vllm"): {"grpc": 9000}},
            Backends(services_known=True),
            [("ResolvedRefs", "False", "PortNotFound"), ("BackendReady", "False", "PortNotFound")],
            "Service default/vllm has no port named 'http'",
            id="port-missing",
        ),
        pytest.param(
            NAMED,
            PORTS,
            Backends(services_known=True),
            [("ResolvedRefs", "True", "ResolvedRefs"), ("BackendReady", "False", "NoReadyEndpoints")],
            "Service default/vllm has no ready endpoints",
            id="no-ready-endpoints",
        ),
        pytest.param(
            SERVICE,
            PORTS,
            Backends(services_known=True, ready_endpoints={("default", "vllm"): 3}),
            [("ResolvedRefs", "True", "ResolvedRefs"), ("BackendReady", "True", "BackendReady")],
            "Service default/vllm has 3 ready endpoint(s)",
            id="ready-endpoints",
        ),
        pytest.param(
            ELSEWHERE,
            {("models", "vllm"): {}},
            Backends(services_known=True, ready_endpoints={("models", "vllm"): 1}),
            [("ResolvedRefs", "True", "ResolvedRefs"), ("BackendReady", "True", "BackendReady")],
            "Service models/vllm has 1 ready endpoint(s)",
            id="service-in-another-namespace",
        ),
        pytest.param(
            ELSEWHERE,
            PORTS,
            Backends(services_known=True, ready_endpoints={("default", "vllm"): 1}),
            [("ResolvedRefs", "False", "ServiceNotFound"), ("BackendReady", "False", "ServiceNotFound")],
            "Service models/vllm does not exist",
            id="same-name-in-the-wrong-namespace",
        ),
    ],
)
def test_a_service_backend_is_resolved_then_ready(
    endpoint, ports, backends, want, says, provider, world, valid
):
    raw = provider("p", "m", url=None, endpoint=endpoint)
    conds = conditions_of(world, valid, raw, service_ports=ports, backends=backends)
    assert table(conds) == want
    assert conds[-1]["message"].startswith(says)


@pytest.mark.parametrize(
    ("models", "probe", "want", "says"),
    [
        pytest.param(
            ["m"],
            None,
            [("BackendReady", "Unknown", "NotProbed"), ("ModelsAvailable", "Unknown", "NotProbed")],
            "not probed yet",
            id="not-probed",
        ),
        pytest.param(
            ["m"],
            Probe(error="connection refused"),
            [("BackendReady", "False", "ProbeFailed"), ("ModelsAvailable", "Unknown", "ProbeFailed")],
            "connection refused",
            id="probe-failed",
        ),
        pytest.param(
            ["m"],
            Probe(),
            [("BackendReady", "False", "ProbeFailed"), ("ModelsAvailable", "Unknown", "ProbeFailed")],
            "the probe failed",
            id="probe-failed-without-a-reason",
        ),
        pytest.param(
            ["m", {"name": "chat", "backendModel": "llama3"}],
            Probe(models=("llama3", "m", "other")),
            [("BackendReady", "True", "BackendReady"), ("ModelsAvailable", "True", "ModelsAvailable")],
            "the backend serves all 2 declared model(s)",
            id="all-served",
        ),
        pytest.param(
            ["m", {"name": "chat", "backendModel": "llama3"}],
            Probe(models=("chat", "other")),
            [("BackendReady", "True", "BackendReady"), ("ModelsAvailable", "False", "ModelsMissing")],
            "the backend does not serve 'm', 'llama3' (it serves 'chat', 'other')",
            id="models-missing",
        ),
        pytest.param(
            ["m"],
            Probe(models=()),
            [("BackendReady", "True", "BackendReady"), ("ModelsAvailable", "False", "ModelsMissing")],
            "the backend does not serve 'm' (it serves nothing)",
            id="backend-serves-nothing",
        ),
        pytest.param(
            [],
            Probe(models=("x", "y")),
            [("BackendReady", "True", "BackendReady"), ("ModelsAvailable", "True", "Discovered")],
            "serving the 2 model(s) the backend reports",
            id="discovered",
        ),
    ],
)
def test_discovery_probes_a_url_backend_and_checks_its_models(
    models, probe, want, says, provider, world, valid
):
    raw = provider("p", *models, discovery={"enabled": True})
    probes = {("default", "p"): probe} if probe is not None else {}
    conds = conditions_of(world, valid, raw, backends=Backends(probes=probes))
    assert table(conds) == want
    assert conds[-1]["message"].startswith(says)


def test_a_service_backend_with_discovery_is_ready_by_its_endpoints_and_checked_by_its_probe(
    provider, world, valid
):
    raw = provider("p", "m", url=None, endpoint=SERVICE, discovery={"enabled": True})
    backends = Backends(services_known=True, probes={("default", "p"): Probe(error="timeout")})
    conds = conditions_of(world, valid, raw, service_ports=PORTS, backends=backends)
    assert table(conds) == [
        ("ResolvedRefs", "True", "ResolvedRefs"),
        ("BackendReady", "False", "NoReadyEndpoints"),
        ("ModelsAvailable", "Unknown", "ProbeFailed"),
    ]


@pytest.mark.parametrize(
    ("spec", "probe"),
    [
        pytest.param({}, None, id="url-without-discovery"),
        pytest.param({}, Probe(models=("x",)), id="url-with-a-stale-probe"),
        pytest.param({"type": "openai", "url": None, "discovery": {"enabled": True}}, None, id="cloud"),
        pytest.param(
            {"type": "anthropic", "discovery": {"enabled": True}}, Probe(models=("x",)), id="cloud-url"
        ),
    ],
)
def test_a_url_or_cloud_backend_without_discovery_has_no_backend_conditions(
    spec, probe, provider, world, valid
):
    probes = {("default", "p"): probe} if probe is not None else {}
    conds = conditions_of(world, valid, provider("p", "m", **spec), backends=Backends(probes=probes))
    assert conds == []


def test_backend_conditions_carry_the_providers_generation(provider, world, valid, generation):
    raw = generation(provider("p", "m", url=None, endpoint=SERVICE), 5)
    conds = conditions_of(world, valid, raw, service_ports=PORTS, backends=Backends(services_known=True))
    assert [c["observedGeneration"] for c in conds] == [5, 5]
