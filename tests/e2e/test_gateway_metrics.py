"""LiteLLM's own metrics and a callback with a credential from `spec.env`, on a real proxy.

One gateway, rendered by llmgw's real pipeline (`estate.build` + `pipeline.run`, as the
reconciler does) from raw manifests, with `metrics.enabled` and a callback in
`litellmSettings` that reads a credential as `os.environ/CALLBACK_TOKEN`, declared in
`spec.env`. ONE real `litellm` proxy is started on that config for the whole module
(about 10 s); the test harness plays the kubelet: the proxy gets the variables of the
Secrets the render lists and the plain `value:` entries of `spec.env`, nothing else of
the gateway's.

- A request for a model is counted for that model on `/metrics` (requests, tokens,
  latency), and every metric name the dashboard's "Gateway traffic" row queries is there,
  with the labels it groups by, once a success, a served fallback and a failed fallback
  have gone through (some of LiteLLM's series only appear after those).
- The callback is LiteLLM's generic API logger (`callbacks: [generic_api]`): it posts
  each request's log to `GENERIC_LOGGER_ENDPOINT` (a sink on loopback, from `spec.env`)
  with the headers of `litellm.generic_logger_headers`, here
  `{X-Llmgw-Callback-Token: os.environ/CALLBACK_TOKEN}`. The proxy resolves every
  `os.environ/` string of its config at load (`ProxyConfig._check_for_os_environ_vars`
  in litellm/proxy/proxy_server.py) and sets unknown `litellm_settings` keys on the
  `litellm` module; `GenericAPILogger()` (integrations/generic_api/generic_api_callback.py)
  reads both. The sink seeing the token proves the variable reached the proxy through
  the config. `DEFAULT_BATCH_SIZE=1` (litellm/constants.py) makes it post at once.

LiteLLM 1.106.2 needs `prometheus_client` for its prometheus callback, which
`litellm[proxy]` does not install (its `proxy-runtime` extra and the official image do):
without it the proxy exits at start-up, and this module says so instead of starting it.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from llmgw.core import render
from llmgw.demo import backends

from . import conftest, fakes, processes, proxy

pytestmark = pytest.mark.e2e

DASHBOARD = conftest.ROOT / "config" / "grafana" / "llmgw.json"
TRAFFIC_ROW = "Gateway traffic"
LITELLM_NAME = re.compile(r"\blitellm_[a-z0-9_]+\b")

NAMESPACE, GATEWAY = "e2e-metrics", "metrics"
OK_MODELS = ("fake-ok",)
BAD_MODELS = ("fake-bad-a", "fake-bad-b", "fake-bad-c")
TOKEN_HEADER = "X-Llmgw-Callback-Token"
SINK_PATH = "/logs"
METRICS_WAIT_S = 10.0

# chat-ok answers; chat-bad fails and falls back to chat-ok (a served fallback);
# chat-worse fails and falls back to chat-bad-alone, which fails too (a failed fallback).
MANIFESTS = string.Template(
    """\
apiVersion: llmgateway.dev/v1alpha1
kind: LLMGateway
metadata: {name: $gateway, namespace: $namespace}
spec:
  numRetries: 0
  timeoutSeconds: 20
  metrics: {enabled: true}
  env:
    - {name: GENERIC_LOGGER_ENDPOINT, value: "$sink_url"}
    - {name: CALLBACK_TOKEN, value: "$token"}
    - {name: DEFAULT_BATCH_SIZE, value: "1"}
  litellmSettings:
    disable_hf_tokenizer_download: true  # no network here; see tests/e2e/estate/gateway.yaml
    callbacks: [generic_api]
    generic_logger_headers: {$token_header: os.environ/CALLBACK_TOKEN}
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: ok, namespace: $namespace}
spec:
  type: vllm
  endpoint: {url: "$ok_url"}
  models:
    - {name: chat-ok, backendModel: fake-ok}
