"""Hardware benchmarking: activity counts, chip cost models and the benchmark report."""

from .counts import SYNAPTIC_TYPES, ActivityCounts, count_activity, node_kinds

__all__ = ["SYNAPTIC_TYPES", "ActivityCounts", "count_activity", "node_kinds"]
