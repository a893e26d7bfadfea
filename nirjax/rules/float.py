"""The float rule table: every NIR type, simulated in the compile's floating dtype.

Each :class:`~nirjax.rules.Rule` says, for one NIR type, how to take its parameters out of a
``nir`` node (validated, in their physical form), what static kernel options it gets, and
which pure kernel from :mod:`nirjax.kernels` computes it. Importing, compiling, training and
export all read the rule tables; nothing else dispatches on node types.

The table is registered as ``"float"`` (:func:`nirjax.rules.get_table`); integer (hardware)
tables with the same keys live beside it (:mod:`nirjax.rules.loihi`).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import LimitError, NirjaxWarning, ParameterError
from ..kernels import conv as conv_k
from ..kernels import delay as delay_k
from ..kernels import linear as linear_k
from ..kernels import neurons as neuron_k
from ..kernels import pooling as pool_k
from ..kernels import reshape as reshape_k
from ..kernels import threshold as threshold_k
from ..kernels.geometry import conv_padding
from ..limits import limits
from ..graph.shapes import SHAPE_RULES, conv_geometry, pool_geometry
from ..semantics.neuron import neuron_for

from .table import Rule, RuleTable, register_table

__all__ = ["RULES", "FLOAT", "delay_steps"]


# ----------------------------------------------------------------------------- params


def _array(name: str, node, field: str, *, positive=False, finite=True) -> np.ndarray:
    value = getattr(node, field, None)
    if value is None:
        raise ParameterError(f"node {name!r} ({type(node).__name__}): field {field!r} is missing")
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiub":
            raise TypeError
        arr = arr.astype(np.result_type(arr.dtype, np.float32)) if arr.dtype.kind != "f" else arr
    except (TypeError, ValueError, OverflowError):
        kind = (f"an array of {np.asarray(value).dtype}" if isinstance(value, np.ndarray)
                else type(value).__name__)
        raise ParameterError(
            f"node {name!r} ({type(node).__name__}): field {field!r} must be a real numeric "
            f"array, got {kind}"
        ) from None
    if arr.dtype.itemsize > 8:  # long double: nirjax computes in float64 at most
        with np.errstate(over="ignore"):
            wide = arr.astype(np.float64)
        if np.any(np.isfinite(arr) & ~np.isfinite(wide)):
            raise ParameterError(
                f"node {name!r} ({type(node).__name__}): field {field!r} holds values beyond "
                f"the float64 range")
        arr = wide
    if arr.size == 0:
        raise ParameterError(
            f"node {name!r} ({type(node).__name__}): field {field!r} is empty (shape "
            f"{arr.shape}); expected at least one value")
    if finite and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        where = f" at index {tuple(int(i) for i in bad[0])}" if arr.ndim else ""
        raise ParameterError(
            f"node {name!r} ({type(node).__name__}): field {field!r} contains "
            f"{'NaN' if np.isnan(arr).any() else 'an infinite value'}{where}; expected finite values"
        )
    if positive and not np.all(arr > 0):
        bad = np.argwhere(~(arr > 0))
        where = f" at index {tuple(int(i) for i in bad[0])}" if arr.ndim else ""
        raise ParameterError(
            f"node {name!r} ({type(node).__name__}): field {field!r} must be > 0 (a time "
            f"constant), got {arr.reshape(-1)[~(arr.reshape(-1) > 0)][0]!r}{where}"
        )
    return arr


def _params_of(cls, positive=(), defaults=None):
    """A ``params`` function reading ``cls._fields`` off the node."""
    defaults = defaults or {}

    def params(name, node):
        values = {}
        for field in cls._fields:
            if getattr(node, field, None) is None and field in defaults:
                values[field] = defaults[field](values)
            else:
                values[field] = _array(name, node, field, positive=field in positive)
        return cls(**values)

    return params


_V_RESET_ZERO = {"v_reset": lambda v: np.zeros_like(v["v_threshold"])}
_W_IN_ONE = {"w_in": lambda v: np.ones_like(v["v_leak"])}


def _stored_dtype(node):
    """The dtype a node's parameters are stored in (that of ``w_in * r`` where present)."""
    fields = [getattr(node, f, None) for f in ("w_in", "r")]
    arrays = [np.asarray(v) for v in fields if v is not None]
    floats = [a.dtype for a in arrays if a.dtype.kind == "f"]
    return np.result_type(*floats) if floats else None


def _neuron_config(name, node, in_shape, out_shape, semantics, dt, options):
    return neuron_for(type(node).__name__, semantics, dt, _stored_dtype(node))


def _no_config(name, node, in_shape, out_shape, semantics, dt, options):
    return None


def _precision_config(name, node, in_shape, out_shape, semantics, dt, options):
    return linear_k.MatmulConfig(options.precision, options.matmul_dtype)


def _no_params(name, node):
    return None


# ----------------------------------------------------------------------------- rules


