"""The benchmark targets: one cost model and one capacity check per chip.

Each target is a :class:`Target` ``(name, title, capacity, estimate)``; :data:`TARGETS`
lists them in the order the report shows them. Capacity checks are one small function per
target (``Structure -> Capacity``) against the published limits; for a chip nirjax lowers
to, :func:`nirjax.benchmark` also asks the lowering pass (:func:`nirjax.cost.report.
lowering_check`), so a graph the chip's toolchain refuses never fits.
"""

from __future__ import annotations

from ._common import Capacity, Context, Target, per_step, result
from .loihi import TARGETS_LOIHI
from .others import TARGETS_OTHER
from .xylo import TARGETS_XYLO, cycles_per_step, xylo_mapping

__all__ = ["TARGETS", "CHIPS", "Capacity", "Context", "Target", "per_step", "result",
           "cycles_per_step", "xylo_mapping"]

#: every target, chips first, then the reference figures
TARGETS: dict = {}
TARGETS.update(TARGETS_LOIHI)
TARGETS["spinnaker2"] = TARGETS_OTHER["spinnaker2"]
TARGETS.update(TARGETS_XYLO)
TARGETS["speck"] = TARGETS_OTHER["speck"]
TARGETS["truenorth"] = TARGETS_OTHER["truenorth"]
TARGETS["cpu"] = TARGETS_OTHER["cpu"]
TARGETS["gpu"] = TARGETS_OTHER["gpu"]

#: the neuromorphic chips (every target but the cpu / gpu reference)
CHIPS = tuple(k for k in TARGETS if k not in ("cpu", "gpu"))
