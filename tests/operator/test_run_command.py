"""`llmgw run` as a user starts it: a process, a kubeconfig, JSON logs, metrics and liveness."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import pytest
from harness import Cluster, eventually, gateway, provider

from ports import free_port

pytestmark = pytest.mark.integration


async def test_llmgw_run_serves_metrics_liveness_and_reconciles(cluster: Cluster) -> None:
    metrics_port, health_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmgw.cli",
            "run",
            "--metrics-port",
            str(metrics_port),
            "--health-port",
            str(health_port),
            "--settle-seconds",
            "0.2",
            "--log-format",
            "json",
        ],
        env={**os.environ, "PYTHONSAFEPATH": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        await cluster.apply(provider("vllm", ["llama"]))
        await cluster.apply(gateway())
        await eventually(lambda: cluster.get("Deployment", "ai", "gw"), timeout=30, what="Deployment")
        async with httpx.AsyncClient() as http:
            health = await eventually(
                lambda: _get(http, f"http://127.0.0.1:{health_port}/healthz"), timeout=10, what="liveness"
            )
            assert health.status_code == 200
            text = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert 'llmgw_rollouts_total{gateway="gw",namespace="ai"} 1.0' in text
        assert "llmgw_reconcile_duration_seconds_bucket" in text
        assert 'llmgw_gateway_revision_info{gateway="gw"' in text
    finally:
        proc.terminate()
        out, _ = await asyncio.get_running_loop().run_in_executor(None, proc.communicate, None, 20)
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "no log output"
    for line in lines:
        json.loads(line)  # every log line is a JSON object
    assert proc.returncode == 0, out[-2000:]


async def _get(http: httpx.AsyncClient, url: str) -> httpx.Response | None:
    try:
        return await http.get(url)
    except httpx.HTTPError:
        return None
