"""The Helm chart: real `helm lint --strict` and `helm template`, validated against the Kubernetes schemas.

Rendered with the default values, with `ci/everything-values.yaml` (every optional part on),
with `ci/opt-in-access-values.yaml` and with `ci/production-values.yaml` (the default gateway
with every production-workload field); every object validates with kubernetes-validate
(strict: an unknown field is an error), our own kinds against our CRDs, and the few
third-party kinds (ServiceMonitor, cert-manager) by what must hold between the objects.

`values.schema.json` types `defaultGateway.spec` with the LLMGateway spec's own JSON schema
(its `definitions`, generated from llmgw.api). When the API changes, refresh them with

    LLMGW_UPDATE_GOLDEN=1 .venv/bin/pytest tests/deploy/test_chart.py -k gateway_spec_schema
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

import llmgw
from llmgw import crdfiles
from llmgw.api import crdgen, workload
from llmgw.api import gateway as gateway_api
from llmgw.api import pod as pod_api

from . import conftest
from .conftest import CHART, KUBE_VERSION, NAMESPACE, ROOT, find, run

Raw = dict[str, Any]
Render = Callable[..., list[Raw]]
PRODUCTION = CHART / "ci" / "production-values.yaml"
VALUES_FILES = {**conftest.VALUES_FILES, "production": (PRODUCTION,)}
EXAMPLE = ROOT / "docs" / "examples" / "production-gateway.yaml"
SCHEMA = CHART / "values.schema.json"
UPDATE = "LLMGW_UPDATE_GOLDEN"
THIRD_PARTY = {"monitoring.coreos.com/v1", "cert-manager.io/v1"}
CRD_SCHEMAS = {
    (d["spec"]["group"], d["spec"]["names"]["kind"]): d["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for d in map(yaml.safe_load, crdgen.crd_files().values())
}


def validate(obj: Raw) -> None:
    """Validate one manifest: Kubernetes kinds strictly, ours against our CRDs."""
    group = obj["apiVersion"].rpartition("/")[0]
    if (group, obj["kind"]) in CRD_SCHEMAS:
        jsonschema.validate(obj, CRD_SCHEMAS[(group, obj["kind"])])
        return
    if obj["apiVersion"] in THIRD_PARTY:
        assert obj["metadata"]["name"], obj
        assert obj.get("spec"), obj
        return
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(map(str, exc.path))
        pytest.fail(f"{obj['kind']} {obj['metadata'].get('name')}: {where}: {exc.message}", pytrace=False)


@pytest.fixture(params=sorted(VALUES_FILES), scope="module")
def values(request: pytest.FixtureRequest) -> tuple[Path, ...]:
    return VALUES_FILES[request.param]


@pytest.fixture(scope="module")
def everything(render: Render) -> list[Raw]:
    return render(VALUES_FILES["everything"])


# --- lint and render --------------------------------------------------------------------------


def test_helm_lint_strict(helm: str, values: tuple[Path, ...]) -> None:
    args = [helm, "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION]
    for v in values:
        args += ["--values", str(v)]
    out = run(args)
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout
    assert "[WARNING]" not in out.stdout, out.stdout
    assert "[ERROR]" not in out.stdout, out.stdout


def test_every_rendered_object_validates(render: Render, values: tuple[Path, ...]) -> None:
    objs = render(values)
    assert objs
    for obj in objs:
        validate(obj)


def test_kubernetes_validate_is_strict() -> None:
    """The validator itself refuses a misspelt field, so the test above checks something."""
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replica": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSION, strict=True)


def test_default_render_is_the_operator_and_its_crds(render: Render) -> None:
    kinds = sorted(o["kind"] for o in render())
    assert kinds == sorted(
        ["CustomResourceDefinition"] * 3
        + ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service"]
    )


def test_everything_on_renders_every_optional_part(everything: list[Raw]) -> None:
    kinds = {o["kind"] for o in everything}
    assert {
        "ServiceMonitor",
        "PodDisruptionBudget",
        "Certificate",
        "Issuer",
        "LLMGateway",
        "ConfigMap",
        "Role",
        "RoleBinding",
    } <= kinds
    namespaces = {o["metadata"]["namespace"] for o in everything if o["kind"] == "RoleBinding"}
    assert namespaces == {"ai-platform", "team-a", NAMESPACE}, "the watched ones, and the Lease's"


# --- the CRDs -------------------------------------------------------------------------------------


def test_chart_crd_files_are_the_generated_crds() -> None:
    stale = crdfiles.check_crds(CHART / "files" / "crds")
    assert not stale, f"{', '.join(map(str, stale))}: differ from llmgw.api; run `make chart-crds`"
    assert sorted(p.name for p in (CHART / "files" / "crds").iterdir()) == sorted(crdgen.crd_files())


def test_rendered_crds_equal_the_generated_ones_and_are_kept(render: Render) -> None:
    generated = {d["metadata"]["name"]: d for d in map(yaml.safe_load, crdgen.crd_files().values())}
    rendered = [o for o in render() if o["kind"] == "CustomResourceDefinition"]
    assert {c["metadata"]["name"] for c in rendered} == set(generated)
    for crd in rendered:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["spec"] == generated[crd["metadata"]["name"]]["spec"], "the template changed a CRD"


def test_crds_install_false_leaves_them_out(render: Render) -> None:
    assert not [o for o in render(sets=["crds.install=false"]) if o["kind"] == "CustomResourceDefinition"]


def test_crd_annotations_are_added_for_argo_cd(everything: list[Raw]) -> None:
    for crd in (o for o in everything if o["kind"] == "CustomResourceDefinition"):
        assert crd["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"


# --- the operator's Deployment ---------------------------------------------------------------


def test_operator_pod_is_restricted(render: Render, values: tuple[Path, ...]) -> None:
    pod = find(render(values), "Deployment")["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert isinstance(psc["runAsUser"], int)
    assert psc["runAsUser"] > 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]


def test_operator_probes_its_liveness_endpoint(render: Render) -> None:
    (container,) = find(render(), "Deployment")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert f"--health-port={ports['health']}" in container["args"]
    assert f"--metrics-port={ports['metrics']}" in container["args"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_one_operator_at_a_time(render: Render) -> None:
    """kopf peering is standalone: one replica, and upgrades never overlap two operators."""
    deployment = find(render(), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_image_is_pinned_to_the_operator_version(render: Render, everything: list[Raw]) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == llmgw.__version__
    (container,) = find(render(), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/llmgw/llmgw:{llmgw.__version__}"
    (container,) = find(everything, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("ghcr.io/llmgw/llmgw@sha256:")


def test_watch_namespaces_become_arguments(everything: list[Raw]) -> None:
    (container,) = find(everything, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [a for a in container["args"] if a.startswith("--namespace=")] == [
        "--namespace=ai-platform",
        "--namespace=team-a",
    ]


def test_operator_arguments_are_llmgw_run_flags(render: Render, values: tuple[Path, ...]) -> None:
    """Every flag the chart passes is one `llmgw run` knows, with the value the chart means."""
    from llmgw import cli

    (container,) = find(render(values), "Deployment")["spec"]["template"]["spec"]["containers"]
    args = cli._parser().parse_args(["run", *container["args"]])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (args.metrics_port, args.health_port) == (ports["metrics"], ports["health"])
    if "webhook" in ports:
        assert args.webhook is True
        assert args.webhook_port == ports["webhook"]


def _client_limits(objs: list[Raw]) -> tuple[float | None, int, int]:
    """--api-qps, --api-burst and --status-concurrency as `llmgw run` reads the operator's args."""
    from llmgw import cli

    (container,) = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    args = cli._parser().parse_args(["run", *container["args"]])
    return args.api_qps, args.api_burst, args.status_concurrency


