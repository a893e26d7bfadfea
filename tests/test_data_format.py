"""NIR's data format (nir.NIRGraphData, nir 1.0.8): nirjax.to_nir_data / from_nir_data / the
file round trip, checked against nir.read_data and nir.write_data themselves."""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest

import nirjax
from nirjax import data as nd
from builders import paper_path, read_quiet


def _braille():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        return nirjax.compile(read_quiet(paper_path("braille_bias_zero")), dt=1e-4)


def test_written_by_nirjax_read_by_nir(tmp_path):
    model = _braille()
    rng = np.random.default_rng(0)
    xs = (rng.random((40, 3, 12)) < 0.2).astype(np.float32)
    ys, _, rec = model.run(model.params, xs, record=["lif1.lif", ("lif1.lif", "v"), "fc1"])
    values = {"input": xs, "output": ys, **rec}
    path = tmp_path / "rec.h5"
    nd.write_data(path, nd.to_nir_data(values, 1e-4, model=model, spiking={"input"}),
                  metadata={"dt": 1e-4, "note": "test"})
    back = nir.read_data(str(path))  # the reference reader
    obs = {k: v.observables for k, v in back.nodes.items()}
    assert set(obs) == {"input", "output", "lif1.lif", "fc1"}
    # spikes: bool [B, T, N]; other signals: float [B, T, N]
    assert set(obs["lif1.lif"]) == {"spikes", "v"} and set(obs["fc1"]) == {"output"}
    assert set(obs["output"]) == {"spikes"} and set(obs["input"]) == {"spikes"}
    spikes = obs["lif1.lif"]["spikes"]
    assert spikes.data.dtype == bool and spikes.dt == pytest.approx(1e-4)
    np.testing.assert_array_equal(spikes.data, np.transpose(np.asarray(rec["lif1.lif"]), (1, 0, 2)) > 0)
    np.testing.assert_array_equal(obs["lif1.lif"]["v"].data,
                                  np.transpose(np.asarray(rec[("lif1.lif", "v")]), (1, 0, 2)))
    np.testing.assert_array_equal(obs["output"]["spikes"].data,
                                  np.transpose(np.asarray(ys), (1, 0, 2)) > 0)
    np.testing.assert_array_equal(obs["input"]["spikes"].data, np.transpose(xs, (1, 0, 2)) > 0)
    assert nd.read_metadata(path) == {"dt": 1e-4, "note": "test"}
    # and back into nirjax
    again = nd.from_nir_data(nd.read_data(path), model=model)
    np.testing.assert_array_equal(again[("lif1.lif", "v")], np.asarray(rec[("lif1.lif", "v")]))
    np.testing.assert_array_equal(again["output"], np.asarray(ys))
    np.testing.assert_array_equal(again["fc1"], np.asarray(rec["fc1"]))


def test_written_by_nir_read_by_nirjax(tmp_path):
    rng = np.random.default_rng(1)
    grid = rng.random((2, 30, 12)) < 0.3  # [B, T, N]
    idx = np.array([[0, 3, 3, -1], [11, 0, -1, -1]])
    time = np.array([[0.0, 5e-4, 5.4e-4, np.inf], [2.9e-3, 1e-4, np.inf, np.inf]])
    value = np.array([[1.5, 2.0, -1.0, 0.0], [4.0, 0.5, 0.0, 0.0]])
    gd = nir.NIRGraphData(nodes={
        "input": nir.NIRNodeData(observables={"spikes": nir.TimeGriddedData(grid, 1e-4)}),
        "lif2": nir.NIRNodeData(observables={
            "spikes": nir.EventData(idx[:, :3] % 7, time[:, :3], 7, 3e-3),
            "v": nir.ValuedEventData(idx % 7, time, 7, 3e-3, value)}),
    })
    path = tmp_path / "theirs.h5"
    nir.write_data(str(path), gd)  # the reference writer
    model = _braille()
    got = nd.from_nir_data(nd.read_data(path), model=model)
    np.testing.assert_array_equal(got["input"], np.transpose(grid, (1, 0, 2)).astype(np.float32))
    # events: counted by hand, step = floor(time / dt); t_max / dt = 30 steps
    spikes = np.zeros((30, 2, 7))
    for s in range(2):
        for i, t in zip(idx[s, :3] % 7, time[s, :3]):
            if np.isfinite(t) and i >= 0:
                spikes[int(np.floor(t / 1e-4 + 1e-6)), s, i] += 1
    np.testing.assert_array_equal(got["lif2"], spikes)
    # two events of sample 0 fall into step 5 of neuron 3: counted twice
    assert got["lif2"][5, 0, 3] == 2
    v = np.zeros((30, 2, 7))
    for s in range(2):
        for i, t, x in zip(idx[s] % 7, time[s], value[s]):
            if np.isfinite(t):
                v[int(np.floor(t / 1e-4 + 1e-6)), s, i] += x
    np.testing.assert_allclose(got[("lif2", "v")], v)


