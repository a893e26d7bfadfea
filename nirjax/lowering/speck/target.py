r"""The ``"speck"`` target: a convolutional NIR graph on SynSense Speck (DYNAP-CNN).

``nirjax.lower(graph, "speck", dt=...)`` does what sinabs 3.1.3's DYNAP-CNN backend does to
the same network, and then runs it with nirjax's compiled scan:

1. read the graph as ``sinabs.from_nir`` reads it (:mod:`nirjax.lowering.speck.from_nir`): a
   chain ``Input -> [Flatten] -> (Conv2d | Affine | Linear) -> IF -> [SumPool2d |
   AvgPool2d]* -> [Flatten] -> ... -> Output``, one chip layer (core) per weight node, each
   IF an integrate-and-fire neuron with subtractive reset, several spikes per step and a
   lower clamp at ``-v_threshold``;
2. check every design rule at once (:data:`~nirjax.lowering.speck.quantize.RULES`: square
   kernels up to 16, strides 1/2/4/8, padding 0..7, sum pooling 1/2/4, one threshold per
   layer, a core's memory, at most 9 layers, a valid core assignment, ...): a graph that
   breaks any raises one :class:`~nirjax.LoweringError` listing them all (its
   ``violations`` hold the records);
3. discretize each layer as ``DynapcnnNetwork(..., discretize=True)`` (one scale per layer:
   8-bit weights and bias, 16-bit threshold and lower clamp; ``1/(kh*kw)`` of an AvgPool2d
   folded into the next layer's weights) and assign cores as the Speck 2F builder's
   ``map_layers_to_cores`` (:mod:`nirjax.lowering.speck.quantize`);
4. rebind the graph's float Program, node for node, to the ``"speck"`` rule table
   (:mod:`nirjax.rules.speck`) with the integer parameters; :class:`~nirjax.Lowered` runs it
   with :class:`~nirjax.compiler.CompiledGraph` (int32, jitted, batched, one scan).

``hw(xs)`` takes ``[T, B, *input_shape]`` integer event counts and returns the last layer's
output (spike counts after its pooling, Flatten applied) per step; ``hw.run(xs,
record=[...])`` records any node, e.g. each IF's spike counts, or ``(if_node, "v")`` its
membrane. Every layer runs in the same step (sinabs runs the layers one after the other on
the same time step: no latency between cores).

Exactness: convolution and Linear layers are computed by nirjax's float kernels on the
integer weights in float32 at full precision, which is exact while every partial sum stays
within ``2**24`` (:mod:`nirjax.rules.speck`); sinabs' own forward is float32 as well. The
worst-case bound (:func:`~nirjax.lowering.speck.quantize.count_bounds`) is loose for deep
networks, so every run checks the bound again with the spike counts that occurred
(:func:`check_float32_range`) and warns (:class:`~nirjax.errors.LoweringWarning`) if a layer
may have left the exact range.

``hw.export(path)`` writes the discretized graph as ``.nir`` (integer values stored as
floats, AvgPool2d as SumPool2d, each IF's lower clamp, scale and core in its metadata) and
``<path>.speck.json`` with the core assignment and memory use (:mod:`~nirjax.lowering.
speck.from_nir`); ``hw.to_nir()`` returns that graph. Compiling the exported file with the
``"speck"`` table (``semantics=Semantics(arithmetic="speck")``) gives the same simulation,
and sinabs discretizes it to the same integers (every scale 1).

``dt`` plays no part: Speck has no time constants (each step is one bin of events).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import jax
import jax.numpy as jnp
import nir
import numpy as np

from ...errors import LoweringWarning
from ...semantics import PROFILES
from ...kernels import conv as conv_k
from ...kernels import linear as linear_k
from ...kernels import speck as speck_k
from ...rules.speck import SPECK
from . import from_nir as speck_nir
from . import quantize as sq
from ..core import LoweringResult, rebind_program, register_target, resource
from ..source import flat_graph
from ..violations import MappingRecord, QuantizationRecord, raise_violations

__all__ = ["lower_speck", "check_float32_range", "layer_nodes", "fake_quantize",
           "INPUT_RANGE"]

#: Input event counts per element and step: non-negative, and exact in float32 (sinabs
#: receives float32 tensors).
INPUT_RANGE = (0, sq.FLOAT32_EXACT)


def layer_nodes(network: sq.SpeckNetwork) -> list:
    """Per chip layer, the graph nodes on its core: ``[(weight, neuron, (pools...)), ...]``."""
    return [(q.layer.nodes["weight"], q.layer.nodes.get("neuron"),
             tuple(q.layer.nodes.get("pool", ()))) for q in network.layers]


def _int_params(network: sq.SpeckNetwork, graph: nir.NIRGraph) -> dict:
    """Program node name -> the integer parameters of the ``"speck"`` rule table."""
    out = {}
    for q in network.layers:
        name = q.layer.nodes["weight"]
        node = graph.nodes[name]
        bias = (np.zeros(q.weight.shape[0], np.int32) if q.bias is None
                else q.bias.astype(np.int32))
        if isinstance(node, nir.Conv2d):
            out[name] = conv_k.ConvParams(q.weight.astype(np.int32), bias)
        elif isinstance(node, nir.Affine):
            out[name] = linear_k.AffineParams(q.linear_weight.astype(np.int32), bias)
        else:
            out[name] = linear_k.LinearParams(q.linear_weight.astype(np.int32))
        out[q.layer.nodes["neuron"]] = speck_k.IAFParams(np.int32(q.threshold),
                                                         np.int32(q.min_v_mem))
    return out


def _quantization(network: sq.SpeckNetwork) -> list:
    """One record per rounded quantity and layer."""
    out = []
    for q in network.layers:
        layer, scale = q.layer, float(q.scale)
        w = np.asarray(layer.weight, np.float32)
        if layer.rescale != 1:
            w = w * np.float32(layer.rescale)
        w_max = float(np.max(np.abs(w))) if w.size else 0.0
        limited = _limiting(q)
        detail = f"scale set by the {limited} (one scale per layer, discretize.py:259-283)"
        if layer.rescale != 1:
            detail += (f"; weights first multiplied by {layer.rescale:g} (the average pooling "
                       "in front)")
        out.append(QuantizationRecord(layer.nodes["weight"], "weight", scale, w_max,
                                      q.weight_error, q.weight_error / w_max if w_max else 0.0,
                                      0, detail))
        if q.bias is not None:
            b = np.asarray(layer.bias, np.float64)
            err = float(np.max(np.abs(b - q.bias / np.float64(scale)))) if b.size else 0.0
            b_max = float(np.max(np.abs(b))) if b.size else 0.0
            out.append(QuantizationRecord(layer.nodes["weight"], "bias", scale, b_max, err,
                                          err / b_max if b_max else 0.0))
        thr = float(layer.uniform_threshold())
        out.append(QuantizationRecord(layer.nodes["neuron"], "threshold", scale, abs(thr),
                                      q.threshold_error, q.threshold_error / abs(thr),
                                      0, f"integer threshold {q.threshold}"))
        vmin = sq.DEFAULT_MIN_V_MEM if layer.min_v_mem is None else layer.min_v_mem
        err = abs(float(np.float32(vmin)) - q.min_v_mem / float(scale))
        out.append(QuantizationRecord(layer.nodes["neuron"], "min_v_mem", scale, abs(vmin),
                                      err, err / abs(vmin) if vmin else 0.0, 0,
                                      f"integer lower clamp {q.min_v_mem} (sinabs.from_nir: "
                                      "min_v_mem = -v_threshold)"))
    return out


def _limiting(q) -> str:
    """Which of weights, bias, threshold set the layer's scale (sinabs' min(), first wins)."""
    layer = q.layer
    w = np.asarray(layer.weight, np.float32)
    if layer.rescale != 1:
        w = w * np.float32(layer.rescale)
    if q.scale == sq.discretization_scale(w, sq.WEIGHT_BITS):
        return "weights (8 bits)"
    b = np.zeros(w.shape[0], np.float32) if layer.bias is None else layer.bias
    if q.scale == sq.discretization_scale(b, sq.WEIGHT_BITS):
        return "bias (8 bits)"
    return "threshold and lower clamp (16 bits)"


def _resources(network: sq.SpeckNetwork) -> dict:
    out = {}
    names = ("kernel", "neuron", "bias")
    totals = {k: 0 for k in ("neurons", "weights")}
    for i, q in enumerate(network.layers):
        core = network.cores[i]
        limits = sq.CORE_MEMORY[core]
        neurons = int(np.prod(q.layer.neuron_shape))
        weights = int(q.weight.size)
        entry = {"cores": resource(1, 1), "neurons": resource(neurons, None),
                 "weights": resource(weights, None)}
        for j, k in enumerate(names):
            entry[f"{k} memory words"] = resource(int(getattr(q.memory, k)), limits[j])
        entry["destinations"] = resource(1 if i + 1 < len(network.layers) else 0, 2)
        out[q.layer.nodes["weight"]] = entry
        totals["neurons"] += neurons
        totals["weights"] += weights
    total = {"cores": resource(len(network.layers), sq.N_CORES),
             "neurons": resource(totals["neurons"], None),
             "weights": resource(totals["weights"], None)}
    for j, k in enumerate(names):
        total[f"{k} memory words"] = resource(
            sum(int(getattr(q.memory, k)) for q in network.layers),
            sum(m[j] for m in sq.CORE_MEMORY))
    out["total"] = total
    return out


def _mapping(graph: nir.NIRGraph, network: sq.SpeckNetwork) -> list:
    out = []
    placed = {}
    for i, q in enumerate(network.layers):
        core = network.cores[i]
        layer = q.layer
        k = "x".join(map(str, layer.kernel))
        what = ("convolution" if layer.kind == "conv" else
                f"dense layer as a convolution with a {k} kernel over the whole input map")
        placed[layer.nodes["weight"]] = (
            f"core {core}: weights of layer {i} ({what}; {layer.in_shape} -> "
            f"{layer.neuron_shape}, kernel {k}, stride {'x'.join(map(str, layer.stride))})")
        placed[layer.nodes["neuron"]] = (
            f"core {core}: IAF neurons {layer.neuron_shape}, threshold {q.threshold}, lower "
            f"clamp {q.min_v_mem}")
        for p in layer.nodes.get("pool", ()):
            kind = "sum" if isinstance(graph.nodes[p], nir.SumPool2d) else \
                "sum (average as a sum, 1/(kh*kw) in the next layer's weights)"
            placed[p] = f"core {core}: {kind} pooling of the output spikes"
        if "flatten" in layer.nodes:
            placed[layer.nodes["flatten"]] = (f"absorbed into core {core}: its kernel covers "
                                              f"the whole {layer.in_shape} map")
    first = network.cores[0] if network.layers else None
    for name, node in graph.nodes.items():
        if name in placed:
            text = placed[name]
        elif isinstance(node, nir.Input):
            text = f"input events {network.input_shape} into core {first}"
        elif isinstance(node, nir.Output):
            text = f"output events of core {network.cores[-1] if network.layers else None}"
        elif isinstance(node, nir.Flatten):
            text = "absorbed: a reshape of the output events (no core)"
        else:
            text = "not placed"
        out.append(MappingRecord(name, type(node).__name__, text, name))
    return out


def check_float32_range(network: sq.SpeckNetwork, max_input: int, peaks: Sequence[int]) -> list:
    """The layers where a run may have left float32's exact range (empty: none).

    The proof of :func:`~nirjax.lowering.speck.quantize.count_bounds`, with ``max_input``
    the largest input count of the run and ``peaks`` the largest spike count one neuron of
    each layer emitted in one step (the IF states' ``peak``).

    Returns:
        The :class:`~nirjax.lowering.speck.quantize.CountBound` of every layer whose bound
        exceeds the exact range.
    """
    bounds = sq.count_bounds(network, max(int(max_input), 0), observed=list(peaks))
    return [b for b in bounds if not b.float32_exact]


def _checker(network: sq.SpeckNetwork, neurons: Sequence[str]):
    """A function ``(xs, final_state) -> None`` warning when a run left the exact range."""
    def check(xs, state):
        xs = xs.values() if isinstance(xs, dict) else [xs]
        max_input = max(int(np.max(np.asarray(x))) if np.size(x) else 0 for x in xs)
        peaks = [int(np.max(np.asarray(state.nodes[n].peak))) for n in neurons]
        bad = check_float32_range(network, max_input, peaks)
        for b in bad:
            warnings.warn(
                f"speck: layer {b.name!r} may have left float32's exact range in this run: "
                f"input counts up to {b.s_in} bound its partial sums by {b.current} and its "
                f"membrane by [{b.v_low}, {b.v_high}], beyond 2**24 = {sq.FLOAT32_EXACT}; "
                "the spike counts of this and later layers may differ from the chip's "
                "integer arithmetic (sinabs' float32 forward is inexact there too)",
                LoweringWarning, stacklevel=3)
        return bad

    return check


def lower_speck(program, params, options) -> LoweringResult:
    """The ``"speck"`` target's lowering function (see the module docstring).

    Args:
        program: the graph's float Program.
        params: node name -> float parameters (NumPy), NIR field names.
        options: target options (none).

    Returns:
        A :class:`~nirjax.lowering.LoweringResult`.

    Raises:
        LoweringError: every broken design rule, at once.
    """
    graph = flat_graph(program, params)
    network = speck_nir.lower_nir(graph)
    raise_violations("speck", network.violations)
    ints = _int_params(network, graph)
    configs = {n.name: SPECK[n.type_name].config(n.name, n.source, n.in_shape, n.out_shape,
                                                 n.semantics, program.dt, {})
               for n in program.nodes if n.type_name in SPECK}
    int_program = rebind_program(program, SPECK, ints, configs)
    neurons = [q.layer.nodes["neuron"] for q in network.layers]
    notes = list(network.notes) + [
        "Speck's IAF is sinabs': v' = v + W s + b; n = floor(v'/theta) spikes (several per "
        "step); v = max(v' - n theta, v_min) (subtractive reset, lower clamp); compare with "
        "the float graph compiled under semantics='sinabs'",
        "all layers run in the same step (no latency between cores); dt plays no part",
        "integer sums are computed by float32 kernels at full precision: exact while partial "
        "sums stay within 2**24, checked after every run with the spike counts that occurred",
    ]
    warned = []
    last = network.layers[-1].layer if network.layers else None
    if last is not None and any(last.pool_average):
        factor = 1
        for (kh, kw), avg in zip(last.pool, last.pool_average):
            factor *= kh * kw if avg else 1
        warned.append(f"the output of {last.nodes['pool'][-1]!r} (AvgPool2d) is the window "
                      f"SUM of the spike counts: {factor} times the float graph's average "
                      "(the chip has no average pooling and no layer after it to fold "
                      "1/(kh*kw) into)")
    bounds = sq.count_bounds(network, 1)
    if bounds and not all(b.float32_exact for b in bounds):
        notes.append("worst-case bound for one event per input element and step: layers "
                     + ", ".join(repr(b.name) for b in bounds if not b.float32_exact)
                     + " could leave float32's exact range; runs are checked")
    return LoweringResult(
        program=int_program,
        resources=_resources(network),
        quantization=_quantization(network),
        mapping=_mapping(graph, network),
        export=lambda path: speck_nir.export(graph, network, path),
        to_nir=lambda: speck_nir.to_nir(graph, network),
        notes=notes,
        warnings=warned,
        input_range=INPUT_RANGE,
        details=network,
        check=_checker(network, neurons),
    )


def _ste(x, q):
    """``q`` in the forward pass, the identity's gradient in the backward pass."""
    return x + jax.lax.stop_gradient(q - x)


def _scale_jnp(values, bits):
    """:func:`~nirjax.lowering.speck.quantize.discretization_scale` in float32 jnp (no
    gradient: the scale is a constant of the rounding)."""
    v = jax.lax.stop_gradient(jnp.ravel(jnp.asarray(values, jnp.float32)))
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    vmin, vmax = jnp.min(v), jnp.max(v)
    use_max = jnp.abs(vmin) <= jnp.abs(vmax) * jnp.float32(abs(lo / hi))
    up = jnp.abs((jnp.float32(1) / vmax) * jnp.float32(hi))
    down = jnp.abs((jnp.float32(1) / vmin) * jnp.float32(lo))
    return jnp.where(use_max, up, down)


def fake_quantize(program, options: dict | None = None):
    """Speck's discretization as a differentiable parameter transform (straight-through).

    Returns ``transform(params) -> params`` giving the float values the chip represents, in
    the float model's units, per layer (``W`` weight, ``b`` bias, ``theta`` threshold,
    ``r`` the average-pooling factor in front)::

        s      = min(s8(W r), s8(b), 32767 / theta)        (sinabs' common scale, constant)
        W     <- round(W r s) / (s r);  b <- round(b s) / s;  theta <- round(theta s) / s

    with gradients passing straight through every rounding. Every neuron of a layer gets
    the rounded mean threshold of the layer in the forward pass (the chip has one per
    layer), so the transformed parameters always lower, however training moved them. Lowering ``transform(params)`` gives the chip the integers the
    transform rounded to. Fine-tune a model compiled with ``semantics="sinabs"`` (the
    target's ``semantics``): its IF is the chip's in float.

    Args:
        program: the float model's Program (``model.program``).
        options: none.

    Raises:
        LoweringError: the graph cannot run on Speck (every violation listed).
    """
    graph = flat_graph(program)
    network = speck_nir.lower_nir(graph)
    raise_violations("speck", network.violations)
    layers = [(q.layer.nodes["weight"], q.layer.nodes["neuron"], float(q.layer.rescale),
               q.layer.bias is not None) for q in network.layers]

    def transform(params):
        params = dict(params)
        for w_name, n_name, rescale, has_bias in layers:
            wp, npar = params[w_name], params[n_name]
            w = jnp.asarray(wp.weight, jnp.float32)
            b = jnp.asarray(wp.bias, jnp.float32) if has_bias else jnp.zeros(w.shape[0])
            v_all = jnp.ravel(jnp.asarray(npar.v_threshold, jnp.float32))
            # the common value exactly when the neurons agree (a float32 mean may not be)
            thr = jnp.where(jnp.all(v_all == v_all[0]), v_all[0], jnp.mean(v_all))
            wr = w * jnp.float32(rescale)
            scale = jnp.minimum(jnp.minimum(_scale_jnp(wr, 8), _scale_jnp(b, 8)),
                                _scale_jnp(jnp.stack([-thr, thr]), 16))
            new_w = _ste(w, jnp.round(wr * scale) / (scale * jnp.float32(rescale)))
            params[w_name] = wp._replace(weight=new_w.astype(jnp.asarray(wp.weight).dtype))
            if has_bias:
                params[w_name] = params[w_name]._replace(
                    bias=_ste(b, jnp.round(b * scale) / scale).astype(
                        jnp.asarray(wp.bias).dtype))
            theta = jnp.round(jax.lax.stop_gradient(thr) * scale) / scale
            v = jnp.asarray(npar.v_threshold)
            params[n_name] = npar._replace(v_threshold=_ste(v, theta).astype(v.dtype))
        return params

    return transform


register_target("speck", lower_speck, family="speck",
                doc="SynSense Speck (DYNAP-CNN) as sinabs 3.1.3 discretizes, maps and "
                    "simulates it: 8-bit weights, integer IAF, 9 cores",
                default_dt=1.0, fake_quant=fake_quantize,
                semantics=lambda graph: PROFILES["sinabs"])
