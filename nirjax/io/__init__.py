"""Files and formats: ``.nir`` files in and out, and export of a compiled graph.

* :mod:`nirjax.io.nirfile`: :func:`read` and :func:`write` of ``.nir`` files (HDF5),
  :func:`read_version`, :func:`file_version`;
* :mod:`nirjax.io.export`: :func:`to_nir`, a compiled graph with (trained) parameters back to
  a ``nir.NIRGraph``;
* :mod:`nirjax.io.data`: recorded activity in NIR's data format (``nir.NIRGraphData``),
  :func:`to_nir_data`, :func:`from_nir_data`;
* :mod:`nirjax.io.events`: event streams (tonic's ``t, x, y, p`` arrays) binned into spike
  counts at a step ``dt``.
"""

from . import data, events
from .data import from_nir_data, to_nir_data
from .export import to_nir
from .nirfile import file_version, read, read_version, write

__all__ = ["read", "write", "read_version", "file_version", "to_nir", "to_nir_data",
           "from_nir_data", "data", "events"]
