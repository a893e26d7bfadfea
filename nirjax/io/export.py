"""Export a compiled graph with (trained) parameters back to a ``nir.NIRGraph``.

Export is a pass over the compiled program: every node keeps its name, every graph its
nesting, edge list (in its original order) and metadata, and every node its metadata and
non-trainable fields (shapes, strides, delays, ...). Only the parameter arrays change: each
is replaced by the given value, with the shape the source field had and cast back to the dtype
it had (the NIR paper's Braille graph, for example, stores float32 weights and float64 neuron
parameters; a model trained in float32 exports both as they were). The result is validated
by the same rules the reader applies (finite values, positive time constants), so an exported
graph is always one nirjax and ``nir.read`` accept.

>>> import nir, numpy as np, nirjax
>>> g = nir.NIRGraph.from_list(nir.Affine(np.eye(2, dtype=np.float32), np.zeros(2, np.float32)),
...     nir.LIF(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)))
>>> model = nirjax.compile(g, dt=1e-4)
>>> params = dict(model.params)
>>> params["lif"] = params["lif"]._replace(v_threshold=params["lif"].v_threshold * 2)
>>> out = nirjax.to_nir(model, params)
>>> out.nodes["lif"].v_threshold.tolist(), out.nodes["lif"].v_threshold.dtype
([2.0, 2.0], dtype('float64'))
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
import nir
import numpy as np

from ..errors import GraphError, NirjaxWarning, ParameterError
from ..rules import rule_for

__all__ = ["to_nir"]


def _cast(name: str, type_name: str, field: str, old, value) -> np.ndarray:
    """``value`` with the shape and dtype of the source field ``old``."""
    arr = np.asarray(value)
    ref = np.asarray(old) if old is not None else None
    if ref is not None and arr.shape != ref.shape:
        if arr.size == ref.size:
            arr = arr.reshape(ref.shape)
        else:
            raise ParameterError(
                f"to_nir: node {name!r} ({type_name}): field {field!r} has shape {arr.shape}, but "
                f"the graph's field has shape {ref.shape}"
            )
    if ref is None or ref.dtype.kind not in "fiub":
        return arr
    if ref.dtype.kind == "f":
        return arr.astype(ref.dtype)
    rounded = np.round(arr)
    if np.all(np.isfinite(arr)) and np.array_equal(rounded, arr):
        return rounded.astype(ref.dtype)
    warnings.warn(
        f"to_nir: node {name!r} ({type_name}): field {field!r} was {ref.dtype} in the graph but its "
        f"new values are not whole numbers; exported as {arr.dtype}",
        NirjaxWarning, stacklevel=4,
    )
    return arr


def _copy_graph(graph: nir.NIRGraph, path: tuple, updates: dict) -> nir.NIRGraph:
    nodes = {}
    for name, node in graph.nodes.items():
        here = path + (name,)
        if isinstance(node, nir.NIRGraph):
            nodes[name] = _copy_graph(node, here, updates)
            continue
        fields = {f.name: getattr(node, f.name) for f in dataclasses.fields(node) if f.init}
        if here in updates:
            flat_name, values = updates[here]
            type_name = type(node).__name__
            for field, value in values.items():
                fields[field] = _cast(flat_name, type_name, field, getattr(node, field, None), value)
        fields["metadata"] = dict(node.metadata or {})
        try:
            new = type(node)(**fields)
        except (AssertionError, ValueError, TypeError, IndexError) as exc:
            raise ParameterError(
                f"to_nir: node {'.'.join(here)!r} ({type(node).__name__}) rejects the new "
                f"parameters: {exc or type(exc).__name__}"
            ) from None
        if here in updates:
            # the reader's validation: finite values, positive time constants
            rule_for(type(node).__name__).params(updates[here][0], new)
        nodes[name] = new
    return nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in graph.edges],
                        metadata=dict(graph.metadata or {}), type_check=False)


def to_nir(model, params=None, *, metadata: dict | None = None) -> nir.NIRGraph:
    """A ``nir.NIRGraph`` of ``model``'s source graph carrying ``params``.

    Args:
        model: a :class:`~nirjax.CompiledGraph`.
        params: parameters structured like ``model.params`` (default: ``model.params``),
            e.g. the result of :func:`nirjax.train.fit`.
        metadata: entries added to the top graph's metadata (the source's are kept).

    Returns:
        A new graph (the source graph is not modified) with the same node names, nesting,
        edges and metadata, each parameter in its source shape and dtype. Write it with
        :func:`nirjax.write`.

    Raises:
        GraphError: ``params`` lacks a node of the graph or names one it does not have.
        ParameterError: a value has the wrong shape, is not finite, or a time constant is
            not positive (the message names the node and field).
    """
    params = model.params if params is None else params
    if not hasattr(params, "keys"):
        raise GraphError(f"to_nir: params must be a dict like model.params, got {type(params).__name__}")
    with_params = [n for n in model.program.nodes if n.params is not None]
    extra = set(params) - {n.name for n in with_params}
    if extra:
        raise GraphError(f"to_nir: params name node(s) {sorted(extra)} that carry no parameters in "
                         f"this graph; nodes with parameters: {[n.name for n in with_params]}")
    updates = {}
    for node in with_params:
        if node.name not in params:
            raise GraphError(f"to_nir: params has no entry for node {node.name!r}")
        values = jax.device_get(params[node.name])
        expected = type(node.params)._fields
        if not hasattr(values, "_asdict") or tuple(values._fields) != tuple(expected):
            raise ParameterError(
                f"to_nir: params[{node.name!r}] must be a {type(node.params).__name__} with fields "
                f"{expected}, got {type(values).__name__}"
            )
        updates[node.path] = (node.name, {f: np.asarray(v) for f, v in values._asdict().items()})
    graph = _copy_graph(model.program.graph, (), updates)
    if metadata:
        graph.metadata = {**dict(graph.metadata or {}), **dict(metadata)}
    return graph
