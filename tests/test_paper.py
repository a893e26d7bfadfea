"""The NIR paper's graphs and published traces (files in ``tests/data/paper``).

* LIF task (``lif_norse.nir``, dt = 1e-4, forward Euler, reset to 0): the membrane matches the
  published Norse trace within 1e-6 and the output spikes fall at steps 460, 510, 710, 760;
  with the exact integrator the spikes equal the published exact trace's.
* Every paper graph compiles and runs batched (B > 1, T != B) and equals the NumPy
  interpreter of ``tests/oracle.py`` in float64.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import nirjax
import oracle
from builders import PAPER_GRAPHS, paper_path, rng_for

DT = 1e-4
PAPER_SPIKES = [460, 510, 710, 760]


def _trace(name):
    return np.loadtxt(paper_path(name), delimiter=",")


def _lif_model(semantics=None):
    with pytest.warns(nirjax.ResetAmbiguityWarning):
        graph = nirjax.read(paper_path("lif_norse"))
    return nirjax.compile(graph, dt=DT, semantics=semantics)


@pytest.mark.parametrize("x64_mode", [True, False], ids=["float64", "float32"])
def test_lif_task_matches_norse_trace(x64_mode):
    trace = _trace("lif_norse.csv")
    assert trace.shape == (1000, 3)
    batch = 3
    xs = np.repeat(trace[:, 0].reshape(1000, 1, 1), batch, axis=1)
    with jax.enable_x64(x64_mode):
        model = _lif_model()
        ys, _, rec = model.run(model.params, xs, record=[("1", "v")])
    ys, v = np.asarray(ys), np.asarray(rec[("1", "v")])
    assert ys.shape == (1000, batch, 1)
    for b in range(batch):
        np.testing.assert_allclose(v[:, b, 0], trace[:, 1], rtol=0, atol=1e-6)
        assert np.nonzero(ys[:, b, 0])[0].tolist() == PAPER_SPIKES
        np.testing.assert_array_equal(ys[:, b, 0], trace[:, 2])


def test_lif_task_exact_integrator_matches_exact_trace(x64):
    trace = _trace("lif_exact.csv")
    xs = np.repeat(trace[:, 0].reshape(1000, 1, 1), 2, axis=1)
    model = _lif_model("exact")
    ys, _, rec = model.run(model.params, xs, record=[("1", "v")])
    ys, v = np.asarray(ys), np.asarray(rec[("1", "v")])
    for b in range(2):
        np.testing.assert_array_equal(ys[:, b, 0], trace[:, 2])
    assert np.nonzero(ys[:, 0, 0])[0].tolist() == PAPER_SPIKES
    # before the first spike there is no reset-timing difference: same voltages
    np.testing.assert_allclose(v[:460, 0, 0], trace[:460, 1], rtol=0, atol=1e-9)


def test_lif_task_euler_and_exact_differ_in_voltage(x64):
    """A sanity check that the two integrators are really different simulations."""
    trace = _trace("lif_norse.csv")
    xs = trace[:, 0].reshape(1000, 1, 1)
    v = {}
    for sem in ("nir", "exact"):
        model = _lif_model(sem)
        v[sem] = np.asarray(model.run(model.params, xs, record=[("1", "v")])[2][("1", "v")])
    assert np.max(np.abs(v["nir"] - v["exact"])) > 1e-3


def _spike_input(name, shape, steps, batch, rate=0.2):
    rng = rng_for("paper-input:" + name)
    return (rng.random((steps, batch) + tuple(shape)) < rate).astype(np.float64)


# steps, batch, semantics, dt, nodes whose activity must be non-trivial in the oracle run.
# The Sinabs CNN's IF neurons have r = 1 and threshold 1: Sinabs integrates v += x per step,
# which is dt = 1 in NIR's dv/dt = R*I (at dt = 1e-4 the network stays silent).
PAPER_RUNS = {
    "lif_norse": (40, 3, None, DT, ["1"]),
    "lif_rockpool": (40, 3, None, DT, ["1_LIFNeuronTorch"]),
    "two_lif_neurons": (40, 3, None, DT, ["lif1"]),
    "cnn_sinabs": (9, 2, None, 1.0, ["1", "3", "6"]),
    "braille_bias_zero": (40, 3, None, DT, ["lif1.lif"]),
    "braille_subtract": (40, 3, dict(reset="subtract"), DT, ["lif1.lif"]),
}


@pytest.mark.parametrize("name", list(PAPER_GRAPHS))
def test_paper_graph_runs_batched_and_matches_interpreter(name, read_paper, x64):
    steps, batch, sem, dt, active = PAPER_RUNS[name]
    assert steps != batch
    graph = read_paper(name)
    model = nirjax.compile(graph, dt=dt, semantics=sem)
    (in_name, in_shape), = model.input_shapes.items()
    xs = _spike_input(name, in_shape, steps, batch)
    if name in ("lif_norse", "lif_rockpool", "two_lif_neurons"):
        xs = xs * 60.0 if name == "two_lif_neurons" else xs * 4.0  # drive these single neurons
    ys, state = model.run(model.params, xs)
    (out_name, out_shape), = model.output_shapes.items()
    ys = np.asarray(ys)
    assert ys.shape == (steps, batch) + tuple(out_shape)
    assert ys.dtype == np.float64
    ref, ref_rec = oracle.run_graph(graph, xs, dt, sem, record=active)
    np.testing.assert_allclose(ys, ref, rtol=1e-9, atol=1e-9)
    for node in active:  # the input really drives the graph
        assert 0 < ref_rec[node].mean() < 1, node
        _, _, rec = model.run(model.params, xs, record=[node])
        np.testing.assert_allclose(np.asarray(rec[node]), ref_rec[node], rtol=1e-9, atol=1e-9)
    for leaf in jax.tree_util.tree_leaves(state):
        assert leaf.shape[0] == batch


@pytest.mark.parametrize("name", list(PAPER_GRAPHS))
def test_paper_graph_runs_float32(name, read_paper):
    steps, batch, sem, dt, _ = PAPER_RUNS[name]
    model = nirjax.compile(read_paper(name), dt=dt, semantics=sem)
    (in_shape,) = model.input_shapes.values()
    xs = _spike_input(name, in_shape, steps, batch).astype(np.float32)
    ys = np.asarray(model(xs))
    assert ys.dtype == np.float32
    assert ys.shape[:2] == (steps, batch) and np.all(np.isfinite(ys))


def test_lif_rockpool_output_drops_the_batch_axis(read_paper):
    """Rockpool's Output declares [1, 1, 1] after a LIF of shape [1]: the leading 1s are a
    batch axis NIR shapes leave out; nirjax uses (1,) and says so."""
    with pytest.warns(nirjax.ShapeWarning, match=r"'output'.*\(1, 1, 1\).*output_type to \[1\]"):
        model = nirjax.compile(read_paper("lif_rockpool"), dt=DT)
    assert model.output_shapes == {"output": (1,)}
    ys = model(np.ones((5, 2, 1), np.float32))
    assert ys.shape == (5, 2, 1)


def test_braille_recurrent_edge_is_the_delayed_one(read_paper):
    for name in ("braille_bias_zero", "braille_subtract"):
        model = nirjax.compile(read_paper(name), dt=DT)
        assert [(e.src, e.dst) for e in model.program.delayed_edges] == [("lif1.w_rec", "lif1.lif")]


def test_cnn_edges_out_of_order_give_a_chain(read_paper):
    graph = read_paper("cnn_sinabs")
    assert graph.edges[0] != ("input", "0")  # stored out of order in the file
    model = nirjax.compile(graph, dt=DT)
    order = [n.name for n in model.program.nodes]
    assert order == ["input"] + [str(i) for i in range(13)] + ["output"]
    assert model.output_shapes == {"output": (10,)}


@pytest.mark.parametrize("example,file", [
    ("lif_norse", "lif_norse.nir"), ("braille_bias_zero", "braille_noDelay_bias_zero.nir"),
    ("braille_subtract", "braille_noDelay_noBias_subtract.nir"), ("cnn_sinabs", "cnn_sinabs.nir"),
    ("lif_norse_trace", "lif_norse.csv"),
])
def test_shipped_examples_are_the_paper_files(example, file):
    assert nirjax.example_path(example).read_bytes() == paper_path(file).read_bytes()
