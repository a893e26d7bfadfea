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

One subpackage per chip family with several modules, one module otherwise; each registers
its targets when imported:

* ``xylo`` (SynSense Xylo Audio 2, Audio 3, IMU): ``"xylo-audio2"``, ``"xylo-audio3"``,
  ``"xylo-imu"``; ``xylo.quantize`` (NumPy only) maps a float network of Xylo's shape to the
  chip's integer specification as Rockpool's mapper and quantizers do, reports every
  rounding and writes the ``.npz`` that ``XyloSim.from_specification`` reads;
  ``xylo.rules`` holds the chips' design rules as data; ``xylo.from_nir`` reads such a
  network out of a NIR graph.
* ``speck`` (SynSense Speck / DYNAP-CNN): ``"speck"``; ``speck.quantize`` (NumPy only)
  discretizes a convolutional network as sinabs' DYNAP-CNN backend does and maps its layers
  to Speck's cores; ``speck.from_nir`` reads such a network out of a NIR graph and writes the
  discretized graph back.
* ``spinnaker2``: ``"spinnaker2"``, py-spinnaker2's import rules and int8 weight scaling.
* ``loihi`` (Intel Loihi 2, Lava fixed point, lava-dl netx): ``"loihi2"``; ``loihi.quantize``
  (NumPy only) reads the netx chain out of a Program, checks Loihi's design rules and maps
  the float layers to netx's integers, reporting every rounding; ``loihi.netx`` writes and
  reads netx HDF5 files and reproduces netx's weight packing.

``source.flat_graph`` rebuilds the NIR graph a float Program stands for (with the parameters
being lowered), for targets whose vendor toolchain reads NIR.
"""

from .violations import (DesignRuleError, MappingRecord, QuantizationRecord, Violation,
                         raise_violations)
from .core import (TARGET_NAMES, TARGETS, Lowered, LoweringResult, NodeSpec, Target,
                   collapse_ports, get_target, lower, make_program, numpy_params,
                   rebind_program, register_target, resource)
from . import xylo  # noqa: E402,F401  registers the Xylo targets
from . import speck, spinnaker2  # noqa: E402,F401  register "speck" and "spinnaker2"
from . import loihi  # noqa: E402,F401  registers the Loihi 2 target

__all__ = ["lower", "Lowered", "LoweringResult", "Target", "TARGETS", "TARGET_NAMES",
           "register_target", "get_target", "resource", "rebind_program", "make_program",
           "NodeSpec", "collapse_ports", "numpy_params", "Violation", "DesignRuleError",
           "raise_violations", "QuantizationRecord", "MappingRecord"]
