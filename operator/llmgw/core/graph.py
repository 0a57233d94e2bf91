"""The fallback graph: cycles, said in bounded words, and the order LiteLLM tries models.

Nodes are model names, and each chain adds edges from its model to its
fallbacks. Cycles are found with Tarjan's strongly connected components, in
time linear in nodes plus edges; every edge inside a component lies on a cycle,
so a chain with such an edge is on a cycle.

What is said about each chain stays bounded, whatever the estate's shape: a
chain whose own cycle is short (at most `SHOWN` models, found by a search that
visits at most `SEARCH` models) gets that cycle whole, as a path from its model
back to it; every other chain points to one cycle of its component, found once
(through the component's first model), which is reported on that model's chain.
So a ring of 1,000 chains costs one search of the ring and 1,000 short ones, not
1,000 searches of the ring and 1,000 paths of 1,000 names.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence

Graph = Mapping[str, Sequence[str]]
"""model -> its ordered fallbacks (for one trigger)."""


SHOWN = 8
"""A cycle of at most this many models is said whole; a longer one by its ends and its length."""

SEARCH = 256
"""The most links one chain's search for its own short cycle may follow before it gives up
(a chain in a large, dense component then points to its component's cycle instead)."""


def components(graph: Graph) -> dict[str, int]:
    """Tarjan's SCC, iterative (deep chains must not hit the recursion limit).

    Returns node -> component id for every node that lies on a cycle.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cyclic: dict[str, int] = {}
    counter = 0
    component = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = graph.get(node, ())
            recursed = False
            while i < len(successors):
                succ = successors[i]
                i += 1
                if succ not in index:
                    work.append((node, i))
                    work.append((succ, 0))
                    recursed = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if recursed:
                continue
            if low[node] == index[node]:
                members: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    members.append(top)
                    if top == node:
                        break
                if len(members) > 1 or node in graph.get(node, ()):
                    for m in members:
                        cyclic[m] = component
                    component += 1
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return cyclic


@dataclasses.dataclass(frozen=True)
class Cycle:
    """One fallback cycle, as a path from its first model back to it (`a, b, c, a`)."""

    path: tuple[str, ...]

    @property
    def first(self) -> str:
        return self.path[0]

    @property
    def models(self) -> int:
        return len(self.path) - 1


@dataclasses.dataclass(frozen=True)
class Place:
    """Where one chain stands among the cycles of its component."""

    cycle: Cycle
    """The chain's own cycle, from its model through its first fallback on a cycle, when that
    is short; otherwise its component's cycle, reported on the chain of `cycle.first`."""
    on_it: bool
    """Whether the chain's model lies on `cycle` (always, unless it is in a tangle of cycles
    whose reported one does not pass through it)."""
    loop: int
    """How many models fall back to one another with this one (its component's size)."""


def cycles(graph: Graph) -> dict[str, Place]:
    """For every model whose chain lies on a cycle, where it stands; linear in the graph.

    A chain is on a cycle when any of its edges stays inside a strongly connected
    component; the first such edge (in the chain's own order) starts its own cycle,
    the shortest way back from there.
    """
    comp = components(graph)
    members: dict[int, list[str]] = defaultdict(list)
    for node in sorted(comp):
        members[comp[node]].append(node)
    out: dict[str, Place] = {}
    for group in members.values():
        first = group[0]
        on = _first_on_cycle(graph, comp, first)
        whole = Cycle(tuple(_way_back(graph, comp, first, on, limit=None) or ()))
        nodes = set(whole.path)
        for node in group:
            if node == first:
                out[node] = Place(whole, True, len(group))
                continue
            own = _way_back(graph, comp, node, _first_on_cycle(graph, comp, node), limit=SHOWN)
            if own is not None:
                out[node] = Place(Cycle(tuple(own)), True, len(group))
            else:
                out[node] = Place(whole, node in nodes, len(group))
    return out


def _first_on_cycle(graph: Graph, comp: Mapping[str, int], source: str) -> str:
    return next(t for t in graph[source] if comp.get(t) == comp[source])


def _way_back(
    graph: Graph, comp: Mapping[str, int], source: str, target: str, *, limit: int | None
) -> list[str] | None:
    """The shortest cycle that takes the edge source -> target, as a path back to source.

    Breadth-first from target inside the component; with a limit, None when the cycle
    would have more than `limit` models or the search follows more than `SEARCH` links.
    """
    if source == target:
        return [source, source]
    want = comp[source]
    parent: dict[str, str] = {target: target}
    level = [target]
    depth = 1  # links from source to the models of `level`; one more closes the cycle
    followed = 0
    while level and source not in parent:
        if limit is not None and depth + 1 > limit:
            return None
        below: list[str] = []
        for node in level:
            for succ in graph.get(node, ()):
                followed += 1
                if limit is not None and followed > SEARCH:
                    return None
                if succ not in parent and comp.get(succ) == want:
                    parent[succ] = node
                    if succ == source:
                        break
                    below.append(succ)
            if source in parent:
                break
        level = below
        depth += 1
    path = [source]
    node = source
    while node != target:
        node = parent[node]
        path.append(node)
    path.reverse()
    return [source, *path]


def format_path(path: Sequence[str]) -> str:
    """`a -> b -> c -> a` for a cycle of at most `SHOWN` models; a longer one by its ends,
    `a -> b -> c -> ... -> y -> z -> a`, in words of a bounded length."""
    if len(path) - 1 <= SHOWN:
        return " -> ".join(path)
    return " -> ".join([*path[:3], "...", *path[-3:]])


def attempt_order(graph: Graph, model: str, max_fallbacks: int) -> list[str]:
    """The models LiteLLM tries for a request to `model`, in order, the model first.

    Mirrors LiteLLM's router (`run_async_fallback`): on failure, each fallback is
    tried in turn, and each failed fallback first walks its own fallbacks; a model
    already attempted for the request is skipped; the depth counter grows with
    every attempt at one level, and a level at depth >= max_fallbacks tries nothing.
    """
    order = [model]
    attempted = {model}
    # Explicit stack of (model, depth, index of its next fallback to try). With index 0 the
    # model's level is being entered and depth is the counter it starts at; on resume,
    # depth is that counter grown by one for each attempt the level has made so far.
    stack: list[tuple[str, int, int]] = [(model, 0, 0)]
    while stack:
        node, depth, i = stack.pop()
        if depth >= max_fallbacks and i == 0:
            continue
        fallbacks = graph.get(node, ())
        while i < len(fallbacks):
            target = fallbacks[i]
            i += 1
            if target == node or target in attempted:
                continue
            attempted.add(target)
            depth += 1
            order.append(target)
            stack.append((node, depth, i))
            stack.append((target, depth, 0))
            break
    return order
