"""With leader election, a replica whose Lease has lapsed sends no write but the Lease's own."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.kube import client
from llmgw.kube.client import Kube, NotLeading


class Answer(dict[str, Any]):
    """An answer, parsed or (with `_preload_content=False`) raw."""

    def drain_conn(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class Recorder:
    """Stands in for the typed APIs: records each call instead of sending it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Answer:
            self.calls.append(name)
            return Answer()

        return call


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(Kube, "coordination", property(lambda self: recorder))
    return recorder


def kube(api: Recorder, leading: list[bool]) -> Kube:
    k = Kube(api=None, fence=lambda: leading[0])
    k.__dict__["core"] = api  # the cached API class
    k.__dict__["custom"] = api
    return k


CONFIG_MAP = {"kind": "ConfigMap", "metadata": {"namespace": "ai", "name": "gw-config-1"}}


async def test_a_leader_writes(api: Recorder) -> None:
    k = kube(api, [True])
    await k.create(CONFIG_MAP)
    await k.patch_status("LLMProvider", "ai", "vllm", {"observedGeneration": 1})
    assert api.calls == ["create_namespaced_config_map", "patch_namespaced_custom_object_status"]


async def test_a_replica_that_lost_the_lead_sends_no_write_but_the_lease(api: Recorder) -> None:
    leading = [True]
    k = kube(api, leading)
    leading[0] = False  # the renew deadline passed mid-pass
    with pytest.raises(NotLeading, match="no longer holds the leader Lease"):
        await k.create(CONFIG_MAP)
    with pytest.raises(NotLeading):
        await k.patch_status("LLMProvider", "ai", "vllm", {"observedGeneration": 1})
    await k.replace_lease("ai", "llmgw", {"metadata": {"name": "llmgw"}})  # how it gets the lead back
    assert api.calls == ["replace_namespaced_lease"]


def test_not_leading_is_a_kube_error_that_names_the_write() -> None:
    exc = NotLeading("create", "ConfigMap ai/gw-config-1")
    assert isinstance(exc, client.KubeError)
    assert "create ConfigMap ai/gw-config-1" in str(exc)
