"""Soak: a long-running `llmgw run` receives 20,000 object events; memory and latency over time.

    python tests/perf/bench_soak.py [--events 20000] [--settle 0.1] [--json PATH] [--check]

The operator runs as `llmgw run` in a process of its own (so its memory is its own) against
the kmock API server of `tests/operator/kube_emulator.py` in this one. Events come in bursts
(`--burst` of them, then a pause longer than the settle window, so that most bursts make one
reconcile): edits, creates and deletes of providers and chains in a bounded working set
(`--providers`, `--chains` names), so that the estate stays the same size while objects come
and go. Every `--probe-every` events a probe edit times edit-to-rollout (the PATCH until the
gateway Deployment carries the new config hash). The operator's RSS (`/proc/PID/status`) is
sampled after every burst; its reconcile-duration histogram is scraped at each quartile.

Printed: RSS at start, after warm-up (the first 10% of events), at each quartile and at the
end, the slope after warm-up (MiB per 1,000 events), probe latency p50/p95 and the mean
reconcile duration per quartile, and two verdicts:
  memory:  RSS after warm-up grows by at most 20% and at most 30 MiB to the end;
  latency: probe p95 of the last quartile <= 1.5x that of the first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
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

import httpx  # noqa: E402
import kmock  # noqa: E402
import kube_emulator  # noqa: E402
from harness import Cluster, _kubeconfig, chain, gateway, provider  # noqa: E402

from ports import free_port  # noqa: E402

NS = "ai"
MODELS = [f"m{i}" for i in range(12)]
MIB = 1024 * 1024


def rss(pid: int) -> int:
    """Resident set size of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(q * len(ordered)) - 1)]


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


class Live:
    """The gateway Deployment as the emulator holds it, read from memory: probing over HTTP
    would load the server being measured."""

    def __init__(self, emu: kube_emulator.Emulator) -> None:
        self.emu = emu
        self.key: Any = None

    def config_hash(self) -> str | None:
        if self.key is None:
            for key in list(self.emu.objects.keys()):
                if key[0].plural == "deployments" and key[1:] == (NS, "gw"):
                    self.key = key
        if self.key is None:
            return None
        obj = self.emu.objects[self.key]
        if obj.deleted:
            return None
        raw = obj.raw
        return raw["spec"]["template"]["metadata"]["annotations"].get("llmgateway.dev/config-hash")


def compact(emu: kube_emulator.Emulator) -> None:
    """Forget what no client can read any more: kopf's Events, deleted objects and past
    versions. kmock keeps them all and walks them on every request, so without this the API
    server, not the operator, would slow down as the soak goes on."""
    for key, obj in list(emu.objects.items()):
        if key[0].plural == "events" or obj.deleted:
            del emu.objects[key]
        elif len(obj.history) > 1:
            del obj.history[:-1]


class Workload:
    """Random edits, creates and deletes over a bounded set of names."""

    def __init__(self, rng: random.Random, providers: int, chains: int) -> None:
        self.rng = rng
        self.providers = [f"p{i}" for i in range(providers)]
        self.chains = [f"c{i}" for i in range(chains)]
        self.live_providers: set[str] = set()
        self.live_chains: set[str] = set()
        self.counter = 0
        self.ops: dict[str, int] = {}

    async def event(self, c: Cluster) -> None:
        rng = self.rng
        self.counter += 1
        roll = rng.random()
        if roll < 0.55:  # provider: create or edit
            name = rng.choice(self.providers)
            models = [
                {"name": m, "rpm": 1 + self.counter % 997} if rng.random() < 0.3 else {"name": m}
                for m in rng.sample(MODELS, rng.randint(1, 3))
            ]
            body = provider(name, [], namespace=NS)
            body["spec"]["models"] = models
            op = "edit provider" if name in self.live_providers else "create provider"
            await self._apply(c, body, name in self.live_providers)
            self.live_providers.add(name)
        elif roll < 0.65 and len(self.live_providers) > 2:  # provider: delete
            name = rng.choice(sorted(self.live_providers))
            await c.delete("LLMProvider", NS, name)
            self.live_providers.discard(name)
            op = "delete provider"
        elif roll < 0.9:  # chain: create or edit
            name = rng.choice(self.chains)
            primary, *fallbacks = rng.sample(MODELS, rng.randint(2, 4))
            trigger = rng.choice(["errors", "contextWindow", "contentPolicy"])
            body = chain(name, primary, fallbacks, namespace=NS, trigger=trigger)
            op = "edit chain" if name in self.live_chains else "create chain"
            await self._apply(c, body, name in self.live_chains)
            self.live_chains.add(name)
        elif self.live_chains:  # chain: delete
            name = rng.choice(sorted(self.live_chains))
            await c.delete("FallbackChain", NS, name)
            self.live_chains.discard(name)
            op = "delete chain"
        else:
            op = "none"
        self.ops[op] = self.ops.get(op, 0) + 1

    @staticmethod
    async def _apply(c: Cluster, body: dict[str, Any], exists: bool) -> None:
        meta = body["metadata"]
        if exists:  # a merge patch replaces lists whole, as `kubectl apply` of the file would
            await c.patch(body["kind"], meta["namespace"], meta["name"], {"spec": body["spec"]})
        else:
            await c._json("POST", c.path(body["kind"], meta["namespace"]), body)


