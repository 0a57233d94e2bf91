"""A revision too large for one ConfigMap: split into shards that LiteLLM's `include` joins.

Sizes are counted as the API server counts them (`ValidateConfigMap`: the bytes of the data
and binaryData values, keys not counted; `ValidateAnnotationsSize`: keys and values), the split
is the render's alone, and a shard goes, stays and runs with its revision, never as one.
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import pytest
import yaml

from llmgw.core import desired, estate, pipeline, render, revisions, rollout
from llmgw.handlers import rollouts

LIMIT = 16 * 1024
"""The ConfigMap limit in these tests: a few dozen models a shard, not 4,000."""
API = "llmgateway.dev/v1alpha1"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    return yaml.load(text, Loader=LOADER)  # a safe loader: the C one where there is libyaml


@pytest.fixture(autouse=True)
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(revisions, "CONFIGMAP_LIMIT", LIMIT)


def built(models: int, providers: int = 3) -> tuple[Any, render.Rendered]:
    raws: list[dict[str, Any]] = [
        {"apiVersion": API, "kind": "LLMGateway", "metadata": {"name": "gw", "namespace": "ai"}, "spec": {}}
    ]
    for p in range(providers):
        raws.append(
            {
                "apiVersion": API,
                "kind": "LLMProvider",
                "metadata": {"name": f"p{p}", "namespace": "ai", "generation": 1},
                "spec": {
                    "type": "vllm",
                    "endpoint": {"url": f"http://vllm-{p}.gpu:8000"},
                    "models": [
                        {"name": f"model-{p}-{i:04d}", "backendModel": f"org/model-{p}-{i}", "rpm": 600}
                        for i in range(models // providers)
                    ],
                },
            }
        )
    est = estate.build(raws)
    (gw,) = est.gateways
    return gw, pipeline.run(est, gw).rendered


@pytest.fixture(scope="module")
def large() -> tuple[Any, render.Rendered]:
    return built(300)


INPUTS = ["LLMGateway ai/gw@1", "LLMProvider ai/p0@1", "LLMProvider ai/p1@1", "LLMProvider ai/p2@1"]


def joined(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The config the proxy reads from the mounted folder: config.yaml, each file of its
    `include` appended as LiteLLM 1.106.2 does (lists extended, other values replaced)."""
    files = {k: v for body in parts for k, v in body["data"].items()}
    config = load(files[revisions.CONFIG_KEY])
    for entry in config.pop(revisions.INCLUDE, []):
        for key, value in load(files[entry]).items():
            base = config.get(key)
            config[key] = [*base, *value] if isinstance(base, list) and isinstance(value, list) else value
    return dict(config)


def test_a_render_that_fits_is_one_config_map_as_before():
    gw, rendered = built(6)
    (body,) = desired.config_maps(gw, rendered, INPUTS, 3)
    assert body["metadata"]["name"] == revisions.name("gw", rendered.hash)
    assert body["data"] == {
        revisions.CONFIG_KEY: rendered.text,
        revisions.INPUTS_KEY: json.dumps(sorted(INPUTS), separators=(",", ":")) + "\n",
    }
    assert revisions.SHARDS not in body["metadata"]["annotations"]
    assert revisions.layout(rendered, INPUTS, 3) == (revisions.contents(rendered, INPUTS, 3),)


def test_a_large_render_is_split_into_shards_that_join_to_the_render(large):
    gw, rendered = large
    assert len(rendered.text.encode()) > LIMIT
    bodies = desired.config_maps(gw, rendered, INPUTS, 5)
    *shards, own = bodies
    n = len(shards)
    assert n >= 3
    # Created shards first, in order, then the ConfigMap that names them.
    assert [b["metadata"]["name"] for b in bodies] == [
        *(f"gw-config-{revisions.short(rendered.hash)}-{i}" for i in range(1, n + 1)),
        f"gw-config-{revisions.short(rendered.hash)}",
    ]
    assert list(revisions.names("gw", rendered.hash, n)) == [own["metadata"]["name"]] + [
        s["metadata"]["name"] for s in shards
    ]
    config = load(own["data"][revisions.CONFIG_KEY])
    assert config[revisions.INCLUDE] == [f"models-{i}.yaml" for i in range(1, n + 1)]
    assert "model_list" not in config
    assert own["data"][revisions.CONFIG_KEY].startswith(rendered.text.split("\n", 1)[0])  # the header
    assert [list(s["data"]) for s in shards] == [[f"models-{i}.yaml"] for i in range(1, n + 1)]
    assert joined(bodies) == load(rendered.text)


def test_every_part_is_within_the_limits_counted_as_the_api_server_counts(large):
    gw, rendered = large
    bodies = desired.config_maps(gw, rendered, INPUTS, 5)
    for body in bodies:
        assert revisions.too_large(body) is None
        assert revisions.data_size(body) <= LIMIT
        assert revisions.annotations_size(body["metadata"]["annotations"]) <= revisions.ANNOTATIONS_LIMIT
    # Shards are filled: each but the last would overflow with the next shard's first model.
    *shards, _own = bodies
    for a, b in itertools.pairwise(shards):
        first = next(iter(b["data"].values())).removeprefix(revisions.SHARD_HEAD).split("\n- ", 1)[0]
        assert revisions.data_size(a) + len(first.encode()) > LIMIT


