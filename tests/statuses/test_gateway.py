"""`statuses.for_gateway` and `for_invalid_gateway`: what a gateway says it serves and runs."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from llmgw.core import findings, rollout, statuses

HASH_ANNOTATION = "llmgateway.dev/config-hash"
"""The pod-template annotation that names the revision: a contract users rely on."""
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
GOOD = "b" * 64
"""The hash of an earlier revision that became available."""


def deployment(
    template_hash: str = GOOD,
    *,
    replicas: int = 2,
    ready: int = 2,
    updated: int = 2,
    generation: int = 4,
    observed: int = 4,
    deadline_exceeded: bool = False,
) -> dict[str, Any]:
    """A live Deployment whose status agrees with itself: readyReplicas == availableReplicas, and
    the Available condition True exactly when every replica is available."""
    progressing: dict[str, Any] = {
        "type": "Progressing",
        "status": "True",
        "reason": "NewReplicaSetAvailable",
    }
    if deadline_exceeded:
        progressing = {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "gw-123" has timed out progressing.',
        }
    elif updated < replicas:
        progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
    available = "True" if ready >= replicas else "False"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gw", "namespace": "default", "generation": generation},
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"annotations": {HASH_ANNOTATION: template_hash}}},
        },
        "status": {
            "observedGeneration": observed,
            "replicas": max(replicas, updated),
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            **({"unavailableReplicas": replicas - ready} if ready < replicas else {}),
            "conditions": [{"type": "Available", "status": available, "reason": "x"}, progressing],
        },
    }


@pytest.fixture
def served(world, gateway, provider, chain, generation):
    """A gateway at generation 3 with one provider, one chain, and one chain it leaves out."""
    est, (outcome,) = world(
        generation(gateway("gw"), 3),
        provider("p", "a", {"name": "b", "aliases": ["bee"]}),
        chain("c", "a", "b"),
        chain("lost", "zz", "a"),
    )
    return est.gateways[0], outcome


def gateway_status(
    valid, gw, outcome, rollout_: statuses.Rollout, cache: bool | None = None
) -> dict[str, Any]:
    status = statuses.for_gateway(gw, outcome, rollout_, cache)
    valid("LLMGateway", status)
    return status


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    (found,) = [c for c in status["conditions"] if c["type"] == type_]
    return found


def types(status: dict[str, Any]) -> list[str]:
    return [c["type"] for c in status["conditions"]]


def test_a_rolled_out_gateway_says_what_it_serves(served, valid):
    gw, outcome = served
    status = gateway_status(valid, gw, outcome, statuses.Rollout(outcome.rendered.hash, deployment()))
    assert status["observedGeneration"] == 3
    assert types(status) == ["Accepted", "Programmed", "Ready"]
    assert cond(status, "Accepted") == {
        "type": "Accepted",
        "status": "True",
        "reason": "Accepted",
        "message": "the gateway's spec is valid",
        "observedGeneration": 3,
    }
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])
    assert (status["providers"], status["models"], status["chains"]) == (1, 2, 1)
    assert status["excluded"] == [
        {
            "kind": "FallbackChain",
            "namespace": "default",
            "name": "lost",
            "reason": findings.UNKNOWN_MODEL,
            "message": (
                "no enabled provider serves model 'zz'; the chain is left out until a provider serves it"
            ),
        }
    ]
    assert "history" not in status


def test_the_revision_and_its_config_map_name_the_render(served, valid):
    gw, outcome = served
    status = gateway_status(valid, gw, outcome, statuses.Rollout(outcome.rendered.hash, deployment()))
    assert status["configMap"].startswith("gw-config-")
    suffix = status["configMap"].removeprefix("gw-config-")
    assert suffix == status["revision"]
    assert len(suffix) >= 8
    assert outcome.rendered.hash.startswith(suffix)


@pytest.mark.parametrize(
    ("applied", "error", "reason", "says"),
    [
        pytest.param("render", None, "Programmed", "is rolled out to the Deployment", id="applied"),
        pytest.param(None, None, "Pending", "is being applied", id="nothing-applied-yet"),
        pytest.param(GOOD, None, "Pending", "is being applied", id="an-older-revision-applied"),
        pytest.param("render", "the API server said no", "ApplyFailed", "the API server said no", id="error"),
        pytest.param(GOOD, "the API server said no", "ApplyFailed", "the API server said no", id="error-old"),
    ],
)
def test_programmed_says_whether_the_render_is_applied(applied, error, reason, says, served, valid):
    gw, outcome = served
    applied_hash = outcome.rendered.hash if applied == "render" else applied
    status = gateway_status(valid, gw, outcome, statuses.Rollout(applied_hash, deployment(), error))
    programmed = cond(status, "Programmed")
    assert (programmed["status"], programmed["reason"]) == (
        "True" if reason == "Programmed" else "False",
        reason,
    )
    assert says in programmed["message"]
    if error is None:
        assert programmed["message"].startswith(f"revision {status['revision']} ")


def test_an_apply_error_says_its_own_reason(served, valid):
    gw, outcome = served
    rolled = statuses.Rollout(GOOD, deployment(), error="too large", error_reason="ConfigTooLarge")
    programmed = cond(gateway_status(valid, gw, outcome, rolled), "Programmed")
    assert (programmed["status"], programmed["reason"], programmed["message"]) == (
        "False",
        "ConfigTooLarge",
        "too large",
    )


def snapshot(wanted: str, **changes: Any) -> rollout.Snapshot:
    base: dict[str, Any] = {
        "wanted": wanted,
        "history": (),
        "deployment": None,
        "pods": (),
        "stored": {},
        "auto_rollback": True,
        "deadline_seconds": 300,
        "limit": 10,
        "now": T0,
    }
    return rollout.Snapshot(**{**base, **changes})


def first_plan(wanted: str) -> rollout.Plan:
    """The plan of a gateway's first rollout: nothing runs yet."""
    return rollout.plan(snapshot(wanted))


