"""`llmgw validate`: the samples pass; findings name the file, line, object and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

P = "llmgateway.dev/v1alpha1"


def test_the_samples_are_valid(llmgw, samples):
    r = llmgw("validate", samples)
    assert r.code == 0
    assert r.err == ""
    assert r.out.endswith("ok: 0 error(s), 0 warning(s)\n")
    assert "gateway ai-platform/main: 7 provider(s), 10 model(s), 7 chain(s)" in r.out
    order = "llama-3.1-8b (131072) -> qwen-2.5-7b (32768) -> llama-3.2-3b (8192) -> gpt-4o-mini (128000)"
    assert f"FallbackChain ai-platform/llama-errors (errors): {order}" in r.out


def test_a_single_file_can_be_validated(llmgw, samples):
    r = llmgw("validate", samples / "providers-gpu.yaml")
    assert r.code == 0
    assert "gateway default/llmgw" in r.out  # no gateway in the file: the default one


def test_several_paths_are_read_together(llmgw, samples):
    r = llmgw(
        "validate", samples / "providers-gpu.yaml", samples / "providers-cloud.yaml", samples / "chains.yaml"
    )
    assert r.code == 0


def test_objects_of_other_kinds_are_ignored(llmgw, samples, write, tmp_path):
    for path in samples.iterdir():
        write(path.name, path.read_text())
    write(
        "other.yaml",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "x"},
            "spec": {"replicas": "two"},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}, "data": {"a": "b"}},
        {"apiVersion": "example.com/v1", "kind": "LLMProvider", "metadata": {"name": "z"}, "spec": 5},
    )
    r = llmgw("validate", tmp_path)
    assert r.code == 0
    assert r.out == llmgw("validate", samples).out


def test_json_output(llmgw, write, provider, chain):
    path = write("estate.yaml", provider("p", "a", "b"), chain("ok", "a", "b"), chain("bad", "b", "zz"))
    r = llmgw("validate", "-o", "json", path)
    assert r.code == 1
    report = json.loads(r.out)
    assert report["errors"] == 2
    assert report["warnings"] == 0
    unknown = [f for f in report["findings"] if f["field"] == "spec.fallbacks[0]"]
    assert unknown == [
        {
            "severity": "error",
            "kind": "FallbackChain",
            "namespace": "default",
            "name": "bad",
            "field": "spec.fallbacks[0]",
            "reason": "UnknownModel",
            "message": unknown[0]["message"],
            "text": f"FallbackChain default/bad spec.fallbacks[0]: {unknown[0]['message']}",
            "file": str(path),
            "line": yaml_line(path, "- zz"),
        }
    ]
    assert "'zz'" in unknown[0]["message"]
    (gw,) = report["gateways"]
    assert gw["namespace"] == "default"
    assert gw["name"] == "llmgw"
    assert gw["models"] == ["a", "b"]
    assert gw["providers"] == 1
    assert gw["configMap"] == f"llmgw-config-{gw['revision'][:10]}"
    assert gw["chains"] == [
        {
            "namespace": "default",
            "name": "ok",
            "trigger": "errors",
            "effectiveOrder": ["a", "b"],
            "attempts": [{"model": "a", "mode": "chat"}, {"model": "b", "mode": "chat"}],
        }
    ]


def yaml_line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


def test_github_annotations(llmgw, write, provider, chain, gateway):
    path = write(
        "estate.yaml",
        gateway(selector={"matchLabels": {"team": "a"}}),
        provider("p", "a", "b", labels={"team": "a"}),
        chain("bad", "b", "zz", labels={"team": "a"}),
        provider("lonely", "c"),
    )
    r = llmgw("validate", "--output", "github", path)
    assert r.code == 1
    lines = r.out.splitlines()
    assert (
        f"::error file={path},line={yaml_line(path, '- zz')}::FallbackChain default/bad spec.fallbacks"
        in "\n".join(lines)
    )
    assert any(
        line.startswith(f"::warning file={path},line=") and "LLMProvider default/lonely" in line
        for line in lines
    )
    assert all(line.startswith(("::error ", "::warning ")) for line in lines)


def test_github_annotations_are_escaped_one_finding_per_line(llmgw, write, tmp_path):
    # A newline in a name would start a workflow command of its own (a forged annotation);
    # GitHub wants %25, %0D and %0A in the message, and %3A and %2C too in a property (file=).
    name = "p\r\n::error file=x,line=1::50% forged, a:b"
    path = write(
        "odd:name,1.yaml",
        {"apiVersion": P, "kind": "LLMProvider", "metadata": {"name": name}, "spec": {"type": "vllm"}},
    )
    r = llmgw("validate", "-o", "github", path)
    assert r.code == 1
    lines = r.out.splitlines()
    assert len(lines) == 2  # metadata.name, spec.endpoint
    assert r.out.count("\n") == 2
    assert "\r" not in r.out
    file = f"{tmp_path}/odd%3Aname%2C1.yaml"
    shown = "LLMProvider default/p%0D%0A::error file=x,line=1::50%25 forged, a:b"
    assert lines[0].startswith(f"::error file={file},line=")
    assert f"::{shown} metadata.name: " in lines[0]
    assert lines[1] == (
        f"::error file={file},line={yaml_line(path, 'type: vllm')}::{shown} spec: "
        "endpoint is required for type 'vllm'"
    )


def test_warnings_fail_only_with_strict(llmgw, write, provider, gateway):
    path = write("estate.yaml", gateway(), provider("p", "a"), provider("elsewhere", "b", namespace="other"))
    relaxed = llmgw("validate", path)
    assert relaxed.code == 0
    assert "warning: LLMProvider other/elsewhere metadata.labels: no gateway serves it" in relaxed.out
    assert relaxed.out.endswith("ok: 0 error(s), 1 warning(s)\n")
    assert llmgw("validate", "--strict", path).code == 1


def test_findings_point_at_the_line_of_the_field(llmgw, write):
    path = write(
        "estate.yaml",
        """\
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata:
  name: p
