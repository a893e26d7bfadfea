"""Compiler passes over the flattened graph, run before shapes are inferred and nodes ordered.

:func:`graph_pass` applies the graph-level part of a :class:`~nirjax.Semantics` (the fields
``latency``, ``cycle_break``, ``recurrent_bias`` and ``recurrent_overrides`` that the
platform profiles of :mod:`nirjax.semantics.profiles` set): it rewrites the flat graph and
returns per-node semantics changes; the Semantics value itself is never modified.
"""

from __future__ import annotations

import warnings

import nir
import numpy as np

from ..errors import NirjaxWarning
from .schedule import components

__all__ = ["graph_pass", "NEURON_TYPES", "WEIGHT_TYPES"]

#: Spiking neuron types (their output edges close a recurrent loop under ``cycle_break``).
NEURON_TYPES = ("IF", "LIF", "CubaLIF")
#: Weight layers (``latency="weights"`` delays every edge out of one).
WEIGHT_TYPES = ("Affine", "Linear", "Conv1d", "Conv2d")


def _sccs(names, edges):
    """Strongly connected components: name -> component id, and the ids of components that
    contain a cycle (more than one node, or a self-loop)."""
    comps = components(list(names), list(edges))
    comp = {name: i for i, members in enumerate(comps) for name in members}
    cyclic = {i for i, members in enumerate(comps) if len(members) > 1}
    cyclic |= {comp[s] for s, d in edges if s == d}
    return comp, cyclic


def graph_pass(flat, semantics, dt: float):
    """The graph-level part of a profile, applied to a flattened graph before ordering.

    Returns ``(flat, node_changes)``: the rewritten flat graph and, per node name, the
    Semantics fields that node gets on top of its type overrides (a user's own node
    overrides still win). A one-step latency is a ``Delay`` node of one step (``dt``)
    inserted on the edge, named ``"<src>-><dst>"``: with ``latency="weights"`` on every edge
    out of a weight node (Affine, Linear, Conv1d, Conv2d), with ``cycle_break="neuron"`` on
    every edge out of a spiking neuron into its own cycle (a Delay has no same-step
    feedthrough, so that cycle needs no other delay). ``recurrent_bias="drop"`` replaces each
    Affine inside a cycle through a spiking neuron by a Linear of the same weight (warning
    when the bias was nonzero); the profile's ``recurrent_overrides`` become per-node
    overrides of the spiking neurons inside a cycle. With the default semantics nothing
    changes.
    """
    wants = (semantics.latency != "none" or semantics.cycle_break != "dfs"
             or semantics.recurrent_bias != "keep" or semantics.recurrent_overrides)
    if not wants:
        return flat, {}
    names = list(flat.nodes)
    types = {n: flat.nodes[n].type_name for n in names}
    comp, cyclic = _sccs(names, flat.edges)

    def in_cycle(n):
        return comp[n] in cyclic

    cut = set()
    if semantics.latency == "weights":
        cut |= {(s, d) for s, d in flat.edges if types[s] in WEIGHT_TYPES}
    if semantics.cycle_break == "neuron":
        cut |= {(s, d) for s, d in flat.edges
                if types[s] in NEURON_TYPES and comp[s] == comp[d] and in_cycle(s)}
    recurrent_neurons = [n for n in names if types[n] in NEURON_TYPES and in_cycle(n)]
    nodes = dict(flat.nodes)
    if semantics.recurrent_bias == "drop":
        neuron_comps = {comp[n] for n in recurrent_neurons}
        for n in names:
            if types[n] == "Affine" and comp[n] in neuron_comps:
                fn = flat.nodes[n]
                bias = np.asarray(fn.node.bias)
                if np.any(bias != 0):
                    warnings.warn(
                        f"node {n!r} (Affine) is a recurrent weight: under semantics "
                        f"{semantics.name!r} its bias is dropped (the platform keeps only the "
                        f"recurrent weight); max |bias| = {float(np.max(np.abs(bias))):.3g}",
                        NirjaxWarning, stacklevel=4)
                nodes[n] = type(fn)(fn.name, fn.path,
                                    nir.Linear(weight=np.asarray(fn.node.weight)), fn.role)
    edges = []
    for s, d in flat.edges:
        if (s, d) not in cut:
            edges.append((s, d))
            continue
        name, k = f"{s}->{d}", 2
        while name in nodes:
            name, k = f"{s}->{d}#{k}", k + 1
        nodes[name] = type(flat.nodes[s])(name, (name,), nir.Delay(delay=np.array(dt)), "op")
        edges += [(s, name), (name, d)]
    flat = type(flat)(nodes, edges, flat.inputs, flat.outputs, flat.subgraphs)
    changes = {n: dict(semantics.recurrent_overrides) for n in recurrent_neurons
               if semantics.recurrent_overrides}
    return flat, changes
