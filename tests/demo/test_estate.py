"""Applying the demo's folder: every kind, in order, updates as merge patches, deletions of what left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmgw.demo import estate
from llmgw.demo.options import DEFAULT_ESTATE


def test_merge_patch_removes_what_was_removed() -> None:
    old = {"spec": {"a": 1, "b": {"c": 2, "d": 3}, "list": [1, 2]}, "keep": True}
    new = {"spec": {"a": 1, "b": {"c": 5}, "list": [1]}, "keep": True}
    assert estate.merge_patch(old, new) == {"spec": {"b": {"c": 5, "d": None}, "list": [1]}}
    assert estate.merge_patch(new, new) is None


class FakeApi:
    """The calls an Applier makes, and the objects they leave."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Any] = {}
        self.calls: list[tuple[str, str, str]] = []

    async def get(self, kind: str, namespace: str | None, name: str) -> Any:
        return self.objects.get((kind, namespace or "", name))

    async def create(self, obj: dict[str, Any]) -> Any:
        meta = obj["metadata"]
        self.calls.append(("create", obj["kind"], meta["name"]))
        self.objects[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj
        return obj

    async def patch(self, kind: str, namespace: str | None, name: str, patch: Any, **_: Any) -> Any:
        self.calls.append(("patch", kind, name))
        return patch

    async def delete(self, kind: str, namespace: str | None, name: str, **_: Any) -> Any:
        self.calls.append(("delete", kind, name))
        self.objects.pop((kind, namespace or "", name), None)


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


async def test_apply_creates_in_order_updates_and_prunes(tmp_path: Path) -> None:
    write(
        tmp_path,
        "all.yaml",
        """
apiVersion: llmgateway.dev/v1alpha1
kind: LLMGateway
metadata: {name: gw, namespace: ai}
spec: {replicas: 1}
---
apiVersion: v1
kind: Secret
metadata: {name: key, namespace: ai}
stringData: {k: v}
---
apiVersion: v1
kind: Namespace
metadata: {name: ai}
""",
    )
    api = FakeApi()
    applier = estate.Applier(api)  # type: ignore[arg-type]
    done = await applier.apply(estate.load(tmp_path))
    assert [c[1] for c in api.calls] == ["Namespace", "Secret", "LLMGateway"]
    assert done.created == ["Namespace ai", "Secret ai/key", "LLMGateway ai/gw"]
    api.calls.clear()
    write(
        tmp_path,
        "all.yaml",
        "apiVersion: llmgateway.dev/v1alpha1\nkind: LLMGateway\n"
        "metadata: {name: gw, namespace: ai}\nspec: {replicas: 2}\n",
    )
    done = await applier.apply(estate.load(tmp_path))
    assert done.updated == ["LLMGateway ai/gw"]
    assert done.deleted == ["Secret ai/key", "Namespace ai"]
    assert str(done) == "updated LLMGateway ai/gw; deleted Secret ai/key, Namespace ai"


async def test_namespaces_named_but_not_declared_are_created(tmp_path: Path) -> None:
    write(tmp_path, "s.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: key, namespace: team}\n")
    api = FakeApi()
    await estate.Applier(api).apply(estate.load(tmp_path))  # type: ignore[arg-type]
    assert api.calls == [("create", "Namespace", "team"), ("create", "Secret", "key")]


def test_a_document_without_a_name_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {}\n")
    with pytest.raises(estate.EstateError, match=r"metadata\.name"):
        estate.load(tmp_path)


def test_the_shipped_estate_holds_what_the_demo_needs() -> None:
    objects = estate.load(DEFAULT_ESTATE)
    kinds = sorted({k[1] for k in objects})
    assert kinds == [
        "EndpointSlice",
        "FallbackChain",
        "LLMGateway",
        "LLMProvider",
        "Namespace",
        "Secret",
        "Service",
    ]
    gateway = next(o for k, o in objects.items() if k[1] == "LLMGateway")
    assert gateway["spec"]["rollout"]["stuckPodSeconds"] <= 10
