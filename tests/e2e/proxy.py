"""A real LiteLLM proxy for the e2e tests: `litellm --config FILE`, waited for, terminated.

Every e2e proxy is started here, on a rendered config and the environment a pod of the
gateway's Deployment would get: the variables of the Secrets the render lists (the
harness plays the kubelet, with a dummy value for each and `MASTER_KEY` for the master
key), what the test adds, and what no test may go without: LiteLLM's own cost map (it
would download one at start, and there is no network here, nor in many clusters) and no
HTTP proxy from the environment for loopback, where the fakes are. A proxy is live when
`GET /health/liveliness` answers 200; it takes 10 to 30 s to get there on 2 cores, so a
module starts its proxy once (conftest.py's serves the whole session). Its log is kept
next to its config, and shown when it does not start.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmgw.core import render
from ports import free_port

from . import processes

MASTER_KEY = "sk-test"
START_TIMEOUT_S = 90.0
LOOPBACK = "127.0.0.1,localhost"

# `#   VAR: Secret NAME, key KEY` in the rendered config's header.
_ENV_LINE = re.compile(r"^#\s+([A-Z_][A-Z0-9_]*): Secret (\S+), key (\S+)$")


def header_secrets(config: str) -> dict[str, tuple[str, str]]:
    """The Secret-backed variables a rendered config's header lists: VAR -> (Secret, key)."""
    listed: dict[str, tuple[str, str]] = {}
    for line in config.splitlines():
        if not line.startswith("#"):
            break
        match = _ENV_LINE.match(line)
        if match:
            var, secret, key = match.groups()
            listed[var] = (secret, key)
    return listed


def dummy(secret: str, key: str) -> str:
    """The value the harness gives for a Secret's key."""
    return f"dummy-{secret}-{key}"


def pod_secrets(config: str, env: Iterable[render.EnvVar] | None = None) -> dict[str, str]:
    """The Secret-backed variables of a pod on this config: the master key, a dummy for the rest.

    `env`, a render's list of them, must be what the config's header lists.
    """
    listed = header_secrets(config)
    assert render.MASTER_KEY_ENV in listed, "the header must list the master key's variable"
    if env is not None:
        assert {e.name for e in env} == listed.keys(), "the header lists every variable of the render"
    return {var: MASTER_KEY if var == render.MASTER_KEY_ENV else dummy(*ref) for var, ref in listed.items()}


class Proxy:
    """One `litellm --config CONFIG` on a free loopback port; `start` blocks until it is live.

    `with Proxy(...) as running:` starts it for the block and terminates it at its end.
    """

    def __init__(
        self,
        binary: Path,
        config: Path,
        variables: Mapping[str, str],
        *,
        inherit: Mapping[str, str] | None = None,
        log: Path | None = None,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        self.binary = binary
        self.config = config
        self.variables = dict(variables)
        """What the test gave it on top of the inherited environment."""
        self.env = {
            **(os.environ if inherit is None else inherit),
            **self.variables,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "NO_PROXY": LOOPBACK,
            "no_proxy": LOOPBACK,
        }
        self.log = log or config.parent / "litellm.log"
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started_s: float | None = None
        """Seconds from its start until it was live."""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            str(self.binary),
            "--config",
            str(self.config),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        began = time.monotonic()
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log.parent,
            )
        self._wait_live(self._proc)
        self.started_s = time.monotonic() - began

    def _wait_live(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    pytest.fail(
                        f"litellm exited with {proc.returncode} before it was live; its log:\n{self.tail()}",
                        pytrace=False,
                    )
                try:
                    if client.get(f"{self.url}/health/liveliness").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        pytest.fail(
            f"litellm was not live at {self.url}/health/liveliness within {self.start_timeout:.0f} s; "
            f"its log:\n{self.tail()}",
            pytrace=False,
        )

    def close(self) -> None:
        """Terminate it (killed if it does not stop); nothing when it was not started."""
        proc, self._proc = self._proc, None
        if proc is not None:
            processes.stop(proc)

    def tail(self) -> str:
        return processes.tail(self.log)

    def __enter__(self) -> Proxy:
        """Started and live for the block; always terminated at its end."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def client(self, *, key: str | None = MASTER_KEY, timeout: float = 30.0, **options: Any) -> httpx.Client:
        """An HTTP client for it, with the master key (`key=None`: with none)."""
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, trust_env=False, **options)
