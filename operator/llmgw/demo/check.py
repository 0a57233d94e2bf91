"""`llmgw demo --check`: the rollout promises, proven against real LiteLLM pods, in one run.

The demo is started on a copy of its folder (the edits below go to the copy, and
reach the API through the demo's own file watcher, as a user's edits would), and:

1. the gateway becomes available (real proxies, started by the pod runner);
2. a chat request through the local Service is answered by the vLLM fake;
3. with that fake failing, the same request is answered through the Ollama fallback;
4. an edit that renders a new revision rolls the pods while a client loop sends
   requests through the Service: it must see 0 failed requests;
5. a revision whose pods reference a missing Secret is rolled back for real: its
   pods wait in CreateContainerConfigError, the operator's stuckPodSeconds window
   fails it, `RolledBack` names both revisions and the kubelet's reason;
6. a revision the proxy refuses at start (a `generalSettings` value LiteLLM's
   startup validation rejects: `database_statement_timeout` must be a number) is
   rolled back after CrashLoopBackOff;

the client loop running through 5 and 6 too, so the gateway answered throughout.

Step 6 runs on a second gateway of its own (`SECOND`: one replica, an Ollama
provider, added to the copy of the folder), from the start, beside 1-5, with a
client loop of its own. The steps of one gateway are one after another by nature
(each waits for the revision before it), and each LiteLLM start costs some 12 s of
CPU; the crash loop alone is four starts in a row (3 restarts), on one core. After
step 5 it was the longer half of the check; beside 1-5 it uses the core the rollout
leaves free (measured back to back on a two-core machine: 145 s one after another,
109 s side by side). Each step prints its result and its time; exit 0 when all
passed and neither client loop saw a failed request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from llmgw.core import revisions
from llmgw.demo import backends, podrunner, session, summary
from llmgw.demo import estate as estate_mod

MODEL = "llama-3.1-8b"
STEP_TIMEOUT = 240.0
CRASH_TIMEOUT = 360.0
"""Step 6 includes the second gateway's first start, and runs while 1-5 use the CPU too."""
SECOND = ("demo-check", "second")
"""The second gateway (namespace, name), for step 6."""
SECOND_MODEL = "llama-3.2-3b"
SECOND_FILE = "zz-check-second-gateway.yaml"
SECOND_ESTATE = f"""\
# `llmgw demo --check` only: the gateway of step 6 (a revision LiteLLM refuses at start),
# one replica and the Ollama fake, so that its crash loop runs beside steps 1-5.
apiVersion: v1
kind: Namespace
metadata:
  name: {SECOND[0]}
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata:
  name: ollama
  namespace: {SECOND[0]}
spec:
  type: ollama
  endpoint:
    service: {{name: ollama, namespace: models, port: 11434}}
  models:
    - name: {SECOND_MODEL}
      backendModel: llama3.2:3b
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMGateway
metadata:
  name: {SECOND[1]}
  namespace: {SECOND[0]}
spec:
  replicas: 1
  numRetries: 0
  timeoutSeconds: 20
  rollout:
    autoRollback: true
    progressDeadlineSeconds: 300
    stuckPodSeconds: 5
  probes:
    startup: {{periodSeconds: 1, failureThreshold: 240, timeoutSeconds: 2}}
    readiness: {{periodSeconds: 1, failureThreshold: 2, timeoutSeconds: 2}}
  litellmSettings:
    disable_hf_tokenizer_download: true
"""
PAUSE = 0.2
"""Between two requests of one client of the loop during the rollout (step 4): some seven
requests a second through the Service while pods come and go."""
SLOW_PAUSE = 1.0
"""Between two requests once the rollout is over: the rollbacks do not touch the pods that
serve, so a request a second shows that they kept answering. Each request costs some 40 ms
of CPU (LiteLLM's, mostly): at the rollout's pace, the loops took a quarter of the CPU the
starting proxies of steps 5 and 6 needed."""


class StepFailed(Exception):
    pass


class _Abort(Exception):
    """A step that the later ones build on failed: skip them."""


@dataclasses.dataclass
class Loop:
    """Requests sent through the Service, one after another, by `workers` clients."""

    pause: float = PAUSE
    """Between two requests of one client; the scenario slows the loop down after the rollout."""
    ok: int = 0
    failed: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def sent(self) -> int:
        return self.ok + self.failed


