"""Upgrade, in spirit: the previous released chart and HEAD both render, and what was valid stays valid.

`previous/` holds the packaged chart of the last release (`helm package charts/llmgw`);
replace it with the new package when a chart version is released. Checked here:

- both charts render with their defaults, and the previous defaults given to HEAD as a
  user's values file still pass HEAD's schema (a user's values keep working);
- the operator Deployment's selector is unchanged (it is immutable: a change breaks
  `helm upgrade`);
- HEAD's CRDs keep every served version, the storage version, names and scope of the
  previous ones, and every object valid under the previous CRDs (the samples, the test
  samples, the previous chart's default gateway) is valid under HEAD's.
"""

from __future__ import annotations

import functools
import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from llmgw.api import crdgen

from .conftest import ROOT, find

Raw = dict[str, Any]
Render = Callable[..., list[Raw]]
PREVIOUS = sorted((Path(__file__).parent / "previous").glob("llmgw-*.tgz"))[-1]
KINDS = {"LLMProvider", "FallbackChain", "LLMGateway"}


def previous_file(name: str) -> bytes:
    with tarfile.open(PREVIOUS) as tar:
        member = tar.extractfile(f"llmgw/{name}")
        assert member is not None, name
        return member.read()


@functools.cache
def previous_crds() -> dict[str, Raw]:
    with tarfile.open(PREVIOUS) as tar:
        names = [m.name for m in tar.getmembers() if m.name.startswith("llmgw/files/crds/")]
    docs = (yaml.safe_load(io.BytesIO(previous_file(n.removeprefix("llmgw/")))) for n in names)
    return {d["spec"]["names"]["kind"]: d for d in docs}


@functools.cache
def head_crds() -> dict[str, Raw]:
    docs = map(yaml.safe_load, crdgen.crd_files().values())
    return {d["spec"]["names"]["kind"]: d for d in docs}


def schema(crd: Raw, version: str) -> Raw:
    (v,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return dict(v["schema"]["openAPIV3Schema"])


def objects() -> list[Raw]:
    out = []
    for folder in (ROOT / "config" / "samples", ROOT / "tests" / "api" / "samples" / "good"):
        for path in sorted(folder.glob("*.yaml")):
            out += [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") in KINDS]
    return out


def test_previous_and_head_charts_both_render(render: Render) -> None:
    before, after = render(chart=PREVIOUS), render()
    assert find(before, "Deployment")
    assert find(after, "Deployment")
    assert find(before, "Deployment")["spec"]["selector"] == find(after, "Deployment")["spec"]["selector"]


def test_previous_default_values_still_pass_heads_schema(render: Render, tmp_path: Path) -> None:
    values = tmp_path / "previous-values.yaml"
    values.write_bytes(previous_file("values.yaml"))
    assert find(render([values]), "Deployment")


def test_crds_keep_versions_names_and_scope() -> None:
    before, after = previous_crds(), head_crds()
    assert set(before) <= set(after)
    for kind, old in before.items():
        new = after[kind]
        assert new["spec"]["group"] == old["spec"]["group"]
        assert new["spec"]["scope"] == old["spec"]["scope"]
        assert new["spec"]["names"]["plural"] == old["spec"]["names"]["plural"]
        served = {v["name"] for v in new["spec"]["versions"] if v.get("served")}
        assert {v["name"] for v in old["spec"]["versions"] if v.get("served")} <= served
        stored = [v["name"] for v in old["spec"]["versions"] if v.get("storage")]
        assert set(stored) <= {v["name"] for v in new["spec"]["versions"]}, "a stored version was dropped"


@pytest.mark.parametrize("obj", objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_objects_valid_before_stay_valid(obj: Raw) -> None:
    version = obj["apiVersion"].split("/")[1]
    before = schema(previous_crds()[obj["kind"]], version)
    try:
        jsonschema.validate(obj, before)
    except jsonschema.ValidationError:
        pytest.skip("not valid under the previous CRDs either")
    jsonschema.validate(obj, schema(head_crds()[obj["kind"]], version))


def test_previous_default_gateway_stays_valid() -> None:
    values = yaml.safe_load(previous_file("values.yaml"))
    gw = {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "LLMGateway",
        "metadata": {"name": "llmgw", "namespace": "llmgw-system"},
        "spec": values["defaultGateway"]["spec"],
    }
    jsonschema.validate(gw, schema(previous_crds()["LLMGateway"], "v1alpha1"))
    jsonschema.validate(gw, schema(head_crds()["LLMGateway"], "v1alpha1"))
