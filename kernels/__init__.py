"""nirjax.kernels: the numerics of every NIR primitive, as pure JAX functions.

One module per family; every function works on ONE unbatched sample with plain arrays and
NamedTuples, knows nothing of graphs or of the ``nir`` package, and states in its docstring
the NIR equation and the exact discrete update it computes.
"""

from . import conv, delay, geometry, linear, neurons, pooling, reshape, surrogate, threshold
from .surrogate import Surrogate, spike

__all__ = ["conv", "delay", "geometry", "linear", "neurons", "pooling", "reshape", "surrogate",
           "threshold", "Surrogate", "spike"]
