"""Xylo Audio 2 (SYNS61201), Xylo Audio 3 (SYNS65302) and Xylo IMU (SYNS63300).

**Mapping.** Xylo has one input layer, one recurrent hidden population and one readout
population. The graph's Input is Xylo's input channels; the neuron populations that feed a
graph Output are the readout neurons, every other population is hidden (several hidden
layers become blocks of the recurrent weight matrix, as Rockpool's mapper does). Dense
projections (Affine, Linear) Input -> hidden are the input weights, hidden -> hidden the
recurrent weights, hidden -> readout the readout weights; anything else is a violation.

**Time per step** is Rockpool 3.1.0's own ``cycles_model`` (a vendor model), evaluated for
the spike probabilities of the benchmark run, divided by the master clock (50 MHz)::

    cycles = Nin*(p_in*N_ien*3.5 + 1) + Nhid*(f*7*p_hid + 3) + N_oen*p_hid*(1 + 8*Nout)
             + Nhid*(19 + v) + 12*Nout,   v = 3*p_hid  (no aliases)

with ``p_in``, ``p_hid``, ``p_out`` the fraction of (channel, step) slots with an event
(multiple events in a step count once, as in Rockpool), ``f`` the mean number of nonzero
recurrent weights per hidden neuron, and ``N_ien`` / ``N_oen`` the input- and
output-expansion neurons: every hidden neuron on Audio 2 (``syns61201``), the hidden
neurons with a nonzero input / readout weight on Audio 3 and IMU (``syns63300``). The alias
term of Rockpool's model is 0 (a NIR graph has no aliases). Nonzero weights are counted on
the graph's float weights; Rockpool counts them on the quantized chip configuration, so a
weight that rounds to 0 on the chip is counted here (an over-estimate).

A graph that does not map onto this layout (a convolution, a connection Xylo lacks) gets
no time or energy estimate (``None``); one that maps but exceeds a size limit gets the
estimate and ``fits = False``.

**Energy per inference** (Audio 2's measured keyword-spotting power, Bos & Muir 2024):
low ``cycles * T * P_dyn / f_clk`` (the measured dynamic power spread over every clock
cycle: energy only for busy cycles), high ``P_dyn * T * max(dt, t_step)`` (the measured
dynamic power drawn for the whole real-time inference). Audio 3 and IMU have no published
power figure in our sources: Audio 2's is used, marked derived.
"""

from __future__ import annotations

import numpy as np

from ..constants import XYLO_SIZES, Constant, constant, derived
from ._common import Capacity, Target, result

__all__ = ["VARIANTS", "xylo_mapping", "cycles_per_step", "capacity_for", "estimate_for"]

#: variant -> (title, inputs, hidden, readout, max recurrent fan-out, hidden neurons the input
#  and readout projections may reach (None: all), Rockpool cycle model, biases supported)
VARIANTS = {
    "xylo-audio2": ("Xylo Audio 2 (SYNS61201)", 16, 1000, 8, 64, None, "syns61201", True),
    "xylo-audio3": ("Xylo Audio 3 (SYNS65302)", 16, 992, 32, 1024, 128, "syns63300", False),
    "xylo-imu": ("Xylo IMU (SYNS63300)", 16, 496, 16, 512, None, "syns63300", False),
}
_NEURONS = ("LIF", "CubaLIF", "IF", "LI", "CubaLI")


def _limits(variant):
    title, n_in, n_hid, n_out, fanout, io_hidden, _, _ = VARIANTS[variant]
    key = variant.replace("-", "_")
    cs = [Constant(f"{key}.inputs", n_in, "count", XYLO_SIZES, "vendor model", "input channels"),
          Constant(f"{key}.hidden", n_hid, "count", XYLO_SIZES, "vendor model", "hidden neurons"),
          Constant(f"{key}.readout", n_out, "count", XYLO_SIZES, "vendor model",
                   "readout neurons"),
          Constant(f"{key}.fanout", fanout, "count", XYLO_SIZES, "vendor model",
                   "nonzero recurrent weights out of one hidden neuron (at most)")]
    if io_hidden is not None:
        cs.append(Constant(f"{key}.io_hidden", io_hidden, "count", XYLO_SIZES, "vendor model",
                           "hidden neurons the input and readout weights can reach"))
    return cs


