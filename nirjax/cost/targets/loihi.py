"""Intel Loihi (1) and Loihi 2.

**Capacity.** Every neuron population gets its own cores: ``ceil(neurons / neurons per
core)``, or more when its incoming nonzero weights (one byte each, an assumption) exceed a
core's synaptic memory. The graph fits when the total is within one chip's cores (Loihi 2:
also within the chip's neuron and synapse totals).

**Time per step** follows the max-over-cores form of Timcheck, Pierro and Shrestha
(arXiv 2601.10035): the cores work in parallel, the step ends at a barrier, so

    t_step = max over populations of (S_p * t_syn + A_p * t_act + I_p * t_inact) / cores_p
             + t_barrier

with ``S_p`` the synaptic operations into population ``p`` (effective ACs + MACs: on Loihi
every nonzero input is one spike message), ``A_p`` its active neuron updates (neurons whose
membrane changed: NeuroBench's membrane updates) and ``I_p`` the inactive ones, all per step
of one sample, with Davies et al.'s (2018) per-operation times for Loihi. The range uses
the barrier's 113-465 ns; the headline is the upper end.

**Energy per inference** (per step, times ``T``)::

    E = S*e_syn + A*e_act + I*e_inact + spikes*e_tile            (low)
    high adds spikes * e_hop * ceil(sqrt(cores)) (a spike crossing the used mesh)

Loihi 2: Davies et al.'s Loihi figures are the only per-operation ones in our sources; they
are used as Loihi 2's upper bound for time (the brief claims up to 10x faster: the range
goes down to a tenth; the work is spread over cores as on Loihi) and for dynamic energy,
and the board's measured static power
(0.232 W, PilotNet on Oheo Gulch) is added over the inference for the high end.
"""

from __future__ import annotations

import math

from ..constants import constant, derived
from ._common import Capacity, Target, per_step, result

__all__ = ["capacity_loihi", "capacity_loihi2", "estimate_loihi", "estimate_loihi2"]


def _population_cores(structure, per_core, memory, bytes_per_syn):
    """Cores of each population and the nonzero weights into it."""
    incoming = {name: 0 for name in structure.populations}
    for proj in structure.projections.values():
        for t in proj.targets:
            if t in incoming:
                incoming[t] += proj.nonzero
    cores = {}
    for name, pop in structure.populations.items():
        by_neurons = math.ceil(pop.size / per_core)
        by_memory = math.ceil(incoming[name] * bytes_per_syn / memory)
        cores[name] = max(1, by_neurons, by_memory)
    return cores, incoming


def capacity_loihi(structure) -> Capacity:
    """Loihi (1): 128 cores, 1024 neurons and 128 KB of synaptic memory per core."""
    n_cores, per_core = constant("loihi.cores"), constant("loihi.neurons_per_core")
    memory, bps = constant("loihi.synapse_memory"), constant("loihi.bytes_per_synapse")
    cores, incoming = _population_cores(structure, per_core.value, memory.value, bps.value)
    total = sum(cores.values())
    v = []
    if total > n_cores.value:
        v.append(f"{total} cores needed > {int(n_cores.value)} on one Loihi chip")
    return Capacity(fits=not v, cores=total, violations=v,
                    usage={"neurons": structure.neurons, "synapses": structure.synapses,
                           "cores_per_population": cores},
                    basis=[n_cores, per_core, memory, bps])


def capacity_loihi2(structure) -> Capacity:
    """Loihi 2: 128 cores, 8192 neurons and 192 KB per core; 1 M neurons, 120 M synapses."""
    n_cores, per_core = constant("loihi2.cores"), constant("loihi2.neurons_per_core")
    memory, bps = constant("loihi2.memory_per_core"), constant("loihi.bytes_per_synapse")
    max_n, max_s = constant("loihi2.neurons_per_chip"), constant("loihi2.synapses_per_chip")
    cores, incoming = _population_cores(structure, per_core.value, memory.value, bps.value)
    total = sum(cores.values())
    v = []
    if total > n_cores.value:
        v.append(f"{total} cores needed > {int(n_cores.value)} on one Loihi 2 chip")
    if structure.neurons > max_n.value:
        v.append(f"{structure.neurons} neurons > {int(max_n.value)} per Loihi 2 chip")
    if structure.synapses > max_s.value:
        v.append(f"{structure.synapses} synapses > {int(max_s.value)} per Loihi 2 chip")
    return Capacity(fits=not v, cores=total, violations=v,
                    usage={"neurons": structure.neurons, "synapses": structure.synapses,
                           "cores_per_population": cores},
                    basis=[n_cores, per_core, memory, bps, max_n, max_s])


