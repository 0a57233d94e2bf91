"""What issue 11 adds to the render: LiteLLM's Prometheus callback, general_settings, the
database's variable, and passthrough values that read a declared variable."""

from __future__ import annotations

import pytest

from llmgw.core import render


def config(outcome, gateway, provider, **spec) -> dict:
    return outcome(gateway(**spec), provider("p", "a")).rendered.config


def litellm(outcome, gateway, provider, **spec) -> dict:
    return config(outcome, gateway, provider, **spec)["litellm_settings"]


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_render_the_prometheus_callback(outcome, gateway, provider):
    settings = litellm(outcome, gateway, provider, metrics={"enabled": True})
    assert settings["callbacks"] == ["prometheus"]


@pytest.mark.parametrize(
    ("given", "want"),
    [
        (["otel"], ["otel", "prometheus"]),
        (["prometheus", "otel"], ["prometheus", "otel"]),
        (["otel", "prometheus"], ["otel", "prometheus"]),
        (["b", "a", "b"], ["b", "a", "prometheus"]),
        ("otel", ["otel", "prometheus"]),
        ("prometheus", ["prometheus"]),
        ([], ["prometheus"]),
    ],
)
def test_the_prometheus_callback_joins_the_users_callbacks_once(given, want, outcome, gateway, provider):
    settings = litellm(
        outcome, gateway, provider, metrics={"enabled": True}, litellmSettings={"callbacks": given}
    )
    assert settings["callbacks"] == want


def test_the_users_other_callback_lists_are_left_alone(outcome, gateway, provider):
    settings = litellm(
        outcome,
        gateway,
        provider,
        metrics={"enabled": True},
        litellmSettings={"success_callback": ["langfuse"], "failure_callback": ["sentry"]},
    )
    assert settings["success_callback"] == ["langfuse"]
    assert settings["failure_callback"] == ["sentry"]
    assert settings["callbacks"] == ["prometheus"]


def test_metrics_are_served_without_a_key_unless_the_gateway_asks_for_one(outcome, gateway, provider):
    """LiteLLM 1.106 puts /metrics behind a key by default; scrapers come without one."""
    plain = litellm(outcome, gateway, provider, metrics={"enabled": True})
    assert plain[render.METRICS_AUTH_SETTING] is False
    keyed = litellm(
        outcome,
        gateway,
        provider,
        metrics={"enabled": True},
        litellmSettings={render.METRICS_AUTH_SETTING: True},
    )
    assert keyed[render.METRICS_AUTH_SETTING] is True


@pytest.mark.parametrize("metrics", [None, {"enabled": False}])
def test_without_metrics_the_callbacks_are_the_users_as_given(metrics, outcome, gateway, provider):
    spec = {"metrics": metrics} if metrics else {}
    settings = litellm(outcome, gateway, provider, litellmSettings={"callbacks": ["b", "a", "b"]}, **spec)
    assert settings == {"callbacks": ["b", "a", "b"]}


def test_metrics_need_auth_follows_litellms_own_test(gateway, outcome, provider):
    def need(**settings) -> bool:
        out = outcome(gateway(metrics={"enabled": True}, litellmSettings=settings), provider("p", "a"))
        return render.metrics_need_auth(out.resolution.gateway)

    assert need() is False
    assert need(require_auth_for_metrics_endpoint=False) is False
    assert need(require_auth_for_metrics_endpoint=True) is True
    assert need(require_auth_for_metrics_endpoint=None) is True  # LiteLLM: anything but false


# --- general_settings -------------------------------------------------------------------------


def test_general_settings_are_passed_through_beside_the_master_key(outcome, gateway, provider):
    general = config(
        outcome, gateway, provider, generalSettings={"store_model_in_db": False, "alerting": ["slack"]}
    )["general_settings"]
    assert general == {
        "store_model_in_db": False,
        "alerting": ["slack"],
        "master_key": "os.environ/LITELLM_MASTER_KEY",
    }


@pytest.mark.parametrize("key", ["master_key", "database_url"])
def test_general_settings_may_not_take_the_operators_keys(key, gateway, check):
    outcomes, found = check(gateway(generalSettings={key: "x"}))
    assert outcomes == []
    assert [f.field for f in found] == ["spec.generalSettings"]