def revision(hash_: str) -> str:
    """The revision of a render hash, as the planner names it."""
    return first_plan(hash_).run


def rolled_back_plan(wanted: str) -> rollout.Plan:
    """The plan after `wanted` missed its Deployment's deadline: back to GOOD, which became available."""
    good = revision(GOOD)
    return rollout.plan(
        snapshot(
            wanted,
            history=(
                rollout.Record(revision(wanted), rollout.stamp(T0), rollout.PROGRESSING),
                rollout.Record(good, rollout.stamp(T0), rollout.AVAILABLE),
            ),
            deployment=deployment(wanted, ready=0, updated=1, deadline_exceeded=True),
            stored={good: rollout.Stored(good, GOOD, ())},
            now=T0 + datetime.timedelta(seconds=400),
        )
    )


def test_a_rolled_back_revision_is_held_and_the_status_names_the_one_that_runs(served, valid):
    gw, outcome = served
    plan = rolled_back_plan(outcome.rendered.hash)
    live = deployment(outcome.rendered.hash, ready=0, updated=1, deadline_exceeded=True)
    status = gateway_status(valid, gw, outcome, statuses.Rollout(GOOD, live, plan=plan))
    assert types(status) == ["Accepted", "Programmed", "Ready", "RolledBack"]
    programmed = cond(status, "Programmed")
    assert (programmed["status"], programmed["reason"]) == ("False", "RevisionFailed")
    assert programmed["message"] == plan.held
    rolled_back = cond(status, "RolledBack")
    assert (rolled_back["status"], rolled_back["reason"]) == ("True", "ProgressDeadlineExceeded")
    assert rolled_back["observedGeneration"] == 3
    assert status["revision"] == plan.run
    assert GOOD.startswith(status["revision"])
    assert status["configMap"] == f"gw-config-{plan.run}"
    assert [(h["revision"], h["outcome"]) for h in status["history"]] == [
        (plan.run, "Progressing"),
        (revision(outcome.rendered.hash), "RolledBack"),
    ]


def test_the_first_rollout_says_not_rolled_back_and_starts_the_history(served, valid):
    gw, outcome = served
    plan = first_plan(outcome.rendered.hash)
    status = gateway_status(valid, gw, outcome, statuses.Rollout(outcome.rendered.hash, None, plan=plan))
    rolled_back = cond(status, "RolledBack")
    assert (rolled_back["status"], rolled_back["reason"]) == ("False", "NotRolledBack")
    assert cond(status, "Programmed")["status"] == "True"
    assert status["history"] == [
        {"revision": status["revision"], "time": "2026-01-01T12:00:00Z", "outcome": "Progressing"}
    ]
    assert outcome.rendered.hash.startswith(status["revision"])


def test_an_apply_error_wins_over_a_held_revision(served, valid):
    gw, outcome = served
    plan = rolled_back_plan(outcome.rendered.hash)
    status = gateway_status(valid, gw, outcome, statuses.Rollout(GOOD, None, "conflict", plan=plan))
    assert cond(status, "Programmed")["reason"] == "ApplyFailed"


