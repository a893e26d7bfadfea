"""Loihi 2 (Lava fixed point, netx): integer kernels, quantization, design rules, netx files.

The kernels are checked against NumPy int64 loops transcribed from Lava 0.10's bit-accurate
models (``PyLifModelBitAcc``, ``PyDenseModelBitAcc``, ``PyDelayDenseModelBitAcc``,
``PyConvModelFixed``; the oracles below are written from their equations, not from the
kernels); the NIR paper's LIF task lowered to netx integers against the published Lava CPU
fixed-point and Loihi 2 chip traces. The comparison with Lava itself is
``tests/test_loihi_lava.py``.
"""

from __future__ import annotations

import os
import pathlib
import sys
import warnings
import zlib

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax
from nirjax.kernels import loihi as lk
from nirjax.lowering.loihi import quantize as Q
from nirjax.lowering.loihi.netx import (check_packing, kernel_params, netx_dense_params,
                                        read_netx, write_netx)
from nirjax.semantics import Semantics

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
import lava_harness  # noqa: E402

DATA = pathlib.Path(__file__).parent / "data" / "paper"
DT = 1e-4


def rng_for(key):
    return np.random.default_rng(zlib.crc32(key.encode()))


# ----------------------------------------------------------------------------- oracles


def lava_lif_oracle(a, du, dv, vth, bias_mant, bias_exp=6):
    """PyLifModelBitAcc.run_spk in int64 NumPy, step by step (lava 0.10
    proc/lif/models.py): decay by (4096 - (du + 1)) and (4096 - dv) with
    sign * (|x * m| >> 12), input << 6, one-period 24-bit wrap of u, clip of v, strict test
    against vth << 6, reset v to 0."""
    T = a.shape[0]
    u = np.zeros(a.shape[1:], np.int64)
    v = np.zeros(a.shape[1:], np.int64)
    half = 2 ** 23
    bias = np.left_shift(bias_mant, bias_exp) if bias_exp >= 0 else np.right_shift(
        bias_mant, -bias_exp)
    us, vs, ss = [], [], []
    for t in range(T):
        cu = u * (4096 - (du + 1))
        cu = np.sign(cu) * np.right_shift(np.abs(cu), 12)
        cu = cu + np.left_shift(a[t].astype(np.int64), 6)
        w = np.where(cu > half, cu - 2 * half, cu)
        u = np.where(w <= -half, cu + 2 * half, w)
        cv = v * (4096 - dv)
        cv = np.sign(cv) * np.right_shift(np.abs(cv), 12)
        v = np.clip(cv + u + bias, -half + 1, half - 1)
        s = v > (vth << 6)
        v = np.where(s, 0, v)
        us.append(u)
        vs.append(v)
        ss.append(s.astype(np.int64))
    return np.array(ss), np.array(us), np.array(vs)


def shift_oracle(x, e):
    return np.left_shift(x, e) if e > 0 else np.right_shift(x, -e)


# ----------------------------------------------------------------------------- kernels


def test_decay_is_lavas_truncating_decay():
    rng = rng_for("decay")
    x = rng.integers(-(2 ** 23), 2 ** 23 + 1, 5000)
    d = rng.integers(0, 4097, 5000)
    ref = np.sign(x * (4096 - d)) * ((np.abs(x * (4096 - d))) >> 12)
    np.testing.assert_array_equal(np.asarray(lk.decay(jnp.asarray(x, jnp.int32),
                                                      jnp.asarray(d, jnp.int32))), ref)


@pytest.mark.parametrize("case", ["plain", "saturating", "leaky_bias"])
def test_cuba_step_matches_lava_oracle(case):
    """Random inputs, decays, thresholds and biases, including inputs that wrap the 24-bit
    current and clip the voltage."""
    rng = rng_for(f"cuba-{case}")
    T, n = 60, 40
    if case == "saturating":
        a = rng.integers(-200_000, 200_000, (T, n))
        du, dv, vth = 10, 7, 131071
        bias = rng.integers(-4096, 4096, n)
    elif case == "leaky_bias":
        a = rng.integers(-300, 600, (T, n))
        du, dv, vth = 3000, 900, 900
        bias = rng.integers(-40, 80, n)
    else:
        a = rng.integers(-255, 256, (T, n)) * (rng.random((T, n)) < 0.3)
        du, dv, vth = 4095, 163, 25
        bias = np.zeros(n, np.int64)
    s_ref, u_ref, v_ref = lava_lif_oracle(a, du, dv, vth, bias)
    p = lk.CubaParams(jnp.int32(du), jnp.int32(dv), jnp.int32(vth), jnp.asarray(bias, jnp.int32),
                      jnp.int32(6))
    st = lk.cuba_init_state(p, (n,))
    step = jax.jit(lk.cuba_step)
    for t in range(T):
        st, s = step(p, st, jnp.asarray(a[t], jnp.int32))
        np.testing.assert_array_equal(np.asarray(st.u), u_ref[t], err_msg=f"u at step {t}")
        np.testing.assert_array_equal(np.asarray(st.v), v_ref[t], err_msg=f"v at step {t}")
        np.testing.assert_array_equal(np.asarray(s), s_ref[t], err_msg=f"s at step {t}")
    assert s_ref.sum() > 0 and (case != "saturating" or np.abs(u_ref).max() > 2 ** 22)


