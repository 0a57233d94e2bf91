"""Fuzzed manifests through the CLI, in process: `llmgw validate` (text, json, github) and `render`.

Never a traceback; exit 0 clean, 1 with findings, 2 for YAML that cannot be read, always with
a sentence; every invalid object named in the output; `render` prints the pipeline's own bytes,
which are safe (`safe.assert_safe_render`). Hand-written YAML with tricks where a model name
goes (unquoted `a: b`, `&anchor`, tags, `os.environ/`) is read or refused, never obeyed.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from llmgw import cli, manifests
from llmgw.core import pipeline

from . import hostile, runs, safe

TRIED: collections.Counter[str] = collections.Counter()
EXITS: collections.Counter[str] = collections.Counter()
some = runs.random_inputs(120)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print(
        f"\nfuzz inputs tried (cli): {dict(TRIED)}, {sum(TRIED.values())} in all; yaml tricks: {dict(EXITS)}"
    )


def llmgw(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def ours(raw: dict[str, Any]) -> bool:
    """What `llmgw validate` reads: our kinds of our API group (other groups are not its business)."""
    return str(raw.get("apiVersion", "")).startswith("llmgateway.dev/")


@some
@given(hostile.estates())
def test_validate_and_render_never_crash_and_name_every_invalid_object(raws: list[dict[str, Any]]) -> None:
    TRIED["validate"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "estate.yaml"
        path.write_text(yaml.safe_dump_all(raws, allow_unicode=True), encoding="utf-8")
        code, out, err = llmgw("validate", str(path))
        assert "Traceback" not in out + err
        loaded = manifests.load([path])
        est = loaded.estate()
        outcomes, found = pipeline.check(est)
        errors = [f for f in found if f.severity == "error"]
        if not any(ours(r) for r in raws):
            assert code == 1
            assert "no LLMProvider, FallbackChain or LLMGateway objects" in out
            return
        assert code == (1 if errors else 0), out + err
        for f in found:
            assert str(f) in out
        for bad in est.invalid:
            assert f"{bad.kind} {bad.namespace}/{bad.name}" in out

        code, out, _ = llmgw("validate", "-o", "json", str(path))
        report = json.loads(out)
        assert len(report["findings"]) == len(found)
        for row in report["findings"]:
            assert row["file"] == str(path)
            assert row["line"] >= 1

        for outcome in outcomes:
            gw = outcome.resolution.gateway.metadata
            chosen = ["--gateway", f"{gw.namespace}/{gw.name}"] if est.gateways else []
            code, out, err = llmgw("render", str(path), *chosen)
            assert code == 0, err
            assert out == outcome.rendered.text
            safe.assert_safe_render(est, outcome)


TEMPLATE = """\
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {{name: p, namespace: default}}
spec:
  type: vllm
  endpoint: {{url: "http://vllm:8000/v1"}}
  models:
  - name: m0
  - name: {s}
    aliases: [{s}]
    params: {{extra_body: {s}}}
---
apiVersion: llmgateway.dev/v1alpha1
kind: FallbackChain
metadata: {{name: c, namespace: default}}
spec:
  model: m0
  fallbacks: [{s}]
"""


@some
@given(st.one_of(st.sampled_from(hostile.INJECTIONS), hostile.hostile_text()))
def test_yaml_written_by_hand_with_tricks_is_read_or_refused_never_obeyed(s: str) -> None:
    TRIED["yaml tricks"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tricks.yaml"
        path.write_text(TEMPLATE.format(s=s), encoding="utf-8")
        code, out, err = llmgw("validate", str(path))
        assert "Traceback" not in out + err
        EXITS[f"exit {code}"] += 1
        if code == 2:  # refused as YAML, in one sentence that says where
            assert err.startswith(f"llmgw: {path}:"), err
            assert err.count("\n") == 1, err
            return
        assert code in (0, 1), (code, out, err)
        loaded = manifests.load([path])
        est = loaded.estate()
        outcomes, _ = pipeline.check(est)
        (outcome,) = outcomes
        safe.assert_safe_render(est, outcome)
        code, out, err = llmgw("render", str(path))
        assert code == 0, err
        assert out == outcome.rendered.text


def _bomb(breadth: int, depth: int) -> str:
    lines = [
        "apiVersion: llmgateway.dev/v1alpha1",
        "kind: LLMProvider",
        "metadata: {name: p, namespace: default}",
        "spec:",
        "  type: vllm",
        "  endpoint: {url: 'http://vllm:8000/v1'}",
        "  models:",
        "  - name: m0",
        "    params:",
        "      a0: &a0 [" + ", ".join(["x"] * breadth) + "]",
    ]
    for i in range(1, depth):
        lines.append(f"      a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * breadth) + "]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb(breadth=9, depth=5), encoding="utf-8")  # 59,049 values from 6 lines
    code, out, _ = llmgw("validate", str(path))
    assert code != 0, out


def test_github_annotations_hold_one_finding_per_line(tmp_path: Path) -> None:
    evil = {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMProvider",
        "metadata": {"name": "p\n::error file=README.md,line=1::forged", "namespace": "default"},
        "spec": {"type": "vllm"},
    }
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(evil), encoding="utf-8")
    code, out, _ = llmgw("validate", "-o", "github", str(path))
    assert code == 1
    assert len(out.splitlines()) == len(manifests.load([path]).estate().invalid[0].findings)
