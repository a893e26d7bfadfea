"""Lowering NIR graphs to neuromorphic chips: design rules, quantization, vendor files.

The entry point is :func:`lower` (also ``nirjax.lower``)::

    hw = nirjax.lower("braille.nir", "xylo-audio2", dt=1e-4)
    hw.report(); hw.resources; hw(xs); hw.run(xs, record=["lif1"]); hw.export(path); hw.to_nir()

:mod:`nirjax.lowering.core` holds the target registry (:func:`register_target`,
:data:`TARGETS`), :func:`lower`, :class:`Lowered` and :class:`LoweringResult` and the
helpers a target uses to build its integer program (:func:`rebind_program`,
:func:`make_program`, :func:`collapse_ports`). :mod:`nirjax.lowering.violations` holds the
records every target reports (:class:`Violation`, :class:`QuantizationRecord`,
:class:`MappingRecord`).

One module per target family:

* Xylo (SynSense Audio 2, Audio 3, IMU): ``xylo`` registers ``"xylo-audio2"``,
  ``"xylo-audio3"``, ``"xylo-imu"``; ``xylo_quantize`` (NumPy only) maps a float network of
  Xylo's shape to the chip's integer specification as Rockpool's mapper and quantizers do,
  reports every rounding and writes the ``.npz`` that ``XyloSim.from_specification`` reads;
  ``xylo_rules`` holds the chips' design rules as data; ``xylo_nir`` reads such a network
  out of a NIR graph.
* Speck (SynSense DYNAP-CNN): ``speck_quantize`` (NumPy only) discretizes a convolutional
  network as sinabs' DYNAP-CNN backend does and maps its layers to Speck's cores;
  ``speck_nir`` reads such a network out of a NIR graph and writes the discretized graph back.
* SpiNNaker2: ``spinnaker2`` holds its import rules and weight scaling.
"""

from .violations import (DesignRuleError, MappingRecord, QuantizationRecord, Violation,
                         raise_violations)
from .core import (TARGET_NAMES, TARGETS, Lowered, LoweringResult, NodeSpec, Target,
                   collapse_ports, get_target, lower, make_program, numpy_params,
                   rebind_program, register_target, resource)
from . import xylo  # noqa: E402,F401  registers the Xylo targets

__all__ = ["lower", "Lowered", "LoweringResult", "Target", "TARGETS", "TARGET_NAMES",
           "register_target", "get_target", "resource", "rebind_program", "make_program",
           "NodeSpec", "collapse_ports", "numpy_params", "Violation", "DesignRuleError",
           "raise_violations", "QuantizationRecord", "MappingRecord"]
