"""Fallback cycles: found whatever their length; a short one said whole at every chain on it,
a long one found once and pointed to by every other chain on it."""

from __future__ import annotations

import pytest

from llmgw.core import graph


def paths(g: graph.Graph) -> dict[str, list[str]]:
    """model -> the path of the cycle its chain states (its own, or the one it points to)."""
    return {model: list(place.cycle.path) for model, place in graph.cycles(g).items()}


def ring(prefix: str, length: int) -> dict[str, list[str]]:
    """`p0 -> p1 -> ... -> p{n-1} -> p0`."""
    names = [f"{prefix}{i}" for i in range(length)]
    return {name: [names[(i + 1) % length]] for i, name in enumerate(names)}


def line(prefix: str, length: int) -> dict[str, list[str]]:
    """`p0 -> p1 -> ... -> p{n-1}`, no way back."""
    return {f"{prefix}{i}": [f"{prefix}{i + 1}"] for i in range(length - 1)}


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 8])
def test_a_short_cycle_is_found_at_every_chain_on_it_whole(length: int) -> None:
    g = ring("m", length)
    found = paths(g)
    assert sorted(found) == sorted(g)
    for source, path in found.items():
        start = int(source[1:])
        expected = [f"m{(start + i) % length}" for i in range(length)] + [source]
        assert path == expected


@pytest.mark.parametrize("length", [9, 64, 1_000])
def test_a_long_cycle_is_found_once_and_every_other_chain_points_to_it(length: int) -> None:
    g = ring("m", length)
    places = graph.cycles(g)
    assert sorted(places) == sorted(g)
    (cycle,) = {place.cycle for place in places.values()}
    assert cycle.first == "m0" == min(g)
    assert list(cycle.path) == [f"m{i}" for i in range(length)] + ["m0"]
    assert cycle.models == length
    assert all(place.on_it and place.loop == length for place in places.values())
    assert [m for m, place in places.items() if place.cycle.first == m] == ["m0"]


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
    assert graph.format_path(paths(g)[source]) == printed


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
    assert paths(g)[source] == path


def test_several_disjoint_cycles_are_all_reported() -> None:
    g = {**ring("a", 1), **ring("b", 2), **ring("c", 3), **ring("d", 5), **line("x", 4)}
    g["x3"] = ["b0"]  # leads into a cycle without being on one
    found = paths(g)
    assert sorted(found) == sorted([*ring("a", 1), *ring("b", 2), *ring("c", 3), *ring("d", 5)])
    assert graph.format_path(found["a0"]) == "a0 -> a0"
    assert graph.format_path(found["b1"]) == "b1 -> b0 -> b1"
    assert graph.format_path(found["c2"]) == "c2 -> c0 -> c1 -> c2"
    assert graph.format_path(found["d0"]) == "d0 -> d1 -> d2 -> d3 -> d4 -> d0"


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
    assert graph.cycles(g) == {}
    assert graph.components(g) == {}


def test_chains_leading_into_a_cycle_are_not_on_it() -> None:
    g = {"x": ["a"], "a": ["b"], "b": ["a", "y"], "y": ["z"]}
    assert sorted(graph.cycles(g)) == ["a", "b"]


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
    assert graph.cycles(g) == {}
    assert graph.attempt_order(g, "m0", 20_000) == [f"m{i}" for i in range(10_000)]


def test_a_long_chain_closed_into_a_cycle_needs_no_recursion() -> None:
    g = line("m", 10_000)
    g["m9999"] = ["m0"]
    comp = graph.components(g)
    assert len(comp) == 10_000
    assert len(set(comp.values())) == 1


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
    found = paths(g)
    if shape == "dag":
        assert found == {}
    else:
        assert len(found) == len(g)
        assert all(len(path) == 3 and path[0] == path[-1] == m for m, path in found.items())
    assert len(graph.attempt_order(g, "m0", 50)) > 50


def test_a_chain_off_its_components_cycle_points_to_it_and_says_so() -> None:
    # Two rings of 20 through a0: the component's cycle is a0's own (a0 -> a1 -> ... -> a0);
    # b-models are on a cycle of 21 through a0 and b0, not on that one.
    g = ring("a", 20)
    g["a0"] = ["a1", "b0"]
    g.update({f"b{i}": [f"b{i + 1}"] for i in range(19)})
    g["b19"] = ["a0"]
    places = graph.cycles(g)
    head = places["a0"].cycle
    assert head.path == (*(f"a{i}" for i in range(20)), "a0")
    assert all(places[m].cycle == head and places[m].loop == 40 for m in g)
    assert all(places[f"a{i}"].on_it for i in range(20))
    assert not any(places[f"b{i}"].on_it for i in range(20))


def test_the_search_for_a_chains_own_cycle_is_bounded() -> None:
    # z -> t -> z is short, but t lists more fallbacks first than a search may follow.
    spokes = [f"y{i:03d}" for i in range(graph.SEARCH + 10)]
    g: dict[str, list[str]] = {"a": ["t"], "t": [*spokes, "z", "a"], "z": ["t"]}
    g.update({y: ["t"] for y in spokes})
    places = graph.cycles(g)
    assert places["z"].cycle == places["a"].cycle
    assert places["a"].cycle.path == ("a", "t", "a")
    assert not places["z"].on_it
    assert places["y000"].cycle.path == ("y000", "t", "y000")  # found before the search ends


class Counted(dict[str, list[str]]):
    """A graph that counts how often its fallbacks are looked up."""

    lookups = 0

    def __getitem__(self, key: str) -> list[str]:
        Counted.lookups += 1
        return super().__getitem__(key)

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        Counted.lookups += 1
        return super().get(key, default)


@pytest.mark.parametrize(
    "shape",
    [
        "ring",  # one cycle through every model
        "tangle",  # every model falls back to the next three: one component, long cycles only
    ],
)
def test_finding_cycles_looks_up_each_chain_a_bounded_number_of_times(shape: str) -> None:
    # The cost of cycles() per chain must not grow with the estate (it did: a search of the
    # whole ring per chain on it). Counted, not timed.
    per_chain = []
    for n in (1_000, 4_000):
        names = [f"m{i:05d}" for i in range(n)]
        hops = (1,) if shape == "ring" else (1, 2, 3)
        g = Counted({m: [names[(i + h) % n] for h in hops] for i, m in enumerate(names)})
        Counted.lookups = 0
        places = graph.cycles(g)
        assert len(places) == n
        per_chain.append(Counted.lookups / n)
    assert per_chain[1] <= per_chain[0] * 1.1
    assert per_chain[1] <= 2 * graph.SEARCH


@pytest.mark.parametrize(
    ("length", "printed"),
    [
        (8, "m0 -> m1 -> m2 -> m3 -> m4 -> m5 -> m6 -> m7 -> m0"),
        (9, "m0 -> m1 -> m2 -> ... -> m7 -> m8 -> m0"),
        (100_000, "m0 -> m1 -> m2 -> ... -> m99998 -> m99999 -> m0"),
    ],
)
def test_a_long_cycle_is_printed_by_its_ends(length: int, printed: str) -> None:
    path = [f"m{i}" for i in range(length)] + ["m0"]
    assert graph.format_path(path) == printed
