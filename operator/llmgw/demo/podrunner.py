"""The local pod runner: the Deployment controller and the kubelet for the gateway Deployments.

Nothing else in the demo makes pods: this loop reads the gateway Deployments the
operator wrote (label `app.kubernetes.io/managed-by: llmgw`), keeps one
ReplicaSet per pod template (`controller`), creates and deletes their Pods, runs
each Pod as a `processes.PodWorker` (a real LiteLLM proxy), and writes the
ReplicaSet and Deployment status as kube-controller-manager would. It is
level-triggered: every pass reads the whole state again (a few objects; twice a
second), so a missed event costs half a second, never a stuck rollout.

`endpoints` is what the local Service forwards to: the ready, not terminating pods
that match a Service's selector, as the EndpointSlice controller would list them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import secrets
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llmgw.core import desired
from llmgw.demo import controller
from llmgw.demo.client import Api
from llmgw.demo.processes import FINALIZER, PORT_ANNOTATION, PodWorker, World

log = logging.getLogger("llmgw.demo.runner")

PASS_SECONDS = 0.5


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _owned_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    uid = (owner.get("metadata") or {}).get("uid")
    return any(ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or ())


def _gateway_deployment(dep: Mapping[str, Any]) -> bool:
    labels = (dep.get("metadata") or {}).get("labels") or {}
    return labels.get(desired.MANAGED_BY) == desired.MANAGER and desired.GATEWAY_LABEL in labels


def matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class Runner:
    """The Deployment and ReplicaSet controllers and the kubelet, for the gateway Deployments."""

    def __init__(self, api: Api, litellm: str, workdir: Path, world: World) -> None:
        self.api = api
        self.litellm = litellm
        self.workdir = workdir
        self.world = world
        self.workers: dict[tuple[str, str], PodWorker] = {}
        self.selectors: dict[tuple[str, str], dict[str, str]] = {}
        """(namespace, name) -> spec.selector of each gateway Service (what the local Services read)."""
        self.passes = 0

    # -- what the Service forwards to ----------------------------------------------------

    def endpoints(self, namespace: str, selector: Mapping[str, str]) -> list[PodWorker]:
        return sorted(
            (
                w
                for (ns, _), w in self.workers.items()
                if ns == namespace and w.ready and matches(w.labels, selector)
            ),
            key=lambda w: w.name,
        )

    # -- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sync()
            except Exception:
                log.exception("pod runner pass failed")
            self.passes += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PASS_SECONDS)

    async def sync(self) -> None:
        secrets_, config_maps = await asyncio.gather(self.api.list("Secret"), self.api.list("ConfigMap"))
        self.world.secrets = {_key(s): s for s in secrets_}
        self.world.config_maps = {_key(c): c for c in config_maps}
        deployments = [d for d in await self.api.list("Deployment") if _gateway_deployment(d)]
        sets = await self.api.list("ReplicaSet")
        pods = await self.api.list("Pod")
        self.selectors = {
            _key(s): dict((s.get("spec") or {}).get("selector") or {})
            for s in await self.api.list("Service")
            if _labels(s).get(desired.MANAGED_BY) == desired.MANAGER
        }
        for dep in deployments:
            await self._deployment(dep, [s for s in sets if _owned_by(s, dep)], pods)
        live_sets = [s for s in sets if any(_owned_by(s, d) for d in deployments)]
        for rs in sets:  # the garbage collector: sets whose Deployment is gone
            if rs not in live_sets and (rs.get("metadata") or {}).get("ownerReferences"):
                with contextlib.suppress(Exception):
                    await self.api.delete("ReplicaSet", *_key(rs))
        await self._kubelet(pods, live_sets)

    async def _deployment(
        self, dep: dict[str, Any], sets: list[dict[str, Any]], pods: list[dict[str, Any]]
    ) -> None:
        spec = dep.get("spec") or {}
        template = spec.get("template") or {}
        wanted = controller.template_hash(template)
        revisions = [_revision(s) for s in sets]
        new = next((s for s in sets if _labels(s).get(controller.TEMPLATE_HASH) == wanted), None)
        event: str | None = None
        top = max(revisions, default=0)
        if new is None:
            new = await self._create_set(dep, template, wanted, top + 1)
            sets.append(new)
            event = controller.NEW_SET_CREATED
        elif _revision(new) < top:  # a template seen before: a rollback takes its set up again
            await self.api.patch(
                "ReplicaSet", *_key(new), {"metadata": {"annotations": {controller.REVISION: str(top + 1)}}}
            )
            new["metadata"].setdefault("annotations", {})[controller.REVISION] = str(top + 1)
            event = controller.FOUND_NEW_SET
        old = [s for s in sets if s is not new]
        views = {id(s): self._pods_of(s, pods) for s in sets}

        def as_set(s: Mapping[str, Any]) -> controller.Set:
            available = sum(1 for p in views[id(s)] if p.ready and not p.terminating)
            return controller.Set(str(s["metadata"]["name"]), _replicas(s), available, _revision(s))

        want = controller.replicas(spec)
        surge, unavailable = controller.surge_and_unavailable(spec)
        new_set = as_set(new)
        scale_new = controller.new_replicas(want, surge, new_set, [as_set(s) for s in old])
        if scale_new != new_set.replicas:
            await self._scale(new, scale_new)
        else:
            changes = controller.old_replicas(want, unavailable, new_set, [as_set(s) for s in old])
            for s in old:
                name = str(s["metadata"]["name"])
                if name in changes:
                    await self._scale(s, changes[name])
        for s in sets:
            await self._replica_set(s, views[id(s)])
        counts = controller.counts(views[id(new)], [p for s in old for p in views[id(s)]])
        status = controller.deployment_status(
            dep, str(new["metadata"]["name"]), event, counts, datetime.datetime.now(datetime.UTC)
        )
        if _comparable(status) != _comparable(dep.get("status") or {}):
            await self.api.patch("Deployment", *_key(dep), {"status": status}, sub="status")

    def _pods_of(self, rs: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> list[controller.PodView]:
        out = []
        for p in pods:
            if not _owned_by(p, rs):
                continue
            worker = self.workers.get(_key(p))
            meta = p.get("metadata") or {}
            out.append(
                controller.PodView(
                    name=str(meta.get("name")),
                    ready=worker.ready if worker is not None else False,
                    terminating=bool(meta.get("deletionTimestamp")),
                    restarts=worker.state.restarts if worker is not None else 0,
                    created=str(meta.get("creationTimestamp") or ""),
                )
            )
        return out

    async def _create_set(
        self, dep: Mapping[str, Any], template: Mapping[str, Any], hash_: str, revision: int
    ) -> dict[str, Any]:
        ns, name = _key(dep)
        labels = {**((template.get("metadata") or {}).get("labels") or {}), controller.TEMPLATE_HASH: hash_}
        tmpl = {**template, "metadata": {**(template.get("metadata") or {}), "labels": labels}}
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name}-{hash_}",
                "namespace": ns,
                "labels": labels,
                "annotations": {controller.REVISION: str(revision)},
                "ownerReferences": [_owner(dep, "Deployment")],
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": tmpl,
            },
        }
        created = await self.api.create(body)
        return dict(created or body)

    async def _scale(self, rs: dict[str, Any], replicas: int) -> None:
        await self.api.patch("ReplicaSet", *_key(rs), {"spec": {"replicas": replicas}})
        rs["spec"]["replicas"] = replicas

    async def _replica_set(self, rs: Mapping[str, Any], pods: list[controller.PodView]) -> None:
        """The ReplicaSet controller: as many live pods as spec.replicas, and its status."""
        live = [p for p in pods if not p.terminating]
        want = _replicas(rs)
        for _ in range(want - len(live)):
            pods.append(await self._create_pod(rs))
        for name in controller.to_delete(live, len(live) - want):
            with contextlib.suppress(Exception):
                await self.api.delete("Pod", _key(rs)[0], name)
            pods[:] = [
                controller.PodView(p.name, p.ready, True, p.restarts, p.created) if p.name == name else p
                for p in pods
            ]
        generation = int((rs.get("metadata") or {}).get("generation") or 1)
        status = controller.replica_set_status(generation, pods)
        if status != (rs.get("status") or {}):
            await self.api.patch("ReplicaSet", *_key(rs), {"status": status}, sub="status")

    async def _create_pod(self, rs: Mapping[str, Any]) -> controller.PodView:
        ns, rs_name = _key(rs)
        template = (rs.get("spec") or {}).get("template") or {}
        meta = template.get("metadata") or {}
        name = f"{rs_name}-{secrets.token_hex(3)[:5]}"
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": dict(meta.get("labels") or {}),
                "annotations": {**(meta.get("annotations") or {}), PORT_ANNOTATION: str(free_port())},
                "ownerReferences": [_owner(rs, "ReplicaSet")],
                "finalizers": [FINALIZER],
            },
            "spec": {**(template.get("spec") or {}), "nodeName": "localhost"},
            "status": {"phase": "Pending"},
        }
        created = await self.api.create(body)
        return controller.PodView(
            name=name,
            ready=False,
            created=str(((created or {}).get("metadata") or {}).get("creationTimestamp") or ""),
        )

    async def _kubelet(self, pods: Sequence[Mapping[str, Any]], sets: Sequence[Mapping[str, Any]]) -> None:
        """One worker per pod of a gateway ReplicaSet; deleted pods stop theirs."""
        seen = set()
        for p in pods:
            key = _key(p)
            if not any(_owned_by(p, s) for s in sets) and key not in self.workers:
                continue
            seen.add(key)
            worker = self.workers.get(key)
            if worker is None:
                port = int(
                    ((p.get("metadata") or {}).get("annotations") or {}).get(PORT_ANNOTATION) or free_port()
                )
                worker = PodWorker(self.api, p, self.world, self.litellm, self.workdir, port)
                self.workers[key] = worker
                worker.start()
            if (p.get("metadata") or {}).get("deletionTimestamp") or not any(_owned_by(p, s) for s in sets):
                worker.delete()
        for key, worker in list(self.workers.items()):
            if key not in seen:
                worker.delete()
            if worker.stopped.is_set():
                del self.workers[key]

    async def stop(self) -> None:
        """Kill every proxy's process group now, then let the workers end."""
        for worker in self.workers.values():
            worker.kill_now()
            worker.delete()
        await asyncio.gather(*(w.wait() for w in self.workers.values()), return_exceptions=True)


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _revision(rs: Mapping[str, Any]) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get(controller.REVISION) or 0)
    except ValueError:
        return 0


def _replicas(rs: Mapping[str, Any]) -> int:
    return int((rs.get("spec") or {}).get("replicas") or 0)


def _owner(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": str(obj.get("apiVersion") or "apps/v1"),
        "kind": kind,
        "name": str(meta.get("name")),
        "uid": str(meta.get("uid") or ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _comparable(status: Mapping[str, Any]) -> Any:
    conds = [
        {k: v for k, v in c.items() if k not in ("lastUpdateTime", "lastTransitionTime")}
        for c in status.get("conditions") or ()
    ]
    return {**{k: v for k, v in status.items() if k != "conditions"}, "conditions": conds}
