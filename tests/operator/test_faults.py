"""Faults during a reconcile: the API answers 500, 409 or 429 to the operator's writes, or drops
its watch streams. Whatever the fault, the operator retries with backoff and converges to the
revision the pure pipeline gives for the same objects, and never leaves half-written state: the
Deployment never names a ConfigMap that does not exist (a ConfigMap without its Deployment
update is allowed only until the retry).

The emulator (`kube_emulator.Emulator`) answers the operator's next writes with the queued
status codes instead of doing them (a 409 to a create comes after the create, as for the retry
of a create whose answer was lost), and `drop_watches` ends every open watch stream, plainly
(the client reconnects) or with `410 Gone` (the client lists again). The faults injected per
kind and the rounds that converged are printed (`pytest -s`) and checked.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import json
import random
import time
from typing import Any

import kube_emulator as apiserver
import pytest
from harness import Cluster, chain, condition, eventually, gateway, provider

from llmgw.core import estate, pipeline, render, revisions

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator")]

NS, GW = "ai", "gw"
WRITE_ROUNDS = 5  # 7 faults of each status
WATCH_ROUNDS = 3  # 9 drops of each kind
FAULTS = {"500": 500, "409": 409, "429": 429}
KINDS = [*FAULTS, "watch-dropped", "watch-gone"]
REPORT: dict[str, dict[str, Any]] = {}


def live(emu: apiserver.Emulator, plural: str, name: str | None = None) -> list[dict[str, Any]]:
    """Objects as the emulator holds them now (not over HTTP: polling must not load the server)."""
    out = []
    for (resource, namespace, n), obj in list(emu.objects.items()):
        if resource.plural == plural and namespace == NS and (name is None or n == name) and not obj.deleted:
            out.append(dict(obj.raw))
    return out


def streams(emu: apiserver.Emulator) -> int:
    """Watch streams open now (each reads its resource's bus in the emulator)."""
    return sum(bus.consumer_count for bus in list(emu._buses.values()))


def mounted(dep: dict[str, Any]) -> str:
    (volume,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"]
    return str(volume["configMap"]["name"])


def config_hash(dep: dict[str, Any] | None) -> str | None:
    if not dep:
        return None
    return dep["spec"]["template"]["metadata"]["annotations"].get("llmgateway.dev/config-hash")


async def expected(c: Cluster) -> render.Rendered:
    """What a clean run gives: the pure pipeline over the same objects, read back from the API."""
    raws = [
        *await c.list("LLMProvider", NS),
        *await c.list("FallbackChain", NS),
        *await c.list("LLMGateway", NS),
    ]
    est = estate.build(raws)
    (gw,) = [g for g in est.gateways if g.metadata.name == GW]
    return pipeline.run(est, gw).rendered


async def converged(c: Cluster, want: render.Rendered) -> bool:
    dep = await c.get("Deployment", NS, GW)
    if config_hash(dep) != want.hash:
        return False
    cm = await c.get("ConfigMap", NS, revisions.name(GW, want.hash))
    if cm is None or cm["data"]["config.yaml"] != want.text or mounted(dep) != cm["metadata"]["name"]:
        return False
    gw = await c.get("LLMGateway", NS, GW)
    programmed = condition(gw, "Programmed")
    if (
        not programmed
        or programmed["status"] != "True"
        or gw["status"].get("revision") != revisions.short(want.hash)
    ):
        return False
    if programmed.get("observedGeneration") != gw["metadata"]["generation"]:
        return False
    # Every input's status is written for its current generation too.
    for kind in ("LLMProvider", "FallbackChain"):
        for obj in await c.list(kind, NS):
            accepted = condition(obj, "Accepted")
            if not accepted or accepted.get("observedGeneration") != obj["metadata"]["generation"]:
                return False
    return True


class Invariant:
    """Samples the emulator's memory every few milliseconds: the Deployment must never name a
    ConfigMap that does not exist, whatever write failed."""

    def __init__(self, emu: apiserver.Emulator) -> None:
        self.emu = emu
        self.samples = 0
        self.broken: list[str] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for dep in live(self.emu, "deployments", GW):
                name = mounted(dep)
                if not live(self.emu, "configmaps", name):
                    self.broken.append(name)
            self.samples += 1
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def change(i: int) -> list[dict[str, Any]]:
    """Round i's edits: a new model (a new revision), a new provider, a chain through both."""
    return [
        provider("vllm", [f"m{j}" for j in range(i + 2)]),
        provider(f"extra-{i}", [f"x{i}"]),
        chain(f"c{i}", f"m{i}", [f"x{i}"]),
    ]


@pytest.mark.parametrize("kind", KINDS)
async def test_operator_converges_through_faults(cluster: Cluster, kind: str, settle: float) -> None:
    emu = cluster.emulator
    if emu is None:
        pytest.skip("injects faults into the emulator")
    rng = random.Random(f"faults-{kind}")
    await cluster.apply(gateway(revisionHistoryLimit=3))
    await cluster.apply(provider("vllm", ["m0"]))
    first = await expected(cluster)
    await eventually(lambda: converged(cluster, first), timeout=15, what="the first revision")
    invariant = Invariant(emu)
    open_streams = streams(emu)
    rounds: list[dict[str, Any]] = []
    drops = ended = 0
    try:
        for i in range(WRITE_ROUNDS if kind in FAULTS else WATCH_ROUNDS):
            attempts_before = len(emu.writes) + len(emu.injected)
            injected_before = len(emu.injected)
            t0 = time.monotonic()
            if kind in FAULTS:
                for f in range(1 + i % 2):  # one or two faults, each after 0-3 good writes
                    good = 0 if i == f == 0 else rng.randint(0, 3)  # the first: the revision's create
                    emu.faults.extend([0] * good + [FAULTS[kind]])
            for obj in change(i):
                await cluster.apply(obj)
                if kind.startswith("watch"):
                    # After each edit, so that some edits land while the streams reconnect.
                    await eventually(lambda: streams(emu) >= open_streams, what="the watches back")
                    ended += await emu.drop_watches(gone=kind == "watch-gone")
                    drops += 1
            want = await expected(cluster)
            await eventually(
                lambda w=want: converged(cluster, w),
                timeout=30,
                what=f"round {i}: revision {revisions.short(want.hash)}",
            )
            assert not emu.faults, f"round {i}: faults never met: {list(emu.faults)}"
            attempts = len(emu.writes) + len(emu.injected) - attempts_before
            assert attempts <= 25, f"round {i}: {attempts} write attempts: a retry storm"
            rounds.append(
                {
                    "faults": len(emu.injected) - injected_before if kind in FAULTS else 3,
                    "seconds": round(time.monotonic() - t0, 2),
                    "attempts": attempts,
                }
            )
        # Once converged, quiet: no retry loop lingers after the faults.
        await asyncio.sleep(3 * settle)
        before = len(emu.writes) + len(emu.injected)
        await asyncio.sleep(5 * settle)
        assert len(emu.writes) + len(emu.injected) == before, emu.writes[before:]
    finally:
        await invariant.stop()
    assert invariant.broken == [], f"the Deployment named missing ConfigMaps: {invariant.broken}"
    assert invariant.samples > 50

    # One ConfigMap per revision, each created once; what is left is whole and named by its hash.
    creates = collections.Counter(w[3] for w in emu.writes if w[:2] == ("create", "configmaps"))
    assert all(count == 1 for count in creates.values()), creates
    cms = await cluster.config_maps(NS, GW)
    assert 1 <= len(cms) <= 3  # revisionHistoryLimit
    for cm in cms:
        digest = hashlib.sha256(cm["data"]["config.yaml"].encode()).hexdigest()
        assert cm["metadata"]["name"] == f"{GW}-config-{digest[:10]}"

    hit = collections.Counter(f"{verb} {res}" for _code, verb, res, _ns, _n in emu.injected)
    REPORT[kind] = {
        "faults": len(emu.injected) if kind in FAULTS else drops,
        "rounds": len(rounds),
        "converged": len(rounds),
        "seconds_per_round": [r["seconds"] for r in rounds],
        "write_attempts_per_round": [r["attempts"] for r in rounds],
        "hit": dict(hit) if kind in FAULTS else {"streams ended": ended},
        "samples_of_the_invariant": invariant.samples,
    }
    print(f"\nfaults[{kind}]: {json.dumps(REPORT[kind])}")
    assert REPORT[kind]["faults"] >= 7


async def test_a_deleted_current_revision_is_written_again(cluster: Cluster, settle: float) -> None:
    """Someone (or a garbage collector) deletes the ConfigMap the gateway mounts: the operator
    writes the same revision again, without rolling the gateway."""
    emu = cluster.emulator
    if emu is None:
        pytest.skip("reads the emulator's write log")
    await cluster.apply(gateway())
    await cluster.apply(provider("vllm", ["m0"]))
    want = await expected(cluster)
    await eventually(lambda: converged(cluster, want), timeout=15, what="the first revision")
    await asyncio.sleep(5 * settle)  # later: the operator has seen its own write by then
    name = revisions.name(GW, want.hash)
    dep = await cluster.get("Deployment", NS, GW)
    before = len(emu.writes)
    await cluster.delete("ConfigMap", NS, name)
    cm = await eventually(lambda: cluster.get("ConfigMap", NS, name), what="the revision written again")
    assert cm["data"]["config.yaml"] == want.text
    await asyncio.sleep(5 * settle)
    assert [w for w in emu.writes[before:] if w[1] != "llmgateways/status"] == [
        ("create", "configmaps", NS, name)
    ]
    assert (await cluster.get("Deployment", NS, GW))["spec"] == dep["spec"]


async def test_returning_to_a_pruned_revision_writes_it_once(cluster: Cluster, settle: float) -> None:
    """A revision pruned from history and then wanted again is created once, not once per pass."""
    emu = cluster.emulator
    if emu is None:
        pytest.skip("reads the emulator's write log")
    await cluster.apply(gateway(revisionHistoryLimit=2))
    for models in (["a"], ["b"], ["c"], ["d"], ["a"]):  # a's revision is pruned, then wanted again
        await cluster.apply(provider("vllm", models))
        want = await expected(cluster)
        await eventually(lambda w=want: converged(cluster, w), timeout=15, what=f"revision of {models}")
    for i in range(3):  # passes that write statuses only
        await cluster.patch("LLMProvider", NS, "vllm", {"metadata": {"labels": {"pass": str(i)}}})
        await asyncio.sleep(3 * settle)
    name = revisions.name(GW, want.hash)
    creates = [w for w in emu.writes if w[:2] == ("create", "configmaps") and w[3] == name]
    deletes = [w for w in emu.writes if w[:2] == ("delete", "configmaps") and w[3] == name]
    assert (len(creates), len(deletes)) == (2, 1)


async def test_an_object_deleted_while_the_watch_lists_again_is_left_out(cluster: Cluster) -> None:
    """A provider deleted while the watches list again after `410 Gone` leaves the render: kopf's
    new listing lacks it, and the operator passes that on as a delete (handlers/relisting.py)."""
    emu = cluster.emulator
    if emu is None:
        pytest.skip("drops the emulator's watch streams")
    await cluster.apply(gateway())
    await cluster.apply(provider("vllm", ["m0"]))
    await cluster.apply(provider("extra", ["x0"]))
    first = await expected(cluster)
    await eventually(lambda: converged(cluster, first), timeout=15, what="the first revision")
    assert await emu.drop_watches(gone=True) > 0
    await cluster.delete("LLMProvider", NS, "extra")  # while the watches list again
    want = await expected(cluster)
    await eventually(lambda: converged(cluster, want), timeout=4, what="the provider left out")


async def test_a_lasting_error_is_retried_with_growing_backoff(cluster: Cluster) -> None:
    """The API fails every write for a while: the operator's passes space out (1 s, 2 s, 4 s, ...,
    at most 60 s) instead of hammering it, and it converges once the API answers again."""
    emu = cluster.emulator
    if emu is None:
        pytest.skip("injects faults into the emulator")
    await cluster.apply(gateway())
    await cluster.apply(provider("vllm", ["m0"]))
    first = await expected(cluster)
    await eventually(lambda: converged(cluster, first), timeout=15, what="the first revision")
    await asyncio.sleep(1.0)
    before = len(emu.injected)
    emu.faults.extend([500] * 9)
    await cluster.apply(provider("vllm", ["m0", "m1"]))
    times: list[float] = []  # when each fault was answered, to 5 ms
    while len(emu.injected) - before < 9:
        times += [time.monotonic()] * (len(emu.injected) - before - len(times))
        await asyncio.sleep(0.005)
    times += [time.monotonic()] * (9 - len(times))
    want = await expected(cluster)
    await eventually(lambda: converged(cluster, want), timeout=15, what="the revision after the outage")
    passes = [times[0]]
    for t in times[1:]:
        if t - passes[-1] > 0.5:  # the writes of one pass come within milliseconds of each other
            passes.append(t)
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(passes)]
    print(f"\nbackoff: {len(times)} failed writes in {len(passes)} passes, gaps {gaps} s")
    assert len(gaps) >= 2
    assert all(g >= 0.9 for g in gaps), gaps
    assert all(b >= 1.6 * a for a, b in itertools.pairwise(gaps)), gaps
