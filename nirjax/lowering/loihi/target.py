"""The Loihi 2 target: ``"loihi2"`` (Intel Loihi 2 through Lava 0.10 fixed point and lava-dl netx).

``nirjax.lower(graph, "loihi2", dt=1e-3)`` runs these passes over the graph's float
:class:`~nirjax.compiler.Program`:

1. **Shape and design rules** (:func:`~nirjax.lowering.loihi.quantize.layers_from_program`,
   :func:`~nirjax.lowering.loihi.quantize.quantize`): the graph must be a netx chain ``Input
   -> [Delay] -> Affine/Linear/Conv2d -> [Delay] -> LIF/CubaLIF/IF -> ... -> Output`` (Flatten
   between a conv and a dense layer, an optional self-recurrent Affine/Linear per layer, a
   neuron fed straight from the input or the previous layer gets a dense synapse of its
   own). Every violation of the chain, of Loihi's parameter ranges and of the chip's size
   comes in ONE :class:`~nirjax.LoweringError` (``violations``: node, rule, limit, value).
2. **Quantization**: CUBA neurons in Lava's fixed point (``iDecay``, ``vDecay``,
   ``vThMant``, 13-bit bias), 8-bit weights packed as netx packs them (option ``scale``:
   ``"auto"`` uses each layer's full weight range, ``"paper"`` is the NIR paper importer's
   fixed-point LIF mapping); every rounding and its error is in :meth:`Lowered.report`.
3. **Integer program**: the same nodes under the same names, bound to the ``"loihi"`` rule
   table (:mod:`nirjax.rules.loihi`: :mod:`nirjax.kernels.loihi`'s dense/conv synapse and
   CUBA neuron) with the netx integers; Lava's one step of synaptic latency per weight layer
   is the ``latency="weights"`` graph pass of the ``lava`` profiles
   (:func:`nirjax.compiler.passes.graph_pass`: a one-step Delay after every weight node), so
   a NIR delay of ``d`` steps reaches the neuron after ``d + 1`` steps, as netx's synaptic
   delays do. The program runs in :class:`~nirjax.compiler.CompiledGraph` (jitted, batched,
   one scan) and equals Lava's ``Loihi2SimCfg(select_tag="fixed_pt")`` run of the exported
   file at every step, every layer (``tests/test_loihi_lowering_vendor.py``).

Export: the lava-dl netx HDF5 file (:func:`~nirjax.lowering.loihi.netx.write_netx`) that
``lava.lib.dl.netx.hdf5.Network(net_config=path)`` loads. ``to_nir()``: the quantized network
as NIR (:func:`loihi_to_nir`). Inputs are binary spikes (0 or 1 per element and step: netx's
input synapse counts any nonzero value as one spike). ``run(record=[...])`` takes the graph's
node names: a neuron node gives its spikes, ``(name, "u")`` / ``(name, "v")`` its integer
current and voltage (Lava's units: ``v > vThMant << 6`` spikes); a weight node its synaptic
sum before the latency; a subgraph holding one neuron node stands for it.
"""

from __future__ import annotations

import nir
import numpy as np

from ...compiler.passes import graph_pass
from ...errors import LoweringError
from ...graph.flat import FlatGraph, FlatNode
from ...rules.loihi import LOIHI, ConvWeight, NetxConvConfig, NetxDenseConfig, NetxNeuronConfig
from ...semantics import Semantics
from . import quantize as Q
from ..core import (LoweringResult, NodeSpec, collapse_ports, make_program, register_target,
                   resource)
from .netx import netx_dense_params, neuron_params, write_netx
from ..violations import DesignRuleError, MappingRecord, QuantizationRecord

__all__ = ["lower_loihi2", "loihi_to_nir", "OPTIONS", "INPUT_RANGE"]

#: Input spikes per element and step (netx's input synapse: any nonzero value is one spike).
INPUT_RANGE = (0, 1)

OPTIONS = {
    "scale": "'auto' (default: per layer the largest vThMant that keeps the weights in netx's "
             "8-bit range, rounding to nearest) or 'paper' (the NIR paper importer's "
             "fixed-point LIF mapping: int(256 dt/tau W), int(4095 dt/tau), "
             "int(131071 theta) >> 9; LIF only)",
}

_LATENCY = Semantics(latency="weights")


def _structure(program):
    """The program to read the chain from: without the Delay nodes a profile's graph pass
    inserts (the chip's latency is added here, once)."""
    sem = program.semantics
    if sem.latency == "none" and sem.cycle_break == "dfs" and sem.recurrent_bias == "keep":
        return program
    from ...compiler import build_program

    return build_program(program.graph, program.dt, Semantics(), table="float")


