"""Loihi 2 lowering against Lava itself: netx HDF5 files run in Lava's fixed-point simulator.

Each case is a netx file written by ``nirjax.lowering.loihi.netx.write_netx`` (from a NIR
graph through ``layers_from_program`` and ``quantize``, or from integer layers built here to
hit Lava's edge cases). ``lava.lib.dl.netx.hdf5.Network(net_config=path)`` loads it in the
``lava`` environment (lava-nc 0.10.0, lava-dl 0.6.0; ``tests/peers/setup_peers.sh``) and runs
it with ``Loihi2SimCfg(select_tag="fixed_pt")`` on random spike inputs; nirjax's integer
kernels (``kernels/loihi.py``) run the same quantized network step by step
(``tests/peers/lava_harness.py:kernel_loop``). Spikes of every layer at every step, and the
integer current ``u`` and voltage ``v`` of every neuron, must be identical.

A missing ``lava`` environment skips these tests with the reason; with
``NIRJAX_PEERS_REQUIRED=1`` it is a failure.
"""

from __future__ import annotations

import os
import pathlib
import sys
import warnings

import nir
import numpy as np
import pytest

import nirjax
from nirjax.lowering.loihi import quantize as Q
from nirjax.lowering.loihi.netx import check_packing, write_netx
from nirjax.semantics import Semantics

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
import lava_harness as H  # noqa: E402

pytestmark = [pytest.mark.peers, pytest.mark.slow]

REQUIRED = os.environ.get("NIRJAX_PEERS_REQUIRED") == "1"
DATA = pathlib.Path(__file__).parent / "data" / "paper"
PINNED = {"lava-nc": "0.10.0", "lava-dl": "0.6.0"}
T, B = 50, 3


# the NIR graphs (the same builders as the lowering tests)
from loihi_cases import g_conv, g_delays, g_mlp, g_recurrent, rng_for  # noqa: E402


def lower(g, dt, scale="auto"):
    shape, layers, violations = Q.layers_from_program(nirjax.build_program(g, dt, Semantics()))
    assert violations == [], violations
    return Q.quantize(layers, dt, input_shape=shape, scale=scale)


# ----------------------------------------------------------------------------- integer edge cases


def int_layer(name, w, wr=None, delay=None, bias=None, i_decay=4096, v_decay=100, vth=1000):
    w = np.asarray(w)
    n, n_in = w.shape
    return Q.LoihiLayer(name, "dense_rec" if wr is not None else "dense", w, wr, delay, bias,
                        i_decay, v_decay, vth, (n,), (n_in,), None, False, {}, np.ones(n))


def int_net(*layers):
    return Q.LoihiNetwork(layers[0].in_shape, tuple(layers), 1e-3, "auto", (), ())


def edge_cases(rng):
    """Integer networks at Lava's limits. Returns {id: (network, spike probability)}."""
    full = lambda *s: rng.integers(-256, 255, s)
    cases = {}
    # 24-bit current wrap and voltage clip: 700 inputs at full weight, 13-bit biases, no decay
    w = np.full((4, 700), 254)
    w[1], w[2], w[3] = -256, 100, full(700)
    cases["wrap_clip"] = (int_net(int_layer(
        "a", w, bias=np.array([4095, -4096, 0, 17]), i_decay=0, v_decay=0, vth=131071)), 0.9)
    # small weights: netx packs them with a negative weight exponent; random decays
    cases["weight_exp"] = (int_net(
        int_layer("a", rng.integers(-3, 4, (9, 7)), i_decay=1500, v_decay=40, vth=2),
        int_layer("b", rng.integers(0, 6, (5, 9)) * 4, i_decay=4096, v_decay=0, vth=6),
        int_layer("c", -rng.integers(1, 9, (3, 5)), wr=rng.integers(-2, 3, (3, 3)),
                  bias=np.array([30, 40, 50]), i_decay=300, v_decay=900, vth=3)), 0.5)
    # netx/Lava sign-mode mismatch: Lava zeroes this inhibitory matrix with zeros
    w = -rng.integers(0, 256, (6, 10))
    w[0, 0], w[1, 1] = 0, -255
    assert not check_packing(w)
    cases["netx_zeroes"] = (int_net(int_layer("a", full(10, 8), vth=50),
                                    int_layer("b", w, bias=np.full(6, 60), vth=10)), 0.5)
    # all weights negative with -256: Lava clips it to -255; mixed 255: netx clips to 254
    w = -rng.integers(1, 257, (5, 8))
    w[0, 0] = -256
    w2 = full(4, 5)
    w2[0, 0] = 255
    cases["clipped"] = (int_net(int_layer("a", w, bias=np.full(5, 100), vth=5),
                                int_layer("b", w2, vth=20)), 0.5)
    # delays up to 62 steps and a recurrent layer with mixed/excitatory parts
    d = rng.integers(0, 63, (7, 5))
    d[0, 0] = 62
    cases["delay62_rec"] = (int_net(
        int_layer("a", full(7, 5), delay=d, vth=40, v_decay=10),
        int_layer("b", rng.integers(0, 120, (4, 7)), wr=rng.integers(-120, 120, (4, 4)),
                  vth=60)), 0.4)
    return cases


# ----------------------------------------------------------------------------- running


