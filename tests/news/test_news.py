"""What of an object a pass reads, and what a status merge patch leaves stored."""

from __future__ import annotations

from typing import Any

from llmgw.core import news


def body(**meta: Any) -> dict[str, Any]:
    status = meta.pop("status", {"conditions": [{"type": "Accepted", "status": "True"}]})
    metadata = {"name": "p", "namespace": "ai", "uid": "u1", "generation": 1, "resourceVersion": "7", **meta}
    return {"kind": "LLMProvider", "metadata": metadata, "spec": {"models": []}, "status": status}


def test_an_object_as_it_was_read_is_no_news_whatever_its_resource_version() -> None:
    assert news.mark(body()) == news.mark(body(resourceVersion="99", managedFields=[{"x": 1}]))


def test_spec_labels_annotations_deletion_and_status_are_news() -> None:
    before = news.mark(body())
    assert news.mark(body(generation=2)) != before
    assert news.mark(body(labels={"team": "a"})) != before
    assert news.mark(body(annotations={"note": "x"})) != before
    assert news.mark(body(deletionTimestamp="2026-12-03T00:00:00Z")) != before
    assert news.mark(body(uid="u2")) != before  # deleted and made again under the same name
    assert news.mark(body(status={})) != before


def test_the_status_written_is_what_comes_back() -> None:
    read = body(status={"conditions": [], "models": 2, "excludedCount": 3})
    written = {"conditions": [{"type": "Accepted", "status": "False"}], "excludedCount": None}
    stored = news.merged(read["status"], written)
    assert stored == {"conditions": [{"type": "Accepted", "status": "False"}], "models": 2}
    assert news.with_status(news.mark(read), stored) == news.mark(body(status=stored, resourceVersion="8"))


def test_a_merge_patch_merges_maps_replaces_lists_and_drops_nulls() -> None:
    old = {"a": {"b": 1, "c": 2}, "l": [1, 2], "s": "x"}
    patch = {"a": {"c": None, "d": {"e": None, "f": 1}}, "l": [3], "s": {"t": 1}}
    assert news.merged(old, patch) == {"a": {"b": 1, "d": {"f": 1}}, "l": [3], "s": {"t": 1}}
    assert old == {"a": {"b": 1, "c": 2}, "l": [1, 2], "s": "x"}  # not changed in place


def test_a_build_with_a_memo_parses_only_what_changed_and_forgets_what_is_gone() -> None:
    from llmgw.core import estate

    def provider(name: str, generation: int, models: list[str]) -> dict[str, Any]:
        return {
            "apiVersion": "llmgateway.dev/v1alpha1",
            "kind": "LLMProvider",
            "metadata": {"name": name, "namespace": "ai", "uid": name, "generation": generation},
            "spec": {"type": "openai", "models": [{"name": m} for m in models]},
        }

    memo: dict[Any, Any] = {}
    first = estate.build([provider("a", 1, ["x"]), provider("b", 1, ["y"])], memo=memo)
    again = estate.build([provider("a", 1, ["x"]), provider("b", 2, ["z"])], memo=memo)
    assert again.providers[0] is first.providers[0]  # unchanged: the same parse
    assert [m.name for m in again.providers[1].spec.models] == ["z"]  # a new generation: parsed
    assert again == estate.build([provider("a", 1, ["x"]), provider("b", 2, ["z"])])
    estate.build([provider("b", 2, ["z"])], memo=memo)
    assert [key[2] for key in memo] == ["b"]