def _unique(name, taken):
    out, k = name, 2
    while out in taken:
        out, k = f"{name}#{k}", k + 1
    return out


def _chain_graph(structure, layers):
    """The flat graph of the netx chain, before latency: the structure's nodes (ports
    collapsed) and a dense synapse ``"<neuron>.synapse"`` in front of every neuron fed without
    a weight node. Returns ``(flat, inserted)`` (``inserted``: neuron -> synapse name)."""
    nodes, edges = collapse_ports(structure)
    flat_nodes = {name: FlatNode(name, n.path, n.source, n.role) for name, n in nodes.items()}
    inserted = {}
    for layer in layers:
        if layer.weight_node is not None:
            continue
        ff = [(s, d) for s, d in edges if d == layer.name and s != layer.rec_node]
        if len(ff) != 1:  # the chain reader refused it already
            raise LoweringError(f"node {layer.name!r}: expected one feed-forward input, found "
                                f"{len(ff)}")
        (src, dst), = ff
        name = _unique(f"{layer.name}.synapse", set(flat_nodes))
        flat_nodes[name] = FlatNode(name, (name,), nir.Linear(weight=np.asarray(layer.weight)),
                                    "op")
        edges = [e for e in edges if e != (src, dst)] + [(src, name), (name, dst)]
        inserted[layer.name] = name
    flat = FlatGraph(flat_nodes, list(edges), list(structure.inputs), list(structure.outputs),
                     dict(structure.subgraphs))
    return flat, inserted


def _node_specs(structure, flat, latency_flat, net, layers, inserted):
    """NodeSpecs of the integer program (the chain plus the latency Delays)."""
    originals = {n.name: n for n in structure.nodes}
    dt = float(structure.dt)
    specs = {}
    by_weight = {}
    for q, fl in zip(net.layers, layers):
        by_weight[fl.weight_node or inserted[fl.name]] = q
        specs[fl.name] = NodeSpec(fl.name, fl.neuron, tuple(originals[fl.name].in_shape),
                                  tuple(q.shape), neuron_params(q),
                                  NetxNeuronConfig(tuple(q.shape)), "op")
    out_shape = {n: tuple(originals[n].out_shape) for n in originals}
    for w, q in by_weight.items():
        if q.kind == "conv":
            n = originals[w]
            specs[w] = NodeSpec(w, "Conv2d", tuple(n.in_shape), tuple(n.out_shape),
                                ConvWeight(q.weight.astype(np.int32)),
                                NetxConvConfig(tuple(q.conv["stride"]), tuple(q.conv["padding"]),
                                               tuple(q.conv["dilation"]), int(q.conv["groups"])),
                                "op")
            continue
        dense, rec = netx_dense_params(q.weight, q.weight_rec)
        n_out = tuple(originals[q.name].in_shape)
        if w in originals:
            type_name, in_shape = originals[w].type_name, tuple(originals[w].in_shape)
            n_out = tuple(originals[w].out_shape)
        else:  # the synapse added in front of a neuron: it reads what the neuron read
            src = [s for s, d in latency_flat.edges if d == w][0]
            type_name, in_shape = "Linear", out_shape[src]
        specs[w] = NodeSpec(w, type_name, in_shape, n_out, dense,
                            NetxDenseConfig(in_shape, n_out), "op",
                            source=flat.nodes[w].node)
        if q.weight_rec is not None:
            r = q.nodes["rec"]
            specs[r] = NodeSpec(r, originals[r].type_name, tuple(q.shape), n_out, rec,
                                NetxDenseConfig(tuple(q.shape), n_out), "op")
    delay_rule = LOIHI["Delay"]
    for name, fn in latency_flat.nodes.items():
        if name in specs:
            continue
        if name in originals:  # Input, Output, Flatten and the graph's own Delay nodes
            n = originals[name]
            role = n.role if n.role in ("input", "output") else "op"
            specs[name] = NodeSpec(name, n.type_name, tuple(n.in_shape), tuple(n.out_shape),
                                   None, n.config, role)
            continue
        # a latency Delay of the graph pass, one step on the weight node's output
        src = [s for s, d in latency_flat.edges if d == name][0]
        shape = specs[src].out_shape
        cfg = delay_rule.config(name, fn.node, shape, shape, _LATENCY, dt, {})
        specs[name] = NodeSpec(name, "Delay", shape, shape, None, cfg, "op", source=fn.node)
    return [specs[name] for name in latency_flat.nodes]


