"""Lowering to SynSense Xylo (Audio 2, Audio 3, IMU): one pass, four modules.

* :mod:`.target` registers ``"xylo-audio2"``, ``"xylo-audio3"``, ``"xylo-imu"`` with
  :func:`nirjax.lower` (the pass over the float Program);
* :mod:`.from_nir` reads a Xylo-shaped network out of a NIR graph or Program;
* :mod:`.quantize` (NumPy only) maps it to the chip's integer specification as Rockpool's
  mapper and quantizers do, reporting every rounding, and writes the ``.npz`` that
  ``XyloSim.from_specification`` reads;
* :mod:`.rules` holds the chips' design rules as data.
"""

from . import target  # noqa: F401  registers the Xylo targets

__all__ = ["target", "from_nir", "quantize", "rules"]