def test_client_limits_default_to_the_operators_own(render: Render) -> None:
    """The chart passes the rate limit and the status writes' concurrency explicitly, with the
    operator's defaults: `helm show values` tells what the operator does."""
    from llmgw import options

    values = yaml.safe_load((CHART / "values.yaml").read_text())["operator"]
    assert (values["apiQPS"], values["apiBurst"], values["statusConcurrency"]) == (
        options.API_QPS_AUTO,
        options.API_BURST,
        options.STATUS_CONCURRENCY,
    )
    defaults = options.Options()
    assert _client_limits(render()) == (defaults.api_qps, defaults.api_burst, defaults.status_concurrency)


@pytest.mark.parametrize(
    ("operator", "wanted"),
    [
        ({"apiQPS": 50.5, "apiBurst": 100, "statusConcurrency": 20}, (50.5, 100, 20)),
        ({"apiQPS": 0}, (0.0, 400, 10)),  # 0: no client-side limit
        ({"apiQPS": 200}, (200.0, 400, 10)),  # a number is honoured, APF or not
        # Large numbers come through as integers, never as Go's "1e+07" (which --api-burst refuses).
        ({"apiQPS": 1000000, "apiBurst": 10000000, "statusConcurrency": 1}, (1e6, 10000000, 1)),
    ],
)
def test_client_limits_become_arguments(
    render: Render, tmp_path: Path, operator: Raw, wanted: tuple[float, int, int]
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"operator": operator}))
    objs = render([path])
    assert _client_limits(objs) == wanted
    (container,) = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert f"--api-burst={wanted[1]}" in container["args"]
    assert f"--status-concurrency={wanted[2]}" in container["args"]


