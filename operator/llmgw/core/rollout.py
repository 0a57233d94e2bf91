"""Following a rollout and rolling back a revision that fails: the decisions, without the I/O.

The reconciler gathers a gateway's snapshot (its history from `status.history`,
the live Deployment, the pods of its revisions, the ConfigMaps that still exist
and the time) and `plan` says which revision the Deployment should run, what the
history says now, and what to announce. Everything that must survive a restart
(the last revision that became available, the revisions that failed) is in the
history on the gateway's status, never only in the operator's memory.

A revision is a config revision (a render hash, one ConfigMap). The history has
one record per revision, newest rollout first; its first record is the revision
the Deployment was last pointed at. Outcomes:

- Progressing: rolled out, not yet available;
- Available: became available (and stays so in the record once replaced: it is
  a revision known to be good, a rollback target);
- Failed: did not become available in time (the Deployment's deadline, its own
  deadline, crash-looping pods, or pods that cannot start for a reason waiting will
  not fix, such as a missing Secret or an image that cannot be pulled) and was not
  rolled back;
- RolledBack: failed, and the Deployment was pointed back at the last revision
  that became available;
- Superseded: replaced by a newer revision before it became available.

A revision that failed is not rolled out again while the render gives the same
hash: only a change of the inputs (a new hash) makes the operator try again.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from llmgw.core import conditions, render, revisions
from llmgw.core.revisions import Stored

ROLLED_BACK_CONDITION = "RolledBack"

PROGRESSING = "Progressing"
AVAILABLE = "Available"
FAILED = "Failed"
ROLLED_BACK = "RolledBack"
SUPERSEDED = "Superseded"
Outcome = Literal["Progressing", "Available", "Failed", "RolledBack", "Superseded"]
OUTCOMES: tuple[str, ...] = (PROGRESSING, AVAILABLE, FAILED, ROLLED_BACK, SUPERSEDED)

# Reasons a revision fails.
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
CRASH_LOOP = "CrashLoopBackOff"

CRASH_LOOP_RESTARTS = 3
"""Restarts after which a container waiting in CrashLoopBackOff fails its revision at once."""

CANNOT_START: frozenset[str] = frozenset(
    {
        "CreateContainerConfigError",  # a missing Secret, ConfigMap or key; runAsNonRoot vs the image
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",  # imagePullPolicy Never and the image is not on the node
    }
)
"""The kubelet's waiting reasons that waiting will not fix: a container waiting with one of them
for `Snapshot.stuck_seconds` fails its revision, without waiting for the deadline. Left out, as
often passing: CreateContainerError (e.g. the runtime's "failed to reserve container name"),
RegistryUnavailable and ImageInspectError; the deadline still catches them."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One revision in `status.history`."""

    revision: str
    time: str
    outcome: str
    reason: str = ""
    message: str = ""

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"revision": self.revision, "time": self.time, "outcome": self.outcome}
        if self.reason:
            out["reason"] = self.reason
        if self.message:
            out["message"] = self.message
        return out


def history_from_status(status: Mapping[str, Any] | None) -> tuple[Record, ...]:
    """The history as a gateway's status holds it; entries that cannot be read are skipped."""
    rows = (status or {}).get("history")
    out: list[Record] = []
    seen: set[str] = set()
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, Mapping):
            continue
        revision, time, outcome = row.get("revision"), row.get("time"), row.get("outcome")
        if not isinstance(revision, str) or not isinstance(time, str) or outcome not in OUTCOMES:
            continue
        if revision in seen:
            continue
        seen.add(revision)
        out.append(
            Record(
                revision=revision,
                time=time,
                outcome=str(outcome),
                reason=str(row.get("reason") or ""),
                message=str(row.get("message") or ""),
            )
        )
    return tuple(out)


def history_to_status(history: Sequence[Record]) -> list[dict[str, Any]]:
    return [r.to_status() for r in history]


@dataclasses.dataclass(frozen=True)
class Waiting:
    """A container of a pod that is not running, and why."""

    container: str
    reason: str
    message: str = ""
    restarts: int = 0


