"""The README's production gateway: `llmgw validate` accepts it, and the README shows the file as it is.

`docs/examples/production-gateway.yaml` is the one complete LLMGateway of the README's
"Production gateway" section; the section's YAML block must be that file, byte for byte,
so that what a reader copies is what this test validates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from llmgw.api import gateway as gateway_api
from llmgw.api import pod as pod_api

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "production-gateway.yaml"
README = ROOT / "README.md"
SECTION = "## Production gateway"
WORKLOAD_FIELDS = {
    "pod",
    "env",
    "envFrom",
    "probes",
    "autoscaling",
    "disruptionBudget",
    "service",
    "route",
    "metrics",
    "generalSettings",
    "database",
}


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    assert SECTION + "\n" in text, f"README.md has no {SECTION!r} section"
    body = text.split(SECTION + "\n", 1)[1]
    return re.split(r"^## ", body, maxsplit=1, flags=re.M)[0]


def test_llmgw_validate_accepts_the_example(llmgw: Any) -> None:
    r = llmgw("validate", EXAMPLE)
    assert r.code == 0, r.text
    assert "ok: 0 error(s), 0 warning(s)" in r.out
    assert "gateway ai-platform/main:" in r.out


def test_readme_shows_the_example_as_it_is() -> None:
    blocks = re.findall(r"^```yaml\n(.*?)^```$", _section(), flags=re.M | re.S)
    assert len(blocks) == 1, f"the {SECTION!r} section should have one YAML block, has {len(blocks)}"
    assert blocks[0] == EXAMPLE.read_text(encoding="utf-8"), (
        f"the YAML block of README.md's {SECTION!r} differs from {EXAMPLE.relative_to(ROOT)}"
    )


def test_the_example_sets_every_workload_field() -> None:
    (doc,) = [d for d in yaml.safe_load_all(EXAMPLE.read_text(encoding="utf-8")) if d]
    gw = gateway_api.LLMGateway.model_validate(doc)
    spec = doc["spec"]
    assert set(spec) >= WORKLOAD_FIELDS, WORKLOAD_FIELDS - set(spec)
    assert set(spec["pod"]) == {f.alias or n for n, f in pod_api.PodSettings.model_fields.items()}
    assert set(spec["pod"]["metadata"]) == {"labels", "annotations"}
    assert {"startup", "liveness", "readiness"} == set(spec["probes"])
    assert spec["metrics"] == {"enabled": True, "serviceMonitor": True}
    assert any("os.environ/" in str(v) for v in spec["litellmSettings"].values())
    assert gw.spec.rollout.progress_deadline_seconds >= gw.spec.probes.startup_allowance_seconds
