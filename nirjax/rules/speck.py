r"""The ``"speck"`` rule table: Speck / DYNAP-CNN as sinabs 3.1.3 simulates it, in int32.

Same keys as the float table, for the NIR types a DYNAP-CNN core runs (``weight -> IAF ->
sum pooling``, sinabs ``backend/dynapcnn/dynapcnn_layer.py``). Every value on the graph's
edges is an integer (spike counts, integer currents); the parameters are the integers of
``DynapcnnNetwork(..., discretize=True)`` (:mod:`nirjax.lowering.speck.quantize`):

=========================  ===========================================================
NIR type                   integer rule
=========================  ===========================================================
``Input``, ``Output``      identity (event counts, int32)
``Conv2d``                 ``y = W * s + b`` with 8-bit integer ``W``, ``b``: the float
                           convolution of :mod:`nirjax.kernels.conv` on the integers in
                           float32 at ``precision="highest"`` (see below)
``Affine``, ``Linear``     ``y = W s (+ b)``, the same way with :mod:`nirjax.kernels.linear`
                           (sinabs runs it as a convolution whose kernel covers the whole
                           input map, ``dynapcnn_layer.py:17-52``: the same sums)
``SumPool2d``              window sum of the spike counts (int32,
                           :func:`nirjax.kernels.pooling.sum_pool`)
``AvgPool2d``              the same window SUM: the chip has no average pooling; lowering
                           multiplies ``1/(kh*kw)`` into the next layer's weights before
                           discretizing (``dynapcnn_layer_utils.py:193-222``)
``Flatten``                C-major reshape (sinabs' order, whatever ``flatten_order`` says)
``IF``                     :func:`nirjax.kernels.speck.iaf_step`: ``v' = v + x``;
                           ``n = floor(v'/theta)`` if ``v' > 0``; ``v = max(v' - n theta,
                           v_min)`` (multi-spike, subtractive reset, lower clamp)
=========================  ===========================================================

Why float kernels for integer sums: a convolution of integer spike counts by integer weights
is a sum of integer products, which float32 computes exactly as long as every partial sum
stays within ``2**24`` in magnitude (every such integer is a float32, and so is every sum of
two of them); ``precision="highest"`` rules out TF32/bfloat16 passes on accelerators. sinabs'
own forward of the discretized network is float32 too. The partial sums of one output are
bounded by ``sum_k |W_k| s_k + |b|``; for one layer that is ``S * s_max + |b|`` with ``S`` the
largest ``sum |W_o|`` over outputs and ``s_max`` the largest input count. The IF state
carries ``peak``, the largest spike count one neuron emitted in one step so far (bookkeeping,
not chip state), so that after a run the bound can be evaluated with the counts that
actually occurred (:func:`nirjax.lowering.speck.target.check_float32_range`).

Any other NIR type is a :class:`~nirjax.LoweringError` (naming every one). A graph can be
compiled with this table directly when it holds the integers already (the ``.nir`` that
:meth:`nirjax.Lowered.export` writes for Speck: integer values stored as floats, each IF's
lower clamp in ``metadata["speck_min_v_mem"]``, default ``-v_threshold`` as
``sinabs.from_nir``); non-integer values are refused. :func:`nirjax.lower` with target
``"speck"`` builds the integer program from a float graph.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import LoweringError
from ..graph.shapes import conv_geometry, pool_geometry
from ..kernels import conv as conv_k
from ..kernels import linear as linear_k
from ..kernels import pooling as pool_k
from ..kernels import reshape as reshape_k
from ..kernels import speck as speck_k
from ..kernels.geometry import conv_padding
from .float import RULES as FLOAT_RULES
from .float import _params_of
from .table import Rule, RuleTable, register_table

__all__ = ["SPECK", "SpeckIFState", "HIGHEST", "int_params"]

#: Matrix products and convolutions of the table: float32 operands, full precision.
HIGHEST = linear_k.MatmulConfig("highest", None)
_F32 = jnp.float32
_INT_MAX = np.iinfo(np.int32).max


class SpeckIFState(NamedTuple):
    """State of one IF layer.

    Attributes:
        v: the integer membrane (int32, the neuron map's shape): the chip's state.
        peak: the largest spike count one neuron of the layer emitted in one step so far
            (int32 scalar). Not chip state: it bounds the next layer's input for the float32
            range check.
    """

    v: jax.Array
    peak: jax.Array


def _integers(name, node, field, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int32)
    bad = ~(np.isfinite(arr) & (arr == np.round(arr)))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
        raise LoweringError(
            f"node {name!r} ({type(node).__name__}): field {field!r} must hold integers in the "
            f"'speck' arithmetic (the discretized network), got {arr[where]!r} at index "
            f"{where}; lower the float graph with nirjax.lower(graph, 'speck') instead")
    if np.any(np.abs(arr) > _INT_MAX):
        raise LoweringError(f"node {name!r} ({type(node).__name__}): field {field!r} exceeds "
                            f"int32")
    return arr.astype(np.int32)


def int_params(cls):
    """A ``params`` function reading ``cls._fields`` off a node as int32 integers.

    Raises:
        LoweringError: a value is not a whole number.
    """
    read = _params_of(cls)

    def params(name, node):
        p = read(name, node)
        return cls(**{f: _integers(name, node, f, getattr(p, f)) for f in cls._fields})

    return params


def _iaf_params(name, node) -> speck_k.IAFParams:
    """``IAFParams(threshold, min_v_mem)`` of an integer IF node (one threshold per layer,
    ``r = 1``, ``v_reset = 0``; lower clamp from ``metadata["speck_min_v_mem"]``, default
    ``-threshold`` as ``sinabs.from_nir``)."""
    thr = _integers(name, node, "v_threshold", np.asarray(node.v_threshold, np.float64))
    values = np.unique(thr)
    problems = []
    if values.size != 1:
        problems.append(f"one v_threshold per layer (got {values.size} values)")
    elif values[0] < 1:
        problems.append(f"an integer v_threshold >= 1 (got {values[0]})")
    for field, want in (("r", 1.0), ("v_reset", 0.0)):
        v = getattr(node, field, None)
        if v is not None and not np.all(np.asarray(v) == want):
            problems.append(f"{field} = {want:g} (got values in [{np.min(v):g}, {np.max(v):g}])")
    if problems:
        raise LoweringError(f"node {name!r} (IF): the 'speck' arithmetic needs "
                            + "; ".join(problems))
    meta = getattr(node, "metadata", None) or {}
    v_min = meta.get("speck_min_v_mem", -int(values[0]))
    v_min = _integers(name, node, "metadata['speck_min_v_mem']", np.asarray(v_min, np.float64))
    return speck_k.IAFParams(np.int32(values[0]), np.int32(v_min))


def _conv_config(name, node, in_shape, out_shape, semantics, dt, options):
    stride, padding, dilation, groups, kernel = conv_geometry(name, node, 2)
    return conv_k.ConvConfig(stride, conv_padding(padding, kernel, dilation), dilation,
                             groups), HIGHEST


def _no_config(name, node, in_shape, out_shape, semantics, dt, options):
    return None


def _flatten_config(name, node, in_shape, out_shape, semantics, dt, options):
    return tuple(out_shape)


def _pool_config(name, node, in_shape, out_shape, semantics, dt, options):
    return pool_k.PoolConfig(*pool_geometry(name, node))


def _float_weights(p, cfg):
    """Integer weights as float32, once per run (exact: |values| <= 2**8 << 2**24)."""
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, _F32), p)


def _conv_apply(c, x, cfg):
    return conv_k.conv(c, x.astype(_F32), cfg[0], cfg[1])


def _iaf_init(p, cfg, shape, dtype):
    return SpeckIFState(speck_k.iaf_init_state(shape).v, jnp.zeros((), jnp.int32))


def _iaf_step(c, s, x, cfg):
    state, n = speck_k.iaf_step(c, speck_k.IAFState(s.v), x)
    return SpeckIFState(state.v, jnp.maximum(s.peak, jnp.max(n))), n


SPECK = register_table(RuleTable("speck", {
    "Input": FLOAT_RULES["Input"],
    "Output": FLOAT_RULES["Output"],
    "Conv2d": Rule(params=int_params(conv_k.ConvParams), config=_conv_config,
                   prepare=_float_weights, apply=_conv_apply),
    "Affine": Rule(params=int_params(linear_k.AffineParams), config=lambda *a: HIGHEST, prepare=_float_weights,
                   apply=lambda c, x, cfg: linear_k.affine(c, x.astype(_F32), cfg)),
    "Linear": Rule(params=int_params(linear_k.LinearParams), config=lambda *a: HIGHEST,
                   prepare=_float_weights,
                   apply=lambda c, x, cfg: linear_k.linear(c, x.astype(_F32), cfg)),
    "SumPool2d": Rule(params=lambda name, node: None, config=_pool_config,
                      apply=lambda c, x, cfg: pool_k.sum_pool(x, cfg)),
    "AvgPool2d": Rule(params=lambda name, node: None, config=_pool_config,
                      apply=lambda c, x, cfg: pool_k.sum_pool(x, cfg)),
    "Flatten": Rule(params=lambda name, node: None, config=_flatten_config,
                    apply=lambda c, x, cfg: reshape_k.flatten(x, cfg)),
    "IF": Rule(params=_iaf_params, config=_no_config,
               prepare=lambda p, cfg: speck_k.IAFParams(jnp.asarray(p.threshold, jnp.int32),
                                                        jnp.asarray(p.min_v_mem, jnp.int32)),
               init_state=_iaf_init, step=_iaf_step, spiking=True),
}, dtype=np.int32, doc="Speck / DYNAP-CNN as sinabs 3.1.3 simulates it: 8-bit weights, "
                       "integer IAF with multi-spike, subtractive reset and lower clamp, "
                       "sum pooling, in int32"))
