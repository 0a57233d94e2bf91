"""The kubelet's decisions for a gateway pod: env, config files, image, probes, preStop, status.

Pure functions of `llmgw.demo.kubelet`, with the kubelet's own messages where a
pod cannot start (a missing Secret or key: CreateContainerConfigError).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from llmgw.demo import kubelet


def secret(name: str, namespace: str = "demo", **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"metadata": {"name": name, "namespace": namespace}, "data": encoded}


SECRETS = {
    ("demo", "token"): secret("token", key="s3cret"),
    ("demo", "generated"): {"metadata": {"name": "generated"}, "stringData": {"master-key": "sk-1"}},
}
CONFIG_MAPS = {("demo", "settings"): {"data": {"LOG": "debug", "MODE": "fast"}}}


def env_of(*env: dict[str, Any], env_from: list[dict[str, Any]] | None = None) -> dict[str, str]:
    container: dict[str, Any] = {"env": list(env)}
    if env_from:
        container["envFrom"] = env_from
    return kubelet.resolve_env(container, "demo", SECRETS, CONFIG_MAPS)


def test_env_from_values_secrets_and_config_maps() -> None:
    got = env_of(
        {"name": "PLAIN", "value": "1"},
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "token", "key": "key"}}},
        {"name": "MASTER", "valueFrom": {"secretKeyRef": {"name": "generated", "key": "master-key"}}},
        {"name": "LOG_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LOG"}}},
        {"name": "BOTH", "value": "$(PLAIN)-$(NOPE)"},
    )
    assert got == {"PLAIN": "1", "KEY": "s3cret", "MASTER": "sk-1", "LOG_LEVEL": "debug", "BOTH": "1-$(NOPE)"}


def test_env_from_whole_objects_with_prefix_and_env_after_them() -> None:
    got = env_of(
        {"name": "MODE", "value": "slow"},
        env_from=[
            {"configMapRef": {"name": "settings"}, "prefix": "APP_"},
            {"configMapRef": {"name": "settings"}},
        ],
    )
    assert got == {"APP_LOG": "debug", "APP_MODE": "fast", "LOG": "debug", "MODE": "slow"}


@pytest.mark.parametrize(
    ("var", "message"),
    [
        ({"secretKeyRef": {"name": "missing", "key": "k"}}, 'secret "missing" not found'),
        ({"secretKeyRef": {"name": "token", "key": "k"}}, "couldn't find key k in Secret demo/token"),
        ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
        (
            {"configMapKeyRef": {"name": "settings", "key": "k"}},
            "couldn't find key k in ConfigMap demo/settings",
        ),
    ],
)
def test_a_missing_object_or_key_is_the_kubelets_config_error(var: dict[str, Any], message: str) -> None:
    with pytest.raises(kubelet.ConfigError) as err:
        env_of({"name": "X", "valueFrom": var})
    assert err.value.reason == "CreateContainerConfigError"
    assert err.value.message == message


def test_missing_env_from_secret_and_optional_refs() -> None:
    with pytest.raises(kubelet.ConfigError, match='secret "callbacks" not found'):
        env_of(env_from=[{"secretRef": {"name": "callbacks"}}])
    got = env_of(
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k", "optional": True}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "token", "key": "k", "optional": True}}},
        env_from=[{"secretRef": {"name": "callbacks", "optional": True}}],
    )
    assert got == {}


def test_only_the_pinned_litellm_image_runs() -> None:
    kubelet.check_image({"image": kubelet.KNOWN_IMAGE})
    with pytest.raises(kubelet.ConfigError) as err:
        kubelet.check_image({"image": "ghcr.io/berriai/litellm:no-such-tag"})
    assert err.value.reason == "ErrImagePull"
    assert "ghcr.io/berriai/litellm:no-such-tag" in err.value.message


REWRITE = {"vllm.models.svc.cluster.local:8000": "127.0.0.1:4321"}


def test_config_map_volume_with_service_names_rewritten() -> None:
    cms = {
        ("demo", "gw-config-1"): {
            "data": {"config.yaml": "api_base: http://vllm.models.svc.cluster.local:8000/v1\n"}
        }
    }
    files = kubelet.volume_files(
        {"name": "config", "configMap": {"name": "gw-config-1"}}, "demo", cms, REWRITE
    )
    assert files == {"config.yaml": "api_base: http://127.0.0.1:4321/v1\n"}


def test_projected_volume_joins_every_config_map() -> None:
    cms = {
        ("demo", "gw-config-1"): {"data": {"config.yaml": "include: [models-1.yaml]\n"}},
        ("demo", "gw-config-1-1"): {
            "data": {"models-1.yaml": "- http://vllm.models.svc.cluster.local:8000\n"}
        },
    }
    volume = {
        "projected": {
            "sources": [{"configMap": {"name": "gw-config-1"}}, {"configMap": {"name": "gw-config-1-1"}}]
        }
    }
    files = kubelet.volume_files(volume, "demo", cms, REWRITE)
    assert files == {
        "config.yaml": "include: [models-1.yaml]\n",
        "models-1.yaml": "- http://127.0.0.1:4321\n",
    }


def test_a_missing_config_map_leaves_the_pod_creating() -> None:
    with pytest.raises(kubelet.ConfigError) as err:
        kubelet.volume_files({"name": "config", "configMap": {"name": "gone"}}, "demo", {}, {})
    assert err.value.reason == "ContainerCreating"
    assert 'configmap "gone" not found' in err.value.message


CONTAINER: dict[str, Any] = {
    "name": "litellm",
    "image": kubelet.KNOWN_IMAGE,
    "args": ["--config", "/etc/litellm/config.yaml", "--port", "4000"],
    "ports": [{"name": "http", "containerPort": 4000}],
    "readinessProbe": {
        "httpGet": {"path": "/health/readiness", "port": "http"},
        "periodSeconds": 2,
        "timeoutSeconds": 3,
        "failureThreshold": 4,
    },
    "lifecycle": {"preStop": {"exec": {"command": ["python3", "-c", "import time; time.sleep(10)"]}}},
}


def test_probes_resolve_named_ports_and_timings() -> None:
    p = kubelet.probe(CONTAINER, "readinessProbe")
    assert p == kubelet.Probe(path="/health/readiness", port=4000, period=2, timeout=3, failure_threshold=4)
    assert kubelet.probe(CONTAINER, "livenessProbe") is None


@pytest.mark.parametrize(
    ("hook", "seconds"),
    [
        ({"exec": {"command": ["python3", "-c", "import time; time.sleep(10)"]}}, 10.0),
        ({"exec": {"command": ["sh", "-c", "sleep 5"]}}, 5.0),
        ({"sleep": {"seconds": 3}}, 3.0),
        ({"exec": {"command": ["true"]}}, 0.0),
    ],
)
def test_pre_stop_delay(hook: dict[str, Any], seconds: float) -> None:
    assert kubelet.pre_stop_seconds({"lifecycle": {"preStop": hook}}) == seconds


def test_command_points_the_config_at_the_pods_folder_and_port() -> None:
    got = kubelet.command(CONTAINER, "/venv/bin/litellm", "/tmp/pod/config", "/etc/litellm", 45678)
    assert got == [
        "/venv/bin/litellm",
        "--config",
        "/tmp/pod/config/config.yaml",
        "--host",
        "127.0.0.1",
        "--port",
        "45678",
    ]


def test_backoff_doubles_to_its_cap() -> None:
    assert [kubelet.backoff_seconds(n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert kubelet.backoff_seconds(50) == kubelet.BACKOFF_MAX_SECONDS


def test_status_of_a_waiting_pod_and_of_a_crash_loop() -> None:
    waiting = kubelet.pod_status(
        "litellm",
        "img",
        kubelet.State(waiting="CreateContainerConfigError", message='secret "x" not found'),
        "t0",
        "t1",
    )
    assert waiting["phase"] == "Pending"
    cs = waiting["containerStatuses"][0]
    assert cs["state"] == {
        "waiting": {"reason": "CreateContainerConfigError", "message": 'secret "x" not found'}
    }
    assert cs["restartCount"] == 0
    assert {c["type"]: c["status"] for c in waiting["conditions"]}["Ready"] == "False"

    looping = kubelet.pod_status(
        "litellm",
        "img",
        kubelet.State(waiting="CrashLoopBackOff", message="back-off 2s", restarts=3, last_exit=1),
        "t0",
        "t1",
    )
    cs = looping["containerStatuses"][0]
    assert looping["phase"] == "Running"
    assert cs["restartCount"] == 3
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["lastState"]["terminated"]["reason"] == "Error"


def test_status_of_a_ready_pod() -> None:
    status = kubelet.pod_status(
        "litellm", "img", kubelet.State(ready=True, started=True, started_at="t0"), "t0", "t1"
    )
    assert status["phase"] == "Running"
    assert status["containerStatuses"][0]["state"] == {"running": {"startedAt": "t0"}}
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
