"""--watch-secret-versions reads Secrets' metadata only: `llmgw.kube.secretversions` over the emulator.

The emulator answers PartialObjectMetadata(List) to a request whose Accept header asks for it
(or, with `partial_metadata = False`, ignores the header as an odd server might); it records
every list, watch and get. Against the real operator: every read of Secrets asked for metadata
only, and none went through kopf. Against the watcher alone: what it keeps, resuming, a relist
after 410 Gone that drops what was deleted meanwhile, and a prompt stop.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

import pytest
from harness import Cluster, eventually, gateway, provider

from llmgw.kube import secretversions
from llmgw.kube.client import Kube

pytestmark = pytest.mark.integration

VALUE = "s3cr3t-value-never-kept"


def secret(name: str, value: str = VALUE, namespace: str = "ai") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "annotations": {"team": "a"}},
        "stringData": {"api-key": value},
    }


def secret_reads(c: Cluster) -> list[Any]:
    assert c.emulator is not None
    return [r for r in c.emulator.reads if r.plural == "secrets" and r.agent != "llmgw-tests"]


async def rv(c: Cluster, name: str, namespace: str = "ai") -> str:
    return str((await c.get("Secret", namespace, name))["metadata"]["resourceVersion"])


@pytest.fixture
def operator_options() -> dict[str, Any]:
    return {"watch_secret_versions": True}


@pytest.mark.usefixtures("operator")
async def test_the_operator_reads_secrets_as_metadata_only(cluster: Cluster) -> None:
    await cluster.apply(secret("openai-key"))
    p = provider(
        "openai", ["gpt-4o"], type="openai", apiKeySecretRef={"name": "openai-key", "key": "api-key"}
    )
    del p["spec"]["endpoint"]
    await cluster.apply(p)
    await cluster.apply(gateway(rolloutOnSecretChange=True))

    async def revision() -> str | None:
        dep = await cluster.get("Deployment", "ai", "gw")
        return dep and dep["spec"]["template"]["metadata"]["annotations"]["llmgateway.dev/config-hash"]

    first = await eventually(revision, what="first rollout")
    await cluster.patch("Secret", "ai", "openai-key", {"stringData": {"api-key": "rotated"}})
    await eventually(lambda: _other(revision, first), what="a rollout for the rotated key")

    reads = secret_reads(cluster)
    verbs = {r.verb for r in reads}
    assert verbs == {"list", "watch"}, reads  # never a get of a Secret, never one by name
    for r in reads:
        want = secretversions.LIST_ACCEPT if r.verb == "list" else secretversions.WATCH_ACCEPT
        assert r.accept == want, r  # kopf's reads would carry its own Accept: there are none
        assert r.agent.startswith("llmgw/"), r


async def _other(revision: Any, first: str) -> str | None:
    now = await revision()
    return now if now != first else None


class Watched:
    """A SecretVersions over the emulator, with every on_change recorded."""

    def __init__(self, namespaces: tuple[str, ...] = (), watch_seconds: int = 60) -> None:
        self.changes: list[tuple[str, str]] = []
        self.sv = secretversions.SecretVersions(
            Kube.connect(),
            namespaces,
            self.changes.append,
            logging.getLogger("test-secret-versions"),
            watch_seconds=watch_seconds,
        )


@pytest.mark.parametrize("honoured", [True, False], ids=["metadata-server", "header-ignoring-server"])
async def test_only_names_and_versions_are_kept_whatever_the_server_sends(
    cluster: Cluster, honoured: bool, caplog: pytest.LogCaptureFixture
) -> None:
    assert cluster.emulator is not None
    cluster.emulator.partial_metadata = honoured
    caplog.set_level(logging.DEBUG)
    await cluster.apply(secret("listed"))
    w = Watched()
    w.sv.start()
    try:
        assert await w.sv.synced(5)
        assert w.sv.versions == {("ai", "listed"): await rv(cluster, "listed")}
        await eventually(lambda: _watching(cluster), what="an open watch")
        await cluster.apply(secret("watched"))
        await cluster.patch("Secret", "ai", "listed", {"stringData": {"api-key": VALUE + "-2"}})
        want = {
            ("ai", "listed"): await rv(cluster, "listed"),
            ("ai", "watched"): await rv(cluster, "watched"),
        }
        await eventually(lambda: w.sv.versions == want, what=f"{want}; have {w.sv.versions}")
        assert w.changes == [("ai", "listed"), ("ai", "watched"), ("ai", "listed")]
        # Nothing of the Secrets but (namespace, name) -> resourceVersion, anywhere in the object.
        assert VALUE not in repr(vars(w.sv))
        assert "team" not in repr(vars(w.sv))  # nor its annotations
        assert all(isinstance(v, str) and v.isdigit() for v in w.sv.versions.values())
    finally:
        await w.sv.stop()
    assert VALUE not in caplog.text
    reads = secret_reads(cluster)
    assert {r.verb for r in reads} == {"list", "watch"}
    assert all(
        r.accept == (secretversions.LIST_ACCEPT if r.verb == "list" else secretversions.WATCH_ACCEPT)
        for r in reads
    )


async def test_resumes_and_relists_after_gone_dropping_what_was_deleted_meanwhile(cluster: Cluster) -> None:
    emulator = cluster.emulator
    assert emulator is not None
    for name in ("a", "b", "c"):
        await cluster.apply(secret(name))
    await cluster.apply(secret("other", namespace="team-a"))
    # Cluster-wide: the emulator's 410 reaches only cluster-wide watches (kmock filters a
    # namespaced watch's events by the object's namespace, and a Status has none).
    w = Watched()
    w.sv.start()
    try:
        assert await w.sv.synced(5)
        assert set(w.sv.versions) == {("ai", "a"), ("ai", "b"), ("ai", "c"), ("team-a", "other")}

        # A delete through the watch (once it is open: the emulator keeps no history to replay).
        await eventually(lambda: _watching(cluster), what="an open watch")
        await cluster.delete("Secret", "ai", "b")
        await eventually(lambda: ("ai", "b") not in w.sv.versions, what="b dropped")
        assert w.changes[-1] == ("ai", "b")

        # A dropped stream: the watch resumes from the last version seen, without a list.
        assert await emulator.drop_watches() >= 1
        await eventually(lambda: len(_watches(cluster)) >= 2, what="a second watch")
        assert (_watches(cluster)[-1].resource_version or "").isdigit(), _watches(cluster)
        await eventually(lambda: _watching(cluster), what="the watch open again")
        last = await rv(cluster, "c")
        await cluster.patch("Secret", "ai", "c", {"metadata": {"labels": {"x": "y"}}})
        await eventually(lambda: w.sv.versions.get(("ai", "c")) not in (None, last), what="c modified")
        assert [r.verb for r in secret_reads(cluster)].count("list") == 1

        # Changes the watch never shows (a zombie stream), then 410 Gone: a new list, which drops
        # the Secret deleted meanwhile and picks up the one modified meanwhile.
        emulator.silence_watches = True
        await cluster.delete("Secret", "ai", "c")
        await cluster.patch("Secret", "ai", "a", {"stringData": {"api-key": "rotated"}})
        await asyncio.sleep(0.2)
        assert ("ai", "c") in w.sv.versions  # not seen yet
        emulator.silence_watches = False
        changes = len(w.changes)
        assert await emulator.drop_watches(gone=True) >= 1
        now = await rv(cluster, "a")
        want = {("ai", "a"): now, ("team-a", "other"): await rv(cluster, "other", "team-a")}
        await eventually(lambda: w.sv.versions == want, what="a relist")
        assert sorted(w.changes[changes:]) == [("ai", "a"), ("ai", "c")]
        assert [r.verb for r in secret_reads(cluster)].count("list") == 2
    finally:
        await w.sv.stop()


async def test_with_namespaces_it_lists_and_watches_each_of_them_only(cluster: Cluster) -> None:
    for namespace in ("ai", "team-a", "team-b"):
        await cluster.apply(secret("key", namespace=namespace))
    w = Watched(namespaces=("ai", "team-a"))
    w.sv.start()
    try:
        assert await w.sv.synced(5)
        await cluster.apply(secret("new", namespace="team-a"))
        await cluster.apply(secret("new", namespace="team-b"))
        want = {("ai", "key"), ("team-a", "key"), ("team-a", "new")}
        await eventually(lambda: set(w.sv.versions) == want, what=f"{want}")
        await asyncio.sleep(0.2)
        assert set(w.sv.versions) == want
    finally:
        await w.sv.stop()
    assert {(r.verb, r.namespace) for r in secret_reads(cluster)} == {
        (verb, ns) for verb in ("list", "watch") for ns in ("ai", "team-a")
    }


def _watching(c: Cluster) -> int:
    """Open watch streams of Secrets, as the emulator sees them."""
    assert c.emulator is not None
    return sum(bus.consumer_count for res, bus in c.emulator._buses.items() if res.plural == "secrets")


def _watches(c: Cluster) -> list[Any]:
    return [r for r in secret_reads(c) if r.verb == "watch"]


def _reading_threads() -> int:
    """Worker threads inside a watch read right now."""
    code = secretversions.SecretVersions._read_watch.__code__
    count = 0
    for frame in sys._current_frames().values():
        f: Any = frame
        while f is not None:
            if f.f_code is code:
                count += 1
                break
            f = f.f_back
    return count


async def test_stop_ends_a_blocked_watch_read_at_once(cluster: Cluster) -> None:
    w = Watched(watch_seconds=600)  # the server would hold the watch for ten minutes
    w.sv.start()
    assert await w.sv.synced(5)
    await eventually(lambda: _reading_threads() == 1, what="a watch read under way")
    await asyncio.sleep(0.2)  # blocked in the read: nothing happens
    began = time.monotonic()
    await w.sv.stop()
    await eventually(lambda: _reading_threads() == 0, timeout=2, what="the read thread's end")
    assert time.monotonic() - began < 2
