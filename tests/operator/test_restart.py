"""What survives an operator restart: the master key, the revision, and quiet."""

from __future__ import annotations

import asyncio
import threading

import pytest
from harness import Cluster, eventually, gateway, provider

from llmgw import runner
from llmgw.handlers import registry

pytestmark = pytest.mark.integration


def start(settle: float) -> tuple[threading.Thread, threading.Event, threading.Event]:
    stop, ready = threading.Event(), threading.Event()
    opts = registry.Options(settle_seconds=settle, max_settle_seconds=3.0)
    thread = threading.Thread(
        target=lambda: asyncio.run(runner.operate(opts, stop_flag=stop, ready_flag=ready)), daemon=True
    )
    thread.start()
    return thread, stop, ready


async def test_restart_keeps_master_key_and_revision_and_writes_nothing(
    cluster: Cluster, settle: float
) -> None:
    loop = asyncio.get_running_loop()
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(gateway())
    thread, stop, ready = start(settle)
    await loop.run_in_executor(None, ready.wait, 15)
    dep = await eventually(lambda: cluster.get("Deployment", "ai", "gw"))
    secret = await cluster.get("Secret", "ai", "gw-master-key")
    await asyncio.sleep(5 * settle)
    stop.set()
    await loop.run_in_executor(None, thread.join, 15)

    writes = len(cluster.writes())
    thread, stop, ready = start(settle)
    await loop.run_in_executor(None, ready.wait, 15)
    await asyncio.sleep(10 * settle)
    stop.set()
    await loop.run_in_executor(None, thread.join, 15)

    after = cluster.writes()[writes:]
    # The only write a restart may try is the master key Secret, refused as existing.
    assert [w for w in after if w[1] != "secrets"] == []
    assert await cluster.get("Secret", "ai", "gw-master-key") == secret
    again = await cluster.get("Deployment", "ai", "gw")
    assert again["metadata"]["resourceVersion"] == dep["metadata"]["resourceVersion"] or (
        again["spec"] == dep["spec"]
    )
