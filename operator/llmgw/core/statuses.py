"""What each object's status should say, from the outcomes of every gateway.

A provider or chain may be served by several gateways, so its status is
decided once, from all of them: Accepted when every gateway that binds it
takes it in, with the reason of the first that does not.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from llmgw.api.gateway import LLMGateway
from llmgw.api.provider import CLOUD_TYPES, LLMProvider
from llmgw.core import conditions, desired, findings, keys, objects, pipeline, resolve, revisions
from llmgw.core import rollout as rollout_mod
from llmgw.core.backends import Probe
from llmgw.core.estate import Estate
from llmgw.core.findings import Finding

ACCEPTED = "Accepted"
RESOLVED_REFS = "ResolvedRefs"
PROGRAMMED = "Programmed"
READY = "Ready"
BACKEND_READY = "BackendReady"
MODELS_AVAILABLE = "ModelsAvailable"
CACHE_AVAILABLE = "CacheAvailable"
APIS_AVAILABLE = "APIsAvailable"
"""On a gateway with spec.route or metrics.serviceMonitor: whether the cluster serves those APIs."""
API_UNAVAILABLE = {
    "HTTPRoute": (
        "RouteAPIUnavailable",
        "install the Gateway API CRDs, or remove spec.route; the gateway serves without a route",
    ),
    "ServiceMonitor": (
        "ServiceMonitorAPIUnavailable",
        "install the Prometheus Operator's CRDs, or set spec.metrics.serviceMonitor: false; "
        "/metrics is served without a ServiceMonitor",
    ),
}
"""Reason, and what to do, when the cluster lacks the API of an owned kind."""
EXCLUDED_SHOWN = 100
"""How many left-out objects a gateway's status lists (all are counted): a status must stay far
below the API server's object size limit when one team's bad objects leave thousands out."""
MODELS_SHOWN = 10
"""How many of a backend's models a condition message names."""
ANNOUNCED = frozenset({ACCEPTED, READY, BACKEND_READY, CACHE_AVAILABLE, APIS_AVAILABLE})
"""Conditions whose transitions are also Events on the object."""


@dataclasses.dataclass(frozen=True)
class Rollout:
    """What the applier knows about a gateway's owned objects."""

    applied_hash: str | None = None
    """The revision the Deployment points at, if any."""
    deployment: Mapping[str, Any] | None = None
    """The live Deployment (its status decides Ready)."""
    error: str | None = None
    """Why the last apply failed, if it did."""
    error_reason: str = "ApplyFailed"
    plan: rollout_mod.Plan | None = None
    """The rollout plan: which revision runs, the history, and the RolledBack condition."""
    owned: tuple[tuple[str, str, str], ...] = ()
    """(apiVersion, kind, name) of each object the gateway owns (its revisions aside)."""
    apis: Mapping[str, bool | None] = dataclasses.field(default_factory=dict)
    """Each optional kind the gateway asks for (HTTPRoute, ServiceMonitor) -> whether the
    cluster serves its API (None: not known yet)."""


def _summary(found: Sequence[Finding]) -> str:
    return "; ".join(f"{f.field}: {f.message}" if f.field else f.message for f in found)


def inputs(
    gen: Mapping[keys.ObjectId, int | None], selected: frozenset[keys.ObjectId], gateway: LLMGateway
) -> list[str]:
    """`Kind namespace/name@generation` of every object a revision was made from."""
    meta = gateway.metadata
    rows = [f"LLMGateway {meta.namespace}/{meta.name}@{meta.generation or 0}"]
    rows += [f"{k} {ns}/{n}@{gen.get((k, ns, n)) or 0}" for k, ns, n in sorted(selected)]
    return rows


