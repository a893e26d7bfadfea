"""Xylo design rules as data: each rule a check returning every violation it finds.

A rule is a :class:`DesignRule` (name, what it checks, a function ``check(spec) ->
[Violation]``); :data:`XYLO_RULES` lists them for all three chips (the limits come from
the spec's :class:`~nirjax.lowering.xylo.quantize.XyloTarget`). :func:`check_design_rules`
runs every rule and returns all violations at once; :func:`require_valid` raises one
:class:`~nirjax.LoweringError` listing every error (its ``violations`` hold the records)
and warns (:class:`~nirjax.errors.LoweringWarning`) about the rest. Each :class:`Violation` names the node, the
rule, the chip's limit and the network's value, e.g. ``node 'lif1': 1200 hidden neurons,
xylo-audio2 has 1000``.

Errors: what the chip (or xylosim, which nirjax must equal) cannot represent. Warnings:
where the configuration Rockpool 3.1.0's quantizer produces (and nirjax reproduces) departs
from the float network by more than rounding, saying what changes and by how much.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable

import numpy as np

from ...errors import LoweringError, LoweringWarning
from ..violations import Violation
from .quantize import XyloSpec

__all__ = ["Violation", "DesignRule", "XYLO_RULES", "check_design_rules", "require_valid",
           "resources"]


@dataclasses.dataclass(frozen=True)
class DesignRule:
    """A named check over a :class:`~nirjax.lowering.xylo.quantize.XyloSpec`.

    Attributes:
        name: the rule's name (what violations carry in ``rule``).
        description: what it requires.
        check: ``check(spec) -> list[Violation]``.
    """

    name: str
    description: str
    check: Callable[[XyloSpec], list]


def _hidden_nodes(spec: XyloSpec, mask) -> list:
    """``(node, count)`` for the hidden neurons selected by ``mask``, grouped by node."""
    idx = np.flatnonzero(mask)
    out: dict[str, int] = {}
    for i in idx:
        name = spec.names.hidden_node(int(i))
        out[name] = out.get(name, 0) + 1
    return list(out.items())


def _inputs(spec):
    t = spec.target
    n = spec.n_inputs
    if n <= t.n_inputs:
        return []
    return [Violation(spec.names.input, "inputs", t.n_inputs, n,
                      f"{n} input channels, {t.name} has {t.n_inputs}")]


def _hidden(spec):
    t = spec.target
    n = spec.n_hidden
    if n <= t.n_hidden:
        return []
    return [Violation(spec.names.hidden_label(), "hidden_neurons", t.n_hidden, n,
                      f"{n} hidden neurons, {t.name} has {t.n_hidden}")]


def _outputs(spec):
    t = spec.target
    n = spec.n_outputs
    if n <= t.n_outputs:
        return []
    return [Violation(spec.names.readout, "readout_neurons", t.n_outputs, n,
                      f"{n} readout neurons, {t.name} has {t.n_outputs}")]


def _synapses(spec):
    t = spec.target
    a = spec.arrays
    if a["weights_in"].shape[2] <= t.n_synapses:
        return []
    n_ien = a["weights_in"].shape[1]
    second = np.zeros(spec.n_hidden, bool)
    second[:n_ien] |= np.any(a["weights_in"][:, :, 1:] != 0, axis=(0, 2))
    second |= np.any(a["weights_rec"][:, :, 1:] != 0, axis=(0, 2))
    if spec.network is not None and spec.network.n_synapses > 1:
        second |= np.isfinite(spec.network.tau_syn[:, 1])
    if not second.any():
        return []
    return [Violation(node, "synapses_per_neuron", t.n_synapses, 2,
                      f"{count} hidden neurons use a second synaptic current, {t.name} has "
                      f"{t.n_synapses} per neuron") for node, count in _hidden_nodes(spec, second)]


def _expansion(spec):
    t = spec.target
    a = spec.arrays
    out = []
    cols = np.flatnonzero(np.any(a["weights_in"] != 0, axis=(0, 2)))
    if cols.size and cols.max() >= t.max_input_expansion:
        out.append(Violation(
            spec.names.weights_in, "input_expansion", t.max_input_expansion, int(cols.max()) + 1,
            f"input weights reach hidden neuron {int(cols.max())}; on {t.name} the input "
            f"reaches only the first {t.max_input_expansion} hidden neurons"))
    n_oen = a["weights_out"].shape[0]
    rows = np.flatnonzero(np.any(a["weights_out"] != 0, axis=1)) + (spec.n_hidden - n_oen)
    first_allowed = spec.n_hidden - t.max_output_expansion
    if rows.size and rows.min() < first_allowed:
        out.append(Violation(
            "+".join(spec.names.weights_out), "output_expansion", t.max_output_expansion,
            spec.n_hidden - int(rows.min()),
            f"readout weights come from hidden neuron {int(rows.min())} of {spec.n_hidden}; on "
            f"{t.name} only the last {t.max_output_expansion} hidden neurons reach the readout"))
    return out


def _fanout(spec):
    t = spec.target
    fan = np.sum(np.any(spec.arrays["weights_rec"] != 0, axis=2), axis=1)
    out = []
    if t.max_fanout is not None and fan.size and fan.max() > t.max_fanout:
        for node, count in _hidden_nodes(spec, fan > t.max_fanout):
            worst = int(max(fan[i] for i in range(fan.size)
                            if spec.names.hidden_node(i) == node))
            out.append(Violation(node, "fanout", t.max_fanout, worst,
                                 f"{count} hidden neurons have more than {t.max_fanout} "
                                 f"recurrent targets (up to {worst}); {t.name} allows "
                                 f"{t.max_fanout}"))
    total = int(fan.sum())
    if t.max_recurrent_synapses is not None and total > t.max_recurrent_synapses:
        out.append(Violation("+".join(spec.names.weights_rec), "recurrent_synapses",
                             t.max_recurrent_synapses, total,
                             f"{total} recurrent connections, {t.name} has memory for "
                             f"{t.max_recurrent_synapses}"))
    return out


def _range(spec, key, lo, hi, node, what):
    a = np.asarray(spec.arrays[key])
    bad = (a < lo) | (a > hi)
    if not bad.any():
        return []
    value = int(a[bad][np.argmax(np.abs(a[bad]))])
    return [Violation(node, f"{key}_range", (lo, hi), value,
                      f"{int(bad.sum())} {what} outside [{lo}, {hi}] (e.g. {value})")]


def _weights(spec):
    names = spec.names
    return (_range(spec, "weights_in", -128, 127, names.weights_in, "input weights")
            + _range(spec, "weights_rec", -128, 127, "+".join(names.weights_rec),
                     "recurrent weights")
            + _range(spec, "weights_out", -128, 127, "+".join(names.weights_out),
                     "readout weights"))


def _thresholds(spec):
    # negative thresholds: xylosim's spike loop then adds to v (int16 wrap-around); the
    # kernel's domain is >= 0
    names = spec.names
    return (_range(spec, "threshold", 0, 2 ** 15 - 1, names.hidden_label(), "hidden thresholds")
            + _range(spec, "threshold_out", 0, 2 ** 15 - 1, names.readout, "readout thresholds"))


def _biases(spec):
    names = spec.names
    return (_range(spec, "bias", -(2 ** 15), 2 ** 15 - 1, names.hidden_label(), "hidden biases")
            + _range(spec, "bias_out", -(2 ** 15), 2 ** 15 - 1, names.readout, "readout biases"))


def _dashes(spec):
    t = spec.target
    a = spec.arrays
    dt = a["dt"]
    net = spec.network
    out = []
    fields = [("dash_mem", "tau_mem", None), ("dash_syn", "tau_syn", 0),
              ("dash_syn_2", "tau_syn_2", 1), ("dash_mem_out", "tau_mem_out", None),
              ("dash_syn_out", "tau_syn_out", None)]
    for key, tau_name, col in fields:
        d = np.asarray(a[key])
        readout = key.endswith("_out")
        tau = None
        if net is not None and col is not None:
            if col >= net.n_synapses:
                continue  # no second synapse: dash_syn_2 is 0 and unused
            tau = net.tau_syn[:, col]
        elif net is not None:
            tau = getattr(net, tau_name)
        used = np.ones(d.shape, bool) if tau is None else np.isfinite(tau)
        small = used & (tau <= dt) if tau is not None else np.zeros(d.shape, bool)
        bad = used & ((d < 0) | (d > t.max_dash)) & ~small
        for mask, rule, text in ((small, "tau_above_dt", "<= dt"), (bad, "dash_range", None)):
            if not mask.any():
                continue
            groups = ([(spec.names.readout, int(mask.sum()))] if readout
                      else _hidden_nodes(spec, mask))
            for node, count in groups:
                sel = mask if readout else mask & np.array(
                    [spec.names.hidden_node(i) == node for i in range(d.size)])
                i = int(np.flatnonzero(sel)[0])
                if text:
                    msg = (f"{count} {tau_name} <= dt (e.g. {tau[i]:.4g} s at dt {dt:.4g} s); "
                           f"Xylo decays by bit shifts dash = round(log2(tau/dt)) and Rockpool "
                           f"requires tau > dt")
                    out.append(Violation(node, rule, f"> {dt:g}", float(tau[i]), msg))
                else:
                    where = (f" ({tau_name} {tau[i]:.4g} s at dt {dt:.4g} s)"
                             if tau is not None else "")
                    out.append(Violation(
                        node, rule, (0, t.max_dash), int(d[i]),
                        f"{count} {key} outside [0, {t.max_dash}], e.g. {int(d[i])}{where}; "
                        f"Xylo's dash is 4 bits, so tau/dt must lie in about "
                        f"[{2 ** -0.5:.2f}, {2 ** (t.max_dash + 0.5):.0f}]"))
    return out


def _shifts(spec):
    t = spec.target
    out = []
    for key, node in (("weight_shift_in", spec.names.weights_in),
                      ("weight_shift_rec", "+".join(spec.names.weights_rec)),
                      ("weight_shift_out", "+".join(spec.names.weights_out))):
        v = int(spec.arrays[key])
        if not 0 <= v <= t.max_weight_shift:
            out.append(Violation(node, "weight_shift_range", (0, t.max_weight_shift), v,
                                 f"{key} = {v}; a shift above {t.max_weight_shift} no longer "
                                 f"fits an 8-bit weight in the 16-bit synaptic state"))
    return out


def _rockpool_quantizer(spec):
    """Warnings where Rockpool 3.1.0's quantizer (reproduced) departs from the network."""
    if spec.network is None or spec.method is None or spec.compat != "rockpool":
        return []
    s = spec.scales
    a = spec.arrays
    net = spec.network
    names = spec.names
    out = []
    src = "rockpool 3.1.0 transform/quantize_methods.py"
    if spec.method == "global":
        # biases keep the hidden scale they were first multiplied by; everything else of
        # their layer ends at the layer's effective scale
        first = s["hidden_initial"]
        s_h = float(s["hidden"][0]) if len(s["hidden"]) else first
        s_o = float(s["readout"][0]) if len(s["readout"]) else first
        factor = first / s_o
        if np.any(net.bias_out != 0) and not np.isclose(factor, 1.0):
            out.append(Violation(
                names.readout, "rockpool_bias_out_scale", s_o, first,
                f"readout biases are quantized with the hidden layer's scale ({src}:142) and "
                f"are not rescaled with the readout threshold ({src}:151-155): on the chip "
                f"they are {factor:.4g} times their value in the readout's units", "warning"))
        if s["hidden_rescaled"] and np.any(net.bias != 0):
            out.append(Violation(
                names.hidden_label(), "rockpool_bias_rescale", s_h, first,
                f"the largest hidden threshold overflowed 16 bits, so the weights and thresholds "
                f"were rescaled, the biases not ({src}:145-149): on the chip the biases are "
                f"{first / s_h:.4g} times their value", "warning"))
        if s["readout_rescaled"] and np.any(a["weights_rec"] != 0):
            out.append(Violation(
                "+".join(names.weights_rec), "rockpool_rec_rescale", 1.0, s["rec_extra"],
                f"the largest readout threshold overflowed 16 bits and Rockpool rescaled the "
                f"recurrent weights with it ({src}:155): on the chip they are "
                f"{s['rec_extra']:.4g} times their value", "warning"))
    if spec.target.name == "xylo-audio3" and net.n_synapses > 1:
        for node, start, stop in names.hidden:
            if np.all(np.isnan(net.tau_syn[start:stop, 1])):
                continue
            out.append(Violation(
                node, "rockpool_audio3_dash_syn", None, None,
                "Rockpool 3.1.0's Audio 3 mapper (syns65302/xylo_mapper.py:365-366) gives "
                "neuron i of a two-synapse layer the synaptic dash of neuron i//2, synapse "
                "i%2, and dash_syn_2 = 0 (so the second current is cleared every step before "
                "it reaches the membrane); see the tau_syn records for the time constants",
                "warning"))
    if spec.method == "channel" and net.n_synapses == 1 and np.any(net.bias != 0):
        scaled = s["hidden"][np.asarray(net.bias) != 0]
        out.append(Violation(
            names.hidden_label(), "rockpool_channel_bias", None, None,
            f"channel_quantize leaves hidden biases unscaled in one-synapse networks ({src}:"
            f"306-339): on the chip they are 1/{float(np.max(scaled)):.4g} .. "
            f"1/{float(np.min(scaled)):.4g} times their value in their neuron's units",
            "warning"))
    return out


