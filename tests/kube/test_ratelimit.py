"""`kube.ratelimit` and `Kube`'s use of it: a token bucket on every call, and a 429 retried
after its `Retry-After`. The clock and the sleeps are injected: nothing here waits."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import kubernetes
import pytest

from llmgw.kube import client, ratelimit


class Clock:
    """A clock that moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def bucket(rate: float, burst: int, clock: Clock) -> ratelimit.TokenBucket:
    return ratelimit.TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)


def test_a_burst_goes_at_once_then_calls_are_spaced_by_the_rate() -> None:
    clock = Clock()
    b = bucket(10, 3, clock)
    assert [b.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    # Waiters queue: each takes the next token due, in the order they asked.
    assert [round(b.reserve(), 9) for _ in range(3)] == [0.1, 0.2, 0.3]


def test_tokens_come_back_with_time_but_never_more_than_the_burst() -> None:
    clock = Clock()
    b = bucket(4, 2, clock)
    assert b.reserve() == b.reserve() == 0.0
    clock.now += 0.25  # one token back
    assert b.reserve() == 0.0
    assert b.reserve() == 0.25
    clock.now += 3600  # an idle hour refills to the burst, not to 14,400
    assert [b.reserve() for _ in range(2)] == [0.0, 0.0]
    assert b.reserve() == 0.25


async def test_acquire_sleeps_as_long_as_the_token_is_not_due() -> None:
    clock = Clock()
    b = bucket(5, 1, clock)
    for _ in range(4):
        await b.acquire()
    assert [round(s, 9) for s in clock.slept] == [0.2, 0.2, 0.2]
    assert round(clock.now - 100.0, 9) == 0.6  # 4 calls at 5/s, the first one free


async def test_a_rate_of_zero_is_no_limit() -> None:
    clock = Clock()
    b = bucket(0, 1, clock)
    for _ in range(1000):
        assert await b.acquire() == 0.0
    assert clock.slept == []


@pytest.mark.parametrize(
    ("headers", "attempt", "wait"),
    [
        ({"Retry-After": "3"}, 0, 3.0),
        ({"retry-after": "1"}, 4, 1.0),  # the server's word, not the backoff
        ({"Retry-After": "0"}, 0, 0.0),
        ({"Retry-After": "3600"}, 0, ratelimit.MAX_RETRY_AFTER),  # bounded
        ({"Retry-After": "-5"}, 0, 0.0),
        ({"Retry-After": "nan"}, 0, ratelimit.NO_RETRY_AFTER),
        ({"Retry-After": "soon"}, 1, 2 * ratelimit.NO_RETRY_AFTER),  # unreadable: backoff
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0, 0.0),  # a date in the past
        (None, 0, ratelimit.NO_RETRY_AFTER),
        ({}, 2, 4 * ratelimit.NO_RETRY_AFTER),
        ({}, 10, ratelimit.MAX_RETRY_AFTER),
    ],
)
def test_retry_after(headers: dict[str, str] | None, attempt: int, wait: float) -> None:
    assert ratelimit.retry_after(headers, attempt) == wait


def test_retry_after_as_a_date_to_come() -> None:
    soon = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3.0 <= ratelimit.retry_after({"Retry-After": soon}, 0) <= 5.0


class Api:
    """A client method that answers with the queued errors first, then "done"."""

    def __init__(self, *errors: kubernetes.client.ApiException) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any, **kw: Any) -> str:
        self.calls.append(args)
        assert kw["_request_timeout"] == 30.0
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def too_many(retry_after: str | None = None) -> kubernetes.client.ApiException:
    exc = kubernetes.client.ApiException(status=429, reason="Too Many Requests")
    exc.headers = {"Retry-After": retry_after} if retry_after is not None else {"Content-Type": "x"}
    return exc


def kube(clock: Clock, rate: float = 0, burst: int = 1) -> client.Kube:
    return client.Kube(api=None, limiter=bucket(rate, burst, clock), sleep=clock.sleep)


async def test_a_429_is_asked_again_after_its_retry_after() -> None:
    clock = Clock()
    api = Api(too_many("2"), too_many("7"))
    result = await kube(clock)._call("patch", "llmproviders/status", "LLMProvider ai/p status", api, "x")
    assert result == "done"
    assert api.calls == [("x",)] * 3
    assert clock.slept == [2.0, 7.0]


async def test_429s_without_retry_after_back_off_and_give_up_after_the_retries() -> None:
    clock = Clock()
    api = Api(*[too_many() for _ in range(client.RETRIES_429 + 1)])
    with pytest.raises(client.KubeError) as failed:
        await kube(clock)._call("create", "configmaps", "ConfigMap ai/c", api)
    assert failed.value.status == 429
    assert len(api.calls) == client.RETRIES_429 + 1
    assert clock.slept == [1.0, 2.0, 4.0, 8.0, 10.0]  # doubling, bounded
    assert api.errors == []


