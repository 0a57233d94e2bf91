"""The Deployment and ReplicaSet controllers' decisions for the demo's gateway pods, without I/O.

`llmgw demo` plays the Deployment controller for the gateway Deployments, so that
the operator's rollout watching reads the status a real cluster would write. The
rules here follow kube-controller-manager's `deployment` and `replicaset`
controllers (pkg/controller/deployment/rolling.go, sync.go, progress.go and
util/deployment_util.go): one ReplicaSet per pod template, named by its
`pod-template-hash`; a rolling update that scales the new ReplicaSet up to
`replicas + maxSurge` pods and the old ones down while `replicas - maxUnavailable`
pods stay available; the status counts and the `Available` and `Progressing`
conditions, with `ProgressDeadlineExceeded` once no progress was seen for
`progressDeadlineSeconds`. `podrunner` feeds these functions what it read from the
embedded API and writes what they return.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def stamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


TEMPLATE_HASH_LENGTH = 10
"""As the Deployment controller's `pod-template-hash` (not a config revision)."""


def template_hash(template: Mapping[str, Any]) -> str:
    """The `pod-template-hash` of a pod template (the controller's is an FNV of the same)."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:TEMPLATE_HASH_LENGTH]


def scaled(value: int | str | None, total: int, *, round_up: bool, default: str) -> int:
    """An int-or-percent of `total` (maxSurge rounds up, maxUnavailable down), as intstr does."""
    raw = default if value is None else value
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    if text.endswith("%"):
        share = float(text[:-1]) * total / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(text)


def surge_and_unavailable(spec: Mapping[str, Any]) -> tuple[int, int]:
    """maxSurge and maxUnavailable resolved against spec.replicas (both 0 -> maxUnavailable 1;
    a Recreate strategy: no surge, everything may go)."""
    want = replicas(spec)
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, want
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge"), want, round_up=True, default="25%")
    unavailable = scaled(rolling.get("maxUnavailable"), want, round_up=False, default="25%")
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, want)


def replicas(spec: Mapping[str, Any]) -> int:
    value = spec.get("replicas")
    return 1 if value is None else int(value)


@dataclasses.dataclass(frozen=True)
class Set:
    """One ReplicaSet of a Deployment as the rolling update sees it."""

    name: str
    replicas: int
    """Its spec.replicas."""
    available: int
    """Its pods that are ready (minReadySeconds is 0 here) and not terminating."""
    revision: int = 0
    """Its deployment.kubernetes.io/revision: older sets are scaled down first."""


def new_replicas(want: int, surge: int, new: Set, old: Sequence[Set]) -> int:
    """The new ReplicaSet's replicas (reconcileNewReplicaSet): up to want, within want + maxSurge pods."""
    if new.replicas >= want:
        return want
    current = new.replicas + sum(s.replicas for s in old)
    room = want + surge - current
    if room <= 0:
        return new.replicas
    return new.replicas + min(room, want - new.replicas)


def old_replicas(want: int, unavailable: int, new: Set, old: Sequence[Set]) -> dict[str, int]:
    """The old ReplicaSets' new replicas, by name, for those that change (reconcileOldReplicaSets):
    first their unhealthy pods, then available ones while `want - maxUnavailable` stay available."""
    old_pods = sum(s.replicas for s in old)
    if old_pods == 0:
        return {}
    min_available = want - unavailable
    max_down = old_pods + new.replicas - min_available - (new.replicas - new.available)
    if max_down <= 0:
        return {}
    oldest_first = sorted(old, key=lambda s: (s.revision, s.name))
    out: dict[str, int] = {}
    cleaned = 0
    for s in oldest_first:  # cleanupUnhealthyReplicas
        if cleaned >= max_down:
            break
        unhealthy = s.replicas - s.available
        if s.replicas == 0 or unhealthy <= 0:
            continue
        down = min(max_down - cleaned, unhealthy)
        out[s.name] = s.replicas - down
        cleaned += down
    available = new.available + sum(s.available for s in old)
    if available <= min_available:
        return out
    total, done = available - min_available, 0
    for s in oldest_first:  # scaleDownOldReplicaSetsForRollingUpdate
        if done >= total:
            break
        current = out.get(s.name, s.replicas)
        if current == 0:
            continue
        down = min(current, total - done)
        out[s.name] = current - down
        done += down
    return out


@dataclasses.dataclass(frozen=True)
class PodView:
    """What the ReplicaSet controller and the status need of one pod."""

    name: str
    ready: bool
    terminating: bool = False
    restarts: int = 0
    created: str = ""


def to_delete(pods: Sequence[PodView], count: int) -> list[str]:
    """Which of a ReplicaSet's pods to delete when it is scaled down by `count` (the controller's
    order: not ready before ready, more restarts first, newer first)."""
    live = [p for p in pods if not p.terminating]
    ranked = sorted(live, key=lambda p: (p.ready, -p.restarts, _neg_time(p.created), p.name))
    return [p.name for p in ranked[: max(count, 0)]]