---
apiVersion: llmgateway.dev/v1alpha1
kind: LLMProvider
metadata: {name: bad, namespace: $namespace}
spec:
  type: vllm
  endpoint: {url: "$bad_url"}
  models:
    - {name: chat-bad, backendModel: fake-bad-a}
    - {name: chat-worse, backendModel: fake-bad-b}
    - {name: chat-bad-alone, backendModel: fake-bad-c}
---
apiVersion: llmgateway.dev/v1alpha1
kind: FallbackChain
metadata: {name: chat-bad, namespace: $namespace}
spec: {model: chat-bad, fallbacks: [chat-ok]}
---
apiVersion: llmgateway.dev/v1alpha1
kind: FallbackChain
metadata: {name: chat-worse, namespace: $namespace}
spec: {model: chat-worse, fallbacks: [chat-bad-alone]}
"""
)


# -- the callback's endpoint ----------------------------------------------------------


class Sink(backends.Fake):
    """An HTTP endpoint on loopback that keeps every POST it receives (`received()`)."""

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/{path:.*}", self._post)

    async def _post(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode(errors="replace")
        self.record(request, body, "post", "")
        return web.json_response({})


# -- the gateway: manifests -> llmgw's pipeline -> a real proxy ------------------------


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, backends.FakeBackend]]:
    """ "ok" answers; "bad" answers 500 to every model it serves, for the whole module."""
    started = {"ok": backends.FakeBackend("ok", OK_MODELS), "bad": backends.FakeBackend("bad", BAD_MODELS)}
    started["bad"].failing = True
    with fakes.serving(*started.values()):
        yield started


@pytest.fixture(scope="module")
def ok_backend(servers: dict[str, backends.FakeBackend]) -> backends.FakeBackend:
    return servers["ok"]


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    s = Sink("callback-sink")
    with fakes.serving(s):
        yield s


@pytest.fixture(scope="module")
def token() -> str:
    return secrets.token_hex(12)


@pytest.fixture(scope="module")
def rendered(
    servers: dict[str, backends.FakeBackend], sink: Sink, token: str
) -> tuple[render.Rendered, dict[str, str]]:
    """The gateway's config as the operator renders it, and its spec.env's plain values."""
    text = MANIFESTS.substitute(
        gateway=GATEWAY,
        namespace=NAMESPACE,
        sink_url=f"{sink.url}{SINK_PATH}",
        token=token,
        token_header=TOKEN_HEADER,
        ok_url=servers["ok"].url,
        bad_url=servers["bad"].url,
    )
    outcome = conftest.pipeline_render(text)
    spec_env = {e.name: e.value for e in outcome.resolution.gateway.spec.env if e.value is not None}
    assert spec_env.keys() == {"GENERIC_LOGGER_ENDPOINT", "CALLBACK_TOKEN", "DEFAULT_BATCH_SIZE"}
    return outcome.rendered, spec_env


@pytest.fixture(scope="module")
def prometheus_client_in_proxy(litellm_bin: Path) -> None:
    """LiteLLM's prometheus callback imports prometheus_client, which `litellm[proxy]` lacks."""
    python = litellm_bin.with_name("python")
    done = subprocess.run(
        [str(python), "-c", "import prometheus_client"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        hint = (
            f"prometheus_client is missing in {python.parent.parent}: LiteLLM's prometheus callback "
            "needs it (the gateway image has it, from litellm's proxy-runtime extra); install it "
            f"with `{python} -m pip install 'prometheus-client>=0.20,<1.0'`"
        )
        processes.missing(hint)


@pytest.fixture(scope="module")
def gateway(
    litellm_bin: Path,
    prometheus_client_in_proxy: None,
    rendered: tuple[render.Rendered, dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[proxy.Proxy]:
    """One real proxy for the module, with the env a pod of the gateway's Deployment gets:
    the Secrets the render lists (the master key among them), as the Deployment's
    secretKeyRefs, and the plain values of spec.env."""
    config, spec_env = rendered
    path = tmp_path_factory.mktemp("litellm-metrics") / "config.yaml"
    path.write_text(config.text)
    variables = {**proxy.pod_secrets(config.text, config.env), **spec_env, "HF_HUB_OFFLINE": "1"}
    with proxy.Proxy(litellm_bin, path, variables) as running:
        yield running


@pytest.fixture(scope="module")
def client(gateway: proxy.Proxy) -> Iterator[httpx.Client]:
    # /metrics answers 307 -> /metrics/ (a mounted ASGI app).
    with gateway.client(follow_redirects=True) as c:
        yield c


# -- /metrics, parsed ------------------------------------------------------------------


Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(client: httpx.Client) -> Samples:
    """Every sample of the proxy's /metrics, by sample name, with its labels and value."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a sample's values over the series with these label values."""
    return sum(v for lbl, v in samples.get(name, ()) if all(lbl.get(k) == x for k, x in labels.items()))


def until(client: httpx.Client, ready: Callable[[Samples], bool], what: str, gateway: proxy.Proxy) -> Samples:
    """Scrape until `ready`: LiteLLM's callbacks update the metrics after it has answered."""
    deadline = time.monotonic() + METRICS_WAIT_S
    while True:
        samples = scrape(client)
        if ready(samples):
            return samples
        if time.monotonic() > deadline:
            pytest.fail(
                f"/metrics did not show {what} within {METRICS_WAIT_S:.0f} s; "
                f"the proxy's log:\n{gateway.tail()}",
                pytrace=False,
            )
        time.sleep(0.1)


def chat(client: httpx.Client, model: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "Say hello."}]}
    )


# -- the dashboard's gateway-traffic row -------------------------------------------------


def traffic_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of the panels under the "Gateway traffic" row (rows are not
    collapsed: a panel belongs to the last row above it)."""
    dash = json.loads(DASHBOARD.read_text())
    out: list[tuple[str, str]] = []
    row = None
    for p in sorted(dash["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if p["type"] == "row":
            row = p["title"]
        elif row == TRAFFIC_ROW:
            out.extend((p["title"], t["expr"]) for t in p.get("targets") or ())
    assert out, f"the dashboard has no {TRAFFIC_ROW!r} row with queries"
    return out


def grouped_by(expr: str) -> set[str]:
    return {x.strip() for g in re.findall(r"\bby\s*\(([^)]*)\)", expr) for x in g.split(",") if x.strip()}


# -- the tests -----------------------------------------------------------------------------


def test_metrics_enabled_renders_the_prometheus_callback_next_to_the_users(
    rendered: tuple[render.Rendered, dict[str, str]],
) -> None:
    settings = rendered[0].config["litellm_settings"]
    assert "prometheus" in settings["callbacks"]
    assert "generic_api" in settings["callbacks"], "the gateway's own callbacks must be kept"


def test_a_request_is_counted_for_its_model(
    client: httpx.Client, gateway: proxy.Proxy, ok_backend: backends.FakeBackend
) -> None:
    before = scrape(client)
    requests = "litellm_proxy_total_requests_metric_total"
    was = total(before, requests, requested_model="chat-ok", status_code="200")
    tokens_in = total(before, "litellm_input_tokens_metric_total", requested_model="chat-ok")
    tokens_out = total(before, "litellm_output_tokens_metric_total", requested_model="chat-ok")
    latency = total(before, "litellm_request_total_latency_metric_count", model_group="chat-ok")
    asked = ok_backend.counts()["fake-ok"]

    response = chat(client, "chat-ok")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == backends.answer_text("ok", "fake-ok")
    assert ok_backend.counts()["fake-ok"] == asked + 1

    after = until(
        client,
        lambda s: total(s, requests, requested_model="chat-ok", status_code="200") > was,
        "the request for chat-ok",
        gateway,
    )
    assert total(after, requests, requested_model="chat-ok", status_code="200") == was + 1
    assert total(after, requests, requested_model="chat-ok") >= 1
    # The fake answers with usage 5 prompt + 7 completion tokens.
    assert total(after, "litellm_input_tokens_metric_total", requested_model="chat-ok") == tokens_in + 5
    assert total(after, "litellm_output_tokens_metric_total", requested_model="chat-ok") == tokens_out + 7
    assert total(after, "litellm_request_total_latency_metric_count", model_group="chat-ok") == latency + 1


def test_every_metric_the_dashboard_uses_is_exposed(client: httpx.Client, gateway: proxy.Proxy) -> None:
    # A success, a fallback that answered, a fallback that failed too.
    assert chat(client, "chat-ok").status_code == 200
    served = chat(client, "chat-bad")
    assert served.status_code == 200, served.text
    assert served.headers["x-litellm-attempted-fallbacks"] == "1"
    failed = chat(client, "chat-worse")
    assert failed.status_code == 500, failed.text

    samples = until(
        client,
        lambda s: (
            total(s, "litellm_deployment_failed_fallbacks_total", requested_model="chat-worse") >= 1
            and total(s, "litellm_proxy_failed_requests_metric_total", requested_model="chat-worse") >= 1
        ),
        "the failed fallback of chat-worse",
        gateway,
    )
    fallbacks = "litellm_deployment_successful_fallbacks_total"
    assert total(samples, fallbacks, requested_model="chat-bad", fallback_model="chat-ok") >= 1
    assert (
        total(
            samples,
            "litellm_deployment_failed_fallbacks_total",
            requested_model="chat-worse",
            fallback_model="chat-bad-alone",
        )
        >= 1
    )
    assert total(samples, "litellm_deployment_failure_responses_total", model_group="chat-bad") >= 1

    for panel, expr in traffic_queries():
        names = set(LITELLM_NAME.findall(expr))
        assert names, f"panel {panel!r} queries no LiteLLM metric: {expr}"
        for name in sorted(names):
            assert samples.get(name), f"panel {panel!r}: {name} is not on the proxy's /metrics"
            labels = set().union(*(lbl.keys() for lbl, _ in samples[name]))
            missing = sorted(grouped_by(expr) - labels)
            assert not missing, f"panel {panel!r}: {name} has no labels {missing} (has {sorted(labels)})"


def test_metrics_answer_a_scraper_without_credentials(gateway: proxy.Proxy) -> None:
    """The pods carry prometheus.io scrape annotations, and such a scrape sends no key."""
    with gateway.client(key=None, timeout=10.0, follow_redirects=True) as anonymous:
        response = anonymous.get("/metrics")
    assert response.status_code == 200, response.text[:300]
    assert "litellm_proxy_total_requests_metric" in response.text


def test_a_callback_reads_its_credential_from_spec_env(
    client: httpx.Client,
    gateway: proxy.Proxy,
    rendered: tuple[render.Rendered, dict[str, str]],
    sink: Sink,
    token: str,
) -> None:
    # The config names the variable; its value is in the pod's environment only.
    config, spec_env = rendered
    settings = config.config["litellm_settings"]
    assert settings["generic_logger_headers"] == {TOKEN_HEADER: "os.environ/CALLBACK_TOKEN"}
    assert token not in config.text
    assert spec_env["CALLBACK_TOKEN"] == token
    assert gateway.variables["CALLBACK_TOKEN"] == token

    seen = len(sink.received())
    response = chat(client, "chat-ok")
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + METRICS_WAIT_S
    while not (new := sink.received()[seen:]):
        if time.monotonic() > deadline:
            pytest.fail(
                f"the callback posted nothing to {sink.url}; the proxy's log:\n{gateway.tail()}",
                pytrace=False,
            )
        time.sleep(0.05)
    for posted in new:
        assert posted.path == SINK_PATH
        assert posted.headers.get(TOKEN_HEADER.lower()) == token
    logged = [entry for posted in new for entry in posted.body]
    assert any(entry.get("model_group") == "chat-ok" for entry in logged), logged
