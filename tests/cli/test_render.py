"""`llmgw render`: the exact config the operator would store, for one gateway."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmgw.core import estate, pipeline


def test_the_render_has_the_revision_validate_reports(llmgw, samples):
    rendered = llmgw("render", samples)
    assert rendered.code == 0
    assert rendered.err == ""
    (gw,) = json.loads(llmgw("validate", "-o", "json", samples).out)["gateways"]
    assert hashlib.sha256(rendered.out.encode()).hexdigest() == gw["revision"]
    assert yaml.safe_load(rendered.out)["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}


def test_the_render_is_the_pipelines(llmgw, write, provider, chain):
    raws = [provider("p", "a", "b"), chain("c", "a", "b")]
    r = llmgw("render", write("x.yaml", *raws))
    (outcome,) = pipeline.check(estate.build(raws))[0]
    assert r.out == outcome.rendered.text


def test_objects_left_out_are_said_on_stderr(llmgw, write, provider, chain):
    path = write("x.yaml", provider("p", "a", "b"), chain("c", "a", "zz"), chain("d", "b", "a"))
    r = llmgw("render", path)
    assert r.code == 0
    assert yaml.safe_load(r.out)["router_settings"]["fallbacks"] == [{"b": ["a"]}]
    lines = r.err.splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"llmgw: left out: {path}:") for line in lines)
    assert "error: FallbackChain default/c spec.fallbacks: none of the fallbacks is served" in lines[0]
    assert (
        "error: FallbackChain default/c spec.fallbacks[0]: no enabled provider serves model 'zz'" in lines[1]
    )


@pytest.fixture
def two_gateways(write, gateway, provider):
    """A file with gateways a/one and b/two, each serving its namespace's provider."""
    return write(
        "x.yaml",
        gateway("one", namespace="a"),
        gateway("two", namespace="b"),
        provider("pa", "x", namespace="a"),
        provider("pb", "y", namespace="b"),
    )


def test_the_gateway_is_chosen_by_namespace_and_name(llmgw, two_gateways):
    path = two_gateways
    for key, model in (("a/one", "x"), ("b/two", "y")):
        r = llmgw("render", "--gateway", key, path)
        assert r.code == 0
        config = yaml.safe_load(r.out)
        assert [m["model_name"] for m in config["model_list"]] == [model]
        assert r.out.startswith(f"# LiteLLM proxy config rendered by llmgw for LLMGateway {key}.")
    assert llmgw("render", "-g", "a/one", path).out == llmgw("render", "--gateway", "a/one", path).out


def test_several_gateways_need_a_choice(llmgw, two_gateways):
    r = llmgw("render", two_gateways)
    assert r.code == 2
    assert r.out == ""
    assert (
        r.err
        == "llmgw: the input holds 2 gateways (a/one, b/two); choose one with --gateway NAMESPACE/NAME\n"
    )


def test_an_unknown_gateway(llmgw, two_gateways):
    r = llmgw("render", "--gateway", "a/three", two_gateways)
    assert r.code == 2
    assert r.out == ""
    assert r.err == "llmgw: no valid LLMGateway a/three in the input (gateways: a/one, b/two)\n"


def test_an_invalid_gateway_is_not_rendered(llmgw, write, gateway, provider):
    r = llmgw("render", write("x.yaml", gateway(replicas="two"), provider("p", "a")))
    assert r.code == 1
    assert r.out == ""
    assert "no valid LLMGateway in the input; `llmgw validate` says what to fix" in r.err


def test_without_a_gateway_the_default_one_is_rendered(llmgw, write, provider):
    r = llmgw("render", write("x.yaml", provider("p", "a", namespace="x")))
    assert r.code == 0
    assert r.out.startswith("# LiteLLM proxy config rendered by llmgw for LLMGateway default/llmgw.")


def test_as_a_command(samples, tmp_path):
    """Once for real, as installed: the `llmgw` script next to the interpreter."""
    script = Path(sys.executable).with_name("llmgw")
    run = [str(script)] if script.exists() else [sys.executable, "-m", "llmgw.cli"]
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    validate = subprocess.run(
        [*run, "validate", "-o", "json", str(samples)], capture_output=True, text=True, env=env, check=False
    )
    assert validate.returncode == 0, validate.stderr
    render = subprocess.run(
        [*run, "render", str(samples)], capture_output=True, text=True, env=env, check=False
    )
    assert render.returncode == 0, render.stderr
    (gw,) = json.loads(validate.stdout)["gateways"]
    assert hashlib.sha256(render.stdout.encode()).hexdigest() == gw["revision"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [\n")
    failed = subprocess.run(
        [*run, "validate", str(broken)], capture_output=True, text=True, env=env, check=False
    )
    assert failed.returncode == 2
    assert failed.stdout == ""
    assert failed.stderr.startswith(f"llmgw: {broken}:2:1: not valid YAML")
    assert "Traceback" not in failed.stderr
