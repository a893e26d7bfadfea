"""nirjax.lower(..., "xylo-*") without the vendor: the integer simulation through the compiled
scan equals the event-by-event transcription of xylosim (``tests/xylo_oracle.py``) run on
the exported specification; design rules, input checks, records, export, to_nir, gains
folding (closed form), compare.
"""

from __future__ import annotations

import os
import sys
import warnings

import nir
import numpy as np
import pytest

import nirjax
from nirjax.lowering.xylo import quantize as xq

sys.path.insert(0, os.path.dirname(__file__))
import xylo_cases  # noqa: E402
import xylo_oracle  # noqa: E402

BRAILLE = os.path.join(os.path.dirname(__file__), "data", "paper",
                       "braille_noDelay_noBias_subtract.nir")
TARGETS = ("xylo-audio2", "xylo-audio3", "xylo-imu")


def _braille():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        return nirjax.read(BRAILLE)


def _lower(graph, target, dt, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.LoweringWarning)
        return nirjax.lower(graph, target, dt=dt, **options)


def _check_against_oracle(hw, xs, *, saturating=False):
    """hw.run equals the oracle on the exported arrays, every step, sample and state."""
    spec = hw.details.arrays
    hidden = hw.program.nodes[1].name
    readout = hw.program.nodes[2].name
    ys, rec = hw.run(xs, record=[hidden, (hidden, "v"), (hidden, "i_syn"), (readout, "v"),
                                 (readout, "i_syn")])
    sat = bursts = spikes = 0
    for b in range(xs.shape[1]):
        out, ref = xylo_oracle.simulate(spec, xs[:, b], record=True)
        np.testing.assert_array_equal(np.asarray(ys[:, b]), out)
        np.testing.assert_array_equal(np.asarray(rec[hidden][:, b]), ref["Spikes"])
        np.testing.assert_array_equal(np.asarray(rec[(hidden, "v")][:, b]), ref["Vmem"])
        np.testing.assert_array_equal(np.asarray(rec[(hidden, "i_syn")][:, b, :, 0]), ref["Isyn"])
        np.testing.assert_array_equal(np.asarray(rec[(readout, "v")][:, b]), ref["Vmem_out"])
        np.testing.assert_array_equal(np.asarray(rec[(readout, "i_syn")][:, b, :, 0]),
                                      ref["Isyn_out"])
        sat += int(np.sum(np.abs(ref["Isyn"]) >= 32767) + np.sum(np.abs(ref["Vmem"]) >= 32767))
        bursts = max(bursts, int(np.max(ref["Spikes"])))
        spikes += int(out.sum())
    assert spikes > 0 and np.asarray(rec[hidden]).sum() > 0
    if saturating:
        assert sat > 0 and bursts == 31
    return ys


def test_xylo_targets_are_registered():
    for t in TARGETS:
        assert nirjax.lowering.TARGETS[t].family == "xylo"
        assert {"method", "compat", "gains"} <= set(nirjax.lowering.TARGETS[t].options)


def test_braille_lowers_and_equals_the_reference():
    hw = _lower(_braille(), "xylo-audio2", 1e-4)
    assert [n.type_name for n in hw.program.nodes] == ["Input", "CubaLIF", "CubaLIF", "Output"]
    assert hw.program.table.name == "xylo"
    xs = np.random.default_rng(0).integers(0, 4, (60, 3, 12))
    ys = _check_against_oracle(hw, xs)
    assert ys.dtype == np.int32 and ys.shape == (60, 3, 7)
    # graph names: the subgraph 'lif1' holds one hidden node; the readout is 'lif2'
    _, rec = hw.run(xs, record=["lif1", "lif1.lif", ("lif1", "v"), "lif2", "output"])
    np.testing.assert_array_equal(rec["lif1"], rec["lif1.lif"])
    np.testing.assert_array_equal(rec["lif2"], ys)
    assert rec[("lif1", "v")].shape == (60, 3, 40)
    assert hw.latency == {"lif2": 1, "output": 1}
    # the spec is Rockpool's Braille configuration (dash values, scales: test_xylo.py)
    a = hw.details.arrays
    assert set(a["dash_syn"]) == {2} and set(a["dash_mem"]) == {3}
    text = hw.report()
    for part in ("hidden neurons 0..39 of 1000", "dash = round(log2(tau/dt)) = 3",
                 "fc1 weight: scale", "lif1.lif threshold", "[0, 255]", "lags"):
        assert part in text, part
    r = hw.resources
    assert r["total"]["hidden neurons"] == {"used": 40, "limit": 1000}
    assert r["lif1.lif"]["neurons"] == {"used": 40, "limit": 1000}
    assert r["lif2"]["neurons"] == {"used": 7, "limit": 8}
    assert r["total"]["recurrent weights"]["limit"] == 32000


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("regime", ["plain", "saturate"])
def test_random_graphs_equal_the_reference(target, regime):
    rng = np.random.default_rng(["plain", "saturate"].index(regime) + 7 * TARGETS.index(target))
    layers = ((20, True), (16, False)) if regime == "plain" else ((24, True),)
    g = xylo_cases.random_nir(rng, target, layers, regime=regime)
    hw = _lower(g, target, 1e-3)
    xs = xylo_cases.random_counts(rng, 40, 2, 16, burst=regime == "saturate")
    _check_against_oracle(hw, xs, saturating=regime == "saturate")
    if regime == "plain":  # two hidden nodes collapse into one population, in order
        names = hw.details.names.hidden
        assert [n for n, _, _ in names] == ["lif0", "lif1"]
        _, rec = hw.run(xs, record=["lif0", "lif1"])
        assert rec["lif0"].shape[2] == 20 and rec["lif1"].shape[2] == 16


