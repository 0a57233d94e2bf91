"""The kustomize install: `kubectl kustomize config/default` (offline), validated, in step with the chart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from llmgw import crdfiles, manifests
from llmgw.api import crdgen

from .conftest import ROOT, find
from .test_chart import validate

Raw = dict[str, Any]
Kustomize = Callable[[str], list[Raw]]


def _unlabelled(obj: Raw) -> Raw:
    """The object without labels and annotations, which differ between Helm and kustomize."""
    obj = yaml.safe_load(yaml.safe_dump(obj))
    for meta in (
        obj.get("metadata") or {},
        ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {},
    ):
        meta.pop("labels", None)
    return obj


def test_default_builds_and_validates(kustomize: Kustomize) -> None:
    objs = kustomize("config/default")
    assert sorted(o["kind"] for o in objs) == sorted(
        ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment"]
        + ["CustomResourceDefinition"] * 3
    )
    for obj in objs:
        validate(obj)
    namespaced = [o for o in objs if o["kind"] in ("ServiceAccount", "Service", "Deployment")]
    assert {o["metadata"]["namespace"] for o in namespaced} == {"llmgw-system"}
    assert find(objs, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_crd_bases_are_the_generated_crds(kustomize: Kustomize) -> None:
    stale = crdfiles.check_crds(ROOT / "config" / "crd" / "bases")
    assert not stale, f"{', '.join(map(str, stale))}: differ from llmgw.api; run `make chart-crds`"
    built = {o["metadata"]["name"]: o for o in kustomize("config/crd")}
    generated = {d["metadata"]["name"]: d for d in map(yaml.safe_load, crdgen.crd_files().values())}
    assert built == generated


def test_operator_matches_the_chart_with_default_values(
    kustomize: Kustomize, render: Callable[..., list[Raw]]
) -> None:
    """config/manager and config/rbac are what the chart renders for release `llmgw`, less Helm's labels."""
    ours = kustomize("config/default")
    chart = render(sets=["fullnameOverride=llmgw"])
    for kind in ("Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
        a, b = _unlabelled(find(ours, kind)), _unlabelled(find(chart, kind))
        assert a == b, f"config/ and the chart disagree on the {kind}"
    a, b = find(ours, "Service"), find(chart, "Service")
    assert a["spec"] == b["spec"]


def test_grafana_kustomization_ships_the_dashboard(kustomize: Kustomize) -> None:
    (cm,) = kustomize("config/grafana")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["data"]["llmgw.json"] == (ROOT / "config" / "grafana" / "llmgw.json").read_text()


def test_samples_kustomization_is_the_whole_estate(kustomize: Kustomize) -> None:
    built = kustomize("config/samples")
    loaded = manifests.load([ROOT / "config" / "samples"])
    files = sorted(
        p.name for p in (ROOT / "config" / "samples").glob("*.yaml") if p.name != "kustomization.yaml"
    )
    listed = yaml.safe_load((ROOT / "config" / "samples" / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == files
    ours = [o for o in built if o["apiVersion"].startswith("llmgateway.dev/")]
    assert len(ours) == len(loaded.raws)
    for obj in built:
        validate(obj)
