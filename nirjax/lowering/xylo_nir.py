"""Read a Xylo-shaped network out of a NIR graph (interim: Phase B reads it from the Program).

The shape Xylo runs: ``Input -> Linear/Affine -> CubaLIF`` (hidden; more hidden CubaLIF
nodes may follow through weight nodes, and weight nodes may close cycles among them) ``->
Linear/Affine -> CubaLIF`` (the readout) ``-> Output``. :func:`network_from_nir` checks that
shape (every violation at once, as :class:`~nirjax.lowering.xylo_rules.Violation` records)
and builds the :class:`~nirjax.lowering.xylo_quantize.XyloFloatNetwork`; :func:`lower_nir`
adds quantization and the chip's design rules and raises one
:class:`~nirjax.lowering.xylo_quantize.XyloLoweringError` listing everything that fails.

Parameters follow Rockpool 3.1.0's NIR importer (``rockpool/nn/modules/torch/nir.py``,
``_convert_nir_to_rockpool``), so that the specification equals the one a Rockpool user
gets: a CubaLIF's ``tau_mem``, ``tau_syn``, ``v_threshold`` become the neuron's time
constants and threshold, ``v_leak`` its per-step membrane ``bias``; weights are taken as
they are. Rockpool ignores ``r`` and ``w_in``: the chip integrates ``i += W x`` and
``v += i`` with unit gains, which is the graph's NIR dynamics (Euler) only when
``r*dt/tau_mem = 1`` and ``w_in*dt/tau_syn = 1`` (true of the NIR paper's Braille graph at
``dt = 1e-4``); otherwise a warning says by how much the gains differ. The chip resets by
subtracting the threshold (``v_reset`` is not used) and fires up to 31 spikes per hidden
neuron per step.

Hidden neurons are numbered as Rockpool's mappers do: the target of the input weights first
(input-expansion neurons), the sources of the readout weights last (output-expansion
neurons), every other hidden node in between in graph order.
"""

from __future__ import annotations

import numpy as np
import nir

from ..errors import NirjaxError
from .xylo_quantize import XyloFloatNetwork, XyloLoweringError, XyloNames, XyloSpec, \
    get_target, quantize_network
from .xylo_rules import Violation, check_design_rules, require_valid

__all__ = ["network_from_nir", "lower_nir"]

_WEIGHTS = (nir.Linear, nir.Affine)


def _flat(graph):
    """Flat op nodes and edges with subgraph ports collapsed; top Input/Output kept."""
    from ..graph import flatten

    flat = flatten(graph)
    port = {n for n, f in flat.nodes.items() if f.role == "port"}
    succ: dict[str, list] = {}
    for a, b in flat.edges:
        succ.setdefault(a, []).append(b)

    def ends(n, seen=()):
        if n not in port:
            return [n]
        out = []
        for m in succ.get(n, []):
            if m not in seen:
                out += ends(m, seen + (n,))
        return out

    edges = []
    for a, b in flat.edges:
        if a in port:
            continue
        for e in ends(b):
            if (a, e) not in edges:
                edges.append((a, e))
    nodes = {n: f.node for n, f in flat.nodes.items() if n not in port}
    return nodes, edges, flat.inputs, flat.outputs


def _size(node) -> int:
    if isinstance(node, _WEIGHTS):
        return int(np.shape(node.weight)[0])
    return int(np.size(node.tau_mem))


