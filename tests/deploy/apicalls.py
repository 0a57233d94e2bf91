"""The Kubernetes API calls the operator makes, derived from its code, and an RBAC check of them.

Nobody lists the calls by hand, so a new call in the code fails the RBAC test until the
chart grants it. Three sources, joined:

- the operator's own client calls: every method of a `kubernetes.client` API class named
  in a module of `llmgw` that imports `kubernetes`, turned into verb and resource by
  the HTTP method and path the generated client sends (custom-object paths expanded
  with the CRDs in `crds/` for a status, with the other projects' CRDs the operator owns
  objects of, from its own table `llmgw.core.desired.APIS`, for whole objects);
- kopf's calls for the handlers in `llmgw.handlers.registry`: list and watch of every
  resource a handler (index, event, daemon, timer, change, webhook) is registered for,
  plus what kopf itself does (list/watch of CRDs and Namespaces to find what to serve,
  Events it posts, webhook configurations it manages);
- a recorded run: every request the real operator sends to the emulated API server
  (see `test_rbac.py`), which catches what kopf does at run time (peering, for one).

`allowed` is a small RBAC authorizer over rendered manifests: a call is allowed when a
(Cluster)Role bound to the operator's ServiceAccount has a rule that matches it.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes.client
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "llmgw"

ANY = "*any-served-namespace*"
"""The namespace of a call made in whichever namespace an object lives: every one served."""

Raw = dict[str, Any]


@dataclasses.dataclass(frozen=True, order=True)
class Call:
    verb: str
    group: str
    resource: str  # plural, or plural/subresource
    namespace: str | None  # None: a cluster-scoped resource, or across all namespaces
    name: str | None = None
    source: str = dataclasses.field(default="", compare=False)

    def key(self) -> tuple[str, str, str]:
        return (self.verb, self.group, self.resource)

    def __str__(self) -> str:
        where = "cluster-wide" if self.namespace is None else f"in namespace {self.namespace}"
        group = self.group or "core"
        named = f" {self.name}" if self.name else ""
        return f"{self.verb} {group}/{self.resource}{named} {where} ({self.source})"


# --- what the Kubernetes API has: namespaced resources, from the generated client ----------


@functools.cache
def client_methods() -> Mapping[str, tuple[tuple[str, str, str], ...]]:
    """Method name -> (API class module, HTTP method, path) of every generated-client API method.

    Read from the generated sources (`kubernetes/client/api/*_api.py`): each method's
    `_<name>_serialize` names its HTTP method and resource path.
    """
    out: dict[str, list[tuple[str, str, str]]] = {}
    api_dir = Path(kubernetes.client.__file__).parent / "api"
    pattern = re.compile(r"def _(\w+)_serialize\(.*?method='(\w+)',\s*resource_path='([^']*)'", re.S)
    for file in sorted(api_dir.glob("*_api.py")):
        for name, method, path in pattern.findall(file.read_text(encoding="utf-8")):
            out.setdefault(name, []).append((file.stem, method, path))
    return {k: tuple(v) for k, v in out.items()}


def _split(path: str) -> tuple[str, list[str]]:
    """`/apis/apps/v1/namespaces/{namespace}/deployments` -> ("apps", [...rest])."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        return "", parts[2:]
    if parts[0] == "apis" and len(parts) >= 4:
        return parts[1], parts[3:]
    return "", []  # discovery, version, and other non-resource paths


@functools.cache
def crds() -> tuple[Raw, ...]:
    return tuple(yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml")))


@functools.cache
def foreign_custom_resources() -> tuple[tuple[str, str], ...]:
    """(group, plural) of the other projects' CRDs a gateway owns objects of (HTTPRoute,
    ServiceMonitor): the operator's own table of where each owned kind is served, those of
    its kinds whose group is not built in (a built-in group has no dot)."""
    from llmgw.core import desired

    return tuple((api.group, api.plural) for api in desired.APIS.values() if "." in api.group)


@functools.cache
def namespaced_resources() -> frozenset[tuple[str, str]]:
    """(group, plural) of every namespaced resource the client knows, of our CRDs, and of the
    other CRDs the operator writes (all namespaced)."""
    out = set()
    for calls in client_methods().values():
        for _, _, path in calls:
            group, rest = _split(path)
            if rest[:2] == ["namespaces", "{namespace}"] and len(rest) >= 3 and not rest[2].startswith("{"):
                out.add((group, rest[2]))
    for crd in crds():
        if crd["spec"]["scope"] == "Namespaced":
            out.add((crd["spec"]["group"], crd["spec"]["names"]["plural"]))
    out.update(foreign_custom_resources())
    return frozenset(out)


def _verb(method: str, named: bool) -> str:
    return {
        ("GET", True): "get",
        ("GET", False): "list",
        ("POST", False): "create",
        ("POST", True): "create",
        ("PUT", True): "update",
        ("PATCH", True): "patch",
        ("DELETE", True): "delete",
        ("DELETE", False): "deletecollection",
    }[(method, named)]


def _calls_of_path(method: str, path: str, source: str) -> Iterator[Call]:
    group, rest = _split(path)
    if not rest:
        return
    namespace: str | None = None
    if rest[:2] == ["namespaces", "{namespace}"] and len(rest) >= 3:
        namespace = ANY
        rest = rest[2:]
    plural, named, sub = rest[0], len(rest) >= 2, "/".join(rest[2:])
    if plural == "watch":  # the deprecated /watch/ paths
        yield from (dataclasses.replace(c, verb="watch") for c in _calls_of_path(method, path, source))
        return
    if (group, plural) == ("{group}", "{plural}"):
        # A CustomObjectsApi method: the operator writes only the status of its own kinds, and
        # whole objects only of the other projects' kinds it owns (HTTPRoute, ServiceMonitor).
        if sub:
            pairs = [(c["spec"]["group"], c["spec"]["names"]["plural"]) for c in crds()]
        else:
            pairs = list(foreign_custom_resources())
    else:
        pairs = [(group, plural)]
    for g, p in pairs:
        yield Call(_verb(method, named), g, f"{p}/{sub}" if sub else p, namespace, None, source)


# --- source 1: the operator's own calls through the official client ---------------------------


def _modules_using_the_client() -> list[Path]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "kubernetes" or n.startswith("kubernetes.") for n in names):
                out.append(path)
                break
    return out


