"""The Grafana dashboard queries only metrics (and labels) that really exist.

The operator's rows query the operator's /metrics (llmgw.metrics). The "Gateway
traffic" row queries LiteLLM's own metrics, which the gateway pods expose with
`spec.metrics.enabled`: their names and labels are kept below as LiteLLM 1.106.2
(the pinned gateway image) exposes them, copied from a real proxy's /metrics after a
success, a served fallback and a failed fallback; tests/e2e/test_gateway_metrics.py
checks on a real proxy that every name the row uses is there, with those labels.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client import exposition
from prometheus_client.metrics import MetricWrapperBase

from llmgw import metrics

from .conftest import CHART, ROOT

DASHBOARD = ROOT / "config" / "grafana" / "llmgw.json"
SUFFIXES = {  # the samples of each `# TYPE` line (counters and infos are named with their suffix)
    "counter": ("",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum"),
    "info": ("_info",),
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
TRAFFIC_ROW = "Gateway traffic"

# Who made the request: on most of LiteLLM's request metrics (not all; see below).
_CALLER = frozenset(
    {
        "hashed_api_key",
        "api_key_alias",
        "team",
        "team_alias",
        "user",
        "end_user",
        "user_email",
        "org_id",
        "org_alias",
    }
)
# Sample names of LiteLLM 1.106.2's traffic metrics, with their label names, as its
# /metrics showed them after a success, a served fallback and a failed fallback.
_TOKENS = _CALLER | {"requested_model", "model", "model_id", "api_provider"}
_LATENCY = (_CALLER - {"user_email"}) | {
    "model_group",
    "requested_model",
    "model",
    "model_id",
    "api_provider",
    "service_tier",
}
_DEPLOYMENT = {
    "model_group",
    "requested_model",
    "litellm_model_name",
    "model_id",
    "api_base",
    "api_provider",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "client_ip",
    "user_agent",
}
_FALLBACKS = {
    "requested_model",
    "fallback_model",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "exception_status",
    "exception_class",
    "model_id",
}
_EXCEPTION = {"exception_status", "exception_class"}
LITELLM_METRICS: dict[str, frozenset[str]] = {
    "litellm_proxy_total_requests_metric_total": frozenset(
        _CALLER
        | {"requested_model", "status_code", "route", "client_ip", "user_agent", "model_id", "api_provider"}
    ),
    "litellm_proxy_failed_requests_metric_total": frozenset(
        _CALLER
        | _EXCEPTION
        | {"requested_model", "route", "client_ip", "user_agent", "model_id", "api_provider"}
    ),
    "litellm_request_total_latency_metric_bucket": frozenset(_LATENCY | {"le"}),
    "litellm_request_total_latency_metric_count": frozenset(_LATENCY),
    "litellm_request_total_latency_metric_sum": frozenset(_LATENCY),
    "litellm_llm_api_latency_metric_bucket": frozenset(_LATENCY | {"le"}),
    "litellm_llm_api_latency_metric_count": frozenset(_LATENCY),
    "litellm_llm_api_latency_metric_sum": frozenset(_LATENCY),
    "litellm_input_tokens_metric_total": frozenset(_TOKENS),
    "litellm_output_tokens_metric_total": frozenset(_TOKENS),
    "litellm_total_tokens_metric_total": frozenset(_TOKENS),
    "litellm_deployment_total_requests_total": frozenset(_DEPLOYMENT),
    "litellm_deployment_success_responses_total": frozenset(_DEPLOYMENT),
    "litellm_deployment_failure_responses_total": frozenset(_DEPLOYMENT | _EXCEPTION),
    "litellm_deployment_successful_fallbacks_total": frozenset(_FALLBACKS),
    "litellm_deployment_failed_fallbacks_total": frozenset(_FALLBACKS),
}
# What the traffic row must show, each from at least one of these names.
TRAFFIC_NEEDS = {
    "requests": {"litellm_proxy_total_requests_metric_total"},
    "failures": {"litellm_proxy_failed_requests_metric_total", "litellm_deployment_failure_responses_total"},
    "latency": {"litellm_request_total_latency_metric_bucket", "litellm_llm_api_latency_metric_bucket"},
    "input tokens": {"litellm_input_tokens_metric_total"},
    "output tokens": {"litellm_output_tokens_metric_total"},
    "fallbacks": {
        "litellm_deployment_successful_fallbacks_total",
        "litellm_deployment_failed_fallbacks_total",
    },
}
LITELLM_NAME = re.compile(r"\blitellm_[a-z0-9_]+\b")


def _collectors() -> dict[str, MetricWrapperBase]:
    return {c._name: c for c in vars(metrics).values() if isinstance(c, MetricWrapperBase)}


def _info_keys() -> set[str]:
    """The keys the operator passes to Info metrics' .info({...}); they are labels too."""
    keys: set[str] = set()
    for path in (ROOT / "operator" / "llmgw").rglob("*.py"):
        for body in re.findall(r"\.info\(\{(.*?)\}\)", path.read_text(encoding="utf-8"), re.S):
            keys.update(re.findall(r"[\"']([a-z_]+)[\"']\s*:", body))
    return keys


