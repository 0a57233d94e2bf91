"""Killed mid-reconcile: `llmgw run` is killed (SIGKILL) at random points of a burst of changes.

Ten runs, seeded: each run applies a burst of random edits, creates and deletes of providers
and chains, kills the running operator process at a random moment of it (or, in two runs, after
it settled), and starts a new process. The new process must converge to the revision the pure
pipeline gives for the same objects, write no revision twice (one ConfigMap create per hash, no
create storm), and, when the killed process had already rolled the final revision, write nothing
at all: no rollout for a restart.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx
import kube_emulator as apiserver
import pytest
from harness import Cluster, chain, eventually, gateway, provider
from test_faults import GW, NS, config_hash, converged, expected

from ports import free_port

pytestmark = pytest.mark.integration

RUNS = 10
SEED = 20261123
SETTLE = 0.2
LATE = {4, 9}  # runs whose kill comes after the burst settled: the restart must write nothing
MODELS = [f"m{i}" for i in range(8)]


class Process:
    """`llmgw run`, as a user starts it, in a process of its own."""

    def __init__(self) -> None:
        self.health = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in kill()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llmgw.cli",
                "run",
                "--settle-seconds",
                str(SETTLE),
                "--metrics-port",
                str(free_port()),
                "--health-port",
                str(self.health),
                "--log-format",
                "json",
            ],
            env={**os.environ, "PYTHONSAFEPATH": "1"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def ready(self) -> None:
        async with httpx.AsyncClient() as http:

            async def healthy() -> bool:
                try:
                    return (await http.get(f"http://127.0.0.1:{self.health}/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(healthy, timeout=30, interval=0.05, what="the operator's liveness")

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no cleanup handler runs, in-flight requests are cut
        self.proc.wait(10)
        self.log.close()


class Burst:
    """Random changes to a bounded estate, reproducible from a seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.counter = 0

    async def step(self, c: Cluster) -> str:
        rng = self.rng
        self.counter += 1
        providers = {p["metadata"]["name"]: p for p in await c.list("LLMProvider", NS)}
        chains = [ch["metadata"]["name"] for ch in await c.list("FallbackChain", NS)]
        op = rng.choice(["edit", "edit", "rpm", "create", "delete", "chain", "unchain"])
        if op == "edit" or (op == "delete" and len(providers) <= 2):
            name = rng.choice(sorted(providers))
            await c.apply(provider(name, sorted(rng.sample(MODELS, rng.randint(1, 3)))))
        elif op == "rpm":
            name = rng.choice(sorted(providers))
            models = [{"name": m["name"], "rpm": self.counter} for m in providers[name]["spec"]["models"]]
            await c.patch("LLMProvider", NS, name, {"spec": {"models": models}})
        elif op == "create":
            await c.apply(provider(f"p{rng.randint(0, 5)}", [rng.choice(MODELS)]))
        elif op == "delete":
            await c.delete("LLMProvider", NS, rng.choice(sorted(providers)))
        elif op == "chain" or not chains:
            primary, *fallbacks = rng.sample(MODELS, rng.randint(2, 4))
            await c.apply(chain(f"c{rng.randint(0, 3)}", primary, fallbacks))
        else:
            await c.delete("FallbackChain", NS, rng.choice(sorted(chains)))
        return op


def duplicate_creates(writes: list[tuple[str, str, str, str]]) -> list[str]:
    """ConfigMaps the operator tried to create while they existed (no delete in between)."""
    live: set[str] = set()
    dup = []
    for verb, res, _ns, name in writes:
        if res != "configmaps":
            continue
        if verb == "create":
            if name in live:
                dup.append(name)
            live.add(name)
        elif verb == "delete":
            live.discard(name)
    return dup


