"""Xylo: from a float network of the chip's shape to its integer specification, in NumPy.

A Xylo chip runs one fixed network: ``Nin`` input channels -> weights -> ``Nhid`` hidden
neurons (one or two synaptic currents each, optional recurrent weights among them) ->
weights -> ``Nout`` readout neurons. :class:`XyloFloatNetwork` holds such a network with
float parameters (Rockpool's ``LIFTorch`` parametrisation: time constants, thresholds,
per-step membrane biases); :func:`quantize_network` maps it to the chip and quantizes it
exactly as Rockpool 3.1.0 does (``devices/xylo/<chip>/xylo_mapper.py::mapper`` followed by
``transform/quantize_methods.py::global_quantize`` or ``channel_quantize``), so that a
network lowered through nirjax gets the same chip configuration as through Rockpool. The
result, :class:`XyloSpec`, reports every rounding and writes the ``.npz`` whose arrays are
the keyword arguments of the target's ``XyloSim.from_specification``.

What Rockpool 3.1.0 computes (read from its source; the tests check it against the package):

* Layout (``mapper``): hidden neurons are numbered input-expansion neurons (IENs, the
  targets of the input weights) first, output-expansion neurons (OENs, the sources of the
  readout weights) last. Audio 2's specification spans all hidden neurons:
  ``weights_in (Nin, Nhid, S)``, ``weights_out (Nhid, Nout)`` (zero rows and columns where
  there is no connection). Audio 3 and IMU keep ``weights_in (Nin, N_IEN, S)`` and
  ``weights_out (N_OEN, Nout)`` (the OENs being the last ``N_OEN`` hidden neurons).
  ``weights_rec (Nhid, Nhid, S)`` is ``[pre, post, synapse]``. ``S = 2`` when any hidden
  neuron uses a second synaptic current.
* Time constants (``Xylo2Neurons._convert_from``): ``dash = log2(tau / dt)`` computed in
  float32 (Rockpool's torch modules hold ``tau`` in float32), rounded half to even by the
  quantizer. Rockpool refuses ``tau <= dt`` (Audio 2, IMU; Audio 3's converter forgets the
  check). Rockpool's modules also hold weights, thresholds and biases in float32; the
  mapper copies them into float64 arrays.
* ``global_quantize``: hidden scale ``s = 127 / max(|w_in|, |w_rec|, |bias|)``, readout
  scale ``s_out = 127 / max(|w_out|, |bias_out|)`` (1 when the maximum is 0); every value is
  ``round(x * scale)``. Then, if the largest hidden threshold exceeds ``2**15 - 1``, it, the
  input and the recurrent weights are multiplied by ``(2**15 - 1) / max`` and rounded
  again; likewise for the readout threshold with the readout weights. With
  ``fuzzy_scaling`` the maxima are ``|mean| + 2*std`` of the nonzero weights (biases not
  included) and nothing is clipped, so weights can exceed 8 bits.
* ``channel_quantize``: one scale per hidden neuron, ``127 / max |incoming input and
  recurrent weights|``, for its incoming weights, threshold and (two-synapse networks only)
  bias; one per readout neuron from its incoming weights; a threshold beyond ``2**15 - 1``
  gets ``(2**15 - 1) / threshold`` for it and its weights instead; a neuron without
  incoming weights keeps ``round(threshold)``.

Rockpool 3.1.0 bugs. With ``compat="rockpool"`` (the default) they are reproduced, so that
the chip gets exactly Rockpool's configuration, and :mod:`nirjax.lowering.xylo.rules` flags
each as a warning saying what it changes and by how much; ``compat="fixed"`` does what the
code evidently intends:

* ``global_quantize`` scales ``bias_out`` with the HIDDEN scale (``quantize_methods.py:142``);
  leaves the biases unscaled when a threshold forces the second rescaling (lines 145-155);
  multiplies ``weights_rec`` by the READOUT's rescaling factor (line 155);
* ``channel_quantize`` leaves hidden biases unscaled in one-synapse networks (lines
  306-339) and does not rescale biases with an overflowing threshold; when a threshold
  overflows on neuron ``N_IEN`` it indexes past the input weights (``hidden_id <= Nien``,
  lines 295 and 331: Rockpool raises ``IndexError``; both modes use the intended ``<``);
* the Audio 3 mapper (``syns65302/xylo_mapper.py:365-366``) copies a two-synapse layer's
  interleaved ``(neuron, synapse)`` dashes into ``dash_syn`` one per neuron (neuron ``i`` of
  the layer gets the dash of neuron ``i // 2``, synapse ``i % 2``) and never sets
  ``dash_syn_2`` (0).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Sequence

import numpy as np

from ...errors import LoweringError, ParameterError
from ..violations import QuantizationRecord

__all__ = [
    "XyloTarget", "TARGETS", "get_target", "XyloNames", "XyloFloatNetwork", "XyloSpec",
    "QuantizationRecord", "map_network", "quantize_spec", "quantize_network", "COMPAT",
    "SPEC_KEYS", "load_spec",
]

W_MAX = 2 ** 7 - 1  # Rockpool's max_w_quan for 8-bit weights
COMPAT = ("rockpool", "fixed")
TH_MAX = 2 ** 15 - 1  # Rockpool's max_th_quan for 16-bit thresholds

# the keyword arrays of XyloSim.from_specification (syns61201 and syns63300 alike), in the
# order of its signature; aliases (a list), verify_config and output_mode are not arrays
SPEC_KEYS = ("weights_in", "weights_out", "weights_rec", "dash_mem", "dash_mem_out", "dash_syn",
             "dash_syn_2", "dash_syn_out", "threshold", "threshold_out", "bias", "bias_out",
             "weight_shift_in", "weight_shift_rec", "weight_shift_out", "dt")
_SPEC_DTYPES = {"weights_in": np.int8, "weights_out": np.int8, "weights_rec": np.int8,
                "dash_mem": np.uint8, "dash_mem_out": np.uint8, "dash_syn": np.uint8,
                "dash_syn_2": np.uint8, "dash_syn_out": np.uint8, "threshold": np.int16,
                "threshold_out": np.int16, "bias": np.int16, "bias_out": np.int16,
                "weight_shift_in": np.int8, "weight_shift_rec": np.int8,
                "weight_shift_out": np.int8, "dt": np.float64}


@dataclasses.dataclass(frozen=True)
class XyloTarget:
    """Sizes and limits of one Xylo chip, each with where it comes from.

    Attributes:
        name: nirjax's target name (``"xylo-audio2"``, ``"xylo-audio3"``, ``"xylo-imu"``).
        chip: the chip's name and part number.
        rockpool_module: the Rockpool 3.1.0 package whose mapper and ``XyloSim`` serve it.
        n_inputs, n_hidden, n_outputs: input channels, hidden and readout neurons.
        n_synapses: synaptic currents per hidden neuron.
        max_input_expansion: hidden neurons the input weights can reach (the first ones).
        max_output_expansion: hidden neurons the readout weights can come from (the last).
        max_fanout: recurrent targets per hidden neuron, or ``None`` when unknown.
        max_recurrent_synapses: recurrent synapse memory words in all, or ``None``.
        full_io_layout: Rockpool's specification spans all hidden neurons in
            ``weights_in``/``weights_out`` (Audio 2) instead of only the IENs/OENs.
        sources: where each limit comes from.
    """

    name: str
    chip: str
    rockpool_module: str
    n_inputs: int
    n_hidden: int
    n_outputs: int
    n_synapses: int
    max_input_expansion: int
    max_output_expansion: int
    max_fanout: int | None
    max_recurrent_synapses: int | None
    full_io_layout: bool
    sources: tuple

    # per chip family (xylosim v2 core), the same for all three
    max_input_events = 15
    max_hidden_spikes = 31
    max_readout_spikes = 1
    weight_bits = 8
    state_bits = 16
    max_dash = 15
    max_weight_shift = 8


_COMMON_SOURCES = (
    ("input events per channel and step <= 15, hidden spikes <= 31, readout spikes <= 1",
     "xylosim 0.1.3 src/v2/cpp/XyloIAFNeuron.h (MAX_NUM_INP_SPIKES, MAX_NUM_SPIKES, "
     "MAX_NUM_OUT_SPIKES)"),
    ("8-bit weights, 16-bit state", "xylosim 0.1.3 XyloIAFNeuron.h (BITS_WEIGHT, BITS_STATE); "
     "XyloLayer.h (int8_t weight)"),
    ("dash in 0..15", "xylosim 0.1.3 XyloIAFNeuron.h ('should be 4 bits')"),
    ("weight shift <= 8", "xylosim 0.1.3 XyloLayer.cpp:276: weight << shift is passed as "
     "int16_t, so a shift above 8 wraps an 8-bit weight"),
)

TARGETS = {
    "xylo-audio2": XyloTarget(
        "xylo-audio2", "Xylo Audio 2 (SYNS61201)", "rockpool.devices.xylo.syns61201",
        16, 1000, 8, 2, 1000, 1000, 64, 32000, True,
        (("16 inputs, 1000 hidden, 8 readout",
          "rockpool 3.1.0 syns61201/xylo_mapper.py:312-313 and le_16_input_channels, "
          "le_8_output_channels"),
         ("2 synapses", "rockpool 3.1.0 syns61201/xylo_samna.py config_from_specification "
          "(synapse2_enable)"),
         ("input and readout weights over all hidden neurons",
          "rockpool 3.1.0 syns61201/xa2_devkit_utils.py:1362-1374 memory table (IWTRAM "
          "16 x 1000 words, OWTRAM) and xylo_mapper.py:414-441"),
         ("32000 recurrent synapses", "rockpool 3.1.0 syns61201/xa2_devkit_utils.py:1371-"
          "1372: RFORAM 0x0A920 .. RWTRAM 0x12620 = 32000 words"),
         ("fan-out 64", "HARDWARE_FACTS.md section 2 (not in Rockpool's code; samna's "
          "validator, which cannot be installed here)")) + _COMMON_SOURCES),
    "xylo-audio3": XyloTarget(
        "xylo-audio3", "Xylo Audio 3 (SYNS65302)", "rockpool.devices.xylo.syns65302",
        16, 992, 32, 2, 128, 128, 1024, 31744, False,
        (("16 inputs, 992 hidden, 32 readout",
          "rockpool 3.1.0 syns65302/xylo_mapper.py:95-96"),
         ("2 synapses", "rockpool 3.1.0 syns65302/xylo_samna.py config_from_specification "
          "(Nsyn > 2 raises)"),
         ("128 IENs, 128 OENs", "rockpool 3.1.0 syns65302/xylo_samna.py (only the first 128 "
          "IENs and last 128 OENs are configured); ram.py IWTRAM 16 x 128, OWTRAM 128 x 32"),
         ("31744 recurrent synapses", "rockpool 3.1.0 syns65302/ram.py: HFORAM 0x4140 .. "
          "HWTRAM 0xBD40 = 31744 words"),
         ("fan-out 1024", "HARDWARE_FACTS.md section 2 (samna's validator)")) + _COMMON_SOURCES),
    "xylo-imu": XyloTarget(
        "xylo-imu", "Xylo IMU (SYNS63300)", "rockpool.devices.xylo.syns63300",
        16, 496, 16, 1, 128, 128, 512, None, False,
        (("16 inputs, 496 hidden, 16 readout",
          "rockpool 3.1.0 syns63300/xylo_mapper.py:109-110"),
         ("1 synapse", "rockpool 3.1.0 syns63300/xylo_mapper.py max_synapses_per_neuron; "
          "xylo_samna.py (Nsyn > 1 raises)"),
         ("128 IENs, 128 OENs", "rockpool 3.1.0 syns63300/xylo_samna.py:229-242"),
         ("fan-out 512", "HARDWARE_FACTS.md section 2 (samna's validator)")) + _COMMON_SOURCES),
}


def get_target(name: str) -> XyloTarget:
    """The :class:`XyloTarget` called ``name``.

    Raises:
        LoweringError: ``name`` is not a Xylo target.
    """
    if isinstance(name, XyloTarget):
        return name
    if name not in TARGETS:
        raise LoweringError(
            f"unknown Xylo target {name!r}; the Xylo targets are {', '.join(TARGETS)}")
    return TARGETS[name]


@dataclasses.dataclass(frozen=True)
class XyloNames:
    """The graph nodes the network came from, so that reports and errors can name them.

    Attributes:
        input: the Input node.
        weights_in: the weight node from the input to the hidden neurons.
        hidden: ``(name, start, stop)`` per hidden neuron node, in hidden-index order.
        weights_rec: the weight nodes between hidden neurons.
        weights_out: the weight nodes into the readout.
        readout: the readout neuron node.
    """

    input: str = "input"
    weights_in: str = "weights_in"
    hidden: tuple = ()
    weights_rec: tuple = ("weights_rec",)
    weights_out: tuple = ("weights_out",)
    readout: str = "readout"

    def hidden_node(self, index: int) -> str:
        """The name of the node holding hidden neuron ``index``."""
        for name, start, stop in self.hidden:
            if start <= index < stop:
                return name
        return "hidden"

    def hidden_label(self) -> str:
        """All hidden node names, joined."""
        return "+".join(n for n, _, _ in self.hidden) or "hidden"


@dataclasses.dataclass
class XyloFloatNetwork:
    """A float network of Xylo's shape (Rockpool ``LIFTorch`` parameters).

    Dynamics the chip approximates (per step ``dt``): ``i += W x``; ``i *= exp(-dt/tau_syn)``;
    ``v = v*exp(-dt/tau_mem) + sum(i) + bias``; spike while ``v >= threshold``, subtracting
    ``threshold``.

    Attributes:
        w_in: ``(Nin, N_IEN, S)`` input weights onto the first ``N_IEN`` hidden neurons.
        w_rec: ``(Nhid, Nhid, S)`` weights among hidden neurons, ``[pre, post, synapse]``,
            or ``None``.
        w_out: ``(N_OEN, Nout)`` readout weights from the last ``N_OEN`` hidden neurons.
        tau_mem: ``(Nhid,)`` membrane time constants (s).
        tau_syn: ``(Nhid, S)`` synaptic time constants (s); ``NaN`` marks an unused second
            synapse.
        threshold, bias: ``(Nhid,)`` thresholds and per-step membrane biases.
        tau_mem_out, tau_syn_out, threshold_out, bias_out: ``(Nout,)`` readout parameters.
        dt: the chip's time step (s).
        names: the graph nodes these came from (:class:`XyloNames`).
    """

    w_in: np.ndarray
    w_rec: np.ndarray | None
    w_out: np.ndarray
    tau_mem: np.ndarray
    tau_syn: np.ndarray
    threshold: np.ndarray
    bias: np.ndarray
    tau_mem_out: np.ndarray
    tau_syn_out: np.ndarray
    threshold_out: np.ndarray
    bias_out: np.ndarray
    dt: float
    names: XyloNames | None = None

    def __post_init__(self):
        def arr(field, ndim):
            value = getattr(self, field)
            try:
                a = np.asarray(value, np.float64)
            except (TypeError, ValueError):
                raise ParameterError(f"XyloFloatNetwork.{field}: expected a numeric array, got "
                                     f"{type(value).__name__}") from None
            if a.ndim != ndim:
                raise ParameterError(f"XyloFloatNetwork.{field}: expected {ndim} dimensions, "
                                     f"got shape {a.shape}")
            setattr(self, field, a)
            return a

        w_in = arr("w_in", 3)
        tau_syn = arr("tau_syn", 2)
        w_out = arr("w_out", 2)
        tau_mem = arr("tau_mem", 1)
        n_hid, n_syn = tau_syn.shape
        n_out = w_out.shape[1]
        if self.w_rec is None:
            self.w_rec = np.zeros((n_hid, n_hid, n_syn))
        w_rec = arr("w_rec", 3)
        checks = [("tau_mem", tau_mem.shape, (n_hid,)),
                  ("w_rec", w_rec.shape, (n_hid, n_hid, n_syn))]
        for field in ("threshold", "bias"):
            checks.append((field, arr(field, 1).shape, (n_hid,)))
        for field in ("tau_mem_out", "tau_syn_out", "threshold_out", "bias_out"):
            checks.append((field, arr(field, 1).shape, (n_out,)))
        for field, got, want in checks:
            if got != want:
                raise ParameterError(f"XyloFloatNetwork.{field}: expected shape {want} (from "
                                     f"tau_syn {tau_syn.shape} and w_out {w_out.shape}), "
                                     f"got {got}")
        if w_in.shape[1] > n_hid or w_in.shape[2] != n_syn:
            raise ParameterError(f"XyloFloatNetwork.w_in: expected shape (Nin, <= {n_hid}, "
                                 f"{n_syn}), got {w_in.shape}")
        if w_out.shape[0] > n_hid:
            raise ParameterError(f"XyloFloatNetwork.w_out: expected at most {n_hid} rows (the "
                                 f"output-expansion neurons), got {w_out.shape[0]}")
        for field in ("tau_mem", "tau_mem_out", "tau_syn_out"):
            if not np.all(np.isfinite(getattr(self, field)) & (getattr(self, field) > 0)):
                raise ParameterError(f"XyloFloatNetwork.{field}: time constants must be finite "
                                     f"and > 0, got {getattr(self, field)}")
        if not (np.all(np.isfinite(tau_syn[:, 0]) & (tau_syn[:, 0] > 0))
                and np.all(np.isnan(tau_syn[:, 1:]) | (tau_syn[:, 1:] > 0))):
            raise ParameterError("XyloFloatNetwork.tau_syn: time constants must be > 0 (NaN "
                                 f"only for an unused second synapse), got {tau_syn}")
        unused = np.isnan(tau_syn)
        for field, mask in (("w_in", unused[: w_in.shape[1]]), ("w_rec", unused)):
            if np.any(getattr(self, field)[:, mask] != 0):
                raise ParameterError(f"XyloFloatNetwork.{field}: nonzero weights onto a synapse "
                                     f"whose tau_syn is NaN (unused)")
        for field in ("w_in", "w_rec", "w_out", "threshold", "bias", "threshold_out",
                      "bias_out"):
            if not np.all(np.isfinite(getattr(self, field))):
                raise ParameterError(f"XyloFloatNetwork.{field}: contains NaN or infinity")
        if not (isinstance(self.dt, (int, float, np.floating)) and math.isfinite(self.dt)
                and self.dt > 0):
            raise ParameterError(f"XyloFloatNetwork.dt: expected a positive time step in "
                                 f"seconds, got {self.dt!r}")
        self.dt = float(self.dt)
        if self.names is None:
            self.names = XyloNames(hidden=(("hidden", 0, n_hid),))

    @property
    def n_hidden(self) -> int:
        """Hidden neurons."""
        return self.tau_syn.shape[0]

    @property
    def n_synapses(self) -> int:
        """Synaptic currents per hidden neuron (1 or 2)."""
        return self.tau_syn.shape[1]


def _f32(x) -> np.ndarray:
    """As Rockpool's torch modules hold it (float32), in the mapper's float64 arrays."""
    return np.asarray(x, np.float32).astype(np.float64)


def _dash(tau, dt: float) -> np.ndarray:
    """``log2(tau/dt)`` in float32 as Rockpool's converter computes it (NaN stays NaN)."""
    tau32 = np.asarray(tau, np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log2(tau32 / float(dt)).astype(np.float64)


def _check_compat(compat: str) -> None:
    if compat not in COMPAT:
        raise LoweringError(f"unknown compat {compat!r}; expected 'rockpool' (Rockpool "
                                f"3.1.0's configuration, bugs included) or 'fixed'")


def map_network(net: XyloFloatNetwork, target, compat: str = "rockpool") -> dict:
    """Rockpool's ``mapper`` layout of ``net`` on ``target``, still in floats.

    Returns the mapper's arrays (without ``mapped_graph`` and ``aliases``): weights always 3-D
    for the hidden layer (``(Nin, ., S)``, ``(Nhid, Nhid, S)``), dashes as unrounded floats
    (``log2(tau/dt)``, float32 arithmetic), thresholds and biases as float64 copies of their
    float32 values, shifts 0, ``dt``.

    Args:
        net: the float network.
        target: a target name or :class:`XyloTarget`.
        compat: ``"rockpool"`` reproduces the Audio 3 mapper's synapse dashes (module
            docstring); ``"fixed"`` maps them as Audio 2's mapper does.
    """
    target = get_target(target)
    _check_compat(compat)
    n_in, n_ien, n_syn = net.w_in.shape
    n_hid = net.n_hidden
    n_oen, n_out = net.w_out.shape
    if target.full_io_layout:
        w_in = np.zeros((n_in, n_hid, n_syn))
        w_in[:, :n_ien] = _f32(net.w_in)
        w_out = np.zeros((n_hid, n_out))
        w_out[n_hid - n_oen:] = _f32(net.w_out)
    else:
        w_in, w_out = _f32(net.w_in), _f32(net.w_out)
    dash_syn = _dash(net.tau_syn[:, 0], net.dt)
    dash_syn_2 = _dash(net.tau_syn[:, 1], net.dt) if n_syn > 1 else np.zeros(n_hid)
    if compat == "rockpool" and target.name == "xylo-audio3" and n_syn > 1:
        for _, start, stop in net.names.hidden:
            if np.all(np.isnan(net.tau_syn[start:stop, 1])):
                continue
            interleaved = _dash(net.tau_syn[start:stop, :2].reshape(-1), net.dt)
            dash_syn[start:stop] = interleaved[: stop - start]
        dash_syn_2 = np.zeros(n_hid)
    return {
        "weights_in": w_in,
        "weights_out": w_out,
        "weights_rec": _f32(net.w_rec),
        "dash_mem": _dash(net.tau_mem, net.dt),
        "dash_mem_out": _dash(net.tau_mem_out, net.dt),
        "dash_syn": dash_syn,
        "dash_syn_2": np.where(np.isnan(dash_syn_2), 0.0, dash_syn_2),
        "dash_syn_out": _dash(net.tau_syn_out, net.dt),
        "threshold": _f32(net.threshold),
        "threshold_out": _f32(net.threshold_out),
        "bias": _f32(net.bias),
        "bias_out": _f32(net.bias_out),
        "weight_shift_in": 0,
        "weight_shift_rec": 0,
        "weight_shift_out": 0,
        "dt": net.dt,
    }


def _round(x) -> np.ndarray:
    """Round half to even and cast to int, as Rockpool's ``np.round(...).astype(int)``."""
    return np.round(x).astype(int)


def _global(f: dict, fuzzy_scaling: bool, fixed: bool) -> tuple[dict, dict]:
    w_in, w_rec, w_out = f["weights_in"], f["weights_rec"], f["weights_out"]
    bias, bias_out = f["bias"], f["bias_out"]
    if fuzzy_scaling:
        hid = np.concatenate([np.ravel(w_in), np.ravel(w_rec)])
        hid = hid[hid != 0]
        out = np.ravel(w_out)
        out = out[out != 0]
        if hid.size == 0 or out.size == 0:
            raise LoweringError("fuzzy scaling needs nonzero hidden and readout weights "
                                    "(it scales to |mean| + 2 std of the nonzero weights)")
        max_w = abs(hid.mean()) + 2 * hid.std()
        max_w_out = abs(out.mean()) + 2 * out.std()
    else:
        max_w = max(0.0, np.max(np.abs(w_in), initial=0.0), np.max(np.abs(w_rec), initial=0.0),
                    np.max(np.abs(bias), initial=0.0))
        max_w_out = max(0.0, np.max(np.abs(w_out), initial=0.0),
                        np.max(np.abs(bias_out), initial=0.0))
    scale = W_MAX / max_w if max_w != 0 else 1.0
    scale_out = W_MAX / max_w_out if max_w_out != 0 else 1.0
    q = {"weights_in": _round(w_in * scale), "weights_rec": _round(w_rec * scale),
         "weights_out": _round(w_out * scale_out),
         "threshold": _round(f["threshold"] * scale),
         "threshold_out": _round(f["threshold_out"] * scale_out),
         "bias": _round(bias * scale),
         # Rockpool 3.1.0 quantize_methods.py:142: the readout bias gets the hidden scale
         "bias_out": _round(bias_out * (scale_out if fixed else scale))}
    scales = {"hidden": np.full(len(f["threshold"]), scale),
              "readout": np.full(len(f["threshold_out"]), scale_out),
              "hidden_rescaled": False, "readout_rescaled": False, "rec_extra": 1.0,
              "hidden_initial": scale, "readout_initial": scale_out}
    top = np.max(q["threshold"])
    if abs(top) > TH_MAX:
        limited = TH_MAX / top
        for key in ("threshold", "weights_in", "weights_rec") + (("bias",) if fixed else ()):
            q[key] = _round(q[key] * limited)
        scales["hidden"] = scales["hidden"] * limited
        scales["hidden_rescaled"] = True
    top = np.max(q["threshold_out"])
    if abs(top) > TH_MAX:
        limited = TH_MAX / top
        rockpool = ("weights_rec",)  # sic: Rockpool rescales the recurrent weights too
        for key in ("threshold_out", "weights_out") + (("bias_out",) if fixed else rockpool):
            q[key] = _round(q[key] * limited)
        scales["readout"] = scales["readout"] * limited
        scales["readout_rescaled"] = True
        scales["rec_extra"] = 1.0 if fixed else limited
    return q, scales


def _channel(f: dict, fixed: bool) -> tuple[dict, dict]:
    w_in, w_rec, w_out = f["weights_in"], f["weights_rec"], f["weights_out"]
    threshold, threshold_out = f["threshold"], f["threshold_out"]
    bias, bias_out = np.array(f["bias"], float), np.array(f["bias_out"], float)
    n_in, n_ien, n_syn = w_in.shape
    n_hid = w_rec.shape[0]
    q_in, q_rec = np.zeros(w_in.shape), np.zeros(w_rec.shape)
    q_th = np.zeros(threshold.shape)
    scale_h = np.ones(n_hid)
    bias_scaled = np.zeros(n_hid, bool)
    for j in range(n_hid):
        max_w = max(0.0, np.max(np.abs(w_in[:, j]), initial=0.0) if j < n_ien else 0.0,
                    np.max(np.abs(w_rec[:, j]), initial=0.0))
        if max_w == 0:
            q_th[j] = np.round(threshold[j])
            continue
        s = W_MAX / max_w
        if j < n_ien:
            q_in[:, j] = np.round(w_in[:, j] * s)
        q_rec[:, j] = np.round(w_rec[:, j] * s)
        q_th[j] = np.round(threshold[j] * s)
        if n_syn > 1 or fixed:  # Rockpool 3.1.0 scales it only in its two-synapse branch
            bias[j] = np.round(bias[j] * s) if not fixed else bias[j] * s
            bias_scaled[j] = True
        scale_h[j] = s
        if abs(q_th[j]) > TH_MAX:
            s = TH_MAX / threshold[j]
            q_th[j] = np.round(threshold[j] * s)
            if j < n_ien:  # Rockpool: `hidden_id <= Nien` (IndexError at j == Nien)
                q_in[:, j] = np.round(w_in[:, j] * s)
            q_rec[:, j] = np.round(w_rec[:, j] * s)
            if fixed:
                bias[j] = f["bias"][j] * s
            scale_h[j] = s
    n_out = w_out.shape[1]
    q_out = np.zeros(w_out.shape)
    q_th_out = np.zeros(threshold_out.shape)
    scale_o = np.ones(n_out)
    for k in range(n_out):
        max_w = max(0.0, np.max(np.abs(w_out[:, k]), initial=0.0))
        if max_w == 0:
            q_th_out[k] = np.round(threshold_out[k])
            continue
        s = W_MAX / max_w
        q_out[:, k] = np.round(w_out[:, k] * s)
        q_th_out[k] = np.round(threshold_out[k] * s)
        bias_out[k] = np.round(bias_out[k] * s) if not fixed else bias_out[k] * s
        scale_o[k] = s
        if abs(q_th_out[k]) > TH_MAX:
            s = TH_MAX / threshold_out[k]
            q_th_out[k] = np.round(threshold_out[k] * s)
            q_out[:, k] = np.round(w_out[:, k] * s)
            if fixed:
                bias_out[k] = f["bias_out"][k] * s
            scale_o[k] = s
    q = {"weights_in": q_in.astype(int), "weights_rec": q_rec.astype(int),
         "weights_out": q_out.astype(int), "threshold": q_th.astype(int),
         "threshold_out": q_th_out.astype(int), "bias": _round(bias),
         "bias_out": _round(bias_out)}
    return q, {"hidden": scale_h, "readout": scale_o, "bias_scaled": bias_scaled}


def quantize_spec(float_spec: dict, method: str = "global", fuzzy_scaling: bool = False,
                  compat: str = "rockpool") -> tuple[dict, dict]:
    """Rockpool's ``global_quantize`` / ``channel_quantize`` of a :func:`map_network` result.

    Args:
        float_spec: the float specification (3-D hidden weights).
        method: ``"global"`` (one scale for the hidden layer, one for the readout) or
            ``"channel"`` (one per neuron).
        fuzzy_scaling: ``global`` only: scale to ``|mean| + 2 std`` of the nonzero weights.
        compat: ``"rockpool"`` (Rockpool 3.1.0's results, bugs included) or ``"fixed"``
            (see the module docstring).

    Returns:
        ``(spec, scales)``: the integer arrays (every key of :data:`SPEC_KEYS`) and the scales
        used (``"hidden"`` and ``"readout"`` per neuron, plus what was rescaled).

    Raises:
        LoweringError: unknown ``method``, or fuzzy scaling of all-zero weights.
    """
    _check_compat(compat)
    fixed = compat == "fixed"
    if method == "global":
        q, scales = _global(float_spec, fuzzy_scaling, fixed)
    elif method == "channel":
        if fuzzy_scaling:
            raise LoweringError("fuzzy_scaling applies to method='global' only")
        q, scales = _channel(float_spec, fixed)
    else:
        raise LoweringError(f"unknown quantization method {method!r}; expected 'global' or "
                                f"'channel' (Rockpool's global_quantize / channel_quantize)")
    for key in ("dash_mem", "dash_mem_out", "dash_syn", "dash_syn_2", "dash_syn_out"):
        q[key] = _round(float_spec[key])
    for key in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
        q[key] = int(float_spec[key])
    q["dt"] = float(float_spec["dt"])
    return {k: q[k] for k in SPEC_KEYS}, scales


@dataclasses.dataclass
class XyloSpec:
    """A network as one Xylo chip runs it: the integer specification and its provenance.

    Attributes:
        target: the :class:`XyloTarget`.
        arrays: the keyword arrays of the target's ``XyloSim.from_specification`` (Python
            ints for the shifts, float ``dt``); hidden weights 3-D.
        names: the graph nodes (:class:`XyloNames`).
        network: the float network it was quantized from (``None`` when loaded from a file).
        method: ``"global"``, ``"channel"`` or ``None`` (loaded).
        fuzzy_scaling: whether global quantization used fuzzy scaling.
        compat: ``"rockpool"`` or ``"fixed"`` (see :func:`quantize_spec`).
        scales: the quantization scales (see :func:`quantize_spec`).
        records: one :class:`QuantizationRecord` per quantity and node.
    """

    target: XyloTarget
    arrays: dict
    names: XyloNames
    network: XyloFloatNetwork | None = None
    method: str | None = None
    fuzzy_scaling: bool = False
    compat: str = "rockpool"
    scales: dict = dataclasses.field(default_factory=dict)
    records: list = dataclasses.field(default_factory=list)

    @property
    def n_hidden(self) -> int:
        """Hidden neurons used."""
        return int(np.shape(self.arrays["weights_rec"])[0])

    @property
    def n_inputs(self) -> int:
        """Input channels used."""
        return int(np.shape(self.arrays["weights_in"])[0])

    @property
    def n_outputs(self) -> int:
        """Readout neurons used."""
        return int(np.shape(self.arrays["weights_out"])[1])

    def violations(self, rules=None) -> list:
        """Every design-rule violation (see :mod:`nirjax.lowering.xylo.rules`)."""
        from .rules import check_design_rules

        return check_design_rules(self, rules)

    def report(self) -> str:
        """Mapping, resources and every rounding, as text."""
        from .rules import resources

        lines = [f"{self.target.chip} ({self.target.name}), dt = {self.arrays['dt']:g} s"]
        if self.method:
            lines.append(f"quantization: Rockpool {self.method}_quantize"
                         + (" (fuzzy scaling)" if self.fuzzy_scaling else "")
                         + (", Rockpool's bugs fixed" if self.compat == "fixed" else ""))
        for key, (used, limit) in resources(self).items():
            lines.append(f"  {key}: {used} of {limit if limit is not None else 'unknown'}")
        for record in self.records:
            lines.append(f"  {record}")
        for violation in self.violations():
            lines.append(f"  {violation.severity}: {violation}")
        return "\n".join(lines)

    def npz_arrays(self) -> dict:
        """The ``.npz`` contents: each keyword array in its chip dtype, scalars 0-d.

        Raises:
            LoweringError: a design rule fails (a value would not fit its field).
        """
        from .rules import require_valid

        # errors only: the approximations were reported when the spec was lowered
        require_valid([v for v in self.violations() if v.severity == "error"], self.target)
        return {k: np.asarray(self.arrays[k], _SPEC_DTYPES[k]) for k in SPEC_KEYS}

    def export(self, path) -> None:
        """Write the ``.npz`` that ``XyloSim.from_specification(**np.load(path))`` takes.

        The module is ``rockpool.devices.xylo.syns61201`` for Audio 2 and ``syns63300`` for
        Audio 3 and IMU (``syns65302`` re-exports the latter). Note that Rockpool's
        ``config_from_specification`` names the hidden bias ``bias_hidden``, not ``bias``.

        Raises:
            LoweringError: a design rule fails.
        """
        np.savez(path, **self.npz_arrays())

    def kernel_params(self):
        """The arrays as :class:`nirjax.kernels.xylo.XyloParams` (int32, padded to Nhid)."""
        from ...kernels import xylo as xk

        a = self.arrays
        w_in = np.asarray(a["weights_in"], np.int32)
        n_in, n_ien, n_syn = w_in.shape
        n_hid = self.n_hidden
        full_in = np.zeros((n_in, n_hid, n_syn), np.int32)
        full_in[:, :n_ien] = w_in
        w_out = np.asarray(a["weights_out"], np.int32)
        full_out = np.zeros((n_hid, w_out.shape[1], 1), np.int32)
        full_out[n_hid - w_out.shape[0]:, :, 0] = w_out
        dash_syn = np.stack([a["dash_syn"], a["dash_syn_2"]], 1)[:, :n_syn]
        i32 = lambda x: np.asarray(x, np.int32)  # noqa: E731
        hidden = xk.XyloNeuronParams(i32(dash_syn), i32(a["dash_mem"]), i32(a["threshold"]),
                                     i32(a["bias"]))
        readout = xk.XyloNeuronParams(i32(a["dash_syn_out"])[:, None], i32(a["dash_mem_out"]),
                                      i32(a["threshold_out"]), i32(a["bias_out"]))
        return xk.XyloParams(
            xk.XyloHiddenParams(full_in, i32(a["weights_rec"]), i32(a["weight_shift_in"]),
                                i32(a["weight_shift_rec"]), hidden),
            xk.XyloReadoutParams(full_out, i32(a["weight_shift_out"]), readout))


def _error_record(node, quantity, x, q, scale, field_bits, detail="") -> QuantizationRecord:
    x = np.asarray(x, float)
    q = np.asarray(q)
    scale = np.broadcast_to(np.asarray(scale, float), x.shape) if x.size else np.ones(0)
    max_abs = float(np.max(np.abs(x), initial=0.0))
    err = float(np.max(np.abs(q / scale - x), initial=0.0)) if x.size else 0.0
    lo, hi = -(2 ** (field_bits - 1)), 2 ** (field_bits - 1) - 1
    clipped = int(np.sum((q < lo) | (q > hi)))
    uniq = np.unique(scale)
    shown = float(uniq[0]) if uniq.size == 1 else float(np.median(scale))
    if uniq.size > 1:
        detail = (detail + "; " if detail else "") + (
            f"per-neuron scales {float(uniq.min()):.4g}..{float(uniq.max()):.4g}")
    return QuantizationRecord(node, quantity, shown, max_abs, err,
                              err / max_abs if max_abs else 0.0, clipped, detail)


def _tau_record(node, quantity, tau, dash, dt) -> QuantizationRecord:
    tau = np.asarray(tau, float)
    keep = np.isfinite(tau)
    tau, dash = tau[keep], np.asarray(dash)[keep]
    if tau.size == 0:
        return QuantizationRecord(node, quantity, 1.0, 0.0, 0.0, 0.0)
    represented = dt * 2.0 ** dash
    err = np.abs(represented - tau)
    decay_chip = 1.0 - 2.0 ** -dash.astype(float)
    decay_float = np.exp(-dt / tau)
    out_of_range = int(np.sum((dash < 0) | (dash > 15)))
    return QuantizationRecord(
        node, quantity, 1.0, float(np.max(tau)), float(np.max(err)),
        float(np.max(err / tau)), out_of_range,
        f"dash = round(log2(tau/dt)) = {_span(dash)} (the chip's tau is dt*2**dash); per-step "
        f"decay 1-2**-dash vs exp(-dt/tau) differs by up to "
        f"{float(np.max(np.abs(decay_chip - decay_float))):.3g}")


def _span(values) -> str:
    lo, hi = int(np.min(values)), int(np.max(values))
    return str(lo) if lo == hi else f"{lo}..{hi}"


def _records(net: XyloFloatNetwork, float_spec: dict, q: dict, scales: dict,
             names: XyloNames) -> list:
    hid = names.hidden_label()
    s_h = scales["hidden"]
    s_o = scales["readout"]
    recs = [
        _error_record(names.weights_in, "weight", float_spec["weights_in"], q["weights_in"],
                      s_h[None, : float_spec["weights_in"].shape[1], None], 8),
        _error_record("+".join(names.weights_rec) or "weights_rec", "weight",
                      float_spec["weights_rec"], q["weights_rec"],
                      s_h[None, :, None], 8,
                      "" if scales.get("rec_extra", 1.0) == 1.0 else
                      f"Rockpool also multiplied these by the readout's threshold rescaling "
                      f"{scales['rec_extra']:.4g}"),
        _error_record("+".join(names.weights_out), "weight", float_spec["weights_out"],
                      q["weights_out"], s_o[None, :], 8),
        _error_record(hid, "threshold", float_spec["threshold"], q["threshold"], s_h, 16),
        _error_record(hid, "bias", float_spec["bias"], q["bias"], s_h, 16),
        _error_record(names.readout, "threshold", float_spec["threshold_out"],
                      q["threshold_out"], s_o, 16),
        _error_record(names.readout, "bias", float_spec["bias_out"], q["bias_out"], s_o, 16),
        _tau_record(hid, "tau_mem", net.tau_mem, q["dash_mem"], net.dt),
        _tau_record(hid, "tau_syn", net.tau_syn[:, 0], q["dash_syn"], net.dt),
    ]
    if net.n_synapses > 1:
        recs.append(_tau_record(hid, "tau_syn_2", net.tau_syn[:, 1], q["dash_syn_2"], net.dt))
    recs += [_tau_record(names.readout, "tau_mem", net.tau_mem_out, q["dash_mem_out"], net.dt),
             _tau_record(names.readout, "tau_syn", net.tau_syn_out, q["dash_syn_out"], net.dt)]
    return recs


def quantize_network(net: XyloFloatNetwork, target, *, method: str = "global",
                     fuzzy_scaling: bool = False, compat: str = "rockpool") -> XyloSpec:
    """Map and quantize ``net`` for ``target`` as Rockpool 3.1.0 does.

    This does not check the design rules; call :meth:`XyloSpec.violations` (or export, which
    refuses a spec that breaks one).

    Args:
        net: the float network.
        target: ``"xylo-audio2"``, ``"xylo-audio3"``, ``"xylo-imu"`` or a :class:`XyloTarget`.
        method: ``"global"`` or ``"channel"``.
        fuzzy_scaling: see :func:`quantize_spec`.
        compat: ``"rockpool"`` (default: Rockpool 3.1.0's configuration, its bugs included
            and flagged as warnings) or ``"fixed"``.

    Returns:
        The :class:`XyloSpec`, with a :class:`QuantizationRecord` per quantity and node.

    >>> import numpy as np
    >>> net = XyloFloatNetwork(w_in=np.full((2, 3, 1), 0.5), w_rec=None, w_out=np.ones((3, 1)),
    ...     tau_mem=np.full(3, 0.02), tau_syn=np.full((3, 1), 0.01), threshold=np.ones(3),
    ...     bias=np.zeros(3), tau_mem_out=np.full(1, 0.02), tau_syn_out=np.full(1, 0.01),
    ...     threshold_out=np.ones(1), bias_out=np.zeros(1), dt=1e-3)
    >>> spec = quantize_network(net, "xylo-audio2")
    >>> spec.arrays["threshold"].tolist(), spec.arrays["dash_mem"].tolist()  # 127/0.5, log2(20)
    ([254, 254, 254], [4, 4, 4])
    """
    target = get_target(target)
    float_spec = map_network(net, target, compat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # fuzzy std of few values
        q, scales = quantize_spec(float_spec, method, fuzzy_scaling, compat)
    names = net.names
    return XyloSpec(target, q, names, net, method, fuzzy_scaling, compat, scales,
                    _records(net, float_spec, q, scales, names))


def load_spec(path, target, names: XyloNames | None = None) -> XyloSpec:
    """Read an ``.npz`` written by :meth:`XyloSpec.export` (or any ``from_specification``
    arrays) as a :class:`XyloSpec` for ``target``.

    Raises:
        LoweringError: the file lacks a required array, has arrays XyloSim does not take,
            or has alias connections (not modelled by nirjax).
    """
    target = get_target(target)
    with np.load(path) as data:
        missing = [k for k in ("weights_in", "weights_out") if k not in data]
        if missing:
            raise LoweringError(f"{path}: missing {', '.join(missing)}; an XyloSim "
                                    f"specification needs weights_in and weights_out")
        raw = {k: np.asarray(data[k], dtype=object if k == "aliases" else None)
               for k in data.files}
    if "aliases" in raw and any(len(a) for a in raw["aliases"]):
        raise LoweringError(
            f"{path}: the specification has alias connections (xylosim copies a neuron's spikes "
            f"to its alias target); nirjax's Xylo simulation does not model aliases")
    unknown = sorted(set(raw) - set(SPEC_KEYS) - {"aliases"})
    if unknown:
        raise LoweringError(f"{path}: unknown arrays {', '.join(unknown)}; an XyloSim "
                                f"specification has {', '.join(SPEC_KEYS)} (and aliases)")
    w_in = raw["weights_in"]
    w_in = w_in[:, :, None] if w_in.ndim == 2 else w_in
    n_syn = w_in.shape[2]
    n_hid = raw["weights_rec"].shape[0] if "weights_rec" in raw else w_in.shape[1]
    n_out = raw["weights_out"].shape[1]
    w_rec = raw.get("weights_rec", np.zeros((n_hid, n_hid, n_syn), int))
    w_rec = w_rec[:, :, None] if w_rec.ndim == 2 else w_rec
    arrays = {"weights_in": w_in.astype(int), "weights_out": raw["weights_out"].astype(int),
              "weights_rec": w_rec.astype(int)}
    # xylosim's from_specification defaults: 0 for every omitted array
    for key, n in (("dash_mem", n_hid), ("dash_syn", n_hid), ("dash_syn_2", n_hid),
                   ("threshold", n_hid), ("bias", n_hid), ("dash_mem_out", n_out),
                   ("dash_syn_out", n_out), ("threshold_out", n_out), ("bias_out", n_out)):
        arrays[key] = raw[key].astype(int).reshape(n) if key in raw else np.zeros(n, int)
    for key in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
        arrays[key] = int(raw[key]) if key in raw else 0
    arrays["dt"] = float(raw["dt"]) if "dt" in raw else 1e-3
    arrays = {k: arrays[k] for k in SPEC_KEYS}
    if names is None:
        names = XyloNames(hidden=(("hidden", 0, n_hid),))
    return XyloSpec(target, arrays, names)