spec:
  type: vllm
  endpoint:
    url: http://vllm:8000
  models:
    - name: a
    - name: b
""",
        """\
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata:
  name: q
spec:
  type: vllm
  endpoint:
    url: http://vllm:8000
  models:
    - name: c
    - name: d
      rpm: 0
""",
        """\
apiVersion: llmgateway.dev/v1alpha1
kind: FallbackChain
metadata:
  name: ch
spec:
  model: a
  fallbacks:
    - b
    - nope
""",
    )
    r = llmgw("validate", path)
    assert r.code == 1
    assert f"{path}:24: error: LLMProvider default/q spec.models[1].rpm:" in r.out
    assert f"{path}:34: error: FallbackChain default/ch spec.fallbacks[1]:" in r.out


def test_a_kind_list_is_read_item_by_item(llmgw, write, provider, chain):
    path = write(
        "list.yaml",
        {"apiVersion": "v1", "kind": "List", "items": [provider("p", "a"), chain("c", "a", "zz")]},
    )
    r = llmgw("validate", path)
    assert r.code == 1
    assert "FallbackChain default/c spec.fallbacks[0]: no enabled provider serves model 'zz'" in r.out


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_yaml_and_json_files_are_read(llmgw, tmp_path, provider, suffix):
    (tmp_path / f"p{suffix}").write_text(
        json.dumps(provider("p", "a")) if suffix == ".json" else yaml.dump(provider("p", "a"))
    )
    (tmp_path / "notes.txt").write_text("not: [valid")
    r = llmgw("validate", tmp_path)
    assert r.code == 0
    assert "1 provider(s)" in r.out


def test_another_version_of_our_kinds_is_a_finding(llmgw, write, provider):
    raw = provider("p", "a")
    raw["apiVersion"] = "llmgateway.dev/v1"
    r = llmgw("validate", write("p.yaml", raw))
    assert r.code == 1
    assert "LLMProvider default/p apiVersion: 'llmgateway.dev/v1' is not allowed" in r.out
    assert P in r.out


def test_services_and_namespaces_in_the_input_are_used(llmgw, write, provider, gateway):
    path = write(
        "x.yaml",
        gateway(
            namespace="ai", namespaces={"from": "Selector", "selector": {"matchLabels": {"publish": "yes"}}}
        ),
        provider(
            "p",
            "a",
            namespace="team",
            endpoint={"service": {"name": "vllm", "namespace": "gpu", "port": "http"}},
        ),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"publish": "yes"}}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "vllm", "namespace": "gpu"},
            "spec": {"ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": 8000}]},
        },
    )
    assert llmgw("validate", path).code == 0
    config = yaml.safe_load(llmgw("render", path).out)
    assert (
        config["model_list"][0]["litellm_params"]["api_base"] == "http://vllm.gpu.svc.cluster.local:8000/v1"
    )


def test_a_named_port_without_its_service_is_a_finding(llmgw, write, provider):
    p = provider("p", "a", endpoint={"service": {"name": "vllm", "namespace": "gpu", "port": "http"}})
    r = llmgw("validate", write("x.yaml", p))
    assert r.code == 1
    assert "LLMProvider default/p spec.endpoint.service.port: port name 'http' cannot be resolved" in r.out
    assert "Service gpu/vllm is not known" in r.out