def _neg_time(text: str) -> float:
    when = parse_time(text)
    return -when.timestamp() if when is not None else 0.0


def replica_set_status(generation: int, pods: Sequence[PodView]) -> dict[str, Any]:
    live = [p for p in pods if not p.terminating]
    ready = sum(1 for p in live if p.ready)
    return {
        "observedGeneration": generation,
        "replicas": len(live),
        "fullyLabeledReplicas": len(live),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "terminatingReplicas": len(pods) - len(live),
    }


@dataclasses.dataclass(frozen=True)
class Counts:
    """A Deployment's status counts."""

    replicas: int
    updated: int
    ready: int
    available: int


def counts(new: Sequence[PodView], old: Sequence[PodView]) -> Counts:
    live_new = [p for p in new if not p.terminating]
    live = live_new + [p for p in old if not p.terminating]
    ready = sum(1 for p in live if p.ready)
    return Counts(replicas=len(live), updated=len(live_new), ready=ready, available=ready)


def _condition(
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: str,
    previous: Mapping[str, Any] | None,
    *,
    refresh: bool = False,
) -> dict[str, Any]:
    """A Deployment condition: lastTransitionTime kept while the status stays the same,
    lastUpdateTime too while the reason does, unless `refresh` (progress was seen)."""
    value = "True" if status else "False"
    same = previous is not None and previous.get("status") == value
    transition = str((previous or {}).get("lastTransitionTime") or now) if same else now
    keep = same and not refresh and (previous or {}).get("reason") == reason
    update = str((previous or {}).get("lastUpdateTime") or now) if keep else now
    return {
        "type": type_,
        "status": value,
        "lastUpdateTime": update,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }


NEW_SET_CREATED = "NewReplicaSetCreated"
FOUND_NEW_SET = "FoundNewReplicaSet"


def deployment_status(
    dep: Mapping[str, Any],
    new_set: str,
    event: str | None,
    c: Counts,
    now: datetime.datetime,
) -> dict[str, Any]:
    """The status the Deployment controller writes (syncRolloutStatus): counts, Available, and
    Progressing as it moves on, completes, or runs past progressDeadlineSeconds.

    `event`: NEW_SET_CREATED or FOUND_NEW_SET when the template changed in this pass (a new
    ReplicaSet made, or an old one taken up again, as for a rollback), else None.
    """
    spec = dep.get("spec") or {}
    previous = dep.get("status") or {}
    old_conds = {str(x.get("type")): x for x in previous.get("conditions") or () if isinstance(x, Mapping)}
    want = replicas(spec)
    _, unavailable = surge_and_unavailable(spec)
    at = stamp(now)
    generation = int((dep.get("metadata") or {}).get("generation") or 1)
    enough = c.available >= want - unavailable
    available = _condition(
        "Available",
        enough,
        "MinimumReplicasAvailable" if enough else "MinimumReplicasUnavailable",
        "Deployment has minimum availability."
        if enough
        else "Deployment does not have minimum availability.",
        at,
        old_conds.get("Available"),
    )
    before = old_conds.get("Progressing")
    complete = c.updated == want and c.replicas == want and c.available == want
    was_old = int(previous.get("replicas") or 0) - int(previous.get("updatedReplicas") or 0)
    moved = (
        c.updated > int(previous.get("updatedReplicas") or 0)
        or (c.replicas - c.updated) < was_old
        or c.ready > int(previous.get("readyReplicas") or 0)
        or c.available > int(previous.get("availableReplicas") or 0)
    )
    if event is not None:
        verb = "Created new" if event == NEW_SET_CREATED else "Found new"
        progressing = _condition(
            "Progressing", True, event, f'{verb} replica set "{new_set}"', at, before, refresh=True
        )
    elif complete:
        progressing = _condition(
            "Progressing",
            True,
            "NewReplicaSetAvailable",
            f'ReplicaSet "{new_set}" has successfully progressed.',
            at,
            before,
        )
    elif moved or before is None:
        progressing = _condition(
            "Progressing",
            True,
            "ReplicaSetUpdated",
            f'ReplicaSet "{new_set}" is progressing.',
            at,
            before,
            refresh=True,
        )
    else:
        progressing = dict(before)
        deadline = spec.get("progressDeadlineSeconds")
        since = parse_time(str(before.get("lastUpdateTime") or ""))
        if (
            deadline is not None
            and before.get("reason") != "ProgressDeadlineExceeded"
            and since is not None
            and (now - since).total_seconds() > int(deadline)
        ):
            progressing = _condition(
                "Progressing",
                False,
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{new_set}" has timed out progressing.',
                at,
                before,
            )
    return {
        "observedGeneration": generation,
        "replicas": c.replicas,
        "updatedReplicas": c.updated,
        "readyReplicas": c.ready,
        "availableReplicas": c.available,
        "unavailableReplicas": max(want - c.available, 0),
        "conditions": [available, progressing],
    }
