"""Merge patches that take away what the operator stopped setting, and nothing else."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from llmgw.core import patches


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gw", "namespace": "ns", "annotations": {"llmgateway.dev/spec-hash": "x"}},
        "spec": spec,
    }


def applied(*bodies: dict[str, Any], live: dict[str, Any] | None = None) -> dict[str, Any]:
    """The live object after the operator wrote each body in turn (the first a create)."""
    state = copy.deepcopy(live) if live is not None else patches.annotated(bodies[0])
    for want in bodies[1 if live is None else 0 :]:
        state = merge(state, patches.merge_patch(state, want))
    return state


def test_a_map_key_no_longer_set_is_removed():
    first = body(template={"spec": {"nodeSelector": {"gpu": "a100"}, "tolerations": [{"key": "gpu"}]}})
    second = body(template={"spec": {}})
    live = applied(first, second)
    assert live["spec"]["template"]["spec"] == {}


def test_a_budget_moving_from_max_unavailable_to_min_available_keeps_one():
    live = applied(body(maxUnavailable=1), body(minAvailable=1))
    assert live["spec"] == {"minAvailable": 1}


def test_an_annotation_removed_by_the_user_goes_and_others_stay():
    first = body()
    first["metadata"]["annotations"]["team"] = "a"
    live = patches.annotated(first)
    live["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "now"  # someone else's
    after = applied(body(), live=live)
    assert "team" not in after["metadata"]["annotations"]
    assert after["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == "now"


def test_keys_with_slashes_and_tildes_are_escaped():
    first = body()
    first["metadata"]["annotations"]["service.beta.kubernetes.io/aws~lb"] = "nlb"
    live = applied(first, body())
    assert "service.beta.kubernetes.io/aws~lb" not in live["metadata"]["annotations"]


def test_replicas_are_never_nulled():
    live = applied(body(replicas=2), body())
    assert live["spec"]["replicas"] == 2


def test_an_object_from_before_the_record_gets_no_nulls():
    live = body(extra={"a": 1})
    patch = patches.merge_patch(live, body())
    assert "extra" not in patch["spec"]
    assert json.loads(patch["metadata"]["annotations"][patches.MANAGED])


@pytest.mark.parametrize("raw", ["not json", '{"a": 1}', "[1, 2]"])
def test_an_unreadable_record_is_ignored(raw):
    live = body(extra=1)
    live["metadata"]["annotations"][patches.MANAGED] = raw
    assert "extra" not in patches.merge_patch(live, body())["spec"]


def test_a_removed_parent_is_one_null():
    first = body(template={"spec": {"affinity": {"nodeAffinity": {"x": 1}}}})
    patch = patches.merge_patch(patches.annotated(first), body(template={"spec": {}}))
    assert patch["spec"]["template"]["spec"] == {"affinity": None}


def test_a_map_that_became_a_list_is_replaced_whole():
    first = body(thing={"a": 1})
    patch = patches.merge_patch(patches.annotated(first), body(thing=[1]))
    assert patch["spec"]["thing"] == [1]


def test_the_wanted_body_is_not_changed():
    want = body(template={"spec": {}})
    before = copy.deepcopy(want)
    patches.merge_patch(patches.annotated(body(template={"spec": {"nodeSelector": {"a": "b"}}})), want)
    assert want == before


def test_the_record_lists_every_map_key_once_but_itself():
    got = json.loads(
        patches.annotated(body(a={"b": 1}, c=[{"d": 1}]))["metadata"]["annotations"][patches.MANAGED]
    )
    assert "/spec/a/b" in got
    assert "/spec/c" in got
    assert not any(p.startswith("/spec/c/") for p in got)
    assert f"/metadata/annotations/{patches.MANAGED.replace('/', '~1')}" not in got
    assert got == sorted(set(got))