async def chat(session_: aiohttp.ClientSession, url: str, key: str, model: str = MODEL) -> tuple[int, str]:
    body = {"model": model, "messages": [{"role": "user", "content": "Hello"}]}
    async with session_.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as rsp:
        text = await rsp.text()
        if rsp.status != 200:
            return rsp.status, text[:300]
        data = await rsp.json(content_type=None)
        return 200, str(data["choices"][0]["message"]["content"])


async def client_loop(
    url: str, key: str, loop: Loop, stop: asyncio.Event, workers: int = 2, model: str = MODEL
) -> None:
    async def one() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
            while not stop.is_set():
                try:
                    status, text = await chat(s, url, key, model)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    status, text = 0, repr(exc)
                if status == 200 and text.startswith("answer from "):
                    loop.ok += 1
                else:
                    loop.failed += 1
                    loop.errors.append(f"{status}: {text[:200]}")
                await asyncio.sleep(loop.pause)

    await asyncio.gather(*(one() for _ in range(workers)))


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")


class Scenario:
    """The steps' view of one gateway (namespace, name) of the demo."""

    def __init__(
        self,
        demo: session.Demo,
        folder: Path,
        gateway: tuple[str, str],
        results: list[tuple[str, bool, float, str]],
        model: str = MODEL,
    ) -> None:
        self.demo = demo
        self.folder = folder
        self.namespace, self.name = gateway
        self.model = model
        self.key = ""
        self.results = results

    @property
    def url(self) -> str:
        service = self.demo.services.get((self.namespace, self.name))
        return f"http://127.0.0.1:{service.port if service else self.demo.port}"

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"

    async def gateway(self) -> Mapping[str, Any]:
        assert self.demo.api is not None
        return await self.demo.api.get("LLMGateway", self.namespace, self.name) or {}

    async def settled(self, revision: str | None = None) -> str | None:
        """The revision that runs, when the gateway is Ready and every pod of its Deployment is of
        that revision and ready (no other pod left, terminating or not). Asked twice a second:
        only the three objects it needs (a whole `Demo.snapshot` costs twice the CPU)."""
        api = self.demo.api
        assert api is not None
        g, dep, in_namespace = await asyncio.gather(
            api.get("LLMGateway", self.namespace, self.name),
            api.get("Deployment", self.namespace, self.name),
            api.list("Pod", self.namespace),
        )
        if g is None or dep is None:
            return None
        st = g.get("status") or {}
        runs = str(st.get("revision") or "")
        history = st.get("history") or []
        if summary.condition(g, "Ready").get("status") != "True" or not history:
            return None
        if history[0].get("revision") != runs or history[0].get("outcome") != "Available":
            return None
        if revision is not None and runs != revision:
            return None
        want = int((dep.get("spec") or {}).get("replicas") or 1)
        pods = [
            p
            for p in in_namespace
            if ((p.get("metadata") or {}).get("labels") or {}).get("llmgateway.dev/gateway") == self.name
        ]
        revs = {revisions.pod_revision(p["metadata"].get("annotations") or {}) for p in pods}
        ready = [
            p for p in pods if ((p.get("status") or {}).get("containerStatuses") or [{}])[0].get("ready")
        ]
        if revs != {runs} or len(ready) != want or len(pods) != want:
            return None
        service = self.demo.services.get((self.namespace, self.name))
        if service is not None and len(service.endpoints()) != want:
            return None
        return runs

    def edit(self, name: str, change: Callable[[list[dict[str, Any]]], None]) -> str:
        path = self.folder / name
        before = path.read_text()
        docs = [d for d in yaml.safe_load_all(before) if d]
        change(docs)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return before

    async def step(
        self, name: str, body: Callable[[], Awaitable[str]], timeout: float = STEP_TIMEOUT
    ) -> bool:
        began = time.monotonic()
        try:
            said = await asyncio.wait_for(body(), timeout)
            ok = True
        except (StepFailed, TimeoutError, AssertionError, aiohttp.ClientError) as exc:
            said, ok = f"{type(exc).__name__}: {exc}", False
        took = time.monotonic() - began
        self.results.append((name, ok, took, said))
        print(f"[check] {'PASS' if ok else 'FAIL'} {name} ({took:.1f} s): {said}", flush=True)
        return ok

    async def ask(self) -> str:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
            status, text = await chat(s, self.url, self.key, self.model)
        if status != 200:
            raise StepFailed(f"HTTP {status}: {text}")
        return text

    async def rolled_back(
        self, reason: str, bad_from: str, timeout: float = STEP_TIMEOUT - 20
    ) -> Mapping[str, Any]:
        async def check() -> Mapping[str, Any] | None:
            g = await self.gateway()
            c = summary.condition(g, "RolledBack")
            return c if c.get("status") == "True" and c.get("reason") == reason else None

        try:
            cond = await eventually(check, timeout, f"RolledBack with reason {reason}")
        except StepFailed as exc:
            g = await self.gateway()
            history = (g.get("status") or {}).get("history") or []
            raise StepFailed(
                f"{exc}; RolledBack: {summary.condition(g, 'RolledBack')}; history: {history[:3]}"
            ) from None
        message = str(cond.get("message"))
        assert bad_from in message, f"RolledBack names the good revision {bad_from}: {message}"
        return dict(cond)


