"""Benchmarking against hardware: activity counts, chip cost models, and the report.

* :func:`count_activity`: NeuroBench 2.3.0's activity counts of one run (measured).
* :data:`TARGETS`: one cost model and capacity check per chip (Loihi, Loihi 2, SpiNNaker2,
  Xylo Audio 2 / Audio 3 / IMU, Speck, TrueNorth) and the CPU / GPU reference figures; every
  constant is a :class:`Constant` with its source and kind (estimates, never measurements).
* :func:`benchmark`: counts + estimates + nirjax's own measured wall time, as a
  :class:`BenchmarkReport` (``.table()``, ``.to_dict()``, ``.plot()``).
"""

from .constants import CONSTANTS, KINDS, Constant
from .counts import SYNAPTIC_TYPES, ActivityCounts, count_activity, node_kinds
from .measure import measure
from .report import BenchmarkError, BenchmarkReport, benchmark, resolve_targets
from .structure import structure_of
from .targets import CHIPS, TARGETS

__all__ = ["SYNAPTIC_TYPES", "ActivityCounts", "count_activity", "node_kinds", "Constant",
           "CONSTANTS", "KINDS", "measure", "BenchmarkError", "BenchmarkReport", "benchmark",
           "resolve_targets", "structure_of", "CHIPS", "TARGETS"]
