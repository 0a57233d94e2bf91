"""One running demo: the embedded API, the real operator, the pod runner, the Services, the fakes.

`Demo.start` brings the parts up on loopback in an order where each finds what
it needs: the embedded API (CRDs registered from crds/), a kubeconfig for it, the
fake backends, the operator (`llmgw.runner.operate`, `llmgw run`'s own entry point,
in a thread with its own event loop, as in production kopf owns its loop), the
folder applied, the pod runner, one local Service per gateway, and a small
control server (`llmgw demo get | fail | recover` reach it through the state
file). `Demo.stop` kills every LiteLLM process group first, then the rest, well
within the 10 s a Ctrl-C allows. Logs go to files in the demo's folder; the
terminal gets the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import kmock
from aiohttp import web

from llmgw import options
from llmgw.demo import apiserver, backends, discovery, estate, kubelet, podrunner, summary
from llmgw.demo import options as demo_options
from llmgw.demo.client import Api
from llmgw.demo.processes import World
from llmgw.demo.service import LocalService

log = logging.getLogger("llmgw.demo")

REAL_OLLAMA = "http://127.0.0.1:11434"
ROOT = Path(__file__).resolve().parents[3]
DEFAULT_ESTATE = demo_options.DEFAULT_ESTATE


def state_file() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(runtime) if runtime and Path(runtime).is_dir() else Path(tempfile.gettempdir())
    return folder / f"llmgw-demo-{os.getuid()}.json"


def find_litellm() -> str | None:
    """The pinned proxy: $LLMGW_LITELLM_VENV/bin/litellm, the checkout's .venv-litellm, or PATH."""
    venv = os.environ.get("LLMGW_LITELLM_VENV")
    candidates = [Path(venv) / "bin" / "litellm"] if venv else []
    for candidate in [*candidates, ROOT / ".venv-litellm" / "bin" / "litellm"]:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("litellm")


def kubeconfig_text(url: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "llmgw-demo", "cluster": {"server": url}}],
            "users": [{"name": "llmgw-demo", "user": {"token": "llmgw-demo"}}],
            "contexts": [{"name": "llmgw-demo", "context": {"cluster": "llmgw-demo", "user": "llmgw-demo"}}],
            "current-context": "llmgw-demo",
        },
        indent=2,
    )


