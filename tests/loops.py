"""Running a coroutine to completion from a plain (sync) test."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, but leaving this thread's current event loop alone: pytest-asyncio leaves
    one set after its tests, and `asyncio.run` would drop it unclosed (a ResourceWarning for
    its sockets when the garbage collector finds it, blamed on whichever test is running then)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
