"""Discretization semantics: the choices NIR leaves open, as one flat, validated value.

* :mod:`nirjax.semantics.core`: :class:`Semantics` (every field documented), the profile
  registry ``PROFILES``, :func:`resolve_semantics`, :func:`check_dt`;
* :mod:`nirjax.semantics.neuron`: the one place where the neuron fields choose the kernel
  pieces of each neuron node (:func:`neuron_for`), and check their combinations;
* :mod:`nirjax.semantics.profiles`: one function per platform profile (Norse, snnTorch, Spyx,
  Sinabs, Rockpool, Lava, SpiNNaker2), each documenting the platform's exact discrete
  updates; importing this package registers them in ``PROFILES``.
"""

from . import neuron, profiles
from .core import GRAPH_FIELDS, PROFILE_DOCS, PROFILES, Semantics, check_dt, resolve_semantics

__all__ = ["Semantics", "PROFILES", "PROFILE_DOCS", "GRAPH_FIELDS", "resolve_semantics",
           "check_dt", "profiles", "neuron"]