def _core_time(ctx, cores):
    """max over populations of the per-core work of one step (seconds, no barrier)."""
    t_syn = constant("loihi.t_synop").value
    t_act = constant("loihi.t_update_active").value
    t_inact = constant("loihi.t_update_inactive").value
    steps = max(ctx.counts.steps, 1)
    syn_into = {name: 0.0 for name in ctx.structure.populations}
    for proj in ctx.structure.projections.values():
        for t in proj.targets:
            if t in syn_into:
                syn_into[t] += ctx.counts.per_node[proj.name]["synops"] / steps
    worst = 0.0
    for name, pop in ctx.structure.populations.items():
        active = ctx.counts.per_node[name]["membrane_updates"] / steps
        inactive = max(pop.size - active, 0.0)
        work = syn_into[name] * t_syn + active * t_act + inactive * t_inact
        worst = max(worst, work / cores.get(name, 1))
    return worst


def _dynamic_energy(ctx, cores_total):
    a = per_step(ctx.counts)
    steps = ctx.counts.steps
    e = (a["synops"] * constant("loihi.e_synop").value
         + a["active"] * constant("loihi.e_update_active").value
         + a["inactive"] * constant("loihi.e_update_inactive").value
         + a["spikes"] * constant("loihi.e_spike_tile").value) * steps
    hops = math.ceil(math.sqrt(max(cores_total, 1)))
    e_hops = a["spikes"] * constant("loihi.e_hop_ns").value * hops * steps
    return e, e + e_hops, hops


_BASIS = ("loihi.e_synop", "loihi.t_synop", "loihi.e_update_active", "loihi.t_update_active",
          "loihi.e_update_inactive", "loihi.t_update_inactive", "loihi.e_spike_tile",
          "loihi.e_hop_ns", "loihi.t_barrier_min", "loihi.t_barrier_max")


def estimate_loihi(ctx) -> dict:
    """Loihi (1): Davies et al. (2018) per-operation times and energies."""
    target = TARGETS_LOIHI["loihi"]
    cap = target.capacity(ctx.structure)
    cores = cap.usage["cores_per_population"]
    work = _core_time(ctx, cores)
    lo_t = work + constant("loihi.t_barrier_min").value
    hi_t = work + constant("loihi.t_barrier_max").value
    e_lo, e_hi, hops = _dynamic_energy(ctx, cap.cores)
    return result(target, cap, steps=ctx.counts.steps, time_per_step=hi_t,
                  time_range=(lo_t, hi_t), energy=(e_lo, e_hi),
                  basis=[constant(k) for k in _BASIS],
                  model="t_step = max_p (S_p t_syn + A_p t_act + I_p t_inact)/cores_p + barrier; "
                        "E/step = S e_syn + A e_act + I e_inact + spikes (e_tile [+ hops e_hop])",
                  notes=[f"populations spread over their own cores; spikes cross up to {hops} "
                         f"mesh hops in the high energy estimate",
                         "no static power in Davies et al.'s table: energies are dynamic only"])


def estimate_loihi2(ctx) -> dict:
    """Loihi 2: Loihi's per-operation figures as the upper bound, plus static power."""
    target = TARGETS_LOIHI["loihi2"]
    cap = target.capacity(ctx.structure)
    # the work is spread as on Loihi (at most 1024 neurons per core): a Loihi 2 core can
    # hold more, but spreading a population is the compiler's choice
    cores = capacity_loihi(ctx.structure).usage["cores_per_population"]
    speedup = constant("loihi2.speedup")
    work = _core_time(ctx, cores)
    hi_t = work + constant("loihi.t_barrier_max").value
    lo_t = (work + constant("loihi.t_barrier_min").value) / speedup.value
    e_lo, e_dyn_hi, hops = _dynamic_energy(ctx, cap.cores)
    p_static = constant("loihi2.p_static")
    steps = ctx.counts.steps
    e_static = derived("loihi2.e_static", p_static.value * hi_t * steps, "J",
                       "loihi2.p_static x time per inference (upper time estimate)",
                       "static energy over one inference")
    basis = [constant(k) for k in _BASIS] + [speedup, p_static, e_static,
                                             constant("loihi2.pilotnet_step"),
                                             constant("loihi2.pilotnet_energy")]
    return result(target, cap, steps=steps, time_per_step=hi_t, time_range=(lo_t, hi_t),
                  energy=(e_lo, e_dyn_hi + e_static.value), basis=basis,
                  model="as Loihi, with Loihi's per-operation figures as Loihi 2's upper "
                        "bound; time range down to 1/10 (vendor claim); high energy adds "
                        "the measured static power over the inference",
                  notes=["Loihi 2 per-operation energies and times are not in our sources: "
                         "Loihi (1) figures are used (derived)",
                         "reference point: PilotNet LIF measured 153 us/step and 1.66 mJ per "
                         "inference on an Oheo Gulch board"])


TARGETS_LOIHI = {
    "loihi": Target("loihi", "Intel Loihi", capacity_loihi, estimate_loihi),
    "loihi2": Target("loihi2", "Intel Loihi 2", capacity_loihi2, estimate_loihi2),
}