@pytest.mark.parametrize("status", [409, 500, 503])
async def test_other_errors_are_the_callers_at_once(status: int) -> None:
    clock = Clock()
    exc = kubernetes.client.ApiException(status=status, reason="no")
    exc.headers = {"Retry-After": "1"}
    api = Api(exc)
    with pytest.raises(client.KubeError) as failed:
        await kube(clock)._call("create", "configmaps", "ConfigMap ai/c", api)
    assert failed.value.status == status
    assert len(api.calls) == 1
    assert clock.slept == []


async def test_every_attempt_takes_a_token() -> None:
    clock = Clock()
    k = kube(clock, rate=2, burst=1)
    api = Api(too_many("0"))
    assert await k._call("get", "leases", "Lease a/b", api) == "done"  # 1 token, a 429, 1 more
    assert await k._call("get", "leases", "Lease a/b", api) == "done"
    assert [round(s, 9) for s in clock.slept] == [0.0, 0.5, 0.5]  # Retry-After 0, then the rate


class Leases:
    def __init__(self, api: Api) -> None:
        self.read_namespaced_lease = api


async def test_reads_go_through_the_limiter_and_the_retries_too() -> None:
    clock = Clock()
    api = Api(too_many("3"))

    class LeaseKube(client.Kube):
        @property
        def coordination(self) -> Any:
            return Leases(api)

    k = LeaseKube(api=kubernetes.client.ApiClient(), limiter=bucket(1, 1, clock), sleep=clock.sleep)
    assert await k.read_lease("ns", "lease") == "done"  # the fake's answer, serialized as is
    assert api.calls == [("lease", "ns")] * 2
    assert clock.slept == [3.0]  # the 429's wait; the second token was due by then


def test_throttle_sizes_threads_and_connections_for_the_concurrency() -> None:
    k = client.Kube(kubernetes.client.ApiClient())
    k.throttle(25, 50, 20)
    assert k.limiter.rate == 25
    assert k.limiter.burst == 50
    assert isinstance(k.executor, client.concurrent.futures.ThreadPoolExecutor)
    assert k.executor._max_workers == 20 + client.HEADROOM
    assert k.api.rest_client.pool_manager.connection_pool_kw["maxsize"] >= 20 + client.HEADROOM
    k.executor.shutdown()


@pytest.mark.parametrize(
    ("headers", "found"),
    [
        ({"X-Kubernetes-PF-FlowSchema-UID": "a", "X-Kubernetes-PF-PriorityLevel-UID": "b"}, True),
        ({"x-kubernetes-pf-prioritylevel-uid": "b"}, True),  # header names are case-insensitive
        ({"Content-Type": "text/plain"}, False),
        (None, False),
    ],
)
def test_flow_control_is_read_off_a_responses_headers(headers: dict[str, str] | None, found: bool) -> None:
    assert ratelimit.flow_controlled(headers) is found


class Pinged(kubernetes.client.ApiClient):
    """An ApiClient whose requests answer as told (or fail to connect)."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer
        self.asked: list[tuple[str, str, dict[str, str]]] = []

    def call_api(self, method: str, url: str, header_params: Any = None, **kw: Any) -> Any:
        self.asked.append((method, url, dict(header_params or {})))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


class Response:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status, self.headers = status, headers
        self.read_out = False

    def read(self) -> bytes:
        self.read_out = True
        return b"ok"


async def test_flow_control_is_asked_of_livez_ping_and_unknown_when_it_cannot_be() -> None:
    answer = Response(200, {"X-Kubernetes-PF-FlowSchema-UID": "a"})
    api = Pinged(answer)
    api.configuration.api_key = {"BearerToken": "t0ken"}
    api.configuration.api_key_prefix = {"BearerToken": "Bearer"}
    assert await client.Kube(api).flow_controlled() is True
    ((method, url, headers),) = api.asked
    assert (method, url.rpartition("/livez")[1:]) == ("GET", ("/livez", "/ping"))
    assert headers.get("authorization") == "Bearer t0ken"  # as every call
    assert answer.read_out
    assert await client.Kube(Pinged(Response(200, {}))).flow_controlled() is False
    # A refusal says it too: APF classifies a request before it is authorized.
    refused = Response(403, {"X-Kubernetes-PF-PriorityLevel-UID": "b"})
    assert await client.Kube(Pinged(refused)).flow_controlled()
    assert await client.Kube(Pinged(OSError("connection refused"))).flow_controlled() is None
