"""The graph a float Program stands for, with the parameters being lowered.

A target's lowering function receives the float :class:`~nirjax.compiler.Program` and the
parameters to lower (the graph's own, or a user's fine-tuned ``params=``). Targets whose
vendor toolchain reads a NIR graph (Speck through sinabs, SpiNNaker2 through py-spinnaker2)
check and quantize that graph; :func:`flat_graph` rebuilds it from the Program: one NIR node
per Program node (nested graphs already flattened, subgraph ports removed, edges through
them joined), each node's parameter fields replaced by the values in ``params``.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import nir
import numpy as np

from ..compiler import Program
from ..errors import LoweringError
from .core import collapse_ports

__all__ = ["flat_graph"]


def flat_graph(program: Program, params: Mapping | None = None) -> nir.NIRGraph:
    """The flat NIR graph of ``program``, with ``params`` written into its nodes.

    Args:
        program: a float Program (:func:`~nirjax.compiler.build_program`).
        params: node name -> NamedTuple whose fields are NIR field names (``weight``,
            ``v_threshold``, ...); ``None`` or a missing node keeps the node's own values.

    Returns:
        A ``nir.NIRGraph``: node names are the Program's (flat) names, edges in the Program's
        order, ``metadata`` the source graph's.

    Raises:
        LoweringError: a parameter field is not a field of its NIR node.

    >>> import nirjax
    >>> from nirjax.kernels.linear import LinearParams
    >>> g = nir.NIRGraph.from_list(nir.Linear(np.ones((2, 2))))
    >>> prog = nirjax.compile(g, dt=1.0).program
    >>> flat_graph(prog, {"linear": LinearParams(2 * np.eye(2))}).nodes["linear"].weight.tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    """
    params = dict(params or {})
    nodes, edges = collapse_ports(program)
    out = {}
    for n in nodes.values():
        node = n.source
        p = params.get(n.name)
        if p is not None and node is not None:
            fields = p._asdict() if hasattr(p, "_asdict") else dict(p)
            names = {f.name for f in dataclasses.fields(node)}
            unknown = sorted(set(fields) - names)
            if unknown:
                raise LoweringError(f"node {n.name!r} ({n.type_name}): parameter(s) "
                                    f"{', '.join(unknown)} are not fields of the NIR node")
            node = dataclasses.replace(node, **{k: np.asarray(v) for k, v in fields.items()})
        out[n.name] = node
    return nir.NIRGraph(nodes=out, edges=list(edges),
                        metadata=dict(getattr(program.graph, "metadata", None) or {}))
