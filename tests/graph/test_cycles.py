"""Fallback cycles: found whatever their length, each reported with its full path."""

from __future__ import annotations

import pytest

from llmgw.core import graph


def ring(prefix: str, length: int) -> dict[str, list[str]]:
    """`p0 -> p1 -> ... -> p{n-1} -> p0`."""
    names = [f"{prefix}{i}" for i in range(length)]
    return {name: [names[(i + 1) % length]] for i, name in enumerate(names)}


def line(prefix: str, length: int) -> dict[str, list[str]]:
    """`p0 -> p1 -> ... -> p{n-1}`, no way back."""
    return {f"{prefix}{i}": [f"{prefix}{i + 1}"] for i in range(length - 1)}


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 8, 64])
def test_a_cycle_of_any_length_is_found_at_every_chain_on_it(length: int) -> None:
    g = ring("m", length)
    paths = graph.cyclic_edges(g)
    assert sorted(paths) == sorted(g)
    for source, path in paths.items():
        start = int(source[1:])
        expected = [f"m{(start + i) % length}" for i in range(length)] + [source]
        assert path == expected


@pytest.mark.parametrize(
    ("g", "source", "printed"),
    [
        ({"a": ["a"]}, "a", "a -> a"),
        ({"a": ["b"], "b": ["a"]}, "a", "a -> b -> a"),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, "a", "a -> b -> c -> a"),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, "c", "c -> a -> b -> c"),
        ({"a": ["b"], "b": ["c"], "c": ["d"], "d": ["e"], "e": ["a"]}, "b", "b -> c -> d -> e -> a -> b"),
    ],
)
def test_the_path_is_printed_from_the_chain_back_to_itself(g: graph.Graph, source: str, printed: str) -> None:
    assert graph.format_path(graph.cyclic_edges(g)[source]) == printed


@pytest.mark.parametrize(
    ("g", "source", "path"),
    [
        # The chain's first fallback that leads back decides the path, in the chain's own order.
        ({"a": ["b", "c"], "b": ["a"], "c": ["d"], "d": ["a"]}, "a", ["a", "b", "a"]),
        ({"a": ["c", "b"], "b": ["a"], "c": ["d"], "d": ["a"]}, "a", ["a", "c", "d", "a"]),
        # A fallback that leads nowhere is passed over for one on the cycle.
        ({"a": ["x", "b"], "b": ["a"]}, "a", ["a", "b", "a"]),
        # The shortest way back through that fallback.
        ({"a": ["b"], "b": ["c", "a"], "c": ["a"]}, "a", ["a", "b", "a"]),
    ],
)
def test_the_path_takes_the_chains_first_fallback_on_the_cycle(
    g: graph.Graph, source: str, path: list[str]
) -> None:
    assert graph.cyclic_edges(g)[source] == path


def test_several_disjoint_cycles_are_all_reported() -> None:
    g = {**ring("a", 1), **ring("b", 2), **ring("c", 3), **ring("d", 5), **line("x", 4)}
    g["x3"] = ["b0"]  # leads into a cycle without being on one
    paths = graph.cyclic_edges(g)
    assert sorted(paths) == sorted([*ring("a", 1), *ring("b", 2), *ring("c", 3), *ring("d", 5)])
    assert graph.format_path(paths["a0"]) == "a0 -> a0"
    assert graph.format_path(paths["b1"]) == "b1 -> b0 -> b1"
    assert graph.format_path(paths["c2"]) == "c2 -> c0 -> c1 -> c2"
    assert graph.format_path(paths["d0"]) == "d0 -> d1 -> d2 -> d3 -> d4 -> d0"


@pytest.mark.parametrize(
    "g",
    [
        {},
        {"a": []},
        {"a": ["b"]},
        {"a": ["b", "c"], "b": ["c"]},  # a diamond is not a cycle
        {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": ["e"]},
        {"a": ["b"], "b": ["c"], "x": ["b"], "y": ["a", "x"]},
    ],
)
def test_acyclic_graphs_report_nothing(g: graph.Graph) -> None:
    assert graph.cyclic_edges(g) == {}
    assert graph.components(g) == {}


def test_chains_leading_into_a_cycle_are_not_on_it() -> None:
    g = {"x": ["a"], "a": ["b"], "b": ["a", "y"], "y": ["z"]}
    assert sorted(graph.cyclic_edges(g)) == ["a", "b"]


def test_two_cycles_through_one_model_are_one_component() -> None:
    g = {"a": ["b", "c"], "b": ["a"], "c": ["a"]}
    comp = graph.components(g)
    assert set(comp) == {"a", "b", "c"}
    assert len(set(comp.values())) == 1


def test_disjoint_cycles_are_separate_components() -> None:
    g = {**ring("a", 2), **ring("b", 3)}
    comp = graph.components(g)
    assert comp["a0"] == comp["a1"] != comp["b0"] == comp["b1"] == comp["b2"]


def test_a_long_chain_needs_no_recursion() -> None:
    g = line("m", 10_000)
    assert graph.cyclic_edges(g) == {}
    assert graph.attempt_order(g, "m0", 20_000) == [f"m{i}" for i in range(10_000)]


def test_a_long_chain_closed_into_a_cycle_needs_no_recursion() -> None:
    g = line("m", 10_000)
    g["m9999"] = ["m0"]
    comp = graph.components(g)
    assert len(comp) == 10_000
    assert len(set(comp.values())) == 1


def test_a_long_cycle_is_reported_at_every_chain_with_its_whole_path() -> None:
    g = ring("m", 1_000)
    paths = graph.cyclic_edges(g)
    assert len(paths) == 1_000
    assert all(len(path) == 1_001 and path[0] == path[-1] == source for source, path in paths.items())


def hundred_thousand_edges(shape: str) -> dict[str, list[str]]:
    nodes = 10_000
    m = [f"m{i}" for i in range(nodes)]
    forward = {i: [m[j] for j in range(i + 1, min(i + 11, nodes))] for i in range(nodes)}
    if shape == "dag":  # every fallback is a later model: no cycle at all
        return {m[i]: forward[i] for i in range(nodes)}
    if shape == "pairs":  # models fall back to their twin, then to later pairs: 5,000 cycles
        return {m[i]: [m[i ^ 1], *(t for t in forward[i] if int(t[1:]) // 2 > i // 2)] for i in range(nodes)}
    # one component: every model falls back to the ones after it, and to the one before it
    return {m[i]: [*forward[i], *([m[i - 1]] if i else [])] for i in range(nodes)}


@pytest.mark.parametrize("shape", ["dag", "pairs", "one-component"])
def test_a_hundred_thousand_edges_complete(shape: str) -> None:
    g = hundred_thousand_edges(shape)
    assert sum(len(targets) for targets in g.values()) >= 95_000
    paths = graph.cyclic_edges(g)
    if shape == "dag":
        assert paths == {}
    else:
        assert len(paths) == len(g)
        assert all(len(path) == 3 for path in paths.values())
    assert len(graph.attempt_order(g, "m0", 50)) > 50
