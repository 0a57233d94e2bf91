"""The admission webhook's answer time on a large estate, over HTTPS, as the API server would ask.

    python tests/perf/bench_webhook.py [--reviews 200] [--chains 5000] [--models 10000]

Loads the estate of `gen.py` (one gateway, 1,000 providers with 10,000 models,
5,000 chains, their Services) into the API server emulator, starts the real
operator with `--webhook` (self-signed certificate, managed configuration), waits
until the gateway serves every chain, then POSTs AdmissionReview v1 requests to
the URL in the ValidatingWebhookConfiguration, one at a time over a kept-alive
TLS connection, trusting the CA bundle written there:

- half are new chains that are fine (admitted),
- a quarter close a fallback cycle with an existing chain (refused, with the path),
- a quarter fall back to a model nothing serves (admitted with a warning).

Printed: p50, p95, p99 and max of the round trip; the first review (which indexes
the world); reviews right after an edit (a chain relabelled: the webhook takes the
one object in, while the reconciler's pass over the edit runs in the same process),
sent as soon as the PATCH returns, 0.3 s later (the watch event is in) and 3 s later;
and, for comparison, the same reviews decided in-process by `llmgw.core.admission`
without HTTP, with the in-process cost of taking one edited object into the World
(`World.put`) against building the World from scratch. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "operator"))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import aiohttp  # noqa: E402
import gen  # noqa: E402
import kmock  # noqa: E402
import kube_emulator  # noqa: E402
from harness import Cluster, _kubeconfig  # noqa: E402
from test_webhook import CONFIG_PATH, PLURALS, review_body  # noqa: E402

from llmgw import manifests  # noqa: E402
from llmgw.core import admission, estate, objects, resolve  # noqa: E402
from ports import free_port  # noqa: E402

AFTER_EDIT = (0.0, 0.3, 3.0)
"""Seconds from an edit's PATCH to a review timed after it."""


def reviews(est: estate.Estate, count: int) -> list[tuple[str, dict[str, Any]]]:
    """(expected answer, chain) for `count` reviews, deterministic, from the chains the gateway takes."""
    (gw,) = est.gateways
    res = resolve.resolve(est, gw)
    bases = [a for a in res.chains if not a.dropped]
    # A contextWindow link between models of unknown windows is warned about: not for "allowed".
    plain = [a for a in bases if a.chain.spec.trigger != "contextWindow"]
    on = {(a.model, a.chain.spec.trigger) for a in res.chains}
    free = [m for m in res.models if (m, "errors") not in on and (m, "contextWindow") not in on]
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(count):
        pool = plain if i % 4 in (0, 1) else bases
        base = pool[(i * 37) % len(pool)]
        trigger = base.chain.spec.trigger
        spare = free[(i * 53) % len(free)]
        if i % 4 in (0, 1):
            body = {"model": spare, "fallbacks": [base.model], "trigger": trigger}
            out.append(("allowed", _chain(f"ok-{i}", "team-bench", body)))
        elif i % 4 == 2:
            body = {"model": base.fallbacks[0], "fallbacks": [base.model], "trigger": trigger}
            out.append(("denied", _chain(f"cycle-{i}", "a-first", body)))
        else:
            body = {"model": spare, "fallbacks": ["gpt-9", base.model], "trigger": trigger}
            out.append(("warned", _chain(f"unknown-{i}", "team-bench", body)))
    return out