def test_every_violation_at_once():
    rng = np.random.default_rng(3)
    g = xylo_cases.random_nir(rng, "xylo-audio2", ((1200, False),), n_in=20, n_out=9)
    nodes = dict(g.nodes)
    nodes["fc0"] = nir.Affine(weight=nodes["fc0"].weight, bias=np.ones(1200))
    g = nir.NIRGraph(nodes=nodes, edges=g.edges)
    with pytest.raises(nirjax.LoweringError) as info:
        nirjax.lower(g, "xylo-audio2", dt=1e-3)
    assert {"affine_bias"} <= {v.rule for v in info.value.violations}
    g = xylo_cases.random_nir(rng, "xylo-audio2", ((1200, False),), n_in=20, n_out=9)
    with pytest.raises(nirjax.LoweringError) as info:
        nirjax.lower(g, "xylo-audio2", dt=1e-3)
    rules = {v.rule for v in info.value.violations}
    assert {"inputs", "hidden_neurons", "readout_neurons"} <= rules
    text = str(info.value)
    assert "node 'lif0': 1200 hidden neurons, xylo-audio2 has 1000" in text
    assert "node 'input': 20 input channels, xylo-audio2 has 16" in text
    assert "node 'readout': 9 readout neurons, xylo-audio2 has 8" in text