# --- metrics, webhook, PDB, default gateway ----------------------------------------------------


def test_service_monitor_scrapes_the_metrics_service(everything: list[Raw]) -> None:
    service = find(everything, "Service", "llmgw-metrics")
    monitor = find(everything, "ServiceMonitor")
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["honorLabels"] is True, "llmgw's namespace/gateway labels must not be renamed"


def test_service_monitor_needs_the_service(helm: str) -> None:
    out = run(
        [
            helm,
            "template",
            "x",
            str(CHART),
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.service.enabled=false",
        ],
        check=False,
    )
    assert out.returncode != 0
    assert "needs metrics.service.enabled" in out.stderr


def test_webhook_certificate_reaches_the_pod_as_a_volume(everything: list[Raw]) -> None:
    cert = find(everything, "Certificate")
    issuer = find(everything, "Issuer")
    service = find(everything, "Service", "llmgw-webhook")
    pod = find(everything, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    host = f"{service['metadata']['name']}.{NAMESPACE}.svc"
    assert cert["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]
    assert host in cert["spec"]["dnsNames"]
    assert f"--webhook-host={host}" in container["args"]
    (port,) = service["spec"]["ports"]
    assert f"--webhook-port={port['port']}" in container["args"], (
        "the URL the operator publishes is host:port"
    )
    secrets = {v["secret"]["secretName"]: v["name"] for v in pod["volumes"] if "secret" in v}
    assert list(secrets) == [cert["spec"]["secretName"]]
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}[
        secrets[cert["spec"]["secretName"]]
    ]
    assert f"--webhook-cert-dir={mount}" in container["args"]
    assert not [o for o in everything if o["kind"] == "ValidatingWebhookConfiguration"], (
        "the operator owns it"
    )


def test_webhook_without_a_certificate_self_signs(render: Render) -> None:
    pod = find(render(sets=["webhook.enabled=true"]), "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--webhook" in container["args"]
    assert not [a for a in container["args"] if a.startswith("--webhook-cert-dir")]
    assert not [v for v in pod["volumes"] if "secret" in v]


def test_pdb_that_would_block_drains_is_refused(helm: str, render: Render) -> None:
    out = run(
        [
            helm,
            "template",
            "x",
            str(CHART),
            "--set",
            "podDisruptionBudget.enabled=true",
            "--set",
            "podDisruptionBudget.minAvailable=1",
        ],
        check=False,
    )
    assert out.returncode != 0
    assert "would block every node drain" in out.stderr
    pdb = find(render(sets=["podDisruptionBudget.enabled=true"]), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1


def test_default_gateway_is_a_valid_llmgateway_on_the_pinned_image(everything: list[Raw]) -> None:
    gw = find(everything, "LLMGateway")
    validate(gw)
    assert gw["metadata"]["namespace"] == "ai-platform"
    assert gw["spec"]["image"] == gateway_api.DEFAULT_IMAGE
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["defaultGateway"]["spec"]["image"] == gateway_api.DEFAULT_IMAGE
    annotations = gw["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/sync-wave"] == "1"


# --- the default gateway as a production workload -----------------------------------------------

WORKLOAD_FIELDS = (
    "pod",
    "env",
    "envFrom",
    "probes",
    "autoscaling",
    "disruptionBudget",
    "service",
    "route",
    "metrics",
    "generalSettings",
    "database",
)
"""The LLMGateway spec fields that run the gateway as a production workload (issue 11)."""


def _aliases(model: Any) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def _strictly_valid_gateway(gw: Raw) -> gateway_api.LLMGateway:
    """Valid by the CRD's schema, by the strict editor schema (an unknown field is an error,
    which the CRD's structural schema would prune instead), and by the API's own rules (the
    ones the CRD says in CEL: replicas with autoscaling, the startup allowance, ...)."""
    validate(gw)
    strict = crdgen.json_schema("LLMGateway")
    errors = sorted(jsonschema.Draft202012Validator(strict).iter_errors(gw), key=str)
    assert not errors, "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)
    return gateway_api.LLMGateway.model_validate(gw)


def test_production_values_set_every_workload_field() -> None:
    spec = yaml.safe_load(PRODUCTION.read_text())["defaultGateway"]["spec"]
    assert set(WORKLOAD_FIELDS) <= set(spec), set(WORKLOAD_FIELDS) - set(spec)
    assert set(spec["pod"]) == _aliases(pod_api.PodSettings)
    assert set(spec["pod"]["metadata"]) == {"labels", "annotations"}
    assert set(spec["probes"]) == {"startup", "liveness", "readiness"}
    assert set(spec["metrics"]) == {"enabled", "serviceMonitor"}
    assert set(spec["service"]) == {"type", "annotations", "labels"}
    assert set(spec["route"]) == {"parentRefs", "hostnames"}
    assert any("os.environ/" in str(v) for v in spec["litellmSettings"].values())
    assert "replicas" not in spec, "replicas with autoscaling is refused"


def test_production_gateway_passes_through_and_validates(render: Render) -> None:
    gw = find(render(VALUES_FILES["production"]), "LLMGateway")
    spec = yaml.safe_load(PRODUCTION.read_text())["defaultGateway"]["spec"]
    assert gw["spec"] == spec, "the chart passes the spec through as it is"
    model = _strictly_valid_gateway(gw)
    assert model.spec.autoscaling is not None
    assert model.spec.effective_replicas == model.spec.autoscaling.min_replicas
    assert model.spec.rollout.progress_deadline_seconds >= model.spec.probes.startup_allowance_seconds


def test_readme_production_gateway_given_to_the_chart_renders_the_same_spec(
    render: Render, tmp_path: Path
) -> None:
    """Every field of the README's example is a value of the chart, passed through unchanged."""
    example = yaml.safe_load(EXAMPLE.read_text())
    values = tmp_path / "example-values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "defaultGateway": {
                    "enabled": True,
                    "name": example["metadata"]["name"],
                    "namespace": example["metadata"]["namespace"],
                    "spec": example["spec"],
                }
            }
        )
    )
    gw = find(render([values]), "LLMGateway")
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["defaultGateway"]["spec"]
    assert gw["spec"] == {**defaults, **example["spec"]}, "the chart's defaults, then the example"
    _strictly_valid_gateway(gw)


