"""kopf's start-up barrier in linear time: its toggle sets wake waiters only when their state flips.

kopf (1.45.2) runs no handler until every object of every indexed resource is indexed. It
keeps one operator-wide `ToggleSet(all)` of "indexed" toggles: its watcher adds an off
toggle for each listed object, each object's worker drops its toggle once indexed and then
waits for the whole set to be on. `ToggleSet.make_toggle` and `drop_toggle` call
`Condition.notify_all()` on every change, so N objects make about 2N notifications, each
waking every worker already waiting: quadratic in the estate (51 s to the first handler at
4,000 objects, measured against the integration suite's API server).

This makes `make_toggle`, `drop_toggle` and `drop_toggles` notify only when the change
flips the set's aggregate state (`is_on()`). That keeps kopf's semantics: the waiters on a
set's condition are the set's own `wait_for` (its predicate depends on the aggregate only)
and the `wait_for` of toggles the set made (each depends on that toggle's state only, which
adding or dropping a toggle never changes). A change that leaves the aggregate as it was
changes no waiter's predicate, so no waiter can miss a wake-up; `Toggle.turn_to` is kept
as it is and still notifies on every turn. Offered upstream as docs/kopf-toggleset.patch.

This module relies on one kopf private, `kopf._cogs.aiokits.aiotoggles`, and only on the
exact source it was checked against: `install()` refuses (stops the operator with the
reason) any kopf whose version or module source is not in `CHECKED`, rather than letting
start-up turn quadratic again unnoticed. tests/operator/test_startup.py counts the
wake-ups while the emulator serves a few hundred objects at start, with and without this.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import kopf
from kopf._cogs.aiokits import aiotoggles

CHECKED = {"1.45.2": "8308730e8c42c15fc975c4900bad8ab12589f654f699feff5a25f3032416e444"}
"""kopf versions whose `aiotoggles` module was read for this patch: the SHA-256 of its source."""
ORIGINAL = "_llmgw_toggles_original"
"""The attribute of each patched method that holds kopf's own."""


async def make_toggle(
    self: aiotoggles.ToggleSet, __val: bool = False, *, name: str | None = None
) -> aiotoggles.Toggle:
    toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
    async with self._condition:
        was = self.is_on()
        self._toggles.add(toggle)
        _notify_if_flipped(self, was)
    return toggle


async def drop_toggle(self: aiotoggles.ToggleSet, toggle: aiotoggles.Toggle) -> None:
    async with self._condition:
        was = self.is_on()
        self._toggles.discard(toggle)
        _notify_if_flipped(self, was)


async def drop_toggles(self: aiotoggles.ToggleSet, toggles: Iterable[aiotoggles.Toggle]) -> None:
    async with self._condition:
        was = self.is_on()
        self._toggles.difference_update(toggles)
        _notify_if_flipped(self, was)


def _notify_if_flipped(toggleset: aiotoggles.ToggleSet, was: bool) -> None:
    """Wake the condition's waiters only if the set's state changed (with its lock held).

    Adding or dropping a toggle changes no toggle's own state, so the only predicates it can
    change are those of `ToggleSet.wait_for`, which read `is_on()`.
    """
    if toggleset.is_on() != was:
        toggleset._condition.notify_all()


REPLACEMENTS: dict[str, Callable[..., Any]] = {
    "make_toggle": make_toggle,
    "drop_toggle": drop_toggle,
    "drop_toggles": drop_toggles,
}
"""kopf 1.45.2's methods as they were, but for `_notify_if_flipped` in place of `notify_all()`."""


def install() -> None:
    """Put `REPLACEMENTS` in kopf's `ToggleSet`, once per process.

    A kopf not in `CHECKED` stops the operator here, with what to do about it.
    """
    version = str(getattr(kopf, "__version__", "of unknown version"))
    if CHECKED.get(version) is None or CHECKED[version] != digest():
        raise RuntimeError(
            f"kopf {version} is not a kopf whose ToggleSet llmgw has checked "
            f"({', '.join(CHECKED)}; or its aiotoggles.py is not the one checked): without "
            "the patch in llmgw/handlers/toggles.py the operator's start-up would be quadratic in "
            "the number of objects. Read kopf's aiotoggles.ToggleSet: if it still notifies on "
            "every added or dropped toggle, check the patch against it and add the version and "
            "toggles.digest() to toggles.CHECKED; if it notifies only when the set's state "
            "flips, remove the patch."
        )
    for name, replacement in REPLACEMENTS.items():
        current = getattr(aiotoggles.ToggleSet, name)
        if current is not replacement:
            setattr(replacement, ORIGINAL, current)
            setattr(aiotoggles.ToggleSet, name, replacement)


def installed() -> bool:
    return all(getattr(aiotoggles.ToggleSet, name) is fn for name, fn in REPLACEMENTS.items())


def originals() -> dict[str, Callable[..., Any]]:
    """kopf's own methods (for the tests that measure without the patch)."""
    return {
        name: getattr(getattr(aiotoggles.ToggleSet, name), ORIGINAL, getattr(aiotoggles.ToggleSet, name))
        for name in REPLACEMENTS
    }


def digest() -> str | None:
    """The SHA-256 of kopf's aiotoggles.py as imported; None if its source cannot be read."""
    try:
        source = inspect.getsource(aiotoggles)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()
