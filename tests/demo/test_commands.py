"""`llmgw demo` end to end without a gateway (no LiteLLM needed): the embedded API, the real
operator, the folder applied and re-applied, `get` / `fail` / `recover` through the state file,
what kubectl reads, and a stop well within 10 s."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from llmgw import cli
from llmgw.demo import commands, session

pytestmark = pytest.mark.integration

ESTATE = """
apiVersion: v1
kind: Namespace
metadata: {name: models}
---
apiVersion: v1
kind: Service
metadata: {name: vllm, namespace: models}
spec: {ports: [{name: http, port: 8000}]}
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: vllm, namespace: ai}
spec:
  type: vllm
  endpoint: {service: {name: vllm, namespace: models, port: 8000}}
  models: [{name: llama, backendModel: meta-llama/Llama-3.1-8B-Instruct}]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {check}")


async def test_the_demo_applies_shows_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    folder = tmp_path / "estate"
    folder.mkdir()
    (folder / "estate.yaml").write_text(ESTATE)
    demos: list[session.Demo] = []
    kubeconfig = tmp_path / "kubeconfig"
    task = asyncio.create_task(
        commands.interactive(folder, _free_port(), kubeconfig, "/no/litellm/needed", started=demos.append)
    )
    try:
        await eventually(lambda: demos)
        demo = demos[0]
        assert json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == demo.api_url

        async def accepted() -> bool:
            world = await demo.snapshot()
            return any(
                c.get("type") == "Accepted"
                for p in world.providers
                for c in (p.get("status") or {}).get("conditions") or ()
            )

        await eventually(accepted)
        # Another terminal: get, fail, recover through the state file.
        assert await commands._control("GET", "/summary") == 0
        assert "ai/vllm" in capsys.readouterr().out
        fake = demo.fake("vllm")
        assert fake is not None
        assert demo.world.rewrite == {"vllm.models.svc.cluster.local:8000": f"127.0.0.1:{fake.port}"}
        assert await commands._control("POST", "/fail/vllm") == 0
        assert fake.failing
        assert await commands._control("POST", "/recover/vllm") == 0
        assert not fake.failing
        assert await commands._control("POST", "/fail/nope") == 1
        assert "no fake backend nope" in capsys.readouterr().out
        # What kubectl reads: discovery with short names and categories, server-side tables.
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{demo.api_url}/api/v1") as rsp:
                core = await rsp.json()
            assert core["groupVersion"] == "v1"
            assert next(r for r in core["resources"] if r["name"] == "pods")["shortNames"] == ["po"]
            async with s.get(f"{demo.api_url}/apis/llmgateway.dev/v1alpha1") as rsp:
                ours = {r["name"]: r for r in (await rsp.json())["resources"]}
            assert ours["llmgateways"]["categories"] == ["llm"]
            assert ours["llmgateways/status"]["categories"] == []
            table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
            url = f"{demo.api_url}/apis/llmgateway.dev/v1alpha1/namespaces/ai/llmproviders"
            async with s.get(url, headers={"Accept": table}) as rsp:
                got = await rsp.json()
            assert got["kind"] == "Table"
            assert [c["name"] for c in got["columnDefinitions"]][:3] == ["Name", "Type", "Models"]
            assert got["rows"][0]["cells"][:2] == ["vllm", "vllm"]
            async with s.get(url + "/vllm", headers={"Accept": table}) as rsp:
                assert (await rsp.json())["rows"][0]["cells"][0] == "vllm"
        # An edit is re-applied: the provider's file gone, the provider is deleted (pruned).
        (folder / "estate.yaml").write_text(ESTATE.split("---\napiVersion: llmgateway.dev", maxsplit=1)[0])

        async def pruned() -> bool:
            return not (await demo.snapshot()).providers

        await eventually(pruned)
        began = time.monotonic()
        demo.stop_event.set()
        assert await asyncio.wait_for(task, 10) == 0
        assert time.monotonic() - began < 10
        assert not session.state_file().exists()
        out = capsys.readouterr().out
        assert "applied" in out
    finally:
        if not task.done():
            demos[0].stop_event.set() if demos else task.cancel()
            await asyncio.wait_for(task, 15)


async def test_commands_for_no_running_demo_and_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert await commands._control("GET", "/summary") == 1  # what `llmgw demo get` runs
    assert "no demo is running" in capsys.readouterr().out
    assert cli.main(["demo", "fail"]) == 2
    assert cli.main(["demo", "a", "b"]) == 2
    assert cli.main(["demo", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