def for_objects(estate: Estate, outcomes: Sequence[pipeline.Outcome]) -> dict[keys.ObjectId, dict[str, Any]]:
    """Status (without transition times) of every provider and chain."""
    served_by: dict[keys.ObjectId, list[str]] = defaultdict(list)
    bound_by: dict[keys.ObjectId, list[str]] = defaultdict(list)
    per_object: dict[keys.ObjectId, list[Finding]] = defaultdict(list)
    excluded: dict[keys.ObjectId, Finding] = {}
    order: dict[keys.ObjectId, tuple[str, ...]] = {}
    attempts: dict[keys.ObjectId, list[dict[str, Any]]] = {}
    for o in outcomes:
        res = o.resolution
        gw = f"{res.gateway.metadata.namespace}/{res.gateway.metadata.name}"
        for sel in res.selected:
            bound_by[sel].append(gw)
            if sel not in res.excluded:
                served_by[sel].append(gw)
        for f in res.findings:
            per_object[(f.kind, f.namespace, f.name)].append(f)
        for ex, f in res.excluded.items():
            excluded.setdefault(ex, f)
        for (ns, name), tried in res.order.items():
            if ("FallbackChain", ns, name) not in order:
                order[("FallbackChain", ns, name)] = tried
                attempts[("FallbackChain", ns, name)] = resolve.attempts(res, tried)

    out: dict[keys.ObjectId, dict[str, Any]] = {}
    for p in estate.providers:
        oid: keys.ObjectId = ("LLMProvider", p.metadata.namespace, p.metadata.name)
        gen = p.metadata.generation
        if not p.spec.enabled:
            accepted = conditions.condition(
                ACCEPTED, True, "Disabled", "spec.enabled is false: the provider renders nothing", gen
            )
        else:
            accepted = _accepted(oid, gen, bound_by, served_by, per_object, excluded)
        out[oid] = {
            "observedGeneration": gen,
            "conditions": [accepted, *backend_conditions(estate, p)],
            "gateways": sorted(served_by.get(oid, [])),
            "models": len(p.spec.models) or len(_probe_models(estate, p)),
        }
        probe = estate.backends.probes.get((p.metadata.namespace, p.metadata.name))
        if p.spec.discovery.enabled and probe is not None and probe.models is not None:
            out[oid]["discoveredModels"] = list(probe.models)
    for c in estate.chains:
        oid = ("FallbackChain", c.metadata.namespace, c.metadata.name)
        gen = c.metadata.generation
        out[oid] = {
            "observedGeneration": gen,
            "conditions": [_accepted(oid, gen, bound_by, served_by, per_object, excluded)],
            "gateways": sorted(served_by.get(oid, [])),
            "effectiveOrder": list(order.get(oid, ())),
            "attempts": attempts.get(oid, []),
        }
    for bad in estate.invalid:
        if bad.kind == "LLMGateway":
            continue
        oid = (bad.kind, bad.namespace, bad.name)
        out[oid] = _invalid(bad)
    return out


def _probe_models(estate: Estate, p: LLMProvider) -> tuple[str, ...]:
    probe = estate.backends.probes.get((p.metadata.namespace, p.metadata.name))
    return probe.models if probe is not None and probe.models is not None else ()


def backend_conditions(estate: Estate, p: LLMProvider) -> list[dict[str, Any]]:
    """ResolvedRefs (the Service exists), BackendReady (it has ready endpoints, or the
    probe answers) and, with discovery on, ModelsAvailable (the backend serves what is declared)."""
    gen = p.metadata.generation
    b = estate.backends
    out: list[dict[str, Any]] = []
    probe = b.probes.get(keys.of(p))
    ep = estate.endpoints[keys.of(p)]
    if ep.service is not None:
        key = ep.service
        where = f"Service {key[0]}/{key[1]}"
        if not b.services_known:
            out.append(
                conditions.condition(RESOLVED_REFS, "Unknown", "NotChecked", f"{where} not looked up", gen)
            )
            out.append(
                conditions.condition(BACKEND_READY, "Unknown", "NotChecked", f"{where} not looked up", gen)
            )
        elif ep.ports is None:
            msg = f"{where} does not exist; create it or fix spec.endpoint.service"
            out.append(conditions.condition(RESOLVED_REFS, False, "ServiceNotFound", msg, gen))
            out.append(conditions.condition(BACKEND_READY, False, "ServiceNotFound", msg, gen))
        elif ep.number is None:
            msg = f"{where} has no port named {ep.port!r}"
            out.append(conditions.condition(RESOLVED_REFS, False, "PortNotFound", msg, gen))
            out.append(conditions.condition(BACKEND_READY, False, "PortNotFound", msg, gen))
        else:
            out.append(conditions.condition(RESOLVED_REFS, True, RESOLVED_REFS, f"{where} exists", gen))
            ready = b.ready_endpoints.get(key, 0)
            if ready:
                out.append(
                    conditions.condition(
                        BACKEND_READY, True, BACKEND_READY, f"{where} has {ready} ready endpoint(s)", gen
                    )
                )
            else:
                out.append(
                    conditions.condition(
                        BACKEND_READY, False, "NoReadyEndpoints", f"{where} has no ready endpoints", gen
                    )
                )
    elif p.spec.discovery.enabled and p.spec.type not in CLOUD_TYPES:
        if probe is None:
            out.append(conditions.condition(BACKEND_READY, "Unknown", "NotProbed", "not probed yet", gen))
        elif probe.models is None:
            out.append(
                conditions.condition(BACKEND_READY, False, "ProbeFailed", probe.error or "probe failed", gen)
            )
        else:
            out.append(
                conditions.condition(
                    BACKEND_READY, True, BACKEND_READY, "the backend answers its model list", gen
                )
            )
    if p.spec.discovery.enabled and p.spec.type not in CLOUD_TYPES:
        out.append(_models_available(p, probe, gen))
    return out


