r"""Speck / DYNAP-CNN: discretization, memory, layer-to-core mapping and design rules (NumPy).

Everything here reproduces sinabs 3.1.3's DYNAP-CNN backend
(``sinabs/backend/dynapcnn/``, the vendor's own toolchain for Speck), read from its source;
file:line references are to that version. Nothing imports ``sinabs``, ``torch`` or the
nirjax compiler: the inputs are plain arrays, described by :class:`SpeckLayer`.

A DYNAP-CNN layer is ``weight -> IAF -> pooling`` on one core (``dynapcnn_layer.py:55-172``):
a ``Conv2d`` (an ``Affine``/``Linear`` becomes a convolution whose kernel covers its whole
input, ``dynapcnn_layer.py:17-52``), integrate-and-fire neurons, then sum pooling of the
output spike counts on the way to the next core. ``AvgPool2d`` is turned into sum pooling
and its ``1/(kh*kw)`` multiplied into the NEXT layer's weights (not its bias) before that
layer is discretized (``dynapcnn_layer_utils.py:193-222``, ``dynapcnn_layer.py:109-111``).

Discretization (``discretize.py:177-365``), one common scale per layer::

    scale_w = s(W, 8 bits)   scale_b = s(b, 8 bits)   scale_t = s((min_v_mem, theta), 16 bits)
    scale   = min(scale_w, scale_b, scale_t)
    W_int   = round(W * scale)    b_int = round(b * scale)
    theta_int = round(theta * scale)    min_v_mem_int = round(min_v_mem * scale)

where ``s(x, n) = (2**(n-1) - 1) / max(x)`` when ``|min(x)| <= |max(x)| * 128/127`` (the
negative range is one larger), else ``2**(n-1) / |min(x)|`` (absolute values taken);
``round`` is half to even; a missing bias counts as zeros and a missing lower clamp as
``-2**15``. All of it is float32 arithmetic as torch does it: ``127 / x`` is
``float32(1/x) * 127`` (``Tensor.__rtruediv__`` multiplies by the reciprocal) and the
Python float ``128/127`` is rounded to float32 before the product. If the spiking layer
already holds a membrane state, sinabs includes it in the scale (``discretize.py:273-281``);
a lowered graph starts from zero, so it never does here.

Memory per layer (``dynapcnn_layer.py:213-244``), in words, for ``c_in -> c_out`` channels, a
``kh x kw`` kernel and an ``H x W`` neuron map::

    kernel = c_in * 2**(ceil(log2(kh*kw)) + ceil(log2(c_out)))
    neuron = c_out * 2**(ceil(log2(H)) + ceil(log2(W)))
    bias   = c_out with a bias, else 0

Cores 0..8 of Speck 2F (``chips/dynapcnn.py:299-332``): kernel 16, 16, 16, 32, 32, 64, 64, 16,
16 Ki words; neurons 64, 64, 64, 32, 32, 16, 16, 16, 16 Ki; bias 1024 each. A layer fits a
core when all three fit (``mapping.py:19-25``); layers are assigned to distinct cores by a
maximum bipartite matching found with breadth-first augmenting paths (``mapping.py:44-231``);
an incomplete matching is sinabs' ``ValueError: No valid mapping found``.
:func:`map_layers_to_cores` solves the same problem with the same search order, so it returns
the same assignment.

Limits that sinabs leaves to samna's ``validate_configuration`` (``config_builder.py:85``,
not installable here) come from SynSense's samna documentation of the Speck CNN layer
(``samna/models/speckSeries/speck2e.html``, the family sinabs' Speck 2F builder shares,
``chips/speck2f.py``): input at most 128x128, output map at most 64x64, at most 1024
features, kernel at most 16x16, stride 1, 2, 4 or 8 and padding 0..7 per axis, pooling 1, 2
or 4, fan-out 2. :data:`RULES` lists every rule with its source.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Callable, NamedTuple, Sequence

import numpy as np

from ..violations import DesignRuleError, Violation
from ..violations import raise_violations as _raise

__all__ = [
    "WEIGHT_BITS", "STATE_BITS", "DEFAULT_MIN_V_MEM", "CORE_MEMORY", "N_CORES",
    "MAX_KERNEL", "STRIDES", "POOLS", "MAX_PADDING", "MAX_FEATURES", "MAX_INPUT_SIZE",
    "MAX_OUTPUT_SIZE", "FLOAT32_EXACT",
    "Violation", "DesignRuleError", "Rule", "RULES", "SpeckLayer", "Discretized",
    "MemoryWords", "QuantLayer", "SpeckNetwork", "CountBound",
    "discretization_scale", "discretize", "memory_words", "fitting_cores",
    "map_layers_to_cores", "check_layers", "quantize", "lower_layers", "count_bounds",
    "raise_violations",
]

WEIGHT_BITS = 8            # discretize.py:10
STATE_BITS = 16            # discretize.py:11
DEFAULT_MIN_V_MEM = -(2 ** 15)  # discretize.py:254-255, chips/dynapcnn.py:157-158
N_CORES = 9
CORE_MEMORY = tuple(       # (kernel, neuron, bias) words per core, chips/dynapcnn.py:301-324
    (k * 1024, n * 1024, 1024)
    for k, n in zip((16, 16, 16, 32, 32, 64, 64, 16, 16), (64, 64, 64, 32, 32, 16, 16, 16, 16))
)
MAX_KERNEL = 16            # samna docs; sinabs validate_memory_speck.py:38-39
STRIDES = (1, 2, 4, 8)     # samna docs; validate_memory_speck.py:44-45, 93-102
POOLS = (1, 2, 4)          # samna docs; validate_memory_speck.py:26-33 (AvgPool2d)
MAX_PADDING = 7            # samna docs
MAX_FEATURES = 1024        # samna docs; validate_memory_speck.py:41-42
MAX_INPUT_SIZE = 128       # samna docs ("max input dimension 128x128")
MAX_OUTPUT_SIZE = 64       # samna docs ("max feature output size 64x64")
FLOAT32_EXACT = 2 ** 24    # every integer of magnitude <= 2**24 is a float32


def raise_violations(violations: Sequence[Violation]) -> None:
    """Raise :class:`~nirjax.lowering.violations.DesignRuleError` for ``"speck"`` listing
    ``violations``, if there is any.

    >>> raise_violations([])
    """
    _raise("speck", violations)


# ----------------------------------------------------------------------------- layers


@dataclasses.dataclass(frozen=True)
class SpeckLayer:
    """One DYNAP-CNN layer in float: weight -> IF -> pooling, as a NIR graph gives it.

    Attributes:
        name: the weight node's name (the layer is called after it).
        kind: ``"conv"`` (Conv2d) or ``"linear"`` (Affine/Linear, run as a convolution whose
            kernel is the whole input map).
        weight: float32 ``(c_out, c_in/groups, kh, kw)`` (a Linear's ``(out, in)`` reshaped to
            ``(out, C, H, W)`` of its input map, C-major as ``Flatten`` orders it).
        bias: float32 ``(c_out,)`` or ``None`` (NIR ``Linear``).
        in_shape: ``(C, H, W)`` of the layer's input (before a Flatten, for a Linear).
        stride, padding, dilation: per axis; ``padding`` as ``(low, high)`` pairs.
        groups: convolution groups.
        v_threshold, r, v_reset: the IF node's arrays as given (one per neuron).
        min_v_mem: float lower clamp of the membrane, or ``None`` (sinabs then uses
            ``-2**15``). ``sinabs.from_nir`` gives an IF ``-v_threshold``.
        pool: pooling kernels after the IF, in order, each ``(kh, kw)``.
        pool_strides, pool_paddings: the matching strides and paddings.
        pool_average: for each pooling, whether it is an ``AvgPool2d``.
        rescale: factor multiplied into this layer's weights before discretization (the
            product of ``1/(kh*kw)`` of the average poolings in front of it; 1.0 if none).
        nodes: every node of the layer: ``{"weight": .., "neuron": .., "pool": (..),
            "flatten": ..}``.
    """

    name: str
    kind: str
    weight: np.ndarray
    bias: np.ndarray | None
    in_shape: tuple
    stride: tuple = (1, 1)
    padding: tuple = ((0, 0), (0, 0))
    dilation: tuple = (1, 1)
    groups: int = 1
    v_threshold: np.ndarray = dataclasses.field(default_factory=lambda: np.ones(1, np.float32))
    r: np.ndarray | None = None
    v_reset: np.ndarray | None = None
    min_v_mem: float | None = None
    pool: tuple = ()
    pool_strides: tuple = ()
    pool_paddings: tuple = ()
    pool_average: tuple = ()
    rescale: float = 1.0
    nodes: dict = dataclasses.field(default_factory=dict)

    @property
    def kernel(self) -> tuple:
        """``(kh, kw)``."""
        return tuple(int(k) for k in self.weight.shape[2:])

    @property
    def c_out(self) -> int:
        """Output channels (features)."""
        return int(self.weight.shape[0])

    @property
    def neuron_shape(self) -> tuple:
        """``(c_out, H, W)`` of the IF layer (the convolution's output map)."""
        hw = tuple(
            (n + lo + hi - d * (k - 1) - 1) // s + 1
            for n, (lo, hi), k, s, d in zip(self.in_shape[1:], self.padding, self.kernel,
                                             self.stride, self.dilation))
        return (self.c_out,) + hw

    @property
    def pool_total(self) -> tuple:
        """The cumulative pooling ``(kh, kw)``: chained poolings multiply
        (``dynapcnn_layer_utils.py:165-190``)."""
        total = [1, 1]
        for k in self.pool:
            total = [total[0] * int(k[0]), total[1] * int(k[1])]
        return tuple(total)

    @property
    def out_shape(self) -> tuple:
        """``(c_out, H, W)`` after pooling (floor, as torch's pooling)."""
        c, h, w = self.neuron_shape
        for (kh, kw), (sh, sw) in zip(self.pool, self.pool_strides):
            h, w = (h - kh) // sh + 1, (w - kw) // sw + 1
        return (c, h, w)

    @property
    def pool_scale(self) -> float:
        """Factor the NEXT layer's weights take: ``prod 1/(kh*kw)`` over average poolings,
        multiplied in Python floats as sinabs does (``dynapcnn_layer_utils.py:181-190``)."""
        scale = 1.0
        for (kh, kw), avg in zip(self.pool, self.pool_average):
            scale *= 1.0 / (int(kh) * int(kw)) if avg else 1.0
        return scale

    def uniform_threshold(self) -> float | None:
        """The layer's one threshold (float32), or ``None`` when neurons differ."""
        values = np.unique(np.asarray(self.v_threshold, np.float32))
        return float(values[0]) if values.size == 1 else None


# ----------------------------------------------------------------------------- discretization


def discretization_scale(values, bits: int) -> np.float32:
    """sinabs' ``determine_discretization_scale`` (``discretize.py:308-338``) in float32.

    The largest factor that maps ``values`` into ``[-2**(bits-1), 2**(bits-1) - 1]``: from the
    maximum when ``|min| <= |max| * 128/127``, else from the minimum. Torch's float32
    operations are reproduced exactly: the ratio is rounded to float32 before the product and
    ``c / x`` is ``float32(1 / x) * c``. An all-zero input gives ``inf``.

    >>> float(discretization_scale(np.array([-0.5, 1.0], np.float32), 8))
    127.0
    >>> float(discretization_scale(np.array([-1.0, 0.5], np.float32), 8))
    128.0
    """
    lo_d = -(2 ** (bits - 1))
    hi_d = 2 ** (bits - 1) - 1
    v = np.asarray(values, np.float32)
    vmin, vmax = np.float32(v.min()), np.float32(v.max())
    ratio = np.float32(abs(lo_d / hi_d))
    with np.errstate(divide="ignore", over="ignore"):
        if np.abs(vmin) <= np.abs(vmax) * ratio:
            return np.float32(np.abs((np.float32(1) / vmax) * np.float32(hi_d)))
        return np.float32(np.abs((np.float32(1) / vmin) * np.float32(lo_d)))


class Discretized(NamedTuple):
    """A layer's integer parameters and the scale that produced them.

    Attributes:
        weight: int32, the shape of the float weight.
        bias: int32 ``(c_out,)`` or ``None``.
        threshold: int (one per layer).
        min_v_mem: int (the lower clamp of the membrane).
        scale: the common float32 factor.
    """

    weight: np.ndarray
    bias: np.ndarray | None
    threshold: int
    min_v_mem: int
    scale: np.float32


def _round(x, scale):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.rint(np.asarray(x, np.float32) * np.float32(scale))


def discretize(weight, bias, threshold: float, min_v_mem: float | None = None,
               rescale: float = 1.0) -> Discretized:
    """Integer weights, bias, threshold and lower clamp of one layer, as sinabs computes them.

    ``DynapcnnLayer(..., discretize=True, rescale_weights=rescale)`` (``dynapcnn_layer.py:
    109-124``) followed by ``discretize_conv_spike_`` (``discretize.py:177-305``): the weights
    are first multiplied by ``rescale`` (float32), then everything takes the common scale of
    the module docstring. The membrane state is taken as zero (not initialised).

    Args:
        weight: float weights (any shape).
        bias: float bias ``(c_out,)`` or ``None`` (scaled as zeros, returned as ``None``).
        threshold: the layer's spike threshold.
        min_v_mem: lower clamp, ``None`` for sinabs' default ``-2**15``.
        rescale: the average-pooling factor of the layers in front (1.0: none).

    Returns:
        :class:`Discretized`.

    >>> d = discretize(np.array([[0.5, -0.25]], np.float32), None, 1.0, -1.0)
    >>> d.weight.tolist(), d.threshold, d.min_v_mem, float(d.scale)
    ([[127, -64]], 254, -254, 254.0)
    """
    w = np.asarray(weight, np.float32)
    if rescale != 1:
        w = w * np.float32(rescale)
    b = np.zeros(w.shape[0], np.float32) if bias is None else np.asarray(bias, np.float32)
    vmin = np.float32(DEFAULT_MIN_V_MEM if min_v_mem is None else min_v_mem)
    thresholds = np.array([vmin, np.float32(threshold)], np.float32)
    scale = discretization_scale(w, WEIGHT_BITS)
    for s in (discretization_scale(b, WEIGHT_BITS), discretization_scale(thresholds, STATE_BITS)):
        if s < scale:  # Python's min(): the first of equal values wins
            scale = s
    t = _round(thresholds, scale)
    return Discretized(
        weight=_round(w, scale).astype(np.int32),
        bias=None if bias is None else _round(b, scale).astype(np.int32),
        threshold=int(t[1]), min_v_mem=int(t[0]), scale=np.float32(scale))


# ----------------------------------------------------------------------------- memory, cores


class MemoryWords(NamedTuple):
    """Words of kernel, neuron and bias memory a layer occupies on its core."""

    kernel: int
    neuron: int
    bias: int


def _ceil_log2(n: int) -> int:
    return (int(n) - 1).bit_length()


def memory_words(c_in: int, c_out: int, kernel: Sequence[int], neuron_hw: Sequence[int],
                 has_bias: bool) -> MemoryWords:
    """Memory of one layer (``DynapcnnLayer.memory_summary``, ``dynapcnn_layer.py:213-244``).

    ``kernel = c_in * 2**(ceil(log2(kh*kw)) + ceil(log2(c_out)))``,
    ``neuron = c_out * 2**(ceil(log2(H)) + ceil(log2(W)))``, ``bias = c_out`` (0 without bias).

    >>> memory_words(2, 16, (5, 5), (16, 16), True)
    MemoryWords(kernel=1024, neuron=4096, bias=16)
    """
    kh, kw = (int(k) for k in kernel)
    h, w = (int(n) for n in neuron_hw)
    return MemoryWords(
        kernel=int(c_in) * 2 ** (_ceil_log2(kh * kw) + _ceil_log2(c_out)),
        neuron=int(c_out) * 2 ** (_ceil_log2(h) + _ceil_log2(w)),
        bias=int(c_out) if has_bias else 0)


def fitting_cores(words: MemoryWords, limits=CORE_MEMORY) -> list:
    """Cores whose kernel, neuron and bias memories all hold ``words`` (``mapping.py:19-41``).

    >>> fitting_cores(MemoryWords(32768, 256, 256))
    [3, 4, 5, 6]
    """
    return [c for c, lim in enumerate(limits)
            if all(0 <= u <= m for u, m in zip(words, lim))]


def map_layers_to_cores(words: Sequence[MemoryWords], limits=CORE_MEMORY) -> tuple | None:
    """Assign each layer a distinct core it fits, exactly as sinabs' Speck 2F builder does.

    ``Speck2FConfigBuilder.map_layers_to_cores`` (``config_builder.py:62-73``) builds a flow
    network source -> layers -> cores -> sink with unit capacities (``mapping.py:142-206``) and
    augments along breadth-first shortest paths until none is left (``mapping.py:92-139``).
    Which maximum matching comes out depends on the order in which edges are explored, so this
    explores them in the same order: a layer's edges are its reverse edge to the source, then
    its cores in increasing index; a core's are the reverse edges of the layers that fit it,
    in layer order, then its edge to the sink. ``words`` are in sinabs' layer order (its
    topological index).

    Returns:
        ``(core of layer 0, core of layer 1, ...)``, or ``None`` when some layer gets no core
        (sinabs raises ``ValueError: No valid mapping found``, ``mapping.py:226-230``).

    >>> map_layers_to_cores([MemoryWords(1024, 4096, 16), MemoryWords(32768, 256, 256)])
    (0, 3)
    """
    n_layers, n_cores = len(words), len(limits)
    sink = n_layers + n_cores + 1
    head, cap, flow, rev, tail = [], [], [], [], []
    adj = [[] for _ in range(sink + 1)]

    def add(a, b, c):
        for s, t, k in ((a, b, c), (b, a, 0)):
            rev.append(len(head) + (1 if s == a else -1))
            head.append(t)
            tail.append(s)
            cap.append(k)
            flow.append(0)
            adj[s].append(len(head) - 1)

    for i in range(n_layers):
        add(0, i + 1, 1)
    for i, w in enumerate(words):
        for c in fitting_cores(w, limits):
            add(i + 1, n_layers + 1 + c, 1)
    for c in range(n_cores):
        add(n_layers + 1 + c, sink, 1)

    while True:
        pred = [None] * (sink + 1)
        queue = deque([0])
        while queue:
            node = queue.popleft()
            for e in adj[node]:
                t = head[e]
                if pred[t] is None and t != 0 and cap[e] > flow[e]:
                    pred[t] = e
                    queue.append(t)
        if pred[sink] is None:
            break
        e = pred[sink]
        while e is not None:
            flow[e] += 1
            flow[rev[e]] -= 1
            e = pred[tail[e]]

    cores = []
    for i in range(n_layers):
        cores.extend(head[e] - n_layers - 1 for e in adj[i + 1] if flow[e] == 1)
    return tuple(cores) if len(cores) == n_layers else None


# ----------------------------------------------------------------------------- design rules


class Rule(NamedTuple):
    """A Speck design rule as data.

    Attributes:
        name: short name, used in :class:`Violation`.
        source: where the limit comes from.
        check: ``check(layer) -> [(limit, value), ...]``, one pair per breach (empty when the
            layer complies).
    """

    name: str
    source: str
    check: Callable


def _pairs(cond, limit, value):
    return [] if cond else [(limit, value)]


def _axes(values):
    return "x".join(str(int(v)) for v in values)


def _check_pool(layer):
    out = []
    for k, s, p in zip(layer.pool, layer.pool_strides, layer.pool_paddings):
        if int(k[0]) != int(k[1]):
            out.append(("square pooling", f"pooling {_axes(k)}"))
        if tuple(int(v) for v in s) != tuple(int(v) for v in k):
            out.append(("pooling stride equal to its kernel", f"kernel {_axes(k)}, stride "
                        f"{_axes(s)}"))
        if any(int(v) != 0 for v in np.ravel(p)):
            out.append(("no pooling padding", f"padding {_axes(np.ravel(p))}"))
    kh, kw = layer.pool_total
    if kh != kw or kh not in POOLS:
        out.append((f"pooling {', '.join(map(str, POOLS))} (the product of chained poolings)",
                    f"pooling {_axes((kh, kw))}"))
    return out


def _uniform(values, target=None):
    v = np.unique(np.asarray(values, np.float64))
    return v.size == 1 and (target is None or v[0] == target)


RULES = (
    Rule("square kernel", "sinabs dynapcnn_layer.py:113-116 (ValueError)",
         lambda l: _pairs(l.kernel[0] == l.kernel[1], "kh == kw",
                          f"kernel {_axes(l.kernel)}")),
    Rule("kernel size", "samna docs (max kernel 16x16); validate_memory_speck.py:38",
         lambda l: _pairs(max(l.kernel) <= MAX_KERNEL, f"at most {MAX_KERNEL}x{MAX_KERNEL}",
                          f"kernel {_axes(l.kernel)}")),
    Rule("stride", "samna docs (stride {1,2,4,8} per axis)",
         lambda l: _pairs(all(int(s) in STRIDES for s in l.stride),
                          f"{', '.join(map(str, STRIDES))} per axis",
                          f"stride {_axes(l.stride)}")),
    Rule("padding", "samna docs (padding 0..7 per axis); one value per axis in the config "
         "(chips/dynapcnn.py:109-112)",
         lambda l: _pairs(all(lo == hi and 0 <= lo <= MAX_PADDING for lo, hi in l.padding),
                          f"symmetric 0..{MAX_PADDING} per axis",
                          f"padding {l.padding}")),
    Rule("dilation", "the core configuration has no dilation (chips/dynapcnn.py:97-121)",
         lambda l: _pairs(all(int(d) == 1 for d in l.dilation), "1",
                          f"dilation {_axes(l.dilation)}")),
    Rule("groups", "the core configuration has no groups (chips/dynapcnn.py:128-129)",
         lambda l: _pairs(int(l.groups) == 1, "1", f"groups {l.groups}")),
    Rule("features", "samna docs (max 1024 features); validate_memory_speck.py:41",
         lambda l: _pairs(l.c_out <= MAX_FEATURES, f"at most {MAX_FEATURES} output channels",
                          f"{l.c_out} output channels")),
    Rule("input size", "samna docs (max input dimension 128x128)",
         lambda l: _pairs(max(l.in_shape[1:]) <= MAX_INPUT_SIZE,
                          f"at most {MAX_INPUT_SIZE}x{MAX_INPUT_SIZE}",
                          f"input {_axes(l.in_shape[1:])}")),
    Rule("output size", "samna docs (max feature output size 64x64)",
         lambda l: _pairs(max(l.neuron_shape[1:]) <= MAX_OUTPUT_SIZE,
                          f"at most {MAX_OUTPUT_SIZE}x{MAX_OUTPUT_SIZE}",
                          f"output map {_axes(l.neuron_shape[1:])}")),
    Rule("pooling", "samna docs (pooling 1:1, 1:2, 1:4); sinabs dynapcnn_layer.py:118-120 "
         "(square), dynapcnn_layer_utils.py:209-214 (stride = kernel); sinabs.from_nir drops "
         "pooling padding (nir.py:109-112)", _check_pool),
    Rule("one threshold per layer", "one threshold_high per core (chips/dynapcnn.py:161-166); "
         "discretize.py:259 fails on per-neuron thresholds",
         lambda l: _pairs(_uniform(l.v_threshold), "one v_threshold per layer",
                          f"{np.unique(np.asarray(l.v_threshold)).size} different values")),
    Rule("positive threshold", "a spike needs v >= threshold > 0 (MultiSpike, "
         "activation/spike_generation.py:39-41)",
         lambda l: _pairs(l.uniform_threshold() is None or l.uniform_threshold() > 0,
                          "v_threshold > 0", f"v_threshold {l.uniform_threshold()}")),
    Rule("IF r", "the chip's IAF adds its input unscaled (sinabs.from_nir ignores r, "
         "nir.py:86-92); fold r into the weights before lowering",
         lambda l: _pairs(l.r is None or _uniform(l.r, 1.0), "r = 1",
                          f"r in [{np.min(l.r) if l.r is not None else 1}, "
                          f"{np.max(l.r) if l.r is not None else 1}]")),
    Rule("IF v_reset", "the chip resets by subtracting the threshold (MembraneSubtract, "
         "chips/dynapcnn.py:147-155); a reset value is not representable",
         lambda l: _pairs(l.v_reset is None or _uniform(l.v_reset, 0.0), "v_reset = 0",
                          f"v_reset in [{np.min(l.v_reset) if l.v_reset is not None else 0}, "
                          f"{np.max(l.v_reset) if l.v_reset is not None else 0}]")),
    Rule("memory", "a layer must fit one core's kernel, neuron and bias memory "
         "(mapping.py:19-25, chips/dynapcnn.py:301-324)",
         lambda l: _pairs(bool(fitting_cores(_layer_words(l))), "a core with kernel <= "
                          f"{max(m[0] for m in CORE_MEMORY)}, neuron <= "
                          f"{max(m[1] for m in CORE_MEMORY)} and bias <= 1024 words, in the "
                          "combinations of chips/dynapcnn.py:301-324",
                          "kernel {}, neuron {}, bias {} words".format(*_layer_words(l)))),
)


def _layer_words(layer: SpeckLayer) -> MemoryWords:
    # sinabs reads c_in off the weight, (c_out, c_in/groups, kh, kw)
    return memory_words(int(layer.weight.shape[1]), layer.c_out, layer.kernel,
                        layer.neuron_shape[1:], layer.bias is not None)


def check_layers(layers: Sequence[SpeckLayer]) -> list:
    """Every per-layer rule of :data:`RULES` and the chip-wide ones, on float layers.

    Chip-wide: at most :data:`N_CORES` layers, and a one-to-one layer-to-core assignment
    (:func:`map_layers_to_cores`) when every layer fits some core. The quantized threshold
    must also be at least 1; :func:`quantize` checks that.

    Returns:
        A list of :class:`Violation`, empty when the layers can run.
    """
    out = []
    for layer in layers:
        node = {"one threshold per layer": "neuron", "positive threshold": "neuron",
                "IF r": "neuron", "IF v_reset": "neuron"}
        for rule in RULES:
            for limit, value in rule.check(layer):
                name = layer.nodes.get(node.get(rule.name, "weight"), layer.name)
                if rule.name == "pooling" and layer.nodes.get("pool"):
                    name = layer.nodes["pool"][0]
                out.append(Violation(name, rule.name, limit, value))
    if len(layers) > N_CORES:
        out.append(Violation("graph", "cores", f"{N_CORES} layers (one per core)",
                             f"{len(layers)} layers"))
    elif layers and not any(v.rule == "memory" for v in out):
        if map_layers_to_cores([_layer_words(l) for l in layers]) is None:
            out.append(Violation(
                "graph", "core assignment", "each layer on its own core with enough memory "
                "(mapping.py:226-230)", "no assignment: memory per layer " + ", ".join(
                    f"{l.name} {tuple(_layer_words(l))}" for l in layers)))
    return out


# ----------------------------------------------------------------------------- quantization


@dataclasses.dataclass(frozen=True)
class QuantLayer:
    """One layer as it runs on the chip.

    Attributes:
        layer: the float :class:`SpeckLayer` it comes from.
        weight: int32 ``(c_out, c_in, kh, kw)`` (a Linear's in convolution layout).
        bias: int32 ``(c_out,)`` or ``None``.
        threshold: int.
        min_v_mem: int.
        scale: float32 common factor (float value = integer / scale).
        memory: :class:`MemoryWords`.
        weight_error: largest ``|W_float*rescale - W_int/scale|`` (in float units).
        threshold_error: ``|theta - theta_int/scale|``.
    """

    layer: SpeckLayer
    weight: np.ndarray
    bias: np.ndarray | None
    threshold: int
    min_v_mem: int
    scale: np.float32
    memory: MemoryWords
    weight_error: float
    threshold_error: float

    @property
    def name(self) -> str:
        """The weight node's name."""
        return self.layer.name

    @property
    def linear_weight(self) -> np.ndarray:
        """The weights in ``(out, in)`` layout (for an Affine/Linear node)."""
        return self.weight.reshape(self.weight.shape[0], -1)


@dataclasses.dataclass(frozen=True)
class SpeckNetwork:
    """A network lowered to Speck: integer layers, their cores, what does not fit.

    Attributes:
        input_shape: ``(C, H, W)`` of the input events.
        layers: the :class:`QuantLayer` s in order (``None`` for a layer that could not be
            discretized, e.g. per-neuron thresholds).
        cores: the core of each layer (sinabs' assignment) or ``None``.
        violations: every broken rule (empty when the network runs).
        notes: what lowering changed that the graph's reader should know (average pooling
            turned into sum pooling, ...).
    """

    input_shape: tuple
    layers: tuple
    cores: tuple | None
    violations: tuple
    notes: tuple = ()

    @property
    def ok(self) -> bool:
        """No violation."""
        return not self.violations


def quantize(layer: SpeckLayer) -> QuantLayer | None:
    """Discretize one layer (``None`` when it has no single threshold).

    >>> l = SpeckLayer("fc", "linear", np.full((1, 2, 1, 1), 0.5, np.float32), None, (2, 1, 1),
    ...                v_threshold=np.ones(1, np.float32), min_v_mem=-1.0)
    >>> q = quantize(l); q.weight.ravel().tolist(), q.threshold
    ([127, 127], 254)
    """
    thr = layer.uniform_threshold()
    if thr is None:
        return None
    d = discretize(layer.weight, layer.bias, thr, layer.min_v_mem, layer.rescale)
    w_float = np.asarray(layer.weight, np.float32)
    if layer.rescale != 1:
        w_float = w_float * np.float32(layer.rescale)
    scale = np.float64(d.scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        w_err = float(np.max(np.abs(w_float.astype(np.float64) - d.weight / scale))) \
            if np.isfinite(scale) and w_float.size else 0.0
        t_err = float(abs(np.float64(np.float32(thr)) - d.threshold / scale)) \
            if np.isfinite(scale) else 0.0
    return QuantLayer(layer, d.weight, d.bias, d.threshold, d.min_v_mem, d.scale,
                      _layer_words(layer), w_err, t_err)


def lower_layers(input_shape, layers: Sequence[SpeckLayer],
                 violations: Sequence[Violation] = (), notes: Sequence[str] = ()) -> SpeckNetwork:
    """Check, discretize and map a chain of layers.

    Args:
        input_shape: ``(C, H, W)`` of the input.
        layers: the float layers in order.
        violations: structural violations found while reading the graph (kept in front).
        notes: remarks to carry into the result.

    Returns:
        :class:`SpeckNetwork` (check ``ok`` or call :func:`raise_violations` on
        ``violations``).
    """
    found = list(violations) + check_layers(layers)
    qlayers = []
    for layer in layers:
        q = quantize(layer)
        if q is not None and q.threshold < 1 and layer.uniform_threshold() > 0:
            found.append(Violation(layer.nodes.get("neuron", layer.name), "threshold range",
                                   "an integer threshold of at least 1",
                                   f"v_threshold {layer.uniform_threshold()} rounds to "
                                   f"{q.threshold} at scale {float(q.scale):.6g} (weights "
                                   "dominate the scale: make the threshold larger relative "
                                   "to the weights)"))
        qlayers.append(q)
    cores = None
    if layers and len(layers) <= N_CORES:
        cores = map_layers_to_cores([_layer_words(l) for l in layers])
    return SpeckNetwork(tuple(int(s) for s in input_shape), tuple(qlayers), cores,
                        tuple(found), tuple(notes))


# ----------------------------------------------------------------------------- range bound


class CountBound(NamedTuple):
    """Worst-case magnitudes in one layer for inputs of at most ``s_in`` events per element.

    Attributes:
        name: the layer.
        s_in: largest input count per element and step.
        current: largest ``|W s + b|`` any neuron receives in a step.
        v_low, v_high: bounds of the membrane after integration.
        spikes: largest spike count of one neuron in one step.
        s_out: largest count per element after pooling (the next layer's ``s_in``).
        float32_exact: every intermediate value is an integer of magnitude at most
            ``2**24 - threshold``, so float32 arithmetic (sinabs' forward, a float
            convolution) is exact and equals int32 arithmetic.
    """

    name: str
    s_in: int
    current: int
    v_low: int
    v_high: int
    spikes: int
    s_out: int
    float32_exact: bool


def count_bounds(network: SpeckNetwork, max_input_count: int = 1,
                 observed: Sequence[int] | None = None) -> list:
    r"""Bound every value the integer simulation computes, layer by layer.

    Proof (by induction over steps): a neuron starts at ``v = 0`` and, after each step, holds
    ``min(v_min, 0) <= v <= theta - 1``: the multi-spike removes ``floor(v'/theta)*theta``
    from a ``v' >= theta`` (leaving ``v' mod theta``), leaves ``v' < theta`` alone, and the
    clamp raises anything below ``v_min``. With inputs of at most ``s`` events per element,
    a step's input current is at most ``A = max_o (sum |W_o| * s + |b_o|)`` in magnitude (every
    partial sum of the convolution, in any order, is bounded by the same sum), so the
    integrated ``v'`` lies in ``[min(v_min, 0) - A, theta - 1 + A]``, a neuron emits at most
    ``floor((theta - 1 + A)/theta)`` spikes, and pooling ``k x k`` multiplies that by ``k*k``
    for the next layer. Float32 holds every integer up to ``2**24``, and the truncating
    division ``v'/theta`` of sinabs' MultiSpike is exact while ``v' <= 2**24 - theta``; so
    when every layer's ``float32_exact`` holds, sinabs' float32 forward, a float32
    convolution at full precision and an int32 simulation compute the same integers.

    With ``observed`` (the largest spike count one neuron of each layer emitted in one step
    during a run, e.g. the ``peak`` state of the ``"speck"`` rule table's IF), the next
    layer's input bound is ``observed[i] * kh * kw`` (its pooling sums ``kh*kw`` counts)
    instead of the worst case: the same proof for that run, with the counts that occurred.

    Args:
        network: a lowered network.
        max_input_count: largest number of input events per element and step.
        observed: per layer, the largest spike count of one neuron in one step (``None``: the
            worst case).

    Returns:
        One :class:`CountBound` per discretized layer.

    >>> q = QuantLayer(SpeckLayer("fc", "linear", np.ones((1, 2, 1, 1), np.float32), None,
    ...                (2, 1, 1)), np.full((1, 2, 1, 1), 100, np.int32), None, 30, -30,
    ...                np.float32(1), MemoryWords(2, 1, 0), 0.0, 0.0)
    >>> b = count_bounds(SpeckNetwork((2, 1, 1), (q,), (0,), ()), 3)[0]
    >>> b.current, b.v_low, b.v_high, b.spikes
    (600, -630, 629, 20)
    """
    out, s = [], int(max_input_count)
    observed = None if observed is None else [int(v) for v in observed]
    for q in network.layers:
        if q is None:
            break
        w = np.abs(q.weight.astype(np.int64)).reshape(q.weight.shape[0], -1).sum(axis=1)
        b = np.zeros_like(w) if q.bias is None else np.abs(q.bias.astype(np.int64))
        current = int(np.max(w * s + b)) if w.size else 0
        low = min(q.min_v_mem, 0) - current
        high = q.threshold - 1 + current
        spikes = max(high, 0) // q.threshold if q.threshold > 0 else 0
        kh, kw = q.layer.pool_total
        if observed is not None and len(out) < len(observed):
            spikes = min(spikes, max(observed[len(out)], 0))
        s_out = spikes * kh * kw
        exact = max(-low, high) <= FLOAT32_EXACT - max(q.threshold, 0) and current <= \
            FLOAT32_EXACT
        out.append(CountBound(q.name, s, current, low, high, spikes, s_out, bool(exact)))
        s = s_out
    return out
