"""Start-up and scale: the operator's start-up curve on estates of 1k to 8k objects.

    python tests/perf/bench_scale.py [--sizes 1000,2000,4000,8000] [--settle 1.0] [--strict]
                                     [--markdown PATH] [--json PATH] [--plot PATH]

For each size N, `gen.py` writes an estate of exactly N objects: providers with 2 models
each, about as many fallback chains, the Services their named ports need, over 8 team
namespaces, and one gateway (`from: All`, no Redis) serving them all. They are loaded into
the integration suite's API server emulator (`tests/operator/kube_emulator.py`, kmock) in
this process; the operator runs as `llmgw run` in a process of its own, as in a cluster.

Measured, each from the operator's start (the `Popen`, so the interpreter's start counts):
- first handler: the first kopf event handler of `llmgw.handlers.pokes` (kopf runs them
  only once every index is filled: this is the time the operator is blind). The operator
  exports no figure for it, so the process is started through a launcher that wraps those
  handlers (and `Reconciler.reconcile`, and the steps of a pass, `STEPS`) to print a
  timestamp; nothing else changes;
- complete rollout: the gateway Deployment's config hash is that of `llmgw render` of the
  same files (the revision that includes every object), timed by the emulator's write log;
- all statuses: every provider and chain, and the gateway, has a status whose
  `observedGeneration` is its generation (the gateway's naming that revision);
- RSS of the operator process when it has been quiet for a few seconds after that;
- restart: the operator stopped and started again on the unchanged estate, now with the
  admission webhook on: its writes until it has been quiet after its first pass (the
  emulator's request log; the operator's own client, Events and Leases apart, and kopf's
  own writes, such as the webhook configuration, listed separately);
- the webhook's review latency over HTTPS (as bench_webhook.py asks), steady and in the
  moments right after an edit (a chain's labels, a provider's spec), p50 and p99.

The emulator is the package's (`llmgw.demo.apiserver`), which finds a named object by its name
(kmock walks every object on every get and write, which made N status writes cost N^2), takes
request bodies of up to 3 MiB as kube-apiserver does, and refuses with 422 a ConfigMap with over
1 MiB of data or an object with over 256 KiB of annotations, as the API server's validation does.
This bench only logs every write on top of it (`Recorder`).

The floor, measured in the same run: one LIST of every object the operator learns
(providers, chains, gateways, Services, namespaces) from the emulator, plus an offline
`llmgw render` of the same files in a fresh process (best of 2). Each figure is printed
with its ratio to the floor and its growth from the size before. Targets (issue 13),
judged at the largest size measured (the issue names 8k): complete rollout <= 3x floor +
the settle window; each doubling <= 2.3x the time; all statuses <= 2x the rollout; a
restart writes <= 3 times; review p99 <= 50 ms including after edits; RSS <= 2.2x that
at half the size. `--strict` exits 1 when one FAILs. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import dataclasses
import datetime
import hashlib
import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "operator"))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import aiohttp  # noqa: E402
import bench_webhook  # noqa: E402
import gen  # noqa: E402
import kmock  # noqa: E402
import kube_emulator  # noqa: E402
import yaml  # noqa: E402
from harness import Cluster, _kubeconfig  # noqa: E402
from kmock._internal import enums  # noqa: E402
from test_webhook import CONFIG_PATH, PLURALS, review_body  # noqa: E402

from llmgw import manifests  # noqa: E402
from ports import free_port  # noqa: E402

GATEWAY = ("ai-platform", "main")
REVIEW_NAMESPACES = ("a-first", "team-bench")  # where bench_webhook's reviews put new chains
STATUS_PLURALS = ("llmproviders", "fallbackchains", "llmgateways")
NOT_COUNTED = ("events", "leases", "kopfpeerings")
STEPS = ("read", "apply", "statuses", "status-writes")
"""The first pass's steps the launcher marks: the pure part in a worker thread (parse, render);
the gateway's writes (revision ConfigMaps, Deployment, Service, companions); which statuses
differ; writing them."""

# The operator's process: `llmgw.cli main`, with the event handlers and the reconciler's pass
# wrapped to print when they first run. Wrapping happens before the registry is built, so kopf
# registers the wrappers; a hook that no longer fits prints `no-hooks` and the rest still runs.
LAUNCHER = r"""
import functools, sys, time

def mark(what):
    sys.stdout.write(f"llmgw-bench {what} {time.monotonic():.6f}\n")
    sys.stdout.flush()