def xylo_mapping(structure) -> dict:
    """Map a graph onto Xylo's input / hidden / readout layout (nonzero masks only).

    Returns:
        ``{"n_in", "hidden", "readout", "w_in", "w_rec", "w_out", "biases", "violations"}``:
        ``hidden`` / ``readout`` list population names in order, ``w_in`` is the
        ``[Nin, Nhid]`` nonzero mask, ``w_rec`` ``[Nhid, Nhid]`` (pre, post), ``w_out``
        ``[Nhid, Nout]``, ``biases`` whether an Affine bias is nonzero.
    """
    violations = []
    if len(structure.inputs) != 1:
        violations.append(f"Xylo has one input layer; the graph has {len(structure.inputs)} "
                          f"Input nodes {list(structure.inputs)}")
    n_in = int(sum(structure.inputs.values()))
    hidden = [p for p in structure.populations.values() if not p.readout]
    readout = [p for p in structure.populations.values() if p.readout]
    for p in structure.populations.values():
        if p.type_name not in _NEURONS:
            violations.append(f"node {p.name!r} ({p.type_name}): not a Xylo neuron")
    if not readout:
        violations.append("no neuron population feeds the graph's Output: Xylo reads out "
                          "from readout neurons")
    offset_h, offset_o = {}, {}
    k = 0
    for p in hidden:
        offset_h[p.name], k = k, k + p.size
    n_hid = k
    k = 0
    for p in readout:
        offset_o[p.name], k = k, k + p.size
    n_out = k
    w_in = np.zeros((n_in, n_hid), bool)
    w_rec = np.zeros((n_hid, n_hid), bool)
    w_out = np.zeros((n_hid, n_out), bool)
    biases = False
    in_offset, k = {}, 0
    for name, size in structure.inputs.items():
        in_offset[name], k = k, k + size
    for proj in structure.projections.values():
        where = f"node {proj.name!r} ({proj.type_name})"
        if proj.mask is None:
            violations.append(f"{where}: Xylo's weights are dense matrices; lower the "
                              f"convolution to a Linear layer first")
            continue
        if len(proj.sources) != 1 or len(proj.targets) != 1:
            violations.append(f"{where}: fed by {list(proj.sources)} and feeding "
                              f"{list(proj.targets)}; Xylo needs one source and one target "
                              f"population")
            continue
        src, dst = proj.sources[0], proj.targets[0]
        routes = [r for r in proj.routes_in + proj.routes_out if r not in ("Delay", "Flatten")]
        if routes:
            violations.append(f"{where}: {', '.join(routes)} between populations has no Xylo "
                              f"equivalent")
        kind_src = structure.kinds.get(src)
        mask = proj.mask.T  # [in, out]
        biases = biases or proj.bias
        if kind_src == "input" and dst in offset_h:
            r, c = in_offset[src], offset_h[dst]
            w_in[r:r + mask.shape[0], c:c + mask.shape[1]] |= mask
        elif src in offset_h and dst in offset_h:
            r, c = offset_h[src], offset_h[dst]
            w_rec[r:r + mask.shape[0], c:c + mask.shape[1]] |= mask
        elif src in offset_h and dst in offset_o:
            r, c = offset_h[src], offset_o[dst]
            w_out[r:r + mask.shape[0], c:c + mask.shape[1]] |= mask
        else:
            violations.append(f"{where}: from {src!r} to {dst!r}; Xylo connects input -> "
                              f"hidden, hidden -> hidden and hidden -> readout only")
    return {"n_in": n_in, "hidden": [p.name for p in hidden],
            "readout": [p.name for p in readout], "w_in": w_in, "w_rec": w_rec,
            "w_out": w_out, "biases": biases, "violations": violations}


