"""The cycle collector around passes: held off while a pass reads, never holding on to
garbage for good."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from llmgw.handlers import collector


class Node:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def col() -> Iterator[collector.Collector]:
    c = collector.Collector()
    yield c
    c.release()
    gc.enable()


def test_a_pass_freezes_what_it_leaves_alive_and_the_collector_runs_again_after_it(col):
    assert gc.isenabled()
    with col.paused():
        assert not gc.isenabled()
        kept = [Node() for _ in range(100)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(kept)


def test_a_cycle_that_dies_frozen_is_collected_by_the_sweep(col):
    with col.paused():
        node = Node()
    dead = weakref.ref(node)
    del node
    gc.collect()
    assert dead() is not None  # frozen: the collector leaves it alone
    col.sweep_seconds = 0.0  # time for a sweep
    col.after_pass()
    assert dead() is None
    assert col.sweeps == 1


def test_between_sweeps_a_dead_cycle_waits_for_the_next_one(col):
    col.sweep_seconds = 0.0
    col.after_pass()  # a first sweep
    col.sweep_seconds = 600.0
    with col.paused():
        node = Node()
    dead = weakref.ref(node)
    del node
    col.after_pass()  # the frozen set has hardly grown, and the last sweep was just now
    assert col.sweeps == 1
    assert dead() is not None
    col.sweep_seconds = 0.0  # time for one
    col.after_pass()
    assert col.sweeps == 2
    assert dead() is None


def test_no_full_collection_from_the_start_until_the_first_pass_ends(col):
    before = gc.get_threshold()
    col.hold()
    assert gc.isenabled()  # young collections go on
    assert gc.get_threshold()[:2] == before[:2]
    assert gc.get_threshold()[2] == collector.NEVER
    with col.paused():
        pass
    assert gc.get_threshold()[2] == collector.NEVER  # a pass's read does not end the hold
    col.after_pass()
    assert gc.get_threshold() == before


def test_two_operators_in_one_process_give_the_thresholds_back(col):
    before = gc.get_threshold()
    other = collector.Collector()
    col.hold()
    other.hold()  # a second replica started in the same process (as the tests do)
    other.after_pass()
    col.after_pass()
    assert gc.get_threshold() == before
