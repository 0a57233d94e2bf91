"""The Deployment controller's rolling-update steps and status, as the demo's runner applies them."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from llmgw.demo import controller
from llmgw.demo.controller import Counts, PodView, Set

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def spec(replicas: int = 2, surge: Any = 1, unavailable: Any = 0, deadline: int = 60) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "progressDeadlineSeconds": deadline,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
        },
    }


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "want"),
    [
        (1, 0, 2, (1, 0)),
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 2, (1, 0)),  # surge rounds up, unavailable down
        (0, 0, 3, (0, 1)),  # both 0: one may go
        (None, None, 10, (3, 2)),  # the defaults, 25% each
    ],
)
def test_surge_and_unavailable(surge: Any, unavailable: Any, replicas: int, want: tuple[int, int]) -> None:
    s = spec(replicas, surge, unavailable)
    if surge is None:
        s["strategy"] = {"type": "RollingUpdate"}
    assert controller.surge_and_unavailable(s) == want


def test_recreate_has_no_surge() -> None:
    assert controller.surge_and_unavailable({"replicas": 3, "strategy": {"type": "Recreate"}}) == (0, 3)


def test_a_rollout_with_max_surge_1_and_max_unavailable_0() -> None:
    """2 replicas: one new pod at a time, and an old one goes only once a new one is available."""
    old = Set("old", 2, 2, revision=1)
    new = Set("new", 0, 0, revision=2)
    assert controller.new_replicas(2, 1, new, [old]) == 1  # surge: 3 pods at most
    new = Set("new", 1, 0, revision=2)
    assert controller.new_replicas(2, 1, new, [old]) == 1  # no room until an old one goes
    assert controller.old_replicas(2, 0, new, [old]) == {}  # the new pod is not available yet
    new = Set("new", 1, 1, revision=2)
    assert controller.old_replicas(2, 0, new, [old]) == {"old": 1}
    old = Set("old", 1, 1, revision=1)
    assert controller.new_replicas(2, 1, new, [old]) == 2
    new = Set("new", 2, 2, revision=2)
    assert controller.old_replicas(2, 0, new, [old]) == {"old": 0}


def test_a_new_set_that_never_becomes_available_keeps_the_old_pods() -> None:
    old = Set("old", 2, 2, revision=1)
    stuck = Set("stuck", 1, 0, revision=2)
    assert controller.new_replicas(2, 1, stuck, [old]) == 1
    assert controller.old_replicas(2, 0, stuck, [old]) == {}


def test_a_rollback_scales_the_failed_set_down_at_once() -> None:
    """The template points back at the good set (now the new one): the failed set's unhealthy
    pods go first, whatever maxUnavailable says."""
    good = Set("good", 2, 2, revision=3)
    failed = Set("failed", 1, 0, revision=2)
    assert controller.new_replicas(2, 1, good, [failed]) == 2
    assert controller.old_replicas(2, 0, good, [failed]) == {"failed": 0}


def test_max_unavailable_lets_old_pods_go_before_new_ones_are_ready() -> None:
    old = Set("old", 4, 4, revision=1)
    new = Set("new", 0, 0, revision=2)
    assert controller.new_replicas(4, 0, new, [old]) == 0
    assert controller.old_replicas(4, 2, new, [old]) == {"old": 2}


def test_scale_down_deletes_not_ready_then_newest_first() -> None:
    pods = [
        PodView("a", ready=True, created="2026-01-01T10:00:00Z"),
        PodView("b", ready=True, created="2026-01-01T11:00:00Z"),
        PodView("c", ready=False, created="2026-01-01T09:00:00Z"),
        PodView("d", ready=True, terminating=True),
    ]
    assert controller.to_delete(pods, 2) == ["c", "b"]
    assert controller.to_delete(pods, 0) == []


def test_replica_set_status_counts_live_pods() -> None:
    pods = [PodView("a", True), PodView("b", False), PodView("c", True, terminating=True)]
    assert controller.replica_set_status(3, pods) == {
        "observedGeneration": 3,
        "replicas": 2,
        "fullyLabeledReplicas": 2,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "terminatingReplicas": 1,
    }


def deployment(status: dict[str, Any] | None = None, generation: int = 2, **kw: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": spec(**kw), "status": status or {}}


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_status_of_a_new_rollout_then_its_completion() -> None:
    first = controller.deployment_status(
        deployment(), "gw-abc", controller.NEW_SET_CREATED, Counts(2, 0, 2, 2), NOW
    )
    assert first["observedGeneration"] == 2
    assert (first["replicas"], first["updatedReplicas"], first["availableReplicas"]) == (2, 0, 2)
    cond = conditions(first)
    assert cond["Available"]["status"] == "True"
    assert cond["Available"]["reason"] == "MinimumReplicasAvailable"
    assert cond["Progressing"]["reason"] == "NewReplicaSetCreated"
    assert cond["Progressing"]["message"] == 'Created new replica set "gw-abc"'
    later = NOW + datetime.timedelta(seconds=20)
    done = controller.deployment_status(deployment(first), "gw-abc", None, Counts(2, 2, 2, 2), later)
    assert conditions(done)["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert conditions(done)["Progressing"]["message"] == 'ReplicaSet "gw-abc" has successfully progressed.'
    assert done["unavailableReplicas"] == 0


def test_progress_refreshes_the_deadline_and_no_progress_exceeds_it() -> None:
    first = controller.deployment_status(
        deployment(deadline=60), "gw-new", controller.NEW_SET_CREATED, Counts(3, 1, 2, 2), NOW
    )
    step = NOW + datetime.timedelta(seconds=50)
    moved = controller.deployment_status(
        deployment(first, deadline=60), "gw-new", None, Counts(3, 1, 3, 3), step
    )
    assert conditions(moved)["Progressing"]["reason"] == "ReplicaSetUpdated"
    assert conditions(moved)["Progressing"]["lastUpdateTime"] == controller.stamp(step)
    quiet = step + datetime.timedelta(seconds=59)
    same = controller.deployment_status(
        deployment(moved, deadline=60), "gw-new", None, Counts(3, 1, 3, 3), quiet
    )
    assert conditions(same)["Progressing"]["status"] == "True"
    late = step + datetime.timedelta(seconds=61)
    out = controller.deployment_status(
        deployment(same, deadline=60), "gw-new", None, Counts(3, 1, 3, 3), late
    )
    cond = conditions(out)["Progressing"]
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cond["message"] == 'ReplicaSet "gw-new" has timed out progressing.'


def test_a_rollback_finds_its_set_again() -> None:
    out = controller.deployment_status(
        deployment(), "gw-good", controller.FOUND_NEW_SET, Counts(3, 2, 2, 2), NOW
    )
    assert conditions(out)["Progressing"]["reason"] == "FoundNewReplicaSet"
    assert conditions(out)["Progressing"]["message"] == 'Found new replica set "gw-good"'


def test_too_few_available_is_not_available() -> None:
    out = controller.deployment_status(deployment(), "gw", None, Counts(2, 2, 1, 1), NOW)
    assert conditions(out)["Available"]["status"] == "False"
    assert conditions(out)["Available"]["reason"] == "MinimumReplicasUnavailable"
    assert out["unavailableReplicas"] == 1


def test_template_hash_is_stable_and_tells_templates_apart() -> None:
    a = {"metadata": {"labels": {"x": "1"}}, "spec": {"containers": [{"name": "c"}]}}
    b = {"spec": {"containers": [{"name": "c"}]}, "metadata": {"labels": {"x": "1"}}}
    assert controller.template_hash(a) == controller.template_hash(b)
    assert controller.template_hash(a) != controller.template_hash({**a, "spec": {}})
