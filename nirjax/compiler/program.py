"""The compiled program: an ordered, typed intermediate representation of a NIR graph.

``build_program`` turns a ``nir.NIRGraph`` into a :class:`Program`: flattened, validated,
every shape inferred, every node bound to its rule (from one rule table, i.e. one
arithmetic) and static kernel options, nodes in evaluation order and the cycle-closing edges
marked as delayed. The step function is built from a Program; optimization, lowering and
export are passes over it. A lowering pass may build its own Program (quantized parameters,
an integer table, rewritten nodes) with :func:`dataclasses.replace` and hand it to
:class:`~nirjax.compiler.CompiledGraph`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import nir

from .. import graph as graph_mod
from ..errors import GraphError, LoweringError, SemanticsError
from ..rules import Rule, RuleTable, get_table, known_types
from ..semantics import Semantics
from .options import CompileOptions
from .passes import check_cycles, graph_pass

__all__ = ["IRNode", "IREdge", "Program", "build_program"]


@dataclasses.dataclass(frozen=True, eq=False)
class IRNode:
    """One node of a :class:`Program`.

    Attributes:
        name: unique flat name.
        path: names from the root graph down to the node (for export).
        type_name: NIR type name (``"LIF"``, ...).
        role: ``'input'``, ``'output'``, ``'port'`` (a subgraph's Input/Output) or ``'op'``.
        in_shape / out_shape: unbatched shapes.
        rule: the registry entry.
        config: the static kernel options.
        semantics: the semantics this node is simulated under.
        params: the node's parameters (NumPy, physical form) or ``None``.
        feedthrough: whether the output depends on the same step's input.
        source: the ``nir`` node it came from.
    """

    name: str
    path: tuple
    type_name: str
    role: str
    in_shape: tuple
    out_shape: tuple
    rule: Rule
    config: Any
    semantics: Semantics
    params: Any
    feedthrough: bool
    source: nir.NIRNode

    @property
    def stateful(self) -> bool:
        """Whether the node carries state across steps."""
        return self.rule.stateful


@dataclasses.dataclass(frozen=True)
class IREdge:
    """An edge; ``delayed`` edges close a cycle and carry the source's previous output."""

    src: str
    dst: str
    delayed: bool = False


@dataclasses.dataclass(frozen=True, eq=False)
class Program:
    """An ordered, typed IR of a NIR graph, ready to be turned into a step function.

    Attributes:
        nodes: the nodes in evaluation order.
        edges: every edge, with ``delayed`` set on the cycle-closing ones.
        inputs / outputs: names of the top graph's Input / Output nodes, in graph order.
        dt: the time step.
        semantics: the semantics the program was compiled under.
        graph: the source ``nir.NIRGraph``.
        subgraphs: nesting path -> the source ``nir.NIRGraph`` at that path.
        table: the :class:`~nirjax.rules.RuleTable` the nodes' rules come from; its
            ``dtype`` is the dtype of the values on the edges (``None``: the compile's float
            dtype). Default: the float table.
    """

    nodes: tuple
    edges: tuple
    inputs: tuple
    outputs: tuple
    dt: float
    semantics: Semantics
    graph: nir.NIRGraph
    subgraphs: Mapping
    table: RuleTable = None

    def __post_init__(self):
        if self.table is None:
            object.__setattr__(self, "table", get_table("float"))
        object.__setattr__(self, "_by_name", {n.name: n for n in self.nodes})
        incoming: dict[str, list] = {n.name: [] for n in self.nodes}
        for e in self.edges:
            incoming[e.dst].append(e)
        object.__setattr__(self, "_incoming", {k: tuple(v) for k, v in incoming.items()})

    def node(self, name: str) -> IRNode:
        """The node called ``name``."""
        try:
            return self._by_name[name]
        except KeyError:
            raise GraphError(
                f"no node named {name!r} in the compiled graph; nodes are: "
                f"{', '.join(n.name for n in self.nodes)}"
            ) from None

    def incoming(self, name: str) -> tuple:
        """The edges into node ``name``."""
        return self._incoming[name]

    @property
    def delayed_edges(self) -> tuple:
        """The cycle-closing edges, which read their source's previous-step output."""
        return tuple(e for e in self.edges if e.delayed)

    def describe(self) -> str:
        """A human-readable listing: order, types, shapes, delayed edges."""
        lines = [f"Program: {len(self.nodes)} nodes, dt={self.dt:g}, semantics={self.semantics.name!r}"
                 + (f", arithmetic {self.table.name!r} ({self.table.dtype})"
                    if self.table.dtype is not None else "")]
        for n in self.nodes:
            ins = ", ".join(
                f"{e.src}{' (previous step)' if e.delayed else ''}" for e in self.incoming(n.name)
            )
            lines.append(
                f"  {n.name:<20} {n.type_name:<10} {str(n.in_shape):>14} -> {str(n.out_shape):<14}"
                f" <- {ins or '-'}"
            )
        return "\n".join(lines)


def build_program(graph: nir.NIRGraph, dt: float, semantics: Semantics,
                  options: Any = None, table: Any = None) -> Program:
    """Flatten, validate, infer shapes, bind rules and order a NIR graph.

    Args:
        graph: the source graph.
        dt: the time step (already validated).
        semantics: the semantics (per-node overrides are applied here).
        options: the :class:`~nirjax.compiler.CompileOptions` (or a mapping of them) passed
            to the rules (e.g. ``precision``).
        table: the rule table (a :class:`~nirjax.rules.RuleTable` or a registered table's
            name); default: the one ``semantics.arithmetic`` names (``"float"``).

    Raises:
        LoweringError: the table has no rule for some of the graph's NIR types (all of them
            are named, with their nodes).
    """
    options = CompileOptions.of(options)
    table = get_table(semantics.arithmetic if table is None else table)
    flat = graph_mod.flatten(graph, known_types())
    if not flat.inputs:
        raise GraphError("the graph has no Input node; nirjax needs at least one to drive it")
    if not flat.outputs:
        raise GraphError("the graph has no Output node; nothing would be returned")
    names = list(flat.nodes)
    for node_name, _ in semantics.overrides:
        if node_name not in flat.nodes:
            raise SemanticsError(
                f"semantics override for node {node_name!r}, which is not in the graph; "
                f"nodes are: {', '.join(names)}"
            )
    # graph-level semantics of a platform profile (latency, where cycles are cut, ...)
    flat, node_changes = graph_pass(flat, semantics, dt)
    names = list(flat.nodes)
    missing = table.missing(flat.nodes[n].type_name for n in names)
    if missing:
        where = "; ".join(
            f"{t}: " + ", ".join(repr(n) for n in names if flat.nodes[n].type_name == t)
            for t in missing)
        raise LoweringError(
            f"the {table.name!r} rule table ({table.doc or 'no description'}) has no rule for "
            f"NIR type(s) {', '.join(missing)} ({where}); it supports "
            f"{', '.join(sorted(table))}")
    # a preliminary order makes the fixed-point shape inference converge in one pass
    pre = graph_mod.order(names, flat.edges, flat.inputs)
    in_shapes, out_shapes = graph_mod.infer_shapes(flat, list(pre.order),
                                                   lambda t: table[t].shape)
    user_overrides = dict(semantics.overrides)

    built = {}
    for name in names:
        fn = flat.nodes[name]
        rule = table[fn.type_name]
        sem = semantics.for_node(name, fn.type_name)
        extra = {k: v for k, v in node_changes.get(name, {}).items()
                 if k not in dict(user_overrides.get(name, ()))}
        if extra:  # the graph pass's changes (a user's node overrides win)
            sem = sem.replace(**extra)
        params = rule.params(name, fn.node)
        config = rule.config(name, fn.node, in_shapes[name], out_shapes[name], sem, dt, options)
        built[name] = IRNode(
            name=name, path=fn.path, type_name=fn.type_name, role=fn.role,
            in_shape=in_shapes[name], out_shape=out_shapes[name], rule=rule, config=config,
            semantics=sem, params=params, feedthrough=bool(rule.feedthrough(config)),
            source=fn.node,
        )
    ordering = graph_mod.order(names, flat.edges, flat.inputs, lambda n: built[n].feedthrough)
    check_cycles(semantics, [(s, d) for s, d in flat.edges if built[d].feedthrough],
                 ordering.delayed)
    edges = tuple(IREdge(s, d, (s, d) in ordering.delayed) for s, d in flat.edges)
    return Program(
        nodes=tuple(built[n] for n in ordering.order),
        edges=edges,
        inputs=tuple(flat.inputs),
        outputs=tuple(flat.outputs),
        dt=dt,
        semantics=semantics,
        graph=graph,
        subgraphs=flat.subgraphs,
        table=table,
    )
