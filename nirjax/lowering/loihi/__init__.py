"""Lowering to Intel Loihi 2 (Lava 0.10 fixed point, lava-dl netx): one pass, three modules.

* :mod:`.target` registers ``"loihi2"`` with :func:`nirjax.lower`;
* :mod:`.quantize` (NumPy only) reads the netx chain out of a Program, checks Loihi's design
  rules and maps the float layers to netx's integers, reporting every rounding;
* :mod:`.netx` writes and reads netx HDF5 files and reproduces netx's weight packing.
"""

from . import target  # noqa: F401  registers the "loihi2" target

__all__ = ["target", "quantize", "netx"]
