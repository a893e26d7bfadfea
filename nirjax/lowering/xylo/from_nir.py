"""Read a Xylo-shaped network out of a compiled graph's Program (or a NIR graph).

The shape Xylo runs: ``Input -> Linear/Affine -> CubaLIF`` (hidden; more hidden CubaLIF
nodes may follow through weight nodes, and weight nodes may close cycles among them) ``->
Linear/Affine -> CubaLIF`` (the readout) ``-> Output``. :func:`network_from_program`
checks that shape (every violation at once, as :class:`~nirjax.lowering.Violation`
records) and builds the :class:`~nirjax.lowering.xylo.quantize.XyloFloatNetwork`;
:func:`lower_nir` adds quantization and the chip's design rules and raises one
:class:`~nirjax.LoweringError` listing everything that fails (``nirjax.lower(graph,
"xylo-audio2", dt)`` is the public route; :mod:`nirjax.lowering.xylo`).

Parameters. A CubaLIF's ``tau_mem``, ``tau_syn``, ``v_threshold`` become the neuron's time
constants and threshold (as Rockpool 3.1.0's NIR importer, ``rockpool/nn/modules/torch/
nir.py``, does). The chip integrates ``i += W x`` and ``v += i + bias`` with unit gains,
whereas the float model's gains depend on its semantics: the NIR spec's Euler update adds
``g_s = w_in*dt/tau_syn`` times the input to the current, ``g_m = r*dt/tau_mem`` times the
current and ``(dt/tau_mem)*v_leak`` to the membrane per step. Both are linear in the state,
so they fold exactly into the threshold (``gains="fold"``, the default): in units of
``v / S`` with ``S = g_s*g_m`` the update has unit gains, the threshold is
``v_threshold/S`` and the bias ``(dt/tau_mem)*v_leak/S`` (the semantics' ``ignore``
replaces ``r``, ``w_in`` or ``v_leak`` by their neutral values; a float model with
``form="decay"`` and ``input_gain="unit"``, such as the ``rockpool`` profile, has ``S =
1`` and the bias ``v_leak``; ``input_gain="input"`` has ``g_m = 1``). ``gains="ignore"``
takes ``v_threshold`` and ``bias = v_leak`` as they are, as Rockpool's importer does, with
a warning when ``S`` differs from 1 (it is 1 for the NIR paper's Braille graph at ``dt =
1e-4``, where both choices give Rockpool's configuration).

The chip resets by subtracting the threshold and fires up to 31 spikes per hidden neuron
per step; a nonzero ``v_reset`` is not representable (a warning when the float model
resets to it).

Hidden neurons are numbered as Rockpool's mappers do: the target of the input weights first
(input-expansion neurons), the sources of the readout weights last (output-expansion
neurons), every other hidden node in between in graph order.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ...errors import LoweringError, NirjaxError
from ..violations import Violation
from .quantize import XyloFloatNetwork, XyloNames, XyloSpec, get_target, quantize_network
from .rules import check_design_rules, require_valid

__all__ = ["GraphNode", "network_from_program", "network_from_nodes", "lower_nir", "GAINS"]

_WEIGHTS = ("Linear", "Affine")
GAINS = ("fold", "ignore")


class GraphNode(NamedTuple):
    """One node as the Xylo reader sees it.

    Attributes:
        name: the node's (flat) name.
        type_name: its NIR type.
        params: its parameters (NamedTuple with NIR field names, NumPy) or ``None``.
        out_shape: its unbatched output shape.
        semantics: the float model's :class:`~nirjax.Semantics` for the node (decides the
            gains, see the module docstring), or ``None`` for the NIR spec.
    """

    name: str
    type_name: str
    params: Any
    out_shape: tuple
    semantics: Any = None


def _size(node: GraphNode) -> int:
    if node.type_name in _WEIGHTS:
        return int(np.shape(node.params.weight)[0])
    return int(np.size(node.params.tau_mem))


def _per_neuron(node: GraphNode, field):
    return np.broadcast_to(np.asarray(getattr(node.params, field), np.float64), (_size(node),))


def neuron_units(node: GraphNode, dt: float, gains: str = "fold"):
    """``(threshold, bias, S, violations)`` of a CubaLIF node in the chip's units.

    ``S`` is the factor that the float model's gains multiply the chip's state by (module
    docstring); ``threshold = v_threshold / S`` and ``bias`` the per-step membrane bias.

    >>> import numpy as np
    >>> from nirjax.kernels.neurons import CubaLIFParams
    >>> one = np.ones(2)
    >>> p = CubaLIFParams(tau_syn=0.4e-3 * one, tau_mem=0.8e-3 * one, r=2 * one,
    ...                   v_leak=0 * one, v_threshold=one, v_reset=0 * one, w_in=one)
    >>> th, bias, s, _ = neuron_units(GraphNode("lif", "CubaLIF", p, (2,)), 1e-4)
    >>> s.tolist(), th.tolist()   # S = (1*0.25) * (2*0.125)
    ([0.0625, 0.0625], [16.0, 16.0])
    """
    sem = node.semantics
    ignore = tuple(getattr(sem, "ignore", ()) or ())
    tau_syn, tau_mem = _per_neuron(node, "tau_syn"), _per_neuron(node, "tau_mem")
    one = np.ones_like(tau_mem)
    r = one if "r" in ignore else _per_neuron(node, "r")
    w_in = one if "w_in" in ignore else _per_neuron(node, "w_in")
    v_leak = 0 * one if "v_leak" in ignore else _per_neuron(node, "v_leak")
    v_th = _per_neuron(node, "v_threshold")
    g_s, g_m = w_in * dt / tau_syn, r * dt / tau_mem
    form = getattr(sem, "form", "nir")
    input_gain = getattr(sem, "input_gain", "nir")
    violations = []
    if form == "decay" and input_gain == "unit":
        s, bias = one, v_leak
    elif form == "decay" and input_gain == "input":
        s, bias = g_s, (dt / tau_mem) * v_leak / g_s
    else:  # the spec's Euler gains ('nir', 'norse' and 'decay' with 'nir' or 'threshold')
        s = g_s * g_m
        if form == "decay" and input_gain == "threshold" and np.all(np.abs(s - 1) <= 1e-8 + 1e-5):
            s = one  # the semantics' own rule: no rescaling within 1e-5 of 1
        bias = (dt / tau_mem) * v_leak / s
    if gains == "ignore":
        worst = float(np.max(np.abs(s - 1)))
        if worst > 1e-3:
            violations.append(Violation(
                node.name, "unit_gains", 1.0, float(np.median(s)),
                f"the float model scales the membrane by S = (w_in*dt/tau_syn)*(r*dt/tau_mem) = "
                f"{float(np.median(s)):.4g} (median) and the chip by 1; gains='ignore' keeps "
                f"v_threshold as it is (as Rockpool's importer does), so the chip's threshold is "
                f"{float(np.median(s)):.4g} times the float model's in the same units (up to "
                f"{100 * worst:.3g}% off); gains='fold' folds S into the threshold exactly",
                "warning"))
        s, bias = one, _per_neuron(node, "v_leak")
    reset = getattr(sem, "reset", "v_reset")
    v_reset = _per_neuron(node, "v_reset") if hasattr(node.params, "v_reset") else 0 * one
    if reset == "v_reset" and "v_reset" not in ignore and np.any(v_reset != 0):
        violations.append(Violation(
            node.name, "v_reset", 0.0, float(np.max(np.abs(v_reset))),
            f"the float model resets to v_reset (|v_reset| up to "
            f"{float(np.max(np.abs(v_reset))):.4g}); Xylo subtracts the threshold on a spike "
            f"and cannot reset to another value", "warning"))
    return v_th / s, bias, s, violations


def program_nodes(program, params: dict) -> tuple[dict, list, tuple, tuple]:
    """``(nodes, edges, inputs, outputs)`` of a Program as :class:`GraphNode` records.

    ``params`` (node name -> NamedTuple) override the program's parameters; ports of nested
    graphs are collapsed.
    """
    from ..core import collapse_ports

    irnodes, edges = collapse_ports(program)
    nodes = {name: GraphNode(name, n.type_name, params.get(name, n.params), n.out_shape,
                             n.semantics) for name, n in irnodes.items()}
    return nodes, edges, tuple(program.inputs), tuple(program.outputs)


def network_from_nodes(nodes: dict, edges: list, inputs, outputs, dt: float,
                       gains: str = "fold") -> tuple[XyloFloatNetwork | None, list]:
    """The Xylo float network of a flat graph, and every violation of Xylo's shape.

    Args:
        nodes: name -> :class:`GraphNode` (Input, Output and op nodes; no ports).
        edges: ``(src, dst)`` pairs.
        inputs / outputs: the Input / Output node names.
        dt: the chip's time step (s).
        gains: ``"fold"`` or ``"ignore"`` (module docstring).

    Returns:
        ``(network, violations)``; ``network`` is ``None`` when an error-level violation
        makes the shape unusable. Warnings (approximations) come with a network.
    """
    if gains not in GAINS:
        raise LoweringError(f"unknown gains {gains!r}; expected 'fold' (fold the float "
                            f"model's gains into the thresholds, exact) or 'ignore' (take "
                            f"v_threshold as it is, as Rockpool's importer does)")
    v: list[Violation] = []
    src: dict[str, list] = {n: [] for n in nodes}
    dst: dict[str, list] = {n: [] for n in nodes}
    for a, b in edges:
        dst[a].append(b)
        src[b].append(a)
    is_w = lambda n: nodes[n].type_name in _WEIGHTS  # noqa: E731
    is_neuron = lambda n: nodes[n].type_name == "CubaLIF"  # noqa: E731
    for name, node in nodes.items():
        if name in inputs or name in outputs or is_w(name) or is_neuron(name):
            continue
        kind = node.type_name
        why = ("Xylo's neurons always integrate through a synaptic current (CubaLIF); a LIF "
               "has none" if kind == "LIF" else
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
        bias = getattr(nodes[w].params, "bias", None)
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
    out_weights = list(src[readout])
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
    n_in = int(np.prod(nodes[inp].out_shape))
    n_out = _size(nodes[readout])
    lo, hi = ranges[first]
    weight = np.asarray(nodes[w_in_name].params.weight, np.float64)
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
        weight = np.asarray(nodes[w].params.weight, np.float64)
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

    units = {}
    for h in order + [readout]:
        th, bias, _, extra = neuron_units(nodes[h], dt, gains)
        units[h] = (th, bias)
        v.extend(extra)
    cat = lambda k: np.concatenate([units[h][k] for h in order])  # noqa: E731
    cat_p = lambda f: np.concatenate([_per_neuron(nodes[h], f) for h in order])  # noqa: E731
    names = XyloNames(input=inp, weights_in=w_in_name,
                      hidden=tuple((h, *ranges[h]) for h in order),
                      weights_rec=tuple(rec_names) or ("weights_rec",),
                      weights_out=tuple(out_weights), readout=readout)
    try:
        net = XyloFloatNetwork(
            w_in=w_in, w_rec=w_rec, w_out=w_out, tau_mem=cat_p("tau_mem"),
            tau_syn=cat_p("tau_syn")[:, None], threshold=cat(0), bias=cat(1),
            tau_mem_out=_per_neuron(nodes[readout], "tau_mem"),
            tau_syn_out=_per_neuron(nodes[readout], "tau_syn"),
            threshold_out=units[readout][0], bias_out=units[readout][1], dt=dt, names=names)
    except NirjaxError as e:
        v.append(Violation("graph", "parameters", "valid parameters", None, str(e)))
        return None, v
    return net, v


def network_from_program(program, params: dict | None = None,
                         gains: str = "fold") -> tuple[XyloFloatNetwork | None, list]:
    """:func:`network_from_nodes` of a float Program (``params`` override its own)."""
    nodes, edges, inputs, outputs = program_nodes(program, dict(params or {}))
    return network_from_nodes(nodes, edges, inputs, outputs, program.dt, gains)


def network_from_nir(graph, dt: float, gains: str = "ignore"):
    """:func:`network_from_program` of a NIR graph read under the NIR spec; by default with
    Rockpool's importer's gains (``gains="ignore"``)."""
    from ...compiler import build_program
    from ...semantics import Semantics

    program = build_program(graph, dt, Semantics(), table="float")
    return network_from_program(program, None, gains)


def lower_nir(graph, target, dt: float, *, method: str = "global", fuzzy_scaling: bool = False,
              compat: str = "rockpool", gains: str = "ignore") -> XyloSpec:
    """Map and quantize a NIR graph for a Xylo target, checking every design rule.

    ``nirjax.lower(graph, target, dt)`` is the public route (it also builds the integer
    simulation); this returns only the :class:`~nirjax.lowering.xylo.quantize.XyloSpec`.

    Args:
        graph: a ``nir.NIRGraph`` of Xylo's shape (module docstring).
        target: ``"xylo-audio2"``, ``"xylo-audio3"`` or ``"xylo-imu"``.
        dt: the chip's time step (s).
        method, fuzzy_scaling, compat: see
            :func:`~nirjax.lowering.xylo.quantize.quantize_network`.
        gains: ``"ignore"`` (Rockpool's importer, the default here) or ``"fold"``.

    Returns:
        The :class:`~nirjax.lowering.xylo.quantize.XyloSpec`.

    Raises:
        LoweringError: listing every violation (graph shape and chip limits together).

    Warns:
        LoweringWarning: each approximation.
    """
    target = get_target(target)
    net, violations = network_from_nir(graph, dt, gains)
    if net is None:
        require_valid(violations, target)
    spec = quantize_network(net, target, method=method, fuzzy_scaling=fuzzy_scaling,
                            compat=compat)
    require_valid(violations + check_design_rules(spec), target)
    return spec
