"""A first pass writes statuses many at a time, but never a gateway's before what it counts.

The emulator holds each status write `status_latency` seconds, as a real API server's write
takes a while (without it, the in-memory server answers each write before it reads the next,
and no two are ever in flight), and records when each began and ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from harness import Cluster, chain, eventually, gateway, provider

from llmgw.core import keys
from llmgw.handlers import reconciler as reconciler_mod
from llmgw.handlers import statuswrites

pytestmark = pytest.mark.integration

LIMIT = 4
NAMESPACES = ("ai", "team-a", "team-b")
PROVIDERS, CHAINS = 100, 199  # with the gateway, 300 objects


def objects() -> list[dict[str, Any]]:
    """One gateway over every namespace, providers of 2 models each, chains through them."""
    out = [gateway(namespaces={"from": "All"})]
    for i in range(PROVIDERS):
        out.append(provider(f"p{i}", [f"m{2 * i}", f"m{2 * i + 1}"], namespace=NAMESPACES[i % 3]))
    for i in range(CHAINS):
        out.append(chain(f"c{i}", f"m{i}", [f"m{i + 1}"], namespace=NAMESPACES[i % 3]))
    return out


@pytest.fixture
def operator_options() -> dict[str, Any]:
    return {"status_concurrency": LIMIT}


@pytest.fixture
async def estate(cluster: Cluster) -> list[dict[str, Any]]:
    """The estate, there before the operator starts (the test asks for it before `operator`)."""
    if cluster.emulator is None:
        pytest.skip("reads the emulator's record of status writes")
    cluster.emulator.status_latency = 0.02
    made = objects()
    for obj in made:
        await cluster.apply(obj)
    return made


async def test_the_first_pass_writes_statuses_bounded_and_gateways_last(
    cluster: Cluster, estate: list[dict[str, Any]], operator: None
) -> None:
    emu = cluster.emulator
    assert emu is not None
    every = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in estate}
    plural = {"llmproviders/status": "LLMProvider", "fallbackchains/status": "FallbackChain"}
    plural["llmgateways/status"] = "LLMGateway"

    def written() -> set[tuple[str, str, str]]:
        return {(plural[r], ns, n) for step, r, ns, n in list(emu.status_timeline) if step == "end"}

    await eventually(lambda: written() >= every, timeout=60, what="every status written")
    timeline = list(emu.status_timeline)
    first_gateway = next(i for i, (step, r, *_) in enumerate(timeline) if r == "llmgateways/status")
    ended_before = {(plural[r], ns, n) for step, r, ns, n in timeline[:first_gateway] if step == "end"}
    # Every provider and chain the gateway counts said so before the gateway began to.
    assert ended_before == {oid for oid in every if oid[0] != "LLMGateway"}
    assert not any(step == "begin" and r != "llmgateways/status" for step, r, *_ in timeline[first_gateway:])
    print(f"\nstatus writes: {len(timeline) // 2}, at most {emu.status_peak} in flight (limit {LIMIT})")
    assert 2 <= emu.status_peak <= LIMIT


async def test_writes_are_bounded_started_in_order_and_gateways_wait_for_the_rest() -> None:
    """`statuswrites.write` on its own: the bound, the order, and failures reported."""
    oids: list[keys.ObjectId] = [("LLMGateway", "ai", "gw"), ("LLMGateway", "ai", "a")]
    oids += [("LLMProvider", "ai", f"p{i:02d}") for i in range(20)]
    oids += [("FallbackChain", "ai", f"c{i:02d}") for i in range(10)]
    started: list[keys.ObjectId] = []
    log: list[tuple[str, keys.ObjectId]] = []
    in_flight = peak = 0

    async def write_one(oid: keys.ObjectId) -> bool:
        nonlocal in_flight, peak
        started.append(oid)
        in_flight += 1
        peak = max(peak, in_flight)
        log.append(("begin", oid))
        await asyncio.sleep(0.001 * (hash(oid) % 3))
        in_flight -= 1
        log.append(("end", oid))
        return oid != ("LLMProvider", "ai", "p07")

    assert await statuswrites.write(oids, write_one, 3) is False  # p07's write failed
    assert peak == 3
    inputs, gateways = statuswrites.waves(oids)
    assert started == inputs + gateways  # started in order, wave by wave
    first = log.index(("begin", ("LLMGateway", "ai", "a")))
    assert {oid for step, oid in log[:first] if step == "end"} == set(inputs)
    assert await statuswrites.write([], write_one, 3) is True


async def test_an_error_in_one_write_cancels_the_others_and_is_raised() -> None:
    cancelled: list[keys.ObjectId] = []

    async def write_one(oid: keys.ObjectId) -> bool:
        if oid[2] == "bad":
            raise KeyError("bad")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(oid)
            raise
        return True

    oids: list[keys.ObjectId] = [("LLMProvider", "ai", n) for n in ("a", "b", "bad")]
    with pytest.raises(KeyError):
        await statuswrites.write(oids, write_one, 5)
    assert sorted(cancelled) == [("LLMProvider", "ai", "a"), ("LLMProvider", "ai", "b")]


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When each reconcile pass began (of the operator started after this fixture)."""
    began: list[float] = []
    reconcile = reconciler_mod.Reconciler.reconcile

    async def counted(self: reconciler_mod.Reconciler) -> None:
        began.append(asyncio.get_running_loop().time())
        await reconcile(self)

    monkeypatch.setattr(reconciler_mod.Reconciler, "reconcile", counted)
    return began


async def test_a_start_takes_a_pass_and_the_statuses_an_edit_writes_start_none_of_their_own(
    cluster: Cluster, estate: list[dict[str, Any]], passes: list[float], operator: None, settle: float
) -> None:
    """kopf replays all 300 objects as events at start, and each of the 300 statuses written
    comes back as one: none of them is news to the pass that read (or wrote) it; only the
    objects the first pass created (the revision, the Deployment, ...) make a second. Then a
    chain that names no known model changes no render but two statuses (its own, and the
    gateway's, which counts it as excluded): one pass, not one more for each status coming
    back (without `core/news.py`, three)."""
    emu = cluster.emulator
    assert emu is not None
    await eventually(lambda: len(emu.status_timeline) >= 2 * len(estate), timeout=60, what="statuses")
    await asyncio.sleep(10 * settle)
    print(f"\n{len(estate)} objects, {len(emu.status_timeline) // 2} status writes: {len(passes)} passes")
    assert 1 <= len(passes) <= 2
    before, writes = len(passes), len(emu.status_timeline)
    await cluster.apply(chain("bad", "nowhere", ["m1"], namespace=NAMESPACES[0]))
    await eventually(lambda: len(emu.status_timeline) >= writes + 4, timeout=30, what="two statuses")
    await asyncio.sleep(10 * settle)
    assert len(emu.status_timeline) == writes + 4  # the chain's and the gateway's
    assert len(passes) - before == 1