def test_default_gateway_leaves_replicas_to_the_operator(render: Render) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert "replicas" not in values["defaultGateway"]["spec"]
    gw = find(render(sets=["defaultGateway.enabled=true"]), "LLMGateway")
    assert "replicas" not in gw["spec"]
    assert _strictly_valid_gateway(gw).spec.effective_replicas == workload.DEFAULT_REPLICAS


def test_replicas_with_autoscaling_is_refused_at_helm_time(helm: str, render: Render, tmp_path: Path) -> None:
    args = [helm, "template", "x", str(CHART), "--values", str(PRODUCTION)]
    out = run([*args, "--set", "defaultGateway.spec.replicas=2"], check=False)
    assert out.returncode != 0
    assert "defaultGateway.spec: set replicas or autoscaling, not both" in out.stderr
    assert "--set defaultGateway.spec.replicas=null" in out.stderr
    # An older release's replicas: 2 (--reuse-values), dropped as the message says.
    older = tmp_path / "older-values.yaml"
    older.write_text("defaultGateway:\n  spec:\n    replicas: 2\n")
    gw = find(render([PRODUCTION, older], sets=["defaultGateway.spec.replicas=null"]), "LLMGateway")
    assert "replicas" not in gw["spec"]
    assert gw["spec"]["autoscaling"]
    # replicas without autoscaling stays the user's
    gw = find(render(sets=["defaultGateway.enabled=true", "defaultGateway.spec.replicas=0"]), "LLMGateway")
    assert gw["spec"]["replicas"] == 0


