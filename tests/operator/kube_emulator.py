"""A Kubernetes API server for the integration tests: kmock, plus what it lacks.

kmock's emulator keeps objects in memory and serves list/watch/get/create/
patch/delete, but it sets no uid, creationTimestamp, generation or
resourceVersion, ignores label selectors, and merges every PATCH as JSON.
This subclass adds the metadata the operator relies on (generation bumps on
spec changes only, as the real API server does for CRDs with a status
subresource), and counts writes per resource for the tests and benchmarks.
Resources are registered from the generated CRDs in `crds/`, so a wrong CRD
fails the tests.
"""

from __future__ import annotations

import collections
import copy
import datetime
import itertools
import uuid
from pathlib import Path
from typing import Any

import kmock
import yaml
from kmock._internal import dicts as kdicts
from kmock._internal import enums
from kmock._internal import parsing as kparsing

ROOT = Path(__file__).resolve().parents[2]

_parse_path = kparsing.parse_path


def _parse_namespaces(path: str) -> Any:
    """kmock reads `/api/v1/namespaces[/NAME]` as a namespace prefix; it is the resource itself."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        name = parts[3] if len(parts) == 4 else None
        return kparsing.ParsedPath("", "v1", "namespaces", None, name, None)
    return _parse_path(path)


kparsing.parse_path = _parse_namespaces
VERBS = {"list", "watch", "get", "create", "patch", "update", "delete"}


class Emulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator with server-set metadata and a write log."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.rv = itertools.count(1)
        self.writes: list[tuple[str, str, str, str]] = []  # (verb, plural, namespace, name)
        self.faults: collections.deque[int] = collections.deque()

    async def _handle(self, request: Any) -> Any:
        res = request.resource
        if res is not None and request.action in (
            enums.action.CREATE,
            enums.action.UPDATE,
            enums.action.DELETE,
        ):
            plural = res.plural or ""
            name = request.name or (request.data or {}).get("metadata", {}).get("name", "")
            sub = f"/{request.subresource}" if getattr(request, "subresource", None) else ""
            agent = (request.headers or {}).get("User-Agent", "")
            if agent.startswith("OpenAPI-Generator"):  # the operator's writes, not the test's or kopf's
                self.writes.append(
                    (str(request.action.name).lower(), plural + sub, request.namespace or "", name)
                )
            if request.action == enums.action.CREATE and isinstance(request.data, dict):
                meta = request.data.setdefault("metadata", {})
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault(
                    "creationTimestamp", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                )
                meta["generation"] = 1
                meta["resourceVersion"] = str(next(self.rv))
            elif request.action == enums.action.UPDATE and isinstance(request.data, dict):
                key = (res, request.namespace, request.name)
                if key in self.objects and not self.objects[key].deleted:
                    old = self.objects[key].raw
                    new = kdicts.patch_dict(copy.deepcopy(old), copy.deepcopy(request.data))
                    meta = request.data.setdefault("metadata", {})
                    generation = old.get("metadata", {}).get("generation", 1)
                    if not request.subresource and new.get("spec") != old.get("spec"):
                        generation += 1
                    meta["generation"] = generation
                    meta["resourceVersion"] = str(next(self.rv))
        response = await super()._handle(request)
        if (
            res is not None
            and request.action == enums.action.CREATE
            and response.status == 200
            and not response.prepared
        ):
            response.set_status(201)  # the real API server answers 201 Created
        return response

    def count(self, *, exclude: tuple[str, ...] = ("events", "leases", "kopfpeerings")) -> int:
        return sum(1 for w in self.writes if w[1].split("/")[0] not in exclude)


def crd_resources() -> dict[str, kmock.ResourceInfo]:
    out: dict[str, kmock.ResourceInfo] = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served"):
                continue
            out[f"{spec['group']}/{version['name']}/{spec['names']['plural']}"] = kmock.ResourceInfo(
                kind=spec["names"]["kind"],
                namespaced=spec["scope"] == "Namespaced",
                verbs=VERBS,
                subresources=set(version.get("subresources", {})),
            )
    return out


def register(k: Emulator) -> None:
    builtin = {
        "v1/namespaces": ("Namespace", False, set()),
        "v1/events": ("Event", True, set()),
        "v1/configmaps": ("ConfigMap", True, set()),
        "v1/secrets": ("Secret", True, set()),
        "v1/services": ("Service", True, set()),
        "apps/v1/deployments": ("Deployment", True, {"status"}),
        "discovery.k8s.io/v1/endpointslices": ("EndpointSlice", True, set()),
        "apiextensions.k8s.io/v1/customresourcedefinitions": ("CustomResourceDefinition", False, set()),
        "coordination.k8s.io/v1/leases": ("Lease", True, set()),
    }
    for key, (kind, namespaced, subs) in builtin.items():
        k.resources[key] = kmock.ResourceInfo(
            kind=kind, namespaced=namespaced, verbs=VERBS, subresources=subs
        )
    for key, info in crd_resources().items():
        k.resources[key] = info
