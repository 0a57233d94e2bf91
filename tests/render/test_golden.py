"""The config rendered from config/samples, byte for byte.

A change to the render shows up here as a diff to review. When the change is
meant, regenerate the file and commit it with the change:

    LLMGW_UPDATE_GOLDEN=1 .venv/bin/pytest tests/render/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

from llmgw import cli

ROOT = Path(__file__).parents[2]
SAMPLES = ROOT / "config" / "samples"
GOLDEN = Path(__file__).parent / "golden" / "samples.yaml"
UPDATE = "LLMGW_UPDATE_GOLDEN"


def test_samples_render_as_the_golden_file(capsys):
    assert cli.main(["render", str(SAMPLES)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    if os.environ.get(UPDATE):
        GOLDEN.write_text(out, encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8") if GOLDEN.exists() else ""
    assert out == expected, (
        f"`llmgw render config/samples` differs from {GOLDEN.relative_to(ROOT)}; if the change is "
        f"meant, regenerate it with `{UPDATE}=1 .venv/bin/pytest tests/render/test_golden.py` and commit it"
    )
