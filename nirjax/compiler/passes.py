"""Compiler passes over the flattened graph, run before shapes are inferred and nodes ordered.

:func:`graph_pass` applies the graph-level part of a :class:`~nirjax.Semantics` (the fields
``latency``, ``cycle_break``, ``recurrent_bias``, ``recurrent_overrides`` and ``imports``,
and the layer fields in ``ignore``, that the platform profiles of
:mod:`nirjax.semantics.profiles` set): it rewrites the flat graph and returns per-node
semantics changes; the Semantics value itself is never modified. :func:`check_cycles` refuses
the cycles a profile with ``cycle_break='none'`` leaves uncut.
"""

from __future__ import annotations

import dataclasses
import warnings

import nir
import numpy as np

from ..errors import NirjaxWarning, SemanticsError
from ..semantics.neuron import departures
from .schedule import components

__all__ = ["graph_pass", "check_cycles", "NEURON_TYPES", "WEIGHT_TYPES", "SYNAPSE_TYPES"]

#: Spiking neuron types (their output edges close a recurrent loop under ``cycle_break``).
NEURON_TYPES = ("IF", "LIF", "CubaLIF")
#: Weight layers (``latency="weights"`` delays every edge out of one).
WEIGHT_TYPES = ("Affine", "Linear", "Conv1d", "Conv2d")
#: Types whose incoming edges carry a synapse under ``latency="synapse"``.
SYNAPSE_TYPES = ("CubaLIF", "LI")
# layer fields Semantics.ignore can drop (applied here: padding changes shapes)
_LAYER_IGNORE = ("bias", "padding")


def _sccs(names, edges):
    """Strongly connected components: name -> component id, and the ids of components that
    contain a cycle (more than one node, or a self-loop)."""
    comps = components(list(names), list(edges))
    comp = {name: i for i, members in enumerate(comps) for name in members}
    cyclic = {i for i, members in enumerate(comps) if len(members) > 1}
    cyclic |= {comp[s] for s, d in edges if s == d}
    return comp, cyclic


def _dropped_layer_fields(name, node, fields, notes):
    """``node`` with the layer fields in ``fields`` set to zero (a note where one was not)."""
    changes = {}
    for field in fields:
        value = getattr(node, field, None)
        if value is None:
            continue
        arr = np.asarray(value)
        changes[field] = np.zeros_like(arr)
        if np.any(arr != 0):
            what = (f"max |bias| = {float(np.max(np.abs(arr))):.3g}" if field == "bias"
                    else f"padding {arr.tolist()} -> 0, which changes the output shape")
            notes.append(f"node {name!r} ({type(node).__name__}): {field} dropped ({what})")
    return dataclasses.replace(node, **changes) if changes else node


