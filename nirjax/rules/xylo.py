"""The ``"xylo"`` rule table: SynSense Xylo's integer arithmetic (Audio 2, Audio 3, IMU), int32.

Same keys as the float table, for the NIR types a Xylo chip runs. The chip's populations
are FUSED rules (:mod:`nirjax.kernels.xylo`): every event reaching a synaptic current
saturates on its own, in the chip's order (input events, then recurrent events), so a
weight node cannot hand its target a sum and the weights are parameters of the population
they feed. The lowering pass (:mod:`nirjax.lowering.xylo`) removes the weight nodes and
collapses all hidden CubaLIF nodes into one population:

======================  =====================================================================
NIR type                integer rule
======================  =====================================================================
``Input``, ``Output``   identity (input: event counts per channel and step, 0..255; the chip
                        delivers at most 15 per channel)
``CubaLIF`` (hidden)    :func:`~nirjax.kernels.xylo.hidden_step`: input weights (``w_in <<
                        weight_shift_in``) and recurrent weights (``w_rec <<
                        weight_shift_rec``, the population's own spikes of the previous
                        step, held in its state) delivered event by event with 16-bit
                        saturation, then the bit-shift decays, 16-bit membrane, up to 31
                        spikes per neuron and step, subtractive reset
``CubaLIF`` (readout)   :func:`~nirjax.kernels.xylo.readout_step`: readout weights (``w_out
                        << weight_shift_out``) on the hidden spikes of the PREVIOUS step
                        (held in its state: the readout's step of latency), at most 1 spike
======================  =====================================================================

The role of a CubaLIF node is its static config (:class:`XyloPopulationConfig`), its
parameters :class:`~nirjax.kernels.xylo.XyloHiddenParams` or
:class:`~nirjax.kernels.xylo.XyloReadoutParams` (int32 NumPy arrays). Such parameters come
only from the lowering pass: a NIR node's float parameters cannot be read into this table
directly (``build_program(graph, table="xylo")`` raises a
:class:`~nirjax.errors.LoweringError` saying to use ``nirjax.lower``).

Batching: the compiled scan runs a node's step under ``vmap`` over the batch. The
population steps are wrapped in ``jax.custom_batching.custom_vmap`` so that, batched, the
kernel runs once on the whole batch (every Xylo kernel broadcasts over leading batch axes):
the unsaturated shortcut of :func:`~nirjax.kernels.xylo.deliver` is then one ``lax.cond``
for the batch and skips the exact event tree whenever nothing in the batch can saturate
(under a plain ``vmap`` the ``cond`` would become a select computing both branches).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import LoweringError
from ..kernels import xylo as xk
from .float import RULES as FLOAT_RULES
from .table import Rule, RuleTable, register_table

__all__ = ["XYLO", "XyloPopulationConfig", "XyloCoeffs", "population_step", "dot_dtype"]


class XyloPopulationConfig(NamedTuple):
    """Static options of a fused Xylo population.

    Attributes:
        role: ``"hidden"`` or ``"readout"``.
        fast_path: use :func:`~nirjax.kernels.xylo.deliver`'s exact unsaturated shortcut.
        dot: the dtype of the shortcut's one matrix product (``"int32"``, or ``"float32"``
            where :func:`~nirjax.kernels.xylo.float32_exact` holds for the population's
            weights: exact and faster on CPUs).
    """

    role: str
    fast_path: bool = True
    dot: str = "int32"


class XyloCoeffs(NamedTuple):
    """What a population's step uses: its parameters and the split weight matrix of
    :func:`~nirjax.kernels.xylo.split_weights` (computed once per run, outside the loop)."""

    params: object
    split: jax.Array


def dot_dtype(params) -> str:
    """``"float32"`` when the shortcut's float32 product is exact for a population's
    (concrete) parameters, else ``"int32"`` (:func:`~nirjax.kernels.xylo.float32_exact`)."""
    if isinstance(params, xk.XyloHiddenParams):
        sources = [(params.w_in, params.shift_in, xk.MAX_INPUT_EVENTS),
                   (params.w_rec, params.shift_rec, xk.MAX_HIDDEN_SPIKES)]
    else:
        sources = [(params.w_out, params.shift_out, xk.MAX_HIDDEN_SPIKES)]
    return "float32" if xk.float32_exact(sources) else "int32"


def _refuse_params(name, node):
    raise LoweringError(
        f"node {name!r}: the 'xylo' rule table runs fused chip populations whose integer "
        f"parameters come from the lowering pass; use nirjax.lower(graph, 'xylo-audio2', "
        f"dt=...) (or 'xylo-audio3', 'xylo-imu') instead of compiling with this table")


def _config(name, node, in_shape, out_shape, semantics, dt, options):
    return XyloPopulationConfig("hidden")


def _plain_step(role, fast_path, coeffs, state, x):
    if role == "hidden":
        return xk.hidden_step(coeffs.params, state, x, fast_path, coeffs.split)
    return xk.readout_step(coeffs.params, state, x, fast_path, coeffs.split)


def _batched_step(role: str, fast_path: bool):
    """The population step as a ``custom_vmap`` function whose batching rule runs the
    kernel once on the whole batch (see the module docstring)."""

    @jax.custom_batching.custom_vmap
    def step(params, state, x):
        return _plain_step(role, fast_path, params, state, x)

    @step.def_vmap
    def _rule(axis_size, in_batched, params, state, x):
        params_batched, state_batched, x_batched = in_batched
        if any(jax.tree_util.tree_leaves(params_batched)):
            # parameters differ across the batch: map the plain kernel
            out = jax.vmap(lambda p, s, xi: _plain_step(role, fast_path, p, s, xi),
                           in_axes=(_axes(params_batched), _axes(state_batched),
                                    _axes(x_batched)))(params, state, x)
            return out, jax.tree_util.tree_map(lambda _: True, out)

        def lead(a, batched):
            return a if batched else jnp.broadcast_to(a, (axis_size,) + jnp.shape(a))

        state = jax.tree_util.tree_map(lead, state, state_batched)
        x = lead(x, x_batched)
        out = _plain_step(role, fast_path, params, state, x)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return step


def _axes(batched):
    return jax.tree_util.tree_map(lambda b: 0 if b else None, batched)


_STEPS = {(role, fast): _batched_step(role, fast) for role in ("hidden", "readout")
          for fast in (True, False)}


def population_step(coeffs, state, x, cfg: XyloPopulationConfig):
    r"""The rule step of a fused Xylo population (hidden or readout), one sample.

    NIR: ``Linear(s) -> CubaLIF``: ``tau_syn di/dt = -i + W x``, ``tau_mem dv/dt = -v + i +
    b``, spike and subtract the threshold. Chip (integers): see :func:`nirjax.kernels.xylo.hidden_step` (``cfg.role ==
    "hidden"``: input events then the previous step's recurrent events, each saturating to
    16 bits; decay ``x -= decay(x, dash)``; ``v = sat16(v + sat16(sat16(-decay(v) +
    sum(i)) + bias))``; up to 31 spikes, ``v -= n * threshold``) and
    :func:`nirjax.kernels.xylo.readout_step` (``"readout"``: the previous step's hidden
    spikes through ``w_out``; at most 1 spike).

    Args:
        coeffs: :class:`XyloCoeffs` (the population's
            :class:`~nirjax.kernels.xylo.XyloHiddenParams` or
            :class:`~nirjax.kernels.xylo.XyloReadoutParams` and their split weights).
        state: the population's state.
        x: input event counts ``(Nin,)`` (hidden) or hidden spike counts ``(Nhid,)``
            (readout) of this step.
        cfg: :class:`XyloPopulationConfig`.

    Returns:
        ``(state, spikes)``, int32.
    """
    return _STEPS[(cfg.role, bool(cfg.fast_path))](coeffs, state, jnp.asarray(x, jnp.int32))


def _init_state(params, cfg, shape, dtype):
    if cfg.role == "hidden":
        return xk.hidden_init_state(params)
    return xk.readout_init_state(params)


def _prepare(params, cfg):
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.int32), params)
    if cfg.role == "hidden":
        sources = [(params.w_in, params.shift_in), (params.w_rec, params.shift_rec)]
    else:
        sources = [(params.w_out, params.shift_out)]
    return XyloCoeffs(params, xk.split_weights(sources, jnp.dtype(cfg.dot)))


XYLO = register_table(RuleTable("xylo", {
    "Input": FLOAT_RULES["Input"],
    "Output": FLOAT_RULES["Output"],
    "CubaLIF": Rule(params=_refuse_params, config=_config, prepare=_prepare,
                    init_state=_init_state, step=population_step, spiking=True),
}, dtype=np.int32, doc="SynSense Xylo (xylosim v2) integer populations, in int32"))
