"""Loihi 2 (Lava fixed point, lava-dl netx): design rules and quantization, in NumPy.

A graph Loihi 2 can run through netx is a chain of layers, each a weight node feeding a
population of CUBA neurons::

    Input -> [Delay] -> Affine/Linear/Conv2d -> [Delay] -> LIF/CubaLIF/IF -> ... -> Output
                                   (optional self-recurrence: neuron -> Affine/Linear -> neuron)

:func:`layers_from_program` reads such a chain out of a compiled ``nirjax.Program`` as
:class:`FloatLayer` records (the float NIR parameters of each layer), :func:`check` lists
every design rule the layers break (:class:`Violation`: node, rule, limit, value), and
:func:`quantize` maps them to the integers a netx HDF5 file holds (:class:`LoihiLayer`),
stating every rounding and its error (:class:`Rounding`).

The mapping (``scale="auto"``, the default). Lava's CUBA neuron (``kernels/loihi.py``)
computes, with ``a = W_int @ s`` the integer synaptic input::

    u = trunc0(u * (4096 - iDecay) / 4096) + (a << 6)
    v = trunc0(v * (4096 - vDecay) / 4096) + u + (bias << 6);   spike if v > vThMant << 6

and the forward-Euler NIR neuron, with ``g = dt/tau``, ``I = W x + b``::

    LIF      v = (1 - g) v + g (r I + v_leak)
    IF       v = v + r I
    CubaLIF  i = (1 - g_syn) i + g_syn w_in I;   v = (1 - g_mem) v + g_mem (r i + v_leak)

Spikes are binary, so each neuron's integer state may use its own scale ``sigma_i`` (state
units per unit of ``v``). Fixing ``vThMant`` and ``sigma_i = 64 vThMant / theta_i`` makes the
threshold exact and gives, with ``c_i`` the neuron's input gain over its threshold::

    W_int[i, j] = round(vThMant * c_i * W[i, j])   c_i = g r / theta (LIF), r / theta (IF),
                                                         g_mem g_syn r w_in / theta (CubaLIF)
    bias[i]     = round(vThMant * d_i)             d_i = g (r b + v_leak) / theta (LIF),
                                                         r b / theta (IF),
                                                         g_mem (r w_in b + v_leak) / theta
    vDecay      = round(4096 g)  (IF: 0);  iDecay = round(4096 g_syn) (LIF, IF: 4096)

``vThMant`` is the largest integer that keeps every weight in netx's range ([-256, 254],
or [0, 255] when no weight is negative), every bias in 13 bits and itself in 17 bits: the
weights use the full 8 bits. ``scale="paper"`` instead reproduces the fixed-point mapping of
the NIR paper's importer (``paper/nir_to_lava.py``, LIF only): ``vThMant = int(131071 theta)
>> 9``, ``W_int = int(256 g r W)``, ``vDecay = int(4095 g)``, ``iDecay = 4096`` (truncation
toward zero; bit-exact with ``lif_lava_cpu_fixed.csv``).

No NIR compiler import: this module works on NumPy arrays and the Program's node records.
Design-rule violations are :class:`~nirjax.lowering.Violation` records; :func:`quantize`
raises one :class:`~nirjax.lowering.DesignRuleError` (a :class:`~nirjax.LoweringError`)
listing every error, and returns the approximations as warning-level records (the
``loihi2`` target, :mod:`nirjax.lowering.loihi`, issues them as
:class:`~nirjax.errors.LoweringWarning`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..violations import DesignRuleError, Violation

__all__ = [
    "LIMITS", "TARGET", "FloatLayer", "Rounding", "LoihiLayer", "LoihiNetwork",
    "layers_from_program", "check", "check_program", "quantize", "resources",
]

TARGET = "loihi2"

# ----------------------------------------------------------------------------- limits

LIMITS: dict[str, tuple[Any, str]] = {
    # name: (value, source)
    "weight_min": (-256, "lava-dl 0.6.0 netx/utils.py optimize_weight_bits (clips mixed-sign "
                         "weights to [-256, 254]); lava 0.10 weightutils.clip_weights (all "
                         "weights <= 0: clipped to -255)"),
    "weight_max_mixed": (254, "lava-dl 0.6.0 netx/utils.py optimize_weight_bits"),
    "weight_max_excitatory": (255, "lava 0.10 weightutils.clip_weights (8-bit unsigned)"),
    "vth_max": (131071, "lava 0.10 proc/lif/models.py PyLifModelBitAcc: vth unsigned 17-bit"),
    "bias_min": (-4096, "lava 0.10 proc/lif/models.py: bias_mant signed 13-bit"),
    "bias_max": (4095, "lava 0.10 proc/lif/models.py: bias_mant signed 13-bit"),
    "decay_max": (4096, "lava 0.10 proc/lif/models.py: decays are fractions of 4096 (12-bit)"),
    "delay_max": (62, "lava-dl 0.6.0 netx/hdf5.py create_dense: delays above 62 are clamped"),
    "state_bits": (24, "lava 0.10 proc/lif/models.py: u, v are 24-bit"),
    "neurons_per_core": (8192, "Intel Loihi 2 technology brief (2021)"),
    "cores": (128, "Intel Loihi 2 technology brief (2021)"),
    "neurons_per_chip": (1_048_576, "Intel Loihi 2 technology brief (2021): 1M neurons"),
    "synapses_per_chip": (120_000_000, "Intel Loihi 2 technology brief (2021): 120M synapses"),
    "memory_words_per_core": (192 * 1024, "Intel Loihi 2 technology brief (2021): 192 KB of "
                                          "memory per neuro core (here 1 word = 1 byte)"),
}

_NEURONS = ("LIF", "CubaLIF", "IF")
_WEIGHTS = ("Affine", "Linear", "Conv2d")
_PASS = ("Delay", "Flatten")
_SUPPORTED = ("Input", "Output") + _NEURONS + _WEIGHTS + _PASS


def _limit(name):
    return LIMITS[name][0]


# ----------------------------------------------------------------------------- records


@dataclasses.dataclass
class FloatLayer:
    """One netx layer in float NIR terms: a weight node feeding a neuron population.

    Attributes:
        name: the neuron node (the layer's name).
        neuron: ``"LIF"``, ``"CubaLIF"`` or ``"IF"``.
        params: the neuron's NIR fields as float64 arrays of the population's shape
            (``tau`` or ``tau_mem``/``tau_syn``, ``r``, ``w_in``, ``v_leak``,
            ``v_threshold``, ``v_reset``).
        weight: ``[n, n_in]`` (dense) or ``[C_out, C_in/groups, kH, kW]`` (conv); the
            identity for a population fed straight from the input.
        bias: ``[n]`` (dense) or ``[C_out]`` (conv), or ``None``.
        weight_node: the Affine/Linear/Conv2d node, or ``None`` (fed from the input).
        rec_weight, rec_bias, rec_node: the self-recurrent Affine/Linear, if any.
        delay: integer steps ``[n, n_in]`` of the feed-forward synapses, or ``None``.
        delay_exact: the same delays in (real) steps, ``delay / dt`` before rounding.
        delay_nodes: the Delay nodes that made ``delay``.
        conv: for a Conv2d layer: ``stride``, ``padding``, ``dilation`` (pairs), ``groups``,
            ``input_shape`` and ``shape`` (``[C, H, W]``); else ``None``.
        flatten_before: a Flatten sits between the previous layer and this one.
        in_shape: the shape of the layer's input.
    """

    name: str
    neuron: str
    params: dict
    weight: np.ndarray
    bias: np.ndarray | None = None
    weight_node: str | None = None
    rec_weight: np.ndarray | None = None
    rec_bias: np.ndarray | None = None
    rec_node: str | None = None
    delay: np.ndarray | None = None
    delay_exact: np.ndarray | None = None
    delay_nodes: tuple = ()
    conv: dict | None = None
    flatten_before: bool = False
    in_shape: tuple = ()

    @property
    def shape(self) -> tuple:
        """The population's shape."""
        return tuple(np.shape(self.params["v_threshold"]))

    @property
    def size(self) -> int:
        """Number of neurons."""
        return int(np.prod(self.shape))


@dataclasses.dataclass(frozen=True)
class Rounding:
    """One quantity rounded to Loihi's integers.

    Attributes:
        node: the NIR node the quantity belongs to.
        quantity: e.g. ``"weight"``, ``"v_decay"``.
        exact: the real value the integer stands for (largest magnitude for arrays).
        integer: the integer chosen (largest magnitude for arrays).
        error: largest absolute error, in the quantity's NIR units.
        relative: ``error`` over the largest ``|exact|`` (0 when that is 0).
        note: how the integer was obtained.
        scale: integer units per NIR unit (at the largest value; e.g. 4096 for decays).
    """

    node: str
    quantity: str
    exact: float
    integer: int
    error: float
    relative: float
    note: str = ""
    scale: float = 1.0

    def __str__(self) -> str:
        return (f"{self.node}.{self.quantity}: {self.exact:.6g} -> {self.integer} "
                f"(max error {self.error:.3g}, {100 * self.relative:.3g}%) {self.note}").rstrip()


@dataclasses.dataclass(frozen=True)
class LoihiLayer:
    """The integers of one netx layer (what its HDF5 group holds).

    Attributes:
        name: the NIR neuron node.
        kind: ``"dense"``, ``"dense_rec"`` or ``"conv"``.
        weight: int64 ``[n, n_in]`` (dense) or ``[C_out, C_in/groups, kH, kW]`` (conv).
        weight_rec: int64 ``[n, n]`` for ``dense_rec``.
        delay: int64 ``[n, n_in]`` synaptic delays in steps, or ``None``.
        bias: int64 bias mantissas ``[n]`` (netx adds ``bias << 6`` to ``v``), or ``None``.
        i_decay: netx ``iDecay`` (Lava ``du = iDecay - 1``).
        v_decay: netx ``vDecay`` (Lava ``dv``).
        v_th: netx ``vThMant`` (Lava ``vth``; spike if ``v > vth << 6``).
        shape: the population's shape (NIR layout).
        in_shape: the input's shape (NIR layout).
        conv: stride/padding/dilation/groups for a conv layer, else ``None``.
        flatten_before: netx needs a ``flatten`` layer before this one.
        nodes: role -> NIR node name (``neuron``, ``weight``, ``rec``, ``delay``).
        scale: per neuron, integer state units per unit of NIR ``v`` (``64 vThMant / theta``).
    """

    name: str
    kind: str
    weight: np.ndarray
    weight_rec: np.ndarray | None
    delay: np.ndarray | None
    bias: np.ndarray | None
    i_decay: int
    v_decay: int
    v_th: int
    shape: tuple
    in_shape: tuple
    conv: dict | None
    flatten_before: bool
    nodes: dict
    scale: np.ndarray

    @property
    def size(self) -> int:
        """Number of neurons."""
        return int(np.prod(self.shape))

    @property
    def max_delay(self) -> int:
        """Largest synaptic delay in steps (0 without delays)."""
        return 0 if self.delay is None else int(np.max(self.delay))


@dataclasses.dataclass(frozen=True)
class LoihiNetwork:
    """A quantized netx chain.

    Attributes:
        input_shape: the network input's shape (NIR layout).
        layers: the :class:`LoihiLayer` chain, first to last.
        dt: the time step the decays were computed for.
        scale: the mapping used (``"auto"`` or ``"paper"``).
        roundings: every :class:`Rounding`.
        warnings: the approximations (:class:`Violation` with ``severity="warning"``).
    """

    input_shape: tuple
    layers: tuple
    dt: float
    scale: str
    roundings: tuple
    warnings: tuple

    def report(self) -> str:
        """Mapping and rounding report, one line per layer and rounding."""
        lines = [f"loihi2 (lava-dl netx), dt={self.dt:g}, scale={self.scale!r}, "
                 f"input {self.input_shape}"]
        for layer in self.layers:
            lines.append(f"  layer {layer.name!r}: {layer.kind} {layer.in_shape} -> "
                         f"{layer.shape}, vThMant={layer.v_th}, iDecay={layer.i_decay}, "
                         f"vDecay={layer.v_decay}, max delay {layer.max_delay}")
        lines += [f"  rounding {r}" for r in self.roundings]
        lines += [f"  warning {w}" for w in self.warnings]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- reading a chain


def _f64(x, shape=None):
    a = np.asarray(x, np.float64)
    return a if shape is None else np.broadcast_to(a, shape).copy()


class _Fields:
    """A node's NIR fields: its (possibly overridden) parameters first, else the ``nir`` node.

    ``params`` is the node's NamedTuple of parameters with NIR field names (``None``: none).
    """

    def __init__(self, source, params=None):
        self._source = source
        self._params = params

    def __getattr__(self, field):
        p = self.__dict__["_params"]
        if p is not None and field in getattr(p, "_fields", ()):
            return getattr(p, field)
        return getattr(self.__dict__["_source"], field, None)


def _neuron_params(node, shape, kind) -> dict:
    """The NIR fields of a LIF / CubaLIF / IF node (``_Fields``) as float64 arrays of
    ``shape``."""
    p = {"v_threshold": _f64(node.v_threshold, shape), "r": _f64(node.r, shape)}
    p["v_reset"] = _f64(node.v_reset if node.v_reset is not None else 0.0, shape)
    if kind == "LIF":
        p["tau"] = _f64(node.tau, shape)
        p["v_leak"] = _f64(node.v_leak, shape)
    elif kind == "CubaLIF":
        p["tau_mem"] = _f64(node.tau_mem, shape)
        p["tau_syn"] = _f64(node.tau_syn, shape)
        p["v_leak"] = _f64(node.v_leak, shape)
        p["w_in"] = _f64(node.w_in if node.w_in is not None else 1.0, shape)
    return p


def _delay_steps(node, dt, shape):
    """``(steps, exact)``: a Delay node's delays in whole steps (nirjax's Delay rounding,
    ``floor(delay/dt + 1/2)``) and in real steps, broadcast to ``shape``."""
    exact = np.broadcast_to(_f64(node.delay) / dt, shape).copy()
    return np.floor(exact + 0.5).astype(np.int64), exact


def _pair(v) -> tuple:
    return tuple(int(x) for x in np.broadcast_to(np.asarray(v), 2))


def _conv_padding(src, name, bad) -> tuple:
    """NIR Conv2d padding as symmetric ``(pad_h, pad_w)`` (Lava pads both sides equally)."""
    if isinstance(src.padding, str):
        if src.padding == "valid":
            return (0, 0)
        k = np.asarray(src.weight).shape[-2:]
        total = [d * (kk - 1) for d, kk in zip(_pair(src.dilation), k)]
        if src.padding == "same" and all(t % 2 == 0 for t in total):
            return tuple(t // 2 for t in total)
        bad(name, "conv-padding", "symmetric padding", src.padding,
            f"padding {src.padding!r} is not symmetric for kernel {tuple(k)}; Lava's conv pads "
            f"both sides equally")
        return (0, 0)
    return _pair(src.padding)


def layers_from_program(program, params=None) -> tuple[tuple, list, list]:
    """Read a netx chain out of a compiled program (built without latency passes).

    Args:
        program: a ``nirjax.Program`` (``nirjax.build_program(graph, dt, Semantics())``):
            flat node names, shapes and the source ``nir`` nodes.
        params: node name -> parameters (NamedTuples with NIR field names, e.g. a model's
            fine-tuned ``params``) read instead of the ``nir`` nodes' fields; default: the
            nodes' own.

    Returns:
        ``(input_shape, layers, violations)``: the :class:`FloatLayer` chain in order and
        every structural rule the graph breaks (empty when it is a netx chain).
    """
    nodes = {n.name: n for n in program.nodes}
    violations: list[Violation] = []
    dt = float(program.dt)
    params = dict(params or {})

    def fields(n):
        return _Fields(n.source, params.get(n.name, n.params))

    def bad(node, rule, limit, value, message):
        violations.append(Violation(node, rule, limit, value, message))

    unsupported = set()
    for n in program.nodes:
        if n.type_name not in _SUPPORTED:
            unsupported.add(n.name)
            bad(n.name, "node-type", ", ".join(_SUPPORTED), n.type_name,
                f"{n.type_name} has no netx layer (netx builds Input, Dense, Conv and CUBA "
                f"neurons; pooling, concat and other neuron models raise NotImplementedError "
                f"in lava-dl 0.6.0 netx/hdf5.py)")
    if len(program.inputs) != 1 or len(program.outputs) != 1:
        bad(",".join(program.inputs + program.outputs), "single-io", "1 Input, 1 Output",
            f"{len(program.inputs)} Input, {len(program.outputs)} Output",
            "a netx network has one input port and one output port")
        return (), [], violations
    inp = nodes[program.inputs[0]]
    input_shape = tuple(inp.out_shape)

    def sources(name):
        return [e.src for e in program.incoming(name)]

    def walk_back(name):
        """Follow Delay/Flatten nodes upstream; returns (origin, delays, flatten seen)."""
        delays, flat = [], False
        while nodes[name].type_name in _PASS:
            if nodes[name].type_name == "Delay":
                delays.append(name)
            else:
                flat = True
            src = sources(name)
            if len(src) != 1:
                bad(name, "chain", "1 input", len(src),
                    f"{nodes[name].type_name} with {len(src)} inputs cannot be part of a netx "
                    f"chain")
                return None, delays, flat
            name = src[0]
        return name, delays, flat

    layers: list[FloatLayer] = []
    origin_of: dict[str, str] = {}
    for n in program.nodes:
        if n.type_name not in _NEURONS:
            continue
        shape = tuple(n.out_shape)
        neuron_params = _neuron_params(fields(n), shape, n.type_name)
        ff, rec = [], []
        for src in sources(n.name):
            w_name, post_delays, post_flat = walk_back(src)
            if w_name is None:
                continue
            w = nodes[w_name]
            if w.type_name in _NEURONS or w.type_name == "Input":
                # fed without a weight node (the NIR paper's LIF task): identity weights
                if w.name == n.name:
                    bad(n.name, "chain", "a weight node on a recurrent edge", "none",
                        "a neuron feeding itself needs an Affine/Linear on the loop")
                    continue
                ff.append((None, w.name, post_delays, [], post_flat))
                continue
            if w.name in unsupported:
                continue  # reported as node-type
            if w.type_name not in _WEIGHTS:
                bad(w.name, "chain", "Affine, Linear or Conv2d", w.type_name,
                    f"{w.type_name} {w.name!r} feeds neuron {n.name!r}; netx needs a weight "
                    f"layer there")
                continue
            w_src = sources(w.name)
            if len(w_src) != 1:
                bad(w.name, "chain", "1 input", len(w_src),
                    f"{w.type_name} with {len(w_src)} inputs: netx layers read one layer")
                continue
            pre, pre_delays, pre_flat = walk_back(w_src[0])
            if pre is None or pre in unsupported:
                continue
            if nodes[pre].type_name in _WEIGHTS:
                bad(w.name, "chain", "a neuron layer between weight layers",
                    f"{nodes[pre].type_name} {pre!r}",
                    f"two weight layers in a row ({pre!r} -> {w.name!r}); netx puts neurons "
                    f"after every weight layer (fold them into one Affine)")
                continue
            entry = (w, pre, post_delays, pre_delays, post_flat or pre_flat)
            (rec if pre == n.name else ff).append(entry)
        if len(ff) != 1:
            if unsupported and not ff:
                continue  # fed by an unsupported node (reported)
            bad(n.name, "chain", "1 feed-forward input", len(ff),
                f"neuron {n.name!r} receives {len(ff)} feed-forward inputs; a netx layer "
                f"reads exactly one layer")
            continue
        if len(rec) > 1:
            bad(n.name, "chain", "at most 1 recurrent weight", len(rec),
                f"neuron {n.name!r} has {len(rec)} recurrent weights; netx dense_rec has one")
            continue
        w, pre, post_delays, pre_delays, flat = ff[0]
        n_in = int(np.prod(nodes[pre].out_shape))
        layer = FloatLayer(name=n.name, neuron=n.type_name, params=neuron_params,
                           weight=np.eye(int(np.prod(shape))), flatten_before=flat,
                           in_shape=tuple(nodes[pre].out_shape))
        origin_of[n.name] = pre
        if w is not None:
            layer.weight_node = w.name
            src = fields(w)
            if w.type_name == "Conv2d":
                layer.weight = _f64(src.weight)
                layer.bias = None if getattr(src, "bias", None) is None else _f64(src.bias)
                pad = _conv_padding(src, w.name, bad)
                layer.conv = dict(stride=_pair(src.stride), padding=pad,
                                  dilation=_pair(src.dilation), groups=int(src.groups),
                                  input_shape=tuple(w.in_shape), shape=tuple(w.out_shape))
            else:
                layer.weight = _f64(src.weight).reshape(int(np.prod(shape)), n_in)
                if w.type_name == "Affine":
                    layer.bias = _f64(src.bias).reshape(-1)
        if rec:
            rw, _, r_post, r_pre, _ = rec[0]
            if r_post or r_pre:
                bad((r_post + r_pre)[0], "delay-recurrent", "no delay in a recurrent layer",
                    "a Delay on the recurrent path",
                    "netx's dense_rec gives the recurrent synapses the feed-forward delay "
                    "matrix and no weight exponent (lava-dl 0.6.0 netx/blocks/process.py "
                    "RecurrentDense): a recurrent delay cannot be expressed")
            if rw.type_name == "Conv2d":
                bad(rw.name, "chain", "Affine or Linear", "Conv2d",
                    "netx has no recurrent convolution")
                continue
            layer.rec_node = rw.name
            layer.rec_weight = _f64(fields(rw).weight)
            if rw.type_name == "Affine":
                layer.rec_bias = _f64(fields(rw).bias).reshape(-1)
        delay_nodes = tuple(pre_delays + post_delays)
        if delay_nodes:
            if layer.conv is not None:
                bad(delay_nodes[0], "delay-conv", "no delay on a conv layer", "Delay",
                    "netx conv layers have no delays (lava-dl 0.6.0 netx/hdf5.py create_conv)")
            else:
                d = np.zeros(layer.weight.shape, np.int64)
                exact = np.zeros(layer.weight.shape)
                for name in pre_delays:  # per input: column j
                    steps, real = _delay_steps(nodes[name].source, dt, (n_in,))
                    d += steps[None, :]
                    exact += real[None, :]
                for name in post_delays:  # per output: row i
                    steps, real = _delay_steps(nodes[name].source, dt, (layer.size,))
                    d += steps[:, None]
                    exact += real[:, None]
                layer.delay, layer.delay_exact = d, exact
                layer.delay_nodes = delay_nodes
        layers.append(layer)

    if unsupported:  # the chain is broken where they sit; the layers found are returned
        return input_shape, layers, violations
    # the layers must form one chain from the input to the output
    chain, prev = [], inp.name
    remaining = {layer.name: layer for layer in layers}
    while True:
        nxt = [layer for layer in remaining.values() if origin_of[layer.name] == prev]
        if not nxt:
            break
        if len(nxt) > 1:
            bad(prev, "chain", "1 following layer", len(nxt),
                f"{prev!r} feeds {len(nxt)} layers ({', '.join(repr(x.name) for x in nxt)}); "
                f"netx builds one chain")
            break
        chain.append(nxt[0])
        prev = remaining.pop(nxt[0].name).name
    for layer in remaining.values():
        bad(layer.name, "chain", "one chain from the input", "not on the chain",
            f"layer {layer.name!r} is not on the chain from the input to the output")
    out = nodes[program.outputs[0]]
    out_src, out_delays, _ = walk_back(sources(out.name)[0])
    if out_delays:
        bad(out_delays[0], "chain", "no Delay before the Output", "Delay",
            "a delay on the network output has no netx layer")
    if out_src is not None and (not chain or out_src != chain[-1].name):
        kind = nodes[out_src].type_name if out_src in nodes else "?"
        bad(out.name, "output-spikes", "the last neuron layer's spikes",
            f"{kind} {out_src!r}",
            f"the Output reads {kind} {out_src!r}; a netx network outputs the spikes of its "
            f"last layer (a non-spiking readout has no netx layer)")
    if not chain and not violations:
        bad(inp.name, "chain", "at least one neuron layer", 0, "no neuron layer in the graph")
    return input_shape, chain, violations


def check_program(program, *, scale: str = "auto", params=None) -> tuple[tuple, list, list]:
    """Every Loihi 2 / netx violation of a compiled program: structure and parameters.

    Args:
        program: a ``nirjax.Program`` built without latency passes.
        scale: the mapping :func:`quantize` will use.
        params: parameters overriding the nodes' (see :func:`layers_from_program`).

    Returns:
        ``(input_shape, layers, violations)`` (:func:`layers_from_program` followed by
        :func:`check` on every layer that could be read, so nothing is held back).
    """
    input_shape, layers, violations = layers_from_program(program, params)
    return input_shape, layers, violations + check(layers, float(program.dt), scale=scale)


# ----------------------------------------------------------------------------- design rules


def _gains(layer: FloatLayer, dt: float):
    """``(c, d, g_mem, g_syn)``: per neuron input gain and bias gain over the threshold,
    and the membrane and current decay fractions (see the module docstring)."""
    p = layer.params
    theta = p["v_threshold"]
    b = 0.0 if layer.bias is None else _per_neuron(layer, layer.bias)
    b_rec = 0.0 if layer.rec_bias is None else layer.rec_bias.reshape(layer.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        if layer.neuron == "LIF":
            g = dt / p["tau"]
            c = g * p["r"] / theta
            d = g * (p["r"] * (b + b_rec) + p["v_leak"]) / theta
            return c, d, g, np.ones_like(g)
        if layer.neuron == "IF":
            c = p["r"] / theta
            d = p["r"] * (b + b_rec) / theta
            return c, d, np.zeros_like(c), np.ones_like(c)
        gm, gs = dt / p["tau_mem"], dt / p["tau_syn"]
        c = gm * gs * p["r"] * p["w_in"] / theta
        d = gm * (p["r"] * p["w_in"] * (b + b_rec) + p["v_leak"]) / theta
        return c, d, gm, gs


def _per_neuron(layer: FloatLayer, bias):
    """A dense bias ``[n]`` or a conv bias ``[C]`` as an array of the population's shape."""
    bias = np.asarray(bias, np.float64)
    if layer.conv is not None:
        return np.broadcast_to(bias.reshape(-1, 1, 1), layer.shape)
    return bias.reshape(layer.shape)


def _uniform(node, what, values, violations, rule="uniform-per-layer"):
    """One value for the layer, or a violation."""
    vals = np.unique(np.asarray(values).ravel())
    if vals.size > 1:
        violations.append(Violation(
            node, rule, "one value per layer", f"{vals.size} values ({vals.min()} .. "
            f"{vals.max()})",
            f"{what} differs between neurons; Lava's LIF process holds one per layer"))
    return vals[0] if vals.size else 0


def check(layers, dt: float, *, scale: str = "auto") -> list[Violation]:
    """Every Loihi 2 / netx design rule the layers break, and the approximations made.

    Args:
        layers: the :class:`FloatLayer` chain.
        dt: the time step in seconds.
        scale: the mapping :func:`quantize` will use (``"auto"`` or ``"paper"``).

    Returns:
        All :class:`Violation` records (errors and warnings), none left out.
    """
    out: list[Violation] = []
    for layer in layers:
        out += _check_layer(layer, dt, scale)
    out += _check_chip(layers)
    return out


def _check_layer(layer: FloatLayer, dt, scale) -> list[Violation]:
    v: list[Violation] = []
    p = layer.params
    name = layer.name
    for field in p:
        if not np.all(np.isfinite(p[field])):
            v.append(Violation(name, "finite", "finite values", field,
                               f"{field} has NaN or infinite values"))
    if v:
        return v
    if np.any(p["v_reset"] != 0):
        v.append(Violation(name, "reset-to-zero", 0.0, float(np.max(np.abs(p["v_reset"]))),
                           "Lava's LIF resets v to 0; v_reset is nonzero"))
    if np.any(p["v_threshold"] <= 0):
        v.append(Violation(name, "threshold-positive", "> 0", float(p["v_threshold"].min()),
                           "thresholds must be positive (vThMant is unsigned)"))
    for tau in ("tau", "tau_mem", "tau_syn"):
        if tau in p:
            if np.any(p[tau] < dt):
                v.append(Violation(
                    name, "decay-range", f"{tau} >= dt = {dt:g}", float(p[tau].min()),
                    f"{tau} below dt: Lava's decay is a fraction d/4096 of the state with "
                    f"d <= 4096"))
    v += _check_synapses(layer)
    if any(x.rule in ("threshold-positive", "decay-range") for x in v):
        return v  # the gains below need positive thresholds and decays within range
    c, d, gm, gs = _gains(layer, dt)
    if layer.neuron != "IF":
        if scale == "paper":
            vd = np.trunc(4095.0 * gm)
        else:
            vd = np.round(4096.0 * gm)
        if np.any(vd > 4095):
            v.append(Violation(name, "decay-range", "vDecay <= 4095",
                               int(vd.max()), "the membrane decay rounds to 4096 (tau_mem "
                               "== dt); Lava's dv is 12-bit"))
        _uniform(name, "the membrane decay (vDecay)", vd, v)
    if layer.neuron == "CubaLIF":
        _uniform(name, "the current decay (iDecay)", np.round(4096.0 * gs), v)
    if scale == "paper":
        if layer.neuron != "LIF":
            v.append(Violation(name, "paper-scale", "LIF", layer.neuron,
                               "scale='paper' is nir_to_lava's fixed-point LIF mapping; use "
                               "scale='auto' for CubaLIF and IF"))
        _uniform(name, "the threshold (scale='paper' has one vThMant per layer)",
                 p["v_threshold"], v)
    if layer.conv is not None:
        for what, arr in (("the threshold / gain ratio", c), ("the bias ratio", d)):
            per_ch = arr.reshape(arr.shape[0], -1)
            if np.any(per_ch != per_ch[:, :1]):
                v.append(Violation(
                    name, "conv-per-channel", "one value per output channel",
                    "varies within a channel",
                    f"{what} varies across positions of a channel; a convolution shares its "
                    f"kernel across positions"))
    if layer.neuron == "CubaLIF" and (
            (layer.bias is not None and np.any(layer.bias))
            or (layer.rec_bias is not None and np.any(layer.rec_bias))):
        b = (0.0 if layer.bias is None else _per_neuron(layer, layer.bias)) + (
            0.0 if layer.rec_bias is None else layer.rec_bias.reshape(layer.shape))
        per_step = np.abs(gm * p["r"] * p["w_in"] * b / p["v_threshold"])
        extra = float(np.max(per_step / gs))
        steps = float(np.max(1.0 / gs))
        v.append(Violation(
            layer.weight_node or name, "bias-current", "bias on v", "bias on the synaptic current",
            f"the Affine bias of CubaLIF layer {name!r} becomes a membrane bias (netx adds "
            f"bias << 6 to v): the membrane gets the whole bias from the first step instead of "
            f"through the synaptic current, which approaches it with time constant tau_syn "
            f"({steps:.3g} steps); the membrane integrates up to {extra:.3g} threshold(s) more "
            f"input in all (the steady state is unchanged)", severity="warning"))
    return v


def _overflow(q) -> list[Violation]:
    """The warning that a quantized layer's 24-bit current can wrap (Lava wraps it by one
    period beyond ``+-2**23``; the float graph has no such limit): the worst case is every
    input spiking at every step, the current summing ``64 a`` with decay ``iDecay / 4096``
    (a geometric sum, bounded by ``64 a 4096 / iDecay``)."""
    w = q.weight.reshape(q.weight.shape[0], -1).astype(np.int64)
    parts = [w] if q.weight_rec is None else [w, q.weight_rec.astype(np.int64)]
    pos = sum(np.where(x > 0, x, 0).sum(axis=1) for x in parts)
    neg = sum(np.where(x < 0, x, 0).sum(axis=1) for x in parts)
    a_max = int(max(pos.max(initial=0), -neg.min(initial=0)))
    gain = np.inf if q.i_decay == 0 else 4096.0 / q.i_decay
    bound = 64.0 * a_max * gain
    limit = 2 ** 23
    if bound < limit:
        return []
    return [Violation(
        q.name, "current-overflow", f"|u| < 2**23 = {limit}",
        "unbounded" if not np.isfinite(bound) else f"{bound:.4g}",
        f"the 24-bit synaptic current can wrap: with every input spiking at every step it "
        f"reaches {bound:.4g} (largest summed weight {a_max} x 64"
        + (f" x 4096/iDecay = {gain:.3g}" if q.i_decay != 4096 else "")
        + f"), beyond 2**23 - 1 where Lava (and the integer simulation) wraps it to the "
        f"opposite sign; the float graph does not. It happens only when about "
        f"{max(1, int(np.ceil(limit / bound * 100)))}% of that worst case is reached",
        severity="warning")]


def _check_synapses(layer: FloatLayer) -> list[Violation]:
    """Rules on a layer's weights and delays (independent of its neuron parameters)."""
    v: list[Violation] = []
    name = layer.name
    weights = [layer.weight] + ([layer.rec_weight] if layer.rec_weight is not None else [])
    if all(not np.any(w) for w in weights):
        v.append(Violation(layer.weight_node or name, "weights-nonzero", "a nonzero weight",
                           "all zero", "netx fails on an all-zero weight matrix "
                           "(optimize_weight_bits takes log2 of 255/0)"))
    if layer.delay is not None:
        dmax = int(np.max(layer.delay))
        if dmax > _limit("delay_max"):
            v.append(Violation((layer.delay_nodes or (name,))[0], "delay-max",
                               _limit("delay_max"), dmax,
                               f"a delay of {dmax} steps; netx clamps delays to 62 steps "
                               f"(Loihi 2 has 6 delay bits)"))
        if np.any(layer.delay < 0):
            v.append(Violation((layer.delay_nodes or (name,))[0], "delay-min", 0,
                               int(np.min(layer.delay)), "negative delay"))
        if layer.rec_weight is not None:
            v.append(Violation((layer.delay_nodes or (name,))[0], "delay-recurrent",
                               "no delay in a recurrent layer", "delays",
                               "netx's dense_rec gives its recurrent synapses the feed-forward "
                               "delays and drops the weight exponent (lava-dl 0.6.0 "
                               "RecurrentDense)"))
    return v


#: How :func:`resources` estimates memory and cores (stated in every report).
RESOURCE_NOTE = (
    "cores and memory words are estimates, not Lava's or Intel's mapping: memory words count "
    "one 8-bit word per stored synaptic weight (nonzero dense weights; a conv kernel once per "
    "core) and 6 words per neuron (24-bit u and v), ignoring synapse encoding, routing tables "
    "and delay buffers (a lower bound); each layer gets max(ceil(neurons / 8192), "
    "ceil(memory words / 196608)) cores of its own. Limits per chip: 128 cores, 8192 neurons "
    "and 192 KB per core, 1M neurons, 120M synapses (Intel Loihi 2 technology brief, 2021)")


def _weight_count(weight, rec=None) -> int:
    return int(np.count_nonzero(weight)) + (0 if rec is None else int(np.count_nonzero(rec)))


def resources(layers) -> dict:
    """Neurons, synapses, memory words and cores of a chain (float or quantized layers).

    ``synapses``: nonzero weights (a conv kernel weight counts once per output position);
    ``memory words`` and ``cores`` are estimates (:data:`RESOURCE_NOTE`).

    Returns:
        ``{"layers": {name: {"neurons", "synapses", "memory words", "cores"}}, "total":
        {...}, "limit": {...}, "note": RESOURCE_NOTE}``.
    """
    keys = ("neurons", "synapses", "memory words", "cores")
    per, tot = {}, dict.fromkeys(keys, 0)
    per_core = _limit("memory_words_per_core")
    for layer in layers:
        n = int(np.prod(layer.shape))
        rec = getattr(layer, "rec_weight", None)
        if rec is None:
            rec = getattr(layer, "weight_rec", None)
        if layer.conv is not None:
            kernel = int(np.count_nonzero(layer.weight))
            syn = kernel * int(np.prod(layer.shape[1:]))
            neuron_cores = math.ceil(n / _limit("neurons_per_core"))
            words = 6 * n + kernel * neuron_cores
        else:
            syn = _weight_count(layer.weight, rec)
            words = 6 * n + syn
        cores = max(1, math.ceil(n / _limit("neurons_per_core")), math.ceil(words / per_core))
        per[layer.name] = {"neurons": n, "synapses": syn, "memory words": words,
                           "cores": cores}
        for k in keys:
            tot[k] += per[layer.name][k]
    return {"layers": per, "total": tot,
            "limit": {"neurons": _limit("neurons_per_chip"),
                      "synapses": _limit("synapses_per_chip"),
                      "memory words": _limit("cores") * per_core, "cores": _limit("cores"),
                      "neurons_per_core": _limit("neurons_per_core"),
                      "memory_words_per_core": per_core},
            "note": RESOURCE_NOTE}


def _check_chip(layers) -> list[Violation]:
    r = resources(layers)
    out = []
    for key, rule in (("cores", "cores"), ("neurons", "neurons-per-chip"),
                      ("synapses", "synapses-per-chip"), ("memory words", "memory")):
        if r["total"][key] > r["limit"][key]:
            big = max(r["layers"], key=lambda n: r["layers"][n][key])
            estimate = key in ("cores", "memory words")
            out.append(Violation(big, rule, r["limit"][key], r["total"][key],
                                 f"the network needs {r['total'][key]} {key} "
                                 f"({'estimate' if estimate else 'count'}; layer {big!r}: "
                                 f"{r['layers'][big][key]}); one Loihi 2 chip has "
                                 f"{r['limit'][key]}"))
    return out


# ----------------------------------------------------------------------------- quantization


def _round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize(layers, dt: float, *, input_shape=(), scale: str = "auto") -> LoihiNetwork:
    """Map float layers to netx's integers; raise if any design rule is broken.

    Every layer is checked (:func:`check`) and every layer without an error is quantized, so
    the error lists the violations of the parameters (ranges, decays, delays, ...) and of
    the integers (weight and bias ranges, netx's packing) of all layers at once.

    Args:
        layers: the :class:`FloatLayer` chain (from :func:`layers_from_program`).
        dt: the time step in seconds.
        input_shape: the network input's shape.
        scale: ``"auto"`` (per-layer threshold mantissa that uses the full weight range,
            rounding to nearest) or ``"paper"`` (the NIR paper importer's fixed-point LIF
            mapping, truncating). See the module docstring.

    Returns:
        The :class:`LoihiNetwork`; its ``warnings`` list the approximations (warning-level
        :class:`~nirjax.lowering.Violation` records, not issued here).

    Raises:
        DesignRuleError: (a :class:`~nirjax.LoweringError`) listing every violated rule.
    """
    if scale not in ("auto", "paper"):
        raise DesignRuleError(TARGET, [Violation(
            "graph", "scale", "'auto' or 'paper'", scale,
            f"unknown scale {scale!r}; expected 'auto' or 'paper'")])
    errors, warns, out, roundings = [], [], [], []
    for layer in layers:
        found = _check_layer(layer, dt, scale)
        layer_errors = [x for x in found if x.severity == "error"]
        errors += layer_errors
        warns += [x for x in found if x.severity != "error"]
        if layer_errors:
            continue
        q, r, extra = _quantize_layer(layer, dt, scale)
        errors += extra
        out.append(q)
        roundings += r
    errors += [x for x in _check_chip(layers) if x.severity == "error"]
    if errors:
        raise DesignRuleError(TARGET, errors)
    for q in out:
        warns += _overflow(q)
    return LoihiNetwork(tuple(input_shape), tuple(out), float(dt), scale, tuple(roundings),
                        tuple(warns))


def _rounding(node, quantity, exact_units, integer, unit, note=""):
    """A :class:`Rounding` from exact values in integer units and the unit in NIR terms."""
    exact_units = np.asarray(exact_units, np.float64)
    integer = np.asarray(integer)
    unit = np.broadcast_to(np.asarray(unit, np.float64), exact_units.shape)
    err = np.abs(integer - exact_units) * np.abs(unit)
    big = float(np.max(np.abs(exact_units * unit))) if exact_units.size else 0.0
    k = int(np.argmax(np.abs(exact_units))) if exact_units.size else 0
    u = float(np.abs(unit.ravel()[k])) if unit.size else 0.0
    return Rounding(node, quantity, float(exact_units.ravel()[k] * unit.ravel()[k])
                    if exact_units.size else 0.0,
                    int(integer.ravel()[k]) if integer.size else 0,
                    float(np.max(err)) if err.size else 0.0,
                    float(np.max(err)) / big if big > 0 else 0.0, note,
                    1.0 / u if u > 0 else 1.0)


def _auto_vth(all_r, bias_ratio, lo, hi_mixed):
    """The largest integer vThMant keeping ``vth * ratio`` within ``[lo, hi]`` (``hi = 255``
    without negative ratios), ``vth * bias_ratio`` within 13 bits and itself within 17 bits.
    Returns ``(vth, bias_too_large)``."""
    pos = float(np.max(all_r, initial=0.0))
    neg = float(-np.min(all_r, initial=0.0))
    hi = hi_mixed if neg > 0 else _limit("weight_max_excitatory")
    if pos == 0:  # all weights <= 0: Lava's clip_weights keeps 8 bits of magnitude
        lo = max(lo, -_limit("weight_max_excitatory"))
    cands = [float(_limit("vth_max"))]
    if pos > 0:
        cands.append(hi / pos)
    if neg > 0:
        cands.append(-lo / neg)
    bpos = float(np.max(bias_ratio, initial=0.0))
    bneg = float(-np.min(bias_ratio, initial=0.0))
    if bpos > 0:
        cands.append(_limit("bias_max") / bpos)
    if bneg > 0:
        cands.append(-_limit("bias_min") / bneg)
    vth = int(math.floor(min(cands)))
    return max(vth, 1), vth < 1


def _quantize_layer(layer: FloatLayer, dt, scale):
    from .netx import check_packing  # netx's packing; that module imports this one

    name = layer.name
    p = layer.params
    theta = p["v_threshold"]
    c, d, gm, gs = _gains(layer, dt)
    conv = layer.conv is not None
    rows = c.reshape(c.shape[0], -1)[:, 0] if conv else c.reshape(-1)
    # ratios: weight in units of the threshold (one row per neuron / output channel)
    if conv:
        ratio = layer.weight * rows[:, None, None, None]
    else:
        ratio = layer.weight * rows[:, None]
    ratio_rec = None if layer.rec_weight is None else layer.rec_weight * rows[:, None]
    all_r = np.concatenate([ratio.ravel()] + ([ratio_rec.ravel()] if ratio_rec is not None
                                               else []))
    bias_ratio = d.reshape(-1)
    errors: list[Violation] = []
    roundings: list[Rounding] = []
    if scale == "paper":
        vth = int(np.trunc(131071.0 * float(theta.ravel()[0]))) >> 9
        per = 256.0 * (dt / p["tau"]).reshape(-1) * p["r"].reshape(-1)
        w_exact = layer.weight * per[:, None]
        w_int = np.trunc(w_exact).astype(np.int64)
        w_rec_exact = None if layer.rec_weight is None else layer.rec_weight * per[:, None]
        w_rec = None if w_rec_exact is None else np.trunc(w_rec_exact).astype(np.int64)
        b_exact = 256.0 * d.reshape(-1) * theta.reshape(-1)
        bias = np.trunc(b_exact).astype(np.int64)
        v_decay = int(np.trunc(4095.0 * gm.ravel()[0]))
        i_decay = 4096
        state_scale = np.full(layer.size, 2.0 ** 14)
        unit_w = 1.0 / per[:, None]
        roundings.append(_rounding(name, "v_threshold", 131071.0 * theta.ravel()[:1] / 512,
                                   [vth], 512.0 / 131071.0,
                                   "vThMant = int(131071 theta) >> 9 (nir_to_lava)"))
        note = "int(256 dt/tau r W) (nir_to_lava)"
    else:
        # netx keeps W @ s exact for weights in its 8-bit range, except where its sign mode
        # (over [W, W_rec]) is mixed but Lava's (per matrix) is not: there Lava's truncation
        # count goes negative (or its clip bites) unless the weights fit 7 bits + sign
        for lo, hi_mixed in ((_limit("weight_min"), _limit("weight_max_mixed")), (-127, 127)):
            vth, bad_bias = _auto_vth(all_r, bias_ratio, lo, hi_mixed)
            w_exact = vth * ratio
            w_int = _round_half_away(w_exact).astype(np.int64)
            w_rec_exact = None if ratio_rec is None else vth * ratio_rec
            w_rec = None if w_rec_exact is None else \
                _round_half_away(w_rec_exact).astype(np.int64)
            if conv or not (np.any(w_int) or (w_rec is not None and np.any(w_rec))) or \
                    check_packing(w_int, w_rec):
                break
        if bad_bias:
            errors.append(Violation(
                name, "bias-range", "|bias ratio| <= 4095 x |weight ratio|", "larger",
                "the bias is too large next to the threshold for a 13-bit bias mantissa"))
        b_exact = vth * bias_ratio
        bias = _round_half_away(b_exact).astype(np.int64)
        v_decay = 0 if layer.neuron == "IF" else int(_round_half_away(4096.0 * gm.ravel()[0]))
        i_decay = int(_round_half_away(4096.0 * gs.ravel()[0])) \
            if layer.neuron == "CubaLIF" else 4096
        state_scale = 64.0 * vth / theta.reshape(-1)
        with np.errstate(divide="ignore"):
            unit_w = 1.0 / (vth * (rows[:, None, None, None] if conv else rows[:, None]))
        note = "round(vThMant c W), c: gain / threshold"
    if not np.any(w_int) and (w_rec is None or not np.any(w_rec)):
        errors.append(Violation(layer.weight_node or name, "weights-nonzero", "a nonzero weight",
                                "all zero after rounding",
                                "every weight rounds to 0; netx fails on an all-zero matrix"))
    lo, hi = _limit("weight_min"), (_limit("weight_max_mixed") if np.any(w_int < 0) or (
        w_rec is not None and np.any(w_rec < 0)) else _limit("weight_max_excitatory"))
    for node, arr in ((layer.weight_node or name, w_int), (layer.rec_node, w_rec)):
        if arr is not None and (arr.min() < lo or arr.max() > hi):
            errors.append(Violation(node, "weight-range", f"[{lo}, {hi}]",
                                    f"[{arr.min()}, {arr.max()}]",
                                    "integer weights out of netx's 8-bit range"))
    if not conv and (np.any(w_int) or (w_rec is not None and np.any(w_rec))) and \
            not check_packing(w_int, w_rec):
        errors.append(Violation(layer.weight_node or name, "netx-packing",
                                "weights netx and Lava keep exactly", "changed by netx/Lava",
                                "netx's weight packing and Lava's truncation change these "
                                "integer weights (a sign mode mismatch); rescale them"))
    if vth > _limit("vth_max"):
        errors.append(Violation(name, "threshold-range", _limit("vth_max"), vth,
                                "vThMant beyond 17 bits"))
    if bias.size and (bias.min() < _limit("bias_min") or bias.max() > _limit("bias_max")):
        errors.append(Violation(layer.weight_node or name, "bias-range", "[-4096, 4095]",
                                f"[{bias.min()}, {bias.max()}]", "bias beyond 13 bits"))
    # roundings, in NIR units (weights as the NIR weight; decays as the fraction per step)
    with np.errstate(invalid="ignore"):
        safe = np.where(np.isfinite(unit_w), unit_w, 0.0)
    roundings.append(_rounding(layer.weight_node or name, "weight", w_exact, w_int,
                               np.broadcast_to(safe, w_exact.shape), note))
    if w_rec is not None:
        roundings.append(_rounding(layer.rec_node, "weight", w_rec_exact, w_rec,
                                   np.broadcast_to(safe if not conv else 0.0, w_rec.shape)
                                   if not conv else 0.0, note))
    if np.any(b_exact):
        roundings.append(_rounding(layer.weight_node or name, "bias",
                                   b_exact, bias, 64.0 / state_scale,
                                   "bias mantissa, bias_exp 6 (netx); in units of v"))
    if layer.delay is not None and layer.delay_exact is not None and not np.array_equal(
            layer.delay, layer.delay_exact):
        roundings.append(_rounding(layer.delay_nodes[0], "delay", layer.delay_exact,
                                   layer.delay, dt, "whole steps, floor(delay/dt + 1/2)"))
    if layer.neuron != "IF":
        roundings.append(_rounding(name, "v_decay", 4096.0 * gm.ravel()[:1], [v_decay],
                                   1.0 / 4096.0, "vDecay/4096 vs dt/tau_mem"))
    if layer.neuron == "CubaLIF":
        roundings.append(_rounding(name, "i_decay", 4096.0 * gs.ravel()[:1], [i_decay],
                                   1.0 / 4096.0, "iDecay/4096 vs dt/tau_syn"))
    if not np.any(b_exact):
        bias_out = None
    else:
        bias_out = bias.reshape(-1) if not conv else bias.reshape(layer.shape[0], -1)[:, 0]
    kind = "conv" if conv else ("dense_rec" if w_rec is not None else "dense")
    q = LoihiLayer(name=name, kind=kind, weight=w_int, weight_rec=w_rec,
                   delay=None if layer.delay is None else layer.delay.astype(np.int64),
                   bias=bias_out, i_decay=int(i_decay), v_decay=int(v_decay), v_th=int(vth),
                   shape=layer.shape, in_shape=tuple(layer.in_shape),
                   conv=None if not conv else {k: layer.conv[k] for k in
                                               ("stride", "padding", "dilation", "groups")},
                   flatten_before=layer.flatten_before,
                   nodes={"neuron": name, "weight": layer.weight_node, "rec": layer.rec_node,
                          "delay": layer.delay_nodes},
                   scale=state_scale)
    return q, roundings, errors
