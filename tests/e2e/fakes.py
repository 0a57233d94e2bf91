"""The e2e suite's fakes on loopback: llmgw.demo.backends's, served from a thread.

The LiteLLM proxy in the e2e tests is the real one; only the servers behind it are fakes:
the model servers of `llmgw.demo.backends` (the one implementation, shared with
`llmgw demo`) and the fakes of cloud APIs and of a callback's endpoint, built on its
`Fake`. They are aiohttp servers; `serving` runs them on an event loop in a daemon thread
of their own, so that synchronous fixtures and tests can use them and no loop is shared
with pytest-asyncio, and closes them (sockets released, so no ResourceWarning is left).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterable, Iterator
from typing import Any

from llmgw.demo import backends

TIMEOUT_S = 30.0


@contextlib.contextmanager
def serving(*fakes: backends.Fake) -> Iterator[None]:
    """Start the fakes, each on a free loopback port; close them at the end of the block."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="e2e-fakes", daemon=True)
    thread.start()

    def run(coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=TIMEOUT_S)

    started: list[backends.Fake] = []
    try:
        for fake in fakes:
            run(fake.start())
            started.append(fake)
        yield
    finally:
        for fake in started:
            run(fake.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


@contextlib.contextmanager
def fresh(fakes: Iterable[backends.Fake]) -> Iterator[None]:
    """The fakes healthy and with nothing received, at the start of the block and after it."""
    fakes = tuple(fakes)
    for fake in fakes:
        fake.reset()
    try:
        yield
    finally:
        for fake in fakes:
            fake.reset()
