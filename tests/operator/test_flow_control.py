"""`--api-qps auto`, the default: no client-side rate limit where the API server applies API
Priority and Fairness, `options.API_QPS` where it does not; a number given is always honoured."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from harness import Cluster, eventually, running

from llmgw import options
from llmgw.kube import client

pytestmark = pytest.mark.integration


@pytest.fixture
def rates(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The rate each operator started from now on set on its client."""
    set_to: list[float] = []
    throttle = client.Kube.throttle

    def recording(self: client.Kube, qps: float, burst: int, concurrency: int) -> None:
        set_to.append(qps)
        throttle(self, qps, burst, concurrency)

    monkeypatch.setattr(client.Kube, "throttle", recording)
    return set_to


@pytest.mark.parametrize(
    ("flow_control", "given", "rate", "pings"),
    [
        (True, None, 0.0, 1),  # auto, APF: none
        (False, None, options.API_QPS, 1),  # auto, no APF: the fixed default
        (True, 50.0, 50.0, 0),  # given: honoured, APF or not, and nothing asked
        (False, 0.0, 0.0, 0),
    ],
)
async def test_the_client_rate_follows_the_servers_flow_control_unless_given(
    cluster: Cluster, rates: list[float], flow_control: bool, given: float | None, rate: float, pings: int
) -> None:
    emu = cluster.emulator
    if emu is None:
        pytest.skip("sets whether the emulator applies API Priority and Fairness")
    emu.flow_control = flow_control
    opts: Any = options.Options(api_qps=given, settle_seconds=0.1)
    async with contextlib.aclosing(running(opts)) as operator:
        await anext(operator)
        await eventually(lambda: bool(rates), what="the client's rate set")
    assert rates == [rate]
    assert emu.pings == pings
