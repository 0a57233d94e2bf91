"""Fixtures of the deploy suite: real helm and kubectl, rendered manifests, Kubernetes schemas.

helm and kubectl come from `scripts/install-tools.sh` (`make tools`, which `make test`
runs first) in `.tools/bin`; `LLMGW_HELM` / `LLMGW_KUBECTL` name others. Without them the
tests that need them are skipped with the install hint, except under `CI=true`, where a
missing tool is a failure: CI must never pass by skipping the chart.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "llmgw"
TOOLS = ROOT / ".tools" / "bin"
KUBE_VERSION = "1.35.0"  # kubectl's version from the tools package; the schemas validated against
RELEASE = "llmgw"
NAMESPACE = "llmgw-system"
VALUES_FILES = {
    "default": (),
    "everything": (CHART / "ci" / "everything-values.yaml",),
    "opt-in-access": (CHART / "ci" / "opt-in-access-values.yaml",),
}

# The operator's integration harness (kmock's emulator and its additions), for the recorded
# run of test_rbac.py. Not a package: put its folder on the path, as pytest does for it.
sys.path.insert(0, str(ROOT / "tests" / "operator"))

Raw = dict[str, Any]


def _tool(name: str) -> str:
    env = os.environ.get(f"LLMGW_{name.upper()}")
    for candidate in (env, str(TOOLS / name), shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    message = f"{name} is not installed: run scripts/install-tools.sh (or `make tools`)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI=true the deploy tests never skip", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def helm() -> str:
    return _tool("helm")


@pytest.fixture(scope="session")
def kubectl() -> str:
    return _tool("kubectl")


def run(args: Sequence[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env={
            **os.environ,
            "HELM_CACHE_HOME": str(ROOT / ".tools" / "helm-cache"),
            "HELM_CONFIG_HOME": str(ROOT / ".tools" / "helm-config"),
            "HELM_DATA_HOME": str(ROOT / ".tools" / "helm-data"),
        },
    )
    if check:
        assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stderr}{done.stdout}"
    return done


def docs(text: str) -> list[Raw]:
    return [d for d in yaml.safe_load_all(text) if d]


@functools.cache
def _template(helm: str, chart: str, values: tuple[str, ...], sets: tuple[str, ...]) -> tuple[Raw, ...]:
    args = [helm, "template", RELEASE, chart, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
    for v in values:
        args += ["--values", v]
    for s in sets:
        args += ["--set", s]
    return tuple(docs(run(args).stdout))


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., list[Raw]]:
    """`helm template` of the chart (or another chart path) with values files and --set pairs."""

    def render(
        values: Sequence[Path | str] = (), sets: Sequence[str] = (), chart: Path | str = CHART
    ) -> list[Raw]:
        return [dict(d) for d in _template(helm, str(chart), tuple(map(str, values)), tuple(sets))]

    return render


@pytest.fixture(scope="session")
def kustomize(kubectl: str) -> Callable[[str], list[Raw]]:
    """`kubectl kustomize DIR` (offline), as documents."""

    @functools.cache
    def build(path: str) -> tuple[Raw, ...]:
        return tuple(docs(run([kubectl, "kustomize", str(ROOT / path)]).stdout))

    return lambda path: [dict(d) for d in build(path)]


def find(objs: Sequence[Raw], kind: str, name: str | None = None) -> Raw:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