async def one_run(
    cluster: Cluster, emu: apiserver.Emulator, rng: random.Random, burst: Burst, run: int, proc: Process
) -> tuple[Process, dict[str, Any]]:
    """A burst with a kill in it, a restart, and the checks; returns the new process."""
    ops = rng.randint(6, 14)
    kill_at = None if run in LATE else rng.uniform(0.0, ops * 0.06 + 0.8)
    w0 = len(emu.writes)
    done: list[str] = []
    at_kill: dict[str, int] = {}

    async def killer() -> None:
        if kill_at is not None:
            await asyncio.sleep(kill_at)
            proc.kill()
            at_kill.update(ops=len(done), writes=len(emu.writes) - w0)

    kill_task = asyncio.create_task(killer())
    for _ in range(ops):
        done.append(await burst.step(cluster))
        await asyncio.sleep(rng.uniform(0.0, 0.08))
    want = await expected(cluster)
    if kill_at is None:  # the late kill: the burst settles, then the process dies
        await eventually(lambda: converged(cluster, want), timeout=20, what="settled")
        await asyncio.sleep(3 * SETTLE)
        proc.kill()
        at_kill.update(ops=len(done), writes=len(emu.writes) - w0)
    await kill_task
    rolled_before = config_hash(await cluster.get("Deployment", NS, GW)) == want.hash
    settled_before = await converged(cluster, want)
    writes_before = len(emu.writes)

    t1 = time.monotonic()
    proc = Process()
    await proc.ready()
    await eventually(lambda: converged(cluster, want), timeout=20, what=f"run {run}: {want.hash}")
    t_conv = time.monotonic() - t1
    # Its first pass has run when it tried the master key Secret (answered 409: it exists).
    await eventually(lambda: any(w[1] == "secrets" for w in emu.writes[writes_before:]), what="a pass")
    await asyncio.sleep(4 * SETTLE)
    after = [w for w in emu.writes[writes_before:] if w[1] != "secrets"]  # the key: a 409, kept
    rollouts = [w for w in after if w[:2] == ("update", "deployments")]
    creates = [w for w in after if w[:2] == ("create", "configmaps")]
    if settled_before:
        assert after == [], f"run {run}: a restart with nothing to do wrote {after}"
    # Never more than one rollout and one new revision for a restart; none if it was rolled.
    assert len(rollouts) <= (0 if rolled_before else 1), f"run {run}: {after}"
    assert len(creates) <= (0 if rolled_before else 1), f"run {run}: {after}"
    quiet = len(emu.writes)
    await asyncio.sleep(3 * SETTLE)
    assert emu.writes[quiet:] == [], f"run {run}: still writing {emu.writes[quiet:]}"
    return proc, {
        "run": run,
        "ops": ops,
        "kill_after_s": None if kill_at is None else round(kill_at, 2),
        "killed_after_ops": at_kill["ops"],
        "writes_before_kill": at_kill["writes"],
        "rolled_before_kill": rolled_before,
        "restart_to_converged_s": round(t_conv, 2),
        "restart_writes": dict(collections.Counter(f"{w[0]} {w[1]}" for w in after)),
    }


async def test_killed_at_random_points_converges_and_writes_nothing_twice(cluster: Cluster) -> None:
    emu: apiserver.Emulator | None = cluster.emulator
    if emu is None:
        pytest.skip("reads the emulator's write log")
    rng = random.Random(SEED)
    burst = Burst(rng)
    await cluster.apply(gateway(revisionHistoryLimit=4))
    for i in range(3):
        await cluster.apply(provider(f"p{i}", [MODELS[i]]))
    await cluster.apply(chain("c0", MODELS[0], [MODELS[1]]))
    proc = Process()
    await proc.ready()
    want = await expected(cluster)
    await eventually(lambda: converged(cluster, want), timeout=20, what="the first revision")
    report: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        for run in range(RUNS):
            proc, row = await one_run(cluster, emu, rng, burst, run, proc)
            report.append(row)
    finally:
        proc.kill()
    for row in report:
        print(f"\nrestart {json.dumps(row)}")
    dup = duplicate_creates(emu.writes)
    names = [cm["metadata"]["name"] for cm in await cluster.config_maps(NS, GW)]
    print(
        f"\nrestarts: {len(report)} runs converged in {time.monotonic() - started:.1f} s; "
        f"{sum(1 for r in report if not r['rolled_before_kill'])} killed before the rollout; "
        f"ConfigMap creates {sum(1 for w in emu.writes if w[:2] == ('create', 'configmaps'))}, "
        f"duplicates {len(dup)}; live revisions {len(names)}"
    )
    assert len(report) == RUNS
    assert dup == []
    assert len(names) == len(set(names)) <= 4
    assert any(not r["rolled_before_kill"] for r in report), "no kill landed before a rollout"
