"""The fallback graph: cycles with their paths, and the order LiteLLM tries models.

Nodes are model names, and each chain adds edges from its model to its
fallbacks. Cycles are found with Tarjan's strongly connected components, in
time linear in nodes plus edges; every edge inside a component lies on a cycle,
so a chain with such an edge is on a cycle, and its path is found inside its
component alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

Graph = Mapping[str, Sequence[str]]
"""model -> its ordered fallbacks (for one trigger)."""


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


def cycle_through(graph: Graph, comp: Mapping[str, int], source: str, target: str) -> list[str]:
    """The shortest cycle that takes the edge source -> target, as a path back to source."""
    if source == target:
        return [source, source]
    want = comp[source]
    parent: dict[str, str] = {target: target}
    queue = deque([target])
    while queue:
        node = queue.popleft()
        if node == source:
            break
        for succ in graph.get(node, ()):
            if succ not in parent and comp.get(succ) == want:
                parent[succ] = node
                queue.append(succ)
    path = [source]
    node = source
    while node != target:
        node = parent[node]
        path.append(node)
    path.reverse()
    return [source, *path]


def cyclic_edges(graph: Graph) -> dict[str, list[str]]:
    """For every model whose chain lies on a cycle, the path of one such cycle.

    A chain is on a cycle when any of its edges stays inside a strongly connected
    component; the first such edge (in the chain's own order) names the path.
    """
    comp = components(graph)
    out: dict[str, list[str]] = {}
    for source in sorted(graph):
        if source not in comp:
            continue
        for target in graph[source]:
            if comp.get(target) == comp[source]:
                out[source] = cycle_through(graph, comp, source, target)
                break
    return out


def format_path(path: Sequence[str]) -> str:
    return " -> ".join(path)


def attempt_order(graph: Graph, model: str, max_fallbacks: int) -> list[str]:
    """The models LiteLLM tries for a request to `model`, in order, the model first.

    Mirrors LiteLLM's router (`run_async_fallback`): on failure, each fallback is
    tried in turn, and each failed fallback first walks its own fallbacks; a model
    already attempted for the request is skipped; the depth counter grows with
    every attempt at one level, and a level at depth >= max_fallbacks tries nothing.
    """
    order = [model]
    attempted = {model}
    # Explicit stack of (node, depth at entry, next fallback index, running depth).
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
