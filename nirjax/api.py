"""The public entry points that take either a graph or the path of a ``.nir`` file.

:func:`compile` is :func:`nirjax.io.read` followed by
:func:`nirjax.compiler.compile_graph`. It lives here, above both :mod:`nirjax.io` and
:mod:`nirjax.compiler`, so that neither imports the other the wrong way: the compiler only
ever sees ``nir.NIRGraph`` objects, and the reader never compiles anything (layers, one way
down: kernels <- graph <- semantics <- rules <- compiler <- io <- api / train / analysis).
"""

from __future__ import annotations

import os
from typing import Any

from .compiler import CompiledGraph, compile_graph
from .io import read

__all__ = ["compile"]


def compile(graph, dt: float | None = None, semantics: Any = None, **options) -> CompiledGraph:
    """Compile a NIR graph, or the ``.nir`` file at a path, for simulation.

    Args:
        graph: a ``nir.NIRGraph``, or a ``.nir`` file: a path (``str``, ``bytes``,
            ``pathlib.Path``) or a binary file object opened for reading.
        dt: the time step, in the graph's time unit (seconds for the NIR paper graphs,
            which use ``dt=1e-4``). Required: NIR graphs carry no time step.
        semantics: a :class:`~nirjax.Semantics`, a profile name (``"nir"``, ``"exact"``,
            ``"snntorch"``, ...) or a mapping of Semantics fields; default: the NIR spec with
            forward Euler.
        **options: ``rules`` (per-compile rules, merged over the rule table),
            ``surrogate`` (shorthand for ``semantics.surrogate``), and the compile options:
            ``options=CompileOptions(...)`` or its fields as keywords (``dtype``,
            ``precision``, ``checkpoint``, ``unroll``, ``optimize``, ``chunk``,
            ``chunk_bytes``, ``matmul_dtype``, ``donate_state``, ``pallas``,
            ``associative_scan``, ``fast_backward``), each documented in
            :class:`~nirjax.compiler.CompileOptions`. See
            :func:`nirjax.compiler.compile_graph`.

    Returns:
        A :class:`~nirjax.CompiledGraph`.

    A file is read with :func:`nirjax.read`, whose errors name the file.

    >>> import nir, numpy as np, nirjax
    >>> g = nir.NIRGraph.from_list(nir.Affine(np.eye(2), np.zeros(2)),
    ...     nir.LIF(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2),
    ...             v_threshold=np.full(2, 0.5)))
    >>> model = nirjax.compile(g, dt=1e-4)
    >>> model(np.ones((20, 3, 2))).shape
    (20, 3, 2)
    """
    if isinstance(graph, (str, bytes, os.PathLike)) or (
            hasattr(graph, "read") and hasattr(graph, "seek")):  # a path or a file object
        graph = read(graph)
    return compile_graph(graph, dt, semantics, **options)
