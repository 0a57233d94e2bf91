"""The source layout: `operator/` is a folder, not a package, and the layers hold.

`operator/` holds the package `llmgw`; were it a package itself, it would shadow
Python's own `operator` module, which a site `.pth` can hide on one machine and
not on the next. The import-linter contracts in pyproject.toml make the layers
of DESIGN.md (cli -> handlers -> kube | probes -> core -> api, and a pure core)
a fact.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import sysconfig
from pathlib import Path

import llmgw

ROOT = Path(__file__).parents[1]


def test_operator_folder_is_not_a_package():
    assert (ROOT / "operator" / "llmgw" / "__init__.py").is_file()
    assert not (ROOT / "operator" / "__init__.py").exists()
    assert Path(llmgw.__file__).resolve().parent == (ROOT / "operator" / "llmgw").resolve()


def test_import_operator_finds_the_standard_library():
    operator = importlib.import_module("operator")
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(operator.__file__).resolve().parent == stdlib
    assert operator.add(2, 3) == 5


def test_import_operator_finds_the_standard_library_in_a_fresh_interpreter():
    # As the operator's image starts it: from the project root, the installed package on the path.
    code = "import operator, sysconfig; print(operator.__file__); print(sysconfig.get_paths()['stdlib'])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    found, stdlib = out.splitlines()
    assert Path(found).resolve().parent == Path(stdlib).resolve()


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    command = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    result = subprocess.run([*command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: " in result.stdout
    assert " broken." in result.stdout
