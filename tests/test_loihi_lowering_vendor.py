"""``nirjax.lower(graph, "loihi2")`` against Lava: the exported netx file run by Lava 0.10.

For every case, ``hw = nirjax.lower(graph, "loihi2", dt)`` writes its netx HDF5 file
(``hw.export``); ``lava.lib.dl.netx.hdf5.Network(net_config=path)`` loads it in the ``lava``
environment (lava-nc 0.10.0, lava-dl 0.6.0; ``tests/peers/setup_peers.sh``) and runs it with
``Loihi2SimCfg(select_tag="fixed_pt")`` (``tests/peers/lava_runner.py``). The spikes of every
layer at every step and sample, and every neuron's integer current ``u`` and voltage ``v``,
must equal ``hw.run(xs, record=...)``: the integer program nirjax compiled (one jitted scan,
batched), not a second implementation. Cases: random multi-layer and recurrent graphs,
delays, conv -> flatten -> dense, a neuron fed without a weight node, both Braille graphs
of the NIR paper, random chains, and the paper's LIF task with both mappings (Lava's spikes
must also be the Loihi 2 chip's, 461, 511, 711, 761).

A missing ``lava`` environment skips these tests with the reason; with
``NIRJAX_PEERS_REQUIRED=1`` it is a failure.
"""

from __future__ import annotations

import os
import pathlib
import sys
import warnings

import numpy as np
import pytest

import nirjax
from loihi_cases import (g_conv, g_delays, g_direct, g_mlp, g_random, g_recurrent, rng_for)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
import lava_harness as H  # noqa: E402

pytestmark = [pytest.mark.peers, pytest.mark.slow]

REQUIRED = os.environ.get("NIRJAX_PEERS_REQUIRED") == "1"
DATA = pathlib.Path(__file__).parent / "data" / "paper"
T, B = 50, 3
DT = 1e-3


def _lower(g, dt, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.LoweringWarning)
        return nirjax.lower(g, "loihi2", dt=dt, **options)


def _read(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nirjax.read(nirjax.example_path(name))


def _cases():
    rng = rng_for("loihi2-vendor")
    lowered = {
        "mlp": _lower(g_mlp(rng), DT),
        "recurrent": _lower(g_recurrent(rng), DT),
        "delays": _lower(g_delays(rng, DT), DT),
        "conv": _lower(g_conv(rng), DT),
        "conv_strided": _lower(g_conv(rng, stride=2, padding=0, dilation=1), DT),
        "conv_dilated": _lower(g_conv(rng, dilation=2, padding=2, cout=4), DT),
        "direct": _lower(g_direct(rng), DT),
        "braille_bias": _lower(_read("braille_bias_zero"), 1e-4),
        "braille_subtract": _lower(_read("braille_subtract"), 1e-4),
    }
    for seed in range(3):
        lowered[f"random{seed}"] = _lower(g_random(rng_for(f"vendor-random-{seed}"), DT), DT)
    inputs = {}
    for k, hw in lowered.items():
        shape = next(iter(hw.model.input_shapes.values()))
        inputs[k] = (rng.random((T, B) + tuple(shape)) < 0.3).astype(np.int32)
    chip = np.loadtxt(DATA / "lif_lava_loihi_fixed.csv", delimiter=",")
    for scale in ("auto", "paper"):
        lowered[f"lif_task_{scale}"] = _lower(_read("lif_norse"), 1e-4, scale=scale)
        inputs[f"lif_task_{scale}"] = chip[:, 0].reshape(-1, 1, 1).astype(np.int32)
    return lowered, inputs


LOWERED, INPUTS = _cases()
_RESULTS: dict = {}


@pytest.fixture(scope="module")
def lava(tmp_path_factory):
    """Every exported file run once in Lava (one subprocess), or skip / fail without it."""
    if H.lava_python() is None:
        msg = (f"lava environment not found under {H.peers_dir()}: build it with "
               f"NIRJAX_PEERS_ONLY=lava tests/peers/setup_peers.sh")
        if REQUIRED:
            pytest.fail(msg + " (NIRJAX_PEERS_REQUIRED=1)")
        pytest.skip(msg)
    if not _RESULTS:
        tmp = tmp_path_factory.mktemp("loihi2")
        jobs = []
        for k, hw in LOWERED.items():
            path = tmp / f"{k}.net"
            hw.export(path)
            jobs.append((k, path, INPUTS[k], True))
        _RESULTS.update(H.run_lava(jobs))
    return _RESULTS


def test_lava_versions(lava):
    assert lava["versions"].get("lava-nc") == "0.10.0", lava["versions"]
    assert lava["versions"].get("lava-dl") == "0.6.0", lava["versions"]


@pytest.mark.parametrize("case", sorted(LOWERED))
def test_lowered_model_equals_lava_on_the_exported_file(lava, case):
    """Same spikes per layer and step, same integer u and v, as Lava's fixed-point run."""
    res = lava[case]
    assert res.error is None, f"Lava failed on {case}:\n{res.error}"
    hw = LOWERED[case]
    names = [q.name for q in hw.details.layers]
    ys, rec = hw.run(INPUTS[case], record=names + [(n, f) for n in names for f in "uv"])
    assert len(res.spikes) == len(names)
    for k, n in zip(sorted(res.spikes), names):
        got = np.asarray(rec[n])
        ref = res.spikes[k]
        assert ref.shape == got.shape, (case, n, ref.shape, got.shape)
        diff = np.argwhere(ref != got)
        assert diff.size == 0, (
            f"{case} layer {n!r}: {len(diff)} spike values differ, first at (step, sample, "
            f"neuron) {tuple(diff[0])}; Lava {ref.sum()} spikes, nirjax {got.sum()}")
        np.testing.assert_array_equal(res.u[k], np.asarray(rec[(n, "u")]), err_msg=f"{case} {n} u")
        np.testing.assert_array_equal(res.v[k], np.asarray(rec[(n, "v")]), err_msg=f"{case} {n} v")
    np.testing.assert_array_equal(res.spikes[max(res.spikes)], np.asarray(ys))


def test_cases_are_not_vacuous(lava):
    """Every layer of every graph case spikes in Lava."""
    for case in LOWERED:
        if case.startswith("lif_task") or lava[case].error is not None:
            continue
        for k in sorted(lava[case].spikes):
            assert lava[case].spikes[k].sum() > 0, (case, k)


def test_paper_lif_task_in_lava_is_the_chip_trace(lava):
    chip = np.loadtxt(DATA / "lif_lava_loihi_fixed.csv", delimiter=",")
    for scale in ("auto", "paper"):
        res = lava[f"lif_task_{scale}"]
        z = res.spikes[max(res.spikes)].ravel()
        assert np.flatnonzero(z).tolist() == [461, 511, 711, 761], scale
        np.testing.assert_array_equal(z != 0, chip[:, 2] != 0)


def test_benchmark_hook_runs_a_batch_and_checks_spikes(tmp_path):
    """lava_run (the hook benchmarks/hardware_sim.py calls) returns Lava's output spikes for a
    batch, equal to hw(xs), and its samples/s."""
    if H.lava_python() is None:
        if REQUIRED:
            pytest.fail("lava environment not found (NIRJAX_PEERS_REQUIRED=1)")
        pytest.skip("lava environment not found")
    hw = LOWERED["recurrent"]
    path = tmp_path / "net.net"
    hw.export(path)
    xs = INPUTS["recurrent"][:20, :2]
    result = H.lava_run(path, xs, repeat=1)
    np.testing.assert_array_equal(result["out"], np.asarray(hw(xs)))
    assert result["samples_per_s"] > 0 and result["seconds"]
