"""Rollout watching for the reconciler: gather a gateway's rollout snapshot, apply the plan, announce it.

The I/O half of `llmgw.core.rollout`, whose `plan` makes the decisions: this module
reads what it needs from kopf's indexes (the live Deployment, the gateway's pods, its
ConfigMaps and the history on its status), keeps the history the reconciler last
decided (the watch may not show the status it wrote yet), and posts the Events and
metrics of a rollback. It also wakes the reconciler when a revision's deadline passes, since
nothing else might happen in the cluster to do so.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import Callable, Collection, Mapping
from typing import Any

from llmgw import metrics
from llmgw.api.gateway import LLMGateway
from llmgw.core import keys, render, revisions, rollout
from llmgw.core.keys import Key
from llmgw.handlers import events


def pod_summary(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the pods index keeps of a gateway pod: its revision, readiness, start and waiting containers."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ()
        if isinstance(c, Mapping)
    )
    waiting = []
    for cs in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
        if not isinstance(cs, Mapping):
            continue
        state = (cs.get("state") or {}).get("waiting")
        if isinstance(state, Mapping) and state.get("reason"):
            waiting.append(
                [
                    str(cs.get("name", "")),
                    str(state.get("reason")),
                    str(state.get("message") or "")[:300],
                    int(cs.get("restartCount") or 0),
                ]
            )
    return {
        "name": str(meta.get("name", "")),
        "revision": revisions.pod_revision(meta.get("annotations") or {}),
        "ready": ready,
        "waiting": waiting,
        "started": str(status.get("startTime") or ""),
    }


def _pod(row: Mapping[str, Any]) -> rollout.Pod:
    return rollout.Pod(
        name=str(row.get("name", "")),
        revision=str(row.get("revision", "")),
        ready=bool(row.get("ready")),
        waiting=tuple(
            rollout.Waiting(container=str(c), reason=str(r), message=str(m), restarts=int(n))
            for c, r, m, n in row.get("waiting") or ()
        ),
        started=str(row.get("started") or ""),
    )


def stored_revisions(config_maps: Any, key: Key, kept: Collection[str]) -> dict[str, revisions.Stored]:
    """The gateway's revisions that can run again, by revision: those whose ConfigMaps are all
    in `kept` (the ConfigMaps that exist), a split revision's shards included. A shard is part
    of its revision, never one of its own."""
    out: dict[str, revisions.Stored] = {}
    for row in (config_maps.get(key, ()) if config_maps is not None else ()) or ():
        if row.get("name") not in kept:
            continue
        s = revisions.stored(row.get("annotations") or {})
        if s is not None and all(n in kept for n in revisions.names(key[1], s.hash, s.shards)):
            out[s.revision] = s
    return out


class Rollouts:
    """The rollout state of every gateway, as this process last decided it."""

    def __init__(self, poke: Callable[[], None] | None = None) -> None:
        self.poke = poke
        self.histories: dict[tuple[str, str, str], tuple[rollout.Record, ...]] = {}
        self.timers: dict[Key, asyncio.TimerHandle] = {}
        self.plans: dict[tuple[str, str, str], rollout.Plan] = {}

    def plan(
        self,
        gw: LLMGateway,
        status: Mapping[str, Any] | None,
        rendered: render.Rendered,
        deployment: Mapping[str, Any] | None,
        pods: Any,
        config_maps: Any,
        kept: Mapping[str, int],
        now: datetime.datetime | None = None,
    ) -> rollout.Plan:
        """The plan for one gateway; `kept` is the ConfigMaps that exist (name -> sequence)."""
        key = keys.of(gw)
        history = self.histories.get((*key, gw.metadata.uid or ""))
        if history is None:
            history = rollout.history_from_status(status)
        stored = stored_revisions(config_maps, key, kept)
        rows = (pods.get(key, ()) if pods is not None else ()) or ()
        snapshot = rollout.Snapshot(
            wanted=rendered.hash,
            history=history,
            deployment=deployment,
            pods=tuple(_pod(r) for r in list(rows)),
            stored=stored,
            auto_rollback=gw.spec.rollout.auto_rollback,
            deadline_seconds=gw.spec.rollout.progress_deadline_seconds,
            stuck_seconds=gw.spec.rollout.stuck_pod_seconds,
            limit=gw.spec.revision_history_limit,
            now=now or datetime.datetime.now(datetime.UTC),
        )
        plan = rollout.plan(snapshot)
        revision = revisions.short(rendered.hash)
        if plan.run != revision and plan.run not in stored:
            # Nothing to run but the render (the target's ConfigMap went meanwhile).
            return rollout.Plan(run=revision, history=plan.history, condition=plan.condition)
        return plan

    def to_run(
        self, rendered: render.Rendered, plan: rollout.Plan, config_maps: Any, key: Key, shards: int = 0
    ) -> tuple[render.Rendered, int]:
        """The render the Deployment should mount and its shards: the current one (split into
        `shards`), or a revision restored, with all the shards it was stored in."""
        if plan.run == revisions.short(rendered.hash):
            return rendered, shards
        for row in (config_maps.get(key, ()) if config_maps is not None else ()) or ():
            s = revisions.stored(row.get("annotations") or {})
            if s is not None and s.revision == plan.run:
                return rollout.restored(rendered, s), s.shards
        return rendered, shards

    def last(self, gw: LLMGateway) -> rollout.Plan | None:
        """The plan last carried out for a gateway (for a status written after a failed apply)."""
        return self.plans.get((gw.metadata.namespace, gw.metadata.name, gw.metadata.uid or ""))

    def commit(self, gw: LLMGateway, plan: rollout.Plan) -> None:
        """The Deployment now runs `plan.run`: remember the history, announce what happened."""
        key = keys.of(gw)
        self.histories[(*key, gw.metadata.uid or "")] = plan.history
        self.plans[(*key, gw.metadata.uid or "")] = plan
        body = {
            "apiVersion": gw.api_version,
            "kind": gw.kind,
            "metadata": gw.metadata.model_dump(by_alias=True),
        }
        if plan.rolled_back is not None:
            f = plan.rolled_back
            metrics.ROLLBACKS.labels(*key, f.reason).inc()
            events.post(
                body,
                "Warning",
                "RolledBack",
                f"revision {f.revision} failed ({f.reason}: {f.message}); rolled back to revision "
                f"{plan.run}, the last that became available",
            )
        if plan.failed is not None:
            f = plan.failed
            metrics.ROLLOUT_FAILURES.labels(*key, f.reason).inc()
            events.post(
                body, "Warning", "RolloutFailed", f"revision {f.revision} failed ({f.reason}: {f.message})"
            )
        if plan.became_available is not None:
            events.post(body, "Normal", "RevisionAvailable", f"revision {plan.became_available} is available")
        self._wake(key, plan.recheck_after)

    def _wake(self, key: Key, after: float | None) -> None:
        old = self.timers.pop(key, None)
        if old is not None:
            old.cancel()
        if after is None or self.poke is None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop (pure tests)
            self.timers[key] = asyncio.get_running_loop().call_later(after + 0.5, self.poke)

    def forget(self, alive: Collection[Key]) -> None:
        """Drop the state of gateways that are gone (the status of a live one keeps its history)."""
        for state in (self.histories, self.plans):
            for key in [k for k in state if k[:2] not in alive]:
                del state[key]
        for gone in [k for k in self.timers if k not in alive]:
            self.timers.pop(gone).cancel()

    def stop(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
