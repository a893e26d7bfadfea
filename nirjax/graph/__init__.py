"""Graph analysis in plain Python (no JAX): flatten nested graphs, validate their structure,
order nodes, find the cycle-closing edges, infer every node's shape.

* :mod:`nirjax.graph.flat`: :func:`flatten` (inline subgraphs, validate edges and types) and
  :func:`order` (evaluation order within a step, delayed edges);
* :mod:`nirjax.graph.shapes`: the shape rule of every NIR type and :func:`infer_shapes`.

Everything here works on names and ``nir`` node objects only, so it can be tested without
compiling anything. The compiler (:mod:`nirjax.compiler`) builds on it.
"""

from .flat import FlatGraph, FlatNode, Ordering, flatten, order
from .shapes import SHAPE_RULES, as_shape, conv_geometry, flatten_shape, infer_shapes, pool_geometry

__all__ = ["FlatGraph", "FlatNode", "Ordering", "flatten", "order", "SHAPE_RULES", "as_shape",
           "conv_geometry", "flatten_shape", "infer_shapes", "pool_geometry"]
