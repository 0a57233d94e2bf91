"""A revision's name, what its ConfigMap holds, and that no other module says either."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmgw.core import render, revisions

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "llmgw"
HASH = "0123456789abcdef" * 4


def rendered(env: tuple[render.EnvVar, ...] = ()) -> render.Rendered:
    return render.Rendered(text="model_list: []\n", hash=HASH, env=env, config={})


def test_a_revision_is_the_first_ten_hex_digits():
    assert revisions.short(HASH) == "0123456789"
    assert revisions.short(revisions.short(HASH)) == "0123456789"


def test_the_configmap_name_from_a_hash_or_a_revision():
    assert revisions.name("main", HASH) == "main-config-0123456789"
    assert revisions.name("main", "0123456789") == "main-config-0123456789"


def test_a_revision_stores_config_inputs_and_env():
    env = (render.EnvVar("LITELLM_MASTER_KEY", "gw-master-key", "master-key"),)
    got = revisions.contents(rendered(env), ["LLMProvider a/p@2", "LLMGateway a/gw@1"], sequence=7)
    assert got.data[revisions.CONFIG_KEY] == "model_list: []\n"
    assert json.loads(got.data[revisions.INPUTS_KEY]) == ["LLMGateway a/gw@1", "LLMProvider a/p@2"]
    assert got.annotations[revisions.CONFIG_HASH] == HASH
    assert got.annotations[revisions.SEQUENCE] == "7"
    assert json.loads(got.annotations[revisions.INPUTS]) == ["LLMGateway a/gw@1", "LLMProvider a/p@2"]
    assert got.labels == {revisions.REVISION_LABEL: "0123456789"}
    # What a rollback reads back is what was stored.
    assert revisions.stored(got.annotations) == revisions.Stored("0123456789", HASH, env)


def test_many_inputs_are_listed_in_the_data_only():
    inputs = [f"LLMProvider ns/p{i}@1" for i in range(5000)]
    got = revisions.contents(rendered(), inputs, sequence=1)
    assert got.annotations[revisions.INPUTS] == f"5000 objects; see data {revisions.INPUTS_KEY}"
    assert len(json.loads(got.data[revisions.INPUTS_KEY])) == 5000


@pytest.mark.parametrize(
    ("annotations", "want"), [({}, 0), ({revisions.SEQUENCE: "x"}, 0), ({revisions.SEQUENCE: "3"}, 3)]
)
def test_a_sequence_that_cannot_be_read_is_zero(annotations, want):
    assert revisions.sequence(annotations) == want


def test_the_revision_a_template_and_a_pod_carry():
    dep = {"spec": {"template": {"metadata": {"annotations": {revisions.CONFIG_HASH: HASH}}}}}
    assert revisions.template_hash(dep) == HASH
    assert revisions.template_revision(dep) == "0123456789"
    assert revisions.template_revision({"spec": {}}) is None
    assert revisions.template_revision(None) is None
    assert revisions.pod_revision({revisions.CONFIG_HASH: HASH}) == "0123456789"
    assert revisions.pod_revision({}) == ""


def test_too_large_counts_bytes():
    assert revisions.too_large({"data": {"a": "x" * revisions.CONFIGMAP_LIMIT}}) is None
    assert revisions.too_large({"data": {"a": "é" * (revisions.CONFIGMAP_LIMIT // 2 + 1)}})


# A revision name is `<gateway>-config-<short hash>`, a short hash `[:10]` of a render hash.
_FORMATTED = re.compile(r"""-config-\{|\[:\s*10\s*\]|\[:\s*SHORT_LENGTH\s*\]|short_hash""")


def test_no_other_module_formats_a_revision_name_or_shortens_a_hash():
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "revisions.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _FORMATTED.search(line)
    ]
    assert not offenders, "use llmgw.core.revisions instead:\n" + "\n".join(offenders)
