"""Lowering to SynSense Speck (DYNAP-CNN): one pass, three modules.

* :mod:`.target` registers ``"speck"`` with :func:`nirjax.lower`;
* :mod:`.from_nir` reads a convolutional network out of a NIR graph as sinabs' ``from_nir``
  and graph extractor do, and writes the discretized graph back;
* :mod:`.quantize` (NumPy only) discretizes it as sinabs' DYNAP-CNN backend does and maps its
  layers to Speck's cores.
"""

from . import target  # noqa: F401  registers the "speck" target

__all__ = ["target", "from_nir", "quantize"]
