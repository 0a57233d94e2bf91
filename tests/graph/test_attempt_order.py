"""The order in which LiteLLM tries models for one request, worked out by hand.

Derived from LiteLLM's `run_async_fallback` (litellm/router_utils/
fallback_event_handlers.py): a level at depth >= max_fallbacks tries nothing;
each attempt at one level adds one to that level's depth before the attempted
model walks its own fallbacks at the new depth; a model already attempted for
the request (or the failed model itself) is passed over without counting.
"""

from __future__ import annotations

import pytest

from llmgw.core import graph


@pytest.mark.parametrize(
    ("g", "model", "max_fallbacks", "order"),
    [
        # No chain: only the model itself.
        ({}, "a", 5, ["a"]),
        ({"b": ["c"]}, "a", 5, ["a"]),
        # One level, in the chain's own order.
        ({"a": ["b", "c", "d"]}, "a", 5, ["a", "b", "c", "d"]),
        # Each fallback walks its own fallbacks before the next one is tried (depth first).
        ({"a": ["b", "c"], "b": ["d"], "c": ["e"]}, "a", 5, ["a", "b", "d", "c", "e"]),
        ({"a": ["b"], "b": ["c"], "c": ["d"], "d": ["e"]}, "a", 5, ["a", "b", "c", "d", "e"]),
        # A model already attempted for the request is not tried again.
        ({"a": ["b", "c"], "b": ["c", "d"]}, "a", 5, ["a", "b", "c", "d"]),
        ({"a": ["b", "c"], "b": ["a", "c"], "c": ["b", "a"]}, "a", 5, ["a", "b", "c"]),
        # The samples: llama -> [qwen, gpt-4o-mini], qwen -> [llama-3.2-3b, gpt-4o-mini].
        (
            {"llama": ["qwen", "mini"], "qwen": ["small", "mini"]},
            "llama",
            5,
            ["llama", "qwen", "small", "mini"],
        ),
        # A self-fallback is never an attempt.
        ({"a": ["a", "b"]}, "a", 5, ["a", "b"]),
    ],
)
def test_order_of_attempts(g: graph.Graph, model: str, max_fallbacks: int, order: list[str]) -> None:
    assert graph.attempt_order(g, model, max_fallbacks) == order


@pytest.mark.parametrize(
    ("max_fallbacks", "order"),
    [
        (0, ["a"]),
        (1, ["a", "b"]),
        (2, ["a", "b", "c"]),
        (3, ["a", "b", "c", "d"]),
        (4, ["a", "b", "c", "d", "e"]),
        (5, ["a", "b", "c", "d", "e"]),
    ],
)
def test_max_fallbacks_limits_how_deep_chains_are_followed(max_fallbacks: int, order: list[str]) -> None:
    g = {"a": ["b"], "b": ["c"], "c": ["d"], "d": ["e"]}
    assert graph.attempt_order(g, "a", max_fallbacks) == order


@pytest.mark.parametrize("max_fallbacks", [1, 2, 3])
def test_one_level_is_tried_to_its_end_once_entered(max_fallbacks: int) -> None:
    # The limit is checked when a level starts, not per attempt within it.
    g = {"a": ["b", "c", "d", "e"]}
    assert graph.attempt_order(g, "a", max_fallbacks) == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("max_fallbacks", "order"),
    [
        # b, c, d are attempts 1, 2, 3 at the first level: d's own chain starts at depth 3.
        (3, ["a", "b", "c", "d"]),
        (4, ["a", "b", "c", "d", "e"]),
    ],
)
def test_the_depth_grows_with_every_attempt_at_one_level(max_fallbacks: int, order: list[str]) -> None:
    g = {"a": ["b", "c", "d"], "d": ["e"]}
    assert graph.attempt_order(g, "a", max_fallbacks) == order


def test_a_model_passed_over_does_not_count_towards_the_depth() -> None:
    # b tries c at depth 2; back at the first level c is passed over, so d is attempt 2
    # and its chain starts at depth 2 < 3: e is tried.
    g = {"a": ["b", "c", "d"], "b": ["c"], "d": ["e"]}
    assert graph.attempt_order(g, "a", 3) == ["a", "b", "c", "d", "e"]


def test_a_nested_level_adds_to_the_depth_it_started_at() -> None:
    # b is attempt 1; b's own level starts at depth 1: x is attempt 2, y is attempt 3;
    # y's chain starts at depth 3 = max_fallbacks: z is never tried; back at a's level,
    # c is attempt 2 and its chain (depth 2) still runs.
    g = {"a": ["b", "c"], "b": ["x", "y"], "y": ["z"], "c": ["w"]}
    assert graph.attempt_order(g, "a", 3) == ["a", "b", "x", "y", "c", "w"]


def test_cycles_do_not_loop() -> None:
    g = {"a": ["b"], "b": ["c"], "c": ["a", "d"]}
    assert graph.attempt_order(g, "a", 50) == ["a", "b", "c", "d"]