def exposed() -> dict[str, set[str]]:
    """Every sample name of the operator's /metrics (its `# TYPE` lines), with its label names."""
    text = exposition.generate_latest(metrics.REGISTRY).decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    collectors = _collectors()
    out: dict[str, set[str]] = {}
    for family, kind in types.items():
        base = re.sub(r"_(total|info)$", "", family)
        collector = collectors.get(base)
        if collector is None:  # prometheus-client's own `_created` gauges
            continue
        labels = set(collector._labelnames) | (_info_keys() if collector._type == "info" else set())
        for suffix in SUFFIXES[kind]:
            out[family + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


def rows() -> dict[str, list[dict[str, Any]]]:
    """The dashboard's panels by the row they sit under (rows are not collapsed: a panel
    belongs to the last row above it), with "" for panels above every row."""
    dash = json.loads(DASHBOARD.read_text())
    out: dict[str, list[dict[str, Any]]] = {"": []}
    current = ""
    for p in sorted(dash["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if p["type"] == "row":
            current = p["title"]
            out.setdefault(current, []).extend(p.get("panels") or [])
        else:
            out[current].append(p)
    return out


def queries(*, traffic: bool = False) -> list[tuple[str, str]]:
    """(where, PromQL) of the dashboard's queries: the operator's (panel targets and template
    variables), or with `traffic` those of the gateway-traffic row."""
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for row, panels in rows().items():
        if (row == TRAFFIC_ROW) is traffic:
            for p in panels:
                for t in p.get("targets") or ():
                    out.append((f"panel {p['title']!r}", t["expr"]))
    if not traffic:
        for var in dash["templating"]["list"]:
            q = var.get("query")
            if var["type"] == "query":
                out.append((f"variable {var['name']}", q["query"] if isinstance(q, dict) else q))
    return out


def labels_used(expr: str, metric_prefix: str = "llmgw_") -> set[str]:
    """Label names a PromQL expression groups by, matches on or asks label_values of."""
    used = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        used.update(x.strip() for x in group.split(",") if x.strip())
    used.update(re.findall(r"[{,]\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", expr))
    used.update(re.findall(rf"label_values\(\s*{metric_prefix}[a-z0-9_]+\s*,\s*([a-zA-Z_]+)\s*\)", expr))
    return used - PROMQL_WORDS


def test_dashboard_has_queries() -> None:
    assert len(queries()) >= 10


@pytest.mark.parametrize(("where", "expr"), queries())
def test_every_metric_queried_is_exposed(where: str, expr: str) -> None:
    have = exposed()
    names = set(re.findall(r"\bllmgw_[a-z0-9_]+\b", expr))
    assert names, f"{where}: queries no llmgw metric"
    missing = sorted(names - have.keys())
    assert not missing, f"{where}: {missing} not in the operator's /metrics (have {sorted(have)})"
    labels = set().union(*(have[n] for n in names))
    unknown = sorted(labels_used(expr) - labels)
    assert not unknown, f"{where}: labels {unknown} are not on {sorted(names)}"
    assert not LITELLM_NAME.search(expr), f"{where}: LiteLLM's metrics belong in the {TRAFFIC_ROW!r} row"


def test_gateway_traffic_row_has_queries() -> None:
    assert len(queries(traffic=True)) >= 6


@pytest.mark.parametrize(("where", "expr"), queries(traffic=True))
def test_gateway_traffic_queries_only_real_litellm_metrics(where: str, expr: str) -> None:
    names = set(LITELLM_NAME.findall(expr))
    assert names, f"{where}: queries no LiteLLM metric"
    missing = sorted(names - LITELLM_METRICS.keys())
    assert not missing, (
        f"{where}: {missing} are not metrics LiteLLM 1.106.2 exposes (have {sorted(LITELLM_METRICS)})"
    )
    assert not re.search(r"\bllmgw_", expr), f"{where}: the operator's metrics belong in the other rows"
    # Grouped by labels every series of the query has: a label on one metric only would split it.
    common = frozenset.intersection(*(LITELLM_METRICS[n] for n in names))
    unknown = sorted(labels_used(expr, "litellm_") - common)
    assert not unknown, f"{where}: labels {unknown} are not on every one of {sorted(names)}"
    if "histogram_quantile" in expr:
        assert names <= {n for n in LITELLM_METRICS if n.endswith("_bucket")}, where
        assert re.search(r"by \([^)]*\ble\b", expr), f"{where}: a quantile must keep `le`"


def test_gateway_traffic_row_shows_requests_failures_latency_tokens_and_fallbacks() -> None:
    used = set(LITELLM_NAME.findall(" ".join(q for _, q in queries(traffic=True))))
    lacking = sorted(what for what, names in TRAFFIC_NEEDS.items() if not names & used)
    assert not lacking, f"the {TRAFFIC_ROW!r} row shows no {lacking}"
    # Per model: every query of the row is split by a model label.
    for where, expr in queries(traffic=True):
        assert labels_used(expr, "litellm_") & {"requested_model", "model_group"}, f"{where}: not per model"


def traffic_metric_names() -> set[str]:
    """Every LiteLLM sample name the gateway-traffic row queries."""
    return set(LITELLM_NAME.findall(" ".join(q for _, q in queries(traffic=True))))


def test_every_operator_metric_has_a_panel() -> None:
    """A new metric in llmgw.metrics shows up on the dashboard too."""
    queried = set(re.findall(r"\bllmgw_[a-z0-9_]+\b", " ".join(q for _, q in queries())))
    families = {re.sub(r"_(total|bucket|count|sum|info)$", "", n) for n in queried}
    missing = sorted(_collectors().keys() - families)
    assert not missing, f"metrics without a panel on the dashboard: {missing}"


def test_dashboard_is_importable_json() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "llmgw-operator"
    assert dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert TRAFFIC_ROW in rows()
    assert any(v["type"] == "datasource" and v["query"] == "prometheus" for v in dash["templating"]["list"])


def test_panels_do_not_overlap() -> None:
    dash = json.loads(DASHBOARD.read_text())
    cells: dict[tuple[int, int], str] = {}
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0, f"{p['title']!r} starts left of the grid"
        assert g["x"] + g["w"] <= 24, f"{p['title']!r} ends right of the grid"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def test_chart_ships_the_same_dashboard() -> None:
    assert (CHART / "files" / "grafana" / "llmgw.json").read_bytes() == DASHBOARD.read_bytes()
