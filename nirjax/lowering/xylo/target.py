"""The Xylo targets: ``"xylo-audio2"``, ``"xylo-audio3"``, ``"xylo-imu"``.

``nirjax.lower(graph, "xylo-audio2", dt=1e-4)`` runs these passes over the graph's float
:class:`~nirjax.compiler.Program`:

1. **Shape** (:func:`~nirjax.lowering.xylo.from_nir.network_from_program`): the graph must be
   ``Input -> Linear/Affine -> CubaLIF (hidden, optionally recurrent, possibly several
   nodes) -> Linear/Affine -> CubaLIF (readout) -> Output``; the float model's gains
   (``r``, ``w_in``, ``v_leak`` under its semantics) are folded into thresholds and biases
   (option ``gains``).
2. **Mapping and quantization** (:func:`~nirjax.lowering.xylo.quantize.quantize_network`):
   Rockpool 3.1.0's mapper and ``global_quantize`` (or ``channel_quantize``), so that the
   chip configuration equals Rockpool's; ``dash = round(log2(tau/dt))``.
3. **Design rules** (:mod:`~nirjax.lowering.xylo.rules`): every violation at once in one
   :class:`~nirjax.LoweringError`; approximations become warnings.
4. **Integer program**: the weight nodes are absorbed and all hidden CubaLIF nodes collapse
   into ONE population; the program is ``Input -> hidden -> readout -> Output`` on the
   ``"xylo"`` rule table (:mod:`nirjax.rules.xylo`, fused kernels of
   :mod:`nirjax.kernels.xylo`), run by :class:`~nirjax.compiler.CompiledGraph`. It equals
   XyloSim (``xylosim`` 0.1.3, through Rockpool 3.1.0) at every step, saturation and
   multi-spike included (``tests/test_xylo_lowering_vendor.py``).

Names. The hidden population's program node is named after the hidden CubaLIF node when
there is one (e.g. ``"lif1.lif"``), else ``"hidden"``; the readout keeps its node's name.
``run(record=[...])`` takes the graph's names: a hidden node (or the subgraph holding it,
e.g. ``"lif1"`` for ``"lif1.lif"``) gives its slice of the hidden spikes (0..31 per step),
``(name, "v")`` / ``(name, "i_syn")`` its membranes / currents (``"spikes"`` also works).

Timing. The chip's input path has no latency; the recurrent and readout paths one step
each: the readout (and the Output) lag the float graph by one step (``hw.latency``), which
:func:`nirjax.compare` aligns. Inputs are event counts per channel and step in ``[0,
255]``; the chip delivers at most 15 per channel and step (more are dropped, as on the
chip).

Export: the ``.npz`` of ``XyloSim.from_specification``'s keyword arrays (scalars 0-d), for
``rockpool.devices.xylo.syns61201`` (Audio 2) or ``syns63300`` (Audio 3 and IMU; Audio 3's
``syns65302`` package re-exports it). ``to_nir()``: the quantized network as NIR (below).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import nir
import numpy as np

from ...errors import LoweringError
from ...semantics import Semantics
from ...kernels import xylo as xk
from ...rules.xylo import XYLO, XyloPopulationConfig, dot_dtype
from ..core import LoweringResult, NodeSpec, make_program, register_target, resource
from ..violations import MappingRecord, split_violations
from .from_nir import GAINS, program_nodes, network_from_nodes
from .quantize import COMPAT, TARGETS as XYLO_TARGETS, XyloSpec, quantize_network
from .rules import check_design_rules, resources as spec_resources

__all__ = ["lower_xylo", "OPTIONS", "xylo_to_nir", "FLOAT_SEMANTICS", "float_semantics",
           "fake_quantize"]

#: The float semantics whose discrete update is the chip's without its integer arithmetic:
#: a synaptic current that decays in the step it receives input (``i = a_s*(i + W x)``),
#: a membrane integrating the new current with unit gains and the bias ``v_leak`` per step
#: (``v = a_m*v + i + v_leak``), decay factors ``1 - dt/tau`` (the chip's ``1 - 2**-dash``
#: when ``tau = dt*2**dash``), several spikes per step (``floor(v/threshold)`` for
#: ``v >= threshold``), subtractive reset, state starting at 0. It differs from the chip
#: only by integer rounding of the decays, 16-bit saturation, the 31-spike (hidden) and
#: 1-spike (readout) limits, the 15-event input limit and the readout's step of latency.
#: Rockpool's ``LIFTorch`` is this update with exponential decays (the ``rockpool``
#: profile).
FLOAT_SEMANTICS = Semantics(
    name="xylo-float", form="decay", integrator="euler", input_gain="unit",
    ignore=("r", "v_reset", "w_in"), reset="subtract", threshold_test=">=", spikes="multi",
    initial_v="zero", cuba_current="new", synapse="add_decay")


def float_semantics(graph, dt: float = 1e-3) -> Semantics:
    """:data:`FLOAT_SEMANTICS` for ``graph``, its readout node firing at most one spike per
    step as the chip's readout does (``spikes="binary"``, subtractive reset).

    Args:
        graph: the ``nir.NIRGraph`` (or a path to a ``.nir`` file) to be lowered to Xylo.
        dt: any valid time step (only the graph's structure is read).

    Returns:
        A :class:`~nirjax.Semantics` to compile the float model with.

    Raises:
        LoweringError: the graph does not have Xylo's shape (every violation listed).
    """
    import pathlib

    from ...compiler import build_program
    from ...io import read

    if isinstance(graph, (str, pathlib.Path)):
        graph = read(graph)
    program = build_program(graph, dt, Semantics(), table="float")
    params = {n.name: n.params for n in program.nodes if n.params is not None}
    nodes, edges, inputs, outputs = program_nodes(program, params)
    net, violations = network_from_nodes(nodes, edges, inputs, outputs, dt, "ignore")
    errors, _ = split_violations(violations)
    if net is None or errors:
        _raise("xylo", errors)
    return FLOAT_SEMANTICS.override(net.names.readout, spikes="binary")

INPUT_RANGE = (0, 255)

OPTIONS = {
    "method": "'global' (default: Rockpool's global_quantize, one scale per layer) or "
              "'channel' (channel_quantize, one per neuron)",
    "fuzzy_scaling": "global only: scale to |mean| + 2 std of the nonzero weights (default "
                     "False)",
    "compat": "'rockpool' (default: Rockpool 3.1.0's configuration, its quantizer bugs "
              "reproduced and flagged) or 'fixed'",
    "gains": "'fold' (default: the float model's gains folded into thresholds/biases, exact) "
             "or 'ignore' (thresholds as they are, as Rockpool's importer)",
    "fast_path": "use the kernel's exact unsaturated shortcut (default True; same results)",
    "weight_shift": "0 (default: Rockpool's configuration), 0..8, or 'auto': every weight "
                    "applied << k and thresholds/biases scaled by 2**k, the same network with "
                    "k more bits of state resolution (less rounding in the bit-shift decays)",
}


def _choose_shift(thresholds, biases, requested) -> int:
    """The weight shift for one layer: ``requested``, or with ``"auto"`` the largest ``k <=
    8`` keeping ``max threshold << k <= 4096`` (2**12: three bits of headroom above the
    threshold for 16-bit currents and membranes) and the biases within 16 bits."""
    if requested != "auto":
        return int(requested)
    top = max(int(np.max(np.abs(thresholds), initial=0)), 1)
    big = int(np.max(np.abs(biases), initial=0))
    k = 0
    while k < 8 and (top << (k + 1)) <= 4096 and (big << (k + 1)) <= 2 ** 15 - 1:
        k += 1
    return k


def _apply_shift(spec: XyloSpec, requested) -> tuple:
    """Shift a spec's layers (see the ``weight_shift`` option); returns ``(k_hidden,
    k_readout)``. The float network each represents is unchanged (exact powers of two)."""
    import dataclasses as dc

    a = spec.arrays
    k_h = _choose_shift(a["threshold"], a["bias"], requested)
    k_o = _choose_shift(a["threshold_out"], a["bias_out"], requested)
    for key, k in (("threshold", k_h), ("bias", k_h), ("threshold_out", k_o),
                   ("bias_out", k_o)):
        a[key] = np.asarray(a[key]).astype(np.int64) << k
    a["weight_shift_in"], a["weight_shift_rec"], a["weight_shift_out"] = k_h, k_h, k_o
    names = spec.names
    hidden = {names.hidden_label(), names.weights_in, "+".join(names.weights_rec)}
    scaled = []
    for r in spec.records:
        if r.quantity in ("weight", "threshold", "bias"):
            k = k_h if r.node in hidden else k_o
            r = dc.replace(r, scale=r.scale * 2 ** k)
        scaled.append(r)
    spec.records = scaled
    spec.scales = dict(spec.scales, weight_shift=(k_h, k_o))
    return k_h, k_o


def _semantic_notes(nodes, neurons, program) -> list:
    """Where the float model's semantics differ from the chip's discrete update."""
    notes = []
    for name in neurons:
        sem = nodes[name].semantics
        if sem is None:
            continue
        diffs = []
        if sem.reset != "subtract":
            diffs.append(f"resets with {sem.reset!r} (the chip subtracts the threshold)")
        if sem.threshold_test != ">=":
            diffs.append(f"fires when v {sem.threshold_test} threshold (the chip: v >= "
                         f"threshold)")
        if sem.spikes != "multi" and name != neurons[-1]:
            diffs.append("fires at most one spike per step (the chip up to 31 per hidden "
                         "neuron)")
        if sem.spikes == "multi" and name == neurons[-1]:
            diffs.append("fires several spikes per step (the chip's readout at most 1)")
        if sem.form != "decay" or sem.integrator != "euler":
            diffs.append(f"decays as form {sem.form!r} / integrator {sem.integrator!r} (the "
                         f"chip: x -= x >> dash, i.e. the factor 1 - 2**-dash)")
        if getattr(sem, "cuba_current", "new") != "new":
            diffs.append("integrates the previous step's synaptic current (the chip: this "
                         "step's)")
        if diffs:
            notes.append(f"{name}: the float model (semantics {sem.name!r}) " + "; ".join(diffs))
    if program.semantics.latency != "none" or program.semantics.cycle_break != "dfs":
        notes.append(f"the model's semantics {program.semantics.name!r} inserts latency Delay "
                     f"nodes; they are not lowered: the chip has its own timing (recurrent and "
                     f"readout paths one step, input path none)")
    return notes


def _structure(program):
    """The program to read the network from: one without the Delay nodes a profile's graph
    pass inserts (the chip has its own timing)."""
    sem = program.semantics
    if sem.latency == "none" and sem.cycle_break == "dfs" and sem.recurrent_bias == "keep":
        return program
    from ...compiler import build_program
    from ...semantics import Semantics

    plain = build_program(program.graph, program.dt, Semantics(), table="float")
    return plain


def _aliases(names, hidden_nodes) -> dict:
    """Subgraph names that hold exactly one hidden or readout node, -> that node."""
    out = {}
    counts: dict[str, list] = {}
    for n in hidden_nodes:
        parts = n.split(".")
        for k in range(1, len(parts)):
            counts.setdefault(".".join(parts[:k]), []).append(n)
    for prefix, members in counts.items():
        if len(members) == 1 and prefix not in names:
            out[prefix] = members[0]
    return out


def xylo_to_nir(spec: XyloSpec) -> nir.NIRGraph:
    """The quantized network as a NIR graph (integer values stored as floats).

    ``Input (Nin) -> Linear w_in -> CubaLIF hidden`` (with ``hidden -> Linear w_rec ->
    hidden`` when there are recurrent weights) ``-> Linear w_out -> CubaLIF readout ->
    Output``, where the weights are the chip's increments per event (``w << weight_shift``),
    thresholds and biases (``v_leak``) the chip's integers, ``tau = dt * 2**dash`` (so that
    the Euler factor ``dt/tau`` is the chip's ``2**-dash``), ``r = tau_mem/dt`` and ``w_in =
    tau_syn/dt`` (unit gains under the NIR spec's Euler update) and ``v_reset = 0``. One
    synaptic current per neuron (NIR's CubaLIF has one); the hidden node is named
    ``"hidden"``, the readout ``"readout"``. The chip's saturation, bit-shift rounding,
    31-spike bursts and one-step readout latency are not NIR semantics: simulate the
    lowered model (``hw(xs)``) for those.

    Raises:
        LoweringError: the network uses a second synaptic current.
    """
    a = spec.arrays
    if np.asarray(a["weights_in"]).shape[2] > 1:
        raise LoweringError("to_nir: the network uses two synaptic currents per hidden neuron; "
                            "a NIR CubaLIF has one")
    p = spec.kernel_params()
    dt = float(a["dt"])
    w_in = np.asarray(xk.shifted_weight(p.hidden.w_in, p.hidden.shift_in))[:, :, 0]
    w_rec = np.asarray(xk.shifted_weight(p.hidden.w_rec, p.hidden.shift_rec))[:, :, 0]
    w_out = np.asarray(xk.shifted_weight(p.readout.w_out, p.readout.shift_out))[:, :, 0]

    def cuba(neuron):
        tau_syn = dt * 2.0 ** np.asarray(neuron.dash_syn, float)[:, 0]
        tau_mem = dt * 2.0 ** np.asarray(neuron.dash_mem, float)
        n = tau_mem.size
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt,
                           v_leak=np.asarray(neuron.bias, float),
                           v_threshold=np.asarray(neuron.threshold, float),
                           v_reset=np.zeros(n), w_in=tau_syn / dt)

    n_in, n_hid = w_in.shape
    nodes = {"input": nir.Input(np.array([n_in])),
             "w_in": nir.Linear(weight=w_in.T.astype(float)),
             "hidden": cuba(p.hidden.neuron),
             "w_out": nir.Linear(weight=w_out.T.astype(float)),
             "readout": cuba(p.readout.neuron),
             "output": nir.Output(np.array([w_out.shape[1]]))}
    edges = [("input", "w_in"), ("w_in", "hidden"), ("hidden", "w_out"), ("w_out", "readout"),
             ("readout", "output")]
    if np.any(w_rec != 0):
        nodes["w_rec"] = nir.Linear(weight=w_rec.T.astype(float))
        edges += [("hidden", "w_rec"), ("w_rec", "hidden")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _resources(spec: XyloSpec, nodes, edges, net_names) -> dict:
    t = spec.target
    a = spec.arrays
    totals = spec_resources(spec)
    n_syn = int(np.asarray(a["weights_in"]).shape[2])
    out = {}
    for name, start, stop in net_names.hidden:
        out[name] = {"neurons": resource(stop - start, t.n_hidden)}
    out[net_names.readout] = {"neurons": resource(spec.n_outputs, t.n_outputs)}
    out[net_names.input] = {"input channels": resource(spec.n_inputs, t.n_inputs)}
    w_in_limit = t.n_inputs * t.max_input_expansion * n_syn
    out[net_names.weights_in] = {"weights": resource(
        np.count_nonzero(a["weights_in"]), w_in_limit)}
    rec_limit = t.max_recurrent_synapses
    ranges = {h: (lo, hi) for h, lo, hi in net_names.hidden}
    kp = spec.kernel_params()
    w_rec = np.asarray(kp.hidden.w_rec)
    w_out = np.asarray(kp.readout.w_out)
    for w in list(net_names.weights_rec) + list(net_names.weights_out):
        if w not in nodes:
            continue
        used = 0
        for s, d in edges:
            if s != w:
                continue
            for pre in [a_ for a_, b_ in edges if b_ == w and a_ in ranges]:
                lo, hi = ranges[pre]
                if d in ranges:
                    used += np.count_nonzero(w_rec[lo:hi, ranges[d][0]:ranges[d][1]])
                else:
                    used += np.count_nonzero(w_out[lo:hi])
        limit = rec_limit if w in net_names.weights_rec else t.max_output_expansion * t.n_outputs
        out[w] = {"weights": resource(used, limit)}
    fan = np.sum(np.any(np.asarray(a["weights_rec"]) != 0, axis=2), axis=1)
    total = {
        "neurons": resource(spec.n_hidden + spec.n_outputs, t.n_hidden + t.n_outputs),
        "hidden neurons": resource(spec.n_hidden, t.n_hidden),
        "readout neurons": resource(spec.n_outputs, t.n_outputs),
        "input channels": resource(spec.n_inputs, t.n_inputs),
        "synapses per hidden neuron": resource(n_syn, t.n_synapses),
        "input weights": resource(np.count_nonzero(a["weights_in"]), w_in_limit),
        "recurrent weights": resource(int(fan.sum()), rec_limit),
        "readout weights": resource(np.count_nonzero(a["weights_out"]),
                                    t.max_output_expansion * t.n_outputs),
        "weights": resource(np.count_nonzero(a["weights_in"]) + int(fan.sum())
                            + np.count_nonzero(a["weights_out"]),
                            None if rec_limit is None else
                            w_in_limit + rec_limit + t.max_output_expansion * t.n_outputs),
        "cores": resource(1, 1),
    }
    for key in ("input-expansion neurons", "output-expansion neurons",
                "max recurrent fan-out"):
        used, limit = totals[key]
        total[key] = resource(used, limit)
    out["total"] = total
    return out


def lower_xylo(program, params: dict, options: dict, target_name: str) -> LoweringResult:
    """Lower a float Program to a Xylo chip (the target's ``lower_fn``; module docstring).

    Args:
        program: the graph's float Program.
        params: node name -> float parameters (NIR field names).
        options: ``method``, ``fuzzy_scaling``, ``compat``, ``gains``, ``fast_path``
            (:data:`OPTIONS`).
        target_name: ``"xylo-audio2"``, ``"xylo-audio3"`` or ``"xylo-imu"``.

    Returns:
        The :class:`~nirjax.lowering.LoweringResult` (``details``: the
        :class:`~nirjax.lowering.xylo.quantize.XyloSpec`).

    Raises:
        LoweringError: every violation of the graph's shape and of the chip's limits.
    """
    target = XYLO_TARGETS[target_name]
    method = options.get("method", "global")
    fuzzy = bool(options.get("fuzzy_scaling", False))
    compat = options.get("compat", "rockpool")
    gains = options.get("gains", "fold")
    fast_path = bool(options.get("fast_path", True))
    shift = options.get("weight_shift", 0)
    if not (shift == "auto" or (isinstance(shift, (int, np.integer)) and 0 <= shift <= 8)):
        raise LoweringError(f"weight_shift={shift!r}; expected an int in 0..8 or 'auto'")
    if compat not in COMPAT:
        raise LoweringError(f"compat={compat!r}; expected one of {COMPAT}")
    if gains not in GAINS:
        raise LoweringError(f"gains={gains!r}; expected one of {GAINS}")
    structure = _structure(program)
    semantics_of = {n.name: n.semantics for n in program.nodes}
    nodes, edges, inputs, outputs = program_nodes(structure, params)
    nodes = {k: n._replace(semantics=semantics_of.get(k, n.semantics)) for k, n in nodes.items()}
    net, violations = network_from_nodes(nodes, edges, inputs, outputs, program.dt, gains)
    if net is None:
        errors, _ = split_violations(violations)
        _raise(target_name, errors)
    spec = quantize_network(net, target, method=method, fuzzy_scaling=fuzzy, compat=compat)
    shifts = _apply_shift(spec, shift) if shift else (0, 0)
    violations = violations + check_design_rules(spec)
    errors, warnings = split_violations(violations)
    if errors:
        _raise(target_name, errors)

    names = net.names
    hidden_nodes = [h for h, _, _ in names.hidden]
    hidden_name = hidden_nodes[0] if len(hidden_nodes) == 1 else "hidden"
    readout_name = names.readout
    inp, out = names.input, outputs[0]
    kp = spec.kernel_params()
    n_in, n_hid, n_out = spec.n_inputs, spec.n_hidden, spec.n_outputs
    source_of = {n.name: n for n in program.nodes}
    specs = [
        NodeSpec(inp, "Input", (n_in,), (n_in,), None, source_of[inp].config, "input"),
        NodeSpec(hidden_name, "CubaLIF", (n_in,), (n_hid,), kp.hidden,
                 XyloPopulationConfig("hidden", fast_path, dot_dtype(kp.hidden)), "op",
                 source=source_of[hidden_nodes[0]].source),
        NodeSpec(readout_name, "CubaLIF", (n_hid,), (n_out,), kp.readout,
                 XyloPopulationConfig("readout", fast_path, dot_dtype(kp.readout)), "op"),
        NodeSpec(out, "Output", (n_out,), (n_out,), None, source_of[out].config, "output"),
    ]
    if inp not in source_of or out not in source_of:
        raise LoweringError("the graph's Input/Output nodes were not found in its program")
    integer = make_program(program, XYLO, specs,
                           [(inp, hidden_name), (hidden_name, readout_name),
                            (readout_name, out)], [inp], [out])

    record_names = {out: (out, None), inp: (inp, None), readout_name: (readout_name, None)}
    for h, start, stop in names.hidden:
        record_names[h] = (hidden_name, slice(start, stop))
    for alias, member in _aliases(set(nodes), hidden_nodes + [readout_name]).items():
        record_names[alias] = record_names[member]

    def span(a, b):
        return f"{a}..{b - 1}" if b - a > 1 else f"{a}"

    mapping = [MappingRecord(inp, "Input", f"input channels {span(0, n_in)} (at most 15 "
                             f"events per channel and step)", inp)]
    lo, hi = names.hidden[0][1], names.hidden[0][2]
    mapping.append(MappingRecord(names.weights_in, nodes[names.weights_in].type_name,
                                 f"input weights onto hidden neurons {span(lo, hi)} "
                                 f"(8-bit, weight_shift_in {spec.arrays['weight_shift_in']})",
                                 hidden_name))
    for h, start, stop in names.hidden:
        mapping.append(MappingRecord(h, "CubaLIF", f"hidden neurons {span(start, stop)} of "
                                     f"{target.n_hidden}", hidden_name))
    for w in names.weights_rec:
        if w in nodes:
            mapping.append(MappingRecord(w, nodes[w].type_name, "recurrent weights (one step "
                                         "of latency, 8-bit, weight_shift_rec "
                                         f"{spec.arrays['weight_shift_rec']})", hidden_name))
    for w in names.weights_out:
        mapping.append(MappingRecord(w, nodes[w].type_name, "readout weights from the last "
                                     "hidden neurons (one step of latency, 8-bit)",
                                     readout_name))
    mapping.append(MappingRecord(readout_name, "CubaLIF", f"readout neurons {span(0, n_out)} "
                                 f"of {target.n_outputs} (at most 1 spike per step)",
                                 readout_name))
    mapping.append(MappingRecord(out, "Output", "the readout's spikes", out))

    notes = [f"{target.chip}: Rockpool 3.1.0 {method}_quantize"
             + (" (fuzzy scaling)" if fuzzy else "")
             + (", Rockpool's quantizer bugs fixed" if compat == "fixed" else
                " (its configuration exactly, quantizer bugs included: see warnings)"),
             f"weight shifts: hidden {shifts[0]}, readout {shifts[1]}"
             + (" (Rockpool's configuration)" if shifts == (0, 0) else
                " (weights applied << k, thresholds and biases scaled by 2**k: the same "
                "network with more state resolution)"),
             f"gains={gains!r}: " + ("the float model's gains are folded into the thresholds "
                                     "and biases" if gains == "fold" else
                                     "thresholds taken as they are (Rockpool's importer)"),
             "timing: input path no latency; recurrent and readout paths one step each, so the "
             f"readout {readout_name!r} lags the float graph by one step",
             "input: event counts per channel and step in [0, 255]; the chip delivers at most "
             "15 per channel and step"]
    notes += _semantic_notes(nodes, hidden_nodes + [readout_name], program)
    latency = {readout_name: 1, out: 1}
    return LoweringResult(
        program=integer, resources=_resources(spec, nodes, edges, names),
        quantization=list(spec.records), mapping=mapping, export=spec.export,
        to_nir=lambda: xylo_to_nir(spec), record_names=record_names, notes=notes,
        warnings=list(warnings), input_range=INPUT_RANGE, latency=latency,
        # integer programs are never differentiated; the plain one-scan program has the
        # least per-step overhead for the chip's two fused populations
        options={"optimize": False, "fast_backward": False},
        details=spec)


def _raise(target_name, errors):
    from ..violations import DesignRuleError

    raise DesignRuleError(target_name, errors)


def _snap_tau(tau, dt):
    """``dt * 2**round(log2(tau/dt))`` with a straight-through gradient."""
    q = dt * 2.0 ** jnp.round(jnp.log2(tau / dt))
    return tau + jax.lax.stop_gradient(q - tau)


def _ste_round(x):
    return x + jax.lax.stop_gradient(jnp.round(x) - x)


def _gains_jnp(sem, p, dt, gains):
    """``(S, k)``: the chip's state is the float model's divided by ``S``; its per-step bias
    is ``k * v_leak`` (see :func:`nirjax.lowering.xylo.from_nir.neuron_units`)."""
    ignore = tuple(getattr(sem, "ignore", ()) or ())
    one = jnp.ones_like(p.tau_mem)
    if gains == "ignore":
        return one, one
    r = one if "r" in ignore else p.r
    w_in = one if "w_in" in ignore else p.w_in
    g_s, g_m = w_in * dt / p.tau_syn, r * dt / p.tau_mem
    form = getattr(sem, "form", "nir")
    input_gain = getattr(sem, "input_gain", "nir")
    k_leak = 0 * one if "v_leak" in ignore else one
    if form == "decay" and input_gain == "unit":
        return one, k_leak
    if form == "decay" and input_gain == "input":
        return g_s, k_leak * (dt / p.tau_mem) / g_s
    s = g_s * g_m
    if form == "decay" and input_gain == "threshold":
        s = jnp.where(jnp.all(jnp.abs(s - 1) <= 1e-8 + 1e-5), one, s)
    return s, k_leak * (dt / p.tau_mem) / s


def fake_quantize(program, options: dict | None = None):
    """The Xylo quantization as a differentiable parameter transform (straight-through).

    Returns ``transform(params) -> params``: the float parameters the chip represents, in
    the float model's own units, with gradients passing straight through every rounding
    (``x + stop_gradient(q(x) - x)``):

    * time constants snap to ``dt * 2**dash``, ``dash = round(log2(tau/dt))``;
    * weights round to the layer's 8-bit grid: ``round(w*s)/s`` with Rockpool's global
      scales, ``s = 127 / max(|w_in|, |w_rec|, |bias|)`` for the hidden layer and ``127 /
      max(|w_out|, |bias_out|)`` for the readout (computed from the values, not
      differentiated);
    * thresholds and biases round on the same grid in the chip's units (the float model's
      gains ``S`` folded in, as the lowering does with ``gains="fold"``).

    Lowering ``transform(params)`` gives the chip the same integers the transform rounded to
    (``nirjax.lower(model, target, params=transform(params))``). Thresholds that overflow 16
    bits (which make Rockpool rescale a layer) are not modelled.

    Args:
        program: the float model's Program (``model.program``).
        options: the lowering options: ``gains`` (``"fold"`` default, or ``"ignore"``),
            ``method`` (only ``"global"``), ``compat`` (either; the readout bias is rounded
            on the readout's grid: with ``compat="rockpool"`` the chip then holds it
            ``s_h/s_o`` times too large, which the lowering reports as a warning).

    Raises:
        LoweringError: the graph cannot be lowered to Xylo (every violation listed), or an
            option the transform does not model.
    """
    options = dict(options or {})
    gains = options.get("gains", "fold")
    compat = options.get("compat", "rockpool")
    # weight_shift and fast_path do not change the float values the chip represents
    if options.get("method", "global") != "global" or options.get("fuzzy_scaling", False):
        raise LoweringError("the Xylo fine-tuning transform models method='global' without "
                            "fuzzy scaling only")
    if compat not in COMPAT or gains not in GAINS:
        raise LoweringError(f"compat must be one of {COMPAT} and gains one of {GAINS}")
    structure = _structure(program)
    params0 = {n.name: n.params for n in program.nodes if n.params is not None}
    nodes, edges, inputs, outputs = program_nodes(structure, params0)
    semantics_of = {n.name: n.semantics for n in program.nodes}
    net, violations = network_from_nodes(nodes, edges, inputs, outputs, program.dt, gains)
    errors, _ = split_violations(violations)
    if net is None or errors:
        _raise("xylo", errors)
    names = net.names
    dt = program.dt
    hidden = [h for h, _, _ in names.hidden]
    rec = [w for w in names.weights_rec if w in nodes]
    outs = list(names.weights_out)

    def transform(params):
        params = dict(params)
        units = {}
        for n in hidden + [names.readout]:
            p = params[n]
            p = p._replace(tau_mem=_snap_tau(p.tau_mem, dt), tau_syn=_snap_tau(p.tau_syn, dt))
            s_gain, k_bias = _gains_jnp(semantics_of.get(n), p, dt, gains)
            params[n] = p
            units[n] = (s_gain, k_bias)

        def layer_scale(weights, biases):
            m = jnp.max(jnp.stack([jnp.max(jnp.abs(w)) for w in weights + biases]))
            return jax.lax.stop_gradient(jnp.where(m > 0, 127.0 / m, 1.0))

        def chip_bias(n):
            return units[n][1] * params[n].v_leak

        s_h = layer_scale([params[names.weights_in].weight] + [params[w].weight for w in rec],
                          [chip_bias(h) for h in hidden])
        s_o = layer_scale([params[w].weight for w in outs], [chip_bias(names.readout)])
        for w in [names.weights_in] + rec:
            params[w] = params[w]._replace(weight=_ste_round(params[w].weight * s_h) / s_h)
        for w in outs:
            params[w] = params[w]._replace(weight=_ste_round(params[w].weight * s_o) / s_o)
        for n, scale in [(h, s_h) for h in hidden] + [(names.readout, s_o)]:
            p = params[n]
            s_gain, k_bias = units[n]
            th = _ste_round(p.v_threshold / s_gain * scale) / scale * s_gain
            safe_k = jnp.where(k_bias != 0, k_bias, 1.0)
            leak = jnp.where(k_bias != 0,
                             _ste_round(k_bias * p.v_leak * scale) / scale / safe_k,
                             p.v_leak)
            params[n] = p._replace(v_threshold=th, v_leak=leak)
        return params

    return transform


def _register():
    docs = {"xylo-audio2": "SynSense Xylo Audio 2 (SYNS61201): 16 inputs, 1000 hidden, 8 "
                           "readout; equals XyloSim (Rockpool 3.1.0 + xylosim 0.1.3)",
            "xylo-audio3": "SynSense Xylo Audio 3 (SYNS65302): 16 inputs, 992 hidden, 32 "
                           "readout; equals XyloSim (Rockpool 3.1.0 + xylosim 0.1.3)",
            "xylo-imu": "SynSense Xylo IMU (SYNS63300): 16 inputs, 496 hidden, 16 readout; "
                        "equals XyloSim (Rockpool 3.1.0 + xylosim 0.1.3)"}
    for name, doc in docs.items():
        register_target(name, lambda program, params, options, _n=name:
                        lower_xylo(program, params, options, _n),
                        family="xylo", doc=doc, options=OPTIONS, fake_quant=fake_quantize,
                        semantics=float_semantics)


_register()