async def run(folder: Path, port: int, kubeconfig: Path | None, litellm: str) -> int:
    """The scenario on a copy of `folder`; its gateway Service on `port`, the second one's on
    `port + 1` (see `free_port`)."""
    work = Path(tempfile.mkdtemp(prefix="llmgw-demo-check-"))
    estate = work / "estate"
    shutil.copytree(folder, estate)
    (estate / SECOND_FILE).write_text(SECOND_ESTATE)
    began = time.monotonic()
    demo = session.Demo(estate, port, kubeconfig, litellm, use_real_ollama=False, say=lambda *_: None)
    results: list[tuple[str, bool, float, str]] = []
    sc = Scenario(demo, estate, _first_gateway(estate), results)
    second = Scenario(demo, estate, SECOND, results, SECOND_MODEL)
    stop_loop = asyncio.Event()
    loop, loop2 = Loop(), Loop(pause=SLOW_PAUSE)
    loops: list[asyncio.Task[None]] = []
    crash: asyncio.Task[bool] | None = None
    try:
        await demo.start()
        print(f"[check] demo started in {time.monotonic() - began:.1f} s (logs: {demo.workdir})", flush=True)

        async def crash_loop() -> str:
            """Step 6, on the second gateway, from its first start."""
            good = await eventually(second.settled, CRASH_TIMEOUT / 2, f"gateway {second.label} available")
            world = await demo.snapshot()
            second.key = summary.master_key(world, await second.gateway()) or ""
            loops.append(
                asyncio.create_task(
                    client_loop(second.url, second.key, loop2, stop_loop, workers=1, model=SECOND_MODEL)
                )
            )

            def refused(docs: list[dict[str, Any]]) -> None:
                docs[-1]["spec"]["generalSettings"] = {"database_statement_timeout": "soon"}

            before = second.edit(SECOND_FILE, refused)
            cond = await second.rolled_back("CrashLoopBackOff", good, CRASH_TIMEOUT / 2)
            (estate / SECOND_FILE).write_text(before)
            await eventually(lambda: second.settled(good), 60, f"revision {good} settled again")
            if loop2.failed:
                raise StepFailed(f"{loop2.failed} requests failed meanwhile: {loop2.errors[:3]}")
            return (
                f"{cond['message'][:400]} (gateway {second.label}; its client loop: {loop2.sent} "
                f"requests, {loop2.failed} failed)"
            )

        crash = asyncio.create_task(
            second.step(
                "a revision the proxy refuses at start is rolled back after CrashLoopBackOff",
                crash_loop,
                CRASH_TIMEOUT,
            )
        )

        async def available() -> str:
            revision = await eventually(sc.settled, STEP_TIMEOUT - 10, "the gateway to be available")
            world = await demo.snapshot()
            sc.key = summary.master_key(world, await sc.gateway()) or ""
            return f"revision {revision} Ready, {time.monotonic() - began:.1f} s after the start"

        if not await sc.step("gateway available with real LiteLLM pods", available):
            raise _Abort
        vllm = demo.fake("vllm")
        assert vllm is not None, "the estate's vLLM fake"

        async def answered_by_vllm() -> str:
            text = await sc.ask()
            if text != backends.answer_text("vllm", "meta-llama/Llama-3.1-8B-Instruct"):
                raise StepFailed(f"answered {text!r}")
            return text

        await sc.step("chat through the Service answered by the vLLM fake", answered_by_vllm)

        async def fallback() -> str:
            vllm.failing = True
            try:
                text = await sc.ask()
            finally:
                vllm.failing = False
            if not text.startswith("answer from ollama"):
                raise StepFailed(f"answered {text!r}")
            return f"vLLM answering 500, {text!r}"

        await sc.step("with vLLM failing, answered through the Ollama fallback", fallback)
        loops.append(asyncio.create_task(client_loop(sc.url, sc.key, loop, stop_loop)))
        first = await sc.settled() or ""

        async def rollout() -> str:
            def longer(docs: list[dict[str, Any]]) -> None:
                docs[0]["spec"]["timeoutSeconds"] = int(docs[0]["spec"].get("timeoutSeconds", 20)) + 5

            sc.edit("gateway.yaml", longer)
            new = await eventually(
                lambda: _other(sc, first), STEP_TIMEOUT - 10, "a new revision rolled out and settled"
            )
            if loop.failed:
                raise StepFailed(f"{loop.failed} of {loop.sent} requests failed: {loop.errors[:3]}")
            return (
                f"revision {first} -> {new}; {loop.sent} requests through the Service, {loop.failed} failed"
            )

        if not await sc.step("an edit rolls the pods, the client loop sees no failure", rollout):
            raise _Abort
        loop.pause = SLOW_PAUSE
        good = await sc.settled() or ""

        async def missing_secret() -> str:
            def missing(docs: list[dict[str, Any]]) -> None:
                for d in docs:
                    if d["metadata"]["name"] == "vllm":
                        d["spec"]["apiKeySecretRef"] = {"name": "vllm-token-missing", "key": "token"}

            before = sc.edit("providers.yaml", missing)
            cond = await sc.rolled_back("CreateContainerConfigError", good)
            (estate / "providers.yaml").write_text(before)
            await eventually(lambda: sc.settled(good), 60, f"revision {good} settled again")
            if loop.failed:
                raise StepFailed(f"{loop.failed} requests failed meanwhile: {loop.errors[:3]}")
            return f"{cond['message'][:400]} (client loop: {loop.sent} requests, {loop.failed} failed)"

        await sc.step("a revision with a missing Secret is rolled back", missing_secret)
        await crash
    except _Abort:  # a step the later ones need failed; it said so
        pass
    except Exception as exc:  # a failure to start, reported as a failed step
        results.append(("the demo ran", False, time.monotonic() - began, f"{type(exc).__name__}: {exc}"))
        print(f"[check] FAIL the demo ran: {type(exc).__name__}: {exc}", flush=True)
    finally:
        if crash is not None and not crash.done():
            crash.cancel()
            with contextlib.suppress(BaseException):
                await crash
        stop_loop.set()
        for task in loops:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 65)
        stopping = time.monotonic()
        await demo.stop()
        print(f"[check] demo stopped in {time.monotonic() - stopping:.1f} s", flush=True)
    code = _report(results, (loop, loop2), began)
    if code == 0:  # the logs are worth keeping only when something failed
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(demo.workdir, ignore_errors=True)
    return code


