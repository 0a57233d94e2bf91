"""Integration fixtures: see `harness.py` for the API server and the test's client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import kube_emulator as apiserver
import pytest
from harness import Cluster, _kubeconfig, running

from llmgw import options


@pytest.fixture
def missing_apis() -> tuple[str, ...]:
    """Keys of `kube_emulator.OPTIONAL_APIS` the emulated cluster does not serve; parametrize to
    leave some out."""
    return ()


@pytest.fixture
async def cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing_apis: tuple[str, ...]
) -> AsyncIterator[Cluster]:
    real = os.environ.get("LLMGW_TEST_KUBECONFIG")
    if real:
        monkeypatch.setenv("KUBECONFIG", real)
        import yaml

        cfg = yaml.safe_load(Path(real).read_text())
        url = cfg["clusters"][0]["cluster"]["server"]
        c = Cluster(url, None)
        try:
            yield c
        finally:
            await c.session.close()
        return
    async with apiserver.Emulator() as emulator, kmock.Server(emulator) as server:
        apiserver.register(emulator, without=missing_apis)
        url = str(server.url)
        monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, url.rstrip("/"))))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        c = Cluster(url, emulator)
        for ns in ("default", "ai", "team-a", "team-b"):
            await c._json(
                "POST",
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            )
        try:
            yield c
        finally:
            await c.session.close()


@pytest.fixture
def operator_options() -> dict[str, Any]:
    """More `options.Options` for the operator under test; modules override it."""
    return {}


@pytest.fixture
def settle() -> float:
    return 0.3


@pytest.fixture
async def operator(cluster: Cluster, settle: float, operator_options: dict[str, Any]) -> AsyncIterator[None]:
    """The real operator, as `llmgw run` starts it (see `harness.running`)."""
    opts = options.Options(
        settle_seconds=settle, max_settle_seconds=max(3.0, 10 * settle), **operator_options
    )
    async for _ in running(opts):
        yield
