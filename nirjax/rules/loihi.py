"""The ``"loihi"`` rule table: Lava's fixed-point (Loihi 2) arithmetic, in int32.

Same keys as the float table, for the NIR types the NIR paper's Lava importer
(``paper/nir_to_lava.py`` with ``fixed_pt=True``) maps, plus the nodes nirjax itself inserts:

======================  =====================================================================
NIR type                integer rule
======================  =====================================================================
``Input``, ``Output``   identity (values are spike counts, int32)
``Affine``, ``Linear``  Lava's fixed-point ``Dense``: ``y = int(256*W) @ x``; an Affine with a
                        nonzero bias is refused (Lava's Dense has none; so does the importer)
``LIF``                 Lava's bit-accurate LIF (``PyLifModelBitAcc``), see
                        :mod:`nirjax.kernels.lava_fixed`
``Delay``               the ring buffer of the float table, on int32 values (the one-step
                        latency of every ``Dense``, ``Semantics(latency="weights")``)
======================  =====================================================================

Any other type in a graph compiled with this table is a design-rule error
(:class:`~nirjax.errors.LoweringError`, naming every unsupported type at once). The profile
``lava_fixed`` selects this table (``Semantics(arithmetic="loihi")``). The lowering work adds
Loihi 2's general (netx) rules here, keyed the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import LoweringError
from ..kernels import lava_fixed as lava_k
from ..kernels import linear as linear_k
from ..kernels import neurons as neuron_k
from .float import RULES as FLOAT_RULES
from .float import _V_RESET_ZERO, _params_of
from .table import Rule, RuleTable, register_table

__all__ = ["LOIHI", "LavaFixedConfig"]


class LavaFixedConfig(NamedTuple):
    """Static options of Lava's fixed-point LIF: the step ``dt`` its decays are made from."""

    dt: float


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


def _no_config(name, node, in_shape, out_shape, semantics, dt, options):
    return None


def _lif_config(name, node, in_shape, out_shape, semantics, dt, options):
    return LavaFixedConfig(float(dt))


_DENSE = dict(config=_no_config, prepare=lambda p, cfg: lava_k.dense_fixed_prepare(p),
              apply=lambda c, x, cfg: lava_k.dense_fixed(c, x))

LOIHI = register_table(RuleTable("loihi", {
    "Input": FLOAT_RULES["Input"],
    "Output": FLOAT_RULES["Output"],
    "Delay": FLOAT_RULES["Delay"],
    "Affine": Rule(params=_dense_params(linear_k.AffineParams), **_DENSE),
    "Linear": Rule(params=_dense_params(linear_k.LinearParams), **_DENSE),
    "LIF": Rule(
        params=_params_of(neuron_k.LIFParams, ("tau",), _V_RESET_ZERO),
        config=_lif_config,
        prepare=lambda p, cfg: lava_k.lif_fixed_prepare(p, cfg),
        init_state=lambda p, cfg, shape, dtype: lava_k.lif_fixed_init_state(p, shape, cfg),
        step=lambda c, s, x, cfg: lava_k.lif_fixed_step(c, s, x, cfg),
        spiking=True,
    ),
}, dtype=np.int32, doc="Lava's fixed-point (Loihi 2) LIF and Dense, in int32"))
