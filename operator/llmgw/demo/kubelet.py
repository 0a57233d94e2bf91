"""What the kubelet decides for one gateway pod, without I/O: env, config files, probes, status.

`podrunner` runs each gateway pod as a local LiteLLM process; this module says
what that process gets and how the pod looks from the API, in the kubelet's own
words, so that the operator reads what it would read on a cluster:

- the environment from `value`, `secretKeyRef`, `configMapKeyRef` and `envFrom`;
  a missing Secret, ConfigMap or key leaves the container waiting in
  `CreateContainerConfigError` with the kubelet's message (`secret "x" not found`,
  `couldn't find key k in Secret ns/x`);
- the config folder from the ConfigMap volume, or a projected volume of several
  ConfigMaps (a split revision, joined by LiteLLM's `include`), with in-cluster
  Service names (`<svc>.<ns>.svc.cluster.local:<port>`) rewritten to the loopback
  address that stands for the Service: the one liberty the demo takes with a pod's files;
- the image: only the pinned LiteLLM image runs (anything else: `ErrImagePull`);
- probes (httpGet path and port, timings) and the preStop delay (an exec that sleeps);
- the Pod status: phase, conditions, containerStatuses with restartCount, waiting
  reasons (`ContainerCreating`, `CreateContainerConfigError`, `ErrImagePull`,
  `CrashLoopBackOff`) and the last termination.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from llmgw.api import gateway as gateway_api

KNOWN_IMAGE = gateway_api.DEFAULT_IMAGE
"""The one image the runner can run: the pinned LiteLLM proxy, as a local process."""

CONFIG_ERROR = "CreateContainerConfigError"
IMAGE_PULL = "ErrImagePull"
CREATING = "ContainerCreating"
CRASH_LOOP = "CrashLoopBackOff"

BACKOFF_BASE_SECONDS = 1.0
"""First restart delay of a container that exited; doubles each time up to BACKOFF_MAX_SECONDS.
The kubelet starts at 10 s; the demo at 1 s, so a crash loop is seen within a minute."""
BACKOFF_MAX_SECONDS = 300.0


class ConfigError(Exception):
    """The container cannot be created: the kubelet's reason and message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


Objects = Mapping[tuple[str, str], Mapping[str, Any]]
"""(namespace, name) -> object, for the Secrets or the ConfigMaps of the embedded API."""


def secret_values(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's values: `data` decoded, `stringData` over it (the embedded API keeps
    `stringData` as written; a real API server folds it into `data`)."""
    out: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            out[str(key)] = base64.b64decode(str(value)).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
    out.update({str(k): str(v) for k, v in (secret.get("stringData") or {}).items()})
    return out


def config_map_values(cm: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (cm.get("data") or {}).items()}


def _lookup(kind: str, objects: Objects, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
    obj = objects.get((namespace, name))
    if obj is None:
        if optional:
            return None
        raise ConfigError(CONFIG_ERROR, f'{kind.lower()} "{name}" not found')
    return secret_values(obj) if kind == "Secret" else config_map_values(obj)


def resolve_env(
    container: Mapping[str, Any], namespace: str, secrets: Objects, config_maps: Objects
) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env in order.
    Raises ConfigError for a missing Secret, ConfigMap or key that is not optional."""
    out: dict[str, str] = {}
    for source in container.get("envFrom") or ():
        prefix = str(source.get("prefix") or "")
        for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            ref = source.get(field)
            if not ref:
                continue
            objects = secrets if kind == "Secret" else config_maps
            values = _lookup(kind, objects, namespace, str(ref.get("name", "")), bool(ref.get("optional")))
            for key, value in (values or {}).items():
                out[prefix + key] = value
    for var in container.get("env") or ():
        name = str(var.get("name", ""))
        if "value" in var or "valueFrom" not in var:
            out[name] = _expand(str(var.get("value") or ""), out)
            continue
        source = var.get("valueFrom") or {}
        for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
            ref = source.get(field)
            if not ref:
                continue
            objects = secrets if kind == "Secret" else config_maps
            ref_name, key, optional = (
                str(ref.get("name", "")),
                str(ref.get("key", "")),
                bool(ref.get("optional")),
            )
            values = _lookup(kind, objects, namespace, ref_name, optional)
            if values is None:
                continue
            if key not in values:
                if optional:
                    continue
                raise ConfigError(CONFIG_ERROR, f"couldn't find key {key} in {kind} {namespace}/{ref_name}")
            out[name] = values[key]
    return out


