"""Start-up in linear time: `handlers/toggles.py` and the kopf it was checked against.

kopf holds every handler back until every listed object of every indexed resource is
indexed, through one `ToggleSet(all)` that each object's worker waits on. Providers and
chains are no longer kopf's (`handlers/watches.py`), but Namespaces, gateways and what the
operator owns still are, and a cluster may have hundreds of Namespaces. These tests count
the wake-ups of those waiters (not the time, which a loaded machine blurs) while the emulator
serves a few hundred Namespaces at start: linear with the patch, quadratic without, so a kopf
upgrade or a lost patch cannot bring the quadratic back unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import inspect
import threading
from typing import Any

import kopf
import pytest
from harness import Cluster, gateway, running
from kopf._cogs.aiokits import aiotoggles

from llmgw import options
from llmgw.handlers import pokes, registry, toggles

NAMESPACES = 300


class Counting(asyncio.Condition):
    """A condition that counts its notifications and the waiters each one wakes."""

    def __init__(self) -> None:
        super().__init__()
        self.notified = 0
        self.woken = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        self.woken += min(n, sum(1 for waiter in self._waiters if not waiter.done()))
        super().notify(n)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[Counting]:
    """The conditions of every `ToggleSet(all)` made from now on (kopf's "indexed" set)."""
    made: list[Counting] = []
    init = aiotoggles.ToggleSet.__init__

    def counting_init(self: aiotoggles.ToggleSet, fn: Any) -> None:
        init(self, fn)
        if fn is all:
            condition = Counting()
            self._condition = condition
            made.append(condition)

    monkeypatch.setattr(aiotoggles.ToggleSet, "__init__", counting_init)
    return made


async def start_and_count(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, made: list[Counting]
) -> tuple[int, int, int]:
    """(objects listed at start, notifications, waiters woken) until the first handler runs."""
    await cluster.apply(gateway())
    for i in range(NAMESPACES):
        await cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{i}"}})
    assert cluster.emulator is not None
    listed = sum(1 for obj in cluster.emulator.objects.values() if not obj.deleted)
    first = threading.Event()
    poke = pokes.poke

    async def first_poke(*args: Any, **kwargs: Any) -> None:
        first.set()
        await poke(*args, **kwargs)

    monkeypatch.setattr(pokes, "poke", first_poke)
    async with contextlib.aclosing(running(options.Options(settle_seconds=0.3))) as operator:
        await anext(operator)
        assert await asyncio.get_running_loop().run_in_executor(None, first.wait, 60), "no handler ran"
        (condition,) = made  # one operator, one "indexed" set
        return listed, condition.notified, condition.woken


@pytest.mark.integration
async def test_start_up_wakes_each_waiting_worker_about_once(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, counted: list[Counting]
) -> None:
    listed, notified, woken = await start_and_count(cluster, monkeypatch, counted)
    print(f"\n{listed} objects listed: {notified} notifications, {woken} waiters woken")
    # The set turns off once (the first toggle) and on once (the last dropped); with
    # kopf's own methods it is ~2 per object, each waking every waiting worker.
    assert notified <= 4
    assert woken <= listed + 10


@pytest.mark.integration
async def test_without_the_patch_the_same_start_is_quadratic(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, counted: list[Counting]
) -> None:
    """What the test above guards against: kopf's own methods, counted the same way."""
    registry.build(options.Options())  # installs the patch, as the operator does
    for name, original in toggles.originals().items():
        monkeypatch.setattr(aiotoggles.ToggleSet, name, original)
    monkeypatch.setattr(toggles, "install", lambda: None)
    listed, notified, woken = await start_and_count(cluster, monkeypatch, counted)
    print(f"\nkopf's own ToggleSet, {listed} objects listed: {notified} notifications, {woken} woken")
    assert notified >= 2 * NAMESPACES
    assert woken >= NAMESPACES**2 // 8


def test_install_refuses_a_kopf_version_it_was_not_checked_against(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "__version__", "1.46.0", raising=False)
    with pytest.raises(RuntimeError, match=r"kopf 1\.46\.0 is not a kopf whose ToggleSet llmgw has checked"):
        toggles.install()
    with pytest.raises(RuntimeError, match="start-up would be quadratic"):
        registry.build(options.Options())  # the operator does not start


def test_install_refuses_a_toggleset_source_it_was_not_checked_against(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = inspect.getsource(aiotoggles)
    changed = source.replace("self._condition.notify_all()", "self._condition.notify()")

    def getsource(obj: Any) -> str:
        return changed if obj is aiotoggles else source

    monkeypatch.setattr(inspect, "getsource", getsource)
    with pytest.raises(RuntimeError, match=r"aiotoggles\.py is not the one checked"):
        toggles.install()


def test_the_patch_was_checked_against_the_kopf_installed() -> None:
    """A kopf upgrade must re-read `toggles.py` against kopf's aiotoggles.py, then move this."""
    installed = importlib.metadata.version("kopf")
    assert toggles.digest() == toggles.CHECKED.get(installed), f"kopf {installed} not checked"
    assert kopf.__version__ == importlib.metadata.version("kopf")


def test_install_replaces_the_three_methods_once() -> None:
    toggles.install()
    toggles.install()
    assert toggles.installed()
    for name, original in toggles.originals().items():
        assert original.__module__ == "kopf._cogs.aiokits.aiotoggles"
        assert original.__qualname__ == f"ToggleSet.{name}"
        shapes = [
            [(p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
            for fn in (original, toggles.REPLACEMENTS[name])
        ]
        assert shapes[0] == shapes[1]


async def _settled(*tasks: asyncio.Task[Any]) -> list[bool]:
    await asyncio.sleep(0.01)
    return [task.done() for task in tasks]


@pytest.fixture
def patched() -> None:
    toggles.install()


@pytest.mark.usefixtures("patched")
async def test_an_all_set_wakes_its_waiters_when_it_turns_on_or_off() -> None:
    toggleset = aiotoggles.ToggleSet(all)
    condition = toggleset._condition = Counting()
    off = asyncio.create_task(toggleset.wait_for(False))
    assert await _settled(off) == [False]
    first = await toggleset.make_toggle(name="first")  # on -> off
    assert await _settled(off) == [True]
    on = asyncio.create_task(toggleset.wait_for(True))
    more = [await toggleset.make_toggle(name=str(i)) for i in range(50)]
    more.append(await toggleset.make_toggle(True, name="on"))  # an on toggle: still off
    for toggle in more:
        await toggleset.drop_toggle(toggle)
    assert await _settled(on) == [False]
    await toggleset.drop_toggle(first)  # off -> on
    assert await _settled(on) == [True]
    assert condition.notified == 2


@pytest.mark.usefixtures("patched")
async def test_a_toggle_of_the_set_still_wakes_its_own_waiters() -> None:
    toggleset = aiotoggles.ToggleSet(all)
    toggle = await toggleset.make_toggle(name="one")
    turned = asyncio.create_task(toggle.wait_for(True))
    set_on = asyncio.create_task(toggleset.wait_for(True))
    await toggleset.make_toggle(True, name="other")  # no flip: neither wakes for it
    assert await _settled(turned, set_on) == [False, False]
    await toggle.turn_to(True)  # kopf's own turn_to notifies, as before
    assert await _settled(turned, set_on) == [True, True]


@pytest.mark.usefixtures("patched")
async def test_an_any_set_flips_on_adding_an_on_toggle_and_on_dropping_toggles() -> None:
    toggleset = aiotoggles.ToggleSet(any)
    on = asyncio.create_task(toggleset.wait_for(True))
    await toggleset.make_toggle(False, name="off")  # still off
    assert await _settled(on) == [False]
    a = await toggleset.make_toggle(True, name="a")
    b = await toggleset.make_toggle(True, name="b")
    assert await _settled(on) == [True]
    off = asyncio.create_task(toggleset.wait_for(False))
    await toggleset.drop_toggles([a])
    assert await _settled(off) == [False]
    await toggleset.drop_toggles([b])
    assert await _settled(off) == [True]