def capacity_for(variant):
    """The capacity check of one Xylo variant: ``Structure -> Capacity``."""
    title, n_in, n_hid, n_out, fanout, io_hidden, _, has_bias = VARIANTS[variant]

    def capacity(structure) -> Capacity:
        m = xylo_mapping(structure)
        v = list(m["violations"])
        nh, no = m["w_rec"].shape[0], m["w_out"].shape[1]
        max_fan = int(m["w_rec"].sum(axis=1).max()) if nh else 0
        if m["n_in"] > n_in:
            v.append(f"{m['n_in']} input channels > {n_in} on {title}")
        if nh > n_hid:
            v.append(f"{nh} hidden neurons > {n_hid} on {title}")
        if no > n_out:
            v.append(f"{no} readout neurons > {n_out} on {title}")
        if max_fan > fanout:
            v.append(f"a hidden neuron has {max_fan} recurrent targets > fan-out {fanout}")
        if io_hidden is not None:
            n_ien = int(m["w_in"].any(axis=0).sum())
            n_oen = int(m["w_out"].any(axis=1).sum())
            if n_ien > io_hidden or n_oen > io_hidden:
                v.append(f"{n_ien} hidden neurons receive input and {n_oen} drive the readout; "
                         f"{title} reaches only the first {io_hidden}")
        if m["biases"] and not has_bias:
            nonzero = [p.name for p in structure.projections.values() if p.bias]
            v.append(f"nonzero biases ({', '.join(nonzero)}) have no equivalent on {title} "
                     f"(only Audio 2 has biases)")
        usage = {"inputs": m["n_in"], "hidden": nh, "readout": no, "max_fanout": max_fan}
        return Capacity(fits=not v, cores=1, violations=v, usage=usage,
                        basis=_limits(variant))

    return capacity


def rates(counts, mapping) -> dict:
    """Spike probabilities per (channel, step) of the benchmark run: ``input``, ``hidden``,
    ``output``, averaged over samples, steps and neurons."""
    steps = max(counts.steps, 1)

    def rate(names, n):
        if n == 0:
            return 0.0
        events = sum(counts.per_node[k]["events"] for k in names)
        return float(events / (n * steps))

    inputs = [k for k, kind in counts.kinds.items() if kind == "input"]
    return {"input": rate(inputs, mapping["n_in"]),
            "hidden": rate(mapping["hidden"], mapping["w_rec"].shape[0]),
            "output": rate(mapping["readout"], mapping["w_out"].shape[1])}


def cycles_per_step(mapping, rates: dict, model: str) -> float:
    """Rockpool 3.1.0's ``cycles_model`` for the mapped graph at ``rates``.

    ``model`` is ``"syns61201"`` (Audio 2: every hidden neuron is an input- and
    output-expansion neuron) or ``"syns63300"`` (IMU, Audio 3: only the hidden neurons with
    a nonzero input / readout weight). Without aliases; the same arithmetic in the same
    order as Rockpool's.
    """
    c = {k: constant(f"xylo.{k}").value for k in (
        "input_loop_cycles", "hidden_update_cycles", "output_isyn_update_cycles",
        "fixed_hidden_neuron_cycles", "fixed_output_neuron_cycles")}
    p_in, p_hid = rates["input"], rates["hidden"]
    n_in = mapping["w_in"].shape[0]
    n_hid = mapping["w_rec"].shape[0]
    n_out = mapping["w_out"].shape[1]
    if model == "syns61201":
        n_ien = n_oen = n_hid
    else:
        n_ien = np.sum(np.sign(np.sum(np.abs(np.sign(mapping["w_in"].astype(float))), axis=0)))
        n_oen = np.sum(np.sign(np.sum(np.abs(np.sign(mapping["w_out"].astype(float))), axis=1)))
    fanout = np.mean(np.sum(np.abs(np.sign(mapping["w_rec"].astype(float))), axis=1)) \
        if n_hid else 0.0
    alias_target = alias_source = 0.0
    input_cycles = n_in * (p_in * n_ien * c["input_loop_cycles"] + 1)
    hidden_isyn = (fanout * c["hidden_update_cycles"] * p_hid + 3) * n_hid
    output_isyn = p_hid * (1 + n_out * c["output_isyn_update_cycles"]) * n_oen
    var_hidden = (max(p_hid, alias_target * alias_source) * 2
                  + max(p_hid * alias_target, alias_target * alias_source) * 3
                  + p_hid * 1 + max(p_hid, alias_target) * alias_source * 1)
    hidden_spk = (c["fixed_hidden_neuron_cycles"] + var_hidden) * n_hid
    output_spk = (c["fixed_output_neuron_cycles"] + 0 * rates["output"]) * n_out
    return float(input_cycles + hidden_isyn + output_isyn + hidden_spk + output_spk)