def _aliases(names, neurons) -> dict:
    """Subgraph prefixes holding exactly one neuron node (e.g. ``"lif1"`` for ``"lif1.lif"``)."""
    counts: dict = {}
    for n in neurons:
        parts = n.split(".")
        for k in range(1, len(parts)):
            counts.setdefault(".".join(parts[:k]), []).append(n)
    return {p: (m[0], None) for p, m in counts.items() if len(m) == 1 and p not in names}


def _records(net: Q.LoihiNetwork) -> list:
    out = []
    for r in net.roundings:
        out.append(QuantizationRecord(r.node, r.quantity, r.scale, abs(r.exact), r.error,
                                      r.relative, 0, r.note))
    return out


def _netx_indices(net) -> list:
    """The netx layer index of each quantized layer (layer 0 is the input, flatten layers
    count)."""
    out, i = [], 1
    for q in net.layers:
        i += int(q.flatten_before)
        out.append(i)
        i += 1
    return out


def _mapping(structure, net, layers, inserted, program) -> list:
    records = []
    index = _netx_indices(net)
    inp = structure.inputs[0]
    records.append(MappingRecord(inp, "Input", f"netx layer 0 (input {tuple(net.input_shape)}): "
                                 f"binary spikes, any nonzero value is one spike", inp))
    res = Q.resources(net.layers)["layers"]
    for i, q, fl in zip(index, net.layers, layers):
        w = fl.weight_node or inserted[fl.name]
        syn = netx_dense_params(q.weight, q.weight_rec)[0] if q.kind != "conv" else None
        detail = (f"8-bit weights, weight_exp {int(syn.weight_exp)}" if syn is not None else
                  f"integer kernel {tuple(q.weight.shape)}")
        origin = "" if fl.weight_node else " (added: the neuron had no weight node)"
        records.append(MappingRecord(w, program.node(w).type_name,
                                     f"netx layer {i} '{q.kind}' synapse{origin}: {detail}; "
                                     f"one step of latency", w))
        if fl.rec_node:
            records.append(MappingRecord(fl.rec_node, program.node(fl.rec_node).type_name,
                                         f"netx layer {i} recurrent weights (weight_rec), one "
                                         f"step of latency", fl.rec_node))
        for d in fl.delay_nodes:
            records.append(MappingRecord(d, "Delay", f"netx layer {i} synaptic delays (up to "
                                         f"{q.max_delay} steps, netx 'delay')", d))
        records.append(MappingRecord(
            fl.name, fl.neuron, f"netx layer {i} CUBA neurons {tuple(q.shape)}: iDecay "
            f"{q.i_decay}, vDecay {q.v_decay}, vThMant {q.v_th}"
            + (", bias" if q.bias is not None else "")
            + f"; about {res[q.name]['cores']} core(s) (estimate)", fl.name))
    for n in structure.nodes:
        if n.type_name == "Flatten":
            records.append(MappingRecord(n.name, "Flatten", "netx 'flatten' layer", n.name))
    out = structure.outputs[0]
    records.append(MappingRecord(out, "Output", f"the spikes of the last layer "
                                 f"{net.layers[-1].name!r}", out))
    return records


def _resources(net, layers, inserted) -> dict:
    r = Q.resources(net.layers)
    lim = r["limit"]
    out = {}
    for q, fl in zip(net.layers, layers):
        per = r["layers"][q.name]
        out[q.name] = {"neurons": resource(per["neurons"], lim["neurons"]),
                       "memory words": resource(per["memory words"], lim["memory words"]),
                       "cores": resource(per["cores"], lim["cores"])}
        w = fl.weight_node or inserted[fl.name]
        if q.kind == "conv":
            ff = per["synapses"]
        else:
            ff = int(np.count_nonzero(q.weight))
        out[w] = {"synapses": resource(ff, lim["synapses"])}
        if fl.rec_node is not None:
            out[fl.rec_node] = {"synapses": resource(int(np.count_nonzero(q.weight_rec)),
                                                     lim["synapses"])}
    t = r["total"]
    out["total"] = {"neurons": resource(t["neurons"], lim["neurons"]),
                    "synapses": resource(t["synapses"], lim["synapses"]),
                    "memory words": resource(t["memory words"], lim["memory words"]),
                    "cores": resource(t["cores"], lim["cores"])}
    return out