class Demo:
    """Everything `llmgw demo` runs, and the handles the check scenario needs."""

    def __init__(
        self,
        folder: Path,
        port: int,
        kubeconfig: Path | None,
        litellm: str,
        *,
        use_real_ollama: bool = True,
        say: Any = print,
    ) -> None:
        self.folder = folder
        self.port = port
        self.litellm = litellm
        self.use_real_ollama = use_real_ollama
        self.say = say
        self.workdir = Path(tempfile.mkdtemp(prefix="llmgw-demo-"))
        self.kubeconfig = kubeconfig or self.workdir / "kubeconfig"
        self.stop_event = asyncio.Event()
        self.world = World()
        self.fakes: dict[tuple[str, str], backends.FakeBackend] = {}
        self.real: set[tuple[str, str]] = set()
        self.services: dict[tuple[str, str], LocalService] = {}
        self.api_url = ""
        self.api: Api | None = None
        self.runner: podrunner.Runner | None = None
        self.applier: estate.Applier | None = None
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[Any]] = []
        self._operator_stop = threading.Event()
        self._operator: threading.Thread | None = None
        self._control: web.AppRunner | None = None
        self.control_port = 0
        self.real_ollama = False
        self.last_applied = ""
        self._environ: dict[str, str | None] = {}
        self._logging: tuple[logging.Handler, int] | None = None

    # -- start --------------------------------------------------------------------------

    async def start(self) -> None:
        self._log_to_files()
        emulator = await self._stack.enter_async_context(discovery.DemoEmulator())
        server = await self._stack.enter_async_context(kmock.Server(emulator, host="127.0.0.1"))
        apiserver.register(emulator)
        discovery.describe(emulator)
        self.api_url = str(server.url).rstrip("/")
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.write_text(kubeconfig_text(self.api_url))
        self.api = Api(self.api_url)
        objects = estate.load(self.folder)
        if self.use_real_ollama:
            self.real_ollama = await _answers(f"{REAL_OLLAMA}/api/tags")
        await self._backends(objects)
        self._start_operator()
        self.applier = estate.Applier(self.api)
        applied = await self.applier.apply(objects)
        self.last_applied = str(applied)
        self.runner = podrunner.Runner(self.api, self.litellm, self.workdir, self.world)
        self._tasks.append(asyncio.create_task(self.runner.run(self.stop_event), name="pod runner"))
        await self._services(objects)
        await self._serve_control()
        state_file().write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "api": self.api_url,
                    "control": f"http://127.0.0.1:{self.control_port}",
                    "kubeconfig": str(self.kubeconfig),
                    "workdir": str(self.workdir),
                }
            )
        )
        self._tasks.append(
            asyncio.create_task(estate.watch(self.folder, self.reapply, self.stop_event), name="watch")
        )

    def _log_to_files(self) -> None:
        handler = logging.FileHandler(self.workdir / "demo.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        self._logging = (handler, root.level)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        for noisy in ("aiohttp.access", "kmock", "kopf"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

    def _start_operator(self) -> None:
        """The real operator, as `llmgw run` starts it (its own thread and loop), on the kubeconfig."""
        from llmgw import runner

        self._environ = {k: os.environ.get(k) for k in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
        os.environ["KUBECONFIG"] = str(self.kubeconfig)
        os.environ.pop("KUBERNETES_SERVICE_HOST", None)
        opts = options.Options(settle_seconds=0.3, max_settle_seconds=3.0)
        ready = threading.Event()

        def main() -> None:
            try:
                asyncio.run(runner.operate(opts, stop_flag=self._operator_stop, ready_flag=ready))
            except BaseException:
                log.exception("the operator stopped")

        self._operator = threading.Thread(target=main, name="llmgw-operator", daemon=True)
        self._operator.start()

    async def _backends(self, objects: Mapping[estate.Key, Mapping[str, Any]]) -> None:
        """A fake per Service a provider names (or the real Ollama), and the names that lead there."""
        wanted: dict[tuple[str, str], set[str]] = {}
        types: dict[tuple[str, str], str] = {}
        for k, obj in objects.items():
            if k[1] != "LLMProvider":
                continue
            spec = obj.get("spec") or {}
            svc = (spec.get("endpoint") or {}).get("service")
            if not svc:
                continue
            key = (str(svc.get("namespace") or k[2]), str(svc.get("name")))
            models = wanted.setdefault(key, set())
            models.update(str(m.get("backendModel") or m.get("name")) for m in spec.get("models") or ())
            types[key] = str(spec.get("type"))
        ports = _service_ports(objects)
        for key, models in sorted(wanted.items()):
            if self.real_ollama and types.get(key) == "ollama":
                self.real.add(key)
                target = REAL_OLLAMA.removeprefix("http://")
            else:
                fake = self.fakes.get(key)
                if fake is None:
                    fake = backends.FakeBackend(key[1], models)
                    await fake.start()
                    self.fakes[key] = fake
                fake.models = models
                target = f"127.0.0.1:{fake.port}"
            for port in ports.get(key, {}).values():
                self.world.rewrite[kubelet.service_host(key[1], key[0], port)] = target

    async def _services(self, objects: Mapping[estate.Key, Mapping[str, Any]]) -> None:
        """A local Service per gateway: --port for the first, the next ports for the others."""
        gateways = sorted((k[2], k[3]) for k in objects if k[1] == "LLMGateway")
        for i, (ns, name) in enumerate(gateways):
            if (ns, name) in self.services:
                continue
            port = self.port + len(self.services) if i else self.port
            service = LocalService(f"{ns}/{name}", port, self._endpoints(ns, name))
            await service.start()
            self.services[(ns, name)] = service

    def _endpoints(self, namespace: str, name: str) -> Any:
        def ready() -> list[Any]:
            assert self.runner is not None
            selector = self.runner.selectors.get((namespace, name))
            return self.runner.endpoints(namespace, selector) if selector else []

        return ready

    async def reapply(self) -> None:
        assert self.applier is not None
        try:
            objects = estate.load(self.folder)
        except estate.EstateError as exc:
            self.say(f"[demo] {exc}; nothing applied")
            return
        await self._backends(objects)
        applied = await self.applier.apply(objects)
        await self._services(objects)
        self.last_applied = str(applied)
        self.say(f"[demo] {time.strftime('%H:%M:%S')} applied {self.folder}: {applied}")

    # -- what it shows ------------------------------------------------------------------

    async def snapshot(self) -> summary.World:
        assert self.api is not None
        api = self.api
        g, p, c, d, pods, secrets = await asyncio.gather(
            api.list("LLMGateway"),
            api.list("LLMProvider"),
            api.list("FallbackChain"),
            api.list("Deployment"),
            api.list("Pod"),
            api.list("Secret"),
        )
        return summary.World(
            gateways=g,
            providers=p,
            chains=c,
            deployments=d,
            pods=pods,
            secrets=secrets,
            ports={k: s.port for k, s in self.services.items()},
            backends=self.backend_words(),
        )

    def backend_words(self) -> dict[str, str]:
        out = {key[1]: f"real Ollama {REAL_OLLAMA}" for key in self.real}
        for key, fake in self.fakes.items():
            out[key[1]] = f"fake {fake.url}" + (" (failing)" if fake.failing else "")
        return out

    def fake(self, name: str) -> backends.FakeBackend | None:
        return next((f for (ns, n), f in self.fakes.items() if name in (n, f"{ns}/{n}")), None)

    async def _serve_control(self) -> None:
        async def get(request: web.Request) -> web.Response:
            return web.Response(text=summary.render(await self.snapshot()) + "\n")

        async def switch(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            fake = self.fake(name)
            if fake is None:
                known = ", ".join(sorted(n for _, n in self.fakes)) or "none"
                return web.Response(status=404, text=f"no fake backend {name} (fake backends: {known})\n")
            fake.failing = request.match_info["what"] == "fail"
            word = "answers 500 to every chat request" if fake.failing else "answers again"
            self.say(f"[demo] fake backend {fake.name} {word}")
            return web.Response(text=f"fake backend {fake.name} {word}\n")

        app = web.Application()
        app.router.add_get("/summary", get)
        app.router.add_post("/{what:fail|recover}/{name}", switch)
        self._control = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._control.setup()
        self.control_port = podrunner.free_port()
        await web.TCPSite(self._control, "127.0.0.1", self.control_port).start()

    # -- stop ---------------------------------------------------------------------------

    async def stop(self) -> None:
        self.stop_event.set()
        if self.runner is not None:
            await asyncio.wait_for(self.runner.stop(), 5)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._operator_stop.set()
        if self._operator is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._operator.join, 4)
        for service in self.services.values():
            await service.close()
        for fake in self.fakes.values():
            await fake.close()
        if self._control is not None:
            await self._control.cleanup()
        if self.api is not None:
            await self.api.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stack.aclose(), 3)
        with contextlib.suppress(OSError, ValueError):
            if json.loads(state_file().read_text()).get("pid") == os.getpid():
                state_file().unlink()
        for name, value in self._environ.items():  # as they were before the operator started
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self._logging is not None:
            handler, level = self._logging
            logging.getLogger().removeHandler(handler)
            logging.getLogger().setLevel(level)
            handler.close()

    def kill_processes(self) -> None:
        """The last resort (atexit): every proxy's process group, at once."""
        if self.runner is not None:
            for worker in self.runner.workers.values():
                worker.kill_now()


def _service_ports(objects: Mapping[estate.Key, Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    out: dict[tuple[str, str], dict[str, int]] = {}
    for k, obj in objects.items():
        if k[1] == "Service":
            ports = (obj.get("spec") or {}).get("ports") or ()
            out[(k[2], k[3])] = {str(p.get("name") or p.get("port")): int(p.get("port")) for p in ports}
    return out


async def _answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.7)) as s, s.get(url) as rsp:
            return rsp.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False