def free_port() -> int:
    """A free loopback port whose next one is free too: the check's two gateway Services."""
    for _ in range(50):
        port = podrunner.free_port()
        if port < 65535 and _bindable(port + 1):
            return port
    raise OSError("no two free neighbouring loopback ports")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _first_gateway(folder: Path) -> tuple[str, str]:
    """The folder's gateway whose Service gets the demo's port (the first, as `session` sorts them)."""
    gateways = sorted(
        (k[2], k[3]) for k in estate_mod.load(folder) if k[1] == "LLMGateway" and k[2:] != SECOND
    )
    return gateways[0] if gateways else ("demo", "demo")


async def _other(sc: Scenario, first: str) -> str | None:
    runs = await sc.settled()
    return runs if runs and runs != first else None


def _report(results: list[tuple[str, bool, float, str]], loops: tuple[Loop, ...], began: float) -> int:
    failed = sum(lp.failed for lp in loops)
    ok = bool(results) and all(r[1] for r in results) and not failed
    sent = sum(lp.sent for lp in loops)
    print(
        f"[check] {'PASSED' if ok else 'FAILED'}: {sum(r[1] for r in results)}/{len(results)} steps in "
        f"{time.monotonic() - began:.1f} s; client loops {sent} requests, {failed} failed",
        flush=True,
    )
    return 0 if ok else 1