try:
    from llmgw.handlers import pokes, reconciler
    mark("imported")
    seen = []

    def first(fn):
        @functools.wraps(fn)
        async def handler(*args, **kwargs):
            if not seen:
                seen.append(fn.__name__)
                mark("first-handler")
            return await fn(*args, **kwargs)
        return handler

    for name in [n for n in vars(pokes) if n.startswith("poke")]:
        setattr(pokes, name, first(getattr(pokes, name)))
    passing = reconciler.Reconciler.reconcile

    @functools.wraps(passing)
    async def reconcile(self, *args, **kwargs):
        mark("pass-start")
        try:
            return await passing(self, *args, **kwargs)
        finally:
            mark("pass-end")

    reconciler.Reconciler.reconcile = reconcile

    # The steps of a pass (STEPS), each marked when it starts and ends.
    import inspect
    from llmgw.handlers import statuswrites

    def step(owner, name, label):
        fn = getattr(owner, name)
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def wrapped(*args, **kwargs):
                mark(label + ".start")
                try:
                    return await fn(*args, **kwargs)
                finally:
                    mark(label + ".end")
        else:
            @functools.wraps(fn)
            def wrapped(*args, **kwargs):
                mark(label + ".start")
                try:
                    return fn(*args, **kwargs)
                finally:
                    mark(label + ".end")
        setattr(owner, name, wrapped)

    step(reconciler.Reconciler, "_read", "read")
    step(reconciler.Reconciler, "_apply", "apply")
    step(reconciler, "_statuses", "statuses")
    step(statuswrites, "write", "status-writes")
except Exception as exc:
    mark("no-hooks:" + type(exc).__name__)

from llmgw import cli
sys.exit(cli.main(sys.argv[1:]))
"""


class Recorder(kube_emulator.Emulator):  # type: ignore[misc]
    """The suite's emulator, also logging every write with its time and User-Agent (the suite's
    own log keeps only the operator client's writes; this one keeps those the API server refused
    too)."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.log: list[tuple[float, str, str, str, str, str]] = []  # (t, verb, resource, ns, name, agent)

    async def _handle(self, request: Any) -> Any:
        res = request.resource
        if (
            res is not None
            and res.plural
            and request.action in (enums.action.CREATE, enums.action.UPDATE, enums.action.DELETE)
        ):
            sub = f"/{request.subresource}" if getattr(request, "subresource", None) else ""
            name = request.name or ((request.data or {}).get("metadata") or {}).get("name", "")
            self.log.append(
                (
                    time.monotonic(),
                    str(request.action.name).lower(),
                    res.plural + sub,
                    request.namespace or "",
                    name,
                    str((request.headers or {}).get("User-Agent", "")),
                )
            )
        return await super()._handle(request)


def ours(agent: str) -> bool:
    """A write by the operator's own client (kopf's, and the test's, are not)."""
    return agent.startswith(("llmgw/", "OpenAPI-Generator"))


def compact(emu: kube_emulator.Emulator) -> None:
    """Forget Events and past versions between runs: kmock walks them on every request."""
    for key, obj in list(emu.objects.items()):
        if key[0].plural == "events" or obj.deleted:
            del emu.objects[key]
        elif len(obj.history) > 1:
            del obj.history[:-1]


@dataclasses.dataclass(frozen=True)
class Shape:
    objects: int
    providers: int
    chains: int
    services: int

    @property
    def models(self) -> int:
        return 2 * self.providers


def shape(n: int) -> Shape:
    """Exactly n objects: the gateway, p providers (2 models each), their Services, and as many
    chains as fit (at most one per two models, so about as many as providers)."""
    if n < 100:
        raise ValueError("at least 100 objects")
    p = 1
    while True:
        services = sum(1 for _ in gen._services(p))
        if 1 + p + services + p >= n:
            return Shape(n, p, n - 1 - p - services, services)
        p += 1


def offline_render(folder: Path, repeat: int = 2) -> tuple[str, float]:
    """The hash of `llmgw render` (sha256 of the config, as the operator names revisions) and
    the best wall-clock time of a fresh process."""
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    best, digest = math.inf, ""
    for _ in range(repeat):
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "llmgw.cli", "render", str(folder)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=True,
        ).stdout
        best = min(best, time.perf_counter() - t)
        digest = hashlib.sha256(out).hexdigest()
    return digest, best