def test_dense_and_weight_exponent():
    rng = rng_for("dense")
    w = rng.integers(-256, 256, (7, 11))
    for e in (-5, -1, 0, 3):
        s = (rng.random(11) < 0.5) * rng.integers(1, 4, 11)  # counts: nonzero = one spike
        ref = shift_oracle(w @ (s != 0).astype(np.int64), e)
        got = lk.dense(lk.DenseParams(jnp.asarray(w, jnp.int32), jnp.int32(e)), jnp.asarray(s))
        np.testing.assert_array_equal(np.asarray(got), ref)


def test_delay_dense_matches_delay_line_oracle():
    """a[t] = sum_k shift(W_k @ s[t - k], e): each delay group shifted on its own, as
    Lava's DelayDense does (the shift floors, so grouping matters)."""
    rng = rng_for("delay-dense")
    T, n_out, n_in, e = 40, 5, 6, -2
    w = rng.integers(-256, 256, (n_out, n_in))
    d = rng.integers(0, 7, (n_out, n_in))
    s = (rng.random((T, n_in)) < 0.4).astype(np.int64)
    delays = np.unique(d)
    stack = np.stack([np.where(d == k, w, 0) for k in delays])
    p = lk.DelayDenseParams(jnp.asarray(stack, jnp.int32), jnp.int32(e),
                            jnp.asarray(delays, jnp.int32))
    st = lk.delay_dense_init_state(p, int(d.max()))
    for t in range(T):
        st, a = lk.delay_dense_step(p, st, jnp.asarray(s[t]))
        ref = sum(shift_oracle(np.where(d == k, w, 0) @ s[t - k], e)
                  for k in delays if t - k >= 0)
        np.testing.assert_array_equal(np.asarray(a), ref, err_msg=f"step {t}")


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 0, 1), (1, 2, 2)])
def test_conv_matches_correlation_oracle(stride, padding, dilation):
    rng = rng_for(f"conv-{stride}-{padding}-{dilation}")
    w = rng.integers(-256, 255, (3, 2, 3, 3))
    s = (rng.random((2, 9, 8)) < 0.5).astype(np.int64)
    xp = np.pad(s, ((0, 0), (padding, padding), (padding, padding)))
    k = 3
    span = dilation * (k - 1) + 1
    ho = (xp.shape[1] - span) // stride + 1
    wo = (xp.shape[2] - span) // stride + 1
    ref = np.zeros((3, ho, wo), np.int64)
    for o in range(3):
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, i * stride:i * stride + span:dilation,
                           j * stride:j * stride + span:dilation]
                ref[o, i, j] = np.sum(patch * w[o])
    p = lk.ConvParams(jnp.asarray(w, jnp.int32), (stride, stride), (padding, padding),
                      (dilation, dilation), 1)
    np.testing.assert_array_equal(np.asarray(lk.conv(p, jnp.asarray(s))), ref)


# ----------------------------------------------------------------------------- netx packing


def test_netx_packing_keeps_the_integer_sum():
    """For integer weights in netx's range the packed weights and exponent give W @ s."""
    rng = rng_for("packing")
    for trial in range(200):
        lo, hi = [(-256, 254), (0, 255), (-255, -1), (-9, 9), (-128, 127)][trial % 5]
        w = rng.integers(lo, hi + 1, (6, 9)) * 2 ** int(rng.integers(0, 3))
        w = np.clip(w, lo, hi)
        if not np.any(w):
            continue
        if lo < 0 < hi and w.max() <= 0 and w.min() < -128:
            continue  # the sign-mode mismatch, tested below
        assert check_packing(w), w
        p, _ = netx_dense_params(w)
        s = (rng.random(9) < 0.5).astype(np.int64)
        assert np.array_equal(shift_oracle(p.weight.astype(np.int64) @ s, int(p.weight_exp)),
                              w @ s)