def _chain(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "llmgateway.dev/v1alpha1",
        "kind": "FallbackChain",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def verdict_of(response: dict[str, Any]) -> str:
    if not response["allowed"]:
        return "denied"
    return "warned" if response.get("warnings") else "allowed"


async def load(c: Cluster, objects: list[dict[str, Any]]) -> None:
    gate = asyncio.Semaphore(32)

    async def one(obj: dict[str, Any]) -> None:
        async with gate:
            ns = obj["metadata"].get("namespace", "default")
            await c._json("POST", c.path(obj["kind"], ns), obj)

    await asyncio.gather(*(one(o) for o in objects))


async def bench(folder: Path, count: int, edits: int) -> dict[str, Any]:
    loaded = manifests.load([str(folder)])
    raws = [dict(r) for r in loaded.raws]
    services = [
        d
        for d in __import__("yaml").safe_load_all((folder / "services.yaml").read_text())
        if isinstance(d, dict)
    ]

    # In-process: the same decisions without HTTP, kopf or the indexes.
    est = loaded.estate()  # with the Services' named ports, as the operator sees them
    t0 = time.perf_counter()
    world = admission.World(est)
    world_seconds = time.perf_counter() - t0
    plan = reviews(est, count)
    served = len(resolve.resolve(est, est.gateways[0]).chains)
    pure: list[float] = []
    for expected, obj in plan:
        t = time.perf_counter()
        v = admission.review(world, obj)
        pure.append(time.perf_counter() - t)
        got = "denied" if not v.allowed else "warned" if v.warnings else "allowed"
        assert got == expected, (expected, got, v)
    # In-process: one edited chain taken into the World (parse, then swap its index entries).
    chain_raws = [r for r in raws if r["kind"] == "FallbackChain"]
    put: list[float] = []
    for e in range(200):
        edited = {**chain_raws[e * 13 % len(chain_raws)]}
        edited["metadata"] = {**edited["metadata"], "labels": {"edit": str(e)}}
        t = time.perf_counter()
        world.put(objects.parse(edited))
        put.append(time.perf_counter() - t)

    async with kube_emulator.Emulator() as emu, kmock.Server(emu) as server:
        kube_emulator.register(emu)
        tmp = Path(tempfile.mkdtemp())
        os.environ["KUBECONFIG"] = str(_kubeconfig(tmp, str(server.url).rstrip("/")))
        c = Cluster(str(server.url), emu)
        for ns in ("ai-platform", "a-first", "team-bench", *gen.NAMESPACES):
            await c._json(
                "POST",
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            )
        t0 = time.perf_counter()
        say(f"loading {len(services) + len(raws)} objects into the API server emulator")
        await load(c, services + raws)
        load_seconds = time.perf_counter() - t0
        # The operator in a process of its own, as in a cluster: the API server emulator and
        # this client live in this one, and must not share its event loop, GIL or GC pauses.
        webhook_port, metrics_port, health_port = free_port(), free_port(), free_port()
        env = {**os.environ, "PYTHONSAFEPATH": "1"}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        log_path = tmp / "operator.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llmgw.cli",
                "run",
                "--webhook",
                "--webhook-port",
                str(webhook_port),
                "--webhook-host",
                "127.0.0.1",
                "--metrics-port",
                str(metrics_port),
                "--health-port",
                str(health_port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        say(f"operator pid {proc.pid}, log {log_path}")
        loop = asyncio.get_running_loop()

        async def scrape() -> dict[str, float]:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{metrics_port}/metrics") as rsp,
            ):
                text = await rsp.text()
            out: dict[str, float] = {}
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    name, value = line.rsplit(" ", 1)
                    out[name] = float(value)
            return out

        deadline = time.monotonic() + 60
        while True:
            try:
                await scrape()
                break
            except aiohttp.ClientError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the operator did not start; see {log_path}") from None
                await asyncio.sleep(0.2)
        try:
            t0 = time.perf_counter()
            say(
                f"loaded {len(services) + len(raws)} objects in {load_seconds:.1f} s; waiting for the gateway"
            )
            seen: list[Any] = []
            while len(seen) < 10 or len(set(seen[-10:])) > 1 or seen[-1][0] is None:
                gw = await c.get("LLMGateway", "ai-platform", "main")
                if proc.poll() is not None:
                    raise RuntimeError(f"the operator stopped; see {log_path}")
                status = gw.get("status") or {}
                seen.append((status.get("chains"), status.get("revision")))
                await asyncio.sleep(0.5)
            settle_seconds = time.perf_counter() - t0
            # Then until the operator stops writing (statuses of thousands of objects, probes):
            # its passes share the event loop with the webhook, and are timed apart below.
            quiet_since, count = time.monotonic(), len(emu.writes)
            while time.monotonic() - quiet_since < 15 and time.perf_counter() - t0 < settle_seconds + 600:
                await asyncio.sleep(1.0)
                if len(emu.writes) != count:
                    quiet_since, count = time.monotonic(), len(emu.writes)
            quiet_seconds = time.perf_counter() - t0
            say(
                f"the gateway serves {seen[-1][0]} chains (in-process: {served}) after {settle_seconds:.1f} s"
            )
            config = None
            while not config or len(config.get("webhooks") or []) != 3:
                config = await c._json("GET", CONFIG_PATH)
                await asyncio.sleep(0.1)
            (hook,) = [
                w for w in config["webhooks"] if PLURALS["FallbackChain"] in w["rules"][0]["resources"]
            ]
            ca = base64.b64decode(hook["clientConfig"]["caBundle"]).decode()
            url = hook["clientConfig"]["url"]
            await asyncio.sleep(2.0)  # the reconciler's first pass is over; the loop is quiet
            # aiohttp sets TCP_NODELAY, as kube-apiserver's Go client does; a client that leaves
            # Nagle's algorithm on adds the server's delayed ACK (~40 ms) to every review.
            context = ssl.create_default_context(cadata=ca)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as client:

                async def ask(obj: dict[str, Any]) -> tuple[float, dict[str, Any]]:
                    t = time.perf_counter()
                    async with client.post(url, json=review_body(obj), ssl=context) as rsp:
                        rsp.raise_for_status()
                        body = await rsp.json()
                    return time.perf_counter() - t, body["response"]

                writes_before = len(emu.writes)
                before = await scrape()
                first, _ = await ask(plan[0][1])
                timings: list[float] = []
                for expected, obj in plan:
                    took, response = await ask(obj)
                    assert verdict_of(response) == expected, (expected, response)
                    timings.append(took)
                during = collections.Counter(f"{w[0]} {w[1]}" for w in emu.writes[writes_before:])
                say(f"the operator's writes while reviewing: {dict(during) or 'none'}")
                after = await scrape()

                def delta(name: str) -> float:
                    return after.get(name, 0.0) - before.get(name, 0.0)

                full_gc = 'python_gc_collections_total{generation="2"}'
                say(
                    f"while reviewing, in the operator: the world indexed "
                    f"{delta('llmgw_admission_index_duration_seconds_count'):.0f} times, "
                    f"{delta(full_gc):.0f} full GC collections"
                )
                # Reviews right after an edit: the webhook takes the edited chain in, and the
                # reconciler's pass over the edit shares the process with it.
                after_edit: dict[float, list[float]] = {d: [] for d in AFTER_EDIT}
                before = await scrape()
                targets = [r for r in raws if r["kind"] == "FallbackChain"]
                for e in range(edits):
                    target = targets[(e * 101) % len(targets)]
                    ns, name = target["metadata"]["namespace"], target["metadata"]["name"]
                    await c.patch("FallbackChain", ns, name, {"metadata": {"labels": {"edit": str(e)}}})
                    edited = time.perf_counter()
                    for i, delay in enumerate(AFTER_EDIT):
                        await asyncio.sleep(max(0.0, edited + delay - time.perf_counter()))
                        expected, obj = plan[(e * len(AFTER_EDIT) + i) % len(plan)]
                        took, response = await ask(obj)
                        assert verdict_of(response) == expected, (expected, response)
                        after_edit[delay].append(took)
                    await asyncio.sleep(2.0)  # the reconciler's pass over this edit is over
                after = await scrape()
                # Where the time after the edits went, in the operator: the webhook's catch-ups
                # and decisions, and the reconciler's passes sharing the process with them.
                edit_phase = {
                    name: (delta(f"{name}_count"), delta(f"{name}_sum"))
                    for name in (
                        "llmgw_admission_index_duration_seconds",
                        "llmgw_admission_duration_seconds",
                        "llmgw_reconcile_duration_seconds",
                    )
                }
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                await loop.run_in_executor(None, proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            await c.session.close()
    return {
        "timings": timings,
        "first": first,
        "after_edit": after_edit,
        "pure": pure,
        "put": put,
        "edit_phase": edit_phase,
        "world": world_seconds,
        "load": load_seconds,
        "settle": settle_seconds,
        "quiet": quiet_seconds,
        "objects": len(raws),
    }


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(q * len(ordered)) - 1)]


