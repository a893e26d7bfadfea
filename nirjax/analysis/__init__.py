"""Analyses of compiled graphs: :func:`compare` runs one graph under several platform
profiles and finds where their spikes first diverge (:mod:`nirjax.analysis.compare`)."""

from .compare import Comparison, Divergence, compare

__all__ = ["compare", "Comparison", "Divergence"]
