"""The chart's (and config/rbac's) RBAC allows every API call the operator makes, and nothing more.

The calls are derived, not listed by hand (see `apicalls.py`): from the operator's client
calls and kopf handler registrations, and from a recorded run of the real operator against
the emulated API server, cluster-wide and with `--namespace`. Each rendered set of roles
must allow every call, grant no (verb, resource) that no call needs, and on Secrets grant
create only (list and watch too with the opt-in `--watch-secret-versions`; never get).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

import loops
from llmgw import options, runner
from llmgw.handlers import registry

try:  # the admission webhook's handlers, where this version of the operator has them
    from llmgw.handlers import admission
except ImportError:  # pragma: no cover
    admission = None  # type: ignore[assignment]

from . import apicalls
from .apicalls import ANY, Call
from .conftest import NAMESPACE, RELEASE, VALUES_FILES, find

Raw = dict[str, Any]
Render = Callable[..., list[Raw]]
SERVED = ("ai", "team-a")  # the namespaces of the --namespace renders and run


def _options(**kw: Any) -> options.Options:
    """options.Options with only the fields this version of the operator has."""
    names = {f.name for f in dataclasses.fields(options.Options)}
    return options.Options(**{k: v for k, v in kw.items() if k in names})


LEASES = ("coordination.k8s.io", "leases")
LEASE_NAME = "llmgw-operator"
SECRETS = ("", "secrets")


def derived(**options: Any) -> set[Call]:
    """The calls of an operator started with these options.

    The option-gated families the code scan cannot tell apart: leader election's Lease
    (its client calls (get, create, update) go to the Lease in the release's namespace, by
    name, and only with --leader-election; kopf's list/watch of Leases follows the options),
    and the metadata-only list of Secrets (`kube/secretversions.py`), only with
    --watch-secret-versions, whose one client method also watches (`watch=True`).
    """
    managed = getattr(admission, "MANAGED", None) if admission is not None else None
    calls = apicalls.client_calls() | apicalls.watch_calls()
    calls |= apicalls.kopf_calls(registry.build(_options(**options)), managed)
    out = set()
    for c in calls:
        if (c.group, c.resource) == LEASES and c.verb not in ("list", "watch"):
            if not options.get("leader_election"):
                continue
            c = dataclasses.replace(c, namespace=NAMESPACE, name=None if c.verb == "create" else LEASE_NAME)
        if (c.group, c.resource) == SECRETS and c.verb == "list" and not c.source.startswith("kopf"):
            if not options.get("watch_secret_versions"):
                continue
            out.add(dataclasses.replace(c, verb="watch"))
        out.add(c)
    return out


# --- the recorded run ----------------------------------------------------------------------------


async def _record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, namespaces: tuple[str, ...]) -> set[Call]:
    import kmock
    import kube_emulator
    from harness import Cluster, _kubeconfig, eventually, gateway, provider

    calls: set[Call] = set()

    class Recording(kube_emulator.Emulator):  # type: ignore[misc]
        async def _handle(self, request: Any) -> Any:
            agent = str((request.headers or {}).get("User-Agent", ""))
            if agent != "llmgw-tests":
                method = getattr(request.method, "name", str(request.method)).upper()
                call = apicalls.recorded_call(
                    method,
                    request.resource,
                    request.namespace,
                    request.name,
                    getattr(request, "subresource", None),
                    request.params or {},
                    agent.split("/", maxsplit=1)[0],
                )
                if call is not None:
                    calls.add(call)
            return await super()._handle(request)

    async with Recording() as emulator, kmock.Server(emulator) as server:
        kube_emulator.register(emulator)
        url = str(server.url).rstrip("/")
        monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, url)))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        cluster = Cluster(url, emulator)
        try:
            for ns in ("default", *SERVED):
                await cluster._json(
                    "POST",
                    "/api/v1/namespaces",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                )
            stop, ready = threading.Event(), threading.Event()
            errors: list[BaseException] = []
            opts = _options(namespaces=namespaces, settle_seconds=0.1, max_settle_seconds=2.0)

            def main() -> None:
                try:
                    asyncio.run(runner.operate(opts, stop_flag=stop, ready_flag=ready))
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            thread = threading.Thread(target=main, name="llmgw-operator-rbac", daemon=True)
            thread.start()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, ready.wait, 15)
            try:
                # A provider of an in-cluster backend, a chain, and a gateway without a master key
                # Secret (so the operator creates one), owning every kind it can; then a spec
                # change, so it rolls again.
                await cluster.apply(provider("vllm", ["llama", "qwen"], namespace="ai"))
                await cluster.apply(apicalls_chain())
                await cluster.apply(gateway(namespace="ai", **OWNING))
                await eventually(lambda: cluster.get("Deployment", "ai", "gw"), timeout=20, what="Deployment")
                await eventually(lambda: _revision(cluster), timeout=20, what="gateway status")
                await eventually(lambda: _owning(cluster, COMPANIONS), timeout=20, what="every companion")
                first = await _revision(cluster)
                await cluster.patch("LLMGateway", "ai", "gw", {"spec": {"numRetries": 5}})
                await eventually(
                    lambda: _revision(cluster, other_than=first), timeout=20, what="a second revision"
                )
                # Someone edits each companion: the operator patches it back.
                for kind in COMPANIONS:
                    tampered = {"metadata": {"annotations": {"llmgateway.dev/spec-hash": "edited"}}}
                    await cluster.patch(kind, "ai", "gw", tampered)
                await eventually(lambda: _restored(cluster), timeout=20, what="the companions patched back")
                # And without them, the operator deletes them.
                await cluster.patch("LLMGateway", "ai", "gw", {"spec": WITHOUT_COMPANIONS})
                await eventually(lambda: _owning(cluster, ()), timeout=20, what="no companion left")
            finally:
                stop.set()
                await loop.run_in_executor(None, thread.join, 15)
            assert not thread.is_alive(), "the operator did not stop"
            assert not errors, errors
        finally:
            await cluster.session.close()
    return calls


COMPANIONS = ("HorizontalPodAutoscaler", "PodDisruptionBudget", "HTTPRoute", "ServiceMonitor")
OWNING: Raw = {
    "autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCPUUtilizationPercentage": 70},
    "disruptionBudget": {"maxUnavailable": 1},
    "route": {"parentRefs": [{"name": "public", "namespace": "gateways"}]},
    "metrics": {"enabled": True, "serviceMonitor": True},
}
"""A gateway that owns an object of every kind the operator writes."""
WITHOUT_COMPANIONS: Raw = {
    "autoscaling": None,
    "replicas": 1,  # one pod: no default disruption budget either
    "disruptionBudget": None,
    "route": None,
    "metrics": {"serviceMonitor": False},
}


async def _owning(cluster: Any, kinds: tuple[str, ...]) -> bool:
    gw = await cluster.get("LLMGateway", "ai", "gw")
    owned = [o["kind"] for o in ((gw or {}).get("status") or {}).get("owned") or ()]
    return owned == ["Deployment", "Service", *kinds]


async def _restored(cluster: Any) -> bool:
    for kind in COMPANIONS:
        obj = await cluster.get(kind, "ai", "gw")
        if obj["metadata"]["annotations"]["llmgateway.dev/spec-hash"] == "edited":
            return False
    return True


def apicalls_chain() -> Raw:
    from harness import chain

    return chain("llama-errors", "llama", ["qwen"], namespace="ai")


async def _revision(cluster: Any, other_than: str | None = None) -> str | None:
    gw = await cluster.get("LLMGateway", "ai", "gw")
    revision = ((gw or {}).get("status") or {}).get("revision")
    return revision if revision and revision != other_than else None


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[Call]]:
    """Every call of two short runs of the real operator: cluster-wide, and with --namespace."""
    out: dict[str, set[Call]] = {}
    with pytest.MonkeyPatch.context() as mp:
        out["cluster"] = loops.run(_record(tmp_path_factory.mktemp("cluster"), mp, ()))
    with pytest.MonkeyPatch.context() as mp:
        out["namespaced"] = loops.run(_record(tmp_path_factory.mktemp("namespaced"), mp, SERVED[:1]))
    return out


# --- checks -------------------------------------------------------------------------------------


def _denied(grants: apicalls.Grants, calls: Iterable[Call]) -> list[str]:
    return sorted(str(c) for c in calls if not apicalls.allowed(grants, c))


def _grants(objs: list[Raw]) -> apicalls.Grants:
    sa = find(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    namespace = find(objs, "Deployment")["metadata"]["namespace"]
    return apicalls.grants(objs, sa, namespace)


def test_the_derivation_sees_the_operators_calls() -> None:
    """A sanity floor: the derivation finds the writes of kube/client.py and kopf's watches."""
    keys = {c.key() for c in derived()}
    assert {
        ("create", "", "configmaps"),
        ("delete", "", "configmaps"),
        ("patch", "apps", "deployments"),
        ("patch", "llmgateway.dev", "llmgateways/status"),
        ("create", "", "secrets"),
        ("watch", "llmgateway.dev", "llmproviders"),
        ("list", "apiextensions.k8s.io", "customresourcedefinitions"),
        ("create", "", "events"),
    } <= keys


@pytest.mark.integration
def test_the_recorded_run_made_the_calls_the_code_says(recorded: dict[str, set[Call]]) -> None:
    """What the code names is what the operator really calls (a record is never empty)."""
    seen = {c.key() for c in recorded["cluster"]}
    assert ("create", "", "secrets") in seen, "the run created the master key Secret"
    assert ("patch", "apps", "deployments") in seen, "the run rolled the gateway a second time"
    for group, plural in (
        ("autoscaling", "horizontalpodautoscalers"),
        ("policy", "poddisruptionbudgets"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("monitoring.coreos.com", "servicemonitors"),
    ):
        for verb in ("create", "patch", "delete", "watch"):
            assert (verb, group, plural) in seen, f"the run made {verb} {group}/{plural}"
    assert ("watch", "llmgateway.dev", "llmgateways") in seen
    stray = seen - {c.key() for c in derived()}
    assert not stray, f"calls seen at run time that the code derivation misses: {sorted(stray)}"


@pytest.mark.integration
def test_cluster_wide_chart_allows_every_call(render: Render, recorded: dict[str, set[Call]]) -> None:
    grants = _grants(render())
    calls = apicalls.concrete(derived() | recorded["cluster"], ["ai", "some-team"])
    assert not _denied(grants, calls)


@pytest.mark.integration
def test_watch_namespaces_chart_allows_every_call_there_and_no_write_elsewhere(
    render: Render, recorded: dict[str, set[Call]]
) -> None:
    objs = render(sets=[f"watchNamespaces={{{','.join(SERVED)}}}"])
    grants = _grants(objs)
    calls = apicalls.concrete(derived() | recorded["namespaced"], SERVED)
    assert not _denied(grants, calls)
    elsewhere = {dataclasses.replace(c, namespace="kube-system") for c in derived() if c.namespace == ANY}
    allowed = sorted(str(c) for c in elsewhere if apicalls.allowed(grants, c))
    assert not allowed, f"granted outside watchNamespaces: {allowed}"


def test_kustomize_rbac_allows_every_call(kustomize: Callable[[str], list[Raw]]) -> None:
    grants = _grants(kustomize("config/default"))
    assert not _denied(grants, apicalls.concrete(derived(), ["ai", "some-team"]))


@pytest.mark.parametrize("source", ["chart", "chart-namespaced", "kustomize"])
def test_nothing_is_granted_that_no_call_needs(
    source: str, render: Render, kustomize: Callable[[str], list[Raw]]
) -> None:
    objs = {
        "chart": render,
        "chart-namespaced": lambda: render(sets=[f"watchNamespaces={{{','.join(SERVED)}}}"]),
        "kustomize": lambda: kustomize("config/default"),
    }[source]()
    extra = apicalls.granted_keys(_grants(objs)) - {c.key() for c in derived()}
    assert not extra, f"granted but never called: {sorted(extra)}"


def test_leader_election_is_exactly_what_the_option_needs(render: Render) -> None:
    """With leaderElection on (and watchNamespaces): the Lease by name in the release's namespace."""
    objs = render(VALUES_FILES["everything"])
    grants = _grants(objs)
    served = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    namespaces = [a.split("=", 1)[1] for a in served if a.startswith("--namespace=")]
    need = derived(leader_election=True, webhook=True, namespaces=tuple(namespaces))
    assert not _denied(grants, apicalls.concrete(need, namespaces))
    assert apicalls.granted_keys(grants) - {c.key() for c in need} == set()
    other = Call("update", *LEASES, NAMESPACE, "someone-elses-lease")
    assert not apicalls.allowed(grants, other), "update only the operator's own Lease"


def test_opt_in_access_is_exactly_what_the_options_need(render: Render) -> None:
    """The webhook (kopf manages its configuration) and --watch-secret-versions widen the access."""
    objs = render(VALUES_FILES["opt-in-access"])
    grants = _grants(objs)
    need = derived(webhook=True, watch_secret_versions=True)
    assert not _denied(grants, apicalls.concrete(need, ["ai", "some-team"]))
    assert apicalls.granted_keys(grants) - {c.key() for c in need} == set()
    patch = Call(
        "patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", None, "someone-else"
    )
    assert not apicalls.allowed(grants, patch), "patch only validating.llmgateway.dev"


@pytest.mark.parametrize("values", sorted(VALUES_FILES))
def test_secrets_create_only_and_never_get(render: Render, values: str) -> None:
    objs = render(VALUES_FILES[values])
    verbs: set[str] = set()
    for rule in _grants(objs).rules():
        assert "*" not in rule.get("verbs", ()), rule
        assert "*" not in rule.get("resources", ()), rule
        assert "*" not in rule.get("apiGroups", ()), rule
        if "" in rule.get("apiGroups", ()) and "secrets" in rule.get("resources", ()):
            verbs.update(rule["verbs"])
    opted_in = values == "opt-in-access"
    assert verbs == ({"create", "list", "watch"} if opted_in else {"create"})
    assert not [o for o in objs if o["kind"] in ("Role", "ClusterRole") and "get" in str(_secret_verbs(o))]


def _secret_verbs(role: Raw) -> list[str]:
    return [v for r in role.get("rules") or () if "secrets" in r.get("resources", ()) for v in r["verbs"]]


def test_the_operator_is_bound_to_its_own_service_account(render: Render) -> None:
    objs = render()
    sa = find(objs, "ServiceAccount")
    assert sa["metadata"]["name"] == RELEASE
    assert sa["metadata"]["namespace"] == NAMESPACE
    assert _grants(objs).cluster, "the ClusterRoleBinding binds the ServiceAccount the pod runs as"