def test_unsupported_nodes_are_named():
    g = nir.NIRGraph(nodes={
        "input": nir.Input(np.array([2])), "fc": nir.Linear(np.ones((3, 2))),
        "lif": nir.LIF(tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3),
                       v_threshold=np.ones(3)), "output": nir.Output(np.array([3]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    with pytest.raises(nirjax.LoweringError, match="node 'lif': LIF is not supported"):
        nirjax.lower(g, "xylo-imu", dt=1e-3)


def test_inputs_are_checked():
    hw = _lower(_braille(), "xylo-audio2", 1e-4)
    xs = np.zeros((5, 1, 12), int)
    xs[2, 0, 3] = 256
    with pytest.raises(nirjax.InputError, match=r"\[0, 255\].*\(2, 0, 3\)"):
        hw(xs)
    with pytest.raises(nirjax.InputError, match="integer"):
        hw(np.full((5, 1, 12), 0.5))
    xs[2, 0, 3] = 40  # more than 15 events: delivered as 15, like the chip
    np.testing.assert_array_equal(np.asarray(hw(xs)), np.asarray(hw(np.minimum(xs, 15))))


def test_export_round_trip_and_to_nir(tmp_path):
    hw = _lower(_braille(), "xylo-audio2", 1e-4)
    path = tmp_path / "braille.npz"
    hw.export(path)
    with np.load(path) as data:
        assert tuple(data.files) == xq.SPEC_KEYS
    back = xq.load_spec(path, "xylo-audio2")
    for key in xq.SPEC_KEYS:
        np.testing.assert_array_equal(np.asarray(back.arrays[key]),
                                      np.asarray(hw.details.arrays[key]))
    g = hw.to_nir()
    assert isinstance(g, nir.NIRGraph)
    assert set(g.nodes) == {"input", "w_in", "hidden", "w_rec", "w_out", "readout", "output"}
    w = np.concatenate([np.ravel(g.nodes[k].weight) for k in ("w_in", "w_rec")])
    assert np.all(w == np.round(w)) and np.abs(w).max() == 127
    # the quantized graph lowers to the same integers (scale 1, tau = dt*2**dash)
    again = _lower(g, "xylo-audio2", 1e-4)
    for key in ("weights_in", "weights_rec", "weights_out", "threshold", "threshold_out",
                "dash_mem", "dash_syn", "dash_mem_out", "dash_syn_out", "bias", "bias_out"):
        np.testing.assert_array_equal(np.asarray(again.details.arrays[key]),
                                      np.asarray(hw.details.arrays[key]))
    nirjax.write(tmp_path / "q.nir", g)  # a valid NIR file


def test_gains_fold_into_thresholds():
    """S = (w_in*dt/tau_syn) * (r*dt/tau_mem): the chip's threshold is v_threshold/S
    (closed form), the bias (dt/tau_mem)*v_leak/S; 'ignore' keeps v_threshold and warns."""
    rng = np.random.default_rng(5)
    g = xylo_cases.random_nir(rng, "xylo-audio2", ((12, False),), gains="random")
    dt = 1e-3
    hw = _lower(g, "xylo-audio2", dt)
    lif = g.nodes["lif0"]
    s = (lif.w_in * dt / lif.tau_syn) * (lif.r * dt / lif.tau_mem)
    scale = hw.details.scales["hidden"][0]
    np.testing.assert_allclose(hw.details.arrays["threshold"],
                               np.round(lif.v_threshold / s * scale), atol=1)
    net = hw.details.network
    np.testing.assert_allclose(net.threshold, lif.v_threshold / s, rtol=1e-12)
    np.testing.assert_allclose(net.bias, dt / lif.tau_mem * lif.v_leak / s, rtol=1e-12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hw2 = nirjax.lower(g, "xylo-audio2", dt=dt, gains="ignore")
    assert any(issubclass(w.category, nirjax.LoweringWarning) and "gains='ignore'" in
               str(w.message) for w in caught)
    np.testing.assert_allclose(hw2.details.network.threshold, lif.v_threshold, rtol=1e-6)
    # under a unit-gain semantics (Rockpool's) nothing is folded
    model = nirjax.compile(g, dt=dt, semantics="rockpool")
    hw3 = _lower(model, "xylo-audio2", None)
    np.testing.assert_allclose(hw3.details.network.threshold, lif.v_threshold, rtol=1e-6)
    np.testing.assert_allclose(hw3.details.network.bias, lif.v_leak, rtol=1e-6)


def test_unknown_option_values():
    with pytest.raises(nirjax.LoweringError, match="gains"):
        nirjax.lower(_braille(), "xylo-audio2", dt=1e-4, gains="nope")
    with pytest.raises(nirjax.LoweringError, match="no option"):
        nirjax.lower(_braille(), "xylo-audio2", dt=1e-4, threshold=3)


def test_compare_float_braille_with_the_chip():
    g = _braille()
    model = nirjax.compile(g, dt=1e-4, semantics=nirjax.Semantics(reset="subtract"))
    hw = _lower(model, "xylo-audio2", None)
    xs = np.random.default_rng(1).integers(0, 2, (80, 4, 12))
    c = nirjax.compare(model, hw, xs)
    assert c.nodes == ("lif1.lif", "lif2", "output")
    assert 0.0 < c.agreement(hw.target) <= 1.0
    text = str(c)
    assert "lif2" in text and "latency 1" in text and "output spikes identical" in text
    # alignment by latency: the chip's readout at t+1 is compared with the float at t
    assert c.values[hw.target]["lif2"].shape[0] == 79
    _, rec = hw.run(xs, record=["lif2"])
    np.testing.assert_array_equal(c.values[hw.target]["lif2"], np.asarray(rec["lif2"])[1:])


def test_fast_path_off_gives_the_same_result():
    rng = np.random.default_rng(11)
    g = xylo_cases.random_nir(rng, "xylo-imu", ((24, True),), regime="saturate")
    xs = xylo_cases.random_counts(rng, 30, 3, 16, burst=True)
    a = _lower(g, "xylo-imu", 1e-3)(xs)
    b = _lower(g, "xylo-imu", 1e-3, fast_path=False)(xs)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_weight_shift_option_scales_the_layers_and_still_equals_the_reference():
    base = _lower(_braille(), "xylo-audio2", 1e-4)
    hw = _lower(_braille(), "xylo-audio2", 1e-4, weight_shift="auto")
    a, b = base.details.arrays, hw.details.arrays
    k_h, k_o = b["weight_shift_in"], b["weight_shift_out"]
    # threshold 34 << 6 = 2176 <= 4096 < 34 << 7 (the 'auto' rule: 2**12 headroom)
    assert (np.max(a["threshold"]) << k_h) <= 4096 < (np.max(a["threshold"]) << (k_h + 1))
    assert b["weight_shift_rec"] == k_h and k_h > 0 and k_o > 0
    np.testing.assert_array_equal(b["threshold"], a["threshold"] << k_h)
    np.testing.assert_array_equal(b["threshold_out"], a["threshold_out"] << k_o)
    np.testing.assert_array_equal(b["weights_in"], a["weights_in"])
    xs = np.random.default_rng(4).integers(0, 3, (50, 2, 12))
    _check_against_oracle(hw, xs)
    assert "weight shifts: hidden" in hw.report()
    with pytest.raises(nirjax.LoweringError, match="weight_shift"):
        nirjax.lower(_braille(), "xylo-audio2", dt=1e-4, weight_shift=9)


def test_float_semantics_is_the_chip_update_with_a_binary_readout():
    sem = nirjax.lowering.TARGETS["xylo-audio2"].semantics(_braille())
    assert sem.for_node("lif2", "CubaLIF").spikes == "binary"
    hidden = sem.for_node("lif1.lif", "CubaLIF")
    assert (hidden.spikes, hidden.reset, hidden.threshold_test, hidden.synapse,
            hidden.cuba_current, hidden.form, hidden.integrator) == (
        "multi", "subtract", ">=", "add_decay", "new", "decay", "euler")


def test_hardware_aware_transform_rounds_to_what_the_chip_holds():
    import jax

    from nirjax import train

    g = _braille()
    model = nirjax.compile(g, dt=1e-4,
                           semantics=nirjax.lowering.TARGETS["xylo-audio2"].semantics(g))
    transform = train.hardware_aware(model, "xylo-audio2")
    q = transform(model.params)
    hw = _lower(model, "xylo-audio2", None)
    hq = _lower(model, "xylo-audio2", None, params=q)
    a = hw.details.arrays
    s_h = hw.details.scales["hidden"][0]
    s_o = hw.details.scales["readout"][0]
    # the transform's values are the chip's integers over the layer scale
    np.testing.assert_allclose(np.asarray(q["fc1"].weight).T * s_h, a["weights_in"][:, :, 0],
                               atol=1e-3)
    np.testing.assert_allclose(np.asarray(q["fc2"].weight).T * s_o, a["weights_out"], atol=1e-3)
    np.testing.assert_allclose(np.asarray(q["lif1.lif"].v_threshold) * s_h, a["threshold"],
                               atol=1e-3)
    dt = 1e-4
    np.testing.assert_allclose(np.asarray(q["lif1.lif"].tau_mem), dt * 2.0 ** a["dash_mem"],
                               rtol=1e-6)
    # lowering the transformed parameters gives the same chip
    for key in ("weights_in", "weights_rec", "weights_out", "threshold", "threshold_out",
                "dash_mem", "dash_syn", "dash_mem_out", "dash_syn_out"):
        np.testing.assert_array_equal(hq.details.arrays[key], a[key])
    # straight-through: the gradient of the rounded weights is the identity
    grad = jax.grad(lambda p: transform(p)["fc1"].weight.sum())(model.params)
    np.testing.assert_array_equal(np.asarray(grad["fc1"].weight), 1.0)
    assert float(np.abs(np.asarray(grad["fc2"].weight)).sum()) == 0.0
    # the float model with the chip's values agrees closely with the chip (integer decays,
    # saturation and the spike limits are all that differ)
    xs = np.random.default_rng(2).integers(0, 2, (120, 16, 12))
    hws = _lower(model, "xylo-audio2", None, params=q, weight_shift="auto")
    c = nirjax.compare(model, hws, xs, params=q)
    assert c.agreement("xylo-audio2", "lif1.lif") > 0.95


def test_hardware_aware_errors():
    from nirjax import train

    model = nirjax.compile(_braille(), dt=1e-4)
    with pytest.raises(nirjax.LoweringError, match="unknown target"):
        train.hardware_aware(model, "xylo-audio9")
    with pytest.raises(nirjax.LoweringError, match="method='global'"):
        train.hardware_aware(model, "xylo-audio2", method="channel")
    with pytest.raises(nirjax.LoweringError, match="no option"):
        train.hardware_aware(model, "xylo-audio2", nonsense=1)
