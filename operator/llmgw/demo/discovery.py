"""What kubectl needs of the embedded API beyond what the operator needs: names, categories, tables.

kubectl finds resources through discovery (singular names, short names like `ns`
and `llmgw`, the `llm` category) and asks `get` for server-side tables
(`Accept: ...;as=Table;g=meta.k8s.io;v=v1`) whose columns, for custom resources,
are the CRD's additionalPrinterColumns. kmock lists every resource with its plural
as its singular, no short names or categories, the core group as `/v1`, and
answers a table request with 406 (the integration suite's emulator serves
metadata-only lists, not tables). `DemoEmulator` adds these so that
`kubectl get llm -A`, `kubectl get pods,rs,deploy -A` and `-o yaml` work against
the demo: the demo prints the KUBECONFIG line for it. Writes through kubectl
(apply needs OpenAPI, strategic merge) are not served: edit the demo's folder.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

import kmock
import yaml

from llmgw.demo import apiserver

BUILTIN_NAMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "v1/namespaces": ("namespace", ("ns",)),
    "v1/events": ("event", ("ev",)),
    "v1/configmaps": ("configmap", ("cm",)),
    "v1/secrets": ("secret", ()),
    "v1/services": ("service", ("svc",)),
    "v1/pods": ("pod", ("po",)),
    "apps/v1/deployments": ("deployment", ("deploy",)),
    "apps/v1/replicasets": ("replicaset", ("rs",)),
    "discovery.k8s.io/v1/endpointslices": ("endpointslice", ()),
    "apiextensions.k8s.io/v1/customresourcedefinitions": ("customresourcedefinition", ("crd", "crds")),
    "coordination.k8s.io/v1/leases": ("lease", ()),
    "autoscaling/v2/horizontalpodautoscalers": ("horizontalpodautoscaler", ("hpa",)),
    "policy/v1/poddisruptionbudgets": ("poddisruptionbudget", ("pdb",)),
}

Column = tuple[str, str, str, int]
"""(name, type, jsonPath, priority)"""

BUILTIN_COLUMNS: dict[str, list[Column]] = {
    "pods": [
        ("Ready", "string", "@ready", 0),
        ("Status", "string", "@phase", 0),
        ("Restarts", "integer", ".status.containerStatuses[0].restartCount", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0),
        ("Revision", "string", '.metadata.annotations["llmgateway.dev/config-hash"]', 1),
    ],
    "deployments": [
        ("Ready", "string", "@deployready", 0),
        ("Up-to-date", "integer", ".status.updatedReplicas", 0),
        ("Available", "integer", ".status.availableReplicas", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ],
    "replicasets": [
        ("Desired", "integer", ".spec.replicas", 0),
        ("Current", "integer", ".status.replicas", 0),
        ("Ready", "integer", ".status.readyReplicas", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ],
}


def describe(emulator: kmock.KubernetesEmulator) -> None:
    """Singular names, short names and categories for every resource (from crds/ for ours),
    and ReplicaSets, which the demo's Deployment controller writes."""
    emulator.resources["apps/v1/replicasets"] = kmock.ResourceInfo(
        kind="ReplicaSet", namespaced=True, verbs=apiserver.VERBS, subresources={"status"}
    )
    names = dict(BUILTIN_NAMES)
    columns: dict[str, list[Column]] = dict(BUILTIN_COLUMNS)
    for text in apiserver._crd_texts():
        crd = yaml.safe_load(text)
        spec = crd["spec"]
        n = spec["names"]
        for version in spec["versions"]:
            key = f"{spec['group']}/{version['name']}/{n['plural']}"
            names[key] = (n.get("singular") or n["kind"].lower(), tuple(n.get("shortNames") or ()))
            columns[n["plural"]] = [
                (c["name"], c.get("type", "string"), c["jsonPath"], int(c.get("priority", 0)))
                for c in version.get("additionalPrinterColumns") or ()
            ]
            categories = tuple(n.get("categories") or ())
            info: Any = emulator.resources.get(key)
            if info is not None:
                info.categories = set(categories)
    for key, (singular, short) in names.items():
        info = emulator.resources.get(key)
        if info is not None:
            info.singular = singular
            info.shortnames = set(short)
    if isinstance(emulator, DemoEmulator):
        emulator.columns = columns


