"""Kubernetes Events from the reconciler's own task, through kopf's Event poster.

kopf (1.45) posts `kopf.event` through a queue that it puts in a context
variable of each object's processing task only; the reconciler runs in a task
of its own, started at startup, where the variable is unset and `kopf.event`
fails. A kopf handler hands the queue over (`adopt_queue`), and `post` sets it
in the reconciler's context before posting. This is the one place that knows
about that variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Mapping
from typing import Any

import kopf
from kopf._core.engines import posting  # the Event queue's context variables (kopf 1.45)

_QUEUES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def adopt_queue() -> None:
    """Keep kopf's Event queue of this loop; call from any kopf handler."""
    with contextlib.suppress(LookupError, RuntimeError):
        _QUEUES[asyncio.get_running_loop()] = posting.event_queue_var.get()


def post(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    """An Event on a gateway, provider or chain; best effort (Events are not state)."""
    raw: Any = dict(body)
    with contextlib.suppress(Exception):
        try:
            posting.event_queue_var.get()
        except LookupError:
            loop = asyncio.get_running_loop()
            queue = _QUEUES.get(loop)
            if queue is None:
                return
            posting.event_queue_loop_var.set(loop)
            posting.event_queue_var.set(queue)
        kopf.event(kopf.Body(raw), type=kind, reason=reason, message=message[:1024])
