"""Properties of the fallback graph over random graphs, checked against plain definitions."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from llmgw.core import graph

NAMES = "abcdefgh"

# Random fallback graphs: each model (maybe) has a chain of distinct fallbacks, self-loops
# included (the models refuse them, but the graph must not care).
graphs = st.dictionaries(
    st.sampled_from(NAMES),
    st.lists(st.sampled_from(NAMES), unique=True, max_size=5),
    max_size=len(NAMES),
)
fast = settings(max_examples=300, deadline=None)


def reaches(g: graph.Graph, start: str, goal: str) -> bool:
    return distance(g, start, goal) is not None


def distance(g: graph.Graph, start: str, goal: str) -> int | None:
    """Edges on the shortest way from start to goal (0 when they are the same)."""
    seen = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            return seen[node]
        for succ in g.get(node, ()):
            if succ not in seen:
                seen[succ] = seen[node] + 1
                queue.append(succ)
    return None


def litellm_order(g: graph.Graph, model: str, max_fallbacks: int) -> list[str]:
    """LiteLLM's `run_async_fallback`, transcribed as plainly as possible (recursion and all)."""
    order = [model]
    attempted: set[str] = set()

    def failed(group: str, depth: int) -> None:
        fallbacks = g.get(group)
        if fallbacks:
            run_async_fallback(fallbacks, group, depth)

    def run_async_fallback(fallbacks: list[str], original: str, fallback_depth: int) -> None:
        if fallback_depth >= max_fallbacks:
            return  # raise original_exception
        attempted.add(original)
        for mg in fallbacks:
            if mg == original or mg in attempted:
                continue
            attempted.add(mg)
            fallback_depth += 1
            order.append(mg)
            failed(mg, fallback_depth)  # async_function_with_fallbacks(model=mg, fallback_depth=...)

    failed(model, 0)
    return order


@fast
@given(graphs)
def test_every_chain_with_a_fallback_that_leads_back_is_reported(g: dict[str, list[str]]) -> None:
    on_cycle = {s for s, targets in g.items() if any(reaches(g, t, s) for t in targets)}
    assert set(graph.cycles(g)) == on_cycle


@fast
@given(graphs)
def test_components_hold_exactly_the_models_on_cycles(g: dict[str, list[str]]) -> None:
    comp = graph.components(g)
    nodes = set(g) | {t for targets in g.values() for t in targets}
    assert set(comp) == {n for n in nodes if any(reaches(g, t, n) for t in g.get(n, ()))}
    for a in comp:
        for b in comp:
            assert (comp[a] == comp[b]) == (reaches(g, a, b) and reaches(g, b, a))


@fast
@given(graphs)
def test_each_path_is_a_shortest_simple_cycle_through_the_chains_first_fallback_back(
    g: dict[str, list[str]],
) -> None:
    # Eight names: every cycle is short, so every chain states its own, whole.
    for source, place in graph.cycles(g).items():
        path = place.cycle.path
        first = next(t for t in g[source] if reaches(g, t, source))
        assert place.on_it
        assert path[0] == path[-1] == source
        assert path[1] == first
        assert all(b in g.get(a, ()) for a, b in itertools.pairwise(path))
        assert len(set(path[:-1])) == len(path) - 1
        assert len(path) == 2 + (distance(g, first, source) or 0)


@st.composite
def long_loops(draw: st.DrawFn) -> dict[str, list[str]]:
    """A ring of 9 to 40 models, shuffled, with a few chords: long cycles and tangles."""
    names = draw(st.permutations([f"m{i:02d}" for i in range(draw(st.integers(9, 40)))]))
    g = {name: [names[(i + 1) % len(names)]] for i, name in enumerate(names)}
    for a, b in draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)), max_size=6)):
        if b not in g[a]:
            g[a].insert(draw(st.integers(0, len(g[a]))), b)
    return g


@fast
@given(long_loops())
def test_a_chain_states_its_own_short_cycle_or_points_to_its_components_one(g: dict[str, list[str]]) -> None:
    places = graph.cycles(g)
    comp = graph.components(g)
    for source, place in places.items():
        path = place.cycle.path
        assert path[0] == path[-1]
        assert len(set(path[:-1])) == len(path) - 1
        assert all(b in g.get(a, ()) for a, b in itertools.pairwise(path))
        group = {n for n in comp if comp[n] == comp[source]}
        assert place.loop == len(group)
        first = next(t for t in g[source] if reaches(g, t, source))
        own = 2 + (distance(g, first, source) or 0)  # the path's length: models on it, plus one
        head = min(group)
        if source == head or own - 1 <= graph.SHOWN:  # too few links here for the search to give up
            assert path[:2] == (source, first)
            assert len(path) == own
            assert place.on_it
        else:
            # The one cycle said for the component, once, on its first model's chain.
            assert place.cycle == places[head].cycle
            assert place.on_it == (source in path)
            assert own - 1 > graph.SHOWN


@fast
@given(graphs)
def test_leaving_out_the_chains_on_cycles_leaves_no_cycle(g: dict[str, list[str]]) -> None:
    cyclic = graph.cycles(g)
    rest = {s: targets for s, targets in g.items() if s not in cyclic}
    assert graph.cycles(rest) == {}
    assert graph.components(rest) == {}


@fast
@given(graphs, st.sampled_from(NAMES), st.integers(min_value=0, max_value=8))
def test_attempt_order_is_litellms(g: dict[str, list[str]], model: str, max_fallbacks: int) -> None:
    assert graph.attempt_order(g, model, max_fallbacks) == litellm_order(g, model, max_fallbacks)


@fast
@given(graphs, st.sampled_from(NAMES), st.integers(min_value=0, max_value=8))
def test_attempt_order_tries_each_model_once_and_only_fallbacks(
    g: dict[str, list[str]], model: str, max_fallbacks: int
) -> None:
    order = graph.attempt_order(g, model, max_fallbacks)
    assert order[0] == model
    assert len(set(order)) == len(order)
    for i, name in enumerate(order[1:], start=1):
        assert any(name in g.get(earlier, ()) for earlier in order[:i])


@fast
@given(graphs, st.sampled_from(NAMES))
def test_without_a_depth_limit_every_reachable_model_is_tried(g: dict[str, list[str]], model: str) -> None:
    reachable: Callable[[str], bool] = lambda n: reaches(g, model, n)  # noqa: E731
    everything = {n for n in NAMES if reachable(n)}
    assert set(graph.attempt_order(g, model, len(NAMES) + 1)) == everything
