"""Files and formats: ``.nir`` files in and out, and export of a compiled graph.

* :mod:`nirjax.io.nirfile`: :func:`read` and :func:`write` of ``.nir`` files (HDF5),
  :func:`read_version`, :func:`file_version`;
* :mod:`nirjax.io.export`: :func:`to_nir`, a compiled graph with (trained) parameters back to
  a ``nir.NIRGraph``.
"""

from .export import to_nir
from .nirfile import file_version, read, read_version, write

__all__ = ["read", "write", "read_version", "file_version", "to_nir"]
