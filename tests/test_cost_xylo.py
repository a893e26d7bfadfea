"""Xylo's time per step equals Rockpool 3.1.0's own ``cycles_model`` at the same rates.

Rockpool runs in the ``torch`` peer environment (``tests/peers/rockpool_cycles_runner.py``):
it gets the weight matrices assembled here straight from the NIR graph (Rockpool's
``[pre, post]`` layout; not nirjax's mapping) and the spike rasters of the run, and computes
the rates and the cycles itself. nirjax's ``report.targets[variant]["cycles_per_step"]`` and
``["time_per_step_s"]`` must agree. Cases: the NIR paper's Braille graph and a random graph
with two hidden layers, sparse weights and hidden neurons outside the input / readout
projections (which changes ``N_ien`` / ``N_oen`` of the IMU / Audio 3 model).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings

import nir
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
import harness  # noqa: E402

import nirjax  # noqa: E402

REQUIRED = os.environ.get("NIRJAX_PEERS_REQUIRED") == "1"
RUNNER = os.path.join(os.path.dirname(__file__), "peers", "rockpool_cycles_runner.py")
F32 = np.float32
MODEL = {"xylo-audio2": "syns61201", "xylo-audio3": "syns63300", "xylo-imu": "syns63300"}


def _cuba(rng, n, thr=1.0):
    return nir.CubaLIF(tau_syn=np.full(n, 2e-3, F32), tau_mem=np.full(n, 4e-3, F32),
                       r=np.full(n, 40.0, F32), v_leak=np.zeros(n, F32),
                       v_threshold=np.full(n, thr, F32), v_reset=np.zeros(n, F32),
                       w_in=np.ones(n, F32))


def two_hidden_graph(seed=0):
    """input(10) -> fc1 -> h1(24, recurrent) -> fc12 -> h2(16) -> fco -> out(6); fc1 leaves
    the last 8 neurons of h1 without input and fco reads only h2."""
    rng = np.random.default_rng(seed)

    def w(n_out, n_in, density, scale):
        m = rng.normal(0, scale, (n_out, n_in)) * (rng.random((n_out, n_in)) < density)
        return m.astype(F32)

    fc1 = w(24, 10, 0.6, 1.0)
    fc1[16:] = 0.0
    nodes = {
        "input": nir.Input(input_type=np.array([10])),
        "fc1": nir.Linear(weight=fc1), "h1": _cuba(rng, 24),
        "rec": nir.Linear(weight=w(24, 24, 0.3, 0.5)),
        "fc12": nir.Linear(weight=w(16, 24, 0.5, 1.0)), "h2": _cuba(rng, 16),
        "fco": nir.Linear(weight=w(6, 16, 0.7, 1.0)), "out": _cuba(rng, 6),
        "output": nir.Output(output_type=np.array([6])),
    }
    edges = [("input", "fc1"), ("fc1", "h1"), ("h1", "rec"), ("rec", "h1"), ("h1", "fc12"),
             ("fc12", "h2"), ("h2", "fco"), ("fco", "out"), ("out", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    hidden = ["h1", "h2"]
    sizes = {"h1": 24, "h2": 16}
    w_in = np.zeros((10, 40), F32)
    w_in[:, :24] = fc1.T
    w_rec = np.zeros((40, 40), F32)
    w_rec[:24, :24] = nodes["rec"].weight.T
    w_rec[:24, 24:] = nodes["fc12"].weight.T
    w_out = np.zeros((40, 6), F32)
    w_out[24:, :] = nodes["fco"].weight.T
    xs = harness.spikes(rng, (150, 3, 10), 0.2)
    return graph, xs, hidden, sizes, "out", (w_in, w_rec, w_out)


def braille_case():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = nirjax.read(nirjax.example_path("braille_bias_zero"))
    w_in = np.asarray(graph.nodes["fc1"].weight).T
    w_rec = np.asarray(graph.nodes["lif1.w_rec"].weight).T
    w_out = np.asarray(graph.nodes["fc2"].weight).T
    xs = harness.braille_input(7, T=200, B=4, p=0.08)
    return graph, xs, ["lif1.lif"], {"lif1.lif": 38}, "lif2", (w_in, w_rec, w_out)


CASES = {"braille": braille_case, "two_hidden": two_hidden_graph}


def _nirjax(case, variant):
    graph, xs, hidden, sizes, readout, weights = CASES[case]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nirjax.compile(graph, dt=1e-4)
    report = nirjax.benchmark(model, xs, targets=[variant], measure_time=False)
    _, _, rec = model.run(model.params, xs, record=hidden + [readout])
    T, B = xs.shape[:2]
    raster = lambda a: np.asarray(a).transpose(1, 0, 2).reshape(T * B, -1)  # noqa: E731
    hid = np.concatenate([raster(rec[h]) for h in hidden], axis=1)
    return report, {"input": raster(xs), "hidden": hid, "output": raster(rec[readout]),
                    "weights": weights}


_ROCKPOOL: dict = {}


def _as_chip_weights(w):
    """8-bit integer weights, as a chip configuration holds them (Rockpool's cycle model
    reads their nonzero pattern; with float32 weights its mean fan-out would be a float32
    sum). Scaled to [-127, 127]; a nonzero weight keeps at least magnitude 1, so the
    nonzero pattern is the graph's."""
    w = np.asarray(w, np.float64)
    scale = 127 / np.max(np.abs(w)) if np.any(w) else 1.0
    q = (np.sign(w) * np.maximum(np.round(np.abs(w) * scale), 1)).astype(np.int8)
    assert np.array_equal(q != 0, w != 0)
    return q


