"""Export a compiled graph with (trained) parameters back to a ``nir.NIRGraph``.

Export is a pass over the compiled program: every node keeps its name, every graph its
nesting, edges and metadata; parameter arrays are replaced by the given ones, cast back to
the dtype each field had in the source graph, so the result is the same kind of graph.
"""

from __future__ import annotations

import dataclasses

import jax
import nir
import numpy as np

from .errors import GraphError

__all__ = ["to_nir"]


def _copy_graph(graph: nir.NIRGraph, path: tuple, updates: dict) -> nir.NIRGraph:
    nodes = {}
    for name, node in graph.nodes.items():
        here = path + (name,)
        if isinstance(node, nir.NIRGraph):
            nodes[name] = _copy_graph(node, here, updates)
            continue
        changes = {}
        for field, value in updates.get(here, {}).items():
            old = getattr(node, field, None)
            dtype = np.asarray(old).dtype if old is not None and np.asarray(old).dtype.kind == "f" else None
            arr = np.asarray(value)
            changes[field] = arr.astype(dtype) if dtype is not None else arr
        fields = {f.name: getattr(node, f.name) for f in dataclasses.fields(node) if f.init}
        fields.update(changes)
        fields["metadata"] = dict(node.metadata or {})
        nodes[name] = type(node)(**fields)
    return nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in graph.edges],
                        metadata=dict(graph.metadata or {}), type_check=False)


def to_nir(model, params=None) -> nir.NIRGraph:
    """A ``nir.NIRGraph`` of ``model``'s source graph carrying ``params``.

    Args:
        model: a :class:`~nirjax.CompiledGraph`.
        params: parameters structured like ``model.params`` (default: ``model.params``).

    Returns:
        A new graph (the source graph is not modified) with the same node names, nesting,
        edges and metadata. Write it with :func:`nirjax.write`.
    """
    params = model.params if params is None else params
    updates = {}
    for node in model.program.nodes:
        if node.params is None:
            continue
        if node.name not in params:
            raise GraphError(f"to_nir: params has no entry for node {node.name!r}")
        values = jax.device_get(params[node.name])
        updates[node.path] = {f: np.asarray(v) for f, v in values._asdict().items()}
    return _copy_graph(model.program.graph, (), updates)
