"""Reading and writing ``.nir`` files.

The reader is checked against the raw HDF5 content (read here with h5py), the writer against
the reference package: every file ``nirjax.write`` produces must come back from
``nir.read`` (nir 1.0.8) with identical node names, types, edges and arrays (values AND
dtypes), for every paper graph and for synthetic graphs holding every primitive type.
"""

from __future__ import annotations

import dataclasses
import warnings

import h5py
import jax
import nir
import numpy as np
import pytest

import nirjax
import oracle
from builders import (MALFORMED, PAPER_GRAPHS, chain, conv_node, graph, io_nodes, neuron,
                      paper_path, read_quiet, rng_for)

SPIKING_OLD = set(PAPER_GRAPHS)  # every paper file predates 1.0.6 and holds spiking nodes


def _raw(group):
    """The HDF5 tree of a node group as nested dicts (datasets as NumPy values)."""
    out = {}
    for key, item in group.items():
        out[key] = _raw(item) if isinstance(item, h5py.Group) else item[()]
    return out


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(node):
    return [f.name for f in dataclasses.fields(node) if f.init and f.name != "metadata"]


def _field_value(node, field):
    value = getattr(node, field)
    if field in ("input_type", "output_type") and isinstance(value, dict):
        value = next(iter(value.values()))
    return value


def assert_same_graph(a, b, where="graph"):
    """Identical node names, types, edges and field arrays (values and dtypes), recursively."""
    assert set(a.nodes) == set(b.nodes), where
    assert [tuple(e) for e in a.edges] == [tuple(e) for e in b.edges], where
    for name, na in a.nodes.items():
        nb = b.nodes[name]
        here = f"{where}/{name}"
        assert type(na) is type(nb), here
        if isinstance(na, nir.NIRGraph):
            assert_same_graph(na, nb, here)
            continue
        for field in _fields(na):
            if isinstance(na, (nir.Input, nir.Output)) and field not in ("input_type", "output_type"):
                continue
            va, vb = _field_value(na, field), _field_value(nb, field)
            if va is None or vb is None:
                assert va is None and vb is None, (here, field, va, vb)
            elif isinstance(va, str) or isinstance(vb, str):
                assert _text(va) == _text(vb), (here, field)
            else:
                va, vb = np.asarray(va), np.asarray(vb)
                assert va.dtype == vb.dtype, (here, field, va.dtype, vb.dtype)
                assert np.array_equal(va, vb), (here, field)


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize("name", list(PAPER_GRAPHS))
def test_paper_file_reads_and_matches_raw_hdf5(name):
    path = paper_path(name)
    with pytest.warns(nirjax.ResetAmbiguityWarning):
        g = nirjax.read(path)
    assert isinstance(g, nir.NIRGraph)
    with h5py.File(path, "r") as f:
        raw = _raw(f["node"])
    assert _text(raw["type"]) == "NIRGraph"
    assert [(_text(s), _text(d)) for s, d in raw["edges"]] == [tuple(e) for e in g.edges]
    assert set(raw["nodes"]) == set(g.nodes)
    for node_name, fields in raw["nodes"].items():
        node = g.nodes[node_name]
        assert type(node).__name__ == _text(fields["type"]), node_name
        for key, value in fields.items():
            if key == "type":
                continue
            field = {"shape": "input_type" if isinstance(node, nir.Input) else "output_type"}.get(key, key)
            got = np.asarray(_field_value(node, field))
            assert np.array_equal(got, value), (node_name, key)
            assert got.dtype == np.asarray(value).dtype, (node_name, key)


