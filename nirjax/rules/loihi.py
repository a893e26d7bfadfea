"""The ``"loihi"`` rule table: Lava's fixed-point (Loihi 2) arithmetic, in int32.

One arithmetic, the kernels of :mod:`nirjax.kernels.loihi` (one CUBA neuron update, one dense
synapse), keyed by the same NIR type names as the float table, reached two ways:

* **the ``lava_fixed`` profile** (``nirjax.compile(graph, dt, semantics="lava_fixed")``, i.e.
  ``Semantics(arithmetic="loihi")``): :func:`~nirjax.compiler.build_program` reads each node's
  float NIR parameters and the rule's config is :class:`LavaFixedConfig`; ``prepare`` converts
  them as the NIR paper's importer does (``paper/nir_to_lava.py`` with ``fixed_pt=True``). It
  maps what that importer maps: LIF and Affine/Linear (plus Input, Output and the Delay nodes
  the profile's latency inserts); the other types of this table raise
  :class:`~nirjax.errors.LoweringError` naming the node;
* **the ``loihi2`` target** (``nirjax.lower(graph, "loihi2", dt=...)``,
  :mod:`nirjax.lowering.loihi`): the lowering binds every node to these rules with the integer
  parameters a lava-dl netx file holds and a ``Netx...Config``.

======================  ======================================  ==================================
NIR type                ``lava_fixed`` profile                  ``loihi2`` (netx)
======================  ======================================  ==================================
``Input``, ``Output``   identity (int32)                        identity (int32)
``Affine``, ``Linear``  ``dense``: ``int(256*W) @ x`` (graded   ``dense``: ``shift(W' @ [x != 0],
                        values; a nonzero bias is refused)      weight_exp)`` (netx's packing)
``Conv2d``              LoweringError                           ``conv`` on binary events
``LIF``                 ``Dense(int(256 dt/tau))`` on events,   CUBA (``cuba_step``) on the summed
                        then CUBA with ``du = 4095``            synaptic input
``CubaLIF``, ``IF``     LoweringError                           CUBA, as LIF
``Flatten``             LoweringError                           reshape (the float rule)
``Delay``               ring buffer (the float rule)            ring buffer (the float rule): the
                                                                synaptic latency and NIR delays
======================  ======================================  ==================================

Any type not in this table is a design-rule error when a graph is compiled with it
(:class:`~nirjax.errors.LoweringError`, naming every unsupported type at once).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import LoweringError
from ..kernels import linear as linear_k
from ..kernels import loihi as lk
from ..kernels import neurons as neuron_k
from .float import RULES as FLOAT_RULES
from .float import _V_RESET_ZERO, _params_of
from .table import Rule, RuleTable, register_table

__all__ = ["LOIHI", "LavaFixedConfig", "NetxDenseConfig", "NetxConvConfig",
           "NetxNeuronConfig"]


class LavaFixedConfig(NamedTuple):
    """The ``lava_fixed`` profile's config: float NIR parameters, converted at ``prepare`` by
    the NIR paper importer's fixed-point rules for the step ``dt``."""

    dt: float


class NetxDenseConfig(NamedTuple):
    """A netx ``dense`` synapse (``loihi2``): params are :class:`~nirjax.kernels.loihi.DenseParams`
    (the weights Lava holds after netx's packing, and ``weight_exp``).

    Attributes:
        in_shape / out_shape: the node's shapes (the input is flattened, the sum reshaped).
    """

    in_shape: tuple
    out_shape: tuple


class NetxConvConfig(NamedTuple):
    """A netx ``conv`` synapse (``loihi2``): params are the int32 kernel ``[C_out, C_in/groups,
    kH, kW]`` (a 1-tuple ``(weight,)``); the geometry is static.

    Attributes:
        stride, padding, dilation: ``(h, w)`` pairs (symmetric padding).
        groups: feature groups.
    """

    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int


class NetxNeuronConfig(NamedTuple):
    """A netx ``CUBA`` neuron population (``loihi2``): params are
    :class:`~nirjax.kernels.loihi.CubaParams` (``du = iDecay - 1``, ``dv = vDecay``,
    ``vth = vThMant``, ``bias_mant``, ``bias_exp = 6``).

    Attributes:
        shape: the population's shape.
    """

    shape: tuple


