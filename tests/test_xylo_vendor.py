"""nirjax's Xylo lowering against SynSense's own toolchain: Rockpool 3.1.0 + xylosim 0.1.3.

Everything vendor-side runs in the ``xylo`` environment built by
``tests/peers/setup_peers.sh`` (under ``$NIRJAX_PEERS_DIR`` or ``.peers/``), in one
subprocess (``tests/peers/xylo_runner.py``). A missing environment skips these tests with the
reason; with ``NIRJAX_PEERS_REQUIRED=1`` it fails them.

* Simulation: seeded random specifications for all three chips (mixed-sign weights,
  dashes 0..15, thresholds including 0, biases, weight shifts up to 8, inputs of up to 40
  events per channel and step, cases driven into 16-bit saturation and 31-spike bursts) and
  the NIR paper's Braille graph are exported with :meth:`XyloSpec.export`; XyloSim is built
  from the ``.npz`` as is (``from_specification(**np.load(path))``, the export round trip)
  and run sample by sample; nirjax's kernel, stepped in a plain Python loop over batch and
  time, must give the same output spikes, hidden spikes, membranes and synaptic currents at
  every step, bit for bit.
* Quantization: random float networks built as Rockpool ``LinearTorch``/``LIFTorch``
  chains, mapped by the chip's ``mapper`` and quantized by ``global_quantize`` (plain and
  fuzzy) or ``channel_quantize``; nirjax's :func:`quantize_network` of the same network must
  give every specification array identical (``compat="rockpool"``, Rockpool's bugs
  included). The Braille graph lowered by nirjax equals Rockpool's configuration of the same
  network at ``dt = 1e-4``.
* Rockpool bugs pinned (each test fails when a release fixes it): the IMU mapper fails on a
  network with one hidden layer; Rockpool's own NIR import cannot map the Braille graph
  (its importer derives a different ``dt`` per layer from ``tau_mem/(1 + r)``).
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
import xylo_cases  # noqa: E402
import xylo_harness  # noqa: E402

from nirjax.kernels import xylo as xk  # noqa: E402
from nirjax.lowering.xylo import from_nir as xylo_nir, quantize as xq  # noqa: E402

pytestmark = pytest.mark.peers
REQUIRED = os.environ.get("NIRJAX_PEERS_REQUIRED") == "1"
BRAILLE = os.path.join(os.path.dirname(__file__), "data", "paper",
                       "braille_noDelay_noBias_subtract.nir")

SIM_CASES = {f"sim_{t}_{'sat' if s else 'plain'}": (t, s) for t in xylo_cases.SHAPES
             for s in (False, True)}
QUANT_CASES = {
    # id: (target, hidden layers (N, S, recurrent), method, random_chain kwargs)
    "q_a2_global_1syn": ("xylo-audio2", [(24, 1, True)], "global", {}),
    "q_a2_global_2syn": ("xylo-audio2", [(24, 2, True)], "global", {}),
    "q_a2_global_chain": ("xylo-audio2", [(12, 2, True), (14, 1, False)], "global", {}),
    "q_a2_global_overflow": ("xylo-audio2", [(24, 2, True)], "global", {"big_threshold": True}),
    "q_a2_fuzzy": ("xylo-audio2", [(24, 2, True)], "fuzzy", {}),
    "q_a2_channel_1syn": ("xylo-audio2", [(24, 1, True)], "channel", {}),
    "q_a2_channel_overflow": ("xylo-audio2", [(24, 2, True)], "channel",
                              {"big_threshold": True}),
    "q_a3_global_2syn": ("xylo-audio3", [(24, 2, True)], "global", {}),
    "q_a3_channel_chain": ("xylo-audio3", [(12, 2, True), (14, 2, True)], "channel", {}),
    "q_imu_global_chain": ("xylo-imu", [(12, 1, True), (14, 1, False)], "global", {}),
    "q_imu_channel_chain": ("xylo-imu", [(12, 1, True), (14, 1, True)], "channel", {}),
}
# Rockpool 3.1.0 raises on these (pinned in test_rockpool_channel_quantize_index_bug)
BUG_CASES = {
    # channel_quantize: a threshold overflow on hidden neuron N_IEN indexes w_in[:, N_IEN]
    "bug_channel_overflow_at_ien": ("xylo-imu", [(12, 1, True), (14, 1, True)], "channel",
                                    {"big_threshold": True}),
}
T, B = 100, 3


def _skip_or_fail():
    msg = (f"xylo environment not found under {xylo_harness.peers_dir()}: build it with "
           f"tests/peers/setup_peers.sh")
    if REQUIRED:
        pytest.fail(msg + " (NIRJAX_PEERS_REQUIRED=1)")
    pytest.skip(msg)


def _braille_chain() -> xylo_cases.ChainNet:
    """The Braille graph as the Rockpool network a user would build for Xylo."""
    g = nir.read(BRAILLE)
    n = g.nodes
    lif1, lif2 = n["lif1.lif"], n["lif2"]
    arrays = {
        "dt": np.asarray(1e-4), "n_hidden_layers": np.asarray(1),
        "w_in": np.asarray(n["fc1"].weight).T.astype(np.float32),
        "w_rec_0": np.asarray(n["lif1.w_rec"].weight).T.astype(np.float32),
        "tau_mem_0": np.asarray(lif1.tau_mem, np.float32),
        "tau_syn_0": np.asarray(lif1.tau_syn, np.float32)[:, None],
        "threshold_0": np.asarray(lif1.v_threshold, np.float32),
        "bias_0": np.asarray(lif1.v_leak, np.float32),
        "w_out": np.asarray(n["fc2"].weight).T.astype(np.float32),
        "tau_mem_out": np.asarray(lif2.tau_mem, np.float32),
        "tau_syn_out": np.asarray(lif2.tau_syn, np.float32),
        "threshold_out": np.asarray(lif2.v_threshold, np.float32),
        "bias_out": np.asarray(lif2.v_leak, np.float32)}
    return xylo_cases.ChainNet(arrays, [(40, 1, True)])


@functools.lru_cache(maxsize=None)
def _vendor():
    """Run every vendor job once (one subprocess); ``None`` when the environment is missing."""
    if xylo_harness.xylo_python() is None:
        return None
    jobs, files, inputs, specs, nets = [], {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (cid, (target, saturate)) in enumerate(SIM_CASES.items()):
            rng = np.random.default_rng(100 + i)
            arrays = xylo_cases.random_spec(rng, target, saturate=saturate)
            spec = xq.XyloSpec(xq.get_target(target), arrays, xq.XyloNames(
                hidden=(("hidden", 0, arrays["weights_rec"].shape[0]),)))
            path = os.path.join(tmp, f"{cid}.npz")
            spec.export(path)  # the file XyloSim is built from: the export round trip
            specs[cid] = spec
            inputs[cid] = xylo_cases.random_counts(rng, T, B, arrays["weights_in"].shape[0],
                                                   burst=saturate)
            files[f"{cid}.npz"] = path
            files[f"{cid}.x.npy"] = inputs[cid]
            jobs.append({"id": cid, "kind": "simulate", "target": target, "spec": f"{cid}.npz",
                         "x": f"{cid}.x.npy"})
        braille = xylo_nir.lower_nir(nir.read(BRAILLE), "xylo-audio2", 1e-4)
        path = os.path.join(tmp, "braille.npz")
        braille.export(path)
        specs["sim_braille"] = braille
        rng = np.random.default_rng(7)
        inputs["sim_braille"] = (rng.random((T, B, 12)) < 0.3).astype(np.int64)
        files.update({"braille.npz": path, "braille.x.npy": inputs["sim_braille"]})
        jobs.append({"id": "sim_braille", "kind": "simulate", "target": "xylo-audio2",
                     "spec": "braille.npz", "x": "braille.x.npy"})
        for i, (cid, (target, layers, method, kw)) in enumerate(
                list(QUANT_CASES.items()) + list(BUG_CASES.items())):
            seed = 200 + i if cid in QUANT_CASES else 210
            chain = xylo_cases.random_chain(np.random.default_rng(seed), layers, **kw)
            nets[cid] = chain
            files[f"{cid}.net.npz"] = chain.arrays
            jobs.append({"id": cid, "kind": "quantize", "target": target,
                         "net": f"{cid}.net.npz", "method": "channel" if method == "channel"
                         else "global", "fuzzy": method == "fuzzy"})
        nets["q_braille"] = _braille_chain()
        files["q_braille.net.npz"] = nets["q_braille"].arrays
        jobs.append({"id": "q_braille", "kind": "quantize", "target": "xylo-audio2",
                     "net": "q_braille.net.npz", "method": "global"})
        imu_single = xylo_cases.random_chain(np.random.default_rng(300), [(20, 1, True)])
        files["bug_imu.net.npz"] = imu_single.arrays
        jobs.append({"id": "bug_imu_one_hidden_layer", "kind": "quantize", "target": "xylo-imu",
                     "net": "bug_imu.net.npz", "method": "global"})
        jobs.append({"id": "bug_braille_from_nir", "kind": "from_nir", "target": "xylo-audio2",
                     "path": os.path.abspath(BRAILLE)})
        results, versions = xylo_harness.run_jobs(jobs, files)
    return results, versions, inputs, specs, nets


def _results():
    vendor = _vendor()
    if vendor is None:
        _skip_or_fail()
    return vendor


def test_vendor_versions():
    """The environment runs the pinned versions, and samna was never imported."""
    _, versions, *_ = _results()
    assert versions["rockpool"] == "3.1.0" and versions["xylosim"] == "0.1.3", versions
    assert versions["samna_imported"] is False


_step = jax.jit(xk.network_step)


@pytest.mark.parametrize("case", list(SIM_CASES) + ["sim_braille"])
def test_kernel_equals_xylosim_at_every_step(case):
    """Output spikes, hidden spikes, Vmem, Isyn (and Isyn2, Audio 2), Vmem_out, Isyn_out:
    the kernel stepped in a plain loop over batch and time equals XyloSim bit for bit."""
    results, _, inputs, specs, _ = _results()
    vendor = results[case]
    assert vendor.error is None, vendor.error
    params = specs[case].kernel_params()
    x = inputs[case]
    n_syn = params.hidden.w_in.shape[2]
    for b in range(x.shape[1]):
        state = xk.init_state(params)
        for t in range(x.shape[0]):
            state, rec = _step(params, state, jnp.asarray(x[t, b]))
            where = f"{case}: step {t}, sample {b}"
            np.testing.assert_array_equal(np.asarray(rec.out), vendor["out"][t, b], where)
            np.testing.assert_array_equal(np.asarray(rec.hidden_spikes),
                                          vendor["Spikes"][t, b], where)
            np.testing.assert_array_equal(np.asarray(rec.v), vendor["Vmem"][t, b], where)
            np.testing.assert_array_equal(np.asarray(rec.i_syn[:, 0]), vendor["Isyn"][t, b],
                                          where)
            if "Isyn2" in vendor and n_syn > 1:
                np.testing.assert_array_equal(np.asarray(rec.i_syn[:, 1]),
                                              vendor["Isyn2"][t, b], where)
            np.testing.assert_array_equal(np.asarray(rec.v_out), vendor["Vmem_out"][t, b],
                                          where)
            np.testing.assert_array_equal(np.asarray(rec.i_syn_out[:, 0]),
                                          vendor["Isyn_out"][t, b], where)


def _one_clip_step(params, state, counts):
    """The hidden step with each weight layer applied as ONE matrix product and one clip:
    what per-event saturation makes wrong (used to show the cases exercise it)."""
    def one_clip(k, w, shift, cap):
        add = jnp.einsum("c,cjs->js", jnp.clip(k, 0, cap), xk.shifted_weight(w, shift))
        return xk.Delivery(jnp.clip(add, -65535, 65535), jnp.full(add.shape, -32768),
                           jnp.full(add.shape, 32767))
    p = params.hidden
    d_hid = xk.compose(one_clip(counts, p.w_in, p.shift_in, 15),
                       one_clip(state.spikes, p.w_rec, p.shift_rec, 31))
    neuron, spikes = xk.neuron_step(p.neuron, xk.XyloNeuronState(state.i_syn, state.v), d_hid,
                                    31)
    return xk.XyloHiddenState(neuron.i_syn, neuron.v, spikes), neuron.i_syn


def test_simulation_cases_are_not_vacuous():
    """Across the cases XyloSim's readouts spike and hidden neurons burst to 31 spikes; in
    the saturating cases a matrix product with one clip per layer (instead of one
    saturation per event) gives different currents than XyloSim, so saturation is tested."""
    results, _, inputs, specs, _ = _results()
    assert sum(results[c]["out"].sum() > 0 for c in SIM_CASES) >= len(SIM_CASES) - 1
    assert results["sim_braille"]["Spikes"].sum() > 0
    for cid, (target, saturate) in SIM_CASES.items():
        if not saturate:
            continue
        r = results[cid]
        assert r["Spikes"].max() == 31, cid
        params = specs[cid].kernel_params()
        run = jax.jit(lambda xs: jax.lax.scan(lambda st, x: _one_clip_step(params, st, x),
                                              xk.hidden_init_state(params.hidden), xs)[1])
        i_syn = run(jnp.asarray(inputs[cid][:, 0]))
        assert np.any(np.asarray(i_syn[..., 0]) != r["Isyn"][:, 0]), cid


def _compare_spec(ours: dict, theirs, case):
    for key in xq.SPEC_KEYS:
        mine = np.asarray(ours[key])
        vendor = np.asarray(theirs[key])
        if key.startswith("weights") and vendor.ndim == 2 and mine.ndim == 3:
            vendor = vendor[..., None]
        assert mine.shape == vendor.shape, (case, key, mine.shape, vendor.shape)
        np.testing.assert_array_equal(mine, vendor, f"{case}: {key}")


@pytest.mark.parametrize("case", list(QUANT_CASES))
def test_quantization_equals_rockpool(case):
    """Every array of the chip specification equals Rockpool's mapper + quantizer output."""
    results, _, _, _, nets = _results()
    vendor = results[case]
    assert vendor.error is None, vendor.error
    target, _, method, _ = QUANT_CASES[case]
    spec = xq.quantize_network(nets[case].float_network(), target,
                               method="channel" if method == "channel" else "global",
                               fuzzy_scaling=method == "fuzzy")
    _compare_spec(spec.arrays, vendor, case)
    # and the float layout before quantization equals Rockpool's mapper output
    mapped = xq.map_network(nets[case].float_network(), target)
    for key in ("weights_in", "weights_rec", "weights_out", "dash_mem", "dash_syn",
                "dash_syn_2", "threshold", "bias", "threshold_out", "bias_out"):
        theirs = vendor[f"float:{key}"]
        theirs = theirs[..., None] if key.startswith("weights_") and theirs.ndim == 2 \
            and key != "weights_out" else theirs
        np.testing.assert_array_equal(mapped[key], theirs, f"{case}: float {key}")