@dataclasses.dataclass(frozen=True)
class Pod:
    """What rollout watching needs of one gateway pod."""

    name: str
    revision: str
    """The revision its template carried (from the `config-hash` annotation), or ''."""
    ready: bool
    waiting: tuple[Waiting, ...] = ()
    started: str = ""
    """When the kubelet took the pod on (`status.startTime`), or '' when not known."""


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Everything `plan` decides from, for one gateway."""

    wanted: str
    """The hash of the current render."""
    history: tuple[Record, ...]
    deployment: Mapping[str, Any] | None
    pods: tuple[Pod, ...]
    stored: Mapping[str, Stored]
    """revision -> its ConfigMap, for every revision whose ConfigMap exists."""
    auto_rollback: bool
    deadline_seconds: int
    limit: int
    now: datetime.datetime
    stuck_seconds: int = 60
    """How long a pod may wait for a reason in CANNOT_START (spec.rollout.stuckPodSeconds)."""


@dataclasses.dataclass(frozen=True)
class Failure:
    revision: str
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the Deployment should run, and what to record and say about it."""

    run: str
    """The revision the Deployment should run."""
    history: tuple[Record, ...]
    condition: dict[str, Any]
    """The RolledBack condition (without generation)."""
    held: str | None = None
    """Why the wanted revision is not run, when it is not."""
    rolled_back: Failure | None = None
    """A rollback decided now: the revision that failed; `run` is the one restored."""
    failed: Failure | None = None
    """A failure decided now that is not rolled back."""
    became_available: str | None = None
    keep: frozenset[str] = frozenset()
    """Revisions whose ConfigMaps must not be pruned (what runs, the rollback target, the held one)."""
    recheck_after: float | None = None
    """Seconds after which the revision that runs must be looked at again (its deadline, or the
    end of the window of a pod that cannot start)."""


def stamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime.datetime | None:
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)


def restored(rendered: render.Rendered, target: Stored) -> render.Rendered:
    """What `desired.deployment` needs to run an earlier revision: its hash and its env.

    Its config is in its ConfigMap; the text is not needed to point the Deployment
    at it. A ConfigMap from before revisions recorded their env gets the current env.
    """
    env = target.env if target.env is not None else rendered.env
    return render.Rendered(text="", hash=target.hash, env=env, config={})


# -- health of the revision that runs ---------------------------------------------------------


def current(dep: Mapping[str, Any]) -> bool:
    """Whether the Deployment controller has seen the Deployment's latest spec."""
    status = dep.get("status") or {}
    observed = status.get("observedGeneration")
    generation = (dep.get("metadata") or {}).get("generation")
    if observed is None:
        return False
    return generation is None or int(observed) >= int(generation)


def replicas(dep: Mapping[str, Any]) -> int:
    """The replicas the Deployment asks for (1 when unset, as the API server defaults it)."""
    return int((dep.get("spec") or {}).get("replicas", 1))


def available(dep: Mapping[str, Any]) -> bool:
    """The Deployment is available: its controller has seen its latest spec, and every
    replica of it is updated and available. The one rule, for rollouts and for Ready.

    As `kubectl rollout status` decides: `availableReplicas` counts the old ReplicaSet's pods
    too, so a rollout is done only when no old pod is left (`replicas <= updatedReplicas`)
    and every updated one is available. With one replica and `maxSurge: 1`, mid-rollout reads
    replicas 2, updated 1, available 1 (the old pod): not yet.
    """
    if not current(dep):
        return False
    want = replicas(dep)
    if want == 0:
        return True
    status = dep.get("status") or {}
    cond = conditions.get(status.get("conditions"), "Available")
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    ready = int(status.get("availableReplicas") or 0)
    return bool(
        cond is not None
        and cond.get("status") == "True"
        and updated >= want
        and total <= updated
        and ready >= updated
    )


def _pods_say(pods: Sequence[Pod]) -> str:
    """The not-ready pods of a revision, in a few words each."""
    parts: list[str] = []
    for p in sorted(pods, key=lambda p: p.name):
        if p.ready:
            continue
        if p.waiting:
            why = ", ".join(
                f"{w.container} waiting: {w.reason}" + (f" ({w.message})" if w.message else "")
                for w in p.waiting
            )
        else:
            why = "not ready (readiness probe failing)"
        parts.append(f"pod {p.name}: {why}")
    if len(parts) > 3:
        parts = [*parts[:3], f"{len(parts) - 3} more"]
    return "; ".join(parts)