def _chunk_adapter(method, fn):
    """A neuron's whole-chunk kernel on a batched chunk ``xs`` ``[K, B, *shape]``."""
    if method == "associative_scan":  # per sample, vmapped over the batch axis
        def run(coeffs, state, xs, interpret):
            return jax.vmap(lambda s, xb: fn(coeffs, s, xb), in_axes=(0, 1),
                            out_axes=(0, 1))(state, xs)
    else:  # pallas: every neuron of every sample is one lane
        def run(coeffs, state, xs, interpret):
            steps, batch = xs.shape[:2]
            full = (batch,) + xs.shape[2:]
            flat = jax.tree_util.tree_map(
                lambda a: jnp.broadcast_to(a, full).reshape(-1).astype(xs.dtype), coeffs)
            v_end, z = fn(flat, state.v.reshape(-1), xs.reshape(steps, -1), 512, interpret)
            return type(state)(v_end.reshape(state.v.shape)), z.reshape(xs.shape)
    return run


def _neuron_chunk(cfg, method):
    fn = getattr(cfg, method, None)
    return None if fn is None else _chunk_adapter(method, fn)


def _neuron(params_cls, positive, defaults, spiking):
    """A neuron type's rule: its kernel is composed per node from the node's semantics
    (:func:`nirjax.semantics.neuron.neuron_for`); the config IS that composed kernel."""
    return Rule(
        params=_params_of(params_cls, positive, defaults),
        config=_neuron_config,
        prepare=lambda p, cfg: cfg.prepare(p),
        init_state=lambda p, cfg, shape, dtype: cfg.init_state(p, shape),
        step=lambda c, s, x, cfg: cfg.step(c, s, x),
        # Semantics(fire='before'): the output is computed from the state alone
        feedthrough=lambda cfg: cfg.emit is None,
        emit=lambda c, s, cfg: cfg.emit(c, s),
        absorb=lambda c, s, x, cfg: cfg.absorb(c, s, x),
        spiking=spiking,
        chunk=_neuron_chunk,
        elementwise=True,
    )


def _identity(coeffs, x, cfg):
    return x


def _reshape(coeffs, x, cfg):
    return x.reshape(cfg) if cfg is not None else x


def _io_config(name, node, in_shape, out_shape, semantics, dt, options):
    return tuple(out_shape) if tuple(in_shape) != tuple(out_shape) else None


def _conv_config(nd):
    def config(name, node, in_shape, out_shape, semantics, dt, options):
        stride, padding, dilation, groups, kernel = conv_geometry(name, node, nd)
        return conv_k.ConvConfig(stride, conv_padding(padding, kernel, dilation), dilation,
                                 groups), _precision_config(name, node, in_shape, out_shape,
                                                            semantics, dt, options)

    return config


def _pool_config(name, node, in_shape, out_shape, semantics, dt, options):
    return pool_k.PoolConfig(*pool_geometry(name, node))


def delay_steps(name: str, delay: np.ndarray, dt: float) -> np.ndarray:
    """Round a NIR delay (time units) to whole steps: ``floor(delay/dt + 1/2)``.

    Warns when a delay is more than 1e-3 steps away from a whole number of steps; raises a
    :class:`~nirjax.errors.LimitError` when the longest delay exceeds
    ``nirjax.limits().max_delay_steps`` (checked in float64, before any integer cast).

    >>> delay_steps("d", np.array([0.0003, 0.0]), 1e-4).tolist()
    [3, 0]
    """
    ratio = np.asarray(delay, np.float64) / dt
    longest = float(np.max(ratio)) if ratio.size else 0.0
    if not np.isfinite(longest) or longest + 0.5 >= limits().max_delay_steps + 1:
        raise LimitError(
            f"node {name!r} (Delay): delay {float(np.max(delay)):g} is {longest:.4g} steps at "
            f"dt={dt:g}; nirjax keeps a ring buffer of one input per step of delay and allows "
            f"at most {limits().max_delay_steps} steps (raise it with "
            f"nirjax.set_limits(max_delay_steps=...) if the delay is meant)"
        )
    steps = np.floor(ratio + 0.5).astype(np.int64)
    off = np.abs(ratio - steps)
    if np.any(off > 1e-3):
        i = int(np.argmax(off))
        warnings.warn(
            f"node {name!r} (Delay): delay {ratio.reshape(-1)[i] * dt:g} is "
            f"{ratio.reshape(-1)[i]:.4g} steps at dt={dt:g}; rounded to "
            f"{steps.reshape(-1)[i]} whole steps (round half up)",
            NirjaxWarning,
            stacklevel=4,
        )
    return steps


def _delay_params(name, node):
    arr = _array(name, node, "delay")
    if np.any(arr < 0):
        raise ParameterError(f"node {name!r} (Delay): field 'delay' must be >= 0, got {arr.min()!r}")
    return None  # the delay is static: it sets the ring buffer's length