def scrape(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("llmgw_reconcile_duration_seconds_", "llmgw_render_duration_seconds_")):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    async with kube_emulator.Emulator() as emu, kmock.Server(emu) as server:
        kube_emulator.register(emu)
        tmp = Path(tempfile.mkdtemp(prefix="llmgw-soak-"))
        url = str(server.url).rstrip("/")
        c = Cluster(url, emu)
        await c._json(
            "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
        )
        metrics_port, health_port = free_port(), free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(_kubeconfig(tmp, url)),
            "PYTHONSAFEPATH": "1",
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        log = (tmp / "operator.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llmgw.cli",
                "run",
                "--settle-seconds",
                str(args.settle),
                "--metrics-port",
                str(metrics_port),
                "--health-port",
                str(health_port),
                "--log-format",
                "json",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        live = Live(emu)
        http = httpx.AsyncClient()
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await http.get(f"http://127.0.0.1:{health_port}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the operator did not start; see {tmp / 'operator.log'}")
                await asyncio.sleep(0.1)
            await c.apply(
                gateway(
                    "gw",
                    NS,
                    revisionHistoryLimit=5,
                    rollout={"autoRollback": False},  # no controller makes pods here
                )
            )
            await c.apply(provider("probe", ["probe-model"], namespace=NS))
            workload = Workload(rng, args.providers, args.chains)
            while live.config_hash() is None:
                await asyncio.sleep(0.01)
            await asyncio.sleep(5 * args.settle)
            started_rss = rss(proc.pid)

            samples: list[tuple[int, int]] = []  # (events so far, RSS bytes)
            probes: list[tuple[int, float]] = []  # (events so far, seconds)
            histograms: list[tuple[int, dict[str, float]]] = []
            quartile = args.events // 4
            done = 0
            t0 = time.monotonic()
            next_probe = args.probe_every
            next_quartile = quartile
            while done < args.events:
                for _ in range(min(args.burst, args.events - done)):
                    await workload.event(c)
                    done += 1
                await asyncio.sleep(args.gap if args.gap is not None else 3 * args.settle)
                compact(emu)
                samples.append((done, rss(proc.pid)))
                if done >= next_probe or done == args.events:
                    next_probe += args.probe_every
                    await asyncio.sleep(3 * args.settle)  # let the last burst's pass finish
                    before = live.config_hash()
                    p0 = time.perf_counter()
                    await c.patch(
                        "LLMProvider",
                        NS,
                        "probe",
                        {"spec": {"models": [{"name": "probe-model", "rpm": done}]}},
                    )
                    limit = time.monotonic() + 30
                    while live.config_hash() == before and time.monotonic() < limit:
                        await asyncio.sleep(0.002)
                    probes.append((done, time.perf_counter() - p0))
                if done >= next_quartile or done == args.events:
                    next_quartile += quartile
                    text = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                    histograms.append((done, scrape(text)))
                if proc.poll() is not None:
                    raise RuntimeError(f"the operator exited ({proc.returncode}); see {tmp / 'operator.log'}")
                if args.progress and done % (args.events // 20 or 1) < args.burst:
                    elapsed = time.monotonic() - t0
                    print(f"  {done} events, {elapsed:.0f} s, RSS {samples[-1][1] / MIB:.1f} MiB", flush=True)
            elapsed = time.monotonic() - t0
        finally:
            await http.aclose()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            await c.session.close()
    return {
        "events": args.events,
        "seconds": elapsed,
        "started_rss": started_rss,
        "samples": samples,
        "probes": probes,
        "histograms": histograms,
        "ops": workload.ops,
        "writes": len(emu.writes),
        "log": str(tmp / "operator.log"),
    }


def report(result: dict[str, Any], args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    events = result["events"]
    samples: list[tuple[int, int]] = result["samples"]
    warm = events // 10
    after_warm = [(n, b) for n, b in samples if n >= warm]
    base = after_warm[0][1]

    def rss_at(n: int) -> float:
        return min(samples, key=lambda s: abs(s[0] - n))[1] / MIB

    quarters = [events * q // 4 for q in range(1, 5)]
    lat: list[list[float]] = [[] for _ in range(4)]
    for n, seconds in result["probes"]:
        lat[min(3, max(0, (n - 1) * 4 // events))].append(seconds)
    means: list[tuple[int, float, float]] = []  # (reconciles, mean reconcile, mean render) per quartile
    previous: dict[str, float] = {}
    for _n, h in result["histograms"]:

        def delta(name: str, h: dict[str, float] = h, before: dict[str, float] = previous) -> float:
            return h.get(name, 0.0) - before.get(name, 0.0)

        count = delta("llmgw_reconcile_duration_seconds_count")
        renders = delta("llmgw_render_duration_seconds_count")
        means.append(
            (
                int(count),
                delta("llmgw_reconcile_duration_seconds_sum") / count if count else float("nan"),
                delta("llmgw_render_duration_seconds_sum") / renders if renders else float("nan"),
            )
        )
        previous = h
    end = samples[-1][1]
    growth = end - base
    per_k = slope([(n / 1000, b / MIB) for n, b in after_warm])
    p95 = [percentile(q, 0.95) if q else float("nan") for q in lat]
    memory_ok = growth <= 0.20 * base and growth <= 30 * MIB
    latency_ok = p95[3] <= 1.5 * p95[0]
    summary = {
        "events": events,
        "seconds": round(result["seconds"], 1),
        "events_per_second": round(events / result["seconds"], 1),
        "ops": result["ops"],
        "api_writes_by_operator": result["writes"],
        "rss_mib": {
            "start": round(result["started_rss"] / MIB, 1),
            "after_warm_up": round(base / MIB, 1),
            **{f"q{i + 1}": round(rss_at(n), 1) for i, n in enumerate(quarters)},
            "end": round(end / MIB, 1),
            "max": round(max(b for _, b in samples) / MIB, 1),
        },
        "rss_growth_after_warm_up_mib": round(growth / MIB, 2),
        "rss_slope_mib_per_1000_events": round(per_k, 3),
        "probe_latency_ms": [
            {
                "quartile": i + 1,
                "probes": len(q),
                "p50": round(statistics.median(q) * 1000) if q else None,
                "p95": round(percentile(q, 0.95) * 1000) if q else None,
            }
            for i, q in enumerate(lat)
        ],
        "reconcile_mean_ms_per_quartile": [
            {
                "quartile": i + 1,
                "reconciles": n,
                "mean": round(m * 1000, 1),
                "render_mean": round(r * 1000, 2),
            }
            for i, (n, m, r) in enumerate(means)
        ],
        "memory_pass": memory_ok,
        "latency_pass": latency_ok,
        "settle_seconds": args.settle,
        "operator_log": result["log"],
    }
    return summary, memory_ok and latency_ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--burst", type=int, default=25, help="events per burst")
    p.add_argument("--gap", type=float, default=None, help="seconds between bursts (default 3x settle)")
    p.add_argument("--settle", type=float, default=0.1, help="the operator's --settle-seconds")
    p.add_argument("--providers", type=int, default=30, help="provider names in the working set")
    p.add_argument("--chains", type=int, default=20, help="chain names in the working set")
    p.add_argument("--probe-every", type=int, default=250, help="events between latency probes")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--check", action="store_true", help="exit 1 when a verdict is FAIL")
    args = p.parse_args()
    result = asyncio.run(soak(args))
    summary, ok = report(result, args)
    r = summary["rss_mib"]
    print(
        f"events: {summary['events']} in {summary['seconds']} s ({summary['events_per_second']}/s), "
        f"settle {args.settle} s, bursts of {args.burst}; ops {summary['ops']}"
    )
    print(f"operator API writes: {summary['api_writes_by_operator']}")
    print(
        f"RSS MiB: start {r['start']}, after warm-up {r['after_warm_up']}, q1 {r['q1']}, q2 {r['q2']}, "
        f"q3 {r['q3']}, end {r['end']} (max {r['max']})"
    )
    print(
        f"RSS growth after warm-up: {summary['rss_growth_after_warm_up_mib']} MiB; "
        f"slope {summary['rss_slope_mib_per_1000_events']} MiB per 1,000 events"
    )
    for row, mean in zip(
        summary["probe_latency_ms"], summary["reconcile_mean_ms_per_quartile"], strict=False
    ):
        print(
            f"quartile {row['quartile']}: edit-to-rollout p50 {row['p50']} ms, p95 {row['p95']} ms "
            f"({row['probes']} probes); reconcile mean {mean['mean']} ms ({mean['reconciles']} reconciles), "
            f"render mean {mean['render_mean']} ms"
        )
    print(
        f"memory flat (<= +20% and <= +30 MiB after warm-up): {'PASS' if summary['memory_pass'] else 'FAIL'}"
    )
    print(
        f"latency steady (p95 last quartile <= 1.5x first): {'PASS' if summary['latency_pass'] else 'FAIL'}"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