def graph_pass(flat, semantics, dt: float):
    """The graph-level part of a profile, applied to a flattened graph before ordering.

    Returns ``(flat, node_changes)``: the rewritten flat graph and, per node name, the
    Semantics fields that node gets on top of its type overrides (a user's own node
    overrides still win). A one-step latency is a ``Delay`` node of one step (``dt``)
    inserted on the edge, named ``"<src>-><dst>"``: with ``latency="weights"`` on every edge
    out of a weight node (Affine, Linear, Conv1d, Conv2d), with ``latency="synapse"`` on
    every edge into a CubaLIF or LI (the synapse of such a connection delivers last step's
    value), with ``cycle_break="neuron"`` on every edge out of a spiking neuron into its own
    cycle (a Delay has no same-step feedthrough, so that cycle needs no other delay).
    ``recurrent_bias="drop"`` replaces each Affine inside a cycle through a spiking neuron by
    a Linear of the same weight (warning when the bias was nonzero); the profile's
    ``recurrent_overrides`` become per-node overrides of the spiking neurons inside a cycle.
    A ``bias`` or ``padding`` in a node's ``ignore`` is set to zero here. Compile warns (one
    :class:`~nirjax.NirjaxWarning`) about every value the semantics drop that changes this
    graph's result: a nonzero dropped bias or padding, node types outside ``imports``, and
    the parameters a neuron form does not read
    (:func:`nirjax.semantics.neuron.departures`). With the default semantics nothing
    changes.
    """
    names = list(flat.nodes)
    types = {n: flat.nodes[n].type_name for n in names}
    per_node = {n: semantics.for_node(n, types[n]) for n in names}
    notes = []
    nodes = dict(flat.nodes)
    rewritten = False
    for n in names:
        fn = flat.nodes[n]
        notes += departures(n, types[n], per_node[n], fn.node, dt)
        fields = [f for f in _LAYER_IGNORE if f in per_node[n].ignore]
        if fields:
            node = _dropped_layer_fields(n, fn.node, fields, notes)
            if node is not fn.node:
                nodes[n], rewritten = type(fn)(fn.name, fn.path, node, fn.role), True
    if semantics.imports:
        foreign = sorted({types[n] for n in names} - set(semantics.imports))
        if foreign:
            listed = "; ".join(
                f"{t}: " + ", ".join(repr(n) for n in names if types[n] == t) for t in foreign)
            notes.append(f"the platform's importer does not convert {listed}; simulated with "
                         f"nirjax's rules under these semantics")
    wants = (semantics.latency != "none" or semantics.cycle_break not in ("dfs", "none")
             or semantics.recurrent_bias != "keep" or semantics.recurrent_overrides)
    if not wants:
        _warn(semantics, notes)
        if not rewritten:
            return flat, {}
        return type(flat)(nodes, list(flat.edges), flat.inputs, flat.outputs,
                          flat.subgraphs), {}
    comp, cyclic = _sccs(names, flat.edges)

    def in_cycle(n):
        return comp[n] in cyclic

    cut = set()
    if semantics.latency == "weights":
        cut |= {(s, d) for s, d in flat.edges if types[s] in WEIGHT_TYPES}
    if semantics.latency == "synapse":
        cut |= {(s, d) for s, d in flat.edges if types[d] in SYNAPSE_TYPES}
    if semantics.cycle_break == "neuron":
        cut |= {(s, d) for s, d in flat.edges
                if types[s] in NEURON_TYPES and comp[s] == comp[d] and in_cycle(s)}
    recurrent_neurons = [n for n in names if types[n] in NEURON_TYPES and in_cycle(n)]
    if semantics.recurrent_bias == "drop":
        neuron_comps = {comp[n] for n in recurrent_neurons}
        for n in names:
            if types[n] == "Affine" and comp[n] in neuron_comps:
                fn = nodes[n]
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
    _warn(semantics, notes)
    flat = type(flat)(nodes, edges, flat.inputs, flat.outputs, flat.subgraphs)
    changes = {n: dict(semantics.recurrent_overrides) for n in recurrent_neurons
               if semantics.recurrent_overrides}
    return flat, changes


def _warn(semantics, notes):
    if notes:
        warnings.warn(f"under semantics {semantics.name!r} the graph departs from what the "
                      f"platform reads: " + "; ".join(notes), NirjaxWarning, stacklevel=5)


def check_cycles(semantics, edges, delayed) -> None:
    """Refuse the cycles no delay breaks when ``semantics.cycle_break`` is ``'none'``.

    Args:
        semantics: the compile's semantics.
        edges: every ``(src, dst)`` edge of the flat graph.
        delayed: the edges nirjax's search would cut (those closing a cycle of nodes that all
            have same-step feedthrough).

    Raises:
        SemanticsError: naming the nodes of each such cycle.
    """
    if semantics.cycle_break != "none" or not delayed:
        return
    names = sorted({n for e in edges for n in e})
    comp, _ = _sccs(names, edges)
    loops = []
    for s, d in sorted(delayed):
        members = sorted(n for n in names if comp[n] == comp[s])
        if members not in loops:
            loops.append(members)
    listed = "; ".join(", ".join(repr(n) for n in m) for m in loops)
    raise SemanticsError(
        f"under semantics {semantics.name!r} no edge of a cycle is delayed "
        f"(cycle_break='none'), and the cycle through {listed} has no node without same-step "
        f"feedthrough: the platform refuses such a graph"
        + (" (Nengo: 'Input graph has cycles'; a recurrent loop needs a CubaLIF or LI, whose "
           "Lowpass synapse delays one step)" if semantics.latency == "synapse" else ""))
