"""Edit-to-rollout latency and API writes per edit, for the real operator against kmock.

    python tests/perf/bench_operator.py [--edits 50] [--settle 1.0] [--check]

Each edit changes one provider's spec (so one new revision); the clock runs from
the edit's PATCH until the gateway Deployment carries the new config hash. Writes
are the operator's own (POST/PATCH/DELETE through its client; Events and the
test's own writes are not counted). Printed: p50, p95, their ratio to the settle
window, and writes per edit by resource. Targets from the issue: p95 <= settle +
250 ms, <= 3 writes per effective edit.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "operator"))

import kmock  # noqa: E402
import kube_emulator  # noqa: E402
from harness import Cluster, _kubeconfig, gateway, provider  # noqa: E402

from llmgw import options, runner  # noqa: E402


def _live(emu: kube_emulator.Emulator) -> dict | None:
    for (resource, namespace, name), obj in list(emu.objects.items()):
        if resource.plural == "deployments" and namespace == "ai" and name == "gw" and not obj.deleted:
            return dict(obj.raw)
    return None


def _hash(dep: dict | None) -> str | None:
    if not dep:
        return None
    return dep["spec"]["template"]["metadata"]["annotations"].get("llmgateway.dev/config-hash")


async def bench(edits: int, settle: float, history: int) -> dict[str, object]:
    import os

    async with kube_emulator.Emulator() as emu, kmock.Server(emu) as server:
        kube_emulator.register(emu)
        tmp = Path(tempfile.mkdtemp())
        os.environ["KUBECONFIG"] = str(_kubeconfig(tmp, str(server.url).rstrip("/")))
        c = Cluster(str(server.url), emu)
        stop, ready = threading.Event(), threading.Event()
        opts = options.Options(settle_seconds=settle, max_settle_seconds=10 * settle)
        thread = threading.Thread(
            target=lambda: asyncio.run(runner.operate(opts, stop_flag=stop, ready_flag=ready)), daemon=True
        )
        thread.start()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, ready.wait, 15)
        try:
            await c.apply(gateway("gw", "ai", revisionHistoryLimit=history))
            await c.apply(provider("p", ["m0"], namespace="ai"))
            while _hash(await c.get("Deployment", "ai", "gw")) is None:
                await asyncio.sleep(0.01)
            await asyncio.sleep(3 * settle)
            latencies: list[float] = []
            per_edit: list[Counter[str]] = []
            for i in range(1, edits + 1):
                before_hash = _hash(await c.get("Deployment", "ai", "gw"))
                before_writes = len(emu.writes)
                t0 = time.perf_counter()
                await c.patch("LLMProvider", "ai", "p", {"spec": {"models": [{"name": "m0", "rpm": i}]}})
                # Read the emulator's memory, not over HTTP: polling must not load the API server.
                while _hash(_live(emu)) == before_hash:
                    await asyncio.sleep(0.002)
                latencies.append(time.perf_counter() - t0)
                await asyncio.sleep(2 * settle)  # let statuses land before the next edit
                per_edit.append(Counter(f"{w[0]} {w[1]}" for w in emu.writes[before_writes:]))
        finally:
            stop.set()
            await loop.run_in_executor(None, thread.join, 15)
            await c.session.close()
    total: Counter[str] = Counter()
    for row in per_edit:
        total.update(row)
    return {"latencies": latencies, "writes": total, "edits": edits}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--edits", type=int, default=50)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--history", type=int, default=100, help="revisionHistoryLimit (pruning adds deletes)")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args()
    result = asyncio.run(bench(args.edits, args.settle, args.history))
    lat = sorted(result["latencies"])  # type: ignore[arg-type]
    p50 = statistics.median(lat)
    p95 = lat[max(0, round(0.95 * len(lat)) - 1)]
    writes: Counter[str] = result["writes"]  # type: ignore[assignment]
    n = args.edits
    per_edit = sum(writes.values()) / n
    print(f"edits: {n}, settle window: {args.settle:.3f} s, revisionHistoryLimit: {args.history}")
    print(f"edit-to-rollout p50: {p50 * 1000:.0f} ms ({p50 / args.settle:.2f}x settle)")
    print(f"edit-to-rollout p95: {p95 * 1000:.0f} ms ({p95 / args.settle:.2f}x settle)")
    print(f"edit-to-rollout max: {lat[-1] * 1000:.0f} ms")
    print(f"API writes per edit: {per_edit:.2f}")
    for key, count in sorted(writes.items()):
        print(f"  {key}: {count / n:.2f} per edit")
    gateway_writes = sum(v for k, v in writes.items() if not k.endswith("llmproviders/status")) / n
    print(f"  of which the gateway's own (ConfigMap, Deployment, gateway status): {gateway_writes:.2f}")
    ok_latency = p95 <= args.settle + 0.25
    ok_writes = gateway_writes <= 3.0
    print(f"target p95 <= settle + 250 ms: {'PASS' if ok_latency else 'FAIL'}")
    print(f"target <= 3 gateway writes per edit: {'PASS' if ok_writes else 'FAIL'}")
    return 1 if args.check and not (ok_latency and ok_writes) else 0


if __name__ == "__main__":
    sys.exit(main())