def health(s: Snapshot, record: Record) -> str | Failure | None:
    """AVAILABLE, a Failure, or None when it is too early to tell."""
    dep = s.deployment
    if dep is None or revisions.template_revision(dep) != record.revision:
        return None  # the Deployment does not show this revision yet
    if available(dep):
        return AVAILABLE
    pods = [p for p in s.pods if p.revision == record.revision]
    detail = _pods_say(pods)
    if current(dep):
        progressing = conditions.get((dep.get("status") or {}).get("conditions"), "Progressing")
        if progressing is not None and progressing.get("reason") == DEADLINE_EXCEEDED:
            said = str(progressing.get("message") or "the Deployment made no progress in time")
            return Failure(record.revision, DEADLINE_EXCEEDED, said + (f"; {detail}" if detail else ""))
    for p in sorted(pods, key=lambda p: p.name):
        for w in p.waiting:
            if w.reason == CRASH_LOOP and w.restarts >= CRASH_LOOP_RESTARTS:
                tail = f": {w.message}" if w.message else ""
                return Failure(
                    record.revision,
                    CRASH_LOOP,
                    f"pod {p.name}: container {w.container} is crash-looping ({w.restarts} restarts){tail}",
                )
    for p, w, since in _cannot_start(s, record):
        if (s.now - since).total_seconds() >= s.stuck_seconds:
            return Failure(
                record.revision,
                w.reason,
                f"pod {p.name}: container {w.container} cannot start: {w.reason}"
                + (f" ({w.message})" if w.message else "")
                + f", still after {s.stuck_seconds}s",
            )
    elapsed = _elapsed(s, record)
    if elapsed is not None and elapsed >= s.deadline_seconds:
        return Failure(
            record.revision,
            DEADLINE_EXCEEDED,
            f"not available {s.deadline_seconds}s after it was rolled out"
            + (f"; {detail}" if detail else ""),
        )
    return None


def _cannot_start(s: Snapshot, record: Record) -> list[tuple[Pod, Waiting, datetime.datetime]]:
    """The revision's containers waiting for a reason in CANNOT_START, each with the time its
    window is counted from: the rollout, or the pod's start when that is later. (The kubelet
    says since when a container waits for nothing; a pod that recovers is simply no longer
    listed here.)"""
    if s.deployment is None or revisions.template_revision(s.deployment) != record.revision:
        return []
    rolled = _parse_time(record.time)
    if rolled is None:
        return []
    out: list[tuple[Pod, Waiting, datetime.datetime]] = []
    for p in sorted(s.pods, key=lambda p: p.name):
        if p.revision != record.revision or p.ready:
            continue
        started = _parse_time(p.started) if p.started else None
        since = max(rolled, started) if started is not None else rolled
        out.extend((p, w, since) for w in p.waiting if w.reason in CANNOT_START)
    return out


def _elapsed(s: Snapshot, record: Record) -> float | None:
    since = _parse_time(record.time)
    return None if since is None else (s.now - since).total_seconds()


# -- the plan ---------------------------------------------------------------------------------


def _find(history: Sequence[Record], revision: str) -> Record | None:
    return next((r for r in history if r.revision == revision), None)


def _failed(record: Record | None, auto_rollback: bool) -> bool:
    """Whether a revision is known bad and must not be rolled out again for the same hash."""
    if record is None:
        return False
    return record.outcome == ROLLED_BACK or (record.outcome == FAILED and auto_rollback)


def target(history: Sequence[Record], stored_: Mapping[str, Stored], exclude: str) -> Record | None:
    """The last revision that became available and can still be run (its ConfigMap exists)."""
    for r in history:
        if r.outcome == AVAILABLE and r.revision != exclude and r.revision in stored_:
            return r
    return None


def _front(history: list[Record], record: Record) -> list[Record]:
    return [record, *(r for r in history if r.revision != record.revision)]


