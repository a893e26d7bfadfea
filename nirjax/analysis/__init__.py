"""Analyses of compiled graphs: :func:`compare` runs one graph under several platform
profiles and finds where their spikes first diverge, or compares a float model with its
lowering to a chip (:mod:`nirjax.analysis.compare`)."""

from .compare import Comparison, Divergence, HardwareComparison, compare

__all__ = ["compare", "Comparison", "Divergence", "HardwareComparison"]
