"""Graph analysis (plain Python): flatten nested graphs, validate, order nodes, find cycles.

Everything here works on names and ``nir`` node objects only; no JAX.

Rules, in the order they are applied:

1. **Flattening.** A ``NIRGraph`` node ``g`` inside a graph is inlined: its nodes are renamed
   ``g.<name>`` (recursively ``a.b.<name>``). An edge into ``g`` feeds ``g``'s ``Input`` node
   (an edge into ``g.<input>`` picks one when ``g`` has several); an edge out of ``g`` reads
   its ``Output`` node (``g.<output>`` likewise). The inner Input/Output nodes stay as identity
   "port" nodes. Names are never split on dots except to resolve such a port reference, so a
   flat graph may name a node ``lif1.lif``; a flattened name that collides with an existing one
   is an error.
2. **Validation.** Every edge names existing nodes; no edge is listed twice; the top graph's
   Input nodes have no incoming and its Output nodes no outgoing edges; every node type is one
   nirjax knows.
3. **Ordering and cycles.** Nodes are ordered by a depth-first search over the dependency
   edges, started from the Input nodes in sorted name order, then from the nodes without
   feedthrough in sorted name order, then from every remaining node in sorted name order,
   visiting successors in sorted name order. The order and the delayed edges are therefore a
   function of the graph alone (its flat node names and its set of edges): never of the order
   in which a dict, an edge list or a ``.nir`` file lists them (HDF5 lists group members
   alphabetically, so a written and re-read graph compiles to the same program). Names sort
   by Python's ``str`` order (Unicode code points: ``"B" < "a"``). An edge that
   reaches a node still on the search stack closes a cycle: it becomes a *delayed edge* and
   carries its source's output of the PREVIOUS step (zeros at step 0). Self-loops are always
   delayed. Edges into a node with no direct feedthrough (a Delay of at least one step) are
   not dependencies at all: such a node's output is known at the start of the step, so a
   cycle through it needs no extra delay. Every other edge is evaluated within the step, in
   the order found (reverse post-order), so an algebraic loop cannot occur.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import nir

from ..errors import GraphError
from ..limits import limits

__all__ = ["FlatNode", "FlatGraph", "flatten", "order", "Ordering"]


@dataclasses.dataclass(frozen=True)
class FlatNode:
    """A node of the flattened graph.

    Attributes:
        name: unique flat name (``"g.lif"`` for node ``lif`` of subgraph ``g``).
        path: the names from the root graph down to the node, e.g. ``("g", "lif")``.
        node: the ``nir`` node object.
        role: ``'input'``/``'output'`` for the top graph's Input/Output nodes, ``'port'`` for
            a subgraph's Input/Output nodes (identity), ``'op'`` for everything else.
    """

    name: str
    path: tuple
    node: nir.NIRNode
    role: str

    @property
    def type_name(self) -> str:
        """The NIR type name, e.g. ``"LIF"``."""
        return type(self.node).__name__


@dataclasses.dataclass
class FlatGraph:
    """A flattened graph: nodes sorted by flat name, edges sorted, Input/Output node names
    in the order the graph lists them."""

    nodes: dict
    edges: list
    inputs: list
    outputs: list
    subgraphs: dict  # flat prefix path -> nir.NIRGraph, for export


def _ports(graph: nir.NIRGraph, cls) -> list:
    return [n for n, v in graph.nodes.items() if isinstance(v, cls)]


def flatten(graph: nir.NIRGraph, known_types: Iterable[str] | None = None) -> FlatGraph:
    """Flatten nested subgraphs and validate the structure (rules 1 and 2 above).

    Args:
        graph: the root graph.
        known_types: the NIR type names that may appear; others raise :class:`GraphError`.
    """
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    known = set(known_types) if known_types is not None else None
    max_depth = limits().max_depth
    ancestors: list = [graph]
    nodes: dict[str, FlatNode] = {}
    edges: list[tuple[str, str]] = []
    subgraphs: dict[tuple, nir.NIRGraph] = {(): graph}

    def visit(g: nir.NIRGraph, path: tuple, where: str):
        """Inline ``g``; returns (flat names of its Input nodes, of its Output nodes)."""
        if not isinstance(g.nodes, dict):
            raise GraphError(f"{where}: nodes must be a dict of name -> node")
        local: dict[str, tuple] = {}  # local name -> ("node", flat) | ("graph", ins, outs)
        for name, node in g.nodes.items():
            if not isinstance(name, str) or not name:
                raise GraphError(f"{where}: node names must be non-empty strings, got {name!r}")
            flat = ".".join(path + (name,))
            if isinstance(node, nir.NIRGraph):
                if any(node is a for a in ancestors):
                    raise GraphError(f"subgraph {flat!r} is the graph itself or one of its "
                                     f"parents: the graph contains itself")
                if len(path) + 1 > max_depth:
                    raise GraphError(
                        f"subgraph {flat[:200]!r}: subgraphs nest more than {max_depth} levels "
                        f"(nirjax.set_limits(max_depth=...) to allow more)")
                subgraphs[path + (name,)] = node
                ancestors.append(node)
                ins, outs = visit(node, path + (name,), f"subgraph {flat!r}")
                ancestors.pop()
                local[name] = ("graph", ins, outs)
                continue
            if not isinstance(node, nir.NIRNode):
                raise GraphError(
                    f"node {flat!r}: expected a nir.NIRNode, got {type(node).__name__}"
                )
            tname = type(node).__name__
            if known is not None and tname not in known:
                raise GraphError(
                    f"node {flat!r} has type {tname!r}, which nirjax does not know; supported "
                    f"types: {', '.join(sorted(known))}"
                )
            if flat in nodes:
                raise GraphError(
                    f"flattening gives two nodes named {flat!r}; rename the node or the subgraph"
                )
            if isinstance(node, nir.Input):
                role = "input" if not path else "port"
            elif isinstance(node, nir.Output):
                role = "output" if not path else "port"
            else:
                role = "op"
            nodes[flat] = FlatNode(flat, path + (name,), node, role)
            local[name] = ("node", flat)

        def resolve(ref, end: str, edge) -> str:
            """Flat name of an edge endpoint (``end`` is 'source' or 'destination')."""
            pick = 2 if end == "source" else 1  # a subgraph's outputs feed, inputs receive
            kind = "Output" if end == "source" else "Input"
            if not isinstance(ref, str):
                raise GraphError(f"{where}: edge {edge!r} has a non-string endpoint {ref!r}")
            if ref in local:
                entry = local[ref]
                if entry[0] == "node":
                    return entry[1]
                ports = entry[pick]
                if len(ports) != 1:
                    raise GraphError(
                        f"{where}: edge {edge!r}: subgraph {ref!r} has {len(ports)} {kind} "
                        f"nodes; name one as '{ref}.<{kind.lower()} name>'"
                    )
                return ports[0]
            # "g.port" where g is a subgraph of this graph and port one of its Input/Output
            for i in range(len(ref)):
                if ref[i] != ".":
                    continue
                head, tail = ref[:i], ref[i + 1 :]
                entry = local.get(head)
                if entry and entry[0] == "graph":
                    flat = ".".join(path + (head, tail))
                    if flat in entry[pick]:
                        return flat
            raise GraphError(
                f"{where}: edge {edge!r} names {end} node {ref!r}, which does not exist; "
                f"nodes are: {', '.join(sorted(local))}"
            )

        seen = set()
        raw_edges = g.edges if g.edges is not None else []
        if isinstance(raw_edges, (str, bytes, dict)) or not hasattr(raw_edges, "__iter__"):
            raise GraphError(f"{where}: edges must be a list of (source, destination) pairs, got "
                             f"{type(raw_edges).__name__}")
        for edge in raw_edges:
            try:
                src, dst = edge
            except (TypeError, ValueError):
                raise GraphError(f"{where}: edge {edge!r} is not a (source, destination) pair") from None
            key = (src, dst)
            if key in seen:
                raise GraphError(f"{where}: edge ({src!r}, {dst!r}) is listed twice")
            seen.add(key)
            flat_edge = (resolve(src, "source", key), resolve(dst, "destination", key))
            if flat_edge in flat_seen:
                raise GraphError(
                    f"{where}: edge ({src!r}, {dst!r}) connects {flat_edge[0]!r} to "
                    f"{flat_edge[1]!r}, which another edge already does"
                )
            flat_seen.add(flat_edge)
            edges.append(flat_edge)
        ins = [local[n][1] for n in _ports(g, nir.Input)]
        outs = [local[n][1] for n in _ports(g, nir.Output)]
        return ins, outs

    flat_seen: set = set()
    inputs, outputs = visit(graph, (), "graph")
    # canonical order: the flat graph is a function of the graph, not of how it is stored
    nodes = dict(sorted(nodes.items()))
    edges.sort()
    for src, dst in edges:
        if nodes[dst].role == "input":
            raise GraphError(f"edge ({src!r}, {dst!r}) enters Input node {dst!r}; Input nodes take no edges")
        if nodes[src].role == "output":
            raise GraphError(f"edge ({src!r}, {dst!r}) leaves Output node {src!r}; Output nodes end the graph")
    return FlatGraph(nodes, edges, inputs, outputs, subgraphs)


@dataclasses.dataclass(frozen=True)
class Ordering:
    """Result of :func:`order`: evaluation order and the delayed (cycle-closing) edges."""

    order: tuple
    delayed: frozenset


def order(names: list, edges: list, roots: list,
          feedthrough: Callable[[str], bool] = lambda name: True) -> Ordering:
    """Order nodes for evaluation within one step and pick the delayed edges (rule 3).

    The result depends only on the SETS of names, edges and roots (each is sorted here), so
    it is the same however a dict or a file happens to list them.

    Args:
        names: all node names (any order).
        edges: ``(src, dst)`` pairs (any order).
        roots: where the search starts (the Input nodes), any order.
        feedthrough: whether a node's output depends on its input of the same step.

    >>> o = order(["in", "a", "b"], [("in", "a"), ("a", "b"), ("b", "a")], ["in"])
    >>> o.order, sorted(o.delayed)
    (('in', 'a', 'b'), [('b', 'a')])
    """
    names = sorted(names)
    roots = sorted(roots)
    succ: dict[str, list] = {n: [] for n in names}
    for src, dst in edges:
        if feedthrough(dst):
            succ[src].append(dst)
    for n in succ:
        succ[n] = sorted(set(succ[n]))
    state: dict[str, int] = {}  # 1: on stack, 2: done
    post: list[str] = []
    delayed: set = set()
    starts = list(roots) + [n for n in names if not feedthrough(n)] + list(names)
    for start in starts:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(succ[start]))]
        while stack:
            node, it = stack[-1]
            for nxt in it:
                mark = state.get(nxt)
                if mark is None:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
                    break
                if mark == 1:
                    delayed.add((node, nxt))
            else:
                stack.pop()
                state[node] = 2
                post.append(node)
    return Ordering(tuple(reversed(post)), frozenset(delayed))
