"""The kopf registry of llmgw: every handler the operator runs, by what it is for.

Level-triggered: no per-field or create/update handlers. Every event on any
input updates an index (`indexes`) and pokes the one reconciler (`pokes`), which
re-renders every gateway's whole config from the indexes. kopf starts event
handlers only once all its indexes are filled; the kinds that come by the thousand
are the operator's own watches (`watches`, started at startup), and the first pass
waits for both. `lifecycle` starts and stops the reconciler; with leader election
the Lease's events are the heartbeat of this replica's watches; with the webhook,
`admission` adds its validating handlers.
"""

from __future__ import annotations

from typing import Any

import kopf

from llmgw import options
from llmgw.handlers import admission, indexes, lifecycle, pokes, relisting, toggles


def build(opts: options.Options) -> kopf.OperatorRegistry:
    relisting.install()  # objects deleted while a watch lists again (410 Gone) leave the indexes
    toggles.install()  # kopf waits for its indexes at start in linear time, not quadratic
    reg = kopf.OperatorRegistry()
    reviewer = admission.register(reg, opts.webhook_failure_policy) if opts.webhook else None
    lifecycle.register(reg, opts, reviewer)
    indexes.register(reg, opts)
    if opts.leader_election:
        _heartbeat(reg, opts)
    pokes.register(reg, opts)
    return reg


def _heartbeat(reg: kopf.OperatorRegistry, opts: options.Options) -> None:
    """Every renewal of the Lease seen through the watch says this replica's view is fresh."""

    @kopf.on.event("coordination.k8s.io", "v1", "leases", registry=reg, id="lease-heartbeat")
    async def lease_heartbeat(memo: kopf.Memo, body: kopf.Body, **_: Any) -> None:
        elector = lifecycle.elector(memo)
        if elector is not None and indexes.key(body) == (opts.lease_namespace, opts.lease_name):
            elector.observed()
