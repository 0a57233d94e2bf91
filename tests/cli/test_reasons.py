"""Reasons of per-object findings: an endpoint error says InvalidEndpoint, the rest InvalidSpec.

DESIGN.md names `InvalidEndpoint` among the reasons of `Accepted`; the same word is
what `llmgw validate -o json` reports, so a pull request check can tell a bad
endpoint from any other invalid field.
"""

from __future__ import annotations

import json

import pytest

from llmgw.core import findings, objects

ENDPOINT_ERRORS = [
    pytest.param({"url": "ftp://backend"}, "spec.endpoint.url", id="bad-url"),
    pytest.param({}, "spec.endpoint", id="neither-url-nor-service"),
    pytest.param(
        {"url": "http://backend:8000", "service": {"name": "vllm", "port": 8000}},
        "spec.endpoint",
        id="both-url-and-service",
    ),
    pytest.param({"service": {"name": "vllm", "port": 70000}}, "spec.endpoint.service.port", id="port-range"),
    pytest.param({"service": {"name": "vllm", "port": "HTTP"}}, "spec.endpoint.service.port", id="port-name"),
    pytest.param(
        {"service": {"name": "Not_A_Label", "port": 80}}, "spec.endpoint.service.name", id="svc-name"
    ),
    pytest.param({"url": "http://backend", "tls": True}, "spec.endpoint.tls", id="unknown-field"),
]


def _reasons(parsed: objects.Parsed | objects.Invalid) -> set[tuple[str, str]]:
    assert isinstance(parsed, objects.Invalid)
    return {(f.field, f.reason) for f in parsed.findings}


@pytest.mark.parametrize(("endpoint", "field"), ENDPOINT_ERRORS)
def test_an_endpoint_error_is_invalid_endpoint(provider, endpoint, field):
    parsed = objects.parse(provider("p", "a", endpoint=endpoint))
    assert _reasons(parsed) == {(field, findings.INVALID_ENDPOINT)}
    assert findings.reason_of(parsed.findings) == findings.INVALID_ENDPOINT


def test_a_missing_endpoint_is_invalid_endpoint(provider):
    parsed = objects.parse(provider("p", "a", url=None))
    assert _reasons(parsed) == {("spec", findings.INVALID_ENDPOINT)}
    (only,) = parsed.findings
    assert only.message == "endpoint is required for type 'vllm'"


def test_a_cloud_type_may_leave_the_endpoint_out(provider):
    assert not isinstance(objects.parse(provider("p", "a", type="openai", url=None)), objects.Invalid)


def test_other_errors_stay_invalid_spec(provider, gateway, chain):
    assert _reasons(objects.parse(provider("p", {"name": "a", "rpm": 0}))) == {
        ("spec.models[0].rpm", findings.INVALID_SPEC)
    }
    assert _reasons(objects.parse(gateway(replicas="two"))) == {("spec.replicas", findings.INVALID_SPEC)}
    assert _reasons(objects.parse(chain("c", "a", "a"))) == {("spec", findings.INVALID_SPEC)}


def test_an_object_with_both_kinds_of_error_is_invalid_spec(provider):
    parsed = objects.parse(provider("p", {"name": "a", "rpm": 0}, endpoint={"url": "ftp://x"}))
    assert isinstance(parsed, objects.Invalid)
    assert _reasons(parsed) == {
        ("spec.endpoint.url", findings.INVALID_ENDPOINT),
        ("spec.models[0].rpm", findings.INVALID_SPEC),
    }
    assert findings.reason_of(parsed.findings) == findings.INVALID_SPEC


def test_validate_json_reports_invalid_endpoint(llmgw, write, provider):
    path = write(
        "estate.yaml",
        provider("bad-url", "a", endpoint={"url": "ftp://backend"}),
        provider("no-endpoint", "b", url=None),
        provider("bad-rpm", {"name": "c", "rpm": 0}),
    )
    r = llmgw("validate", "-o", "json", path)
    assert r.code == 1
    report = json.loads(r.out)
    got = {(f["name"], f["field"], f["reason"]) for f in report["findings"]}
    assert got == {
        ("bad-url", "spec.endpoint.url", "InvalidEndpoint"),
        ("no-endpoint", "spec", "InvalidEndpoint"),
        ("bad-rpm", "spec.models[0].rpm", "InvalidSpec"),
    }
    (bad_url,) = [f for f in report["findings"] if f["name"] == "bad-url"]
    assert bad_url["text"] == (
        "LLMProvider default/bad-url spec.endpoint.url: 'ftp://backend' must be an http:// or "
        "https:// URL with a host, e.g. http://vllm:8000/v1"
    )
