"""`llmgw demo --check` passes: the rollout promises, against real LiteLLM pods (e2e, slow).

The scenario itself is `llmgw.demo.check` (it prints each step and its time). It runs
in-process here, so coverage sees the runner, the Service and the session. `make test`
runs `llmgw demo --check` once after pytest and sets LLMGW_DEMO_CHECK_AFTER=1, so that
this test does not run the same one and a half minutes twice. The fast tests below
check what the scenario adds to the folder and the ports it asks for.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import yaml

from llmgw import cli
from llmgw.demo import check, estate, session
from llmgw.demo.options import DEFAULT_ESTATE


@pytest.mark.e2e
async def test_the_demo_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    if os.environ.get("LLMGW_DEMO_CHECK_AFTER") == "1":
        pytest.skip("`make test` runs `llmgw demo --check` itself, after pytest")
    litellm = session.find_litellm()
    if litellm is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and the LiteLLM proxy is not installed (scripts/install-litellm.sh)")
        pytest.skip("the LiteLLM proxy is not installed: scripts/install-litellm.sh")
    code = await check.run(DEFAULT_ESTATE, check.free_port(), None, litellm)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 failed" in out


def test_the_second_gateway_is_valid_beside_the_demo_estate(tmp_path: Path) -> None:
    """Step 6's gateway, in the copy of the folder the check runs on, validates as the operator
    would see it, and stays out of the estate's namespaces (its providers are its own)."""
    shutil.copytree(DEFAULT_ESTATE, tmp_path, dirs_exist_ok=True)
    (tmp_path / check.SECOND_FILE).write_text(check.SECOND_ESTATE)
    assert cli.main(["validate", "--strict", str(tmp_path)]) == 0
    docs = [d for d in yaml.safe_load_all(check.SECOND_ESTATE) if d]
    gateway = docs[-1]
    assert (gateway["metadata"]["namespace"], gateway["metadata"]["name"]) == check.SECOND
    assert gateway["spec"]["replicas"] == 1  # one crash-looping surge pod, one that keeps serving
    shipped = estate.load(DEFAULT_ESTATE)
    assert all(k[2] != check.SECOND[0] and k[3] != check.SECOND[0] for k in shipped)
    assert check._first_gateway(tmp_path) == ("demo", "demo")


def test_free_port_leaves_the_next_one_free_for_the_second_service() -> None:
    port = check.free_port()
    for p in (port, port + 1):
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))