def test_netx_packing_sign_mode_mismatch_is_detected():
    """netx calls a matrix with zeros and negatives 'mixed', Lava calls it 'inhibitory':
    with a weight below -128 and an odd weight, Lava's truncation count is -1 and NumPy
    shifts everything to 0; at -128 netx doubles it to -256, which Lava clips to -255
    (pinned against Lava in test_loihi_lava.py)."""
    w = np.array([[-255, 0, -3], [-7, -1, 0]])
    assert not check_packing(w)
    p, _ = netx_dense_params(w)
    assert not np.any(p.weight)
    assert not check_packing(np.array([[-128, 0, -3], [-7, -1, 0]]))  # -256 clips to -255
    assert check_packing(np.array([[-127, 0, -3], [-7, -1, 0]]))


def test_lava_clips_inhibitory_weights_to_255():
    """All weights negative: netx scales for -256 but Lava's clip_weights negates and clips
    to [0, 255], so -256 becomes -255 (pinned against Lava in test_loihi_lava.py)."""
    w = np.array([[-256, -3], [-7, -1]])
    assert not check_packing(w)
    p, _ = netx_dense_params(w)
    assert p.weight.min() == -255 and check_packing(np.array([[-255, -3], [-7, -1]]))


# ----------------------------------------------------------------------------- paper LIF task


def lif_task_layers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        g = nirjax.read(nirjax.example_path("lif_norse"))
    return Q.layers_from_program(nirjax.build_program(g, DT, Semantics()))


def test_paper_lif_task_netx_route_paper_scale_is_bit_exact():
    """scale='paper' gives the importer's integers (w 10, vDecay 163, vThMant 25) and
    reproduces Lava's CPU fixed-point trace (voltage included) and the Loihi 2 chip's
    spike steps 461, 511, 711, 761."""
    shape, layers, violations = lif_task_layers()
    assert violations == [] and shape == (1,)
    net = Q.quantize(layers, DT, input_shape=shape, scale="paper")
    (q,) = net.layers
    assert (int(q.weight[0, 0]), q.v_decay, q.i_decay, q.v_th) == (10, 163, 4096, 25)
    ref = np.loadtxt(DATA / "lif_lava_cpu_fixed.csv", delimiter=",")
    chip = np.loadtxt(DATA / "lif_lava_loihi_fixed.csv", delimiter=",")
    spikes, _, v = lava_harness.kernel_loop(net, ref[:, 0].reshape(-1, 1, 1), record_state=True)
    z = spikes[0].ravel()
    assert np.flatnonzero(z).tolist() == [461, 511, 711, 761]
    np.testing.assert_array_equal(v[0].ravel(), ref[:, 1])
    np.testing.assert_array_equal(z != 0, chip[:, 2] != 0)


def test_paper_lif_task_netx_route_auto_scale_matches_chip():
    """The default mapping (full 8-bit weight, rounded decay) spikes where the chip did."""
    shape, layers, _ = lif_task_layers()
    net = Q.quantize(layers, DT, input_shape=shape)
    (q,) = net.layers
    assert q.weight[0, 0] in (254, 255) and q.v_decay == 164
    chip = np.loadtxt(DATA / "lif_lava_loihi_fixed.csv", delimiter=",")
    spikes, _, _ = lava_harness.kernel_loop(net, chip[:, 0].reshape(-1, 1, 1))
    assert np.flatnonzero(spikes[0].ravel()).tolist() == [461, 511, 711, 761]


# ----------------------------------------------------------------------------- mapping


def _lif(n, tau, thr=1.0, **kw):
    f = lambda v: np.broadcast_to(np.asarray(v, np.float32), (n,)).copy()
    return nir.LIF(tau=f(tau), r=f(kw.get("r", 1.0)), v_leak=f(kw.get("v_leak", 0.0)),
                   v_threshold=f(thr), v_reset=f(kw.get("v_reset", 0.0)))


def _cuba(n, tau_syn, tau_mem, thr=1.0, **kw):
    f = lambda v: np.broadcast_to(np.asarray(v, np.float32), (n,)).copy()
    return nir.CubaLIF(tau_syn=f(tau_syn), tau_mem=f(tau_mem), r=f(kw.get("r", 1.0)),
                       v_leak=f(kw.get("v_leak", 0.0)), v_threshold=f(thr),
                       v_reset=f(kw.get("v_reset", 0.0)), w_in=f(kw.get("w_in", 1.0)))


