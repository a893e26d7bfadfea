"""An event-by-event reference of xylosim 0.1.3's v2 core, in plain Python integers.

Written line by line from xylosim's C++ (``src/v2/cpp/XyloLayer.cpp``: ``evolve``,
``deliver_spikes``, ``evolve_neurons``; ``XyloIAFNeuron.cpp``: ``decay``, ``receiveSpike``,
``evolve``; ``XyloIAFNeuron.h``: ``safe_add``), without reference to nirjax's kernel, so that
the tests can check the kernel where the vendor environment is missing. Slow: one Python
operation per event. Aliases are modelled too (the kernel does not support them).
"""

from __future__ import annotations

import numpy as np

BITS = 16


def _int16(x: int) -> int:
    """C++ conversion to int16_t (two's complement truncation)."""
    return ((int(x) + 2 ** 15) % 2 ** 16) - 2 ** 15


def safe_add(x: int, y: int, bits: int = BITS) -> int:
    """xylosim's ``safe_add``, literally (double arithmetic for the bound)."""
    max_val = 2.0 ** (bits - 1) - 1
    if y < 0:
        max_val = -(2.0 ** (bits - 1))
    if abs(max_val - x) > abs(y):
        return x + y
    return int(max_val)


def decay(v: int, dash: int) -> int:
    """xylosim's ``decay``: ``v >> dash``, at least 1 in magnitude with the sign of ``v``."""
    dv = _int16(v >> dash)
    if dv == 0:
        if v > 0:
            dv = 1
        elif v < 0:
            dv = -1
    return dv


class Neuron:
    """``XyloIAFNeuron``: int16 state, uint8 decays."""

    def __init__(self, dash_mem, dash_syns, v_th, has_bias, bias):
        self.dash_mem = int(dash_mem)
        self.dash_syns = [int(d) for d in dash_syns]
        self.v_th = int(v_th)
        self.has_bias = bool(has_bias)
        self.bias = int(bias)
        self.v_mem = 0
        self.i_syns = [0] * len(self.dash_syns)

    def receive(self, weight: int, syn: int):
        self.i_syns[syn] = _int16(safe_add(self.i_syns[syn], _int16(weight)))

    def evolve(self, num_spikes: int, max_spikes: int) -> int:
        for s, d in enumerate(self.dash_syns):
            self.i_syns[s] = _int16(self.i_syns[s] - decay(self.i_syns[s], d))
        i_syn = sum(self.i_syns)
        dv = _int16(-decay(self.v_mem, self.dash_mem))
        dv = _int16(safe_add(dv, i_syn))
        if self.has_bias:
            dv = _int16(safe_add(dv, self.bias))
        self.v_mem = _int16(safe_add(self.v_mem, dv))
        while self.v_mem >= self.v_th:
            if num_spikes < max_spikes:
                num_spikes += 1
                self.v_mem = _int16(self.v_mem - self.v_th)
            else:
                break
        return num_spikes


