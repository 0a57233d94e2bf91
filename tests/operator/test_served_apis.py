"""`kube.apis.Served` and the companions' patch: how a missing API is remembered and asked again."""

from __future__ import annotations

import logging
from typing import Any

from llmgw.core import desired
from llmgw.handlers import companions
from llmgw.kube import apis

ROUTE = desired.APIS["HTTPRoute"]
MONITOR = desired.APIS["ServiceMonitor"]


class Discovery:
    """A stand-in for `Kube.api_resources`: what each group/version serves, and who asked."""

    def __init__(self, served: dict[str, set[str]]) -> None:
        self.served = served
        self.asked: list[str] = []

    async def api_resources(self, group: str, version: str) -> frozenset[str] | None:
        self.asked.append(f"{group}/{version}")
        found = self.served.get(f"{group}/{version}")
        return None if found is None else frozenset(found)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def served(discovery: Discovery, clock: Clock) -> apis.Served:
    kube: Any = discovery
    return apis.Served(kube, logging.getLogger("test"), recheck=60.0, clock=clock)


async def test_a_missing_api_is_asked_about_once_a_minute_at_most() -> None:
    discovery, clock = Discovery({}), Clock()
    s = served(discovery, clock)
    assert s.known(ROUTE) is None
    assert await s.serves(ROUTE) is False
    for _ in range(10):
        clock.now += 5
        assert await s.serves(ROUTE) is False
    assert discovery.asked == ["gateway.networking.k8s.io/v1"]
    assert s.next_check([ROUTE]) == 10.0
    assert s.next_check([MONITOR]) is None  # never asked about: nothing to wait for
    clock.now += 10
    discovery.served["gateway.networking.k8s.io/v1"] = {"httproutes", "httproutes/status"}
    assert await s.serves(ROUTE) is True
    assert len(discovery.asked) == 2


async def test_a_served_api_is_not_asked_about_again_until_a_write_says_it_is_gone() -> None:
    discovery, clock = Discovery({"monitoring.coreos.com/v1": {"servicemonitors"}}), Clock()
    s = served(discovery, clock)
    for _ in range(5):
        clock.now += 600
        assert await s.serves(MONITOR) is True
    assert len(discovery.asked) == 1
    del discovery.served["monitoring.coreos.com/v1"]
    s.lost(MONITOR)
    assert await s.serves(MONITOR) is False
    assert len(discovery.asked) == 2


async def test_a_crd_of_the_group_makes_it_ask_at_once() -> None:
    discovery, clock = Discovery({}), Clock()
    s = served(discovery, clock)
    assert await s.serves(ROUTE) is False
    discovery.served["gateway.networking.k8s.io/v1"] = {"httproutes"}
    s.forget("monitoring.coreos.com")  # another group's CRD: no new question
    assert await s.serves(ROUTE) is False
    s.forget("gateway.networking.k8s.io")
    assert await s.serves(ROUTE) is True


async def test_a_group_served_without_the_resource_is_missing() -> None:
    discovery = Discovery({"gateway.networking.k8s.io/v1": {"gateways", "gatewayclasses"}})
    assert await served(discovery, Clock()).serves(ROUTE) is False


def test_only_the_crds_are_optional() -> None:
    assert sorted(companions.OPTIONAL) == ["HTTPRoute", "ServiceMonitor"]