def _delay_config(name, node, in_shape, out_shape, semantics, dt, options):
    steps = np.broadcast_to(delay_steps(name, np.asarray(node.delay), dt), tuple(out_shape))
    return delay_k.DelayConfig(tuple(int(s) for s in steps.reshape(-1)), tuple(out_shape))


class _FlattenHWC(NamedTuple):
    """Flatten a (C, H, W) input in (H, W, C) order (``Semantics.flatten_order='hwc'``)."""

    out_shape: tuple


def _flatten_config(name, node, in_shape, out_shape, semantics, dt, options):
    if semantics.flatten_order == "hwc" and len(in_shape) == 3 and len(out_shape) == 1:
        return _FlattenHWC(tuple(out_shape))
    return tuple(out_shape)


def _flatten_apply(p, x, cfg):
    if isinstance(cfg, _FlattenHWC):
        return reshape_k.flatten(x.transpose(1, 2, 0), cfg.out_shape)
    return reshape_k.flatten(x, cfg)


def _threshold_config(name, node, in_shape, out_shape, semantics, dt, options):
    return semantics.threshold_test == ">=", semantics.surrogate


RULES: dict[str, Rule] = {
    "Input": Rule(params=_no_params, config=_io_config, apply=_reshape),
    "Output": Rule(params=_no_params, config=_io_config, apply=_reshape),
    "Affine": Rule(
        params=_params_of(linear_k.AffineParams),
        config=_precision_config,
        apply=lambda p, x, cfg: linear_k.affine(p, x, cfg),
    ),
    "Linear": Rule(
        params=_params_of(linear_k.LinearParams),
        config=_precision_config,
        apply=lambda p, x, cfg: linear_k.linear(p, x, cfg),
    ),
    "Scale": Rule(
        params=_params_of(linear_k.ScaleParams),
        config=_no_config,
        apply=lambda p, x, cfg: linear_k.scale(p, x),
        elementwise=True,
    ),
    "Conv1d": Rule(
        params=_params_of(conv_k.ConvParams),
        config=_conv_config(1),
        apply=lambda p, x, cfg: conv_k.conv(p, x, cfg[0], cfg[1]),
        apply_last=lambda p, x, cfg: conv_k.conv_last(p, x, cfg[0], cfg[1]),
    ),
    "Conv2d": Rule(
        params=_params_of(conv_k.ConvParams),
        config=_conv_config(2),
        apply=lambda p, x, cfg: conv_k.conv(p, x, cfg[0], cfg[1]),
        apply_last=lambda p, x, cfg: conv_k.conv_last(p, x, cfg[0], cfg[1]),
    ),
    "SumPool2d": Rule(params=_no_params, config=_pool_config,
                      apply=lambda p, x, cfg: pool_k.sum_pool(x, cfg),
                      apply_last=lambda p, x, cfg: pool_k.sum_pool_last(x, cfg)),
    "AvgPool2d": Rule(params=_no_params, config=_pool_config,
                      apply=lambda p, x, cfg: pool_k.avg_pool(x, cfg),
                      apply_last=lambda p, x, cfg: pool_k.avg_pool_last(x, cfg)),
    "Flatten": Rule(params=_no_params, config=_flatten_config, apply=_flatten_apply),
    "Threshold": Rule(
        params=_params_of(threshold_k.ThresholdParams),
        config=_threshold_config,
        apply=lambda p, x, cfg: threshold_k.threshold(p, x, cfg[0], cfg[1]),
        spiking=True,
        elementwise=True,
    ),
    "Delay": Rule(
        params=_delay_params,
        config=_delay_config,
        init_state=lambda p, cfg, shape, dtype: delay_k.delay_init_state(cfg, dtype),
        step=lambda c, s, x, cfg: delay_k.delay_step(s, x, cfg),
        feedthrough=lambda cfg: cfg.length == 0 or min(cfg.steps) == 0,
        emit=lambda c, s, cfg: delay_k.delay_emit(s, cfg),
        absorb=lambda c, s, x, cfg: delay_k.delay_absorb(s, x, cfg),
    ),
    "I": _neuron(neuron_k.IParams, (), {}, False),
    "IF": _neuron(neuron_k.IFParams, (), _V_RESET_ZERO, True),
    "LI": _neuron(neuron_k.LIParams, ("tau",), {}, False),
    "LIF": _neuron(neuron_k.LIFParams, ("tau",), _V_RESET_ZERO, True),
    "CubaLI": _neuron(neuron_k.CubaLIParams, ("tau_syn", "tau_mem"), _W_IN_ONE, False),
    "CubaLIF": _neuron(neuron_k.CubaLIFParams, ("tau_syn", "tau_mem"),
                       {**_V_RESET_ZERO, **_W_IN_ONE}, True),
}
for _type, _rule in RULES.items():
    RULES[_type] = _rule._replace(shape=SHAPE_RULES[_type])

FLOAT = register_table(RuleTable("float", RULES, doc="every NIR type, in the compile's float dtype"))