def _cases():
    rng = rng_for("loihi-lava")
    dt = 1e-3
    nets = {
        "mlp": (lower(g_mlp(rng), dt), 0.3),
        "recurrent": (lower(g_recurrent(rng), dt), 0.3),
        "delays": (lower(g_delays(rng, dt), dt), 0.4),
        "conv": (lower(g_conv(rng), dt), 0.3),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        braille = nirjax.read(nirjax.example_path("braille_bias_zero"))
    nets["braille"] = (lower(braille, 1e-4), 0.3)
    nets.update(edge_cases(rng))
    inputs = {}
    for k, (net, p) in nets.items():
        inputs[k] = (rng.random((T, B) + tuple(net.input_shape)) < p).astype(np.int32)
    # the NIR paper's LIF task, both mappings, on the published input
    ref = np.loadtxt(DATA / "lif_lava_cpu_fixed.csv", delimiter=",")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        lif_task = nirjax.read(nirjax.example_path("lif_norse"))
    for scale in ("paper", "auto"):
        nets[f"lif_task_{scale}"] = (lower(lif_task, 1e-4, scale), None)
        inputs[f"lif_task_{scale}"] = ref[:, 0].reshape(-1, 1, 1).astype(np.int32)
    return {k: net for k, (net, _) in nets.items()}, inputs


NETS, INPUTS = _cases()
_RESULTS: dict = {}


@pytest.fixture(scope="module")
def lava(tmp_path_factory):
    """Every case run once in Lava (one subprocess), or skip / fail without the env."""
    if H.lava_python() is None:
        msg = (f"lava environment not found under {H.peers_dir()}: build it with "
               f"NIRJAX_PEERS_ONLY=lava tests/peers/setup_peers.sh")
        if REQUIRED:
            pytest.fail(msg + " (NIRJAX_PEERS_REQUIRED=1)")
        pytest.skip(msg)
    if not _RESULTS:
        tmp = tmp_path_factory.mktemp("netx")
        jobs = []
        for k, net in NETS.items():
            path = tmp / f"{k}.net"
            write_netx(path, net)
            jobs.append((k, path, INPUTS[k], True))
        _RESULTS.update(H.run_lava(jobs))
    return _RESULTS


def test_lava_versions(lava):
    for package, version in PINNED.items():
        assert lava["versions"].get(package) == version, lava["versions"]


@pytest.mark.parametrize("case", sorted(NETS))
def test_netx_in_lava_equals_nirjax_kernels(lava, case):
    """Same spikes per layer and step, same integer u and v, as nirjax's Loihi kernels."""
    res = lava[case]
    assert res.error is None, f"Lava failed on {case}:\n{res.error}"
    net = NETS[case]
    spikes, us, vs = H.kernel_loop(net, INPUTS[case], record_state=True)
    assert sorted(res.spikes) == list(range(len(net.layers)))
    for k, q in enumerate(net.layers):
        ref = res.spikes[k]
        assert ref.shape == spikes[k].shape, (ref.shape, spikes[k].shape)
        diff = np.argwhere(ref != spikes[k])
        assert diff.size == 0, (
            f"{case} layer {q.name!r}: {len(diff)} spike values differ, first at (step, "
            f"sample, neuron) {tuple(diff[0])}; spikes Lava {ref.sum():g} vs nirjax "
            f"{spikes[k].sum()}")
        np.testing.assert_array_equal(res.u[k], us[k], err_msg=f"{case} {q.name} u")
        np.testing.assert_array_equal(res.v[k], vs[k], err_msg=f"{case} {q.name} v")


def test_cases_exercise_the_network(lava):
    """Guard against vacuous agreement: every layer of the graph cases spikes, and the
    saturating case reaches the 24-bit limits."""
    for case in ("mlp", "recurrent", "delays", "conv", "braille", "weight_exp", "delay62_rec"):
        for k, q in enumerate(NETS[case].layers):
            assert lava[case].spikes[k].sum() > 0, (case, q.name)
    u = lava["wrap_clip"].u[0]
    v = lava["wrap_clip"].v[0]
    assert np.abs(u).max() > 2 ** 22 and np.abs(v).max() == 2 ** 23 - 1


def test_lava_zeroes_what_netx_packs_with_mismatched_sign_modes(lava):
    """Pins the netx/Lava quirk the quantizer avoids: an inhibitory matrix with zeros,
    |w| > 128 and odd weights reaches the neurons as all zeros (only the bias drives it)."""
    u = lava["netx_zeroes"].u[1]
    assert not np.any(u)


def test_paper_lif_task_in_lava(lava):
    """The lowered NIR paper LIF task, run by Lava from the netx file, spikes at the Loihi 2
    chip's steps; with scale='paper' its voltage is the published CPU fixed-point trace."""
    chip = np.loadtxt(DATA / "lif_lava_loihi_fixed.csv", delimiter=",")
    cpu = np.loadtxt(DATA / "lif_lava_cpu_fixed.csv", delimiter=",")
    for scale in ("paper", "auto"):
        z = lava[f"lif_task_{scale}"].spikes[0].ravel()
        assert np.flatnonzero(z).tolist() == [461, 511, 711, 761], scale
        np.testing.assert_array_equal(z != 0, chip[:, 2] != 0)
    np.testing.assert_array_equal(lava["lif_task_paper"].v[0].ravel(), cpu[:, 1])


def test_benchmark_entry_point(tmp_path):
    """run_lava times a batch (one build, samples one after the other) without states."""
    if H.lava_python() is None:
        pytest.skip("lava environment not found")
    net = NETS["mlp"]
    write_netx(tmp_path / "mlp.net", net)
    x = INPUTS["mlp"][:20, :2]
    res = H.run_lava([("bench", tmp_path / "mlp.net", x, False)])["bench"]
    assert res.error is None and res.seconds > 0 and res.build_seconds > 0
    spikes, _, _ = H.kernel_loop(net, x)
    for k in range(len(net.layers)):
        np.testing.assert_array_equal(res.spikes[k], spikes[k])