# --- the database -----------------------------------------------------------------------------


def test_the_database_url_is_a_secret_variable_of_the_revision(outcome, gateway, provider):
    out = outcome(
        gateway(database={"urlSecretRef": {"name": "litellm-db", "key": "url"}}), provider("p", "a")
    )
    assert render.EnvVar("DATABASE_URL", "litellm-db", "url") in out.rendered.env
    assert "#   DATABASE_URL: Secret litellm-db, key url\n" in out.rendered.text
    assert "postgres" not in out.rendered.text
    assert "database_url" not in out.rendered.config["general_settings"]


def test_a_new_database_secret_is_a_new_revision(outcome, gateway, provider):
    one = outcome(gateway(database={"urlSecretRef": {"name": "db", "key": "url"}}), provider("p", "a"))
    two = outcome(gateway(database={"urlSecretRef": {"name": "db2", "key": "url"}}), provider("p", "a"))
    assert one.rendered.hash != two.rendered.hash


# --- passthroughs reading declared variables --------------------------------------------------


def test_a_passthrough_may_read_a_variable_the_gateway_declares(outcome, gateway, provider):
    settings = litellm(
        outcome,
        gateway,
        provider,
        env=[{"name": "LANGFUSE_SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": "lf", "key": "secret"}}}],
        envFrom=[{"prefix": "DD_", "secretRef": {"name": "datadog"}}],
        litellmSettings={
            "success_callback": ["langfuse"],
            "langfuse_secret_key": "os.environ/LANGFUSE_SECRET_KEY",
            "datadog_params": {"api_key": "os.environ/DD_API_KEY"},
        },
    )
    assert settings["langfuse_secret_key"] == "os.environ/LANGFUSE_SECRET_KEY"
    assert settings["datadog_params"] == {"api_key": "os.environ/DD_API_KEY"}


def test_router_and_general_settings_may_read_declared_variables_too(outcome, gateway, provider):
    cfg = config(
        outcome,
        gateway,
        provider,
        env=[{"name": "SLACK_URL", "value": "https://hooks.example"}],
        routerSettings={"alerting_webhook": "os.environ/SLACK_URL"},
        generalSettings={"alerting_webhook": "os.environ/SLACK_URL"},
    )
    assert cfg["router_settings"]["alerting_webhook"] == "os.environ/SLACK_URL"
    assert cfg["general_settings"]["alerting_webhook"] == "os.environ/SLACK_URL"


def test_a_declared_variable_is_not_a_secret_variable_of_the_revision(outcome, gateway, provider):
    """The user's env reaches the pod through the Deployment, not through the render's env."""
    out = outcome(
        gateway(
            env=[{"name": "LANGFUSE_HOST", "value": "https://lf.example"}],
            litellmSettings={"langfuse_host": "os.environ/LANGFUSE_HOST"},
        ),
        provider("p", "a"),
    )
    assert "LANGFUSE_HOST" not in {e.name for e in out.rendered.env}


# --- nothing changes for a gateway without the new fields -------------------------------------


@pytest.mark.parametrize(
    "defaults",
    [
        pytest.param({"metrics": {"enabled": False, "serviceMonitor": False}}, id="metrics"),
        pytest.param({"generalSettings": {}}, id="general-settings"),
        pytest.param(
            {"pod": {"nodeSelector": {"a": "b"}}, "service": {"type": "NodePort"}}, id="pod-and-service"
        ),
        pytest.param(
            {"autoscaling": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 50}}, id="autoscaling"
        ),
        pytest.param(
            {"route": {"parentRefs": [{"name": "public"}]}, "disruptionBudget": {"minAvailable": 1}},
            id="route",
        ),
        pytest.param({"probes": {"startup": {"periodSeconds": 2}}}, id="probes"),
        pytest.param(
            {"env": [{"name": "A", "value": "1"}], "envFrom": [{"secretRef": {"name": "s"}}]}, id="env"
        ),
    ],
)
def test_fields_that_do_not_reach_the_config_leave_its_bytes_alone(defaults, outcome, gateway, provider):
    base = outcome(gateway(), provider("p", "a")).rendered
    same = outcome(gateway(**defaults), provider("p", "a")).rendered
    assert (same.text, same.hash) == (base.text, base.hash)
