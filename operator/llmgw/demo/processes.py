"""The kubelet's half of the demo's pod runner: one gateway pod as a local LiteLLM process.

A `PodWorker` lives as long as its Pod object: it builds the container's
environment and config folder (`kubelet`), starts the pinned LiteLLM proxy on the
pod's own loopback port, runs the template's startup, readiness and liveness
probes against it, restarts it with a backoff when it exits (CrashLoopBackOff),
and, once the pod is deleted, waits out the preStop delay, sends SIGTERM, and
removes the pod's finalizer when the process is gone. Each write of the pod's
status is what the kubelet would write.

Every proxy runs in a process group of its own and dies with the demo: on Linux,
`prctl(PR_SET_PDEATHSIG, SIGKILL)` in the child before exec, so that even a
`kill -9` of the demo leaves no LiteLLM behind; `stop_all` kills each group on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import datetime
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp

from llmgw.demo import controller, kubelet
from llmgw.demo.client import Api

log = logging.getLogger("llmgw.demo.kubelet")

FINALIZER = "demo.llmgateway.dev/kubelet"
PORT_ANNOTATION = "demo.llmgateway.dev/port"
PR_SET_PDEATHSIG = 1

_prctl: Any = None
if sys.platform.startswith("linux"):  # pragma: no branch
    with contextlib.suppress(OSError, AttributeError):
        _prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up now: nothing to load after fork


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def now() -> str:
    return controller.stamp(datetime.datetime.now(datetime.UTC))


class World:
    """What every worker reads of the embedded API: Secrets and ConfigMaps (the runner refreshes
    them each pass), and the Service name -> loopback address rewrites."""

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.config_maps: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.rewrite: dict[str, str] = {}


class PodWorker:
    """One pod: its process, probes and status, from creation to the removal of its finalizer."""

    def __init__(
        self, api: Api, pod: Mapping[str, Any], world: World, litellm: str, workdir: Path, port: int
    ) -> None:
        meta = pod["metadata"]
        self.api = api
        self.namespace, self.name = str(meta["namespace"]), str(meta["name"])
        self.pod = pod
        self.world = world
        self.litellm = litellm
        self.dir = workdir / f"{self.namespace}_{self.name}"
        self.port = port
        self.container = kubelet.first_container(pod)
        self.state = kubelet.State(waiting=kubelet.CREATING)
        self.start_time = now()
        self.proc: asyncio.subprocess.Process | None = None
        self.deleting = asyncio.Event()
        self.stopped = asyncio.Event()
        self.shutdown = False
        """The demo is stopping: no preStop delay, no grace (kill_now has killed the group)."""
        self._written: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.state.ready and not self.deleting.is_set()

    @property
    def labels(self) -> Mapping[str, str]:
        return (self.pod.get("metadata") or {}).get("labels") or {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pod {self.namespace}/{self.name}")

    async def wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def delete(self) -> None:
        self.deleting.set()

    # -- status -------------------------------------------------------------------------

    async def _set(self, **changes: Any) -> None:
        self.state = dataclasses.replace(self.state, **changes)
        await self._write()

    async def _write(self) -> None:
        stamp = now()
        status = kubelet.pod_status(
            kubelet.first_container(self.pod).get("name", "litellm"),
            str(self.container.get("image", "")),
            self.state,
            self.start_time,
            stamp,
        )
        comparable = _without_times(status)
        if comparable == self._written:
            return
        try:
            await self.api.patch("Pod", self.namespace, self.name, {"status": status}, sub="status")
            self._written = comparable
        except Exception as exc:  # the pod may be gone; the next change writes again
            log.debug("pod %s/%s: status not written: %s", self.namespace, self.name, exc)

    # -- the life of the pod ------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._live()
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("pod %s/%s: the runner failed", self.namespace, self.name)
        finally:
            await self._terminate()
            self.stopped.set()
            if not self.shutdown:  # the kubelet is done with it: the API server may remove it now
                with contextlib.suppress(Exception):
                    await self.api.patch("Pod", self.namespace, self.name, {"metadata": {"finalizers": []}})

    async def _live(self) -> None:
        while not self.deleting.is_set():
            try:
                kubelet.check_image(self.container)
                env = self._env()
                self._write_files()
            except kubelet.ConfigError as exc:
                if exc.reason != self.state.waiting:
                    log.info("pod %s/%s: %s: %s", self.namespace, self.name, exc.reason, exc.message)
                await self._set(waiting=exc.reason, message=exc.message, ready=False, started=False)
                await self._sleep(1.0)
                continue
            exit_code = await self._run_once(env)
            if self.deleting.is_set():
                return
            log.info("pod %s/%s: the proxy exited with %s", self.namespace, self.name, exit_code)
            finished = now()
            delay = kubelet.backoff_seconds(self.state.restarts)
            await self._set(
                waiting=kubelet.CRASH_LOOP,
                message=(
                    f"back-off {delay:g}s restarting failed container="
                    f"{self.container.get('name', 'litellm')} pod={self.name}_{self.namespace}"
                ),
                ready=False,
                started=False,
                last_exit=exit_code,
                last_started=self.state.started_at,
                last_finished=finished,
            )
            await self._sleep(delay)
            if not self.deleting.is_set():
                await self._set(restarts=self.state.restarts + 1)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.deleting.wait(), seconds)

    def _env(self) -> dict[str, str]:
        env = kubelet.resolve_env(self.container, self.namespace, self.world.secrets, self.world.config_maps)
        mounts = self._mounts()
        for key, value in list(env.items()):
            for mount, local in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
                if value == mount or value.startswith(mount.rstrip("/") + "/"):
                    env[key] = str(local) + value[len(mount.rstrip("/")) :]
                    break
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")}
        loopback = "127.0.0.1,localhost"
        return {**base, "TMPDIR": str(self.dir / "tmp"), "NO_PROXY": loopback, "no_proxy": loopback, **env}

    def _mounts(self) -> dict[str, Path]:
        """mountPath -> the pod's local folder for each volume mount."""
        out: dict[str, Path] = {}
        for m in self.container.get("volumeMounts") or ():
            out[str(m.get("mountPath"))] = self.dir / str(m.get("name"))
        return out

    def _write_files(self) -> None:
        volumes = {str(v.get("name")): v for v in (self.pod.get("spec") or {}).get("volumes") or ()}
        for local in self._mounts().values():
            volume = volumes.get(local.name, {})
            local.mkdir(parents=True, exist_ok=True)
            if kubelet.volume_sources(volume):
                files = kubelet.volume_files(
                    volume, self.namespace, self.world.config_maps, self.world.rewrite
                )
                for key, text in files.items():
                    (local / key).write_text(text)
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)

    def _command(self) -> list[str]:
        mounts = {m: p for m, p in self._mounts().items() if p.name == "config"}
        mount, local = next(iter(mounts.items()), ("/etc/litellm", self.dir / "config"))
        return kubelet.command(self.container, self.litellm, str(local), mount, self.port)

    async def _run_once(self, env: Mapping[str, str]) -> int:
        """Start the proxy, probe it until it exits or the pod is deleted; its exit code."""
        self.dir.mkdir(parents=True, exist_ok=True)
        logfile = (self.dir / "litellm.log").open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self._command(),
                env=dict(env),
                cwd=str(self.dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logfile,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            logfile.close()
        log.info(
            "pod %s/%s: started %s (pid %d, port %d)",
            self.namespace,
            self.name,
            self.litellm,
            self.proc.pid,
            self.port,
        )
        await self._set(waiting="", message="", started_at=now(), ready=False, started=False)
        probing = asyncio.create_task(self._probe(self.proc))
        exited = asyncio.create_task(self.proc.wait())
        deleted = asyncio.create_task(self.deleting.wait())
        try:
            await asyncio.wait({exited, deleted, probing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (probing, deleted):
                t.cancel()
        if self.deleting.is_set():
            exited.cancel()
            return 0
        if not exited.done():  # the probes killed it (liveness or startup failed)
            await self._kill(self.proc, grace=float(self._grace()))
        return await exited if exited.done() and not exited.cancelled() else -1

    async def _probe(self, proc: asyncio.subprocess.Process) -> None:
        """Startup first; then readiness and liveness. Returns when the container must be killed."""
        startup = kubelet.probe(self.container, "startupProbe")
        readiness = kubelet.probe(self.container, "readinessProbe")
        liveness = kubelet.probe(self.container, "livenessProbe")
        port_of = {
            kubelet.container_port(self.container, p.get("containerPort", 0)): self.port
            for p in self.container.get("ports") or ()
        }
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

            async def check(p: kubelet.Probe) -> bool:
                url = f"http://127.0.0.1:{port_of.get(p.port, p.port)}{p.path}"
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=p.timeout)) as rsp:
                        return 200 <= rsp.status < 400
                except (aiohttp.ClientError, TimeoutError, OSError):
                    return False

            if startup is not None:
                await asyncio.sleep(startup.initial_delay)
                failures = 0
                while not await check(startup):
                    failures += 1
                    if failures >= startup.failure_threshold:
                        log.info(
                            "pod %s/%s: startup probe failed %d times", self.namespace, self.name, failures
                        )
                        return
                    await asyncio.sleep(startup.period)
            await self._set(started=True)
            await asyncio.gather(
                self._loop(readiness, check, self._on_readiness),
                self._loop(liveness, check, None),
            )

    async def _on_readiness(self, ok: bool) -> None:
        if ok != self.state.ready:
            await self._set(ready=ok)

    async def _loop(
        self,
        p: kubelet.Probe | None,
        check: Callable[[kubelet.Probe], Awaitable[bool]],
        on_result: Callable[[bool], Awaitable[None]] | None,
    ) -> None:
        """One probe's loop; returns (ending the probing) when a liveness probe fails for good."""
        if p is None:
            if on_result is not None:
                await on_result(True)
            await asyncio.Event().wait()
            return
        await asyncio.sleep(p.initial_delay)
        failures = successes = 0
        while True:
            ok = await check(p)
            failures, successes = (0, successes + 1) if ok else (failures + 1, 0)
            if on_result is not None:
                if ok and successes >= p.success_threshold:
                    await on_result(True)
                elif not ok and failures >= p.failure_threshold:
                    await on_result(False)
            elif failures >= p.failure_threshold:
                log.info("pod %s/%s: liveness probe failed %d times", self.namespace, self.name, failures)
                return
            await asyncio.sleep(p.period)

    def _grace(self) -> int:
        return int((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds") or 30)

    async def _terminate(self) -> None:
        """The pod is deleted: not ready at once, the preStop delay, SIGTERM, SIGKILL after the grace."""
        if not self.shutdown:
            await self._set(ready=False)
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        if self.shutdown:
            signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)
            return
        grace = float(self._grace())
        began = time.monotonic()
        delay = min(kubelet.pre_stop_seconds(self.container), grace)
        log.info("pod %s/%s: deleted; preStop %gs, then SIGTERM", self.namespace, self.name, delay)
        if delay:
            await self._drain(delay)
        await self._kill(proc, grace=max(grace - (time.monotonic() - began), 2.0))

    async def _drain(self, delay: float) -> None:
        """preStop: wait `delay` seconds (the Service already sends this pod nothing new)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), delay)

    async def _kill(self, proc: asyncio.subprocess.Process, grace: float) -> None:
        signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)
        signal_group(proc.pid, signal.SIGKILL)  # whatever it left in its group

    def kill_now(self) -> None:
        """On the demo's exit: the whole process group, at once."""
        self.shutdown = True
        if self.proc is not None and self.proc.returncode is None:
            signal_group(self.proc.pid, signal.SIGKILL)


def signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _without_times(status: Mapping[str, Any]) -> dict[str, Any]:
    """A status without its timestamps, to tell a change from a rewrite of the same."""
    conds = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions") or ()
    ]
    return {**status, "conditions": conds}