def _models_available(p: LLMProvider, probe: Probe | None, gen: int | None) -> dict[str, Any]:
    if probe is None:
        return conditions.condition(MODELS_AVAILABLE, "Unknown", "NotProbed", "not probed yet", gen)
    if probe.models is None:
        return conditions.condition(
            MODELS_AVAILABLE, "Unknown", "ProbeFailed", probe.error or "the probe failed", gen
        )
    if not p.spec.models:
        return conditions.condition(
            MODELS_AVAILABLE,
            True,
            "Discovered",
            f"serving the {len(probe.models)} model(s) the backend reports",
            gen,
        )
    served = set(probe.models)
    missing = [m.backend_id for m in p.spec.models if m.backend_id not in served]
    if missing:
        return conditions.condition(
            MODELS_AVAILABLE,
            False,
            "ModelsMissing",
            f"the backend does not serve {', '.join(repr(m) for m in missing)} (it serves "
            f"{', '.join(repr(m) for m in probe.models[:MODELS_SHOWN]) or 'nothing'}); requests for "
            "them will fail until it does",
            gen,
        )
    return conditions.condition(
        MODELS_AVAILABLE,
        True,
        MODELS_AVAILABLE,
        f"the backend serves all {len(p.spec.models)} declared model(s)",
        gen,
    )


def _invalid(bad: objects.Invalid) -> dict[str, Any]:
    return {
        "observedGeneration": bad.generation,
        "conditions": [
            conditions.condition(
                ACCEPTED, False, findings.reason_of(bad.findings), _summary(bad.findings), bad.generation
            )
        ],
    }


def _accepted(
    oid: keys.ObjectId,
    gen: int | None,
    bound_by: Mapping[keys.ObjectId, list[str]],
    served_by: Mapping[keys.ObjectId, list[str]],
    per_object: Mapping[keys.ObjectId, list[Finding]],
    excluded: Mapping[keys.ObjectId, Finding],
) -> dict[str, Any]:
    if not bound_by.get(oid):
        return conditions.condition(
            ACCEPTED,
            False,
            findings.NOT_SELECTED,
            "no LLMGateway binds this object: check the gateways' spec.selector and "
            "spec.namespaces, or this object's labels and namespace",
            gen,
        )
    if oid in excluded:
        f = excluded[oid]
        found = sorted(set(per_object.get(oid, [])))
        return conditions.condition(ACCEPTED, False, f.reason, _summary(found) or f.message, gen)
    found = sorted(set(per_object.get(oid, [])))
    gws = ", ".join(sorted(served_by.get(oid, [])))
    if found:
        return conditions.condition(
            ACCEPTED, True, found[0].reason, f"served by {gws}, but {_summary(found)}", gen
        )
    return conditions.condition(ACCEPTED, True, ACCEPTED, f"served by {gws}", gen)