XYLO_RULES = (
    DesignRule("inputs", "input channels <= the chip's (16)", _inputs),
    DesignRule("hidden_neurons", "hidden neurons <= the chip's", _hidden),
    DesignRule("readout_neurons", "readout neurons <= the chip's", _outputs),
    DesignRule("synapses_per_neuron", "synaptic currents per hidden neuron <= the chip's",
               _synapses),
    DesignRule("expansion", "input weights reach only the first input-expansion neurons, "
               "readout weights come only from the last output-expansion neurons", _expansion),
    DesignRule("fanout", "recurrent targets per hidden neuron and recurrent synapses in all "
               "within the chip's memory", _fanout),
    DesignRule("weights_range", "weights are 8-bit signed", _weights),
    DesignRule("threshold_range", "thresholds in [0, 32767]", _thresholds),
    DesignRule("bias_range", "biases are 16-bit signed", _biases),
    DesignRule("dash", "tau > dt and dash = round(log2(tau/dt)) in [0, 15]", _dashes),
    DesignRule("weight_shift", "weight shifts in [0, 8]", _shifts),
    DesignRule("rockpool_quantizer", "where Rockpool 3.1.0's quantizer departs from the "
               "network (warnings)", _rockpool_quantizer),
)


def check_design_rules(spec: XyloSpec, rules=None) -> list:
    """Every violation of ``rules`` (default :data:`XYLO_RULES`) by ``spec``, all at once."""
    out = []
    for rule in (XYLO_RULES if rules is None else rules):
        out.extend(rule.check(spec))
    return out