def test_grafana_dashboard_configmap_holds_the_dashboard(everything: list[Raw]) -> None:
    cm = find(everything, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((ROOT / "config" / "grafana" / "llmgw.json").read_text())
    assert json.loads(cm["data"]["llmgw.json"]) == shipped


def test_notes_tell_the_next_command(helm: str) -> None:
    out = run([helm, "install", "llmgw", str(CHART), "--dry-run=client", "--namespace", NAMESPACE]).stdout
    notes = out.split("NOTES:", 1)[1]
    assert f"kubectl -n {NAMESPACE} rollout status deployment/llmgw" in notes
    assert "kubectl apply -k config/samples" in notes


# --- values.schema.json -------------------------------------------------------------------------


def _leaves(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    return [path]


def _resolved(schema: Raw, root: Raw) -> Raw:
    """A schema with its `$ref` (to the root's definitions) followed; its own keys win."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolved(target, root), **{k: v for k, v in schema.items() if k != "$ref"}}


def _subschema(schema: Raw, path: tuple[str, ...]) -> Raw | None:
    root = schema
    for key in path:
        schema = _resolved(schema, root)
        props = schema.get("properties") or {}
        if key in props:
            schema = props[key]
        elif isinstance(schema.get("additionalProperties"), dict) or (
            schema.get("type") == "object" and ("properties" not in schema)
        ):
            return schema  # a free-form map (labels, nodeSelector, spec): its keys are the user's
        else:
            return None
    return schema


def test_schema_describes_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    missing = [".".join(p) for p in _leaves(values) if _subschema(schema, p) is None]
    assert not missing, f"values.schema.json does not describe: {missing}"
    undocumented = [
        ".".join(p) for p in _leaves(values) if not (_subschema(schema, p) or {}).get("description")
    ]
    assert not undocumented, f"values without a description: {undocumented}"


def test_schema_refuses_unknown_values_at_every_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(s: Raw, where: str) -> list[str]:
        out = []
        if "properties" in s and s.get("additionalProperties") is not False:
            out.append(where or "(top)")
        for k, v in (s.get("properties") or {}).items():
            out += walk(v, f"{where}.{k}")
        return out

    assert walk(schema, "") == []
    for name, definition in schema.get("definitions", {}).items():
        assert walk(definition, f"definitions.{name}") == []


def _definitions_of_gateway_spec() -> Raw:
    """The editor JSON schema's definitions that LLMGateway's spec uses, for draft-07
    (`#/definitions/...`, where values.schema.json keeps them)."""
    defs = crdgen.json_schema("LLMGateway")["$defs"]

    def refs(node: Any) -> set[str]:
        if isinstance(node, dict):
            own = {node["$ref"].rpartition("/")[2]} if isinstance(node.get("$ref"), str) else set()
            return own.union(*(refs(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(refs(v) for v in node))
        return set()

    def moved(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: v.replace("#/$defs/", "#/definitions/", 1) if k == "$ref" else moved(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [moved(v) for v in node]
        return node

    used, todo = set(), ["GatewaySpec"]
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            todo += sorted(refs(defs[name]) - used)
    return {name: moved(defs[name]) for name in sorted(used)}


def test_gateway_spec_schema_is_the_generated_one() -> None:
    """defaultGateway.spec is typed by LLMGateway's own spec schema, so the chart refuses at
    `helm install` what the API server would refuse (an unknown or mistyped field)."""
    schema = json.loads(SCHEMA.read_text())
    generated = _definitions_of_gateway_spec()
    if os.environ.get(UPDATE):
        schema["definitions"] = generated
        SCHEMA.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    spec = schema["properties"]["defaultGateway"]["properties"]["spec"]
    assert spec["$ref"] == "#/definitions/GatewaySpec"
    assert schema.get("definitions") == generated, (
        f"{SCHEMA.relative_to(ROOT)}: definitions differ from LLMGateway's spec schema (llmgw.api); "
        f"refresh them with `{UPDATE}=1 .venv/bin/pytest tests/deploy/test_chart.py -k gateway_spec_schema`"
    )


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("replicaCount=2", "/replicaCount"),
        ("crds.instal=true", "additional properties 'instal'"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("operator.logFormat=xml", "/operator/logFormat"),
        ("operator.metricsPort=0", "/operator/metricsPort"),
        ("watchNamespaces=team-a", "/watchNamespaces"),
        ("watchNamespaces[0]=Team_A", "/watchNamespaces/0"),
        ("metrics.serviceMonitor.interval=30", "/metrics/serviceMonitor/interval"),
        ("webhook.failurePolicy=Sometimes", "/webhook/failurePolicy"),
        ("operator.watchSecretVersions=yes", "/operator/watchSecretVersions"),
        ("operator.apiQPS=-1", "/operator/apiQPS"),
        ("operator.apiQPS=fast", "/operator/apiQPS"),
        ("operator.apiQPS=Auto", "/operator/apiQPS"),
        ("operator.apiBurst=0", "/operator/apiBurst"),
        ("operator.apiBurst=many", "/operator/apiBurst"),
        ("operator.statusConcurrency=0", "/operator/statusConcurrency"),
        ("operator.statusConcurrency=-3", "/operator/statusConcurrency"),
        ("operator.apiQPS=null", "missing property 'apiQPS'"),  # never an empty --api-qps=
        ("image.digest=latest", "/image/digest"),
        ("resources.requests.cpu=lots", "/resources/requests/cpu"),
        ("defaultGateway.name=Main_GW", "/defaultGateway/name"),
        ("defaultGateway.spec.replica=2", "additional properties 'replica'"),
        ("defaultGateway.spec.autoscaling.maxReplicas=lots", "/defaultGateway/spec/autoscaling/maxReplicas"),
        ("defaultGateway.spec.service.type=Internal", "/defaultGateway/spec/service/type"),
        ("defaultGateway.spec.pod.hostNetwork=true", "additional properties 'hostNetwork'"),
        ("defaultGateway.spec.probes.startup.periodSeconds=0", "/defaultGateway/spec/probes/startup"),
        ("defaultGateway.spec.generalSettings.master_key=sk-1", "invalid propertyName 'master_key'"),
    ],
)
def test_helm_refuses_values_that_break_the_schema(helm: str, setting: str, complaint: str) -> None:
    out = run([helm, "template", "x", str(CHART), "--set", setting], check=False)
    assert out.returncode != 0, f"helm accepted {setting}"
    assert "values don't meet the specifications of the schema" in out.stderr
    assert complaint in out.stderr, out.stderr