def simulate(spec: dict, counts: np.ndarray, record: bool = False):
    """Run one sample through the reference, as ``XyloSim.from_specification(**spec)`` would.

    Args:
        spec: the keyword arrays of ``from_specification`` (``weights_in`` ``(Nin, IEN[, 2])``,
            ``weights_out`` ``(OEN, Nout)``, ``weights_rec``, dashes, thresholds, biases, shifts,
            optional ``aliases``).
        counts: input events ``(T, Nin)``, integers in ``[0, 255]``.
        record: also return the states.

    Returns:
        Output spikes ``(T, Nout)``, and with ``record`` a dict like XyloSim's recording:
        ``Vmem``, ``Isyn``, ``Isyn2`` (when two synapses), ``Spikes``, ``Vmem_out``, ``Isyn_out``.
    """
    w_in = np.asarray(spec["weights_in"])
    if w_in.ndim == 2:
        w_in = w_in[:, :, None]
    w_out = np.asarray(spec["weights_out"])
    ien = w_in.shape[1]
    w_rec = spec.get("weights_rec")
    n_hid = np.asarray(w_rec).shape[0] if w_rec is not None else ien
    if w_rec is None:
        w_rec = np.zeros((n_hid, n_hid, 2), int)
    w_rec = np.asarray(w_rec)
    if w_rec.ndim == 2:
        w_rec = w_rec[:, :, None]
    oen, n_out = w_out.shape

    def arr(name, n, default=0):
        value = spec.get(name)
        return np.full(n, default, int) if value is None else np.asarray(value, int).reshape(n)

    bias, bias_out = arr("bias", n_hid), arr("bias_out", n_out)
    has_bias = bool(np.any(bias != 0) or np.any(bias_out != 0))
    dash_syn, dash_syn2 = arr("dash_syn", n_hid), arr("dash_syn_2", n_hid)
    hidden = [Neuron(d_m, [d_s, d_s2], th, has_bias, b) for d_m, d_s, d_s2, th, b in zip(
        arr("dash_mem", n_hid), dash_syn, dash_syn2, arr("threshold", n_hid), bias)]
    readout = [Neuron(d_m, [d_s], th, has_bias, b) for d_m, d_s, th, b in zip(
        arr("dash_mem_out", n_out), arr("dash_syn_out", n_out), arr("threshold_out", n_out),
        bias_out)]
    aliases = spec.get("aliases")
    aliases = [[] for _ in range(n_hid)] if aliases is None else [list(a) for a in aliases]

    # synapse lists in from_specification's order: syn 0 targets ascending, then syn 1
    syn_in = [[(j, s, int(w_in[c, j, s])) for s in range(w_in.shape[2])
               for j in np.flatnonzero(w_in[c, :, s])] for c in range(w_in.shape[0])]
    syn_rec = [[(j, s, int(w_rec[i, j, s])) for s in range(w_rec.shape[2])
                for j in np.flatnonzero(w_rec[i, :, s])] for i in range(n_hid)]
    syn_out = [[] for _ in range(n_hid - oen)] + [
        [(j, 0, int(w_out[i, j])) for j in np.flatnonzero(w_out[i])] for i in range(oen)]
    shift_in = int(spec.get("weight_shift_in", 0))
    shift_rec = int(spec.get("weight_shift_rec", 0))
    shift_out = int(spec.get("weight_shift_out", 0))

    def deliver(spikes, synapses, neurons, max_spikes, shift):
        for pre, n in enumerate(spikes):
            n = min(int(n), max_spikes)
            for j, s, w in synapses[pre]:
                for _ in range(n):
                    neurons[j].receive(w << shift, s)

    rec_spikes = [0] * n_hid
    out, rec = [], {k: [] for k in ("Vmem", "Isyn", "Isyn2", "Spikes", "Vmem_out", "Isyn_out")}
    for step in np.asarray(counts, int):
        deliver(step, syn_in, hidden, 15, shift_in)
        deliver(rec_spikes, syn_rec, hidden, 31, shift_rec)
        deliver(rec_spikes, syn_out, readout, 31, shift_out)
        rec_spikes = [0] * n_hid
        out_spikes = [0] * n_out
        for j, neuron in enumerate(hidden):
            rec_spikes[j] = neuron.evolve(rec_spikes[j], 31)
            for target in aliases[j]:
                rec_spikes[target] = min(rec_spikes[target] + rec_spikes[j], 31)
        for j, neuron in enumerate(readout):
            out_spikes[j] = neuron.evolve(out_spikes[j], 1)
        out.append(out_spikes)
        rec["Spikes"].append(list(rec_spikes))
        rec["Vmem"].append([n.v_mem for n in hidden])
        rec["Isyn"].append([n.i_syns[0] for n in hidden])
        rec["Isyn2"].append([n.i_syns[1] for n in hidden])
        rec["Vmem_out"].append([n.v_mem for n in readout])
        rec["Isyn_out"].append([n.i_syns[0] for n in readout])
    out = np.asarray(out, int).reshape(len(out), n_out)
    if not record:
        return out
    return out, {k: np.asarray(v, int) for k, v in rec.items()}