def lower_loihi2(program, params: dict, options: dict) -> LoweringResult:
    """Lower a float Program to Loihi 2 (the target's ``lower_fn``; see the module docstring).

    Args:
        program: the graph's float Program.
        params: node name -> float parameters (NIR field names).
        options: ``scale`` (:data:`OPTIONS`).

    Returns:
        The :class:`~nirjax.lowering.LoweringResult` (``details``: the
        :class:`~nirjax.lowering.loihi.quantize.LoihiNetwork` written to the netx file).

    Raises:
        LoweringError: every violation of the chain's shape, of Loihi's ranges and of the
            chip's size, at once.
    """
    scale = options.get("scale", "auto")
    structure = _structure(program)
    input_shape, layers, structural = Q.layers_from_program(structure, params)
    try:
        net = Q.quantize(layers, float(structure.dt), input_shape=input_shape, scale=scale)
        found = []
    except DesignRuleError as e:
        net, found = None, list(e.violations)
    errors = [v for v in structural if v.severity == "error"] + found
    if errors:
        raise DesignRuleError(Q.TARGET, errors)

    flat, inserted = _chain_graph(structure, layers)
    latency_flat, _ = graph_pass(flat, _LATENCY, float(structure.dt))
    specs = _node_specs(structure, flat, latency_flat, net, layers, inserted)
    integer = make_program(structure, LOIHI, specs, latency_flat.edges,
                           list(structure.inputs), list(structure.outputs))

    neurons = [fl.name for fl in layers]
    program_names = {n.name for n in integer.nodes}
    record_names = {n.name: (n.name, None) for n in structure.nodes if n.name in program_names}
    record_names.update(_aliases(program_names, neurons))
    latency = {fl.name: k + 1 for k, fl in enumerate(layers)}
    latency[structure.outputs[0]] = len(layers)
    cuba = [fl.name for fl in layers if fl.neuron == "CubaLIF"]
    notes = [f"Loihi 2 through Lava 0.10 fixed point and lava-dl 0.6 netx; scale={net.scale!r}"
             + (" (per layer the largest vThMant that keeps the weights in 8 bits; per-neuron "
                "thresholds become per-row weight scales)" if net.scale == "auto" else
                " (the NIR paper importer's fixed-point LIF mapping, truncating)"),
             "timing: every weight layer adds one step (Lava's Dense sends its sum on the next "
             "step), so layer k's spikes lag the float graph by k steps (see latency)",
             "input: binary spikes; netx's input synapse counts any nonzero value as one spike",
             "state: 24-bit current u (wraps beyond +-2**23) and voltage v (clipped to "
             "+-(2**23 - 1)); decays truncate toward zero; reset to 0; no refractory period",
             "resources: " + Q.RESOURCE_NOTE]
    if cuba:
        notes.append(f"CubaLIF ({', '.join(cuba)}): Lava adds this step's current to the "
                     f"voltage, the NIR spec's Euler step the previous step's")
    sem = program.semantics
    if sem != Semantics():
        notes.append(f"the float model uses semantics {sem.name!r}; the mapping reads its NIR "
                     f"parameters under the NIR spec's forward-Euler update (nirjax.compare "
                     f"measures what that changes)")

    return LoweringResult(
        program=integer, resources=_resources(net, layers, inserted),
        quantization=_records(net), mapping=_mapping(structure, net, layers, inserted, integer),
        export=lambda path: write_netx(path, net),
        to_nir=lambda: loihi_to_nir(integer, flat, net, layers, inserted),
        record_names=record_names, notes=notes, warnings=list(net.warnings),
        input_range=INPUT_RANGE, latency=latency, options={}, details=net)


# ---------------------------------------------------------------------------- to_nir


def _neuron_to_nir(q: Q.LoihiLayer, dt: float):
    """A NIR neuron whose NIR-spec Euler update is Lava's CUBA update in real arithmetic, with
    ``v`` and the current in units of ``2**-6`` of Lava's (so the threshold is ``vThMant``),
    and the bias that goes into an Affine in front of it (``None``: into ``v_leak``)."""
    shape = tuple(q.shape)
    ones = np.ones(shape)
    bias = np.zeros(shape) if q.bias is None else np.asarray(
        neuron_params(q).bias_mant, np.float64)
    vth = q.v_th * ones
    if q.i_decay == 4096 and q.v_decay == 0:
        return nir.IF(r=ones, v_threshold=vth, v_reset=0 * ones), bias
    if q.i_decay == 4096:
        k = 4096.0 / q.v_decay
        return nir.LIF(tau=dt * k * ones, r=k * ones, v_leak=k * bias, v_threshold=vth,
                       v_reset=0 * ones), None
    if q.i_decay == 0 or q.v_decay == 0:
        what = "the current never decays (iDecay 0)" if q.i_decay == 0 else \
            "the voltage never decays (vDecay 0) while the current does"
        raise LoweringError(f"node {q.name!r}: {what}; no NIR neuron has that update with "
                            f"finite time constants, so the lowered network has no NIR form")
    ks, km = 4096.0 / q.i_decay, 4096.0 / q.v_decay
    return nir.CubaLIF(tau_syn=dt * ks * ones, tau_mem=dt * km * ones, r=km * ones,
                       v_leak=km * bias, v_threshold=vth, v_reset=0 * ones,
                       w_in=ks * ones), None


