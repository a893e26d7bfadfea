"""The ``"spinnaker2"`` rule table: SpiNNaker2's neuron models, in float32.

SpiNNaker2 runs its neuron models on ARM cores in float32 (py-spinnaker2's ``lif``,
``lif_curr_exp`` application models); only the synaptic weights are integers (int8, after
``from_nir(..., scale_weights=True)``). So this table is the float table's rules, restricted
to the node types py-spinnaker2's ``s2_nir.from_nir`` imports (plus the one-step ``Delay`` its
``conn_delay`` inserts), computing in float32 whatever dtype the user asks: the kernels
are the float kernels, the equations those of the ``spinnaker2`` profile
(:func:`nirjax.semantics.profiles.spinnaker2`), the weights integer-valued floats (exact in
float32: ``|w| <= 127``). :func:`nirjax.lower` with target ``"spinnaker2"``
(:mod:`nirjax.lowering.spinnaker2`) builds programs for it.
"""

from __future__ import annotations

import numpy as np

from .float import RULES as FLOAT_RULES
from .table import RuleTable, register_table

__all__ = ["SPINNAKER2", "TYPES"]

#: The NIR types of the table (``s2_nir``'s ``NEURON_NODES``, weight nodes, pooling, Flatten,
#: Input/Output, and the inserted Delay).
TYPES = ("Input", "Output", "Affine", "Linear", "Conv2d", "SumPool2d", "Flatten", "IF",
         "LIF", "CubaLIF", "Delay")

SPINNAKER2 = register_table(RuleTable(
    "spinnaker2", {t: FLOAT_RULES[t] for t in TYPES}, dtype=np.float32,
    doc="SpiNNaker2 (py-spinnaker2 from_nir): float32 neuron updates of the spinnaker2 "
        "profile on int8-valued weights"))
