"""`llmgw demo [DIR] | get | fail NAME | recover NAME | --check`: the demo's command line.

`llmgw demo` runs the whole system on this machine (see `session`) and prints,
whenever it changes, what `kubectl get llm` would answer and how to try the
gateway; `get`, `fail` and `recover` reach a running demo from another terminal
through its state file; `--check` runs the scenario of `check` and exits 0 or 1.
Ctrl-C (or SIGTERM) stops everything the demo started within 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from llmgw.demo import options as demo_options
from llmgw.demo import session, summary

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
INSTALL_HINT = (
    "run `make demo` (it installs LiteLLM with scripts/install-litellm.sh) or set LLMGW_LITELLM_VENV"
)


def main(args: argparse.Namespace) -> int:
    words: list[str] = list(args.target or [])
    if words and words[0] == "get":
        return asyncio.run(_control("GET", "/summary"))
    if words and words[0] in ("fail", "recover"):
        if len(words) != 2:
            print(
                f"llmgw demo {words[0]}: name one fake backend, e.g. `llmgw demo {words[0]} vllm`",
                file=sys.stderr,
            )
            return EXIT_USAGE
        return asyncio.run(_control("POST", f"/{words[0]}/{words[1]}"))
    if len(words) > 1:
        print("llmgw demo: one DIR at most (or get | fail NAME | recover NAME)", file=sys.stderr)
        return EXIT_USAGE
    folder = Path(words[0]) if words else session.DEFAULT_ESTATE
    if not folder.is_dir():
        print(f"llmgw demo: {folder} is not a folder of manifests", file=sys.stderr)
        return EXIT_USAGE
    litellm = session.find_litellm()
    if litellm is None:
        print(f"llmgw demo: the LiteLLM proxy is not installed; {INSTALL_HINT}", file=sys.stderr)
        return EXIT_USAGE
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else None
    if args.check:
        from llmgw.demo import check

        port = args.port if args.port is not None else check.free_port()
        return asyncio.run(check.run(folder, port, kubeconfig, litellm))
    port = args.port if args.port is not None else demo_options.DEFAULT_PORT
    return asyncio.run(interactive(folder, port, kubeconfig, litellm))


async def _control(method: str, path: str) -> int:
    state_path = session.state_file()
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        print(f"llmgw demo: no demo is running (no state file {state_path}); start one with `llmgw demo`")
        return EXIT_FAILED
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as s,
            s.request(method, state["control"] + path) as rsp,
        ):
            sys.stdout.write(await rsp.text())
            return EXIT_OK if rsp.status == 200 else EXIT_FAILED
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        print(f"llmgw demo: the demo of {state_path} does not answer ({exc}); is it still running?")
        return EXIT_FAILED


SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def _no_signals() -> None:
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(sig)


def kubectl_line(demo: session.Demo) -> str:
    where = shutil.which("kubectl")
    line = f"export KUBECONFIG={demo.kubeconfig}"
    if where is None:
        return f"{line}   # kubectl is not on PATH; `kubectl get` works against this API once it is"
    return f"{line}   # then: kubectl get llm -A; kubectl get deploy,rs,pods -A (reads only)"


async def interactive(
    folder: Path,
    port: int,
    kubeconfig: Path | None,
    litellm: str,
    started: Callable[[session.Demo], None] | None = None,
) -> int:
    """Run the demo until Ctrl-C (or `demo.stop_event`; `started` is given the demo once up)."""
    began = time.monotonic()
    demo = session.Demo(folder, port, kubeconfig, litellm)
    atexit.register(demo.kill_processes)
    _signals(demo.stop_event)
    try:
        await demo.start()
    except OSError as exc:
        print(f"llmgw demo: cannot start: {exc}", file=sys.stderr)
        await demo.stop()
        return EXIT_FAILED
    say = print
    say(f"llmgw demo: the operator's main job, embedded (logs and pods' folders in {demo.workdir})")
    say(f"  Kubernetes API   {demo.api_url} (embedded; kubeconfig {demo.kubeconfig})")
    say(f"  {kubectl_line(demo)}")
    say(f"  estate           {folder} (applied: {demo.last_applied}); edit it and the demo re-applies it")
    for name, words in sorted(demo.backend_words().items()):
        say(f"  backend {name:<8} {words}")
    if demo.real_ollama:
        say(f"  a real Ollama answers on {session.REAL_OLLAMA}: the estate's Ollama provider goes to it")
    for (ns, name), service in sorted(demo.services.items()):
        say(f"  Service {ns}/{name} on 127.0.0.1:{service.port}")
    say("  llmgw demo get | llmgw demo fail vllm | llmgw demo recover vllm   (from another terminal)")
    say("  Ctrl-C stops everything.")
    if started is not None:
        started(demo)
    ready_at: float | None = None
    shown = ""
    last_shown = 0.0
    while not demo.stop_event.is_set():
        world = await demo.snapshot()
        if (
            ready_at is None
            and world.gateways
            and all(summary.condition(g, "Ready").get("status") == "True" for g in world.gateways)
        ):
            ready_at = time.monotonic()
            say(f"[demo] every gateway is Ready, {ready_at - began:.1f} s after the start")
        text = summary.render(world)
        settled = all((g.get("status") or {}).get("revision") for g in world.gateways)
        if settled and text != shown and time.monotonic() - last_shown > 2.0:
            say(f"\n--- {time.strftime('%H:%M:%S')} ---\n{text}")
            shown, last_shown = text, time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(demo.stop_event.wait(), 1.0)
    stopping = time.monotonic()
    say("\n[demo] stopping ...")
    await demo.stop()
    _no_signals()
    say(f"[demo] stopped in {time.monotonic() - stopping:.1f} s; no LiteLLM process left")
    return EXIT_OK
