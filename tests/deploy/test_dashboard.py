"""The Grafana dashboard queries only metrics (and labels) the operator's /metrics exposes."""

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


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every query of the dashboard: panel targets and template variables."""
    dash = json.loads(DASHBOARD.read_text())
    out = []

    def panels(items: list[Any]) -> None:
        for p in items:
            for t in p.get("targets") or ():
                out.append((f"panel {p['title']!r}", t["expr"]))
            panels(p.get("panels") or [])

    panels(dash["panels"])
    for var in dash["templating"]["list"]:
        q = var.get("query")
        if var["type"] == "query":
            out.append((f"variable {var['name']}", q["query"] if isinstance(q, dict) else q))
    return out


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
    used = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        used.update(x.strip() for x in group.split(",") if x.strip())
    used.update(re.findall(r"[{,]\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", expr))
    used.update(re.findall(r"label_values\(\s*llmgw_[a-z0-9_]+\s*,\s*([a-zA-Z_]+)\s*\)", expr))
    unknown = sorted(used - labels - PROMQL_WORDS)
    assert not unknown, f"{where}: labels {unknown} are not on {sorted(names)}"


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
    assert any(v["type"] == "datasource" and v["query"] == "prometheus" for v in dash["templating"]["list"])


def test_chart_ships_the_same_dashboard() -> None:
    assert (CHART / "files" / "grafana" / "llmgw.json").read_bytes() == DASHBOARD.read_bytes()