def test_rockpool_file_that_nir_refuses_reads():
    path = paper_path("lif_rockpool")
    with pytest.raises(ValueError):
        nir.read(path)  # the reference reader rejects its Output shape
    with pytest.warns(nirjax.ResetAmbiguityWarning):
        g = nirjax.read(path)
    assert set(g.nodes) == {"input", "0_LinearTorch", "1_LIFNeuronTorch", "output"}
    assert len(g.nodes) == 4  # no nodes added by type inference


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_subgraph_files_name_the_bad_edge(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        with pytest.raises(nirjax.GraphError) as info:
            nirjax.read(paper_path(name))
    message = str(info.value)
    # inner edges of subgraph 'lif1' name 'lif', but the node is called 'lif1'
    assert "'lif'" in message and "lif1" in message and "edge" in message
    assert paper_path(name).name in message
    with pytest.raises(nirjax.GraphError):
        nirjax.compile(paper_path(name), dt=1e-4)


def test_old_files_read_v_reset_zero(read_paper):
    for name in ("lif_norse", "cnn_sinabs", "braille_bias_zero"):
        g = read_paper(name)
        spiking = [n for n in g.nodes.values() if isinstance(n, (nir.LIF, nir.IF, nir.CubaLIF))]
        assert spiking
        for node in spiking:
            assert np.array_equal(node.v_reset, np.zeros_like(node.v_threshold))
            assert node.v_reset.shape == node.v_threshold.shape


def _strip(path, version, remove):
    """Rewrite a file as an older one: set /version and delete the given node datasets."""
    with h5py.File(path, "r+") as f:
        del f["version"]
        f.create_dataset("version", data=version, dtype=h5py.string_dtype())
        for node_path in remove:
            del f["node/nodes/" + node_path]


def test_old_file_without_v_reset_and_w_in(tmp_path, x64):
    rng = rng_for("old-file")
    cuba = neuron("CubaLIF", rng, (4,))
    g = chain((4,), (4,), ("lif", cuba))
    path = tmp_path / "old.nir"
    nirjax.write(path, g)
    _strip(path, "0.2.0", ["lif/v_reset", "lif/w_in"])
    with pytest.warns(nirjax.ResetAmbiguityWarning, match="subtract"):
        old = nirjax.read(path)
    assert nirjax.file_version(old) == "0.2.0"
    node = old.nodes["lif"]
    np.testing.assert_array_equal(node.v_reset, np.zeros(4))
    np.testing.assert_array_equal(node.w_in, np.ones(4))
    # the simulation uses v_reset = 0 and w_in = 1
    expected = neuron("CubaLIF", rng_for("old-file"), (4,), v_reset=np.zeros(4), w_in=np.ones(4))
    xs = rng.uniform(0, 2, (30, 2, 4))
    ys = np.asarray(nirjax.compile(old, dt=1e-3)(xs))
    ref, _ = oracle.run_graph(chain((4,), (4,), ("lif", expected)), xs, 1e-3)
    np.testing.assert_array_equal(ys, ref)
    assert ref.sum() > 0


def test_file_version_is_kept(tmp_path, read_paper):
    for name in PAPER_GRAPHS:
        with h5py.File(paper_path(name), "r") as f:
            stored = _text(f["version"][()])
        assert nirjax.file_version(read_paper(name)) == stored
        assert nirjax.read_version(paper_path(name)) == stored
    assert nirjax.file_version(read_paper("lif_norse")) == "0.1.1"
    assert nirjax.file_version(read_paper("cnn_sinabs")) == "0.2.0"
    g = read_paper("braille_bias_zero")
    path = tmp_path / "new.nir"
    nirjax.write(path, g)
    assert nirjax.file_version(nirjax.read(path)) == nir.version == "1.0.8"
    assert nirjax.file_version(g) == "0.2.0"  # writing does not change the source's version
    assert nirjax.file_version(chain((1,), (1,))) is None


def test_reset_ambiguity_warning_only_when_ambiguous(tmp_path):
    rng = rng_for("ambiguity")
    # a 1.0.8 file with spiking neurons: no warning (pyproject turns warnings into errors)
    lif = chain((3,), (3,), ("lif", neuron("LIF", rng, (3,))))
    nirjax.write(tmp_path / "new.nir", lif)
    nirjax.read(tmp_path / "new.nir")
    # an old file without spiking neurons: nothing to be ambiguous about
    li = chain((3,), (3,), ("li", neuron("LI", rng, (3,))))
    nirjax.write(tmp_path / "old_li.nir", li)
    _strip(tmp_path / "old_li.nir", "0.2.0", [])
    nirjax.read(tmp_path / "old_li.nir")
    # an old file with a spiking neuron that lacks v_reset: warn, and say what to do
    nirjax.write(tmp_path / "old_lif.nir", lif)
    _strip(tmp_path / "old_lif.nir", "0.2.0", ["lif/v_reset"])
    with pytest.warns(nirjax.ResetAmbiguityWarning) as record:
        nirjax.read(tmp_path / "old_lif.nir")
    message = str(record[0].message)
    assert "0.2.0" in message and "subtract" in message


# ----------------------------------------------------------------------------- writing


@pytest.mark.parametrize("name", list(PAPER_GRAPHS))
def test_write_then_nir_read_round_trip_paper(name, tmp_path):
    g = read_quiet(paper_path(name))
    path = tmp_path / "rt.nir"
    nirjax.write(path, g)
    # rockpool's file fails nir's type check before and after writing; skip the check there
    back = nir.read(path, type_check=(name != "lif_rockpool"))
    assert_same_graph(g, back)
    with h5py.File(path, "r") as f:
        assert _text(f["version"][()]) == nir.version
    assert_same_graph(g, nirjax.read(path))


def _every_primitive_graph(rng):
    """One graph holding every NIR 1.0.8 primitive (and two levels of nesting)."""
    inner = graph({"i": nir.Input(input_type=np.array([6])),
                   "cubali": neuron("CubaLI", rng, (6,)),
                   "o": nir.Output(output_type=np.array([6]))},
                  [("i", "cubali"), ("cubali", "o")])
    sub = graph({"in": nir.Input(input_type=np.array([6])), "lif": neuron("LIF", rng, (6,)),
                 "deep": inner, "out": nir.Output(output_type=np.array([6]))},
                [("in", "lif"), ("lif", "deep"), ("deep", "out")])
    nodes = {
        "input": nir.Input(input_type=np.array([2, 8, 8])),
        "conv2d": conv_node(rng, 2, 2, 4, (3, 2), 1, "same", (1, 2), 2, input_shape=np.array([8, 8])),
        "sumpool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                 padding=np.array([0, 0])),
        "avgpool": nir.AvgPool2d(kernel_size=np.array([2, 1]), stride=np.array([1, 1]),
                                 padding=np.array([1, 0])),
        "flatten": nir.Flatten(input_type={"input": np.array([4, 5, 4])}, start_dim=1, end_dim=2),
        "conv1d": conv_node(rng, 1, 4, 3, 3, 2, 1, 1, 1, input_shape=20),
        "flat2": nir.Flatten(input_type={"input": np.array([3, 10])}, start_dim=0, end_dim=-1),
        "affine": nir.Affine(weight=rng.normal(size=(6, 30)).astype(np.float32),
                             bias=rng.normal(size=(6,)).astype(np.float32)),
        "scale": nir.Scale(scale=rng.normal(size=(6,))),
        "sub": sub,
        "linear": nir.Linear(weight=rng.normal(size=(6, 6))),
        "integrator": neuron("I", rng, (6,)),
        "if": neuron("IF", rng, (6,)),
        "li": neuron("LI", rng, (6,)),
        "cubalif": neuron("CubaLIF", rng, (6,)),
        "threshold": nir.Threshold(threshold=rng.normal(size=(6,))),
        "delay": nir.Delay(delay=np.array([0.0, 1e-3, 2e-3, 3e-3, 1e-3, 0.0])),
        "output": nir.Output(output_type=np.array([6])),
    }
    edges = [("input", "conv2d"), ("conv2d", "sumpool"), ("sumpool", "avgpool"),
             ("avgpool", "flatten"), ("flatten", "conv1d"), ("conv1d", "flat2"),
             ("flat2", "affine"), ("affine", "scale"), ("scale", "sub"), ("sub", "linear"),
             ("linear", "integrator"), ("integrator", "if"), ("if", "li"), ("li", "cubalif"),
             ("cubalif", "threshold"), ("threshold", "delay"), ("delay", "output"),
             ("delay", "linear")]
    g = graph(nodes, edges)
    g.metadata = {"source": "nirjax tests"}
    return g


def test_write_then_nir_read_round_trip_every_primitive(tmp_path, x64):
    g = _every_primitive_graph(rng_for("every-primitive"))
    path = tmp_path / "every.nir"
    nirjax.write(path, g)
    back = nir.read(path, type_check=False)
    assert_same_graph(g, back)
    assert back.metadata.get("source") in ("nirjax tests", b"nirjax tests")
    again = nirjax.read(path)
    assert_same_graph(g, again)
    # the graph is a valid simulation, and the re-read file simulates identically
    xs = rng_for("every-xs").uniform(0, 1, (6, 2, 2, 8, 8))
    ys = np.asarray(nirjax.compile(g, dt=1e-3)(xs))
    np.testing.assert_array_equal(np.asarray(nirjax.compile(again, dt=1e-3)(xs)), ys)
    ref, _ = oracle.run_graph(g, xs, 1e-3)
    np.testing.assert_allclose(ys, ref, rtol=1e-9, atol=1e-9)


def test_round_trip_with_nir_type_check(tmp_path):
    """A graph nir's own type inference accepts stays acceptable after writing."""
    rng = rng_for("typecheck")
    sub = graph({"input": nir.Input(input_type=np.array([3])), "lif": neuron("LIF", rng, (3,)),
                 "output": nir.Output(output_type=np.array([3]))},
                [("input", "lif"), ("lif", "output")])
    g = graph({**io_nodes((4,), (3,)), "w": nir.Affine(weight=rng.normal(size=(3, 4)), bias=np.zeros(3)),
               "sub": sub}, [("input", "w"), ("w", "sub"), ("sub", "output")])
    nirjax.write(tmp_path / "t.nir", g)
    assert_same_graph(g, nir.read(tmp_path / "t.nir"))


def test_round_trip_empty_edge_list(tmp_path):
    g = graph({**io_nodes((2,), (2,))}, [])
    nirjax.write(tmp_path / "empty.nir", g)
    back = nir.read(tmp_path / "empty.nir", type_check=False)
    assert back.edges == [] and set(back.nodes) == {"input", "output"}
    assert_same_graph(g, nirjax.read(tmp_path / "empty.nir"))


@pytest.mark.parametrize("nd", [1, 2])
def test_round_trip_conv_without_input_shape(tmp_path, nd, x64):
    """nir 1.0.8's reader requires a Conv's input_shape: nirjax writes the inferred one."""
    rng = rng_for("no-shape")
    in_shape, out_shape = ((2, 6, 6), (3, 6, 6)) if nd == 2 else ((2, 9), (3, 9))
    g = chain(in_shape, out_shape, ("conv", conv_node(rng, nd, 2, 3, 3, 1, 1)))
    nirjax.write(tmp_path / "c.nir", g)
    back = nir.read(tmp_path / "c.nir", type_check=False)
    assert set(back.nodes) == set(g.nodes)
    assert tuple(np.asarray(back.nodes["conv"].input_shape).reshape(-1)) == in_shape[1:]
    assert g.nodes["conv"].input_shape is None  # the user's graph is left alone
    xs = rng.normal(size=(3, 2) + in_shape)
    np.testing.assert_array_equal(np.asarray(nirjax.compile(back, dt=1e-3)(xs)),
                                  np.asarray(nirjax.compile(g, dt=1e-3)(xs)))


def test_round_trip_flatten_without_input_type(tmp_path):
    g = chain((2, 6, 6), (72,), ("flat", nir.Flatten(input_type={"input": None}, start_dim=0,
                                                     end_dim=-1)))
    nirjax.write(tmp_path / "f.nir", g)
    back = nir.read(tmp_path / "f.nir", type_check=False)
    assert set(back.nodes) == set(g.nodes)
    assert nirjax.compile(nirjax.read(tmp_path / "f.nir"), dt=1e-3).output_shapes == {"output": (72,)}


def test_write_compiled_model_exports_its_params(tmp_path, x64):
    rng = rng_for("export")
    g = chain((3,), (3,), ("w", nir.Affine(weight=rng.normal(size=(3, 3)), bias=np.zeros(3))),
              ("lif", neuron("LIF", rng, (3,))))
    model = nirjax.compile(g, dt=1e-3)
    model.params = jax.tree_util.tree_map(lambda a: a * 1.1, model.params)
    nirjax.write(tmp_path / "m.nir", model)
    back = nir.read(tmp_path / "m.nir")
    np.testing.assert_allclose(back.nodes["w"].weight, g.nodes["w"].weight * 1.1, rtol=1e-12)
    np.testing.assert_allclose(back.nodes["lif"].tau, g.nodes["lif"].tau * 1.1, rtol=1e-12)
    assert back.nodes["lif"].tau.dtype == g.nodes["lif"].tau.dtype


def test_reads_files_written_by_nir_write(tmp_path):
    g = _every_primitive_graph(rng_for("nir-written"))
    nir.write(tmp_path / "ref.nir", g)
    assert_same_graph(g, nirjax.read(tmp_path / "ref.nir"))
    assert nirjax.file_version(nirjax.read(tmp_path / "ref.nir")) == nir.version