class ConvWeight(NamedTuple):
    """The integer kernel of a netx ``conv`` synapse, ``[C_out, C_in/groups, kH, kW]``."""

    weight: object


# ----------------------------------------------------------------------------- profile path


def _dense_params(cls):
    read = _params_of(cls)

    def params(name, node):
        p = read(name, node)
        bias = getattr(p, "bias", None)
        if bias is not None and not np.allclose(bias, 0.0):
            raise LoweringError(
                f"node {name!r} ({type(node).__name__}): the 'loihi' arithmetic has no bias "
                f"(Lava's Dense has none and the NIR paper's importer refuses one); max |bias| "
                f"= {float(np.max(np.abs(bias))):.3g}. Use a Linear, or the float 'lava' profile")
        return p

    return params


def _profile_config(name, node, in_shape, out_shape, semantics, dt, options):
    return LavaFixedConfig(float(dt))


def _netx_only(type_name):
    """The profile path's config of a type only the ``loihi2`` target lowers: an error."""

    def config(name, node, in_shape, out_shape, semantics, dt, options):
        raise LoweringError(
            f"{type_name} node {name!r}: semantics {semantics.name!r} computes in the 'loihi' "
            f"arithmetic through the NIR paper's fixed-point importer (nir_to_lava), which maps "
            f"LIF and Affine/Linear only; to run this graph in Loihi 2's arithmetic, lower it: "
            f"nirjax.lower(graph, 'loihi2', dt={dt:g})")

    return config


# ----------------------------------------------------------------------------- kernels


def _dense_prepare(params, cfg):
    if isinstance(cfg, NetxDenseConfig):
        return params
    return lk.importer_dense_params(params.weight)


def _dense_apply(coeffs, x, cfg):
    if isinstance(cfg, NetxDenseConfig):
        a = lk.dense(coeffs, x.reshape(-1))
        return a.reshape(cfg.out_shape)
    # the importer's Dense on the values it is given (graded: spike counts)
    return lk.dense(coeffs, x, num_message_bits=24)


def _conv_apply(coeffs, x, cfg: NetxConvConfig):
    params = lk.ConvParams(coeffs.weight, cfg.stride, cfg.padding, cfg.dilation, cfg.groups)
    return lk.conv(params, x)


def _neuron_prepare(params, cfg):
    if isinstance(cfg, NetxNeuronConfig):
        return params
    return lk.importer_lif_params(params.tau, params.v_threshold, cfg.dt)


def _neuron_step(coeffs, state, x, cfg):
    if isinstance(cfg, NetxNeuronConfig):
        return lk.cuba_step(coeffs, state, x)
    return lk.importer_lif_step(coeffs, state, x)


def _neuron_rule(params, config):
    return Rule(params=params, config=config, prepare=_neuron_prepare,
                init_state=lambda p, cfg, shape, dtype: lk.cuba_init_state(p, shape),
                step=_neuron_step, spiking=True)


_CONV = FLOAT_RULES["Conv2d"]
_FLATTEN = FLOAT_RULES["Flatten"]

LOIHI = register_table(RuleTable("loihi", {
    "Input": FLOAT_RULES["Input"],
    "Output": FLOAT_RULES["Output"],
    "Delay": FLOAT_RULES["Delay"],
    "Flatten": _FLATTEN._replace(config=_netx_only("Flatten")),
    "Affine": Rule(params=_dense_params(linear_k.AffineParams), config=_profile_config,
                   prepare=_dense_prepare, apply=_dense_apply),
    "Linear": Rule(params=_dense_params(linear_k.LinearParams), config=_profile_config,
                   prepare=_dense_prepare, apply=_dense_apply),
    "Conv2d": Rule(params=_CONV.params, config=_netx_only("Conv2d"), apply=_conv_apply),
    "LIF": _neuron_rule(_params_of(neuron_k.LIFParams, ("tau",), _V_RESET_ZERO),
                        _profile_config),
    "CubaLIF": _neuron_rule(FLOAT_RULES["CubaLIF"].params, _netx_only("CubaLIF")),
    "IF": _neuron_rule(FLOAT_RULES["IF"].params, _netx_only("IF")),
}, dtype=np.int32, doc="Lava's fixed-point (Loihi 2) CUBA neurons, Dense and Conv, in int32"))
