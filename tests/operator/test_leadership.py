"""Two replicas: one acts at a time, the other takes over when it dies, and no rollout follows."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from harness import Cluster, eventually, gateway, provider

from llmgw import options, runner

pytestmark = pytest.mark.integration

DURATION = 4.0
RENEW = 0.5


class Replica:
    def __init__(self, name: str, *, release: bool = True, health_port: int | None = None) -> None:
        self.name = name
        self.release = release
        self.stop = threading.Event()
        self.ready = threading.Event()
        opts = options.Options(
            settle_seconds=0.2,
            max_settle_seconds=2.0,
            leader_election=True,
            lease_namespace="default",
            lease_duration_seconds=DURATION,
            lease_renew_seconds=RENEW,
            identity=name,
            release_lease_on_stop=release,
        )
        self.thread = threading.Thread(
            target=lambda: asyncio.run(
                runner.operate(opts, stop_flag=self.stop, ready_flag=self.ready, health_port=health_port)
            ),
            daemon=True,
        )

    async def start(self) -> None:
        self.thread.start()
        await asyncio.get_running_loop().run_in_executor(None, self.ready.wait, 15)

    async def halt(self) -> None:
        self.stop.set()
        await asyncio.get_running_loop().run_in_executor(None, self.thread.join, 15)


def writers(cluster: Cluster, since: int = 0) -> set[str]:
    assert cluster.emulator is not None
    rows = list(zip(cluster.emulator.writes, cluster.emulator.agents, strict=True))[since:]
    return {agent.split("(")[-1].rstrip(")") for (_, res, _, _), agent in rows if res != "leases"}


async def holder(cluster: Cluster) -> str | None:
    lease = await cluster._json(
        "GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/llmgw-operator"
    )
    return (lease or {}).get("spec", {}).get("holderIdentity") or None


def _config_hash(dep: dict | None) -> str | None:
    return dep and dep["spec"]["template"]["metadata"]["annotations"]["llmgateway.dev/config-hash"]


@pytest.mark.parametrize("crash", [True, False], ids=["leader-killed", "leader-stopped"])
async def test_one_acts_the_other_takes_over_without_a_rollout(cluster: Cluster, crash: bool) -> None:
    a, b = Replica("replica-a", release=not crash), Replica("replica-b")
    try:
        await _handover(cluster, a, b)
    finally:
        for r in (a, b):
            if r.thread.is_alive():
                await r.halt()


async def _handover(cluster: Cluster, a: Replica, b: Replica) -> None:
    crash = not a.release
    await a.start()
    await eventually(lambda: _is(cluster, "replica-a"), what="replica-a leads")
    await b.start()
    await cluster.apply(provider("vllm", ["llama"]))
    await cluster.apply(gateway())
    dep = await eventually(lambda: cluster.get("Deployment", "ai", "gw"), what="Deployment")
    await asyncio.sleep(1.0)
    assert writers(cluster) == {"replica-a"}, "\n".join(
        map(str, zip(cluster.emulator.writes, cluster.emulator.agents, strict=True))
    )
    assert await holder(cluster) == "replica-a"

    mark = len(cluster.writes())
    started = time.monotonic()
    await a.halt()  # crash: the Lease is left to expire; stop: it is released
    await eventually(lambda: _is(cluster, "replica-b"), timeout=3 * DURATION + 2, what="replica-b takes over")
    takeover = time.monotonic() - started
    assert takeover <= DURATION + 2 * RENEW + 1.0, f"takeover took {takeover:.1f} s"

    # The new leader acts (an edit rolls) but the handover itself rolls nothing.
    await asyncio.sleep(1.0)
    assert [w for w in cluster.writes()[mark:] if w[1] in ("deployments", "configmaps")] == []
    assert _config_hash(await cluster.get("Deployment", "ai", "gw")) == _config_hash(dep)
    await cluster.apply(provider("vllm", ["llama", "qwen"]))
    await eventually(lambda: _rolled(cluster, _config_hash(dep)), what="the new leader rolls an edit")
    assert writers(cluster, mark) == {"replica-b"}
    print(f"takeover after the leader was {'killed' if crash else 'stopped'}: {takeover:.2f} s")


async def test_a_leader_that_cannot_renew_stops_acting_before_another_takes_over(cluster: Cluster) -> None:
    """No split brain: a leader whose Lease renewals hang (its other writes still get through)
    stops writing within the renew deadline, before the Lease expires and a standby takes it."""
    emu = cluster.emulator
    if emu is None:
        pytest.skip("partitions one replica from the emulator's Lease")
    a, b = Replica("replica-a"), Replica("replica-b")
    try:
        await a.start()
        await eventually(lambda: _is(cluster, "replica-a"), what="replica-a leads")
        await b.start()
        await cluster.apply(provider("vllm", ["m0"]))
        await cluster.apply(gateway())
        await eventually(lambda: cluster.get("Deployment", "ai", "gw"), what="Deployment")
        cut = time.monotonic()
        emu.hang_lease_writes_of = "replica-a"
        edits = 0
        while not await _is(cluster, "replica-b"):  # edits all along, so a leader has work
            assert time.monotonic() - cut < 3 * DURATION + 2, "replica-b never took over"
            edits += 1
            await cluster.apply(provider("vllm", [f"m{j}" for j in range(edits % 4 + 1)]))
            await asyncio.sleep(0.25)
        takeover = time.monotonic() - cut
        await asyncio.sleep(1.0)
        rows = list(zip(emu.writes, emu.agents, strict=True))
        acts = [k for k, (w, agent) in enumerate(rows) if w[1] != "leases" and "(replica-a)" in agent]
        first_b = next(k for k, (w, agent) in enumerate(rows) if w[1] == "leases" and "(replica-b)" in agent)
        assert acts
        assert max(acts) < first_b, "replica-a wrote after replica-b went for the Lease"
        assert any("(replica-b)" in agent for w, agent in rows[first_b:] if w[1] != "leases")
        print(f"cut off from its Lease: replica-b led {takeover:.2f} s later, after {edits} edits")
    finally:
        emu.hang_lease_writes_of = None
        for r in (a, b):
            if r.thread.is_alive():
                await r.halt()


async def _is(cluster: Cluster, name: str) -> bool:
    return await holder(cluster) == name


async def _rolled(cluster: Cluster, before: str | None) -> bool:
    return _config_hash(await cluster.get("Deployment", "ai", "gw")) not in (None, before)


async def test_liveness_fails_when_the_watch_goes_silent(cluster: Cluster) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    a = Replica("replica-a", health_port=port)
    await a.start()
    try:
        await _zombie(cluster, port)
    finally:
        await a.halt()


async def _zombie(cluster: Cluster, port: int) -> None:
    async with httpx.AsyncClient() as http:
        ok = await eventually(lambda: _leading(http, port), what="healthy and leading")
        assert ok["watchAgeSeconds"] < DURATION
        # A zombie watch: the API server keeps the streams open but stops delivering events.
        assert cluster.emulator is not None
        cluster.emulator.silence_watches = True
        silent = time.monotonic()
        bad = await eventually(lambda: _health(http, port, 503), timeout=4 * DURATION + 3, what="unhealthy")
        print(f"liveness failed {time.monotonic() - silent:.2f} s after the watches went silent")
        assert "no Lease renewal seen through the watch" in bad["status"]
        cluster.emulator.silence_watches = False


async def _leading(http: httpx.AsyncClient, port: int) -> dict | None:
    body = await _health(http, port, 200)
    return body if body and body.get("leader") else None


async def _health(http: httpx.AsyncClient, port: int, status: int) -> dict | None:
    try:
        rsp = await http.get(f"http://127.0.0.1:{port}/healthz")
    except httpx.HTTPError:
        return None
    return rsp.json() if rsp.status_code == status else None
