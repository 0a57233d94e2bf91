"""The cycle collector, kept from pausing the event loop for half a second on a large estate.

CPython's collector walks every tracked object on a full collection, holding the GIL: with
8,000 objects in the indexes (kopf's bodies, our copies, the parse memo) a full collection
took 480 to 700 ms, 22 times in one restart of the scale benchmark, and every webhook review,
watch event and health check waited for it (they were the slow reviews after an edit); the
pure pipeline itself ran twice as fast with the collector off.

So the pure part of a pass runs with the automatic collector paused, and ends by freezing
what is alive (`gc.freeze`): the collector leaves frozen objects alone and walks only what is
younger, which is quick. A frozen object that becomes garbage is freed at once by reference
counting, as any other; only garbage in reference cycles waits, for the sweep: after a pass,
when the frozen set has grown by half since the last sweep, or `SWEEP_SECONDS` after it,
everything is unfrozen and collected in one deliberate pause, and what survives frozen again.
A pass makes little cyclic garbage (hundreds of objects a collection, measured), so sweeps are
rare.

From the operator's start until its first pass (at most `START_HOLD` seconds) only full
collections are held off: while kopf lists and indexes 8,000 objects it ran 9 of them, 1.8 s
of the 6.3 s to the first handler. The young collections go on (kopf's work on each listed
object leaves garbage in cycles: with the collector off altogether, RSS at the end of the
start was 96 MiB higher), and the first pass's sweep collects the rest.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

GROWTH = 1.5
SWEEP_SECONDS = 600.0
START_HOLD = 120.0
NEVER = 2**31 - 1
"""A threshold for full collections that no count of young ones reaches."""


class Collector:
    def __init__(self, growth: float = GROWTH, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self.growth = growth
        self.sweep_seconds = sweep_seconds
        self.baseline = gc.get_freeze_count()
        """The frozen set's size after the last sweep (at first, what others froze before)."""
        self.last_sweep = time.monotonic()
        self.sweeps = 0
        self.held = False
        self.thresholds = gc.get_threshold()

    def hold(self) -> None:
        """No full collection until `resume` (the first pass's end). Not again where another
        collector in this process holds already (it gives the thresholds back)."""
        if not self.held and gc.get_threshold()[2] != NEVER:
            self.thresholds = gc.get_threshold()
            gc.set_threshold(self.thresholds[0], self.thresholds[1], NEVER)
            self.held = True

    def resume(self) -> None:
        if self.held:
            self.held = False
            gc.set_threshold(*self.thresholds)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No automatic collection inside; what is alive at the end is frozen."""
        was = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            gc.freeze()
            if was:
                gc.enable()

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)`, `paused`: for a pass's pure work, in a worker thread."""
        with self.paused():
            return fn(*args, **kwargs)

    def after_pass(self) -> None:
        """Sweep when the frozen set has grown by half, or has not been swept for a while."""
        self.resume()
        frozen = gc.get_freeze_count()
        if frozen <= self.growth * self.baseline and time.monotonic() - self.last_sweep < self.sweep_seconds:
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.baseline = gc.get_freeze_count()
        self.last_sweep = time.monotonic()
        self.sweeps += 1

    def release(self) -> None:
        """Give the thresholds back (the operator stops; the process may go on). What is frozen
        stays so: it is freed by reference counting as ever, and unfreezing it here would make
        the collector walk, again and again, what the process froze for good reasons of its own."""
        self.resume()
