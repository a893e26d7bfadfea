"""Every published figure the chip cost models use, each with its value, unit, source and
kind.

Kinds: ``"measured"`` (measured on silicon), ``"simulated"`` (pre-silicon simulation),
``"vendor model"`` (a vendor's model, software or claim) and ``"derived"`` (computed here
from other constants, or an assumption this module states). A model's result is an
*estimate* on that basis, never a measurement; the report lists the constants behind each
number.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Constant", "CONSTANTS", "KINDS", "constant", "derived"]

KINDS = ("measured", "simulated", "vendor model", "derived")


@dataclasses.dataclass(frozen=True)
class Constant:
    """One figure of a cost model.

    Attributes:
        name: short identifier (``"loihi.e_synop"``).
        value: the number, in ``unit``.
        unit: SI unit (``"J"``, ``"s"``, ``"W"``, ``"Hz"``, ``"count"``, ``"B"``).
        source: where the figure comes from (citation, or how it was derived).
        kind: one of :data:`KINDS`.
        note: what it means / how it is used.
    """

    name: str
    value: float
    unit: str
    source: str
    kind: str
    note: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"constant {self.name!r}: kind must be one of {KINDS}, got "
                             f"{self.kind!r}")

    def to_dict(self) -> dict:
        """``{"name", "value", "unit", "source", "kind", "note"}``."""
        return dataclasses.asdict(self)


DAVIES = "Davies et al., IEEE Micro 38(1), 2018 (Loihi), Table 2"
DAVIES_ARCH = "Davies et al., IEEE Micro 38(1), 2018 (Loihi), chip overview"
LOIHI2_BRIEF = "Intel, Loihi 2 technology brief, 2021"
PILOTNET = ("lava-dl tutorial netx/pilotnet_snn/benchmark.ipynb (PilotNet LIF on an Oheo "
            "Gulch board)")
HOPPNER = ("Hoppner et al., IEEE TCAS-I 66(8), 2019, 28 nm SpiNNaker2 prototype (as tabulated "
           "in KerasSpiking model_energy.py)")
S2_DATASHEET = "SpiNNaker2 datasheet v0.03, 2021 (SpiNNakerManchester/SpiNNMachine)"
GONZALEZ = "Gonzalez et al., arXiv 2401.04491, 2024"
ROCKPOOL_CYCLES = ("Rockpool 3.1.0 devices/xylo/syns61201/power_cycles_model.py and "
                   "syns63300/power_cycles_model.py (cycles_model)")
BOS_MUIR = "Bos & Muir, arXiv 2406.15112, 2024 (Xylo Audio 2 keyword spotting)"
XYLO_SIZES = ("Rockpool 3.1.0 XyloSim specifications (syns61201 / syns65302 / syns63300), "
              "as summarised in nirjax's HARDWARE_FACTS.md section 2")
YAO = "Yao et al., Nature Communications 15:4464, 2024 (Speck)"
SINABS_CHIP = "sinabs 3.1.3 backend/dynapcnn/chips/dynapcnn.py (per-core memory of DYNAP-CNN)"
MEROLLA = "Merolla et al., Science 345:668, 2014 (TrueNorth)"
DEGNAN = ("Degnan, Marr, Hasler, IEEE TVLSI 24(1), 2015 (as tabulated in KerasSpiking "
          "model_energy.py)")

_ALL = [
    # ---------------------------------------------------------------- Loihi (1)
    Constant("loihi.e_synop", 23.6e-12, "J", DAVIES, "simulated",
             "energy per synaptic spike operation"),
    Constant("loihi.t_synop", 3.5e-9, "s", DAVIES, "simulated",
             "time per synaptic spike operation (one core)"),
    Constant("loihi.e_update_active", 81e-12, "J", DAVIES, "simulated",
             "energy per active neuron (compartment) update"),
    Constant("loihi.t_update_active", 8.4e-9, "s", DAVIES, "simulated",
             "time per active neuron update (one core)"),
    Constant("loihi.e_update_inactive", 52e-12, "J", DAVIES, "simulated",
             "energy per inactive neuron update"),
    Constant("loihi.t_update_inactive", 5.3e-9, "s", DAVIES, "simulated",
             "time per inactive neuron update (one core)"),
    Constant("loihi.e_spike_tile", 1.7e-12, "J", DAVIES, "simulated",
             "energy per spike message delivered within a tile"),
    Constant("loihi.e_hop_ns", 4.0e-12, "J", DAVIES, "simulated",
             "energy per spike message per north-south mesh hop (the larger hop figure)"),
    Constant("loihi.t_barrier_min", 113e-9, "s", DAVIES, "simulated",
             "time-step barrier synchronisation, lower end"),
    Constant("loihi.t_barrier_max", 465e-9, "s", DAVIES, "simulated",
             "time-step barrier synchronisation, upper end"),
    Constant("loihi.cores", 128, "count", DAVIES_ARCH, "vendor model",
             "neuromorphic cores per chip"),
    Constant("loihi.neurons_per_core", 1024, "count", DAVIES_ARCH, "vendor model",
             "compartments (neurons) per core"),
    Constant("loihi.synapse_memory", 128 * 1024, "B", DAVIES_ARCH, "vendor model",
             "synaptic memory per core (16 MB per chip)"),
    Constant("loihi.bytes_per_synapse", 1, "B", "assumption of this model (8-bit weights, "
             "no compression, no per-synapse delay or tag)", "derived",
             "synaptic memory one nonzero weight occupies"),
    # ---------------------------------------------------------------- Loihi 2
    Constant("loihi2.cores", 128, "count", LOIHI2_BRIEF, "vendor model", "neuro cores per chip"),
    Constant("loihi2.neurons_per_core", 8192, "count", LOIHI2_BRIEF, "vendor model",
             "neurons per core (at most)"),
    Constant("loihi2.memory_per_core", 192 * 1024, "B", LOIHI2_BRIEF, "vendor model",
             "memory per core (synapses and neuron state)"),
    Constant("loihi2.neurons_per_chip", 1_000_000, "count", LOIHI2_BRIEF, "vendor model",
             "neurons per chip (at most)"),
    Constant("loihi2.synapses_per_chip", 120_000_000, "count", LOIHI2_BRIEF, "vendor model",
             "synapses per chip (at most)"),
    Constant("loihi2.speedup", 10.0, "count", LOIHI2_BRIEF + ": 'up to 10x' over Loihi",
             "vendor model", "upper bound of Loihi 2's speed-up over Loihi per operation"),
    Constant("loihi2.p_static", 0.232, "W", PILOTNET, "measured",
             "static power of the board during the PilotNet run"),
    Constant("loihi2.pilotnet_step", 153e-6, "s", PILOTNET, "measured",
             "time per step of PilotNet LIF (reference point, not used in the model)"),
    Constant("loihi2.pilotnet_energy", 1.66e-3, "J", PILOTNET, "measured",
             "energy per PilotNet inference (reference point, not used in the model)"),
    # ---------------------------------------------------------------- SpiNNaker2
    Constant("spinnaker2.e_synop", 450e-12, "J", HOPPNER, "measured",
             "energy per synaptic event"),
    Constant("spinnaker2.e_update", 2.19e-9, "J", HOPPNER, "measured",
             "energy per neuron update"),
    Constant("spinnaker2.pes", 152, "count", GONZALEZ + "; " + S2_DATASHEET, "vendor model",
             "ARM Cortex-M4F processing elements per chip"),
    Constant("spinnaker2.sram_per_pe", 128 * 1024, "B", S2_DATASHEET, "vendor model",
             "local code and data memory per processing element"),
    Constant("spinnaker2.bytes_per_synapse", 1, "B", "py-spinnaker2 s2_nir.py scale_weights "
             "(int8 weights), as in nirjax's HARDWARE_FACTS.md section 5", "derived",
             "memory one nonzero weight occupies (no routing or index overhead counted)"),
    Constant("spinnaker2.bytes_per_neuron", 16, "B", "assumption of this model (membrane, "
             "current, threshold, decay as 32-bit words)", "derived",
             "memory of one neuron's state and parameters"),
    # ---------------------------------------------------------------- Xylo
    Constant("xylo.clock", 50e6, "Hz", ROCKPOOL_CYCLES + " (default master clock)",
             "vendor model", "master clock frequency"),
    Constant("xylo.input_loop_cycles", 3.5, "count", ROCKPOOL_CYCLES, "vendor model",
             "cycles per input event and input-expansion neuron"),
    Constant("xylo.hidden_update_cycles", 7, "count", ROCKPOOL_CYCLES, "vendor model",
             "cycles per hidden spike and recurrent target"),
    Constant("xylo.output_isyn_update_cycles", 8, "count", ROCKPOOL_CYCLES, "vendor model",
             "cycles per hidden spike and readout neuron"),
    Constant("xylo.fixed_hidden_neuron_cycles", 19, "count", ROCKPOOL_CYCLES, "vendor model",
             "fixed cycles per hidden neuron and step"),
    Constant("xylo.fixed_output_neuron_cycles", 12, "count", ROCKPOOL_CYCLES, "vendor model",
             "fixed cycles per readout neuron and step"),
    Constant("xylo_audio2.p_dynamic", 291e-6, "W", BOS_MUIR, "measured",
             "dynamic power during keyword spotting"),
    Constant("xylo_audio2.kws_energy", 6.6e-6, "J", BOS_MUIR, "measured",
             "energy per keyword-spotting inference (reference point, not used in the model)"),
    # ---------------------------------------------------------------- Speck
    Constant("speck.p_rest", 0.42e-3, "W", YAO, "measured", "power at rest"),
    Constant("speck.p_operation", 0.70e-3, "W", YAO, "measured", "total power in operation"),
    Constant("speck.cores", 9, "count", SINABS_CHIP, "vendor model", "convolutional cores"),
    # ---------------------------------------------------------------- TrueNorth
    Constant("truenorth.e_synop", 26e-12, "J", MEROLLA, "measured",
             "energy per synaptic event, whole chip including static power"),
    Constant("truenorth.tick", 1e-3, "s", MEROLLA, "measured", "time step (real-time tick)"),
    Constant("truenorth.cores", 4096, "count", MEROLLA, "vendor model", "cores per chip"),
    Constant("truenorth.neurons_per_core", 256, "count", MEROLLA, "vendor model",
             "neurons per core (1 M per chip)"),
    Constant("truenorth.axons_per_core", 256, "count", MEROLLA, "vendor model",
             "input axons per core (256 x 256 crossbar; 256 M synapses per chip)"),
    # ---------------------------------------------------------------- reference
    Constant("cpu.e_op", 8.6e-9, "J", DEGNAN, "derived",
             "energy per synaptic operation and per neuron update on a CPU"),
    Constant("gpu.e_op", 0.3e-9, "J", DEGNAN, "derived",
             "energy per synaptic operation and per neuron update on a GPU"),
]

#: name -> :class:`Constant`
CONSTANTS: dict = {c.name: c for c in _ALL}

# Speck's per-core memory limits (words), cores 0..8
SPECK_KERNEL_WORDS = (16, 16, 16, 32, 32, 64, 64, 16, 16)
SPECK_NEURON_WORDS = (64, 64, 64, 32, 32, 16, 16, 16, 16)
SPECK_BIAS_WORDS = 1024


def constant(name: str) -> Constant:
    """The constant called ``name``.

    >>> constant("truenorth.e_synop").value
    2.6e-11
    """
    return CONSTANTS[name]


def derived(name: str, value: float, unit: str, how: str, note: str = "") -> Constant:
    """A constant computed from others (kind ``"derived"``), ``how`` saying from which.

    >>> derived("x", 2.0, "J", "2 x y").kind
    'derived'
    """
    return Constant(name, float(value), unit, how, "derived", note)
