"""Xylo integer kernels, quantization, design rules and export, without the vendor packages.

The kernels are checked against ``tests/xylo_oracle.py``, an event-by-event transcription
of xylosim 0.1.3's C++ written independently of the kernels (the vendor simulator itself is
the oracle in ``tests/test_xylo_vendor.py``); the quantizer against closed forms.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax

sys.path.insert(0, os.path.dirname(__file__))
import xylo_cases  # noqa: E402
import xylo_oracle  # noqa: E402

from nirjax.kernels import xylo as xk  # noqa: E402
from nirjax.lowering.xylo import from_nir as xylo_nir, quantize as xq, rules as xylo_rules  # noqa: E402

BRAILLE = os.path.join(os.path.dirname(__file__), "data", "paper",
                       "braille_noDelay_noBias_subtract.nir")


@jax.jit
def _run(params, counts):
    """The kernel over ``[T, B, Nin]``: scan over time, vmap over the batch, exact tree."""
    def one(xs):
        return jax.lax.scan(lambda s, x: xk.network_step(params, s, x, fast_path=False),
                            xk.init_state(params), xs)[1]
    return jax.vmap(one, in_axes=1, out_axes=1)(counts)


@jax.jit
def _run_batched(params, counts):
    """The kernel called on the whole batch (no vmap), so that ``deliver``'s unsaturated
    shortcut is a real ``lax.cond`` over the batch."""
    state = xk.init_state(params)
    batch = counts.shape[1]
    state = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (batch,) + a.shape), state)
    return jax.lax.scan(lambda s, x: xk.network_step(params, s, x), state, counts)[1]


def _kernel_params(spec: dict, target: str):
    return xq.XyloSpec(xq.get_target(target), spec,
                       xq.XyloNames(hidden=(("h", 0, spec["weights_rec"].shape[0]),))
                       ).kernel_params()


def _event_loop(x, counts, weights, max_events):
    x = np.array(x)
    for c in range(len(counts)):
        for _ in range(min(int(counts[c]), max_events)):
            x = np.clip(x + weights[c], -32768, 32767)
    return x


def test_delivery_equals_event_by_event_saturation():
    """``events_delivery`` equals delivering every event with its own saturation, including
    counts beyond the per-step cap, weights shifted up to 8 bits and mixed signs; and it is
    not the single clip of a matrix product once something saturates."""
    rng = np.random.default_rng(0)
    deliver = jax.jit(lambda k, w, s, x: xk.apply_delivery(xk.events_delivery(k, w, s, 15), x))
    differs_from_one_clip = 0
    for n_src in (1, 5, 16, 33):
        for _ in range(60):
            counts = rng.integers(0, 40, n_src)
            w = rng.integers(-128, 128, (n_src, 4, 2))
            shift = int(rng.integers(0, 9))
            x0 = rng.integers(-32768, 32768, (4, 2))
            got = np.asarray(deliver(counts, w, shift, x0))
            want = _event_loop(x0, counts, w << shift, 15)
            np.testing.assert_array_equal(got, want)
            k = np.minimum(counts, 15)
            one_clip = np.clip(x0 + np.einsum("c,cjs->js", k, w << shift), -32768, 32767)
            differs_from_one_clip += int(np.any(one_clip != want))
    assert differs_from_one_clip > 40


def test_deliver_shortcut_and_tree_both_equal_the_event_loop():
    """``deliver`` over two ordered sources (input then recurrent), with and without the
    unsaturated shortcut, equals the event loop; the cases take both branches."""
    rng = np.random.default_rng(3)
    run = jax.jit(lambda k1, w1, k2, w2, x, fast: xk.deliver(
        x, [xk.EventSource(k1, w1, 2, 15), xk.EventSource(k2, w2, 0, 31)], fast),
        static_argnums=5)
    branches = set()
    for _ in range(120):
        k1, k2 = rng.integers(0, 20, 6), rng.integers(0, 33, 9)
        scale = int(rng.choice([1, 8, 64]))
        w1 = rng.integers(-128, 128, (6, 3, 2)) * scale // 64
        w2 = rng.integers(-128, 128, (9, 3, 2)) * scale // 8
        x0 = rng.integers(-3000, 3000, (3, 2))
        want = _event_loop(_event_loop(x0, k1, w1 << 2, 15), k2, w2, 31)
        for fast in (False, True):
            np.testing.assert_array_equal(np.asarray(run(k1, w1, k2, w2, x0, fast)), want)
        k1c, k2c = np.minimum(k1, 15), np.minimum(k2, 31)
        pos = np.einsum("c,cjs->js", k1c, np.maximum(w1 << 2, 0)) + np.einsum(
            "c,cjs->js", k2c, np.maximum(w2, 0))
        neg = np.einsum("c,cjs->js", k1c, np.minimum(w1 << 2, 0)) + np.einsum(
            "c,cjs->js", k2c, np.minimum(w2, 0))
        branches.add(bool(np.all((x0 + pos <= 32767) & (x0 + neg >= -32768))))
    assert branches == {True, False}


def test_compose_is_associative_with_identity():
    rng = np.random.default_rng(1)
    delivery = jax.jit(lambda k, w: xk.events_delivery(k, w, 0, 31))
    apply = jax.jit(xk.apply_delivery)
    compose = jax.jit(xk.compose)
    x = jnp.asarray(rng.integers(-32768, 32768, (5, 1)))
    ident = xk.identity_delivery((5, 1))
    for _ in range(50):
        a, b, c = (delivery(rng.integers(0, 20, 3), rng.integers(-128, 128, (3, 5, 1)) << 8)
                   for _ in range(3))
        seq = apply(c, apply(b, apply(a, x)))
        np.testing.assert_array_equal(apply(compose(compose(a, b), c), x), seq)
        np.testing.assert_array_equal(apply(compose(a, compose(b, c)), x), seq)
        np.testing.assert_array_equal(apply(compose(ident, a), x), apply(a, x))
        np.testing.assert_array_equal(apply(compose(a, ident), x), apply(a, x))


def test_decay_and_fire_match_the_reference_neuron():
    """Edge cases of the bit-shift decay (sign rule, dash 0, -32768) and the spike loop
    (threshold 0, bursts capped at 31 and 1), value by value against the reference."""
    values = np.array([-32768, -32767, -100, -3, -1, 0, 1, 3, 100, 32767])
    for dash in range(16):
        got = np.asarray(xk.decay(jnp.asarray(values), dash))
        want = [xylo_oracle.decay(int(v), dash) for v in values]
        np.testing.assert_array_equal(got, want)
    got = np.asarray(xk.wrap16(-xk.decay(jnp.asarray([-32768]), 0)))
    assert got.tolist() == [-32768]  # int16 negation of -32768 wraps
    for th in (0, 1, 7, 1000, 32767):
        for max_spikes in (1, 31):
            for v0 in (-500, -1, 0, 6, 7, 250, 32767):
                ref = xylo_oracle.Neuron(0, [0], th, False, 0)
                ref.v_mem = v0
                ref.dash_mem = 15
                n_ref = 0
                v = ref.v_mem
                while v >= th and n_ref < max_spikes:
                    n_ref += 1
                    v = xylo_oracle._int16(v - th)
                n, v_k = xk.fire(jnp.asarray(v0), jnp.asarray(th), max_spikes)
                assert (int(n), int(v_k)) == (n_ref, v), (th, max_spikes, v0)


@pytest.mark.slow
@pytest.mark.parametrize("target", list(xylo_cases.SHAPES))
@pytest.mark.parametrize("saturate", [False, True])
def test_network_equals_event_by_event_reference(target, saturate):
    """The whole chip step (all recorded states, every step and sample) equals the
    reference, with saturated currents and membranes, 31-spike bursts and input counts
    beyond 15 in the saturating cases; both the exact tree alone and the batched call with
    the unsaturated shortcut."""
    rng = np.random.default_rng(10 + saturate + 3 * list(xylo_cases.SHAPES).index(target))
    spec = xylo_cases.random_spec(rng, target, saturate=saturate)
    counts = xylo_cases.random_counts(rng, 40, 2, spec["weights_in"].shape[0], burst=saturate)
    params = _kernel_params(spec, target)
    runs = [_run(params, jnp.asarray(counts)), _run_batched(params, jnp.asarray(counts))]
    sat_isyn, refs = 0, {}
    for rec, b in [(r, b) for r in runs for b in range(counts.shape[1])]:
        if b not in refs:
            refs[b] = xylo_oracle.simulate(spec, counts[:, b], record=True)
        out, ref = refs[b]
        np.testing.assert_array_equal(np.asarray(rec.out[:, b]), out)
        np.testing.assert_array_equal(np.asarray(rec.hidden_spikes[:, b]), ref["Spikes"])
        np.testing.assert_array_equal(np.asarray(rec.v[:, b]), ref["Vmem"])
        np.testing.assert_array_equal(np.asarray(rec.i_syn[:, b, :, 0]), ref["Isyn"])
        if spec["weights_in"].shape[2] > 1:
            np.testing.assert_array_equal(np.asarray(rec.i_syn[:, b, :, 1]), ref["Isyn2"])
        np.testing.assert_array_equal(np.asarray(rec.v_out[:, b]), ref["Vmem_out"])
        np.testing.assert_array_equal(np.asarray(rec.i_syn_out[:, b, :, 0]), ref["Isyn_out"])
        sat_isyn += int(np.sum(np.abs(ref["Isyn"]) >= 32767))
        assert ref["Spikes"].sum() > 0
    if saturate:
        assert sat_isyn > 0
        assert int(np.max(rec.hidden_spikes)) == 31


def _tiny_net(**overrides):
    kw = dict(w_in=np.array([[[0.5], [-0.25]]]), w_rec=None, w_out=np.array([[1.0], [-2.0]]),
              tau_mem=np.array([0.02, 0.002]), tau_syn=np.array([[0.01], [0.004]]),
              threshold=np.array([1.0, 0.5]), bias=np.array([0.0, 0.1]),
              tau_mem_out=np.array([0.05]), tau_syn_out=np.array([0.0011]),
              threshold_out=np.array([3.0]), bias_out=np.array([0.5]), dt=1e-3)
    kw.update(overrides)
    return xq.XyloFloatNetwork(**kw)


def test_global_quantization_closed_form():
    """Scales ``127/max|w|`` per layer, round half to even, ``dash = round(log2(tau/dt))``,
    and Rockpool's hidden-scale readout bias (compat='rockpool') vs the readout scale
    (compat='fixed')."""
    spec = xq.quantize_network(_tiny_net(), "xylo-audio2")
    s_h, s_o = 127 / 0.5, 127 / 2.0
    a = spec.arrays
    assert a["weights_in"][0, :, 0].tolist() == [127, -64]  # -0.25*254 = -63.5 -> -64 (even)
    assert a["threshold"].tolist() == [254, 127]
    assert a["bias"].tolist() == [0, round(0.1 * s_h)]
    assert a["weights_out"][:, 0].tolist() == [64, -127]  # 63.5 -> 64 (even)
    assert a["threshold_out"].tolist() == [round(3 * s_o)]
    assert a["bias_out"].tolist() == [round(0.5 * s_h)]  # Rockpool: hidden scale
    assert a["dash_mem"].tolist() == [4, 1] and a["dash_syn"].tolist() == [3, 2]
    assert a["dash_mem_out"].tolist() == [6] and a["dash_syn_out"].tolist() == [0]
    fixed = xq.quantize_network(_tiny_net(), "xylo-audio2", compat="fixed")
    assert fixed.arrays["bias_out"].tolist() == [round(0.5 * s_o)]
    warned = {v.rule for v in spec.violations()}
    assert "rockpool_bias_out_scale" in warned
    assert "rockpool_bias_out_scale" not in {v.rule for v in fixed.violations()}
    record = next(r for r in spec.records if r.quantity == "bias" and r.node == "readout")
    assert record.max_abs_error == pytest.approx(abs(round(0.5 * s_h) / s_o - 0.5))


def test_threshold_overflow_rescales_the_layer():
    """A threshold beyond 16 bits rescales the layer to ``32767/max``, rounding twice."""
    net = _tiny_net(threshold=np.array([1000.0, 0.5]))
    a = xq.quantize_network(net, "xylo-audio2").arrays
    first = np.round(np.array([1000.0, 0.5]) * 254)
    limited = 32767 / first.max()
    assert a["threshold"].tolist() == np.round(first * limited).astype(int).tolist()
    assert a["weights_in"][0, :, 0].tolist() == np.round(
        np.round(np.array([0.5, -0.25]) * 254) * limited).astype(int).tolist()


def test_channel_quantization_closed_form():
    spec = xq.quantize_network(_tiny_net(), "xylo-audio2", method="channel")
    a = spec.arrays
    # neuron 0: max |w| 0.5 -> 254; neuron 1: 0.25 -> 508; readout: 2 -> 63.5
    assert a["weights_in"][0, :, 0].tolist() == [127, -127]
    assert a["threshold"].tolist() == [254, 254]
    assert a["threshold_out"].tolist() == [round(3 * 63.5)]
    assert a["bias"].tolist() == [0, 0]  # Rockpool: one-synapse biases unscaled, round(0.1)
    fixed = xq.quantize_network(_tiny_net(), "xylo-audio2", method="channel", compat="fixed")
    assert fixed.arrays["bias"].tolist() == [0, round(0.1 * 508)]


def test_design_rules_report_every_violation_at_once():
    rng = np.random.default_rng(2)
    n_hid, n_in, n_out = 1200, 20, 17
    net = xq.XyloFloatNetwork(
        w_in=rng.normal(size=(n_in, n_hid, 2)), w_rec=rng.normal(size=(n_hid, n_hid, 2)),
        w_out=rng.normal(size=(n_hid, n_out)), tau_mem=np.full(n_hid, 0.5e-3),
        tau_syn=np.full((n_hid, 2), 1e-2), threshold=np.ones(n_hid), bias=np.zeros(n_hid),
        tau_mem_out=np.full(n_out, 100.0), tau_syn_out=np.full(n_out, 1e-2),
        threshold_out=np.ones(n_out), bias_out=np.zeros(n_out), dt=1e-3,
        names=xq.XyloNames(input="in", weights_in="w1", hidden=(("lif1", 0, n_hid),),
                           weights_rec=("wr",), weights_out=("w2",), readout="lif2"))
    spec = xq.quantize_network(net, "xylo-imu")
    with pytest.raises(nirjax.LoweringError) as info:
        spec.export(os.devnull)
    rules = {v.rule for v in info.value.violations}
    assert {"inputs", "hidden_neurons", "readout_neurons", "synapses_per_neuron",
            "input_expansion", "output_expansion", "fanout", "tau_above_dt",
            "dash_range"} <= rules
    text = str(info.value)
    assert "node 'lif1': 1200 hidden neurons, xylo-imu has 496" in text
    assert "node 'in': 20 input channels, xylo-imu has 16" in text
    assert "node 'lif2'" in text and "dash_mem_out" in text


def test_export_writes_exactly_the_from_specification_arrays(tmp_path):
    spec = xylo_nir.lower_nir(nir.read(BRAILLE), "xylo-audio2", 1e-4)
    path = tmp_path / "braille.npz"
    spec.export(path)
    with np.load(path) as data:
        assert tuple(data.files) == xq.SPEC_KEYS
        for key in ("weight_shift_in", "weight_shift_rec", "weight_shift_out", "dt"):
            assert data[key].ndim == 0
        assert data["weights_in"].dtype == np.int8 and data["threshold"].dtype == np.int16
        loaded = {k: data[k] for k in data.files}
    back = xq.load_spec(path, "xylo-audio2")
    for key in xq.SPEC_KEYS:
        np.testing.assert_array_equal(np.asarray(back.arrays[key]), np.asarray(spec.arrays[key]))
        np.testing.assert_array_equal(loaded[key], np.asarray(spec.arrays[key]))


def test_braille_lowers_to_a_valid_audio2_spec():
    spec = xylo_nir.lower_nir(nir.read(BRAILLE), "xylo-audio2", 1e-4)
    assert not [v for v in spec.violations() if v.severity == "error"]
    a = spec.arrays
    assert a["weights_in"].shape == (12, 40, 1) and a["weights_out"].shape == (40, 7)
    assert a["weights_rec"].shape == (40, 40, 1)
    # tau_syn 0.4 ms, tau_mem 0.667 ms, readout 0.18 / 0.33 ms at dt 0.1 ms
    assert set(a["dash_syn"]) == {2} and set(a["dash_mem"]) == {3}
    assert set(a["dash_syn_out"]) == {1} and set(a["dash_mem_out"]) == {2}
    assert np.abs(a["weights_in"]).max() == 127 or np.abs(a["weights_rec"]).max() == 127
    assert spec.names.hidden == (("lif1.lif", 0, 40),) and spec.names.readout == "lif2"
    report = spec.report()
    assert "hidden neurons: 40 of 1000" in report and "fc1 weight" in report
    rec = _run(spec.kernel_params(),
               jnp.asarray(np.random.default_rng(0).integers(0, 2, (50, 2, 12))))
    assert int(jnp.sum(rec.hidden_spikes)) > 0


def test_nir_shape_violations_are_all_listed():
    w = np.ones((3, 2), np.float32)
    lif = nir.LIF(tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3),
                  v_threshold=np.ones(3))
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "fc": nir.Affine(w, np.ones(3)),
               "lif": lif, "output": nir.Output(np.array([3]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    with pytest.raises(nirjax.LoweringError) as info:
        xylo_nir.lower_nir(graph, "xylo-audio2", 1e-3)
    rules = {v.rule for v in info.value.violations}
    assert "node_type" in rules
    assert "node 'lif': LIF is not supported" in str(info.value)
    cuba = nir.CubaLIF(tau_syn=np.full(3, 2e-3), tau_mem=np.full(3, 1e-2), r=np.ones(3),
                       v_leak=np.zeros(3), v_threshold=np.ones(3), w_in=np.ones(3))
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "fc": nir.Affine(w, np.ones(3)),
               "lif": cuba, "output": nir.Output(np.array([3]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    with pytest.raises(nirjax.LoweringError) as info:
        xylo_nir.lower_nir(graph, "xylo-audio2", 1e-3)
    rules = {v.rule for v in info.value.violations}
    assert {"affine_bias", "two_neuron_layers"} <= rules


def test_float_network_rejects_bad_parameters():
    with pytest.raises(xq.ParameterError, match="tau_mem"):
        _tiny_net(tau_mem=np.array([0.02, -1.0]))
    with pytest.raises(xq.ParameterError, match="threshold"):
        _tiny_net(threshold=np.ones(3))
    with pytest.raises(nirjax.LoweringError, match="unknown Xylo target"):
        xq.quantize_network(_tiny_net(), "xylo-audio9")
    with pytest.raises(nirjax.LoweringError, match="method"):
        xq.quantize_network(_tiny_net(), "xylo-audio2", method="nearest")
    assert xylo_rules.XYLO_RULES  # rules are data: a tuple of named checks
    assert all(r.name and r.description for r in xylo_rules.XYLO_RULES)


def _fire_oracle(v, th, max_spikes):
    """The chip's spike loop, literally (NumPy int64): subtract while ``v >= th``."""
    v = v.astype(np.int64).copy()
    n = np.zeros_like(v)
    for _ in range(max_spikes):
        go = v >= th
        n += go
        v = np.where(go, v - th, v)  # th == 0: v unchanged
    return n, v


