"""`llmgw demo --check` passes: the rollout promises, against real LiteLLM pods (e2e, slow).

The scenario itself is `llmgw.demo.check` (it prints each step and its time). It runs
in-process here, so coverage sees the runner, the Service and the session. `make test`
runs `llmgw demo --check` once after pytest and sets LLMGW_DEMO_CHECK_AFTER=1, so that
this test does not run the same two minutes twice.
"""

from __future__ import annotations

import os
import socket

import pytest

from llmgw.demo import check, session
from llmgw.demo.options import DEFAULT_ESTATE

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_demo_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    if os.environ.get("LLMGW_DEMO_CHECK_AFTER") == "1":
        pytest.skip("`make test` runs `llmgw demo --check` itself, after pytest")
    litellm = session.find_litellm()
    if litellm is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and the LiteLLM proxy is not installed (scripts/install-litellm.sh)")
        pytest.skip("the LiteLLM proxy is not installed: scripts/install-litellm.sh")
    code = await check.run(DEFAULT_ESTATE, _free_port(), None, litellm)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 failed" in out
