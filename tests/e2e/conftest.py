"""The e2e estate: fake model servers behind a real LiteLLM proxy, run on a config from `llmgw render`.

Once per session: start the fake model servers (llmgw.demo.backends, served by
tests/e2e/fakes.py) on free loopback ports, fill their URLs into the manifests
under tests/e2e/estate/, render them with the `llmgw render` CLI in a subprocess
(its output is byte for byte what the operator stores in the gateway's
ConfigMap), and start `litellm --config FILE --port N` on that file
(tests/e2e/proxy.py). The proxy takes 10 to 20 s to start, hence the session
scope; it is always terminated at the end. Its log stays in pytest's temporary
folder (`.../pytest-N/litellm0/litellm.log`). The modules whose gateway differs
from the estate's (other providers, metrics, a cache, a split revision) start
one proxy each, once per module, with the same helper.

LiteLLM lives in a virtualenv of its own (`scripts/install-litellm.sh`;
`LLMGW_LITELLM_VENV` overrides where). Without it the e2e tests are skipped,
except under `CI=true`, where a missing proxy is a failure: CI must not go
green by testing nothing.
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from llmgw.core import estate, pipeline
from llmgw.demo import backends

from . import fakes, processes, proxy

ROOT = Path(__file__).resolve().parents[2]
ESTATE = Path(__file__).resolve().parent / "estate"
INSTALL_SCRIPT = ROOT / "scripts" / "install-litellm.sh"

# The fakes, by the name the estate's URL placeholders use (`$vllm_url`), and the
# backend model ids each one serves (the estate's `backendModel`s).
BACKENDS: dict[str, tuple[str, ...]] = {
    "vllm": ("meta-llama/Llama-3.1-8B-Instruct",),
    "ollama": ("llama3.2:3b",),
    "llamacpp": ("phi-3-mini-4k-instruct",),
    "tgi": ("mistralai/Mistral-7B-Instruct-v0.3",),
}


def litellm_venv() -> Path:
    return Path(os.environ.get("LLMGW_LITELLM_VENV") or ROOT / ".venv-litellm")


@pytest.fixture(scope="session")
def litellm_bin() -> Path:
    binary = litellm_venv() / "bin" / "litellm"
    if not binary.exists():
        hint = f"{binary} is missing: install the LiteLLM proxy with `{INSTALL_SCRIPT.relative_to(ROOT)}`"
        processes.missing(hint)
    return binary


def llmgw_render(folder: Path) -> subprocess.CompletedProcess[str]:
    """`llmgw render FOLDER` in a subprocess, as a user runs it."""
    cli = Path(sys.executable).with_name("llmgw")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "llmgw.cli"]
    return subprocess.run(
        [*command, "render", str(folder)], capture_output=True, text=True, timeout=60, check=False
    )


def pipeline_render(manifests: str) -> pipeline.Outcome:
    """The one gateway of these manifests, rendered as the reconciler does (`estate.build` +
    `pipeline.run`); every object valid, nothing left unresolved."""
    built = estate.build([doc for doc in yaml.safe_load_all(manifests) if doc])
    assert not built.invalid, "\n".join(f"{b.kind} {b.name}: {b.findings}" for b in built.invalid)
    (gateway,) = built.gateways
    outcome = pipeline.run(built, gateway)
    assert not outcome.resolution.findings, outcome.resolution.findings
    return outcome


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, backends.FakeBackend]]:
    """The estate's fake model servers, by name."""
    started = {name: backends.FakeBackend(name, models) for name, models in BACKENDS.items()}
    with fakes.serving(*started.values()):
        yield started


@pytest.fixture(scope="session")
def rendered(servers: dict[str, backends.FakeBackend], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The config `llmgw render` prints for the e2e estate."""
    folder = tmp_path_factory.mktemp("estate")
    urls = {f"{name}_url": fake.url for name, fake in servers.items()}
    for template in sorted(ESTATE.glob("*.yaml")):
        (folder / template.name).write_text(string.Template(template.read_text()).substitute(urls))
    done = llmgw_render(folder)
    assert done.returncode == 0, f"llmgw render failed ({done.returncode}):\n{done.stderr}"
    # Nothing in the estate may be left out: every object is meant to be served.
    assert done.stderr == "", done.stderr
    return done.stdout


@pytest.fixture(scope="session")
def gateway(
    litellm_bin: Path, rendered: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[proxy.Proxy]:
    """A real LiteLLM proxy serving the rendered config, up and live."""
    config = tmp_path_factory.mktemp("litellm") / "config.yaml"
    config.write_text(rendered)
    with proxy.Proxy(litellm_bin, config, proxy.pod_secrets(rendered)) as running:
        yield running


@pytest.fixture(scope="session")
def client(gateway: proxy.Proxy) -> Iterator[httpx.Client]:
    """An HTTP client for the proxy, with the master key."""
    with gateway.client() as c:
        yield c
