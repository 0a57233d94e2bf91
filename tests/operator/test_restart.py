"""What survives an operator restart: the master key, the revision, and quiet."""

from __future__ import annotations

import asyncio
import threading

import pytest
from harness import Cluster, chain, eventually, gateway, provider

from llmgw import metrics, options, runner

pytestmark = pytest.mark.integration


def start(settle: float) -> tuple[threading.Thread, threading.Event, threading.Event]:
    stop, ready = threading.Event(), threading.Event()
    opts = options.Options(settle_seconds=settle, max_settle_seconds=3.0)
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


def passes() -> float:
    """Reconcile passes finished in this process, whatever their result."""
    return sum(
        metrics.REGISTRY.get_sample_value("llmgw_reconciles_total", {"kind": "all", "result": r}) or 0.0
        for r in ("ok", "retry", "error")
    )


async def test_a_restart_on_an_unchanged_estate_of_hundreds_writes_at_most_three_times(
    cluster: Cluster, settle: float
) -> None:
    """300 objects, every status written: a restart's first pass finds nothing to change."""
    emu = cluster.emulator
    if emu is None:
        pytest.skip("reads the emulator's write log")
    loop = asyncio.get_running_loop()
    namespaces = ("ai", "team-a", "team-b")
    estate = [gateway(namespaces={"from": "All"})]
    estate += [
        provider(f"p{i}", [f"m{2 * i}", f"m{2 * i + 1}"], namespace=namespaces[i % 3]) for i in range(100)
    ]
    estate += [chain(f"c{i}", f"m{i}", [f"m{i + 1}"], namespace=namespaces[i % 3]) for i in range(199)]
    for obj in estate:
        await cluster.apply(obj)
    plurals = {"llmproviders", "fallbackchains", "llmgateways"}

    def all_written() -> bool:
        with_status = [
            o
            for (res, _ns, _n), o in list(emu.objects.items())
            if res.plural in plurals and not o.deleted and (o.raw.get("status") or {}).get("conditions")
        ]
        return len(with_status) == len(estate)

    async def quiet() -> bool:
        before = len(emu.writes)
        await asyncio.sleep(5 * settle)
        return len(emu.writes) == before

    thread, stop, ready = start(settle)
    await loop.run_in_executor(None, ready.wait, 15)
    await eventually(all_written, timeout=60, what="every status written")
    await eventually(quiet, timeout=60, what="the first run done writing")
    stop.set()
    await loop.run_in_executor(None, thread.join, 15)

    writes, before = len(emu.writes), passes()
    thread, stop, ready = start(settle)
    await loop.run_in_executor(None, ready.wait, 15)
    await eventually(lambda: passes() > before, timeout=60, what="a pass of the restarted operator")
    await asyncio.sleep(5 * settle)
    stop.set()
    await loop.run_in_executor(None, thread.join, 15)
    after = emu.writes[writes:]
    print(f"\nrestart on {len(estate)} unchanged objects: {len(after)} writes {after}")
    assert len(after) <= 3, after
    assert [w for w in after if w[1].endswith("/status")] == []
