"""Statuses written many at a time, in the order that keeps the gateway's word.

One after another, the first pass on a 6,000-object estate is 6,000 round trips in a row
(about 75 s measured). Written `limit` at a time they overlap, but not in any order: a
gateway's status sums up the providers and chains it counts ("serves 12 models"), so whoever
reads it must find each of those saying so already. Hence two waves: every provider's and
chain's status first, `limit` at a time; then, once every one of those writes has been
answered, the gateways', `limit` at a time too. Within a wave, writes start in sorted order.

What is written at all is the caller's business (the reconciler hands over only the statuses
that differ from the stored ones, so an unchanged estate costs no write here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from llmgw.core import keys

GATEWAY = "LLMGateway"


def waves(oids: Iterable[keys.ObjectId]) -> tuple[list[keys.ObjectId], list[keys.ObjectId]]:
    """(everything but gateways, gateways), each sorted."""
    ordered = sorted(oids)
    return [o for o in ordered if o[0] != GATEWAY], [o for o in ordered if o[0] == GATEWAY]


async def write(
    oids: Iterable[keys.ObjectId], write_one: Callable[[keys.ObjectId], Awaitable[bool]], limit: int
) -> bool:
    """`write_one` for each of `oids`, gateways last, at most `limit` at once; False when any
    write returned False (the pass retries). An exception from one write cancels the others
    and is raised."""
    first, last = waves(oids)
    ok = await bounded(first, write_one, limit)
    return await bounded(last, write_one, limit) and ok


async def bounded(
    oids: list[keys.ObjectId], write_one: Callable[[keys.ObjectId], Awaitable[bool]], limit: int
) -> bool:
    """`write_one` for each of `oids`, at most `limit` at once, started in order; all done when
    it returns. `limit` workers share one iterator, so at most `limit` coroutines exist."""
    todo = iter(oids)
    ok = True

    async def worker() -> None:
        nonlocal ok
        for oid in todo:  # no await between taking one and starting it: no two take the same
            if not await write_one(oid):
                ok = False

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(max(1, limit), len(oids))):
                group.create_task(worker())
    except BaseExceptionGroup as failed:  # one write's own error, not a group of one
        raise failed.exceptions[0] from None
    return ok