def spread(values: list[float]) -> str:
    """p50, p95, p99 and max, in milliseconds."""
    ms = 1000.0
    return (
        f"p50 {statistics.median(values) * ms:.2f} ms   p95 {pct(values, 0.95) * ms:.2f} ms   "
        f"p99 {pct(values, 0.99) * ms:.2f} ms   max {max(values) * ms:.2f} ms   (n={len(values)})"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reviews", type=int, default=200)
    p.add_argument("--chains", type=int, default=5_000)
    p.add_argument("--models", type=int, default=10_000)
    p.add_argument("--edits", type=int, default=20, help="edits, each followed by reviews timed after it")
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="llmgw-bench-webhook-"))
    gen.write(folder, models=args.models, chains=args.chains)
    r = asyncio.run(bench(folder, args.reviews, args.edits))
    ms = 1000.0
    t = r["timings"]
    print(
        f"estate: {r['objects']} objects ({args.models} models, {args.chains} chains); "
        f"loaded in {r['load']:.1f} s, served by the gateway {r['settle']:.1f} s after start, "
        f"the operator quiet after {r['quiet']:.1f} s"
    )
    print(f"reviews over HTTPS: {len(t)} (half admitted, a quarter refused as cycles, a quarter warned)")
    print(f"  {spread(t)}")
    print(f"  first review (indexes the world): {r['first'] * ms:.1f} ms")
    ae: dict[float, list[float]] = r["after_edit"]
    every = [x for v in ae.values() for x in v]
    if every:
        print(f"right after an edit ({args.edits} edits, a chain relabelled each time): {spread(every)}")
        for delay, values in ae.items():
            print(f"  {delay:.1f} s after the PATCH: {spread(values)}")
        said = {
            "llmgw_admission_index_duration_seconds": "webhook catch-ups",
            "llmgw_admission_duration_seconds": "webhook decisions (in the handler)",
            "llmgw_reconcile_duration_seconds": "reconciler passes",
        }
        print(
            "  in the operator meanwhile: "
            + "; ".join(
                f"{said[name]} {n:.0f}, {total * ms:.0f} ms in all"
                for name, (n, total) in r["edit_phase"].items()
            )
        )
    pure = r["pure"]
    print(
        f"in-process decision (llmgw.core.admission.review): p50 {statistics.median(pure) * ms:.3f} ms, "
        f"p95 {pct(pure, 0.95) * ms:.3f} ms; indexing the world once: {r['world'] * ms:.0f} ms"
    )
    put = r["put"]
    print(
        f"in-process edit (parse one chain, World.put): p50 {statistics.median(put) * ms:.3f} ms, "
        f"max {max(put) * ms:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