def test_braille_lowering_equals_rockpool():
    """nirjax's lowering of the Braille graph at dt = 1e-4 gives exactly the configuration
    Rockpool produces for the same network (LinearTorch/LIFTorch, mapper, global_quantize)."""
    results, _, _, specs, _ = _results()
    vendor = results["q_braille"]
    assert vendor.error is None, vendor.error
    _compare_spec(specs["sim_braille"].arrays, vendor, "braille")


def test_rockpool_imu_mapper_fails_on_one_hidden_layer():
    """Pinned Rockpool 3.1.0 bug (syns63300/xylo_mapper.py: the hidden layer is both IEN and
    OEN and gets allocated twice); nirjax maps such networks."""
    results, *_ = _results()
    err = results["bug_imu_one_hidden_layer"].error
    assert err is not None, "Rockpool's IMU mapper now maps one hidden layer: update the docs"
    assert "is not in list" in err


def test_rockpool_from_nir_cannot_map_braille():
    """Pinned Rockpool 3.1.0 behaviour: ``from_nir`` gives each layer ``dt = min(tau_mem /
    (1 + r))`` (8.7e-5 and 7.7e-5 s for the two Braille layers), so the Xylo mapper's
    ``all_neurons_have_same_dt`` rule rejects the paper's graph; nirjax takes ``dt`` from
    the user."""
    results, *_ = _results()
    err = results["bug_braille_from_nir"].error
    assert err is not None, "Rockpool's NIR import now maps the Braille graph: update the docs"
    assert "common `dt`" in err


def test_rockpool_channel_quantize_index_bug():
    """Pinned Rockpool 3.1.0 bug (quantize_methods.py:295/331, ``hidden_id <= Nien``): when
    the threshold of hidden neuron ``N_IEN`` overflows 16 bits, channel_quantize indexes past
    the input weights. nirjax uses the intended ``<`` and quantizes the network."""
    results, _, _, _, nets = _results()
    err = results["bug_channel_overflow_at_ien"].error
    assert err is not None, "Rockpool's channel_quantize no longer fails: update the docs"
    assert "IndexError" in err
    target, _, method, _ = BUG_CASES["bug_channel_overflow_at_ien"]
    spec = xq.quantize_network(nets["bug_channel_overflow_at_ien"].float_network(), target,
                               method=method)
    assert not [v for v in spec.violations() if v.severity == "error"]
