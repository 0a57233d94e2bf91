"""Issue 11's models: the gateway as a production workload.

Each refusal is one sentence at the field's own path that says what to do; the
defaults the builders read (probe timing, the startup allowance, replicas, the
reserved environment) are what the descriptions promise.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llmgw.api import env, gateway, passthrough, pod, workload
from llmgw.core import objects, render

HPA = {"maxReplicas": 4, "targetCPUUtilizationPercentage": 70}


def spec(**fields: Any) -> gateway.GatewaySpec:
    return gateway.GatewaySpec.model_validate(fields)


def errors(**fields: Any) -> list[tuple[str, str]]:
    """(path, sentence) of each error, as `llmgw validate` and the status say them."""
    raw = {"apiVersion": "llmgateway.dev/v1alpha1", "kind": "LLMGateway", "metadata": {"name": "gw"}}
    parsed = objects.parse({**raw, "spec": fields})
    assert isinstance(parsed, objects.Invalid), "the models took it"
    return [(f.field, f.message) for f in parsed.findings]


def only(**fields: Any) -> tuple[str, str]:
    (found,) = errors(**fields)
    return found


# --- defaults the builders read ------------------------------------------------------------


def test_probe_defaults() -> None:
    probes = spec().probes
    assert probes.startup_effective == workload.Timing(0, 5, 5, 60)
    assert probes.liveness_effective == workload.Timing(0, 10, 5, 6)
    assert probes.readiness_effective == workload.Timing(0, 5, 5, 3)
    assert probes.startup_allowance_seconds == workload.DEFAULT_STARTUP_ALLOWANCE_SECONDS == 300
    assert workload.STARTUP_DEFAULTS.manifest() == {
        "initialDelaySeconds": 0,
        "periodSeconds": 5,
        "timeoutSeconds": 5,
        "failureThreshold": 60,
    }


def test_probe_overrides_keep_the_other_defaults() -> None:
    probes = spec(
        probes={"startup": {"failureThreshold": 120}, "liveness": {"periodSeconds": 20}},
        rollout={"progressDeadlineSeconds": 900},
    ).probes
    assert probes.startup_effective == workload.Timing(0, 5, 5, 120)
    assert probes.startup_allowance_seconds == 600
    assert probes.liveness_effective == workload.Timing(0, 20, 5, 6)


def test_the_startup_allowance_may_be_lowered_explicitly() -> None:
    s = spec(
        probes={"startup": {"initialDelaySeconds": 5, "periodSeconds": 2, "failureThreshold": 10}},
        rollout={"progressDeadlineSeconds": 25},
    )
    assert s.probes.startup_allowance_seconds == 25


@pytest.mark.parametrize(
    ("fields", "replicas"),
    [({}, workload.DEFAULT_REPLICAS), ({"replicas": 0}, 0), ({"replicas": 5}, 5), ({"autoscaling": HPA}, 1)],
)
def test_effective_replicas(fields: dict[str, Any], replicas: int) -> None:
    assert spec(**fields).effective_replicas == replicas


def test_autoscaling_starts_from_min_replicas() -> None:
    assert spec(autoscaling={**HPA, "minReplicas": 3}).effective_replicas == 3


def test_the_reserved_environment_is_the_operators() -> None:
    """The names the renderer and the Deployment builder set are all reserved."""
    assert render.MASTER_KEY_ENV == env.MASTER_KEY_ENV
    assert render.REDIS_PASSWORD_ENV.startswith(env.OPERATOR_ENV_PREFIX)
    assert {"LITELLM_MASTER_KEY", "DATABASE_URL", *env.FIXED_ENV} == env.RESERVED_ENV
    assert env.reserved("LLMGW_OPENAI_KEY_0123")
    assert not env.reserved("LANGFUSE_HOST")


# --- a gateway with every field --------------------------------------------------------------


def test_every_new_field_round_trips() -> None:
    s = spec(
        pod={
            "metadata": {"labels": {"team": "a"}, "annotations": {"x/y": "z"}},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
                    ]
                }
            },
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}
            ],
            "priorityClassName": "high",
            "imagePullSecrets": [{"name": "regcred"}],
            "serviceAccountName": "llm-gateway",
            "terminationGracePeriodSeconds": 90,
        },
        env=[
            {"name": "A", "value": "a"},
            {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        envFrom=[{"prefix": "CB_", "secretRef": {"name": "callbacks"}}],
        autoscaling=HPA,
        disruptionBudget={"maxUnavailable": "25%"},
        service={"type": "LoadBalancer"},
        route={"parentRefs": [{"name": "public", "namespace": "gateways"}], "hostnames": ["llm.example.com"]},
        metrics={"enabled": True, "serviceMonitor": True},
        database={"urlSecretRef": {"name": "db", "key": "url"}},
        generalSettings={"store_model_in_db": True},
    )
    # The Pod API's own shapes, ready for a pod template.
    assert s.pod.model_dump(mode="json", exclude_defaults=True)["affinity"] == {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
            ]
        }
    }
    assert s.env[1].model_dump(exclude_none=True) == {
        "name": "B",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
    }
    assert s.autoscaling is not None
    assert s.autoscaling.model_dump(exclude_none=True) == {
        "minReplicas": 1,
        "maxReplicas": 4,
        "targetCPUUtilizationPercentage": 70,
    }
    assert s.route is not None
    assert s.route.model_dump(mode="json", exclude_none=True)["parentRefs"] == [
        {"name": "public", "namespace": "gateways"}
    ]
    assert gateway.GatewaySpec.model_validate(s.model_dump()) == s


# --- refusals, each at its own field ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(env.RESERVED_ENV | {"LLMGW_X", "LLMGW_OPENAI_0123ABCD"}))
def test_env_may_not_set_the_operators_names(name: str) -> None:
    path, said = only(env=[{"name": "OK", "value": "1"}, {"name": name, "value": "x"}])
    assert path == "spec.env[1].name"
    assert said.startswith(f"the operator owns {name}: ")


def test_env_master_key_says_what_to_do() -> None:
    assert only(env=[{"name": "LITELLM_MASTER_KEY", "value": "sk-1"}]) == (
        "spec.env[0].name",
        "the operator owns LITELLM_MASTER_KEY: it carries the proxy master key; set "
        "spec.masterKeySecretRef instead",
    )


def test_env_database_url_points_at_database() -> None:
    assert "spec.database.urlSecretRef" in only(env=[{"name": "DATABASE_URL", "value": "x"}])[1]


def test_env_names_are_unique() -> None:
    assert only(
        env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "A", "value": "3"}]
    ) == (
        "spec.env[2].name",
        "'A' is declared already, at spec.env[0]; declare each variable once",
    )


@pytest.mark.parametrize(
    ("var", "said"),
    [
        ({"name": "A"}, "set exactly one of value or valueFrom for A"),
        ({"name": "A", "value": "a", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}, "exactly one of value"),
        ({"name": "A", "valueFrom": {}}, "set exactly one of secretKeyRef, configMapKeyRef, fieldRef"),
        ({"name": "1A", "value": "a"}, "'1A'"),
    ],
)
def test_env_var_shape(var: dict[str, Any], said: str) -> None:
    path, message = only(env=[var])
    assert path.startswith("spec.env[0]")
    assert said in message


@pytest.mark.parametrize(
    ("source", "path", "said"),
    [
        ({"prefix": "LLMGW_", "secretRef": {"name": "s"}}, "spec.envFrom[0].prefix", "choose another prefix"),
        ({"prefix": "A_"}, "spec.envFrom[0]", "set exactly one of secretRef or configMapRef"),
        ({"secretRef": {"name": "s"}, "configMapRef": {"name": "c"}}, "spec.envFrom[0]", "exactly one of"),
    ],
)
def test_env_from(source: dict[str, Any], path: str, said: str) -> None:
    found_path, message = only(envFrom=[source])
    assert (found_path, said in message) == (path, True)


def test_replicas_with_autoscaling() -> None:
    assert only(replicas=2, autoscaling=HPA) == (
        "spec.replicas",
        "may not be set together with autoscaling: the HorizontalPodAutoscaler owns the replica count "
        "(it starts from autoscaling.minReplicas); remove spec.replicas",
    )


def test_min_replicas_over_max_replicas() -> None:
    assert only(autoscaling={**HPA, "minReplicas": 6}) == (
        "spec.autoscaling.minReplicas",
        "6 is more than maxReplicas (4); lower minReplicas to at most 4 or raise maxReplicas",
    )


def test_autoscaling_needs_a_target() -> None:
    path, said = only(autoscaling={"maxReplicas": 3})
    assert path == "spec.autoscaling"
    assert said.startswith("set targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or both")


@pytest.mark.parametrize("route", [{}, {"parentRefs": []}, {"hostnames": ["llm.example.com"]}])
def test_route_without_parents(route: dict[str, Any]) -> None:
    path, said = only(route=route)
    assert path == "spec.route.parentRefs"
    assert said.startswith("a route needs at least one parentRefs entry: name the Gateway it attaches to")


@pytest.mark.parametrize(
    ("fields", "deadline", "allowance"),
    [
        ({"rollout": {"progressDeadlineSeconds": 120}}, 120, 300),
        ({"probes": {"startup": {"failureThreshold": 120}}}, 300, 600),
        (
            {"probes": {"startup": {"initialDelaySeconds": 30}}, "rollout": {"progressDeadlineSeconds": 320}},
            320,
            330,
        ),
    ],
)
def test_deadline_shorter_than_the_startup_allowance(
    fields: dict[str, Any], deadline: int, allowance: int
) -> None:
    path, said = only(**fields)
    assert path == "spec.rollout.progressDeadlineSeconds"
    assert said.startswith(f"{deadline} is shorter than the startup probe's allowance of {allowance} s")
    assert said.endswith(f"raise it to at least {allowance} or shorten probes.startup")


def test_grace_period_shorter_than_the_timeout() -> None:
    path, said = only(timeoutSeconds=120, pod={"terminationGracePeriodSeconds": 90})
    assert path == "spec.pod.terminationGracePeriodSeconds"
    assert said.startswith("90 is shorter than timeoutSeconds (120)")


def test_cross_field_problems_are_reported_together() -> None:
    found = errors(
        replicas=2,
        autoscaling=HPA,
        rollout={"progressDeadlineSeconds": 100},
        pod={"terminationGracePeriodSeconds": 10},
    )
    assert [p for p, _ in found] == sorted(
        ["spec.replicas", "spec.rollout.progressDeadlineSeconds", "spec.pod.terminationGracePeriodSeconds"]
    )


@pytest.mark.parametrize(
    ("fields", "path", "said"),
    [
        (
            {"disruptionBudget": {}},
            "spec.disruptionBudget",
            "set exactly one of maxUnavailable or minAvailable",
        ),
        (
            {"disruptionBudget": {"maxUnavailable": 1, "minAvailable": "50%"}},
            "spec.disruptionBudget",
            "exactly one",
        ),
        ({"metrics": {"serviceMonitor": True}}, "spec.metrics", "serviceMonitor needs enabled: true"),
        ({"service": {"type": "ExternalName"}}, "spec.service.type", "'ExternalName' is not allowed"),
        ({"database": {}}, "spec.database.urlSecretRef", "is required"),
        (
            {"pod": {"metadata": {"labels": {"llmgateway.dev/gateway": "x"}}}},
            "spec.pod.metadata.labels",
            "label 'llmgateway.dev/gateway' is set by the operator",
        ),
        (
            {
                "pod": {
                    "metadata": {"labels": {"app.kubernetes.io/managed-by": "helm", "llmgateway.dev/a": "b"}}
                }
            },
            "spec.pod.metadata.labels",
            "label 'app.kubernetes.io/managed-by', 'llmgateway.dev/a' are set by the operator",
        ),
        (
            {"pod": {"metadata": {"annotations": {"llmgateway.dev/config-hash": "0"}}}},
            "spec.pod.metadata.annotations",
            "annotation 'llmgateway.dev/config-hash' is set by the operator",
        ),
        ({"pod": {"securityContext": {"runAsUser": 0}}}, "spec.pod.securityContext", "is not a known field"),
        ({"pod": {"hostNetwork": True}}, "spec.pod.hostNetwork", "is not a known field"),
        ({"pod": {"volumes": []}}, "spec.pod.volumes", "is not a known field"),
        ({"pod": {"containers": []}}, "spec.pod.containers", "is not a known field"),
        ({"probes": {"liveness": {"httpGet": {}}}}, "spec.probes.liveness.httpGet", "is not a known field"),
        ({"probes": {"startup": {"periodSeconds": 0}}}, "spec.probes.startup.periodSeconds", ""),
        (
            {"pod": {"tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]}},
            "spec.pod.tolerations[0]",
            "value must be empty when operator is Exists",
        ),
        (
            {"pod": {"tolerations": [{"value": "b"}]}},
            "spec.pod.tolerations[0]",
            "operator must be Exists when key is empty",
        ),
        (
            {"pod": {"tolerations": [{"key": "a", "tolerationSeconds": 5}]}},
            "spec.pod.tolerations[0]",
            "tolerationSeconds needs effect NoExecute",
        ),
        (
            {
                "pod": {
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "z",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "minDomains": 2,
                        }
                    ]
                }
            },
            "spec.pod.topologySpreadConstraints[0]",
            "minDomains needs whenUnsatisfiable DoNotSchedule",
        ),
        (
            {"generalSettings": {"master_key": "sk-1"}},
            "spec.generalSettings",
            "key 'master_key' is owned by the operator; use spec.masterKeySecretRef",
        ),
        (
            {"generalSettings": {"database_url": "postgresql://x"}},
            "spec.generalSettings",
            "key 'database_url'",
        ),
    ],
)
def test_refused(fields: dict[str, Any], path: str, said: str) -> None:
    found_path, message = only(**fields)
    assert found_path == path
    assert said in message


@pytest.mark.parametrize(
    ("requirement", "said"),
    [
        ({"key": "a", "operator": "In"}, "values must not be empty with operator In"),
        ({"key": "a", "operator": "Exists", "values": ["x"]}, "values must be empty with operator Exists"),
        ({"key": "a", "operator": "Gt", "values": ["x"]}, "operator Gt needs exactly one integer value"),
        ({"key": "a", "operator": "Lt", "values": ["1", "2"]}, "operator Lt needs exactly one integer value"),
    ],
)
def test_node_selector_requirements(requirement: dict[str, Any], said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        pod.NodeSelectorRequirement.model_validate(requirement)


def test_unknown_fields_keep_failing() -> None:
    assert (
        only(pod={"tolerations": [{"key": "a", "efect": "NoSchedule"}]})[0] == "spec.pod.tolerations[0].efect"
    )
    assert only(autoscaling={**HPA, "targetCPU": 70})[0] == "spec.autoscaling.targetCPU"


# --- os.environ/ in the passthroughs ---------------------------------------------------------

LANGFUSE = {"success_callback": ["langfuse"], "langfuse_secret_key": "os.environ/LANGFUSE_SECRET_KEY"}
SECRET = {"secretKeyRef": {"name": "callbacks", "key": "langfuse"}}


@pytest.mark.parametrize("field", ["litellmSettings", "routerSettings", "generalSettings"])
def test_env_reference_refused_when_not_declared(field: str) -> None:
    path, said = only(env=[{"name": "LANGFUSE_HOST", "value": "h"}], **{field: LANGFUSE})
    assert path == f"spec.{field}"
    assert "reads 'LANGFUSE_SECRET_KEY' from the gateway's environment" in said
    assert "declare LANGFUSE_SECRET_KEY in spec.env" in said


@pytest.mark.parametrize(
    "declaring",
    [
        {"env": [{"name": "LANGFUSE_SECRET_KEY", "valueFrom": SECRET}]},
        {"envFrom": [{"prefix": "LANGFUSE_", "secretRef": {"name": "callbacks"}}]},
        {"envFrom": [{"secretRef": {"name": "callbacks"}}]},
    ],
)
@pytest.mark.parametrize("field", ["litellmSettings", "routerSettings", "generalSettings"])
def test_env_reference_accepted_when_declared(declaring: dict[str, Any], field: str) -> None:
    spec(**declaring, **{field: {"nested": [{"deep": LANGFUSE}]}})


def test_env_reference_with_another_prefix_is_refused() -> None:
    _, said = only(envFrom=[{"prefix": "DD_", "secretRef": {"name": "datadog"}}], litellmSettings=LANGFUSE)
    assert "which the gateway does not declare" in said


@pytest.mark.parametrize("name", ["LITELLM_MASTER_KEY", "LLMGW_OPENAI_ABC", "DATABASE_URL"])
def test_env_reference_to_the_operators_names_is_refused_even_when_covered(name: str) -> None:
    path, said = only(envFrom=[{"secretRef": {"name": "all"}}], litellmSettings={"x": f"os.environ/{name}"})
    assert path == "spec.litellmSettings"
    assert f"reads {name!r} (os.environ/{name}), a variable the operator owns" in said


def test_a_failed_env_declares_nothing() -> None:
    """The env error is reported where it is; the passthrough does not pretend the name is declared."""
    paths = [p for p, _ in errors(env=[{"name": "LANGFUSE_SECRET_KEY"}], litellmSettings=LANGFUSE)]
    assert paths == ["spec.env[0]", "spec.litellmSettings"]


def test_provider_params_still_never_read_the_environment() -> None:
    found = list(passthrough.problems({"x": "os.environ/A"}, frozenset(), "hint"))
    assert found == [
        "value at .x reads the gateway's environment (os.environ/...); use a typed secret reference instead"
    ]


def test_declared_env() -> None:
    s = spec(env=[{"name": "A", "value": "1"}], envFrom=[{"prefix": "CB_", "configMapRef": {"name": "c"}}])
    assert s.declared_env("A")
    assert s.declared_env("CB_TOKEN")
    assert not s.declared_env("B")
    assert not spec().declared_env("A")