class DemoEmulator(apiserver.Emulator):
    """The integration suite's API server, plus what kubectl needs."""

    columns: dict[str, list[Column]] = {}

    async def _serve_version(self, request: Any) -> Any:
        out: Any = await super()._serve_version(request)
        if out.get("groupVersion") == "/v1":
            out["groupVersion"] = "v1"
        for entry in out.get("resources") or ():
            if "/" in str(entry.get("name")):  # a subresource is no name to ask for
                entry["shortNames"], entry["categories"] = [], []
        return out

    async def _serve_list(self, request: Any) -> Any:
        if _wants_table(request):
            payload: Any = await kmock.KubernetesEmulator._serve_list(self, request)
            return self._table(request, payload.get("items") or [])
        return await super()._serve_list(request)

    async def _serve_fetch(self, request: Any) -> Any:
        if _wants_table(request):
            obj: Any = await kmock.KubernetesEmulator._serve_fetch(self, request)
            return self._table(request, [obj])
        return await super()._serve_fetch(request)

    def _table(self, request: Any, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        plural = str(getattr(request.resource, "plural", "") or "")
        cols = self.columns.get(plural, [("Age", "date", ".metadata.creationTimestamp", 0)])
        cols = [c for c in cols if c[0] != "Name"]
        now = datetime.datetime.now(datetime.UTC)
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {},
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0},
                *(
                    {
                        "name": n,
                        "type": "string" if t == "date" else t,
                        "format": "",
                        "description": "",
                        "priority": p,
                    }
                    for n, t, _, p in cols
                ),
            ],
            "rows": [
                {
                    "cells": [
                        (item.get("metadata") or {}).get("name", ""),
                        *(_cell(item, t, path, now) for _, t, path, _ in cols),
                    ],
                    "object": item,
                }
                for item in items
            ],
        }


def _wants_table(request: Any) -> bool:
    return "as=Table" in str((request.headers or {}).get("Accept", "")).replace(" ", "")


def _cell(obj: Mapping[str, Any], type_: str, path: str, now: datetime.datetime) -> Any:
    if path == "@ready":
        statuses = (obj.get("status") or {}).get("containerStatuses") or []
        containers = (obj.get("spec") or {}).get("containers") or []
        return f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers)}"
    if path == "@phase":
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        if meta.get("deletionTimestamp"):
            return "Terminating"
        for s in status.get("containerStatuses") or ():
            reason = ((s.get("state") or {}).get("waiting") or {}).get("reason")
            if reason:
                return reason
        return status.get("phase", "")
    if path == "@deployready":
        st = obj.get("status") or {}
        return f"{st.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 1)}"
    values = jsonpath(obj, path)
    if type_ == "date":
        return _age(values[0] if values else None, now)
    if not values:
        return "" if type_ == "string" else None
    value = values[0]
    return (
        value
        if not isinstance(value, (list, dict))
        else yaml.safe_dump(value, default_flow_style=True).strip()
    )


_STEP = re.compile(r'\.([A-Za-z0-9_-]+)|\[\?\(@\.([A-Za-z0-9_]+)=="([^"]*)"\)\]|\[(\d+)\]|\["([^"]+)"\]')


def jsonpath(obj: Any, path: str) -> list[Any]:
    """The values at a printer column's JSONPath: `.a.b`, `[0]`, `["key"]`, `[?(@.f=="v")]`."""
    current = [obj]
    for m in _STEP.finditer(path):
        field, filt_key, filt_value, index, quoted = m.groups()
        nxt: list[Any] = []
        for value in current:
            if (field or quoted) and isinstance(value, Mapping) and (field or quoted) in value:
                nxt.append(value[field or quoted])
            elif index is not None and isinstance(value, list) and int(index) < len(value):
                nxt.append(value[int(index)])
            elif filt_key and isinstance(value, list):
                nxt += [v for v in value if isinstance(v, Mapping) and str(v.get(filt_key)) == filt_value]
        current = nxt
    return current


def _age(stamp: Any, now: datetime.datetime) -> str:
    try:
        then = datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    seconds = int((now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"