def chain(*specs, n_in=4):
    """Input -> (Affine, neuron) ... -> Output."""
    nodes = {"input": nir.Input(input_type=np.array([n_in]))}
    edges, prev, size = [], "input", n_in
    for i, (w, b, neuron) in enumerate(specs):
        nodes[f"fc{i}"] = nir.Affine(weight=np.asarray(w, np.float32),
                                     bias=np.asarray(b, np.float32))
        nodes[f"n{i}"] = neuron
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"n{i}")]
        prev, size = f"n{i}", np.shape(w)[0]
    nodes["output"] = nir.Output(output_type=np.array([size]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def layers_of(graph, dt=1e-3):
    return Q.layers_from_program(nirjax.build_program(graph, dt, Semantics()))


def test_auto_mapping_integers_follow_the_equations():
    """W_int = round(vth g r W / theta), bias = round(vth g (r b + v_leak) / theta),
    vDecay = round(4096 dt/tau), with vth the largest that fits; per-neuron thresholds go
    into per-row weight scales."""
    rng = rng_for("auto-map")
    w = rng.normal(0, 1, (3, 4))
    b = np.array([0.1, -0.2, 0.0])
    lif = _lif(3, 4e-3, thr=[1.0, 2.0, 0.5], v_leak=[0.0, 0.1, 0.0])
    shape, layers, v = layers_of(chain((w, b, lif)))
    assert v == []
    net = Q.quantize(layers, 1e-3, input_shape=shape)
    (q,) = net.layers
    g, theta = 0.25, np.array([1.0, 2.0, 0.5])
    ratio = g * w.astype(np.float32).astype(np.float64) / theta[:, None]
    assert np.abs(np.round(q.v_th * ratio) - q.weight).max() <= 1
    assert q.v_th == int(np.floor(254 / ratio.max())) or q.v_th == int(
        np.floor(256 / -ratio.min()))
    assert max(q.weight.max(), -q.weight.min()) >= 253
    bias = q.v_th * g * (np.float32(b).astype(np.float64) + [0.0, 0.1, 0.0]) / theta
    np.testing.assert_allclose(q.bias, np.round(bias), atol=1)
    assert q.v_decay == 1024 and q.i_decay == 4096
    w_round = [r for r in net.roundings if r.quantity == "weight"][0]
    assert 0 < w_round.error <= 0.5 / (q.v_th * (g / theta).min()) + 1e-12  # half a step
    assert "v_decay" in net.report() and "fc0.weight" in net.report()


def test_cubalif_and_if_mapping():
    rng = rng_for("cuba-map")
    w1, w2 = rng.normal(0, 1, (5, 4)), rng.normal(0, 1, (3, 5))
    g = chain((w1, np.zeros(5), _cuba(5, 2e-3, 8e-3, w_in=2.0)),
              (w2, np.zeros(3), nir.IF(r=np.full(3, 0.5, np.float32),
                                       v_threshold=np.full(3, 2.0, np.float32),
                                       v_reset=np.zeros(3, np.float32))))
    shape, layers, v = layers_of(g)
    assert v == []
    net = Q.quantize(layers, 1e-3, input_shape=shape)
    cuba, iff = net.layers
    assert (cuba.i_decay, cuba.v_decay) == (2048, 512)
    ratio = (1e-3 / 8e-3) * (1e-3 / 2e-3) * 2.0 * w1.astype(np.float32)
    assert np.abs(np.round(cuba.v_th * ratio) - cuba.weight).max() <= 1
    assert (iff.i_decay, iff.v_decay) == (4096, 0)
    assert np.abs(np.round(iff.v_th * 0.25 * w2.astype(np.float32)) - iff.weight).max() <= 1


def test_every_violation_is_reported_at_once():
    """A graph with several problems gets one error listing each: node, rule, limit, value."""
    rng = rng_for("violations")
    lif0 = _lif(3, 2e-3, v_reset=0.3)                       # reset not to 0
    nodes = {
        "input": nir.Input(input_type=np.array([4])),
        "d": nir.Delay(delay=np.full(4, 0.1, np.float32)),  # 100 steps at dt = 1e-3
        "fc0": nir.Affine(weight=rng.normal(0, 1, (3, 4)).astype(np.float32),
                          bias=np.zeros(3, np.float32)),
        "n0": lif0,
        "fc1": nir.Affine(weight=rng.normal(0, 1, (2, 3)).astype(np.float32),
                          bias=np.zeros(2, np.float32)),
        "n1": _lif(2, 5e-4),                                # tau below dt
        "output": nir.Output(output_type=np.array([2])),
    }
    edges = [("input", "d"), ("d", "fc0"), ("fc0", "n0"), ("n0", "fc1"), ("fc1", "n1"),
             ("n1", "output")]
    shape, layers, structural = layers_of(nir.NIRGraph(nodes=nodes, edges=edges))
    assert structural == []
    with pytest.raises(nirjax.LoweringError) as err:
        Q.quantize(layers, 1e-3, input_shape=shape)
    found = {(x.node, x.rule): x for x in err.value.violations}
    assert found[("d", "delay-max")].value == 100 and found[("d", "delay-max")].limit == 62
    assert found[("n0", "reset-to-zero")].value == pytest.approx(0.3)
    assert found[("n1", "decay-range")].value == pytest.approx(5e-4)
    assert isinstance(err.value, nirjax.NirjaxError)
    text = str(err.value)
    assert "node 'd'" in text and "node 'n0'" in text and "node 'n1'" in text


def test_structural_violations():
    """Non-chain graphs: an unsupported node, a non-spiking readout, two weights in a row;
    parameter violations of the layers that can be read come with them."""
    rng = rng_for("structure")
    aff = lambda o, i: nir.Affine(weight=rng.normal(0, 1, (o, i)).astype(np.float32),
                                  bias=np.zeros(o, np.float32))
    li = nir.LI(tau=np.full(3, 1e-2, np.float32), r=np.ones(3, np.float32),
                v_leak=np.zeros(3, np.float32))
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])), "a": aff(3, 4),
                            "n": _lif(3, 2e-3, v_reset=0.5), "b": aff(3, 3), "li": li,
                            "output": nir.Output(output_type=np.array([3]))},
                     edges=[("input", "a"), ("a", "n"), ("n", "b"), ("b", "li"),
                            ("li", "output")])
    _, _, v = Q.check_program(nirjax.build_program(g, 1e-3, Semantics()))
    rules = {(x.node, x.rule) for x in v}
    assert rules == {("li", "node-type"), ("n", "reset-to-zero")}, rules
    g2 = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([4])), "a": aff(3, 4), "b": aff(3, 3),
               "n": _lif(3, 2e-3), "ro": aff(2, 3),
               "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "a"), ("a", "b"), ("b", "n"), ("n", "ro"), ("ro", "output")])
    rules = {(x.node, x.rule) for x in layers_of(g2)[2]}
    assert ("b", "chain") in rules and ("output", "output-spikes") in rules


