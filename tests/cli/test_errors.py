"""Bad input: a sentence that names the file, the object and the field; a non-zero exit; no traceback."""

from __future__ import annotations

import pytest

from llmgw import cli

EXIT_FINDINGS = 1
EXIT_UNREADABLE = 2


def test_broken_yaml_names_file_line_and_column(llmgw, write):
    path = write(
        "broken.yaml", "apiVersion: llmgateway.dev/v1alpha1\nkind: LLMProvider\nspec:\n  models: [a\n"
    )
    r = llmgw("validate", path)
    assert r.code == EXIT_UNREADABLE
    assert r.out == ""
    assert r.err.startswith(f"llmgw: {path}:5:1: not valid YAML: ")


def test_broken_yaml_in_a_later_document(llmgw, write, provider):
    path = write("broken.yaml", provider("p", "a"), "kind: x\n  bad: indentation\n")
    r = llmgw("validate", path)
    assert r.code == EXIT_UNREADABLE
    assert f"{path}:" in r.err
    assert "not valid YAML" in r.err


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (
            {"kind": "LLMGateway", "spec": {"replicas": "two"}},
            "LLMGateway default/x spec.replicas: 'two' must be an integer",
        ),
        (
            {
                "kind": "LLMProvider",
                "spec": {"type": "vllm", "endpoint": {"url": "http://v:8000"}, "models": 5},
            },
            "LLMProvider default/x spec.models: must be a list, not int",
        ),
        (
            {
                "kind": "LLMProvider",
                "spec": {"type": "tgi", "endpoint": {"url": "http://v:8000"}, "models": [{"name": "a"}]},
            },
            "LLMProvider default/x spec.type: 'tgi' is not allowed; use one of 'vllm', 'ollama'",
        ),
        (
            {
                "kind": "LLMProvider",
                "spec": {
                    "type": "vllm",
                    "endpoint": {"url": "http://v:8000", "service": {"name": "v", "port": 8000}},
                    "models": [{"name": "a"}],
                },
            },
            "LLMProvider default/x spec.endpoint: set exactly one of endpoint.url or endpoint.service",
        ),
        (
            {"kind": "LLMProvider", "spec": {"type": "vllm", "endpoint": {}, "models": [{"name": "a"}]}},
            "LLMProvider default/x spec.endpoint: set exactly one of endpoint.url or endpoint.service",
        ),
        (
            {"kind": "LLMProvider", "spec": {"type": "vllm", "models": [{"name": "a"}]}},
            "LLMProvider default/x spec: endpoint is required for type 'vllm'",
        ),
        (
            {
                "kind": "LLMProvider",
                "spec": {"type": "vllm", "endpoint": {"url": "vllm:8000"}, "models": [{"name": "a"}]},
            },
            "LLMProvider default/x spec.endpoint.url: 'vllm:8000' must be an http:// or https:// URL",
        ),
        (
            {"kind": "LLMProvider", "spec": {"type": "openai", "modles": [{"name": "a"}]}},
            "LLMProvider default/x spec.modles: is not a known field",
        ),
        (
            {"kind": "FallbackChain", "spec": {"model": "a", "fallbacks": ["b"], "trigger": "timeout"}},
            "FallbackChain default/x spec.trigger: 'timeout' is not allowed",
        ),
        (
            {"kind": "FallbackChain", "spec": {"model": "a", "fallbacks": ["a", "b"]}},
            "FallbackChain default/x spec: model 'a' may not fall back to itself",
        ),
        (
            {"kind": "FallbackChain", "spec": {"model": "a"}},
            "FallbackChain default/x spec.fallbacks: is required",
        ),
        (
            {"kind": "FallbackChain", "spec": {"model": "a", "fallbacks": "b"}},
            "FallbackChain default/x spec.fallbacks:",
        ),
        (
            {
                "kind": "LLMProvider",
                "spec": {"type": "openai", "enabled": "maybe", "models": [{"name": "a"}]},
            },
            "LLMProvider default/x spec.enabled: 'maybe' must be true or false",
        ),
        ({"kind": "LLMProvider", "spec": 5}, "LLMProvider default/x spec: must be a mapping, not int"),
        (
            {
                "kind": "LLMProvider",
                "spec": {"type": "openai", "models": [{"name": "a", "contextWindow": 1.5}]},
            },
            "LLMProvider default/x spec.models[0].contextWindow: 1.5 must be an integer",
        ),
        (
            {
                "kind": "LLMProvider",
                "spec": {"type": "openai", "models": [{"name": "a", "params": {"api_key": "k"}}]},
            },
            "LLMProvider default/x spec.models[0].params: key 'api_key' is owned by the operator",
        ),
    ],
)
def test_invalid_objects(llmgw, write, raw, said):
    raw = {"apiVersion": "llmgateway.dev/v1alpha1", "metadata": {"name": "x"}, **raw}
    r = llmgw("validate", write("bad.yaml", raw))
    assert r.code == EXIT_FINDINGS
    assert said in r.out
    assert r.out.endswith(" error(s), 0 warning(s)\n")