async def list_all(c: Cluster) -> tuple[float, int]:
    """The floor's LIST: every object the operator learns, one list request per resource."""
    paths = [
        *(f"/apis/llmgateway.dev/v1alpha1/{p}" for p in STATUS_PLURALS),
        "/api/v1/services",
        "/api/v1/namespaces",
    ]
    t = time.perf_counter()
    items = 0
    for path in paths:
        body = await c._json("GET", path)
        items += len((body or {}).get("items") or [])
    return time.perf_counter() - t, items


class Operator:
    """`llmgw run` in a process of its own, started through LAUNCHER."""

    def __init__(self, tmp: Path, tag: str, settle: float, webhook: bool) -> None:
        self.log_path = tmp / f"operator-{tag}.log"
        self.metrics_port, self.health_port, self.webhook_port = free_port(), free_port(), free_port()
        self.settle = settle
        self.webhook = webhook
        self.proc: subprocess.Popen[bytes] | None = None
        self.t0 = 0.0

    def start(self) -> None:
        args = [
            "run",
            "--settle-seconds",
            str(self.settle),
            "--metrics-port",
            str(self.metrics_port),
            "--health-port",
            str(self.health_port),
        ]
        if self.webhook:
            args += ["--webhook", "--webhook-port", str(self.webhook_port), "--webhook-host", "127.0.0.1"]
        env = {**os.environ, "PYTHONSAFEPATH": "1"}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        log = self.log_path.open("wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def marks(self) -> dict[str, list[float]]:
        """Seconds since start of each launcher mark."""
        out: dict[str, list[float]] = collections.defaultdict(list)
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("llmgw-bench "):
                _, what, at = line.split(" ", 2)
                out[what].append(float(at) - self.t0)
        return out

    def alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the operator exited ({self.proc.returncode}); see {self.log_path}")

    def failing(self, times: int = 3) -> str | None:
        """The last failed pass's line once `times` passes in a row have failed (a tree broken
        mid-edit would otherwise wait for the timeout)."""
        lines = [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if "reconcile failed" in line or line.startswith("llmgw-bench pass-end")
        ]
        tail = lines[-2 * times :]
        failed = [line for line in tail if "reconcile failed" in line]
        return failed[-1] if len(failed) >= times else None

    def cpu(self) -> float:
        """User + system CPU seconds of the operator so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MiB."""
        assert self.proc is not None
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    async def scrape(self) -> dict[str, float]:
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as rsp,
            ):
                text = await rsp.text()
        except aiohttp.ClientError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("llmgw_"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    async def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await loop.run_in_executor(None, self.proc.wait)


def gateway_deployment(emu: kube_emulator.Emulator) -> Any:
    """kmock's object of the gateway's Deployment (it stays the same object as it changes)."""
    for key, obj in list(emu.objects.items()):
        if key[0].plural == "deployments" and (key[1], key[2]) == GATEWAY and not obj.deleted:
            return obj
    return None


def config_hash(deployment: Any) -> str | None:
    template = ((deployment.raw.get("spec") or {}).get("template") or {}).get("metadata") or {}
    found: str | None = (template.get("annotations") or {}).get("llmgateway.dev/config-hash")
    return found


def unwritten(pending: dict[Any, Any], revision: str) -> None:
    """Drop from `pending` (key: kmock's object) the objects whose status is that of their
    generation (and, for the gateway, names `revision`)."""
    for key, obj in list(pending.items()):
        if obj.deleted:
            del pending[key]
            continue
        raw = obj.raw
        status = raw.get("status") or {}
        if status.get("observedGeneration") != (raw.get("metadata") or {}).get("generation"):
            continue
        if key[0].plural == "llmgateways" and status.get("revision") != revision:
            continue
        del pending[key]


def last_write(emu: Recorder, since: int, resource: str, until: float) -> float | None:
    """The time of the operator's last write to `resource` (a prefix) before `until`."""
    found = None
    for t, _verb, res, _ns, _name, agent in emu.log[since:]:
        if t <= until and res.startswith(resource) and ours(agent):
            found = t
    return found


async def quiet(emu: Recorder, op: Operator, seconds: float, limit: float) -> float:
    """Wait until the operator has written nothing for `seconds` (at most `limit`); returns
    the time since its start."""
    deadline = time.monotonic() + limit
    count, since = len(emu.log), time.monotonic()
    while time.monotonic() - since < seconds and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        op.alive()
        if len(emu.log) != count:
            count, since = len(emu.log), time.monotonic()
    return time.monotonic() - op.t0


def say(text: str) -> None:
    print(f"[bench-scale] {text}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def cold_start(
    emu: Recorder, op: Operator, expected: str, timeout: float
) -> dict[str, float | str | None]:
    """From start until the complete revision runs and every status is written."""
    pending = {k: o for k, o in emu.objects.items() if k[0].plural in STATUS_PLURALS and not o.deleted}
    since = len(emu.log)
    own_cpu = time.process_time()
    op.start()
    rollout = statuses = None
    seen_hash: str | None = None
    deployment = None
    deadline = op.t0 + timeout
    polls = 0
    while (rollout is None or statuses is None) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        op.alive()
        polls += 1
        if polls % 20 == 0 and (broken := op.failing()):
            raise RuntimeError(f"the operator's passes keep failing: {broken}")
        now = time.monotonic()
        if rollout is None:
            deployment = deployment or gateway_deployment(emu)
            seen_hash = config_hash(deployment) if deployment is not None else None
            if seen_hash == expected:
                t = last_write(emu, since, "deployments", now)
                rollout = (t if t is not None else now) - op.t0
                say(f"  complete revision rolled out at {rollout:.1f} s")
        if statuses is None:
            unwritten(pending, expected[:10])
            if not pending:
                t = last_write(emu, since, "", now)
                statuses = (t if t is not None else now) - op.t0
                say(f"  every status written at {statuses:.1f} s")
    quiet_at = await quiet(emu, op, 3.0, 60.0)
    rss, hwm = op.memory()
    marks = op.marks()
    return {
        "steps": {
            label: [min(marks.get(f"{label}.start", [math.nan])), min(marks.get(f"{label}.end", [math.nan]))]
            for label in STEPS
        },
        "imported": min(marks.get("imported", [math.nan])),
        "first_handler": min(marks.get("first-handler", [math.nan])),
        "first_pass_start": min(marks.get("pass-start", [math.nan])),
        "first_pass_end": min(marks.get("pass-end", [math.nan])),
        "operator_cpu": op.cpu(),
        "apiserver_cpu": time.process_time() - own_cpu,
        "passes": float(len(marks.get("pass-end", []))),
        "rollout": rollout,
        "statuses": statuses,
        "unwritten": float(len(pending)),
        "deployed_hash": seen_hash,
        "quiet": quiet_at,
        "rss_mib": rss,
        "hwm_mib": hwm,
    }


async def restart(emu: Recorder, op: Operator, timeout: float) -> dict[str, Any]:
    """Start on the estate as the last run left it; its writes until quiet after its first pass."""
    since = len(emu.log)
    op.start()
    deadline = op.t0 + timeout
    while not op.marks().get("pass-end") and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        op.alive()
        if broken := op.failing():
            raise RuntimeError(f"the operator's passes keep failing: {broken}")
    await quiet(emu, op, 5.0, 60.0)
    marks = op.marks()
    writes = emu.log[since:]
    counted = collections.Counter(
        f"{w[1]} {w[2]}" for w in writes if ours(w[5]) and w[2].split("/")[0] not in NOT_COUNTED
    )
    other = collections.Counter(
        f"{w[1]} {w[2]}" for w in writes if not (ours(w[5]) and w[2].split("/")[0] not in NOT_COUNTED)
    )
    return {
        "first_handler": min(marks.get("first-handler", [math.nan])),
        "first_pass_end": min(marks.get("pass-end", [math.nan])),
        "writes": sum(counted.values()),
        "by_resource": dict(counted),
        "other_writes": dict(other),
    }


REVIEWER = r"""
import asyncio, json, ssl, sys, time
import aiohttp

async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 28)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    cfg = json.loads(await reader.readline())
    context = ssl.create_default_context(cadata=cfg["ca"])
    bodies = cfg["bodies"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as client:
        async def ask(i):
            t = time.perf_counter()
            async with client.post(cfg["url"], json=bodies[i % len(bodies)], ssl=context) as rsp:
                rsp.raise_for_status()
                body = await rsp.json()
            return [i, time.perf_counter() - t, body["response"]]
        while line := await reader.readline():
            cmd = json.loads(line)
            out, i = [], cmd["start"]
            if "count" in cmd:
                for k in range(cmd["count"]):
                    out.append(await ask(i + k))
            else:
                end = time.monotonic() + cmd["seconds"]
                while time.monotonic() < end:
                    out.append(await ask(i))
                    i += 1
                    await asyncio.sleep(0.02)
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()

asyncio.run(main())
"""
"""The review client, in a process of its own: in this one, its requests and answers would wait
behind the emulator's work (the operator's writes after an edit), which is not the webhook's."""


async def webhook(
    c: Cluster, folder: Path, steady: int, edits: int, window: float, raws: list[dict[str, Any]]
) -> dict[str, Any]:
    """Reviews over HTTPS, steady and right after edits, as bench_webhook.py asks them, from a
    client process of its own (`REVIEWER`)."""
    est = manifests.load([str(folder)]).estate()
    plan = bench_webhook.reviews(est, max(steady, 50))
    config = None
    deadline = time.monotonic() + 60
    while not config or len(config.get("webhooks") or []) != 3:
        if time.monotonic() > deadline:
            raise RuntimeError("the webhook configuration was not written")
        config = await c._json("GET", CONFIG_PATH)
        await asyncio.sleep(0.1)
    (hook,) = [w for w in config["webhooks"] if PLURALS["FallbackChain"] in w["rules"][0]["resources"]]
    ca = base64.b64decode(hook["clientConfig"]["caBundle"]).decode()
    url = hook["clientConfig"]["url"]
    chains = [r for r in raws if r["kind"] == "FallbackChain"]
    providers = [r for r in raws if r["kind"] == "LLMProvider"]
    wrong: collections.Counter[str] = collections.Counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", REVIEWER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=1 << 28
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    async def ask(**cmd: Any) -> list[float]:
        stdin.write((json.dumps(cmd) + "\n").encode())
        await stdin.drain()
        answers = json.loads(await stdout.readline())
        for i, _took, response in answers:
            expected, _obj = plan[i % len(plan)]
            got = bench_webhook.verdict_of(response)
            if got != expected:
                wrong[f"{expected} -> {got}"] += 1
        return [took for _i, took, _response in answers]

    try:
        stdin.write(
            (json.dumps({"url": url, "ca": ca, "bodies": [review_body(o) for _, o in plan]}) + "\n").encode()
        )
        await ask(start=0, count=1)  # the connection, and the first indexing of the world
        timings = await ask(start=0, count=steady)
        after: list[float] = []
        first_after: list[float] = []
        for e in range(edits):
            if e % 2 == 0:  # a chain's labels: admission reads them
                target = chains[(e * 97) % len(chains)]
                body: dict[str, Any] = {"metadata": {"labels": {"bench-edit": str(e)}}}
            else:  # a provider's spec: a new generation, a new render
                target = providers[(e * 89) % len(providers)]
                models = [dict(m) for m in target["spec"]["models"]]
                models[0]["rpm"] = 1000 + e
                body = {"spec": {"models": models}}
            meta = target["metadata"]
            await c.patch(target["kind"], meta["namespace"], meta["name"], body)
            took = await ask(start=steady + e * 1000, seconds=window)
            after += took
            first_after += took[:1]
    finally:
        stdin.close()
        await proc.wait()
    return {
        "chains": len(chains),
        "steady": timings,
        "after_edit": after,
        "first_after_edit": first_after,
        "unexpected_verdicts": dict(wrong),
    }


async def one_size(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    sh = shape(n)
    folder = tmp / f"estate-{n}"
    gen.write(folder, models=sh.models, chains=sh.chains, models_per_provider=2, cache=False)
    docs = [
        d
        for f in sorted(folder.glob("*.yaml"))
        for d in yaml.load_all(f.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if isinstance(d, dict)
    ]
    assert len(docs) == n, (len(docs), sh)
    say(
        f"{n} objects: {sh.providers} providers ({sh.models} models), {sh.chains} chains, "
        f"{sh.services} Services, 1 gateway"
    )
    expected, render_s = offline_render(folder)
    result: dict[str, Any] = {"objects": n, "shape": dataclasses.asdict(sh), "render_s": render_s}
    async with Recorder() as emu, kmock.Server(emu) as server:
        kube_emulator.register(emu)
        url = str(server.url).rstrip("/")
        os.environ["KUBECONFIG"] = str(_kubeconfig(tmp, url))
        c = Cluster(url, emu)
        try:
            namespaces = {d["metadata"].get("namespace", "default") for d in docs} | set(REVIEW_NAMESPACES)
            for ns in sorted(namespaces):
                body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                await c._json("POST", "/api/v1/namespaces", body)
            t = time.perf_counter()
            await bench_webhook.load(c, docs)
            say(f"  loaded into the API server emulator in {time.perf_counter() - t:.1f} s")
            compact(emu)
            listed = [await list_all(c) for _ in range(2)]
            result["list_s"], result["listed"] = min(listed)
            result["floor_s"] = result["list_s"] + render_s
            say(f"  floor: LIST {result['list_s']:.2f} s + render {render_s:.2f} s")

            op = Operator(tmp, f"{n}-cold", args.settle, webhook=False)
            say(f"  cold start; log {op.log_path}")
            try:
                result["cold"] = await cold_start(emu, op, expected, args.timeout)
                result["cold"]["metrics"] = await op.scrape()
            finally:
                await op.stop()
            compact(emu)

            op = Operator(tmp, f"{n}-restart", args.settle, webhook=True)
            say(f"  restart with the webhook on; log {op.log_path}")
            try:
                result["restart"] = await restart(emu, op, args.timeout)
                raws = [d for d in docs if d["kind"] in ("LLMProvider", "FallbackChain")]
                result["webhook"] = await webhook(c, folder, args.reviews, args.edits, args.window, raws)
            finally:
                await op.stop()
        finally:
            await c.session.close()
    return result


# ---------------------------------------------------------------- report


def fmt(x: float | None, unit: str = "s", digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f} {unit}".strip()


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def figures(r: dict[str, Any]) -> dict[str, float | None]:
    cold, w = r["cold"], r["webhook"]
    steady, after = w["steady"], w["after_edit"]
    return {
        "floor": r["floor_s"],
        "first handler": cold["first_handler"],
        "complete rollout": cold["rollout"],
        "all statuses": cold["statuses"],
        "RSS (MiB)": cold["rss_mib"],
        "restart: first pass done": r["restart"]["first_pass_end"],
        "review p99 (ms)": pct(steady + after, 0.99) * 1000 if steady else None,
    }


def size_report(r: dict[str, Any]) -> list[str]:
    """The figures of one estate, printed as soon as it is measured."""
    lines: list[str] = []
    sh, cold, rs, w = r["shape"], r["cold"], r["restart"], r["webhook"]
    floor = r["floor_s"]
    lines.append(
        f"== {r['objects']} objects: {sh['providers']} providers ({2 * sh['providers']} models), "
        f"{sh['chains']} chains, {sh['services']} Services, 1 gateway =="
    )
    lines.append(
        f"floor: one LIST of all {r['listed']} objects {r['list_s']:.2f} s + offline render "
        f"{r['render_s']:.2f} s = {floor:.2f} s"
    )
    for label, value in (
        ("imports done", cold["imported"]),
        ("first handler", cold["first_handler"]),
        ("first pass starts", cold["first_pass_start"]),
        ("first pass done", cold["first_pass_end"]),
        ("complete rollout", cold["rollout"]),
        ("all statuses", cold["statuses"]),
    ):
        x = ratio(value, floor)
        lines.append(f"  {label:<18} {fmt(value):>9}   {fmt(x, 'x floor', 2)}")
    steps = cold.get("steps") or {}
    if steps:
        lines.append(
            "  first pass, step by step: "
            + "; ".join(f"{label} {fmt(a)} to {fmt(b)}" for label, (a, b) in steps.items())
        )
    if cold["deployed_hash"] and cold["rollout"] is None:
        lines.append("  (the Deployment runs a revision other than `llmgw render`'s)")
    if cold["unwritten"]:
        lines.append(f"  statuses not written: {cold['unwritten']:.0f}")
    lines.append(
        f"  RSS at the end     {cold['rss_mib']:.1f} MiB (peak {cold['hwm_mib']:.1f} MiB); "
        f"{cold['passes']:.0f} passes"
    )
    lines.append(
        f"  CPU to quiet ({cold['quiet']:.1f} s): operator {cold['operator_cpu']:.1f} s, "
        f"API server emulator and this bench {cold['apiserver_cpu']:.1f} s"
    )
    lines.append(
        f"  restart (webhook on): first handler {fmt(rs['first_handler'])}, first pass done "
        f"{fmt(rs['first_pass_end'])}, writes {rs['writes']} {rs['by_resource'] or ''}"
        f"; not counted: {rs['other_writes'] or 'none'}"
    )
    ms = 1000
    st, ae, fa = w["steady"], w["after_edit"], w["first_after_edit"]
    lines.append(
        f"  webhook ({w['chains']} chains): steady p50 {statistics.median(st) * ms:.1f} ms "
        f"p99 {pct(st, 0.99) * ms:.1f} ms ({len(st)}); after an edit p50 "
        f"{statistics.median(ae) * ms:.1f} ms p99 {pct(ae, 0.99) * ms:.1f} ms max {max(ae) * ms:.1f} ms "
        f"({len(ae)}); first after each edit max {max(fa) * ms:.1f} ms"
        + (f"; verdicts not as planned: {w['unexpected_verdicts']}" if w["unexpected_verdicts"] else "")
    )
    return lines


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> tuple[list[str], bool]:
    """Growth between sizes and the targets."""
    lines: list[str] = []
    if len(results) > 1:
        lines.append("== growth between sizes (time ratio; size ratio in brackets) ==")
        for a, b in itertools.pairwise(results):
            fa, fb = figures(a), figures(b)
            parts = [f"{k} {fmt(ratio(fb[k], fa[k]), 'x', 2)}" for k in fa]
            lines.append(
                f"  {a['objects']} -> {b['objects']} [{b['objects'] / a['objects']:.1f}x]: "
                + ", ".join(parts)
            )
    verdicts = targets(results, args.settle)
    lines.append(f"== targets (issue 13), at {results[-1]['objects']} objects ==")
    ok = True
    for text, passed in verdicts:
        lines.append(f"  {'PASS' if passed else 'FAIL'}  {text}")
        ok &= passed
    lines.append(
        "  (not here: the 10,000-model sharded gateway and the 2,000-chain cycle: tests/e2e, bench_cycles.py)"
    )
    return lines, ok


def targets(results: list[dict[str, Any]], settle: float) -> list[tuple[str, bool]]:
    big = results[-1]
    cold = big["cold"]
    out: list[tuple[str, bool]] = []
    bound = 3 * big["floor_s"] + settle
    rollout = cold["rollout"]
    out.append(
        (
            f"complete rollout {fmt(rollout)} <= 3x floor + settle = {bound:.1f} s",
            rollout is not None and rollout <= bound,
        )
    )
    for a, b in itertools.pairwise(results):
        size = b["objects"] / a["objects"]
        limit = 2.3 ** math.log2(size)
        x = ratio(b["cold"]["rollout"], a["cold"]["rollout"])
        out.append(
            (
                f"rollout {a['objects']} -> {b['objects']}: {fmt(x, 'x', 2)} <= {limit:.2f}x "
                f"(2.3x per doubling)",
                x is not None and x <= limit,
            )
        )
    statuses = cold["statuses"]
    out.append(
        (
            f"all statuses {fmt(statuses)} <= 2x the rollout ({fmt(2 * rollout if rollout else None)})",
            statuses is not None and rollout is not None and statuses <= 2 * rollout,
        )
    )
    writes = big["restart"]["writes"]
    out.append((f"restart on the unchanged estate: {writes} writes <= 3", writes <= 3))
    w = big["webhook"]
    p99 = pct(w["steady"] + w["after_edit"], 0.99) * 1000
    out.append(
        (
            f"review p99 {p99:.1f} ms <= 50 ms, after edits included ({w['chains']} chains; "
            "the issue names 5,000)",
            p99 <= 50,
        )
    )
    half = [r for r in results if 2 * r["objects"] == big["objects"]]
    if half:
        x = big["cold"]["rss_mib"] / half[0]["cold"]["rss_mib"]
        out.append(
            (
                f"RSS {big['cold']['rss_mib']:.0f} MiB <= 2.2x that at {half[0]['objects']} "
                f"({half[0]['cold']['rss_mib']:.0f} MiB): {x:.2f}x",
                x <= 2.2,
            )
        )
    return out


def markdown(results: list[dict[str, Any]], when: str) -> str:
    rows = [
        f"Measured {when} by `make bench-scale` (tests/perf/bench_scale.py), settle window as given.",
        "",
        "| objects | providers / chains | floor | first handler | complete rollout | all statuses "
        "| operator CPU | RSS | restart writes | review p50 / p99 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    prev: dict[str, Any] | None = None

    def cell(v: float | None, key: str, floor: float, prev: dict[str, Any] | None) -> str:
        if v is None or math.isnan(v):
            return "n/a"
        text = f"{v:.1f} s ({v / floor:.1f}x)"
        if prev is not None:
            g = ratio(v, prev["cold"][key])
            text += f", {g:.2f}x" if g is not None else ""
        return text

    for r in results:
        cold, w = r["cold"], r["webhook"]
        floor = r["floor_s"]
        first, rollout, written = (
            cell(cold[k], k, floor, prev) for k in ("first_handler", "rollout", "statuses")
        )
        grew = ratio(cold["operator_cpu"], prev["cold"]["operator_cpu"]) if prev else None
        cpu = f"{cold['operator_cpu']:.1f} s" + (f", {grew:.2f}x" if grew else "")
        both = w["steady"] + w["after_edit"]
        rows.append(
            f"| {r['objects']:,} | {r['shape']['providers']:,} / {r['shape']['chains']:,} | {floor:.1f} s "
            f"| {first} | {rollout} | {written} | {cpu} | {cold['rss_mib']:.0f} MiB "
            f"| {r['restart']['writes']} "
            f"| {statistics.median(both) * 1000:.1f} / {pct(both, 0.99) * 1000:.1f} ms |"
        )
        prev = r
    rows += [
        "",
        "Times are from the operator's start; (Nx) is the ratio to the floor (one LIST of every object "
        "plus an offline `llmgw render` of the same estate), and the second ratio the growth from the "
        "size before. Operator CPU: user + system seconds from start until quiet after the statuses "
        "(steadier than wall clock on a shared machine). Restart writes: the operator's own, "
        "Events and Leases apart. Reviews: over HTTPS with the webhook on, steady and in the "
        "second after an edit.",
    ]
    return "\n".join(rows) + "\n"


def plot(results: list[dict[str, Any]], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot"
    xs = [r["objects"] for r in results]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (
        ("first_handler", "first handler"),
        ("rollout", "complete rollout"),
        ("statuses", "all statuses"),
    ):
        ax.plot(xs, [r["cold"][key] for r in results], marker="o", label=label)
    ax.plot(xs, [r["floor_s"] for r in results], linestyle="--", label="floor")
    ax.set_xlabel("objects")
    ax.set_ylabel("seconds from start")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return f"plot written to {path}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,2000,4000,8000", help="objects per estate, comma-separated")
    p.add_argument("--settle", type=float, default=1.0, help="the operator's --settle-seconds")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds a start may take, per run")
    p.add_argument("--reviews", type=int, default=200, help="steady reviews")
    p.add_argument("--edits", type=int, default=6, help="edits, each followed by reviews")
    p.add_argument("--window", type=float, default=1.0, help="seconds of reviews after each edit")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target FAILs")
    p.add_argument("--markdown", type=Path, help="write the curve as a Markdown table here")
    p.add_argument("--json", type=Path, help="write every figure here")
    p.add_argument("--plot", type=Path, help="a PNG of the curve (only if matplotlib is installed)")
    p.add_argument("--from-json", type=Path, help="report a run saved with --json; measure nothing")
    args = p.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        args.settle = saved["settle"]
        return finish(saved["results"], saved["when"], args)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="llmgw-bench-scale-"))
    started = datetime.datetime.now(datetime.UTC)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    when = (
        f"{started:%Y-%m-%d %H:%M} UTC at commit {commit or '?'} (plus uncommitted work), "
        f"{os.cpu_count()} CPUs"
    )
    print(f"bench-scale: {when}; settle {args.settle:g} s", flush=True)
    results: list[dict[str, Any]] = []
    for n in sizes:
        results.append(asyncio.run(one_size(n, args, tmp)))
        results[-1]["finished"] = f"{datetime.datetime.now(datetime.UTC):%H:%M} UTC"
        print("\n".join(size_report(results[-1])), flush=True)
        if args.json:  # after each size, so a run cut short keeps what it measured
            args.json.write_text(
                json.dumps({"when": when, "settle": args.settle, "results": results}, indent=2)
            )
    return finish(results, when, args)


def finish(results: list[dict[str, Any]], when: str, args: argparse.Namespace) -> int:
    """Growth, targets, the table (and the plot)."""
    if args.from_json:
        for r in results:
            print("\n".join(size_report(r)))
    lines, ok = report(results, args)
    print("\n".join(lines))
    table = markdown(results, when)
    print()
    print(table, end="")
    if args.markdown:
        args.markdown.write_text(table)
    if args.plot:
        print(plot(results, args.plot))
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
