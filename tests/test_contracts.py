"""The import contracts bite: a forbidden import in a copy of the tree breaks them.

A contract that is kept proves nothing until a line that breaks the rule
breaks it. Each case copies `operator/` and `pyproject.toml` to a scratch
folder, appends one import to a real module there, and runs `lint-imports` on
the copy (`PYTHONPATH` puts the copy's `llmgw` ahead of the editable install,
and each failure must name the appended edge, so the copy is what was read).
The unmodified copy must pass, so the failures come from the lines.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "operator" / "llmgw"

PURE_CENTRE = "The pure centre does no I/O"
LAYERS = "Layers: "
ONLY_KUBE = "Only llmgw.kube talks to the Kubernetes client"
ONLY_PROBES = "Only llmgw.probes speaks HTTP to backends"
ONLY_HANDLERS = "Only llmgw.handlers and llmgw.runner wire kopf"


def _lint_imports() -> Path:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"lint-imports is not installed next to {sys.executable}")
        pytest.skip(f"lint-imports is not installed next to {sys.executable}")
    return lint


def _scratch_copy(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "operator", tmp_path / "operator", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _run(scratch: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(scratch / "operator"), "COLUMNS": "400", "NO_COLOR": "1"}
    env.pop("PYTHONSAFEPATH", None)
    return subprocess.run(
        [str(_lint_imports()), "--config", str(scratch / "pyproject.toml"), "--no-cache"],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _broken(stdout: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^(.+) BROKEN$", stdout, re.MULTILINE)}


def test_the_unmodified_copy_keeps_every_contract(tmp_path: Path) -> None:
    result = _run(_scratch_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Contracts: \d+ kept, 0 broken\.", result.stdout), result.stdout


@pytest.mark.parametrize(
    ("module", "line", "edge", "contracts"),
    [
        ("core/graph.py", "import time", "llmgw.core.graph -> time", {PURE_CENTRE}),
        (
            "core/graph.py",
            "from llmgw import metrics",
            "llmgw.core.graph -> llmgw.metrics",
            {PURE_CENTRE, LAYERS},
        ),
        ("core/graph.py", "import kubernetes", "llmgw.core.graph -> kubernetes", {PURE_CENTRE, ONLY_KUBE}),
        ("api/common.py", "import os", "llmgw.api.common -> os", {PURE_CENTRE}),
        ("handlers/registry.py", "import httpx", "llmgw.handlers.registry -> httpx", {ONLY_PROBES}),
        ("handlers/registry.py", "import kubernetes", "llmgw.handlers.registry -> kubernetes", {ONLY_KUBE}),
        ("kube/client.py", "import kopf", "llmgw.kube.client -> kopf", {ONLY_HANDLERS}),
        (
            "core/graph.py",
            "from llmgw.handlers import registry",
            "llmgw.core.graph -> llmgw.handlers",
            {LAYERS},
        ),
    ],
    ids=[
        "time-in-core",
        "metrics-in-core",
        "kubernetes-in-core",
        "os-in-api",
        "httpx-in-handlers",
        "kubernetes-in-handlers",
        "kopf-in-kube",
        "handlers-in-core",
    ],
)
def test_a_forbidden_import_breaks_the_contract(
    tmp_path: Path, module: str, line: str, edge: str, contracts: set[str]
) -> None:
    scratch = _scratch_copy(tmp_path)
    target = scratch / "operator" / "llmgw" / module
    assert target.is_file(), f"{module} is gone; point this case at another module of its layer"
    with target.open("a") as f:
        f.write(f"\n{line}  # appended by tests/test_contracts.py\n")
    result = _run(scratch)
    assert result.returncode == 1, result.stdout + result.stderr
    assert edge in result.stdout, result.stdout
    broken = _broken(result.stdout)
    for contract in contracts:
        assert any(name.startswith(contract) for name in broken), (contract, broken, result.stdout)


def test_a_module_outside_the_layers_breaks_the_contract(tmp_path: Path) -> None:
    scratch = _scratch_copy(tmp_path)
    (scratch / "operator" / "llmgw" / "stray.py").write_text('"""Not in any layer."""\n')
    result = _run(scratch)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "llmgw.stray" in result.stdout, result.stdout
    assert any(name.startswith(LAYERS) for name in _broken(result.stdout)), result.stdout


def _layers_contract() -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c for c in contracts if c["type"] == "layers" and c.get("containers") == ["llmgw"]]
    return layers  # type: ignore[no-any-return]


def test_every_top_level_module_sits_in_a_layer() -> None:
    contract = _layers_contract()
    assert contract.get("exhaustive") is True
    declared = {name.strip().strip("()") for layer in contract["layers"] for name in re.split(r"[|:]", layer)}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert (modules | packages) - declared == set()