def require_valid(violations, target=None) -> None:
    """Raise one error listing every error-level violation; warn about the others.

    Warnings are issued only when there is no error (the error lists everything).

    Raises:
        LoweringError: at least one violation has ``severity == "error"``.
    """
    errors = [v for v in violations if v.severity == "error"]
    others = [v for v in violations if v.severity != "error"]
    if not errors:
        for v in others:
            warnings.warn(str(v), LoweringWarning, stacklevel=3)
    else:
        where = f" on {target.name}" if target is not None else ""
        lines = "\n".join(f"  - {v} [{v.rule}]" for v in errors)
        raise LoweringError(
            f"the network cannot run{where}: {len(errors)} design rule violation"
            f"{'s' if len(errors) > 1 else ''}:\n{lines}", errors,
            target.name if target is not None else None)


def resources(spec: XyloSpec) -> dict:
    """Resources used and available: ``{name: (used, limit)}`` (``None``: limit unknown)."""
    t = spec.target
    a = spec.arrays
    fan = np.sum(np.any(a["weights_rec"] != 0, axis=2), axis=1)
    cols = np.flatnonzero(np.any(a["weights_in"] != 0, axis=(0, 2)))
    n_oen = a["weights_out"].shape[0]
    rows = np.flatnonzero(np.any(a["weights_out"] != 0, axis=1)) + (spec.n_hidden - n_oen)
    return {
        "input channels": (spec.n_inputs, t.n_inputs),
        "hidden neurons": (spec.n_hidden, t.n_hidden),
        "readout neurons": (spec.n_outputs, t.n_outputs),
        "synapses per hidden neuron": (int(a["weights_in"].shape[2]), t.n_synapses),
        "input-expansion neurons": (int(cols.max()) + 1 if cols.size else 0,
                                    t.max_input_expansion),
        "output-expansion neurons": (spec.n_hidden - int(rows.min()) if rows.size else 0,
                                     t.max_output_expansion),
        "max recurrent fan-out": (int(fan.max()) if fan.size else 0, t.max_fanout),
        "recurrent synapses": (int(fan.sum()), t.max_recurrent_synapses),
        "input weights (nonzero)": (int(np.count_nonzero(a["weights_in"])),
                                    t.n_inputs * t.max_input_expansion * t.n_synapses),
        "readout weights (nonzero)": (int(np.count_nonzero(a["weights_out"])),
                                      t.max_output_expansion * t.n_outputs),
    }