@pytest.mark.parametrize("max_spikes", [1, 31])
def test_fire_is_exact_over_the_whole_16bit_state(max_spikes):
    """fire() divides through a float32 quotient with an integer correction: it equals the
    chip's subtract-while-above loop for EVERY 16-bit membrane value at thresholds where
    XLA's vectorised float32 division is known to land below an integer (41/41 gives
    0.99999... on x86 CPUs), small ones, powers of two and their neighbours, the largest,
    and 0; the thresholds vary along the last axis, as per-neuron thresholds do."""
    v = np.arange(-(2 ** 15), 2 ** 15, dtype=np.int64)[:, None]
    th = np.array([0, 1, 2, 3, 7, 41, 47, 55, 63, 97, 126, 253, 255, 256, 257, 509, 510,
                   1000, 4095, 4096, 4097, 12345, 16383, 16384, 16385, 32766, 32767])[None, :]
    # broadcast inside the jitted function, as in the network step (the fused code XLA
    # emits then divides through a reciprocal estimate)
    n, v_after = jax.jit(lambda v, th: xk.fire(jnp.broadcast_to(v, (v.shape[0], th.shape[1])),
                                               th, max_spikes))(
        jnp.asarray(v, jnp.int32), jnp.asarray(th, jnp.int32))
    v, th = np.broadcast_arrays(v, th)
    n_ref, v_ref = _fire_oracle(v, th, max_spikes)
    np.testing.assert_array_equal(np.asarray(n), n_ref)
    np.testing.assert_array_equal(np.asarray(v_after), v_ref)
