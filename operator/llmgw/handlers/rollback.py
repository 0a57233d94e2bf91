"""Rollout watching for the reconciler: gather a gateway's rollout snapshot, apply the plan, announce it.

The decisions are `llmgw.core.rollout.plan`; this module reads what it needs from
kopf's indexes (the live Deployment, the gateway's pods, its ConfigMaps and the
history on its status), keeps the history the reconciler last decided (the watch
may not show the status it wrote yet), and posts the Events and metrics of a
rollback. It also wakes the reconciler when a revision's deadline passes, since
nothing else might happen in the cluster to do so.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import kopf
from kopf._core.engines import posting  # the Event queue's context variables (kopf 1.45)

from llmgw import metrics
from llmgw.api.gateway import LLMGateway
from llmgw.core import desired, render, rollout

Key = tuple[str, str]


def pod_summary(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the pods index keeps of a gateway pod: its revision, readiness and waiting containers."""
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
        "revision": rollout.short(str((meta.get("annotations") or {}).get(desired.CONFIG_HASH, ""))),
        "ready": ready,
        "waiting": waiting,
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
    )


class Rollbacks:
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
        key = (gw.metadata.namespace, gw.metadata.name)
        history = self.histories.get((*key, gw.metadata.uid or ""))
        if history is None:
            history = rollout.history_from_status(status)
        stored: dict[str, rollout.Stored] = {}
        for row in (config_maps.get(key, ()) if config_maps is not None else ()) or ():
            if row.get("name") not in kept:
                continue
            s = rollout.stored(row["name"], row.get("annotations") or {}, desired.CONFIG_HASH, desired.ENV)
            if s is not None:
                stored[s.revision] = s
        rows = (pods.get(key, ()) if pods is not None else ()) or ()
        snapshot = rollout.Snapshot(
            wanted=rendered.hash,
            history=history,
            deployment=deployment,
            pods=tuple(_pod(r) for r in list(rows)),
            stored=stored,
            auto_rollback=gw.spec.rollout.auto_rollback,
            deadline_seconds=gw.spec.rollout.progress_deadline_seconds,
            limit=gw.spec.revision_history_limit,
            now=now or datetime.datetime.now(datetime.UTC),
        )
        plan = rollout.plan(snapshot, desired.CONFIG_HASH)
        if plan.run != rendered.short_hash and plan.run not in stored:
            # Nothing to run but the render (the target's ConfigMap went meanwhile).
            return rollout.Plan(run=rendered.short_hash, history=plan.history, condition=plan.condition)
        return plan

    def to_run(
        self, rendered: render.Rendered, plan: rollout.Plan, config_maps: Any, key: Key
    ) -> render.Rendered:
        """The render the Deployment should mount: the current one, or a revision restored."""
        if plan.run == rendered.short_hash:
            return rendered
        for row in (config_maps.get(key, ()) if config_maps is not None else ()) or ():
            s = rollout.stored(row["name"], row.get("annotations") or {}, desired.CONFIG_HASH, desired.ENV)
            if s is not None and s.revision == plan.run:
                return rollout.restored(rendered, s)
        return rendered

    def last(self, gw: LLMGateway) -> rollout.Plan | None:
        """The plan last carried out for a gateway (for a status written after a failed apply)."""
        return self.plans.get((gw.metadata.namespace, gw.metadata.name, gw.metadata.uid or ""))

    def commit(self, gw: LLMGateway, plan: rollout.Plan) -> None:
        """The Deployment now runs `plan.run`: remember the history, announce what happened."""
        key = (gw.metadata.namespace, gw.metadata.name)
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
            post_event(
                body,
                "Warning",
                "RolledBack",
                f"revision {f.revision} failed ({f.reason}: {f.message}); rolled back to revision "
                f"{plan.run}, the last that became available",
            )
        if plan.failed is not None:
            f = plan.failed
            metrics.ROLLOUT_FAILURES.labels(*key, f.reason).inc()
            post_event(
                body, "Warning", "RolloutFailed", f"revision {f.revision} failed ({f.reason}: {f.message})"
            )
        if plan.became_available is not None:
            post_event(body, "Normal", "RevisionAvailable", f"revision {plan.became_available} is available")
        self._wake(key, plan.recheck_after)

    def _wake(self, key: Key, after: float | None) -> None:
        old = self.timers.pop(key, None)
        if old is not None:
            old.cancel()
        if after is None or self.poke is None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop (pure tests)
            self.timers[key] = asyncio.get_running_loop().call_later(after + 0.5, self.poke)

    def forget(self, alive: set[Key]) -> None:
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


_QUEUES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def adopt_event_queue() -> None:
    """Keep kopf's Event queue of this loop; call from any kopf handler.

    kopf (1.45) posts `kopf.event` through a queue that it puts in a context
    variable of each object's processing task only; the reconciler runs in a task
    of its own, started at startup, where the variable is unset and `kopf.event`
    fails. A handler hands the queue over here, and `post_event` sets it in the
    reconciler's context before posting.
    """
    with contextlib.suppress(LookupError, RuntimeError):
        _QUEUES[asyncio.get_running_loop()] = posting.event_queue_var.get()


def post_event(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    """An Event on a gateway, provider or chain; best effort (Events are not state)."""
    raw: Any = dict(body)
    with contextlib.suppress(Exception):
        try:
            posting.event_queue_var.get()
        except LookupError:
            loop = asyncio.get_running_loop()
            queue = _QUEUES.get(loop)
            if queue is None:
                return
            posting.event_queue_loop_var.set(loop)
            posting.event_queue_var.set(queue)
        kopf.event(kopf.Body(raw), type=kind, reason=reason, message=message[:1024])