def estimate_for(variant):
    """The cost model of one Xylo variant: ``Context -> dict``."""
    title, *_rest = VARIANTS[variant]
    model_name = VARIANTS[variant][6]

    def estimate(ctx) -> dict:
        target = TARGETS_XYLO[variant]
        cap = target.capacity(ctx.structure)
        mapping = xylo_mapping(ctx.structure)
        if mapping["violations"]:
            return result(target, cap, steps=ctx.counts.steps, time_per_step=None,
                          energy=None, basis=[],
                          model="no estimate: the graph does not map onto Xylo's input / "
                                "hidden / readout layout",
                          notes=list(mapping["violations"]), rates=None,
                          cycles_per_step=None, realtime=None)
        r = rates(ctx.counts, mapping)
        cycles = cycles_per_step(mapping, r, model_name)
        clock = constant("xylo.clock")
        t_step = cycles / clock.value
        steps = ctx.counts.steps
        p_dyn = constant("xylo_audio2.p_dynamic")
        e_cycle = derived("xylo.e_cycle", p_dyn.value / clock.value, "J",
                          "xylo_audio2.p_dynamic / xylo.clock",
                          "measured dynamic power per master-clock cycle")
        dt = ctx.counts.dt
        low = cycles * steps * e_cycle.value
        high = p_dyn.value * steps * max(dt, t_step)
        basis = [constant(f"xylo.{k}") for k in (
            "input_loop_cycles", "hidden_update_cycles", "output_isyn_update_cycles",
            "fixed_hidden_neuron_cycles", "fixed_output_neuron_cycles")]
        basis += [clock, p_dyn, e_cycle, constant("xylo_audio2.kws_energy")]
        notes = [f"cycles per step from Rockpool's cycles_model ({model_name}) at the run's "
                 f"spike probabilities; alias terms 0",
                 "nonzero weights counted on the float graph (Rockpool counts the quantized "
                 "chip weights)",
                 f"real time needs t_step <= dt: {t_step:.3g} s vs dt {dt:.3g} s "
                 f"({'met' if t_step <= dt else 'NOT met'})"]
        if variant != "xylo-audio2":
            notes.append(f"no published power figure for {title} in our sources: Xylo Audio "
                         f"2's measured dynamic power is used")
        return result(target, cap, steps=steps, time_per_step=t_step,
                      energy=(low, high), basis=basis,
                      model="t_step = cycles_model(rates) / f_clk; E in [cycles*T*P_dyn/f_clk, "
                            "P_dyn*T*max(dt, t_step)]",
                      notes=notes, rates=r, cycles_per_step=cycles,
                      realtime=bool(t_step <= dt))

    return estimate


TARGETS_XYLO = {
    name: Target(name, spec[0], capacity_for(name), estimate_for(name))
    for name, spec in VARIANTS.items()
}
