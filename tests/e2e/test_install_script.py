"""scripts/install-litellm.sh installs the LiteLLM the gateway image runs, and only once.

The version check needs no proxy, so it is not marked e2e: it runs in the fast
suite too, where a version bump that forgets the script is caught first.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from llmgw.api import gateway

from . import conftest


def script_version() -> str:
    found = re.findall(r'^LITELLM_VERSION="([^"]+)"$', conftest.INSTALL_SCRIPT.read_text(), re.MULTILINE)
    assert len(found) == 1, f"{conftest.INSTALL_SCRIPT} must set LITELLM_VERSION once"
    return str(found[0])


def test_script_installs_the_version_of_the_gateway_image() -> None:
    assert script_version() == gateway.LITELLM_VERSION
    assert gateway.DEFAULT_IMAGE.endswith(f":v{gateway.LITELLM_VERSION}")


def test_script_is_executable() -> None:
    assert os.access(conftest.INSTALL_SCRIPT, os.X_OK)


@pytest.mark.e2e
def test_script_does_nothing_when_litellm_is_installed(litellm_bin: object) -> None:
    done = subprocess.run(
        [str(conftest.INSTALL_SCRIPT)],
        env={**os.environ, "LLMGW_LITELLM_VENV": str(conftest.litellm_venv())},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"litellm {gateway.LITELLM_VERSION} is already installed" in done.stdout