# --- Ready ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("live", "status", "reason"),
    [
        pytest.param(None, "False", "NoDeployment", id="no-deployment"),
        pytest.param(deployment(), "True", None, id="all-updated-and-available"),
        pytest.param(deployment(replicas=3, ready=3, updated=3), "True", None, id="three-of-three"),
        pytest.param(
            deployment(ready=1, updated=1, deadline_exceeded=True),
            "False",
            "ProgressDeadlineExceeded",
            id="deadline",
        ),
        pytest.param(
            deployment(replicas=0, ready=0, updated=0), "False", "ScaledToZero", id="scaled-to-zero"
        ),
        pytest.param(deployment(ready=1, updated=2), "False", None, id="one-of-two-ready"),
        pytest.param(deployment(ready=0, updated=0), "False", None, id="none-ready"),
        pytest.param(deployment(ready=2, updated=1), "False", None, id="old-pods-still-serving"),
        pytest.param(deployment(generation=5, observed=4), "False", None, id="change-not-seen-yet"),
        pytest.param(
            deployment(generation=5, observed=4, ready=1, updated=1, deadline_exceeded=True),
            "False",
            "Progressing",
            id="an-old-deadline-is-not-the-new-revisions",
        ),
    ],
)
def test_ready_follows_the_deployment(live, status, reason, served, valid):
    gw, outcome = served
    ready = cond(gateway_status(valid, gw, outcome, statuses.Rollout(outcome.rendered.hash, live)), "Ready")
    assert ready["status"] == status
    if reason is not None:
        assert ready["reason"] == reason
    assert ready["observedGeneration"] == 3


def test_ready_past_the_deadline_says_what_the_deployment_says(served, valid):
    gw, outcome = served
    live = deployment(ready=1, updated=1, deadline_exceeded=True)
    ready = cond(gateway_status(valid, gw, outcome, statuses.Rollout(outcome.rendered.hash, live)), "Ready")
    assert ready["message"] == 'ReplicaSet "gw-123" has timed out progressing.'


# --- the cache --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache", "available", "want"),
    [
        pytest.param(None, None, None, id="no-cache"),
        pytest.param({"ttlSeconds": 60}, False, None, id="cache-without-redis"),
        pytest.param(
            {"redis": {"host": "redis.cache.svc"}}, None, ("True", "CacheAvailable"), id="not-checked"
        ),
        pytest.param({"redis": {"host": "redis.cache.svc"}}, True, ("True", "CacheAvailable"), id="answers"),
        pytest.param({"redis": {"host": "redis.cache.svc"}}, False, ("False", "RedisUnreachable"), id="down"),
    ],
)
def test_cache_available_is_said_only_when_redis_is_configured(
    cache, available, want, world, gateway, provider, valid
):
    spec = {"cache": cache} if cache is not None else {}
    est, (outcome,) = world(gateway("gw", **spec), provider("p", "a"))
    gw = est.gateways[0]
    status = gateway_status(
        valid, gw, outcome, statuses.Rollout(outcome.rendered.hash, deployment()), available
    )
    found = [c for c in status["conditions"] if c["type"] == "CacheAvailable"]
    assert [(c["status"], c["reason"]) for c in found] == ([want] if want else [])
    for c in found:
        assert "Redis redis.cache.svc:6379" in c["message"]


# --- no outcome, invalid gateways -------------------------------------------------------------


def test_a_gateway_without_an_outcome_says_only_its_generation(served, valid):
    gw, _ = served
    assert gateway_status(valid, gw, None, statuses.Rollout()) == {"observedGeneration": 3}


def test_an_invalid_gateway_is_not_accepted_and_left_running(world, gateway, provider, valid, generation):
    est, outcomes = world(generation(gateway("gw", replicas=-1, image=""), 6), provider("p", "a"))
    assert outcomes == []
    (bad,) = est.invalid
    status = statuses.for_invalid_gateway(bad)
    valid("LLMGateway", status)
    assert status["observedGeneration"] == 6
    (accepted,) = status["conditions"]
    assert (accepted["type"], accepted["status"], accepted["reason"]) == ("Accepted", "False", "InvalidSpec")
    assert accepted["observedGeneration"] == 6
    assert "spec.replicas" in accepted["message"]
    assert "spec.image" in accepted["message"]
    assert accepted["message"].endswith("; the running gateway is left as it is")


def test_an_invalid_gateway_leaves_its_objects_status_alone(world, gateway, provider, valid):
    est, outcomes = world(gateway("gw", replicas=-1), provider("p", "a"))
    assert ("LLMGateway", "default", "gw") not in statuses.for_objects(est, outcomes)


def test_a_gateway_lists_at_most_a_hundred_objects_left_out_and_counts_all(
    world, gateway, provider, chain, valid
):
    raws = [gateway(), provider("p", "a")]
    raws += [chain(f"c{i:03d}", f"missing-{i}", "a") for i in range(150)]
    _, (outcome,) = world(*raws)
    status = valid(
        "LLMGateway", statuses.for_gateway(outcome.resolution.gateway, outcome, statuses.Rollout())
    )
    assert status["excludedCount"] == 150
    assert len(status["excluded"]) == statuses.EXCLUDED_SHOWN == 100
    assert status["excluded"][0]["name"] == "c000"