def for_gateway(
    gateway: LLMGateway,
    outcome: pipeline.Outcome | None,
    rollout: Rollout,
    cache_available: bool | None = None,
) -> dict[str, Any]:
    """A gateway's status (without transition times)."""
    gen = gateway.metadata.generation
    if outcome is None:
        return {"observedGeneration": gen}
    res = outcome.resolution
    want = outcome.rendered.hash
    conds = [conditions.condition(ACCEPTED, True, ACCEPTED, "the gateway's spec is valid", gen)]
    if rollout.error is not None:
        conds.append(conditions.condition(PROGRAMMED, False, rollout.error_reason, rollout.error, gen))
    elif rollout.plan is not None and rollout.plan.held is not None:
        conds.append(conditions.condition(PROGRAMMED, False, "RevisionFailed", rollout.plan.held, gen))
    elif rollout.applied_hash == want:
        conds.append(
            conditions.condition(
                PROGRAMMED,
                True,
                PROGRAMMED,
                f"revision {revisions.short(want)} is rolled out to the Deployment" + _owning(rollout),
                gen,
            )
        )
    else:
        conds.append(
            conditions.condition(
                PROGRAMMED, False, "Pending", f"revision {revisions.short(want)} is being applied", gen
            )
        )
    conds.append(_ready(rollout.deployment, gen))
    if rollout.apis:
        conds.append(_apis_available(rollout.apis, gen))
    runs = revisions.short(want)
    if rollout.plan is not None:
        rolled_back = dict(rollout.plan.condition)
        if gen is not None:
            rolled_back["observedGeneration"] = gen
        conds.append(rolled_back)
        runs = rollout.plan.run
    redis = gateway.spec.cache.redis if gateway.spec.cache is not None else None
    if redis is not None:
        where = f"Redis {redis.host}:{redis.port}"
        if cache_available is False:
            conds.append(
                conditions.condition(
                    CACHE_AVAILABLE,
                    False,
                    "RedisUnreachable",
                    f"{where} did not answer several checks in a row; the config is rendered "
                    "without cache until it answers again",
                    gen,
                )
            )
        else:
            conds.append(
                conditions.condition(
                    CACHE_AVAILABLE, True, CACHE_AVAILABLE, f"{where} answers; responses are cached", gen
                )
            )
    return {
        "observedGeneration": gen,
        "conditions": conds,
        "revision": runs,
        "configMap": revisions.name(gateway.metadata.name, runs),
        "providers": len(res.providers),
        "models": len(res.models),
        "chains": len(res.chains),
        "excluded": [
            {"kind": k, "namespace": ns, "name": n, "reason": f.reason, "message": f.message}
            for (k, ns, n), f in sorted(res.excluded.items())[:EXCLUDED_SHOWN]
        ],
        "excludedCount": len(res.excluded),
        "owned": [{"apiVersion": v, "kind": k, "name": n} for v, k, n in rollout.owned],
        **({"history": rollout_mod.history_to_status(rollout.plan.history)} if rollout.plan else {}),
    }


def _owning(rollout: Rollout) -> str:
    """What the Programmed message adds: what the gateway owns, and what it goes without."""
    text = "; owns " + ", ".join(f"{k}/{n}" for _, k, n in rollout.owned) if rollout.owned else ""
    missing = [kind for kind, served in rollout.apis.items() if served is False]
    if missing:
        text += f"; without {' and '.join(missing)} (see {APIS_AVAILABLE})"
    return text


def _apis_available(apis: Mapping[str, bool | None], gen: int | None) -> dict[str, Any]:
    def named(kind: str) -> str:
        return f"{kind} ({desired.APIS[kind].api_version})"

    missing = [kind for kind, served in apis.items() if served is False]
    if missing:
        reason = API_UNAVAILABLE[missing[0]][0]
        message = "; ".join(
            f"the cluster does not serve {named(kind)}: {API_UNAVAILABLE[kind][1]}" for kind in missing
        )
        return conditions.condition(APIS_AVAILABLE, False, reason, message, gen)
    unknown = [kind for kind, served in apis.items() if served is None]
    if unknown:
        return conditions.condition(
            APIS_AVAILABLE,
            "Unknown",
            "NotChecked",
            f"not asked yet whether the cluster serves {' and '.join(named(k) for k in unknown)}",
            gen,
        )
    return conditions.condition(
        APIS_AVAILABLE,
        True,
        APIS_AVAILABLE,
        f"the cluster serves {' and '.join(named(k) for k in apis)}",
        gen,
    )


def for_invalid_gateway(bad: objects.Invalid) -> dict[str, Any]:
    status = _invalid(bad)
    status["conditions"][0]["message"] += "; the running gateway is left as it is"
    return status


def _ready(deployment: Mapping[str, Any] | None, gen: int | None) -> dict[str, Any]:
    """Ready follows `rollout.available`, the one rule for "the Deployment is available"."""
    if deployment is None:
        return conditions.condition(
            READY, False, "NoDeployment", "the gateway Deployment does not exist yet", gen
        )
    status = deployment.get("status") or {}
    if not rollout_mod.current(deployment):
        # Its conditions are about an older spec (a deadline passed for the previous revision).
        return conditions.condition(
            READY, False, "Progressing", "the Deployment controller has not seen the change yet", gen
        )
    progressing = conditions.get(status.get("conditions"), "Progressing")
    if progressing is not None and progressing.get("reason") == rollout_mod.DEADLINE_EXCEEDED:
        return conditions.condition(
            READY, False, rollout_mod.DEADLINE_EXCEEDED, str(progressing.get("message", "")), gen
        )
    want = rollout_mod.replicas(deployment)
    if want == 0:
        return conditions.condition(READY, False, "ScaledToZero", "spec.replicas is 0", gen)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    message = f"{ready}/{want} replicas ready, {updated}/{want} updated"
    if rollout_mod.available(deployment):
        return conditions.condition(READY, True, READY, message, gen)
    return conditions.condition(READY, False, "Progressing" if ready else "Unavailable", message, gen)