def test_the_split_is_the_renders_alone(large):
    gw, rendered = large
    one = desired.config_maps(gw, rendered, INPUTS, 5)
    other = desired.config_maps(gw, rendered, [*reversed(INPUTS), "FallbackChain ai/c@4"], 9)
    assert [b["data"] for b in one[:-1]] == [b["data"] for b in other[:-1]]
    assert [b["metadata"]["name"] for b in one] == [b["metadata"]["name"] for b in other]
    assert one == desired.config_maps(gw, rendered, INPUTS, 5)


def test_shards_carry_the_revision_and_are_no_revision_of_their_own(large):
    gw, rendered = large
    *shards, own = desired.config_maps(gw, rendered, INPUTS, 5)
    for i, shard in enumerate(shards, 1):
        meta = shard["metadata"]
        assert shard["immutable"] is True
        assert meta["labels"][revisions.REVISION_LABEL] == revisions.short(rendered.hash)
        assert meta["labels"][desired.GATEWAY_LABEL] == "gw"
        assert meta["ownerReferences"] == own["metadata"]["ownerReferences"]
        assert meta["annotations"][revisions.CONFIG_HASH] == rendered.hash
        assert revisions.sequence(meta["annotations"]) == 5
        assert meta["annotations"][revisions.SHARD] == str(i)
        assert revisions.stored(meta["annotations"]) is None
    stored = revisions.stored(own["metadata"]["annotations"])
    assert stored == revisions.Stored(
        revisions.short(rendered.hash), rendered.hash, rendered.env, len(shards)
    )


def test_a_model_larger_than_a_config_map_is_not_split_and_says_why(monkeypatch):
    gw, rendered = built(30)
    monkeypatch.setattr(revisions, "CONFIGMAP_LIMIT", 200)
    (body,) = desired.config_maps(gw, rendered, INPUTS, 1)
    why = revisions.too_large(body)
    assert why is not None
    assert "at most 200" in why


def test_split_is_forced_for_a_revision_stored_split():
    gw, rendered = built(6)
    *shards, own = desired.config_maps(gw, rendered, INPUTS, 1, split=True)
    assert len(shards) == 1
    assert joined([*shards, own]) == load(rendered.text)


@pytest.mark.parametrize(
    ("body", "size"),
    [
        ({"data": {"k" * 100: "abc"}}, 3),  # keys are not counted
        ({"data": {"a": "é"}}, 2),  # bytes, not characters
        ({"binaryData": {"b": base64.b64encode(b"\0" * 10).decode()}}, 10),  # decoded bytes
        ({"data": {"a": "xy"}, "binaryData": {"b": base64.b64encode(b"123").decode()}}, 5),
        ({}, 0),
    ],
)
def test_data_is_counted_as_the_api_server_counts(body, size):
    assert revisions.data_size(body) == size


def test_the_limits_are_the_api_servers(monkeypatch):
    monkeypatch.undo()
    assert revisions.CONFIGMAP_LIMIT == 1024 * 1024
    assert revisions.ANNOTATIONS_LIMIT == 256 * 1024
    at = {"metadata": {"name": "x"}, "data": {"a": "x" * (1024 * 1024 - 1), "b": "y"}}
    assert revisions.too_large(at) is None
    over = {"metadata": {"name": "x"}, "data": {"a": "é" * (512 * 1024) + "z"}}
    assert revisions.too_large(over) == (
        "ConfigMap x would hold 1048577 bytes of data; a ConfigMap holds at most 1048576"
    )
    key = "llmgateway.dev/env"
    notes = {"metadata": {"name": "x", "annotations": {key: "v" * (256 * 1024 - len(key))}}}
    assert revisions.annotations_size(notes["metadata"]["annotations"]) == 256 * 1024
    assert revisions.too_large(notes) is None
    notes["metadata"]["annotations"]["a"] = ""
    assert "262145 bytes of annotations" in str(revisions.too_large(notes))


def test_at_the_real_limit_a_large_render_fills_shards_of_a_mebibyte(monkeypatch):
    """At 1 MiB: a render of 6,000 models of ~250 bytes splits into two shards that hold them all."""
    monkeypatch.undo()
    gw, _ = built(3)
    entries = [
        {
            "litellm_params": {
                "api_base": f"http://vllm-{i // 10}.gpu-models.svc.cluster.local:8000/v1",
                "api_key": "no-key",
                "model": f"hosted_vllm/org/model-{i:06d}",
            },
            "model_info": {"id": f"ai/p{i // 10}/model-{i:06d}"},
            "model_name": f"model-{i:06d}",
        }
        for i in range(6000)
    ]
    config = {"general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"}, "model_list": entries}
    text = "# header\n" + yaml.dump(config, Dumper=yaml.CSafeDumper, sort_keys=True, default_flow_style=False)
    rendered = render.Rendered(text=text, hash="ab" * 32, env=(), config=config)
    *shards, own = desired.config_maps(gw, rendered, INPUTS, 1)
    assert len(shards) == 2
    assert all(revisions.too_large(b) is None for b in (*shards, own))
    assert revisions.data_size(shards[0]) > 1024 * 1024 - 300
    assert joined([*shards, own]) == config