GENERIC = ("kube/watchcache.py",)
"""Modules that name client methods for any kind they are given (`watch_calls` derives theirs)."""


def client_calls() -> set[Call]:
    """Every generated-client API method the operator's modules name, as calls."""
    methods = client_methods()
    out: set[Call] = set()
    for path in _modules_using_the_client():
        if path.relative_to(PACKAGE).as_posix() in GENERIC:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        for attr in sorted(attrs & methods.keys()):
            for module, method, resource_path in methods[attr]:
                source = f"{path.relative_to(ROOT)}: {module}.{attr}"
                out.update(_calls_of_path(method, resource_path, source))
    return out


# --- source 2: kopf, for the handlers the operator registers -----------------------------------

KOPF_HANDLER_REGISTRIES = ("_indexing", "_watching", "_spawning", "_changing", "_webhooks")
WEBHOOK_CONFIGURATIONS = {
    "validating": "validatingwebhookconfigurations",
    "mutating": "mutatingwebhookconfigurations",
}


def kopf_calls(reg: Any, webhook_configuration: str | None = None) -> set[Call]:
    """What kopf calls to serve the handlers of `reg` (a kopf.OperatorRegistry).

    `webhook_configuration`: the name in `settings.admission.managed`, which kopf creates
    (try, then tolerate a conflict) and patches by name.
    """
    out = {
        # kopf finds resources by discovery (no RBAC needed) and then watches CRDs for
        # changes; it lists and watches Namespaces to serve namespace patterns.
        Call("list", "apiextensions.k8s.io", "customresourcedefinitions", None, None, "kopf: scanning"),
        Call("watch", "apiextensions.k8s.io", "customresourcedefinitions", None, None, "kopf: scanning"),
        Call("list", "", "namespaces", None, None, "kopf: namespace observer"),
        Call("watch", "", "namespaces", None, None, "kopf: namespace observer"),
        # kopf posts Events (handler errors; the operator's own through kopf.event).
        Call("create", "", "events", ANY, None, "kopf: posting"),
    }
    namespaced = namespaced_resources()
    for attr in KOPF_HANDLER_REGISTRIES:
        for handler in getattr(reg, attr).get_all_handlers():
            selector = getattr(handler, "selector", None)
            if selector is None:
                continue
            plural = selector.plural or selector.any_name
            group = selector.group or ""
            scope = ANY if (group, plural) in namespaced else None
            source = f"kopf handler {handler.id!r} on {group or 'core'}/{plural}"
            out.add(Call("list", group, plural, scope, None, source))
            out.add(Call("watch", group, plural, scope, None, source))
            if attr == "_webhooks":
                kind = WEBHOOK_CONFIGURATIONS[
                    "mutating" if "mutat" in str(handler.reason).lower() else "validating"
                ]
                out.add(Call("create", "admissionregistration.k8s.io", kind, None, None, "kopf: webhooks"))
                out.add(
                    Call(
                        "patch",
                        "admissionregistration.k8s.io",
                        kind,
                        None,
                        webhook_configuration,
                        "kopf: webhooks",
                    )
                )
    return out


# --- source 2b: the operator's own watches (`llmgw.handlers.watches`) ---------------------------