def network_from_nir(graph, dt: float) -> tuple[XyloFloatNetwork | None, list]:
    """The Xylo float network of a NIR graph, and every violation of Xylo's shape.

    Args:
        graph: a ``nir.NIRGraph``.
        dt: the chip's time step (s).

    Returns:
        ``(network, violations)``; ``network`` is ``None`` when an error-level violation
        makes the shape unusable. Warnings (e.g. gains Rockpool ignores) come with a network.
    """
    nodes, edges, inputs, outputs = _flat(graph)
    v: list[Violation] = []
    src: dict[str, list] = {n: [] for n in nodes}
    dst: dict[str, list] = {n: [] for n in nodes}
    for a, b in edges:
        dst[a].append(b)
        src[b].append(a)
    is_w = lambda n: isinstance(nodes[n], _WEIGHTS)  # noqa: E731
    is_neuron = lambda n: isinstance(nodes[n], nir.CubaLIF)  # noqa: E731
    for name, node in nodes.items():
        if name in inputs or name in outputs or is_w(name) or is_neuron(name):
            continue
        kind = type(node).__name__
        why = ("Xylo's neurons always integrate through a synaptic current (CubaLIF); a LIF "
               "has none" if isinstance(node, nir.LIF) else
               "Xylo runs Linear/Affine weights and CubaLIF neurons only")
        v.append(Violation(name, "node_type", "Linear, Affine, CubaLIF", kind,
                           f"{kind} is not supported: {why}"))
    if len(inputs) != 1 or len(outputs) != 1:
        v.append(Violation("graph", "one_input_one_output", 1, (len(inputs), len(outputs)),
                           f"{len(inputs)} Input and {len(outputs)} Output nodes; Xylo has one "
                           f"input and one readout"))
    if any(x.severity == "error" for x in v):
        return None, v
    inp, out = inputs[0], outputs[0]
    for w in [n for n in nodes if is_w(n)]:
        for s in src[w]:
            if not (s == inp or is_neuron(s)):
                v.append(Violation(w, "no_consecutive_weights", "a neuron or the input",
                                   s, f"receives from {s!r}, which is not a neuron or the "
                                   f"input: Xylo applies one weight matrix between neurons"))
        for d in dst[w]:
            if not is_neuron(d):
                v.append(Violation(w, "weights_into_neurons", "a neuron", d,
                                   f"feeds {d!r}, which is not a neuron"))
        bias = getattr(nodes[w], "bias", None)
        if bias is not None and np.any(np.asarray(bias) != 0):
            v.append(Violation(
                w, "affine_bias", "no bias", f"|bias| up to {float(np.max(np.abs(bias))):.4g}",
                "Affine bias: Xylo's weights cannot carry a bias (a constant input current); "
                "Rockpool drops it with a DRCWarning. Fold it into the neurons' v_leak or use "
                "a Linear"))
    for n in [n for n in nodes if is_neuron(n)]:
        for s in src[n]:
            if not is_w(s):
                v.append(Violation(n, "neuron_inputs_are_weights", "weight nodes", s,
                                   f"receives from {s!r} directly; every neuron input on Xylo "
                                   f"goes through a weight matrix"))
    for d in dst[inp]:
        if not is_w(d):
            v.append(Violation(inp, "input_through_weights", "a weight node", d,
                               f"feeds {d!r} directly; the input must go first through a "
                               f"weight matrix"))
    readouts = [s for s in src[out] if is_neuron(s)]
    for s in src[out]:
        if not is_neuron(s):
            v.append(Violation(out, "output_from_neurons", "a neuron", s,
                               f"receives from {s!r}; the network output must be the readout "
                               f"neurons"))
    if len(readouts) != 1:
        v.append(Violation(out, "one_readout", 1, len(readouts),
                           f"receives from {len(readouts)} neuron nodes; Xylo has one readout "
                           f"population"))
    neurons = [n for n in nodes if is_neuron(n)]
    if len(neurons) < 2:
        v.append(Violation("graph", "two_neuron_layers", 2, len(neurons),
                           f"{len(neurons)} neuron node(s); Xylo needs a hidden and a readout "
                           f"layer"))
    in_weights = [d for d in dst[inp] if is_w(d)]
    if len(in_weights) != 1:
        v.append(Violation(inp, "one_input_weight", 1, len(in_weights),
                           f"feeds {len(in_weights)} weight nodes; Xylo has one input weight "
                           f"matrix onto the input-expansion neurons"))
    if any(x.severity == "error" for x in v):
        return None, v
    readout = readouts[0]
    w_in_name = in_weights[0]
    for d in dst[readout]:
        if d != out:
            v.append(Violation(readout, "readout_not_recurrent", "no outgoing weights", d,
                               f"feeds {d!r}; readout neurons cannot feed back on Xylo"))
    ien = dst[w_in_name]
    if len(ien) != 1 or ien[0] == readout:
        v.append(Violation(w_in_name, "input_to_hidden", "one hidden node", ien,
                           f"feeds {ien}; the input weights must target one hidden neuron node"))
    hidden_nodes = [n for n in neurons if n != readout]
    for h in hidden_nodes:
        if out in dst[h]:
            v.append(Violation(h, "output_from_neurons", readout, h,
                               "a hidden node feeds the Output; only the readout may"))
    if any(x.severity == "error" for x in v):
        return None, v
    out_weights = [s for s in src[readout]]
    oen_nodes = []
    for w in out_weights:
        for s in src[w]:
            if s == inp:
                v.append(Violation(w, "readout_from_hidden", "hidden neurons", s,
                                   "the readout weights take the input directly; Xylo's "
                                   "readout reads hidden neurons only"))
            elif s not in oen_nodes:
                oen_nodes.append(s)
    first = ien[0]
    order = [first] + [h for h in hidden_nodes if h != first and h not in oen_nodes] \
        + [h for h in oen_nodes if h != first]
    start, ranges = 0, {}
    for h in order:
        ranges[h] = (start, start + _size(nodes[h]))
        start += _size(nodes[h])
    n_hid = start
    n_in = int(np.prod(np.asarray(nodes[inp].input_type["input"]).astype(int)))
    n_out = _size(nodes[readout])
    w_in_node = nodes[w_in_name]
    lo, hi = ranges[first]
    weight = np.asarray(w_in_node.weight, np.float64)
    if weight.shape != (hi - lo, n_in):
        v.append(Violation(w_in_name, "shape", (hi - lo, n_in), weight.shape,
                           f"weight shape {weight.shape}, expected {(hi - lo, n_in)}"))
        return None, v
    w_in = weight.T[:, :, None]
    w_rec = np.zeros((n_hid, n_hid, 1))
    oen_start = min([ranges[h][0] for h in oen_nodes], default=n_hid)
    w_out = np.zeros((n_hid - oen_start, n_out))
    rec_names = []
    for w in [n for n in nodes if is_w(n) and n != w_in_name]:
        weight = np.asarray(nodes[w].weight, np.float64)
        for s in src[w]:
            if s == inp:
                continue
            for d in dst[w]:
                slo, shi = ranges[s]
                if d == readout:
                    w_out[slo - oen_start:shi - oen_start] += weight.T
                else:
                    dlo, dhi = ranges[d]
                    w_rec[slo:shi, dlo:dhi, 0] += weight.T
                    if w not in rec_names:
                        rec_names.append(w)

    def per_neuron(node, field):
        return np.broadcast_to(np.asarray(getattr(node, field), np.float64), (_size(node),))

    cat = lambda field: np.concatenate([per_neuron(nodes[h], field) for h in order])  # noqa: E731
    for h in order + [readout]:
        node = nodes[h]
        g_mem = per_neuron(node, "r") * dt / per_neuron(node, "tau_mem")
        g_syn = per_neuron(node, "w_in") * dt / per_neuron(node, "tau_syn")
        worst = max(float(np.max(np.abs(g_mem - 1))), float(np.max(np.abs(g_syn - 1))))
        if worst > 1e-3:
            v.append(Violation(
                h, "unit_gains", 1.0, (float(np.median(g_mem)), float(np.median(g_syn))),
                f"r*dt/tau_mem = {float(np.median(g_mem)):.4g} and w_in*dt/tau_syn = "
                f"{float(np.median(g_syn)):.4g} (median); the chip integrates with gain 1 "
                f"(Rockpool's importer ignores r and w_in), so its input and membrane gains "
                f"differ from the graph's by up to {100 * worst:.3g}%", "warning"))
    names = XyloNames(input=inp, weights_in=w_in_name,
                      hidden=tuple((h, *ranges[h]) for h in order),
                      weights_rec=tuple(rec_names) or ("weights_rec",),
                      weights_out=tuple(out_weights), readout=readout)
    try:
        net = XyloFloatNetwork(
            w_in=w_in, w_rec=w_rec, w_out=w_out, tau_mem=cat("tau_mem"),
            tau_syn=cat("tau_syn")[:, None], threshold=cat("v_threshold"), bias=cat("v_leak"),
            tau_mem_out=per_neuron(nodes[readout], "tau_mem"),
            tau_syn_out=per_neuron(nodes[readout], "tau_syn"),
            threshold_out=per_neuron(nodes[readout], "v_threshold"),
            bias_out=per_neuron(nodes[readout], "v_leak"), dt=dt, names=names)
    except NirjaxError as e:
        v.append(Violation("graph", "parameters", "valid parameters", None, str(e)))
        return None, v
    return net, v


def lower_nir(graph, target, dt: float, *, method: str = "global", fuzzy_scaling: bool = False,
              compat: str = "rockpool") -> XyloSpec:
    """Map and quantize a NIR graph for a Xylo target, checking every design rule.

    Args:
        graph: a ``nir.NIRGraph`` of Xylo's shape (module docstring).
        target: ``"xylo-audio2"``, ``"xylo-audio3"`` or ``"xylo-imu"``.
        dt: the chip's time step (s).
        method, fuzzy_scaling, compat: see
            :func:`~nirjax.lowering.xylo_quantize.quantize_network`.

    Returns:
        The :class:`~nirjax.lowering.xylo_quantize.XyloSpec`.

    Raises:
        XyloLoweringError: listing every violation (graph shape and chip limits together).
    """
    target = get_target(target)
    net, violations = network_from_nir(graph, dt)
    if net is None:
        require_valid(violations, target)
        raise XyloLoweringError("the graph does not have Xylo's shape")  # unreachable
    spec = quantize_network(net, target, method=method, fuzzy_scaling=fuzzy_scaling,
                            compat=compat)
    require_valid(violations + check_design_rules(spec), target)
    return spec