@pytest.mark.parametrize(
    ("port", "said"),
    [
        ("HTTP", "'HTTP' must be a port number or an IANA port name"),
        (1.5, "1.5 must be an integer"),
        (70000, "port must be between 1 and 65535"),
    ],
)
def test_a_bad_port_is_one_finding(llmgw, write, provider, port, said):
    p = provider("x", "a", endpoint={"service": {"name": "vllm", "port": port}})
    r = llmgw("validate", write("x.yaml", p))
    assert r.code == EXIT_FINDINGS
    (line,) = [line for line in r.out.splitlines() if " error: " in line]
    assert line.endswith(f"LLMProvider default/x spec.endpoint.service.port: {said}")


def test_a_chain_to_an_unknown_model(llmgw, write, provider, chain):
    r = llmgw("validate", write("x.yaml", provider("p", "a"), chain("c", "a", "gpt-5")))
    assert r.code == EXIT_FINDINGS
    assert "FallbackChain default/c spec.fallbacks[0]: no enabled provider serves model 'gpt-5'" in r.out


@pytest.mark.parametrize("length", [2, 3, 4, 5])
def test_fallback_cycles(llmgw, write, provider, chain, length):
    names = [f"m{i}" for i in range(length)]
    chains = [chain(f"c{i}", names[i], names[(i + 1) % length]) for i in range(length)]
    r = llmgw("validate", write("x.yaml", provider("p", *names), *chains))
    assert r.code == EXIT_FINDINGS
    path = " -> ".join([*names, names[0]])
    assert f"FallbackChain default/c0 spec.fallbacks: fallback cycle {path} (errors)" in r.out
    assert r.out.count("fallback cycle") == length


def test_an_empty_folder(llmgw, tmp_path):
    r = llmgw("validate", tmp_path)
    assert r.code == EXIT_UNREADABLE
    assert r.err == f"llmgw: {tmp_path}: no YAML files (*.yaml, *.yml, *.json) found\n"


@pytest.mark.parametrize("command", ["validate", "render"])
def test_a_missing_path(llmgw, tmp_path, command):
    r = llmgw(command, tmp_path / "nope")
    assert r.code == EXIT_UNREADABLE
    assert r.err == f"llmgw: {tmp_path / 'nope'}: no such file or folder\n"


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "list"), ("hello\n", "str"), ("42\n", "int")],
)
def test_a_document_that_is_not_an_object(llmgw, write, provider, text, kind):
    path = write("x.yaml", provider("p", "a"), text)
    r = llmgw("validate", path)
    assert r.code == EXIT_UNREADABLE
    assert f"{path}:" in r.err
    assert f"document 2 is a {kind}, not a Kubernetes object" in r.err


