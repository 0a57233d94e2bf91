"""The e2e estate: fake model servers behind a real LiteLLM proxy, run on a config from `llmgw render`.

Once per session: start the fakes (tests/e2e/fakes.py) on free loopback ports,
fill their URLs into the manifests under tests/e2e/estate/, render them with
the `llmgw render` CLI in a subprocess (its output is byte for byte what the
operator stores in the gateway's ConfigMap), and start
`litellm --config FILE --port N` on that file. The proxy takes about 12 s to
start, hence the session scope; it is always terminated at the end. Its log
stays in pytest's temporary folder (`.../pytest-N/litellm0/litellm.log`).

LiteLLM lives in a virtualenv of its own (`scripts/install-litellm.sh`;
`LLMGW_LITELLM_VENV` overrides where). Without it the e2e tests are skipped,
except under `CI=true`, where a missing proxy is a failure: CI must not go
green by testing nothing.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from . import fakes

ROOT = Path(__file__).resolve().parents[2]
ESTATE = Path(__file__).resolve().parent / "estate"
INSTALL_SCRIPT = ROOT / "scripts" / "install-litellm.sh"
MASTER_KEY = "sk-test"
START_TIMEOUT_S = 90.0

# The fakes, by the name the estate's URL placeholders use (`$vllm_url`), and the
# backend model ids each one serves (the estate's `backendModel`s).
BACKENDS: dict[str, tuple[str, ...]] = {
    "vllm": ("meta-llama/Llama-3.1-8B-Instruct",),
    "ollama": ("llama3.2:3b",),
    "llamacpp": ("phi-3-mini-4k-instruct",),
    "tgi": ("mistralai/Mistral-7B-Instruct-v0.3",),
}

# `#   VAR: Secret NAME, key KEY` in the rendered config's header.
_ENV_LINE = re.compile(r"^#\s+([A-Z_][A-Z0-9_]*): Secret (\S+), key (\S+)$")


def litellm_venv() -> Path:
    return Path(os.environ.get("LLMGW_LITELLM_VENV") or ROOT / ".venv-litellm")


@dataclasses.dataclass(frozen=True)
class Gateway:
    """The running proxy and what it was started with."""

    url: str
    config: str  # the rendered config text, as `llmgw render` printed it
    env: dict[str, str]  # the Secret-backed variables of the header, with the dummy values given
    log: Path


@pytest.fixture(scope="session")
def litellm_bin() -> Path:
    binary = litellm_venv() / "bin" / "litellm"
    if not binary.exists():
        hint = f"{binary} is missing: install the LiteLLM proxy with `{INSTALL_SCRIPT.relative_to(ROOT)}`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {hint}", pytrace=False)
        pytest.skip(hint)
    return binary


@pytest.fixture(scope="session")
def backends() -> Iterator[dict[str, fakes.FakeBackend]]:
    started: dict[str, fakes.FakeBackend] = {}
    try:
        for name, models in BACKENDS.items():
            started[name] = fakes.FakeBackend(name, models)
        yield started
    finally:
        for fake in started.values():
            fake.close()


@pytest.fixture(scope="session")
def rendered(backends: dict[str, fakes.FakeBackend], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The config `llmgw render` prints for the e2e estate."""
    estate = tmp_path_factory.mktemp("estate")
    urls = {f"{name}_url": fake.url for name, fake in backends.items()}
    for template in sorted(ESTATE.glob("*.yaml")):
        (estate / template.name).write_text(string.Template(template.read_text()).substitute(urls))
    cli = Path(sys.executable).with_name("llmgw")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "llmgw.cli"]
    done = subprocess.run(
        [*command, "render", str(estate)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"llmgw render failed ({done.returncode}):\n{done.stderr}"
    # Nothing in the estate may be left out: every object is meant to be served.
    assert done.stderr == "", done.stderr
    return done.stdout


def secret_env(config: str) -> dict[str, str]:
    """A dummy value for every Secret-backed variable the config header lists."""
    env: dict[str, str] = {}
    for line in config.splitlines():
        if not line.startswith("#"):
            break
        match = _ENV_LINE.match(line)
        if match:
            var, secret, key = match.groups()
            env[var] = f"dummy-{secret}-{key}"
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def gateway(litellm_bin: Path, rendered: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A real LiteLLM proxy serving the rendered config, up and live."""
    work = tmp_path_factory.mktemp("litellm")
    config = work / "config.yaml"
    config.write_text(rendered)
    env_vars = secret_env(rendered)
    assert "LITELLM_MASTER_KEY" in env_vars, "the header must list the master key's variable"
    env_vars["LITELLM_MASTER_KEY"] = MASTER_KEY
    env = {
        **os.environ,
        **env_vars,
        # No network here (nor in many clusters): use the cost map shipped in the package.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        # The fakes are on loopback; never send that through a proxy from the environment.
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work / "litellm.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(litellm_bin), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
        try:
            _wait_live(proc, url, log_path)
            yield Gateway(url=url, config=rendered, env=env_vars, log=log_path)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def _wait_live(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"litellm exited with {proc.returncode} before it was live; its log:\n{_tail(log_path)}",
                    pytrace=False,
                )
            try:
                if client.get(f"{url}/health/liveliness").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
    pytest.fail(
        f"litellm was not live at {url}/health/liveliness within {START_TIMEOUT_S:.0f} s; "
        f"its log:\n{_tail(log_path)}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    """An HTTP client for the proxy, with the master key."""
    with httpx.Client(
        base_url=gateway.url,
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=30.0,
        trust_env=False,
    ) as c:
        yield c
