"""Example NIR graphs shipped with nirjax: the NIR paper's graphs (BSD-3-Clause, see NOTICE).

============================  ==========================================================
name                          graph
============================  ==========================================================
``lif_norse``                 the paper's LIF task: Affine -> LIF (1 neuron), Norse export
``braille_bias_zero``         the paper's Braille RSNN: 12 -> CubaLIF[38] (recurrent) -> CubaLIF[7]
``braille_subtract``          same topology, 40 hidden, trained with reset by subtraction
``cnn_sinabs``                the paper's N-MNIST spiking CNN (input 2x34x34), Sinabs export
============================  ==========================================================

``lif_norse.csv`` holds the paper's Norse trace of the LIF task (input spike, v, output spike).
"""

from __future__ import annotations

import pathlib

__all__ = ["EXAMPLES", "example_path"]

_HERE = pathlib.Path(__file__).parent

EXAMPLES = {
    "lif_norse": "lif_norse.nir",
    "braille_bias_zero": "braille_noDelay_bias_zero.nir",
    "braille_subtract": "braille_noDelay_noBias_subtract.nir",
    "cnn_sinabs": "cnn_sinabs.nir",
    "lif_norse_trace": "lif_norse.csv",
}


def example_path(name: str) -> pathlib.Path:
    """Path of a shipped example file (see the module table).

    >>> example_path("lif_norse").name
    'lif_norse.nir'
    """
    if name not in EXAMPLES:
        raise KeyError(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}")
    return _HERE / EXAMPLES[name]