_VAR_REF = re.compile(r"\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def _expand(value: str, env: Mapping[str, str]) -> str:
    """`$(VAR)` references to variables defined before, as the kubelet expands them."""
    return _VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def check_image(container: Mapping[str, Any]) -> None:
    image = str(container.get("image") or "")
    if image != KNOWN_IMAGE:
        raise ConfigError(
            IMAGE_PULL,
            f'failed to pull and unpack image "{image}": the demo runs {KNOWN_IMAGE} only, '
            "as a local LiteLLM process",
        )


def volume_sources(volume: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """The ConfigMaps a volume is made of (name, optional): a configMap volume, or a projected one."""
    if "configMap" in volume:
        ref = volume["configMap"] or {}
        return [(str(ref.get("name", "")), bool(ref.get("optional")))]
    projected = volume.get("projected") or {}
    out = []
    for source in projected.get("sources") or ():
        ref = source.get("configMap")
        if ref:
            out.append((str(ref.get("name", "")), bool(ref.get("optional"))))
    return out


def volume_files(
    volume: Mapping[str, Any], namespace: str, config_maps: Objects, rewrite: Mapping[str, str]
) -> dict[str, str]:
    """The files of a ConfigMap or projected volume, Service names rewritten (`rewrite`: old
    host:port -> new). A missing ConfigMap leaves the pod in ContainerCreating, as a failed mount."""
    files: dict[str, str] = {}
    for name, optional in volume_sources(volume):
        cm = config_maps.get((namespace, name))
        if cm is None:
            if optional:
                continue
            mount = f'MountVolume.SetUp failed for volume "{volume.get("name", "")}"'
            raise ConfigError(CREATING, f'{mount} : configmap "{name}" not found')
        for key, text in config_map_values(cm).items():
            files[key] = rewrite_hosts(text, rewrite)
    return files


def rewrite_hosts(text: str, rewrite: Mapping[str, str]) -> str:
    for old in sorted(rewrite, key=len, reverse=True):
        text = text.replace(old, rewrite[old])
    return text


def service_host(name: str, namespace: str, port: int) -> str:
    """How the render names an in-cluster Service (llmgw.core.endpoints)."""
    return f"{name}.{namespace}.svc.cluster.local:{port}"


@dataclasses.dataclass(frozen=True)
class Probe:
    """An httpGet probe, resolved to a path and the container port it targets."""

    path: str
    port: int
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1


def container_port(container: Mapping[str, Any], port: int | str) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or ():
        if p.get("name") == port:
            return int(p.get("containerPort"))
    raise ConfigError(CONFIG_ERROR, f"no container port named {port}")


def probe(container: Mapping[str, Any], field: str) -> Probe | None:
    spec = container.get(field)
    if not spec or "httpGet" not in spec:
        return None
    get = spec["httpGet"]
    return Probe(
        path=str(get.get("path") or "/"),
        port=container_port(container, get.get("port", 80)),
        initial_delay=float(spec.get("initialDelaySeconds") or 0),
        period=float(spec.get("periodSeconds") or 10),
        timeout=float(spec.get("timeoutSeconds") or 1),
        failure_threshold=int(spec.get("failureThreshold") or 3),
        success_threshold=int(spec.get("successThreshold") or 1),
    )


_SLEEP = re.compile(r"\bsleep\b\(?\s*(\d+(?:\.\d+)?)")


def pre_stop_seconds(container: Mapping[str, Any]) -> float:
    """The preStop delay: a `sleep` action, or an exec whose command sleeps N seconds
    (`sleep N`, `python3 -c "import time; time.sleep(N)"`); 0 without one."""
    hook = ((container.get("lifecycle") or {}).get("preStop")) or {}
    if "sleep" in hook:
        return float((hook["sleep"] or {}).get("seconds") or 0)
    command = " ".join(str(part) for part in ((hook.get("exec") or {}).get("command") or ()))
    match = _SLEEP.search(command)
    return float(match.group(1)) if match else 0.0


def command(container: Mapping[str, Any], litellm: str, config_dir: str, mount: str, port: int) -> list[str]:
    """The proxy's command line: the container's args, with the config's mount path pointing at
    the pod's folder, and LiteLLM on its own loopback port."""
    args = [str(a) for a in container.get("args") or ()]
    out: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("--port", "--host") and i + 1 < len(args):
            skip = True
            continue
        out.append(config_dir + arg[len(mount) :] if arg.startswith(mount.rstrip("/") + "/") else arg)
    return [litellm, *out, "--host", "127.0.0.1", "--port", str(port)]


def backoff_seconds(restarts: int) -> float:
    return float(min(BACKOFF_BASE_SECONDS * 2.0 ** max(restarts, 0), BACKOFF_MAX_SECONDS))


@dataclasses.dataclass(frozen=True)
class State:
    """One container's state as the kubelet reports it."""

    waiting: str = ""
    """A waiting reason, or '' when running."""
    message: str = ""
    started_at: str = ""
    ready: bool = False
    started: bool = False
    restarts: int = 0
    last_exit: int | None = None
    last_started: str = ""
    last_finished: str = ""


def pod_status(name: str, image: str, state: State, start_time: str, now: str) -> dict[str, Any]:
    """The Pod status the kubelet writes for a one-container pod."""
    status: dict[str, Any] = {
        "waiting": {"reason": state.waiting, **({"message": state.message} if state.message else {})}
    }
    if not state.waiting:
        status = {"running": {"startedAt": state.started_at or now}}
    cs: dict[str, Any] = {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": state.ready,
        "started": state.started,
        "restartCount": state.restarts,
        "state": status,
    }
    if state.last_exit is not None:
        cs["lastState"] = {
            "terminated": {
                "exitCode": state.last_exit,
                "reason": "Error" if state.last_exit else "Completed",
                "startedAt": state.last_started or now,
                "finishedAt": state.last_finished or now,
            }
        }
    phase = "Running" if not state.waiting or state.restarts or state.last_exit is not None else "Pending"

    def cond(type_: str, ok: bool, reason: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {"type": type_, "status": "True" if ok else "False", "lastTransitionTime": now}
        if not ok and reason:
            out["reason"] = reason
        return out

    return {
        "phase": phase,
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": start_time,
        "conditions": [
            cond("PodScheduled", True),
            cond("Initialized", True),
            cond("ContainersReady", state.ready, "ContainersNotReady"),
            cond("Ready", state.ready, "ContainersNotReady"),
        ],
        "containerStatuses": [cs],
    }


def first_container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    containers: Sequence[Mapping[str, Any]] = ((pod.get("spec") or {}).get("containers")) or ()
    return containers[0] if containers else {}