def test_cubalif_bias_is_a_stated_approximation():
    rng = rng_for("bias-warn")
    g = chain((rng.normal(0, 1, (3, 4)), np.array([0.2, 0.0, -0.1]), _cuba(3, 2e-3, 4e-3)))
    shape, layers, _ = layers_of(g)
    net = Q.quantize(layers, 1e-3, input_shape=shape)
    (warning,) = net.warnings
    assert warning.rule == "bias-current" and warning.severity == "warning"
    # how much: tau_syn = 2 steps; per step the membrane gets g_mem r b / theta = 0.25 * 0.2
    # of the threshold, so the whole bias from step 0 adds 0.05 / (dt / tau_syn) = 0.1
    assert "membrane bias" in str(warning) and "2 steps" in str(warning)
    assert "up to 0.1 threshold" in str(warning)


def test_recurrent_and_delays_are_read():
    rng = rng_for("rec-delay")
    nodes = {
        "input": nir.Input(input_type=np.array([4])),
        "fc": nir.Linear(weight=rng.normal(0, 1, (3, 4)).astype(np.float32)),
        "d": nir.Delay(delay=np.array([0.0, 2e-3, 5e-3], np.float32)),  # per output
        "n": _lif(3, 3e-3),
        "fc2": nir.Linear(weight=rng.normal(0, 1, (2, 3)).astype(np.float32)),
        "m": _cuba(2, 2e-3, 4e-3),
        "rec": nir.Linear(weight=rng.normal(0, 1, (2, 2)).astype(np.float32)),
        "output": nir.Output(output_type=np.array([2])),
    }
    edges = [("input", "fc"), ("fc", "d"), ("d", "n"), ("n", "fc2"), ("fc2", "m"),
             ("m", "rec"), ("rec", "m"), ("m", "output")]
    shape, layers, v = layers_of(nir.NIRGraph(nodes=nodes, edges=edges))
    assert v == []
    a, b = layers
    np.testing.assert_array_equal(a.delay, [[0] * 4, [2] * 4, [5] * 4])
    np.testing.assert_allclose(a.delay_exact, a.delay, atol=1e-3)
    assert b.rec_node == "rec" and a.delay_nodes == ("d",)
    net = Q.quantize(layers, 1e-3, input_shape=shape)
    assert [q.kind for q in net.layers] == ["dense", "dense_rec"]