def plan(s: Snapshot) -> Plan:
    """Decide what the Deployment runs, what the history says, and what to announce."""
    want = revisions.short(s.wanted)
    now = stamp(s.now)
    history = list(s.history)
    live = revisions.template_revision(s.deployment)
    if not history and live is not None:
        # A gateway from before histories were kept: start from what runs.
        seeded = AVAILABLE if s.deployment is not None and available(s.deployment) else PROGRESSING
        history = [Record(live, now, seeded)]
    current = history[0] if history else None

    failure: Failure | None = None
    became: str | None = None
    if current is not None and current.outcome in (PROGRESSING, FAILED):
        verdict = health(s, current)
        if verdict == AVAILABLE:
            current = dataclasses.replace(current, outcome=AVAILABLE, reason="", message="")
            history[0] = current
            became = current.revision
        elif isinstance(verdict, Failure) and current.outcome == PROGRESSING:
            failure = verdict
    failing = current is not None and (failure is not None or current.outcome == FAILED)

    wanted = _find(history, want)
    rolled: Failure | None = None
    failed_now: Failure | None = None
    held: str | None = None
    if current is None:
        history = [Record(want, now, PROGRESSING)]
        run = want
    elif failing:
        assert current is not None
        why = failure or Failure(current.revision, current.reason, current.message)
        back = target(history, s.stored, current.revision) if s.auto_rollback else None
        if want != current.revision and not _failed(wanted, s.auto_rollback):
            # The inputs moved on: the new revision replaces the failed one.
            history[0] = dataclasses.replace(current, outcome=FAILED, reason=why.reason, message=why.message)
            if failure is not None:
                failed_now = failure
            history = _front(history, Record(want, now, PROGRESSING))
            run = want
        elif back is not None:
            history[0] = dataclasses.replace(
                current,
                outcome=ROLLED_BACK,
                reason=why.reason,
                message=f"{why.message}; rolled back to revision {back.revision}",
            )
            history = _front(history, Record(back.revision, now, PROGRESSING))
            rolled = why
            run = back.revision
        else:
            history[0] = dataclasses.replace(current, outcome=FAILED, reason=why.reason, message=why.message)
            if failure is not None:
                failed_now = failure
            run = current.revision
    elif want == current.revision:
        run = want
    elif _failed(wanted, s.auto_rollback):
        run = current.revision
    else:
        if current.outcome == PROGRESSING:
            history[0] = dataclasses.replace(current, outcome=SUPERSEDED)
        history = _front(history, Record(want, now, PROGRESSING))
        run = want

    wanted = _find(history, want)
    if run != want and wanted is not None and _failed(wanted, s.auto_rollback):
        held = (
            f"revision {want} failed ({wanted.reason}) and is not rolled out again until the inputs "
            f"change; the Deployment runs revision {run}"
        )
    back_then = target(history, s.stored, run)
    keep = {run, want} | ({back_then.revision} if back_then is not None else set())
    history = _pruned(history, s.limit, keep)
    running = history[0]
    recheck: float | None = None
    if running.outcome == PROGRESSING:
        elapsed = _elapsed(s, running) or 0.0
        recheck = max(1.0, s.deadline_seconds - elapsed)
        for _, _, since in _cannot_start(s, running):
            end = (since - s.now).total_seconds() + s.stuck_seconds
            recheck = min(recheck, max(1.0, end))
    return Plan(
        run=run,
        history=tuple(history),
        condition=_condition(want, run, wanted, s.auto_rollback),
        held=held,
        rolled_back=rolled,
        failed=failed_now,
        became_available=became,
        keep=frozenset(keep),
        recheck_after=recheck,
    )


def _pruned(history: list[Record], limit: int, keep: set[str]) -> list[Record]:
    """The newest `limit` records, and always those of `keep` (so at most a few more)."""
    room = max(limit, 1) - sum(1 for r in history if r.revision in keep)
    out: list[Record] = []
    for r in history:
        if r.revision in keep:
            out.append(r)
        elif room > 0:
            out.append(r)
            room -= 1
    return out


def _condition(want: str, run: str, wanted: Record | None, auto_rollback: bool) -> dict[str, Any]:
    if wanted is not None and run != want and wanted.outcome in (FAILED, ROLLED_BACK):
        return conditions.condition(
            ROLLED_BACK_CONDITION,
            True,
            wanted.reason or "RolloutFailed",
            f"revision {want} failed: {wanted.message.split('; rolled back to')[0]}; the Deployment "
            f"runs revision {run}, the last that became available. Revision {want} is not tried "
            "again until the inputs change",
            None,
        )
    if wanted is not None and wanted.outcome == FAILED:
        if not auto_rollback:
            reason, tail = "AutoRollbackDisabled", "spec.rollout.autoRollback is false, so it stays"
        else:
            reason, tail = "NoRollbackTarget", "no earlier revision became available, so it stays"
        return conditions.condition(
            ROLLED_BACK_CONDITION,
            False,
            reason,
            f"revision {want} failed ({wanted.reason}: {wanted.message}); {tail}",
            None,
        )
    return conditions.condition(
        ROLLED_BACK_CONDITION, False, "NotRolledBack", f"the Deployment runs the newest revision, {run}", None
    )