def watch_calls() -> set[Call]:
    """The list and watch of each kind the operator's own informers keep (providers, chains,
    Services, EndpointSlices) and of Secrets' metadata (`llmgw.kube.secretversions`, listed
    only: `derived` adds its watch with the option). Their client methods are named once,
    generically, in `kube/watchcache.py`, which the scan above skips (`GENERIC`): it cannot
    tell which kinds they serve."""
    try:
        from llmgw.handlers import watches
        from llmgw.kube import secretversions
    except ImportError:  # pragma: no cover - a version of the operator without them
        return set()
    namespaced = namespaced_resources()
    out = set()
    sources = [(s, ("list", "watch"), "llmgw.handlers.watches") for s in watches.SOURCES.values()]
    sources.append((secretversions.SOURCE, ("list",), "llmgw.kube.secretversions"))
    for source, verbs, where in sources:
        group = source.api_version.rpartition("/")[0]
        scope = ANY if (group, source.plural) in namespaced else None
        for verb in verbs:
            out.add(Call(verb, group, source.plural, scope, None, f"{where}: {source.kind}"))
    return out


# --- source 3: a recorded run (see test_rbac.py) -----------------------------------------------


def recorded_call(
    method: str,
    resource: Any,
    namespace: str | None,
    name: str | None,
    sub: str | None,
    params: Mapping[str, str],
    agent: str,
) -> Call | None:
    """A request seen by the emulated API server, as a call; None for non-resource URLs."""
    if resource is None:
        return None
    group = resource.group or ""
    plural = resource.plural
    if not plural:
        return None
    if method == "GET":
        verb = (
            "watch" if str(params.get("watch", "")).lower() in ("true", "1") else ("get" if name else "list")
        )
    else:
        verb = _verb(method, bool(name))
    return Call(
        verb, group, f"{plural}/{sub}" if sub else plural, namespace or None, None, f"recorded: {agent}"
    )


# --- RBAC over rendered manifests ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Grants:
    """The rules bound to one ServiceAccount: cluster-wide, and per namespace."""

    cluster: tuple[Raw, ...]
    namespaced: Mapping[str, tuple[Raw, ...]]

    def rules(self) -> Iterator[Raw]:
        yield from self.cluster
        for rules in self.namespaced.values():
            yield from rules


def grants(docs: Iterable[Raw], sa_name: str, sa_namespace: str) -> Grants:
    docs = [d for d in docs if d]
    cluster_roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"}

    def binds(binding: Raw) -> bool:
        return any(
            s.get("kind") == "ServiceAccount"
            and s.get("name") == sa_name
            and s.get("namespace", binding["metadata"].get("namespace")) == sa_namespace
            for s in binding.get("subjects") or ()
        )

    cluster: list[Raw] = []
    namespaced: dict[str, list[Raw]] = {}
    for b in docs:
        if b["kind"] == "ClusterRoleBinding" and binds(b):
            assert b["roleRef"]["kind"] == "ClusterRole"
            cluster.extend(cluster_roles[b["roleRef"]["name"]].get("rules") or ())
        elif b["kind"] == "RoleBinding" and binds(b):
            ns = b["metadata"]["namespace"]
            ref = b["roleRef"]
            role = cluster_roles[ref["name"]] if ref["kind"] == "ClusterRole" else roles[(ns, ref["name"])]
            namespaced.setdefault(ns, []).extend(role.get("rules") or ())
    return Grants(tuple(cluster), {ns: tuple(r) for ns, r in namespaced.items()})


def _matches(rule: Raw, call: Call) -> bool:
    if "nonResourceURLs" in rule:
        return False
    verbs, groups, resources = (
        rule.get("verbs") or (),
        rule.get("apiGroups") or (),
        rule.get("resources") or (),
    )
    names = rule.get("resourceNames") or ()
    return (
        ("*" in verbs or call.verb in verbs)
        and ("*" in groups or call.group in groups)
        and ("*" in resources or call.resource in resources)
        and (not names or (call.name is not None and call.name in names))
    )


def allowed(g: Grants, call: Call) -> bool:
    """Whether the Kubernetes RBAC authorizer would allow `call` (namespace ANY must be concrete)."""
    assert call.namespace != ANY, "make ANY concrete first"
    if any(_matches(r, call) for r in g.cluster):
        return True
    if call.namespace is None:
        return False
    return any(_matches(r, call) for r in g.namespaced.get(call.namespace, ()))


def concrete(calls: Iterable[Call], namespaces: Iterable[str]) -> set[Call]:
    """Each call with ANY as a namespace, once in each of `namespaces`."""
    out = set()
    spaces = list(namespaces)
    for c in calls:
        if c.namespace == ANY:
            out.update(dataclasses.replace(c, namespace=ns) for ns in spaces)
        else:
            out.add(c)
    return out


def granted_keys(g: Grants) -> set[tuple[str, str, str]]:
    """(verb, group, resource) of every rule bound, for the nothing-more check."""
    out = set()
    for rule in g.rules():
        for verb in rule.get("verbs") or ():
            for group in rule.get("apiGroups") or ():
                for resource in rule.get("resources") or ():
                    out.add((verb, group, resource))
    return out