def test_netx_file_round_trip(tmp_path):
    rng = rng_for("file")
    g = chain((rng.normal(0, 1, (5, 4)), rng.normal(0, 0.1, 5), _lif(5, 3e-3)),
              (rng.normal(0, 1, (3, 5)), np.zeros(3), _lif(3, 5e-3, thr=2.0)))
    shape, layers, _ = layers_of(g)
    net = Q.quantize(layers, 1e-3, input_shape=shape)
    write_netx(tmp_path / "net.net", net)
    f = read_netx(tmp_path / "net.net")["layers"]
    assert [x["type"] for x in f] == ["input", "dense", "dense"]
    assert f[0]["shape"].tolist() == [4] and "neuron" not in f[0]
    for q, x in zip(net.layers, f[1:]):
        np.testing.assert_array_equal(x["weight"], q.weight)
        assert x["neuron"]["type"] == "CUBA"
        assert (x["neuron"]["iDecay"], x["neuron"]["vDecay"], x["neuron"]["vThMant"]) == (
            q.i_decay, q.v_decay, q.v_th)
    np.testing.assert_array_equal(f[1]["bias"], net.layers[0].bias)
    with pytest.raises(nirjax.NirFileError):
        read_netx(tmp_path / "missing.net")


def test_resources_and_chip_limits():
    big = Q.FloatLayer(name="big", neuron="IF",
                       params={"v_threshold": np.ones(1_100_000), "r": np.ones(1_100_000),
                               "v_reset": np.zeros(1_100_000)},
                       weight=np.ones((1, 1)), weight_node="w")
    r = Q.resources([big])
    assert r["total"]["neurons"] == 1_100_000 and r["total"]["cores"] == 135
    rules = {x.rule for x in Q.check([big], 1e-3)}
    assert {"cores", "neurons-per-chip"} <= rules


def test_kernel_params_follow_the_file():
    rng = rng_for("kparams")
    g = chain((rng.normal(0, 1, (5, 4)), rng.normal(0, 0.1, 5), _lif(5, 3e-3)))
    shape, layers, _ = layers_of(g)
    (q,) = Q.quantize(layers, 1e-3, input_shape=shape).layers
    syn, rec, neuron = kernel_params(q)
    assert rec is None and int(neuron.du) == q.i_decay - 1 and int(neuron.dv) == q.v_decay
    s = (rng.random(4) < 0.6).astype(np.int64)
    np.testing.assert_array_equal(np.asarray(lk.dense(syn, jnp.asarray(s))), q.weight @ s)


def test_importer_lif_is_the_cuba_kernel_behind_its_dense():
    """The lava_fixed profile's LIF (the NIR paper importer's Dense(int(256 dt/tau)) -> LIF)
    equals Lava's LIF oracle fed a = w [x != 0], with the importer's integers."""
    rng = rng_for("lava-fixed")
    n, T = 6, 80
    tau = np.full(n, 2.5e-3)
    p = lk.importer_lif_params(jnp.asarray(tau), jnp.full(n, 0.1), 1e-4)
    assert (int(p.w[0]), int(p.neuron.dv[0]), int(p.neuron.du[0]), int(p.neuron.vth[0])) == (
        10, 163, 4095, 25)
    x = (rng.random((T, n)) < 0.5).astype(np.int32) * rng.integers(1, 4, (T, n))
    s_ref, u_ref, v_ref = lava_lif_oracle(10 * (x != 0), 4095, 163, 25, np.zeros(n, np.int64))
    state = lk.cuba_init_state(p.neuron, (n,))
    for t in range(T):
        state, z = lk.importer_lif_step(p, state, jnp.asarray(x[t]))
        np.testing.assert_array_equal(np.asarray(state.u), u_ref[t])
        np.testing.assert_array_equal(np.asarray(state.v), v_ref[t])
        np.testing.assert_array_equal(np.asarray(z), s_ref[t])
    assert s_ref.sum() > 0
