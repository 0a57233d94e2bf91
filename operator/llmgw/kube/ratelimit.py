"""How fast the operator may ask the API server, and how long it waits when told to slow down.

The API server is shared: a first pass on a large estate writes thousands of statuses, and
an operator that sends them as fast as it can competes with every controller and kubectl
user for the server's request budget. client-go limits each client with a token bucket
(`flowcontrol.NewTokenBucketRateLimiter`) and, on `429 Too Many Requests`, waits as long as
the server's `Retry-After` says before it asks again; this module is the same two rules.
A server that applies API Priority and Fairness rations seats itself, fairly between
clients, and says so on every response (`flow_controlled`): there the default is no bucket
at all (`options.API_QPS_AUTO`), as controller-runtime's is since v0.21, and the 429s do the
pacing; the concurrency of the status writes (`options.STATUS_CONCURRENCY`) bounds the seats.

A 429 is retried here (`paced`), not by the caller: the server answers it before it executes
the request (max-in-flight and API Priority and Fairness both reject at the door), so a retry
is safe for every verb, a create included. Other errors go to the caller unchanged. Every
request of the process goes through `paced` with the one `Kube.limiter`: `Kube`'s own calls,
and the Secrets' metadata lists and watches (`llmgw.kube.secretversions`), which bypass
`Kube`'s typed calls to read raw responses. urllib3 must leave 429s alone for that
(`own_retry_after`): by default it sleeps a `Retry-After` out itself, in the worker thread.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import kubernetes
import urllib3

T = TypeVar("T")

MAX_RETRY_AFTER = 10.0
"""The longest one 429 makes a call wait, whatever the server asks (it says 1 s by default)."""
NO_RETRY_AFTER = 1.0
"""The first wait after a 429 without `Retry-After`; doubles with each retry."""


FLOW_CONTROL_HEADERS = ("x-kubernetes-pf-flowschema-uid", "x-kubernetes-pf-prioritylevel-uid")
"""What kube-apiserver's API Priority and Fairness filter sets on each response it classified:
the FlowSchema and the priority level the request was matched to."""


def flow_controlled(headers: Mapping[str, str] | None) -> bool:
    """Whether a response says that the API server applies API Priority and Fairness."""
    names = {str(k).lower() for k in (headers or {})}
    return any(h in names for h in FLOW_CONTROL_HEADERS)


class TokenBucket:
    """`rate` calls a second on average, `burst` at once; `rate <= 0` lets every call through.

    Each call reserves a token when it asks, so waiting callers go in the order they asked,
    with no lock and no polling: a call that finds the bucket empty takes a token from the
    future and sleeps until it is due (as Go's `rate.Limiter.Reserve` does).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self.sleep = sleep
        self.tokens = float(self.burst)
        self.stamp = clock()

    def reserve(self) -> float:
        """Take a token: the seconds until it may be used (0.0 when the bucket has one now)."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            await self.sleep(wait)
        return wait


def retry_after(headers: Mapping[str, str] | None, attempt: int) -> float:
    """Seconds to wait before retry `attempt` (0 for the first) of a call answered 429.

    `Retry-After` in seconds, as the API server sends it, or as an HTTP date; without one (or
    with one that cannot be read), `NO_RETRY_AFTER` doubled per attempt. Never more than
    `MAX_RETRY_AFTER`, never less than 0.
    """
    value = None
    for key, raw in (headers or {}).items():
        if key.lower() == "retry-after":
            value = str(raw).strip()
    wait: float = NO_RETRY_AFTER * 2.0 ** min(attempt, 16)
    if value:
        try:
            wait = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                pass
            else:
                wait = when.timestamp() - time.time()
    if math.isnan(wait):
        wait = NO_RETRY_AFTER
    return min(MAX_RETRY_AFTER, max(0.0, wait))


async def paced(
    limiter: TokenBucket,
    request: Callable[[], Awaitable[T]],
    *,
    retries: int,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_429: Callable[[], object] = lambda: None,
) -> T:
    """`request()` once `limiter` gives a token; answered 429, asked again after its
    `Retry-After` (each attempt with a token of its own), `retries` times at most, then the
    429 is raised like any other error. `on_429` is told of each retried one (a metric)."""
    attempt = 0
    while True:
        await limiter.acquire()
        try:
            return await request()
        except kubernetes.client.ApiException as exc:
            if exc.status != 429 or attempt >= retries:
                raise
            on_429()
            await sleep(retry_after(exc.headers, attempt))
            attempt += 1


def own_retry_after(pool: urllib3.PoolManager) -> None:
    """Leave every 429 to `paced`. urllib3's default `Retry` (the official client's, unless its
    configuration sets one) honours `Retry-After` itself for GET, PUT and DELETE: it sleeps in
    the worker thread, as long as the server says (no bound), and asks again without a token,
    up to 3 times, before the caller sees the 429. Its other retries (connect, read) stay."""
    retries = pool.connection_pool_kw.get("retries")
    base = retries if isinstance(retries, urllib3.Retry) else urllib3.Retry.from_int(retries)
    pool.connection_pool_kw["retries"] = base.new(respect_retry_after_header=False)
    pool.clear()