# -- pruning and mounting a split revision ------------------------------------------------------


def rev(i: int) -> str:
    return f"{i:02d}" + "e" * 62


def split(i: int, shards: int) -> dict[str, int]:
    return dict.fromkeys(revisions.names("gw", rev(i), shards), i)


def test_shards_are_told_apart_from_revisions():
    own = revisions.name("gw", rev(1))
    assert revisions.revision_of("gw", own) == own
    assert revisions.revision_of("gw", revisions.name("gw", rev(1), 12)) == own
    assert revisions.revision_of("gw", "gw-config-nothex-1") == "gw-config-nothex-1"
    assert revisions.revision_of("gw", "other-config-0123456789-1") == "other-config-0123456789-1"
    assert revisions.revision_of("gw", f"{own}-01") == f"{own}-01"


def test_a_split_revision_is_pruned_whole_and_counts_as_one():
    live = {**split(1, 3), **split(2, 0), **split(3, 2)}
    doomed = revisions.prune("gw", live, current=rev(3), history=[], limit=2)
    assert doomed == revisions.names("gw", rev(1), 3)  # its own ConfigMap first, then its shards
    assert revisions.prune("gw", live, current=rev(3), history=[], limit=3) == ()


def test_a_kept_split_revision_keeps_all_its_shards():
    live = {**split(1, 3), **split(2, 0), **split(3, 0)}
    doomed = revisions.prune("gw", live, current=rev(3), history=[], keep=[revisions.short(rev(1))], limit=1)
    assert doomed == (revisions.name("gw", rev(2)),)


def test_the_current_renders_shards_are_kept_before_its_own_config_map_exists():
    live = {**split(1, 0), **dict.fromkeys(revisions.names("gw", rev(2), 2)[1:], 2)}
    assert revisions.prune("gw", live, current=rev(2), history=[], limit=1) == (revisions.name("gw", rev(1)),)


def test_shards_left_without_their_revision_take_no_room_and_go():
    live = {
        **split(1, 0),
        **split(2, 0),
        **dict.fromkeys(revisions.names("gw", rev(3), 2)[1:], 3),
        **split(4, 0),
    }
    doomed = revisions.prune("gw", live, current=rev(4), history=[], limit=3)
    assert doomed == revisions.names("gw", rev(3), 2)[1:]


def rows(*parts: tuple[int, int]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The configmaps index of a gateway: revisions (i, shards), with their shards' rows."""
    out = []
    for i, shards in parts:
        own = {revisions.CONFIG_HASH: rev(i), revisions.SEQUENCE: str(i), revisions.ENV: "[]"}
        if shards:
            own[revisions.SHARDS] = str(shards)
        out.append({"name": revisions.name("gw", rev(i)), "annotations": own})
        for s in range(1, shards + 1):
            ann = {revisions.CONFIG_HASH: rev(i), revisions.SEQUENCE: str(i), revisions.SHARD: str(s)}
            out.append({"name": revisions.name("gw", rev(i), s), "annotations": ann})
    return {("ai", "gw"): out}


def test_a_split_revision_can_run_again_only_with_all_its_shards():
    index = rows((1, 3), (2, 0))
    kept = {row["name"]: 1 for row in index[("ai", "gw")]}
    stored = rollouts.stored_revisions(index, ("ai", "gw"), kept)
    assert set(stored) == {revisions.short(rev(1)), revisions.short(rev(2))}
    assert stored[revisions.short(rev(1))].shards == 3
    del kept[revisions.name("gw", rev(1), 2)]
    assert set(rollouts.stored_revisions(index, ("ai", "gw"), kept)) == {revisions.short(rev(2))}


def test_a_rollback_to_a_split_revision_mounts_all_its_shards(large):
    gw, rendered = large
    index = rows((1, 3))
    plan = rollout.Plan(run=revisions.short(rev(1)), history=(), condition={})
    back, shards = rollouts.Rollouts().to_run(rendered, plan, index, ("ai", "gw"), shards=7)
    assert (back.hash, shards) == (rev(1), 3)
    body = desired.deployment(gw, back, shards)
    (volume,) = [v for v in body["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"]
    assert volume == {
        "name": "config",
        "projected": {"sources": [{"configMap": {"name": n}} for n in revisions.names("gw", rev(1), 3)]},
    }
    # The current render runs with the shards it was stored in.
    now = rollout.Plan(run=revisions.short(rendered.hash), history=(), condition={})
    assert rollouts.Rollouts().to_run(rendered, now, index, ("ai", "gw"), shards=7) == (rendered, 7)


def test_a_revision_in_one_config_map_is_mounted_as_before(large):
    gw, rendered = large
    (volume,) = [
        v
        for v in desired.deployment(gw, rendered)["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "config"
    ]
    assert volume == {"name": "config", "configMap": {"name": revisions.name("gw", rendered.hash)}}
