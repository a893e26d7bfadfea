"""Scheduling pass: split a program into stages run layer by layer over chunks of time.

The plain program runs every node once per step inside one ``lax.scan``. Most of a spiking
network's arithmetic, though, is in stateless projections (Affine, Linear, Conv) whose input
does not depend on their own past: given their input for a whole stretch of time they can be
applied to all ``K x B`` samples of that stretch at once, as one large GEMM or convolution.
Only the stateful nodes and the cycles need a sequential loop.

``schedule(program)`` groups the nodes into the strongly connected components of the graph
(all edges, delayed ones included) and orders the components topologically. Each component
becomes a stage:

* ``map``: one stateless node outside any cycle, applied to a whole chunk ``[K, B, ...]``;
* ``scan``: stateful nodes and cycles, a ``lax.scan`` over the chunk's steps; consecutive
  scan stages are merged into one loop.

The simulation then runs as an outer ``lax.scan`` over chunks of ``K`` steps, and inside each
chunk the stages run one after another on ``[K, B, ...]`` arrays. Every node still sees
exactly the inputs it sees in the plain program (same values, same step), so the results
are the same; only the association of floating-point sums inside a GEMM may differ in the
last bits. Memory is that of one chunk, independent of the number of steps.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Stage", "schedule", "components"]


@dataclasses.dataclass(frozen=True)
class Stage:
    """A group of nodes run together over a chunk of steps.

    Attributes:
        kind: ``'map'`` (stateless, applied to a whole chunk) or ``'scan'`` (a loop over the
            chunk's steps).
        members: names of the nodes, in program order.
        external: names of nodes of earlier stages whose outputs the stage reads.
        exports: names of member nodes whose per-step outputs later stages, the graph's
            outputs or records need.
    """

    kind: str
    members: tuple
    external: tuple
    exports: tuple


def components(names: list, edges: list) -> list:
    """Strongly connected components (Tarjan, iterative), each a list of names.

    >>> components(["a", "b", "c"], [("a", "b"), ("b", "a"), ("b", "c")])
    [['c'], ['a', 'b']]
    """
    succ = {n: [] for n in names}
    for s, d in edges:
        succ[s].append(d)
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in names:
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succ[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(sorted(comp, key=names.index))
    return out


def schedule(program, needed: set = frozenset(), merge_scans: bool = True) -> tuple:
    """Stages of ``program`` in a valid execution order.

    Args:
        program: a :class:`~nirjax.compiler.Program`.
        needed: extra node names whose outputs must be exported (records).
        merge_scans: merge consecutive scan stages into one loop.
    """
    names = [n.name for n in program.nodes]
    position = {n: i for i, n in enumerate(names)}
    edges = [(e.src, e.dst) for e in program.edges]
    comps = components(names, edges)
    comp_of = {n: i for i, c in enumerate(comps) for n in c}
    # Kahn's algorithm on the condensation, ties broken by program position
    preds = {i: set() for i in range(len(comps))}
    for s, d in edges:
        if comp_of[s] != comp_of[d]:
            preds[comp_of[d]].add(comp_of[s])
    done, order = set(), []
    remaining = set(range(len(comps)))
    while remaining:
        ready = [c for c in remaining if preds[c] <= done]
        c = min(ready, key=lambda i: position[comps[i][0]])
        order.append(c)
        done.add(c)
        remaining.discard(c)

    self_loops = {s for s, d in edges if s == d}
    groups = []
    for c in order:
        members = comps[c]
        node = program.node(members[0])
        kind = "map" if len(members) == 1 and not node.stateful and members[0] not in self_loops else "scan"
        if merge_scans and kind == "scan" and groups and groups[-1][0] == "scan":
            groups[-1][1].extend(members)
        else:
            groups.append((kind, list(members)))

    stage_of = {n: i for i, (_, ms) in enumerate(groups) for n in ms}
    exports = {i: set() for i in range(len(groups))}
    external = {i: set() for i in range(len(groups))}
    for s, d in edges:
        if stage_of[s] != stage_of[d]:
            exports[stage_of[s]].add(s)
            external[stage_of[d]].add(s)
    for n in set(program.outputs) | set(needed):
        exports[stage_of[n]].add(n)
    return tuple(
        Stage(kind, tuple(sorted(ms, key=position.get)), tuple(sorted(external[i], key=position.get)),
              tuple(sorted(exports[i], key=position.get)))
        for i, (kind, ms) in enumerate(groups)
    )
