"""SpiNNaker2, Speck, TrueNorth, and the CPU / GPU reference figures.

**SpiNNaker2** (py-spinnaker2's NIR import rules; Hoppner et al. 2019's energies, measured
on the 28 nm prototype). Capacity: each population takes ``ceil(bytes / 128 KB)``
processing elements, bytes = 16 per neuron (an assumption) + 1 per nonzero incoming weight
(int8); 152 PEs per chip. Time per step: SpiNNaker2 simulates in real time, one timer tick
per step; the tick is taken to be the graph's ``dt`` (an assumption: whether a PE's work
fits in the tick is not modelled). Energy: ``synops * 450 pJ + updates * 2.19 nJ`` per
inference, updates = the membrane updates (low) or every neuron every step (high, what a
timer-driven PE does).

**Speck** (DYNAP-CNN core limits from sinabs 3.1.3; Yao et al. 2024's measured power).
Capacity: every weight layer with its IAF population is one core layer; its kernel,
neuron and bias memory (sinabs' formulas, HARDWARE_FACTS section 4) must fit a core, layers
are assigned to the 9 cores by a bipartite matching, and each core sends to at most 2
cores. Time per step: Speck is event-driven and asynchronous; it keeps up with its input in
real time, so a step takes ``dt``. Energy: ``(P_op - P_rest) * T * dt`` (low, the part
above rest) to ``P_op * T * dt`` (high).

**TrueNorth** (Merolla et al. 2014). Capacity: a core is a 256-axon x 256-neuron crossbar:
a population takes ``ceil(neurons/256) * ceil(receptive field/256)`` cores (a lower bound:
the splitter neurons that fan a spike out to several cores are not counted); 4096 cores.
Time per step: the 1 ms tick. Energy: ``synops * 26 pJ`` (whole chip including static power,
at the paper's operating point); a non-spike input counts as one event.

**CPU / GPU** (Degnan et al. 2015's per-operation energies). Time and samples/s: nirjax's
own measured figures on that backend when one was measured (``None`` otherwise). Energy:
``(synops + membrane updates) * e`` (low, an event-driven implementation) to
``(dense synops + every neuron update) * e`` (high, a dense one, as nirjax computes).
"""

from __future__ import annotations

import math

from ..constants import (SINABS_CHIP, SPECK_BIAS_WORDS, SPECK_KERNEL_WORDS,
                         SPECK_NEURON_WORDS, Constant, constant, derived)
from ._common import Capacity, Target, result

__all__ = ["TARGETS_OTHER", "speck_layers"]


# ----------------------------------------------------------------------------- SpiNNaker2


def capacity_spinnaker2(structure) -> Capacity:
    """PEs from memory per population; py-spinnaker2's NIR import restrictions."""
    pes, sram = constant("spinnaker2.pes"), constant("spinnaker2.sram_per_pe")
    bps, bpn = constant("spinnaker2.bytes_per_synapse"), constant("spinnaker2.bytes_per_neuron")
    v = []
    incoming = {name: 0 for name in structure.populations}
    for proj in structure.projections.values():
        where = f"node {proj.name!r} ({proj.type_name})"
        if proj.type_name == "Conv1d":
            v.append(f"{where}: py-spinnaker2 imports Affine, Linear and Conv2d projections")
        for s in proj.sources:
            if structure.kinds.get(s) == "synapse":
                v.append(f"{where}: two weight layers in a row ({s!r} -> {proj.name!r}); "
                         f"py-spinnaker2 rejects them")
        for t in proj.targets:
            if t in incoming:
                incoming[t] += proj.nonzero
                if proj.type_name == "Conv2d" and structure.populations[t].type_name == "CubaLIF":
                    v.append(f"{where}: CubaLIF after Conv2d is rejected by py-spinnaker2")
    for name, pop in structure.populations.items():
        if pop.type_name not in ("LIF", "IF", "CubaLIF"):
            v.append(f"node {name!r} ({pop.type_name}): py-spinnaker2 imports LIF, IF and "
                     f"CubaLIF populations")
    used = {name: max(1, math.ceil((pop.size * bpn.value + incoming[name] * bps.value)
                                   / sram.value))
            for name, pop in structure.populations.items()}
    total = sum(used.values())
    if total > pes.value:
        v.append(f"{total} processing elements needed > {int(pes.value)} on one SpiNNaker2 chip")
    return Capacity(fits=not v, cores=total, violations=v,
                    usage={"neurons": structure.neurons, "synapses": structure.synapses,
                           "pes_per_population": used},
                    basis=[pes, sram, bps, bpn])