PROVIDER = """\
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: p, namespace: default}
spec:
  type: vllm
  endpoint: {url: "http://vllm:8000/v1"}
  models:
"""


def _bomb(depth: int, breadth: int = 9, style: str = "flow") -> str:
    """A few lines of anchors that stand for breadth**depth values (a "billion laughs")."""
    lines = ["  - name: m0", "    params:", "      a0: &a0 [" + ", ".join(["x"] * breadth) + "]"]
    for i in range(1, depth):
        if style == "flow":
            lines.append(f"      a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * breadth) + "]")
        elif style == "json":  # no space before an alias
            lines.append(
                f"      a{i}: &a{i} {{" + ",".join(f'"k{k}":*a{i - 1}' for k in range(breadth)) + "}"
            )
        else:
            lines.append(f"      a{i}: &a{i}")
            lines += [f"      - *a{i - 1}"] * breadth
    return PROVIDER + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("depth", "style"), [(5, "flow"), (7, "flow"), (30, "flow"), (5, "json"), (5, "block")]
)
def test_aliases_that_expand_too_far_are_refused_in_a_sentence(llmgw, write, provider, depth, style):
    path = write("bomb.yaml", provider("q", "a"), _bomb(depth, style=style))
    r = llmgw("validate", path)
    assert r.code == EXIT_UNREADABLE
    assert r.out == ""
    line = path.read_text().splitlines().index("---") + 2  # where document 2 starts
    assert r.err.startswith(f"llmgw: {path}:{line}: document 2: its YAML aliases (*name) expand ")
    assert r.err.endswith(
        "more than kubectl and the API server accept; write the values out, or use fewer aliases\n"
    )
    assert r.err.count("\n") == 1


def test_an_alias_that_holds_itself_is_refused(llmgw, write):
    path = write("loop.yaml", PROVIDER + "  - name: m0\n    params: &p\n      a: [*p]\n")
    r = llmgw("validate", path)
    assert r.code == EXIT_UNREADABLE
    assert r.err == (
        f"llmgw: {path}:1: document 1: a YAML alias (*name) refers to a value that holds it, "
        "which never ends; write the value out instead of the alias\n"
    )


def test_aliases_within_bounds_read_as_the_values_written_out(llmgw, write):
    shared = "{temperature: 0.2, max_tokens: 512, extra_body: {tags: [a, b, c]}}"
    models = [f"  - name: m{i}\n    params: {'&p ' + shared if i == 0 else '*p'}\n" for i in range(50)]
    aliased = write("aliased/p.yaml", PROVIDER + "".join(models))
    plain = write(
        "plain/p.yaml", PROVIDER + "".join(m.replace("&p ", "").replace("*p", shared) for m in models)
    )
    assert llmgw("validate", aliased).code == 0
    assert llmgw("render", aliased).out == llmgw("render", plain).out
    # Even the small bomb of 9 * 9 values is an ordinary document.
    assert llmgw("validate", write("small.yaml", _bomb(2))).code == 0


def test_a_folder_with_only_other_kinds(llmgw, write, tmp_path):
    write("deploy.yaml", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}})
    r = llmgw("validate", tmp_path)
    assert r.code == EXIT_FINDINGS
    assert "no LLMProvider, FallbackChain or LLMGateway objects" in r.out
    assert "(apiVersion llmgateway.dev/v1alpha1) in 1 file(s)" in r.out


def test_an_unreadable_file(llmgw, tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kind: caf\xe9\n")
    r = llmgw("validate", path)
    assert r.code == EXIT_UNREADABLE
    assert f"llmgw: {path}: cannot be read" in r.err


def test_no_command(llmgw):
    r = llmgw()
    assert r.code == EXIT_UNREADABLE
    assert "usage: llmgw" in r.err


def test_a_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["validate"])
    assert exc.value.code == EXIT_UNREADABLE
    assert "the following arguments are required: PATH" in capsys.readouterr().err