def test_spikes_as_events_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 3, (25, 4, 2, 3)).astype(np.float32)  # multi-spike counts
    gd = nd.to_nir_data({"pool": counts}, 1e-3, spiking={"pool"}, events=True)
    e = gd.nodes["pool"].observables["spikes"]
    assert isinstance(e, nir.EventData) and e.n_neurons == 6 and e.t_max == pytest.approx(25e-3)
    assert (e.idx >= 0).sum(axis=1).tolist() == counts.reshape(25, 4, 6).sum(axis=(0, 2)).tolist()
    path = tmp_path / "ev.h5"
    nd.write_data(path, gd)
    back = nd.from_nir_data(nir.read_data(str(path)), dt=1e-3)
    np.testing.assert_array_equal(back["pool"], counts.reshape(25, 4, 6))


def test_subgraph_nodes_are_nested():
    inner = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])),
               "lif": nir.LIF(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2),
                              v_threshold=np.ones(2), v_reset=np.zeros(2)),
               "output": nir.Output(np.array([2]))},
        edges=[("input", "lif"), ("lif", "output")])
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "fc": nir.Linear(np.eye(2)), "sub": inner,
               "output": nir.Output(np.array([2]))},
        edges=[("input", "fc"), ("fc", "sub"), ("sub", "output")])
    model = nirjax.compile(graph, dt=1e-4)
    names = [n.name for n in model.program.nodes]
    assert "sub.lif" in names
    xs = np.ones((10, 1, 2), np.float32) * 30
    ys, _, rec = model.run(model.params, xs, record=["sub.lif", ("sub.lif", "v")])
    gd = nd.to_nir_data(rec, 1e-4, model=model)
    assert isinstance(gd.nodes["sub"], nir.NIRGraphData)
    assert set(gd.nodes["sub"].nodes["lif"].observables) == {"spikes", "v"}
    back = nd.from_nir_data(gd, model=model)
    assert set(back) == {"sub.lif", ("sub.lif", "v")}
    np.testing.assert_array_equal(back["sub.lif"], np.asarray(rec["sub.lif"]))


def test_errors(tmp_path):
    model = _braille()
    x = np.zeros((5, 1, 12), np.float32)
    gd = nd.to_nir_data({"input": x}, 1e-3)
    with pytest.raises(nirjax.InputError, match="dt = 0.001.*dt = 0.0001"):
        nd.from_nir_data(gd, model=model)
    with pytest.raises(nirjax.InputError, match="no node 'nope'"):
        nd.from_nir_data(nd.to_nir_data({"nope": x}, 1e-4), model=model)
    with pytest.raises(nirjax.InputError, match="12 neurons.*'fc2'"):
        nd.from_nir_data(nd.to_nir_data({"fc2": x}, 1e-4), model=model)
    with pytest.raises(nirjax.InputError, match="key"):
        nd.to_nir_data({3: x}, 1e-4)
    with pytest.raises(nirjax.InputError, match=r"\[T, B"):
        nd.to_nir_data({"a": np.zeros(3)}, 1e-4)
    with pytest.raises(nirjax.NirFileError, match="no such file"):
        nd.read_data(tmp_path / "missing.h5")
    nirjax.write(tmp_path / "graph.nir", read_quiet(paper_path("lif_norse")))
    with pytest.raises(nirjax.NirFileError, match="not a NIR data file"):
        nd.read_data(tmp_path / "graph.nir")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(nirjax.NirFileError, match="not an HDF5 file"):
        nd.read_data(tmp_path / "text.h5")


def test_public_names_and_doctests():
    import doctest

    assert nirjax.to_nir_data is nd.to_nir_data and nirjax.from_nir_data is nd.from_nir_data
    assert doctest.testmod(nd).failed == 0