def _rockpool():
    if "out" in _ROCKPOOL:
        return _ROCKPOOL["out"]
    py = harness.peers_dir() / "torch" / "bin" / "python"
    if not ((harness.peers_dir() / "torch" / ".ready").exists() and py.exists()):
        msg = f"torch peer environment (Rockpool 3.1.0) not found under {harness.peers_dir()}"
        if REQUIRED:
            pytest.fail(msg + " (NIRJAX_PEERS_REQUIRED=1)")
        pytest.skip(msg)
    arrays, reports = {}, {}
    for case in CASES:
        for variant in MODEL:
            key = f"{case}__{variant}"
            report, data = _nirjax(case, variant)
            reports[key] = report
            w_in, w_rec, w_out = (_as_chip_weights(w) for w in data["weights"])
            arrays.update({f"{key}:w_in": w_in, f"{key}:w_rec": w_rec, f"{key}:w_out": w_out,
                           f"{key}:input": data["input"], f"{key}:hidden": data["hidden"],
                           f"{key}:output": data["output"],
                           f"{key}:model": np.array(MODEL[variant])})
    with tempfile.TemporaryDirectory() as tmp:
        jobs, out = os.path.join(tmp, "jobs.npz"), os.path.join(tmp, "out.json")
        np.savez(jobs, **arrays)
        proc = subprocess.run([str(py), RUNNER, jobs, out], capture_output=True, text=True,
                              timeout=600, env=dict(os.environ, PYTHONWARNINGS="ignore"))
        if proc.returncode != 0:
            raise RuntimeError(f"Rockpool runner failed:\n{proc.stdout[-2000:]}\n"
                               f"{proc.stderr[-3000:]}")
        with open(out) as f:
            cycles = json.load(f)
    _ROCKPOOL["out"] = (cycles, reports)
    return _ROCKPOOL["out"]


@pytest.mark.peers
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("variant", list(MODEL))
def test_xylo_time_per_step_equals_rockpool_cycles_model(case, variant):
    cycles, reports = _rockpool()
    assert cycles["rockpool"] == "3.1.0"
    r = reports[f"{case}__{variant}"].targets[variant]
    theirs = cycles[f"{case}__{variant}"]
    assert r["cycles_per_step"] == pytest.approx(theirs, rel=1e-12), (r["cycles_per_step"], theirs)
    assert r["time_per_step_s"] == pytest.approx(theirs / 50e6, rel=1e-12)
    assert 0 < r["rates"]["hidden"] < 1 and 0 < r["rates"]["input"] < 1


def test_cases_differ_between_models():
    """The IMU/Audio 3 model sees fewer input/output-expansion neurons than Audio 2 on the
    two-hidden-layer case (so the two Rockpool models are really both exercised)."""
    a2 = _nirjax("two_hidden", "xylo-audio2")[0].targets["xylo-audio2"]["cycles_per_step"]
    imu = _nirjax("two_hidden", "xylo-imu")[0].targets["xylo-imu"]["cycles_per_step"]
    assert imu < a2