def loihi_to_nir(integer, flat, net: Q.LoihiNetwork, layers, inserted) -> nir.NIRGraph:
    """The quantized network as a NIR graph (integer values stored as floats).

    The nodes and edges of the chain under the graph's flat names (a neuron fed without a
    weight node gets its ``"<neuron>.synapse"`` Linear), without the synaptic latency. Weight
    nodes hold the integer weights Lava sums (``Linear``; a conv's ``Conv2d`` with zero bias);
    neurons are chosen so that the NIR spec's forward-Euler update is Lava's CUBA update in
    real arithmetic, with voltage and current in units of ``2**-6`` of Lava's:

    * ``iDecay = 4096, vDecay = 0``: ``IF(r=1, v_threshold=vThMant)``, the bias as an Affine
      bias in front of it;
    * ``iDecay = 4096``: ``LIF(tau = dt 4096/vDecay, r = 4096/vDecay, v_leak = r bias)``;
    * else ``CubaLIF(tau_syn = dt 4096/iDecay, w_in = 4096/iDecay, tau_mem = dt 4096/vDecay,
      r = 4096/vDecay, v_leak = r bias)``;

    ``v_reset = 0``; Delay nodes hold their whole steps times ``dt``. Not NIR semantics, so
    simulate the lowered model for them: the decays' truncation, the 24-bit wrap and clip, the
    step of latency per weight layer, and CubaLIF's current timing (the NIR spec's Euler step
    adds the previous step's current to the voltage, Lava this step's).

    Raises:
        LoweringError: a layer whose decays have no finite NIR time constant (``iDecay = 0``,
            or ``vDecay = 0`` with ``iDecay < 4096``).
    """
    dt = float(integer.dt)
    quant = {q.name: q for q in net.layers}
    weight_of, rec_of = {}, {}
    for q, fl in zip(net.layers, layers):
        weight_of[fl.weight_node or inserted[fl.name]] = q
        if fl.rec_node is not None:
            rec_of[fl.rec_node] = q
    nodes = {}
    biases = {}
    for name in flat.nodes:
        p = integer.node(name)
        if name in quant:
            neuron, bias = _neuron_to_nir(quant[name], dt)
            nodes[name] = neuron
            if bias is not None and np.any(bias):
                biases[name] = bias
        elif name in weight_of and p.type_name == "Conv2d":
            q = weight_of[name]
            src = flat.nodes[name].node
            nodes[name] = nir.Conv2d(input_shape=np.asarray(src.input_shape),
                                     weight=q.weight.astype(np.float64),
                                     stride=q.conv["stride"], padding=q.conv["padding"],
                                     dilation=q.conv["dilation"], groups=q.conv["groups"],
                                     bias=np.zeros(q.weight.shape[0]))
        elif name in weight_of:
            nodes[name] = nir.Linear(weight=weight_of[name].weight.astype(np.float64))
        elif name in rec_of:
            nodes[name] = nir.Linear(weight=rec_of[name].weight_rec.astype(np.float64))
        elif p.type_name == "Delay":
            steps = np.asarray(p.config.steps, np.float64).reshape(p.config.shape)
            nodes[name] = nir.Delay(delay=steps * dt)
        elif p.type_name == "Input":
            nodes[name] = nir.Input(input_type=np.asarray(p.out_shape))
        elif p.type_name == "Output":
            nodes[name] = nir.Output(output_type=np.asarray(p.out_shape))
        else:  # Flatten
            nodes[name] = flat.nodes[name].node
    # an IF's bias rides on its weight node as an Affine bias (the NIR IF has no v_leak)
    for neuron, bias in biases.items():
        q = quant[neuron]
        w = [w for w, wq in weight_of.items() if wq is q][0]
        node = nodes[w]
        if isinstance(node, nir.Conv2d):
            node.bias = np.asarray(bias).reshape(bias.shape[0], -1)[:, 0]
        else:
            nodes[w] = nir.Affine(weight=node.weight, bias=np.asarray(bias).reshape(-1))
    return nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in flat.edges])


def _register():
    register_target(
        "loihi2", lower_loihi2, family="loihi",
        doc="Intel Loihi 2: CUBA neurons in Lava 0.10's fixed point, one step of latency per "
            "weight layer; equals Lava's Loihi2SimCfg(select_tag='fixed_pt') on the exported "
            "lava-dl netx file",
        options=OPTIONS)


_register()
