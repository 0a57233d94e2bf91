"""`llmgw run`: the operator process — logging, metrics, liveness, and kopf's loop."""

from __future__ import annotations

import argparse
import asyncio
import threading
from typing import Any

import kopf

from llmgw import metrics
from llmgw.handlers import registry
from llmgw.kube.client import Kube


def options(args: argparse.Namespace) -> registry.Options:
    return registry.Options(
        namespaces=tuple(args.namespace),
        settle_seconds=args.settle_seconds,
        max_settle_seconds=max(10 * args.settle_seconds, 5.0),
        watch_secret_versions=args.watch_secret_versions,
        probe_interval_seconds=args.probe_interval_seconds,
    )


def run(args: argparse.Namespace) -> int:
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL,
        log_refkey="object" if args.log_format == "json" else None,
    )
    metrics.serve(args.metrics_port)
    asyncio.run(operate(options(args), liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz"))
    return 0


async def operate(
    opts: registry.Options,
    *,
    liveness_endpoint: str | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    kube_factory: Any = None,
) -> None:
    """Run the operator until stopped; tests call this, `llmgw run` too."""
    memo = kopf.Memo(kube_factory=kube_factory or Kube.connect)
    await kopf.operator(
        registry=registry.build(opts),
        clusterwide=not opts.namespaces,
        namespaces=list(opts.namespaces),
        standalone=True,
        liveness_endpoint=liveness_endpoint,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        memo=memo,
    )
