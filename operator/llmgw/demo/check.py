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
Each step prints its result and its time; exit 0 when all passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from llmgw.core import revisions
from llmgw.demo import backends, session, summary

MODEL = "llama-3.1-8b"
STEP_TIMEOUT = 240.0
PAUSE = 0.2
"""Between two requests of one client of the loop: a few requests a second in all, so that
the loop proves the rollout without taking the CPU the starting proxies need."""


class StepFailed(Exception):
    pass


class _Abort(Exception):
    """A step that the later ones build on failed: skip them."""


@dataclasses.dataclass
class Loop:
    """Requests sent through the Service, one after another, by `workers` clients."""

    ok: int = 0
    failed: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def sent(self) -> int:
        return self.ok + self.failed


async def chat(session_: aiohttp.ClientSession, url: str, key: str) -> tuple[int, str]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}]}
    async with session_.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as rsp:
        text = await rsp.text()
        if rsp.status != 200:
            return rsp.status, text[:300]
        data = await rsp.json(content_type=None)
        return 200, str(data["choices"][0]["message"]["content"])


async def client_loop(url: str, key: str, loop: Loop, stop: asyncio.Event, workers: int = 2) -> None:
    async def one() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
            while not stop.is_set():
                try:
                    status, text = await chat(s, url, key)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    status, text = 0, repr(exc)
                if status == 200 and text.startswith("answer from "):
                    loop.ok += 1
                else:
                    loop.failed += 1
                    loop.errors.append(f"{status}: {text[:200]}")
                await asyncio.sleep(PAUSE)

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
    def __init__(self, demo: session.Demo, folder: Path) -> None:
        self.demo = demo
        self.folder = folder
        self.url = f"http://127.0.0.1:{demo.port}"
        self.key = ""
        self.results: list[tuple[str, bool, float, str]] = []

    async def gateway(self) -> Mapping[str, Any]:
        world = await self.demo.snapshot()
        return world.gateways[0] if world.gateways else {}

    async def settled(self, revision: str | None = None) -> str | None:
        """The revision that runs, when the gateway is Ready and every pod of its Deployment is of
        that revision and ready (no other pod left, terminating or not)."""
        world = await self.demo.snapshot()
        if not world.gateways or not world.deployments:
            return None
        g = world.gateways[0]
        st = g.get("status") or {}
        runs = str(st.get("revision") or "")
        history = st.get("history") or []
        if summary.condition(g, "Ready").get("status") != "True" or not history:
            return None
        if history[0].get("revision") != runs or history[0].get("outcome") != "Available":
            return None
        if revision is not None and runs != revision:
            return None
        dep = world.deployments[0]
        want = int((dep.get("spec") or {}).get("replicas") or 1)
        pods = [
            p
            for p in world.pods
            if (p.get("metadata") or {}).get("namespace") == (g.get("metadata") or {}).get("namespace")
        ]
        revs = {revisions.pod_revision(p["metadata"].get("annotations") or {}) for p in pods}
        ready = [
            p for p in pods if ((p.get("status") or {}).get("containerStatuses") or [{}])[0].get("ready")
        ]
        if revs != {runs} or len(ready) != want or len(pods) != want:
            return None
        service = next(iter(self.demo.services.values()), None)
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

    async def step(self, name: str, body: Callable[[], Awaitable[str]]) -> bool:
        began = time.monotonic()
        try:
            said = await asyncio.wait_for(body(), STEP_TIMEOUT)
            ok = True
        except (StepFailed, TimeoutError, AssertionError, aiohttp.ClientError) as exc:
            said, ok = f"{type(exc).__name__}: {exc}", False
        took = time.monotonic() - began
        self.results.append((name, ok, took, said))
        print(f"[check] {'PASS' if ok else 'FAIL'} {name} ({took:.1f} s): {said}", flush=True)
        return ok

    async def ask(self) -> str:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
            status, text = await chat(s, self.url, self.key)
        if status != 200:
            raise StepFailed(f"HTTP {status}: {text}")
        return text

    async def rolled_back(self, reason: str, bad_from: str) -> Mapping[str, Any]:
        async def check() -> Mapping[str, Any] | None:
            g = await self.gateway()
            c = summary.condition(g, "RolledBack")
            return c if c.get("status") == "True" and c.get("reason") == reason else None

        try:
            cond = await eventually(check, STEP_TIMEOUT - 20, f"RolledBack with reason {reason}")
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
    work = Path(tempfile.mkdtemp(prefix="llmgw-demo-check-"))
    estate = work / "estate"
    shutil.copytree(folder, estate)
    began = time.monotonic()
    demo = session.Demo(estate, port, kubeconfig, litellm, use_real_ollama=False, say=lambda *_: None)
    sc = Scenario(demo, estate)
    stop_loop = asyncio.Event()
    loop = Loop()
    loop_task: asyncio.Task[None] | None = None
    try:
        await demo.start()
        print(f"[check] demo started in {time.monotonic() - began:.1f} s (logs: {demo.workdir})", flush=True)

        async def available() -> str:
            revision = await eventually(sc.settled, STEP_TIMEOUT - 10, "the gateway to be available")
            world = await demo.snapshot()
            sc.key = summary.master_key(world, world.gateways[0]) or ""
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
        loop_task = asyncio.create_task(client_loop(sc.url, sc.key, loop, stop_loop))
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

        async def crash_loop() -> str:
            def refused(docs: list[dict[str, Any]]) -> None:
                docs[0]["spec"]["generalSettings"] = {"database_statement_timeout": "soon"}

            before = sc.edit("gateway.yaml", refused)
            cond = await sc.rolled_back("CrashLoopBackOff", good)
            (estate / "gateway.yaml").write_text(before)
            await eventually(lambda: sc.settled(good), 60, f"revision {good} settled again")
            if loop.failed:
                raise StepFailed(f"{loop.failed} requests failed meanwhile: {loop.errors[:3]}")
            return f"{cond['message'][:400]} (client loop: {loop.sent} requests, {loop.failed} failed)"

        await sc.step(
            "a revision the proxy refuses at start is rolled back after CrashLoopBackOff", crash_loop
        )
    except _Abort:  # a step the later ones need failed; it said so
        pass
    except Exception as exc:  # a failure to start, reported as a failed step
        sc.results.append(("the demo ran", False, time.monotonic() - began, f"{type(exc).__name__}: {exc}"))
        print(f"[check] FAIL the demo ran: {type(exc).__name__}: {exc}", flush=True)
    finally:
        stop_loop.set()
        if loop_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(loop_task, 65)
        stopping = time.monotonic()
        await demo.stop()
        print(f"[check] demo stopped in {time.monotonic() - stopping:.1f} s", flush=True)
    code = _report(sc, loop, began)
    if code == 0:  # the logs are worth keeping only when something failed
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(demo.workdir, ignore_errors=True)
    return code


async def _other(sc: Scenario, first: str) -> str | None:
    runs = await sc.settled()
    return runs if runs and runs != first else None


def _report(sc: Scenario, loop: Loop, began: float) -> int:
    ok = bool(sc.results) and all(r[1] for r in sc.results)
    print(
        f"[check] {'PASSED' if ok else 'FAILED'}: {sum(r[1] for r in sc.results)}/{len(sc.results)} steps in "
        f"{time.monotonic() - began:.1f} s; client loop {loop.sent} requests, {loop.failed} failed",
        flush=True,
    )
    return 0 if ok else 1