def estimate_spinnaker2(ctx) -> dict:
    """Real-time tick; Hoppner et al.'s energy per synaptic event and neuron update."""
    target = TARGETS_OTHER["spinnaker2"]
    cap = target.capacity(ctx.structure)
    t = ctx.counts.totals
    e_syn, e_upd = constant("spinnaker2.e_synop"), constant("spinnaker2.e_update")
    low = t["SynapticOperations"] * e_syn.value + t["MembraneUpdates"] * e_upd.value
    high = t["SynapticOperations"] * e_syn.value + t["NeuronUpdates"] * e_upd.value
    tick = derived("spinnaker2.tick", ctx.counts.dt, "s", "the graph's dt (assumption: "
                   "real-time operation, one timer tick per step)", "time per step")
    return result(target, cap, steps=ctx.counts.steps, time_per_step=tick.value,
                  energy=(low, high), basis=[e_syn, e_upd, tick],
                  model="t_step = dt (real time); E = synops e_syn + updates e_upd",
                  notes=["no per-operation time for SpiNNaker2 in our sources: real-time "
                         "operation at the graph's dt is assumed"])


# ----------------------------------------------------------------------------- Speck


def _log2c(n) -> int:
    return int(math.ceil(math.log2(n))) if n > 1 else 0


def speck_layers(structure) -> tuple[list, list]:
    """Speck core layers (one per weight node) with their memory words, and violations."""
    v, layers = [], []
    for proj in structure.projections.values():
        where = f"node {proj.name!r} ({proj.type_name})"
        if proj.recurrent:
            v.append(f"{where}: recurrent connections are not supported on Speck")
        targets = [t for t in proj.targets if t in structure.populations]
        if len(targets) != 1 or len(proj.targets) != 1:
            v.append(f"{where}: must feed exactly one IAF population, feeds {list(proj.targets)}")
            continue
        pop = structure.populations[targets[0]]
        if pop.type_name != "IF":
            v.append(f"node {pop.name!r} ({pop.type_name}): Speck's neurons are "
                     f"integrate-and-fire (IF) without leak")
        if proj.type_name == "Conv2d":
            c_out, c_in, kh, kw = proj.weight_shape
            h, w = proj.out_shape[1], proj.out_shape[2]
            if kh != kw or kh > 16:
                v.append(f"{where}: kernel {kh}x{kw}; Speck needs square kernels up to 16x16")
        elif proj.type_name in ("Affine", "Linear"):
            c_out = proj.weight_shape[0]
            # a dense layer is a conv whose kernel covers the whole input
            src_pop = [structure.populations[s] for s in proj.sources
                       if s in structure.populations]
            c_in = src_pop[0].shape[0] if src_pop and len(src_pop[0].shape) == 3 else \
                proj.weight_shape[1]
            area = max(proj.weight_shape[1] // max(c_in, 1), 1)
            kh, kw, h, w = area, 1, 1, 1
        else:
            v.append(f"{where}: not supported on Speck")
            continue
        for r in proj.routes_out:
            if r not in ("SumPool2d", "Flatten", "Delay"):
                v.append(f"{where}: {r} after the layer is not supported on Speck")
        layers.append({
            "name": proj.name, "population": pop.name,
            "kernel_words": c_in * 2 ** (_log2c(kh * kw) + _log2c(c_out)),
            "neuron_words": c_out * 2 ** (_log2c(h) + _log2c(w)),
            "bias_words": c_out,
            "destinations": 0,
        })
    by_pop = {layer["population"]: layer for layer in layers}
    for proj in structure.projections.values():
        for s in proj.sources:
            if s in by_pop:
                by_pop[s]["destinations"] += 1
    for layer in layers:
        if layer["destinations"] > 2:
            v.append(f"node {layer['population']!r}: feeds {layer['destinations']} layers; a "
                     f"Speck core sends to at most 2")
    return layers, v


def _match(layers, fits) -> dict | None:
    """Assign each layer a distinct core it fits (augmenting paths); ``None`` if none."""
    owner: dict[int, int] = {}

    def place(i, seen):
        for c in range(len(SPECK_KERNEL_WORDS)):
            if fits(layers[i], c) and c not in seen:
                seen.add(c)
                if c not in owner or place(owner[c], seen):
                    owner[c] = i
                    return True
        return False

    for i in range(len(layers)):
        if not place(i, set()):
            return None
    return {layers[i]["name"]: c for c, i in owner.items()}


def capacity_speck(structure) -> Capacity:
    """sinabs' per-layer memory formulas against DYNAP-CNN's 9 cores."""
    cores = constant("speck.cores")
    basis = [cores,
             Constant("speck.kernel_memory", sum(SPECK_KERNEL_WORDS) * 1024, "count",
                      SINABS_CHIP, "vendor model",
                      f"kernel words per core 0..8 (Ki): {SPECK_KERNEL_WORDS}"),
             Constant("speck.neuron_memory", sum(SPECK_NEURON_WORDS) * 1024, "count",
                      SINABS_CHIP, "vendor model",
                      f"neuron words per core 0..8 (Ki): {SPECK_NEURON_WORDS}"),
             Constant("speck.bias_memory", SPECK_BIAS_WORDS, "count", SINABS_CHIP,
                      "vendor model", "bias words per core")]
    layers, v = speck_layers(structure)

    def fits(layer, c):
        return (layer["kernel_words"] <= SPECK_KERNEL_WORDS[c] * 1024
                and layer["neuron_words"] <= SPECK_NEURON_WORDS[c] * 1024
                and layer["bias_words"] <= SPECK_BIAS_WORDS)

    assignment = None
    if len(layers) > cores.value:
        v.append(f"{len(layers)} layers > {int(cores.value)} Speck cores")
    elif layers:
        assignment = _match(layers, fits)
        if assignment is None:
            v.append("no assignment of the layers to Speck's cores satisfies the kernel, "
                     "neuron and bias memory limits")
    return Capacity(fits=not v, cores=len(layers) if layers else 0, violations=v,
                    usage={"layers": layers, "assignment": assignment}, basis=basis)


def estimate_speck(ctx) -> dict:
    """Event-driven real time; Yao et al.'s measured rest and operating power."""
    target = TARGETS_OTHER["speck"]
    cap = target.capacity(ctx.structure)
    p_rest, p_op = constant("speck.p_rest"), constant("speck.p_operation")
    dt = ctx.counts.dt
    steps = ctx.counts.steps
    step = derived("speck.step", dt, "s", "the graph's dt (Speck is event-driven and "
                   "processes its input as it arrives, in real time)", "time per step")
    return result(target, cap, steps=steps, time_per_step=step.value,
                  energy=((p_op.value - p_rest.value) * steps * dt, p_op.value * steps * dt),
                  basis=[p_rest, p_op, step],
                  model="t_step = dt (real time); E in [(P_op - P_rest) T dt, P_op T dt]",
                  notes=["power figures of Yao et al.'s application, not of this graph"])


# ----------------------------------------------------------------------------- TrueNorth


def capacity_truenorth(structure) -> Capacity:
    """256 x 256 crossbar cores, 4096 per chip."""
    n_cores = constant("truenorth.cores")
    per_core = constant("truenorth.neurons_per_core")
    axons = constant("truenorth.axons_per_core")
    v = []
    used = {}
    for proj in structure.projections.values():
        if proj.type_name in ("Affine", "Linear"):
            field = proj.weight_shape[1]
        else:
            field = int(math.prod(proj.weight_shape[1:]))
        size = int(math.prod(proj.out_shape))
        used[proj.name] = math.ceil(size / per_core.value) * math.ceil(field / axons.value)
    for name, pop in structure.populations.items():
        if not pop.spiking and not pop.readout:
            v.append(f"node {name!r} ({pop.type_name}): TrueNorth neurons spike")
    total = sum(used.values())
    if total > n_cores.value:
        v.append(f"{total} cores needed > {int(n_cores.value)} on one TrueNorth chip")
    return Capacity(fits=not v, cores=total, violations=v,
                    usage={"neurons": structure.neurons, "synapses": structure.synapses,
                           "cores_per_projection": used},
                    basis=[n_cores, per_core, axons])


def estimate_truenorth(ctx) -> dict:
    """1 ms tick; 26 pJ per synaptic event including static power."""
    target = TARGETS_OTHER["truenorth"]
    cap = target.capacity(ctx.structure)
    e_syn, tick = constant("truenorth.e_synop"), constant("truenorth.tick")
    e = ctx.counts.totals["SynapticOperations"] * e_syn.value
    return result(target, cap, steps=ctx.counts.steps, time_per_step=tick.value,
                  energy=(e, e), basis=[e_syn, tick],
                  model="t_step = 1 ms tick; E = synops x 26 pJ (incl. static)",
                  notes=["weights are not quantized here: TrueNorth's 4 signed weights per "
                         "neuron cannot hold an arbitrary real matrix",
                         "splitter neurons for fan-out to several cores are not counted"])


# ----------------------------------------------------------------------------- reference


def _reference(backend):
    def capacity(structure) -> Capacity:
        return Capacity(fits=True, cores=1, violations=[], usage={}, basis=[])

    def estimate(ctx) -> dict:
        target = TARGETS_OTHER[backend]
        cap = capacity(ctx.structure)
        e_op = constant(f"{backend}.e_op")
        t = ctx.counts.totals
        low = (t["SynapticOperations"] + t["MembraneUpdates"]) * e_op.value
        high = (t["Dense"] + t["NeuronUpdates"]) * e_op.value
        measured = (ctx.measured or {}).get(backend)
        notes = ["energy from per-operation figures (KerasSpiking's model, no static power)"]
        if measured:
            step, sps = measured["time_per_step_s"], measured["samples_per_s"]
            notes.append(f"time and samples/s are nirjax's own measurement on this machine "
                         f"({measured.get('device', backend)}); time per step advances the "
                         f"whole batch of {measured['batch']}, time per inference is the "
                         f"batch's time per sample (1 / samples_per_s)")
        else:
            step = sps = None
            notes.append(f"no {backend.upper()} was measured on this machine: no time figure")
        return result(target, cap, steps=ctx.counts.steps, time_per_step=step,
                      samples_per_s=sps, time_per_inference=None if sps is None else 1.0 / sps,
                      energy=(low, high), basis=[e_op],
                      model="E in [(synops + membrane updates) e, (dense + neuron updates) e]",
                      notes=notes, measured_time=bool(measured))

    return capacity, estimate


_cpu = _reference("cpu")
_gpu = _reference("gpu")

TARGETS_OTHER = {
    "spinnaker2": Target("spinnaker2", "SpiNNaker2", capacity_spinnaker2, estimate_spinnaker2),
    "speck": Target("speck", "SynSense Speck", capacity_speck, estimate_speck),
    "truenorth": Target("truenorth", "IBM TrueNorth", capacity_truenorth, estimate_truenorth),
    "cpu": Target("cpu", "CPU (reference)", _cpu[0], _cpu[1]),
    "gpu": Target("gpu", "GPU (reference)", _gpu[0], _gpu[1]),
}
