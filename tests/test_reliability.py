"""Reliability (issue 12): every bad file, graph or input gets a clean ``NirjaxError``; a failed
write loses nothing; a round trip never changes the answer; sizes are checked before memory is
allocated; ``nirjax.read``/``nirjax.write`` are drop-in replacements for ``nir.read``/``nir.write``.

The randomized counterparts of these tests are in ``test_fuzz.py``.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import pathlib
import sys
import tempfile
import time
import warnings

import h5py
import jax
import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nirjax
import oracle
from builders import chain, neuron, rng_for

sys.path.insert(0, os.path.dirname(__file__))
import fuzzlib  # noqa: E402

DT = 1e-3
EXPORTS = pathlib.Path(__file__).parent / "data" / "exports"


def _li():
    return nir.LI(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2))


def _issue_graph(order=None):
    """The repro of issue 12: two 1-step delays into a 2-cycle of LI nodes."""
    nodes = {"in": nir.Input(np.array([2])), "zdelay": nir.Delay(np.full(2, DT)),
             "adelay": nir.Delay(np.full(2, DT)), "A": _li(), "B": _li(),
             "out": nir.Output(np.array([2]))}
    edges = [("in", "zdelay"), ("in", "adelay"), ("zdelay", "A"), ("adelay", "B"), ("A", "B"),
             ("B", "A"), ("B", "out")]
    if order is not None:
        nodes = {k: nodes[k] for k in order}
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _lif_graph():
    rng = rng_for("reliability-lif")
    return chain((3,), (3,), ("w", nir.Affine(weight=rng.normal(size=(3, 3)), bias=np.zeros(3))),
                 ("lif", neuron("LIF", rng, (3,))))


# ----------------------------------------------------------------------------- 1. evaluation order


def test_round_trip_of_the_issue_graph_keeps_the_answer(tmp_path):
    g = _issue_graph()
    xs = rng_for("issue-order").normal(size=(8, 2, 2))
    a = nirjax.compile(g, dt=DT)
    nirjax.write(tmp_path / "g.nir", g)
    b = nirjax.compile(tmp_path / "g.nir", dt=DT)
    assert [(e.src, e.dst) for e in a.program.delayed_edges] == [("A", "B")]
    assert [(e.src, e.dst) for e in b.program.delayed_edges] == [("A", "B")]
    np.testing.assert_array_equal(np.asarray(a(xs)), np.asarray(b(xs)))


def test_order_is_the_documented_function_of_names_and_edges(x64):
    """Roots, starts and successors in sorted name order: the oracle's independent DFS."""
    g = _issue_graph(order=["out", "B", "A", "adelay", "zdelay", "in"])
    xs = rng_for("issue-oracle").normal(size=(6, 1, 2))
    model = nirjax.compile(g, dt=DT)
    ref, _ = oracle.run_graph(g, xs, DT)
    np.testing.assert_allclose(np.asarray(model(xs)), ref, rtol=1e-12, atol=1e-12)


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2 ** 31 - 1))
def test_shuffled_node_and_edge_order_gives_identical_outputs(seed, tmp_path_factory):
    rng = np.random.default_rng(seed)
    g, inputs = fuzzlib.random_graph(rng)
    xs = fuzzlib.random_inputs(rng, inputs, 5, 2)
    ref = nirjax.compile(g, dt=DT)
    want = jax.tree_util.tree_map(np.asarray, ref(xs))
    path = tmp_path_factory.mktemp("shuffle") / "g.nir"
    nirjax.write(path, fuzzlib.shuffled(rng, g))
    for variant in (fuzzlib.shuffled(rng, g), nirjax.read(path)):
        model = nirjax.compile(variant, dt=DT)
        assert model.program.delayed_edges == ref.program.delayed_edges
        assert [n.name for n in model.program.nodes] == [n.name for n in ref.program.nodes]
        got = jax.tree_util.tree_map(np.asarray, model(xs))
        jax.tree_util.tree_map(np.testing.assert_array_equal, got, want)


# ----------------------------------------------------------------------------- 2. writing


@pytest.mark.parametrize("name,edit", [
    ("metadata object", lambda g: g.nodes["lif"].metadata.update(obj=object())),
    ("metadata None", lambda g: g.nodes["lif"].metadata.update(gone=None)),
    ("metadata mixed list", lambda g: g.metadata.update(values=[1, "a"])),
    ("empty name", lambda g: g.nodes.update({"": nir.Scale(scale=np.ones(3))})),
    ("dot name", lambda g: g.nodes.update({".": nir.Scale(scale=np.ones(3))})),
    ("slash name", lambda g: g.nodes.update({"a/b": nir.Scale(scale=np.ones(3))})),
    ("int name", lambda g: g.nodes.update({7: nir.Scale(scale=np.ones(3))})),
    ("dangling edge", lambda g: g.edges.append(("lif", "ghost"))),
    ("contains itself", lambda g: g.nodes.update(me=g)),
    ("mixed scalar and array", lambda g: setattr(g.nodes["lif"], "r", np.float64(1.0))),
])
def test_failed_write_leaves_the_old_file_intact(tmp_path, name, edit):
    path = tmp_path / "model.nir"
    nirjax.write(path, _lif_graph())
    before = path.read_bytes()
    bad = _lif_graph()
    edit(bad)
    with pytest.raises(nirjax.NirFileError) as info:
        nirjax.write(path, bad)
    assert "model.nir" in str(info.value)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.nir"]  # no temporary file left behind


def test_write_failing_on_a_full_disk_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.nir"
    nirjax.write(path, _lif_graph())
    before = path.read_bytes()

    def full(out, data):
        out.write(bytes(data)[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nirjax.io.nirfile, "_write_all", full)
    with pytest.raises(nirjax.NirFileError, match="No space left"):
        nirjax.write(path, _issue_graph())
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.nir"]


def test_write_keeps_the_file_mode_and_follows_symlinks(tmp_path):
    target = tmp_path / "real.nir"
    nirjax.write(target, _lif_graph())
    os.chmod(target, 0o640)
    link = tmp_path / "link.nir"
    link.symlink_to(target)
    nirjax.write(link, _issue_graph())
    assert link.is_symlink() and (os.stat(target).st_mode & 0o777) == 0o640
    assert set(nirjax.read(target).nodes) == set(_issue_graph().nodes)


@pytest.mark.parametrize("make", [tempfile.TemporaryFile, io.BytesIO])
def test_read_and_write_accept_file_objects(make):
    g = _lif_graph()
    with make() as fp:
        nirjax.write(fp, g)
        back = nirjax.read(fp)
    assert set(back.nodes) == set(g.nodes)
    np.testing.assert_array_equal(back.nodes["lif"].tau, g.nodes["lif"].tau)


def test_compile_takes_a_file_object_and_bytes_path(tmp_path):
    """nirjax.compile reads what nirjax.read reads: a binary file object or a bytes path."""
    g = _lif_graph()
    xs = np.ones((4, 2) + nirjax.compile(g, dt=DT).input_shapes["input"], np.float32)
    want = np.asarray(nirjax.compile(g, dt=DT)(xs))
    buf = io.BytesIO()
    nirjax.write(buf, g)
    np.testing.assert_array_equal(np.asarray(nirjax.compile(buf, dt=DT)(xs)), want)
    path = tmp_path / "g.nir"
    nirjax.write(path, g)
    np.testing.assert_array_equal(np.asarray(nirjax.compile(os.fsencode(path), dt=DT)(xs)), want)


def test_text_mode_file_object_is_refused(tmp_path):
    with open(tmp_path / "t.nir", "w") as fp:
        with pytest.raises(nirjax.NirFileError, match="binary"):
            nirjax.write(fp, _lif_graph())


@pytest.mark.parametrize("path", [None, 3, 2.5, True, ["a"]])
def test_bad_path_types(path):
    with pytest.raises(nirjax.NirFileError, match="path"):
        nirjax.read(path)
    with pytest.raises(nirjax.NirFileError, match="path"):
        nirjax.write(path, _lif_graph())


def test_special_files_are_neither_read_nor_replaced(tmp_path):
    """A FIFO (like a device) is not a .nir file: reading it must not block, and an atomic
    write must not rename a regular file over it."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(nirjax.NirFileError, match="not a regular file"):
        nirjax.read(fifo)
    with pytest.raises(nirjax.NirFileError, match="not a regular file"):
        nirjax.write(fifo, _lif_graph())
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_bytes_and_pathlike_paths(tmp_path):
    path = tmp_path / "b.nir"
    nirjax.write(os.fsencode(path), _lif_graph())
    assert set(nirjax.read(os.fsencode(path)).nodes) == set(_lif_graph().nodes)
    with pytest.raises(nirjax.NirFileError, match="directory"):
        nirjax.read(tmp_path)


# ----------------------------------------------------------------------------- nir drop-in


def _nir_graphs():
    """Graphs like those of nir's own read/write tests, built with nir's type check."""
    rng = rng_for("dropin")
    aff = lambda n, m: nir.Affine(weight=rng.normal(size=(m, n)), bias=rng.normal(size=m))
    yield "simple", nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "a": aff(2, 2), "output": nir.Output(None)},
        edges=[("input", "a"), ("a", "a"), ("a", "output")])
    sub = nir.NIRGraph(nodes={"a": nir.Input(np.array([2])), "b": nir.Delay(np.array([1.0, 1.0])),
                              "c": nir.Output(np.array([2]))}, edges=[("a", "b"), ("b", "c")])
    yield "nested", nir.NIRGraph(
        nodes={"a": nir.I(r=np.array([1.0, 1.0])), "b": sub, "c": nir.Output(np.array([1, 1]))},
        edges=[("a", "b"), ("b", "a")])
    yield "conv", nir.NIRGraph.from_list(nir.Conv2d(
        input_shape=(10, 10), weight=rng.normal(size=(1, 2, 3, 3)), bias=rng.normal(size=1),
        stride=1, padding=0, dilation=1, groups=1))
    yield "lif", nir.NIRGraph.from_list(aff(2, 3), nir.LIF(
        tau=np.ones(3), r=np.ones(3), v_leak=np.ones(3), v_reset=np.zeros(3),
        v_threshold=np.full(3, 3.0)))
    yield "cubali", nir.NIRGraph.from_list(aff(2, 3), nir.CubaLI(
        tau_mem=np.ones(3), tau_syn=np.full(3, 2.0), r=np.ones(3), v_leak=np.ones(3),
        w_in=np.full(3, 2.0)))
    yield "flatten", nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([2, 3])),
        nir.Flatten(start_dim=0, end_dim=1, input_type={"input": np.array([2, 3])}),
        nir.Output(output_type=np.array([6])))
    for cls in (nir.SumPool2d, nir.AvgPool2d):
        yield cls.__name__, nir.NIRGraph.from_list([
            nir.Input(input_type=np.array([2, 10, 10])),
            cls(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            nir.Output(output_type=np.array([2, 5, 5]))])


def _same(a, b, where):
    """Every attribute of every node equal (arrays by value), as nir's tests compare."""
    assert list(a.edges) == list(b.edges), where
    assert set(a.nodes) == set(b.nodes), where
    for name, na in a.nodes.items():
        nb = b.nodes[name]
        assert type(na) is type(nb), (where, name)
        if isinstance(na, nir.NIRGraph):
            _same(na, nb, f"{where}/{name}")
            continue
        for key, va in vars(na).items():
            vb = getattr(nb, key)
            if isinstance(va, dict):
                assert set(va) == set(vb), (where, name, key)
                for k in va:
                    assert np.array_equal(va[k], vb[k]), (where, name, key, k)
            else:
                assert np.array_equal(va, vb), (where, name, key, va, vb)


@pytest.mark.parametrize("name,g", list(_nir_graphs()), ids=[n for n, _ in _nir_graphs()])
def test_read_write_are_drop_in_for_nir(tmp_path, name, g):
    """Written by nirjax.write to a TemporaryFile and read by nirjax.read, a graph compares
    equal to the original and to nir.read of nir.write's file."""
    with tempfile.TemporaryFile() as fp:
        nirjax.write(fp, g)
        ours = nirjax.read(fp)
    _same(g, ours, name)
    nir.write(str(tmp_path / "ref.nir"), g)
    _same(nir.read(str(tmp_path / "ref.nir")), nirjax.read(tmp_path / "ref.nir"), name)


# ----------------------------------------------------------------------------- 3./4. reading


def _edit(tmp_path, edit, name="bad.nir", g=None):
    path = tmp_path / name
    nirjax.write(path, g if g is not None else _lif_graph())
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_huge_declared_dataset_fails_fast_naming_node_field_and_bytes(tmp_path):
    def edit(f):
        del f["node/nodes/w/weight"]
        f["node/nodes/w"].create_dataset("weight", shape=(200000, 200000), dtype="f4",
                                         chunks=True, compression="gzip")

    path = _edit(tmp_path, edit)
    assert path.stat().st_size < 100_000
    start = time.perf_counter()
    with pytest.raises(nirjax.NirFileError) as info:
        nirjax.read(path)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "bad.nir" in message and "nodes/w " in message and "'weight'" in message
    assert "149.0 GiB" in message
    assert "set_limits(max_read_bytes" in message


def test_declared_but_unstored_data_is_not_allocated(tmp_path):
    """Under the read limit, but stored in (almost) no bytes: refused before HDF5 fills it."""
    def edit(f):
        del f["node/nodes/lif/tau"]
        f["node/nodes/lif"].create_dataset("tau", shape=(10 ** 9,), dtype="f4", chunks=True,
                                           compression="gzip")

    start = time.perf_counter()
    with pytest.raises(nirjax.NirFileError, match="'tau'.*stores only 0 bytes"):
        nirjax.read(_edit(tmp_path, edit))
    assert time.perf_counter() - start < 5


def test_read_limit_can_be_raised(tmp_path):
    def edit(f):
        del f["node/nodes/w/weight"]
        f["node/nodes/w"].create_dataset("weight", data=np.zeros((30, 30)))

    path = _edit(tmp_path, edit)
    with nirjax.set_limits(max_read_bytes=5000):
        with pytest.raises(nirjax.NirFileError, match="7.0 KiB"):
            nirjax.read(path)
    assert nirjax.limits().max_read_bytes == 4 << 30  # restored
    nirjax.read(path)
    with pytest.raises(nirjax.NirjaxError, match="max_read_bytes"):
        nirjax.set_limits(max_read_bytes=-1)


@pytest.mark.parametrize("mutation", [m for m, _ in fuzzlib.structural_mutations()])
def test_structural_mutations_raise_only_nirjax_errors(tmp_path, mutation):
    fn = dict(fuzzlib.structural_mutations())[mutation]
    for seed in range(3):
        path = tmp_path / f"m{seed}.nir"
        nirjax.write(path, fuzzlib.random_graph(np.random.default_rng(seed))[0])
        with h5py.File(path, "r+") as f:
            try:
                fn(f, np.random.default_rng(seed))
            except Exception:  # the mutation does not apply to this graph
                continue
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nirjax.compile(nirjax.read(path), dt=DT)
        except nirjax.NirjaxError:
            pass
        assert time.perf_counter() - start < 30


def test_external_link_is_not_followed(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("tau", data=np.full(3, 5e-3))

    def edit(f):
        del f["node/nodes/lif/tau"]
        f["node/nodes/lif/tau"] = h5py.ExternalLink(str(other), "/tau")

    with pytest.raises(nirjax.NirFileError, match="external link.*other.h5"):
        nirjax.read(_edit(tmp_path, edit))


def test_external_raw_data_is_not_read(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.full(3, 5e-3).tobytes())

    def edit(f):
        del f["node/nodes/lif/tau"]
        f["node/nodes/lif"].create_dataset("tau", shape=(3,), dtype="f8",
                                           external=[(str(raw), 0, 24)])

    with pytest.raises(nirjax.NirFileError, match="external file"):
        nirjax.read(_edit(tmp_path, edit))


@pytest.mark.parametrize("depth", [80, 1500])
def test_deep_or_cyclic_subgraphs_fail_fast(tmp_path, depth):
    def edit(f):
        grp = f["node/nodes"].create_group("deep")
        for _ in range(depth):
            grp.create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
            grp.create_dataset("edges", data=np.zeros((0,)))
            grp = grp.create_group("nodes").create_group("g")

    path = _edit(tmp_path, edit)
    start = time.perf_counter()
    with pytest.raises(nirjax.NirFileError, match="nest more than 64"):
        nirjax.read(path)
    assert time.perf_counter() - start < 5

    def cycle(f):
        grp = f["node/nodes"].create_group("loop")
        grp.create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
        grp.create_dataset("edges", data=np.zeros((0,)))
        grp["nodes"] = f["node/nodes"]

    with pytest.raises(nirjax.NirFileError, match="cycle"):
        nirjax.read(_edit(tmp_path, cycle, "cycle.nir"))


@pytest.mark.parametrize("field,data,match", [
    ("groups", np.inf, "whole numbers"), ("groups", np.zeros(0), "one integer"),
    ("stride", np.array(["2", "2"], dtype=object), "text"),
    ("weight", np.zeros((2, 2, 3, 3), np.longdouble), "float128"),
    ("weight", np.zeros((2, 2, 3, 3), np.complex128), "complex"),
])
def test_bad_conv_fields_in_file(tmp_path, field, data, match):
    rng = rng_for("conv-file")
    conv = nir.Conv2d(input_shape=None, weight=rng.normal(size=(2, 2, 3, 3)), stride=1,
                      padding=1, dilation=1, groups=1, bias=np.zeros(2))
    g = chain((2, 5, 5), (2, 5, 5), ("conv", conv))

    def edit(f):
        node = f["node/nodes/conv"]
        del node[field]
        if np.asarray(data).dtype == object:
            node.create_dataset(field, data=data, dtype=h5py.string_dtype())
        else:
            node.create_dataset(field, data=data)

    with pytest.raises(nirjax.NirFileError, match=match) as info:
        nirjax.read(_edit(tmp_path, edit, g=g))
    assert "conv" in str(info.value) and field in str(info.value)


def test_non_utf8_names_and_strings(tmp_path):
    def name(f):
        h5py.h5g.create(f["node/nodes"].id, b"bad\xffname")

    with pytest.raises(nirjax.NirFileError, match="not UTF-8"):
        nirjax.read(_edit(tmp_path, name))

    def edges(f):
        del f["node/edges"]
        f["node"].create_dataset("edges", data=np.array([[b"in\xff", b"lif"]], dtype=object),
                                 dtype=h5py.string_dtype("ascii"))

    with pytest.raises(nirjax.NirFileError, match="not UTF-8"):
        nirjax.read(_edit(tmp_path, edges, "edges.nir"))


# ----------------------------------------------------------------------------- 5. values


@pytest.mark.parametrize("edit,error,words", [
    (lambda g: setattr(g.nodes["lif"], "tau", np.full(3, 1e-50)), nirjax.ParameterError,
     ["'lif'", "'tau'", "float32"]),
    (lambda g: g.nodes["w"].weight.__setitem__((0, 0), 1e40), nirjax.ParameterError,
     ["'w'", "'weight'", "1e+40", "float32"]),
    (lambda g: setattr(g.nodes["input"], "input_type", {"input": np.array(["3"])}),
     nirjax.ParameterError, ["'input'", "integers"]),
    (lambda g: setattr(g.nodes["input"], "input_type", {"input": np.array([2.5])}),
     nirjax.ParameterError, ["'input'", "whole numbers", "2.5"]),
    (lambda g: setattr(g.nodes["input"], "input_type", {"input": np.array([-3])}),
     nirjax.ParameterError, ["'input'", ">= 1"]),
    (lambda g: setattr(g.nodes["output"], "output_type", {"output": np.array([3, 1])}),
     nirjax.ShapeError, ["'output'", "(3, 1)"]),
    (lambda g: setattr(g.nodes["lif"], "tau", [[1e-3], [1e-3, 2e-3]]), nirjax.ParameterError,
     ["'lif'", "'tau'"]),
    (lambda g: setattr(g.nodes["lif"], "tau", np.full(3, 1e-3) + 1j), nirjax.ParameterError,
     ["'lif'", "'tau'", "complex"]),
])
def test_values_are_validated_before_the_cast(edit, error, words):
    g = _lif_graph()
    edit(g)
    with pytest.raises(error) as info:
        nirjax.compile(g, dt=DT)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_float64_keeps_what_float32_refuses(x64):
    g = _lif_graph()
    g.nodes["w"].weight[0, 0] = 1e40
    nirjax.compile(g, dt=DT)  # representable in float64


@pytest.mark.parametrize("field,value", [("groups", 2.5), ("stride", (1.5, 1)), ("groups", "2")])
def test_non_integer_conv_geometry(field, value):
    rng = rng_for("geometry")
    kwargs = dict(input_shape=None, weight=rng.normal(size=(2, 1, 3, 3)), stride=1, padding=1,
                  dilation=1, groups=2, bias=np.zeros(2))
    conv = nir.Conv2d(**kwargs)
    object.__setattr__(conv, field, value)
    with pytest.raises(nirjax.ParameterError, match=f"'conv'.*'{field}'"):
        nirjax.compile(chain((2, 5, 5), (2, 5, 5), ("conv", conv)), dt=DT)


@pytest.mark.parametrize("delay", [1e16, 1e6])
def test_huge_delay_is_refused_before_allocation(delay):
    g = chain((2,), (2,), ("d", nir.Delay(delay=np.full(2, delay))))
    with pytest.raises(nirjax.LimitError) as info:
        nirjax.compile(g, dt=1e-3)
    assert "'d'" in str(info.value) and "max_delay_steps" in str(info.value)


def test_complex_input_is_refused():
    model = nirjax.compile(_lif_graph(), dt=DT)
    with pytest.raises(nirjax.InputError, match="complex"):
        model(np.zeros((3, 1, 3)) + 1j)


@pytest.mark.parametrize("kind", ["self", "deep"])
def test_self_referencing_or_very_deep_graph_objects(kind):
    g = _lif_graph()
    if kind == "self":
        g.nodes["me"] = g
    else:
        for _ in range(1500):
            g = nir.NIRGraph(nodes={"g": g}, edges=[], type_check=False)
    start = time.perf_counter()
    with pytest.raises(nirjax.GraphError, match="contains itself|nest more than"):
        nirjax.compile(g, dt=DT)
    with pytest.raises(nirjax.NirFileError, match="contains itself|nest more than"):
        nirjax.write(io.BytesIO(), g)
    assert time.perf_counter() - start < 5


# ----------------------------------------------------------------------------- memory


@pytest.mark.parametrize("make,culprit", [
    (lambda: chain((3,), (3,), ("d", nir.Delay(delay=np.full(3, 1e9 * 1e-4)))), "'d'"),
    (lambda: chain((10 ** 10,), (10 ** 10,), ("s", nir.Scale(scale=np.array(2.0)))), "'input'"),
    (lambda: chain((1, 4, 4), None, ("conv", nir.Conv2d(
        input_shape=None, weight=np.ones((1, 1, 3, 3)), stride=1, padding=60000, dilation=1,
        groups=1, bias=np.zeros(1)))), "'conv'"),
])
def test_memory_estimate_refuses_huge_state_or_buffers(make, culprit):
    g = make()
    if g.nodes["output"].output_type["output"] is None:
        g.nodes["output"].output_type = {"output": None}
    with nirjax.set_limits(max_delay_steps=2 * 10 ** 9):
        with pytest.raises(nirjax.LimitError) as info:
            nirjax.compile(g, dt=1e-4)
    message = str(info.value)
    assert culprit in message and "GiB" in message and "max_memory_bytes" in message


def test_init_state_of_a_huge_batch_is_refused():
    model = nirjax.compile(_lif_graph(), dt=DT)
    with pytest.raises(nirjax.LimitError, match=r"init_state\(1099511627776\)"):
        model.init_state(2 ** 40)
    with nirjax.set_limits(max_memory_bytes=1 << 10):
        with pytest.raises(nirjax.LimitError):
            model.init_state(100)
    model.init_state(100)


def test_run_of_a_huge_input_view_is_refused_before_the_copy():
    """A broadcast view of 10**9 steps costs nothing until it is cast: run checks the
    estimate (inputs and outputs of every step) first."""
    model = nirjax.compile(_lif_graph(), dt=DT)
    n = model.input_shapes["input"][0]
    xs = np.broadcast_to(np.float32(1), (10 ** 9, 2, n))
    with pytest.raises(nirjax.LimitError, match=r"a run of 1000000000 steps.*inputs and outputs"):
        model(xs)


# ----------------------------------------------------------------------------- 6. run time


@pytest.fixture(scope="module")
def model():
    return nirjax.compile(_lif_graph(), dt=DT)


def _params_with(model, node, field, value):
    params = dict(model.params)
    params[node] = params[node]._replace(**{field: value})
    return params


@pytest.mark.parametrize("make,words", [
    (lambda m: {k: v for k, v in m.params.items() if k != "lif"}, ["'lif'", "missing"]),
    (lambda m: _params_with(m, "lif", "tau", None), ["'lif'", "tau", "None"]),
    (lambda m: _params_with(m, "w", "weight", np.zeros((4, 4))), ["'w'", "weight", "(4, 4)"]),
    (lambda m: _params_with(m, "w", "weight", np.zeros((3, 3), np.complex64)), ["'w'", "complex"]),
    (lambda m: _params_with(m, "w", "weight", "abc"), ["'w'", "weight"]),
    (lambda m: list(m.params.values()), ["dict"]),
    (lambda m: {**m.params, "ghost": m.params["w"]}, ["ghost"]),
])
def test_bad_params_pytree(model, make, words):
    with pytest.raises(nirjax.InputError) as info:
        model.run(make(model), np.zeros((4, 2, 3)))
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_zero_steps(model):
    with pytest.raises(nirjax.InputError, match="T = 0"):
        model(np.zeros((0, 2, 3)))


def test_state_from_another_model(model):
    other = nirjax.compile(chain((3,), (3,), ("lif2", neuron("LIF", rng_for("other"), (3,)))),
                           dt=DT)
    with pytest.raises(nirjax.InputError, match="does not belong to this model"):
        model.run(model.params, np.zeros((4, 2, 3)), other.init_state(2))
    state = model.init_state(2)
    state.nodes["lif"] = None
    with pytest.raises(nirjax.InputError, match="'lif'"):
        model.run(model.params, np.zeros((4, 2, 3)), state)


@pytest.mark.parametrize("xs", [[[[0.0] * 3], [[0.0]]], "abc", None, {"input": {"a": 1}},
                                np.array([object()])])
def test_bad_input_containers(model, xs):
    with pytest.raises(nirjax.InputError):
        model(xs)


@pytest.mark.parametrize("record", [5, [{"a": 1}], [("lif", "v", "x")], [["w", ["v"]]], 2.5])
def test_bad_record(model, record):
    with pytest.raises(nirjax.InputError, match="record"):
        model.run(model.params, np.zeros((4, 2, 3)), record=record)


@pytest.mark.parametrize("sem", [{"ignore": 5}, {"overrides": "abc"},
                                 {"overrides": {"lif": {"bogus": 1}}}, {"overrides": {"lif": 5}},
                                 {5: "x"}, {"detach_reset": "yes"}])
def test_semantics_values_of_the_wrong_type(sem):
    with pytest.raises(nirjax.SemanticsError):
        nirjax.compile(_lif_graph(), dt=DT, semantics=sem)


def test_batch_size_true_is_not_an_int(model):
    with pytest.raises(nirjax.InputError, match="batch_size"):
        model.init_state(True)


def test_checks_work_under_jit_and_grad(model):
    xs = np.ones((4, 2, 3), np.float32)
    loss = lambda p: model.run(p, xs)[0].sum()
    grads = jax.grad(loss)(model.params)
    assert set(grads) == set(model.params)


# ----------------------------------------------------------------------------- exports


@pytest.mark.parametrize("path", sorted(EXPORTS.glob("*.nir")), ids=lambda p: p.stem)
def test_peer_exported_files_load_and_run(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = nirjax.compile(path, dt=1e-3)
        (shape,) = model.input_shapes.values()
        ys = model(np.ones((4, 2) + shape, np.float32))
    leaves = jax.tree_util.tree_leaves(ys)
    assert leaves and all(np.all(np.isfinite(np.asarray(y))) for y in leaves)
    shape_warnings = [w for w in caught if issubclass(w.category, nirjax.ShapeWarning)]
    if path.stem.split("_")[0] in ("norse", "snntorch", "rockpool"):
        # a batch axis of 1 on Input and Output: dropped, with the fix named
        assert any("Input node 'input' declares shape (1, 4)" in str(w.message)
                   and "input_type to [4]" in str(w.message) for w in shape_warnings)
        assert any("Output node 'output'" in str(w.message) for w in shape_warnings)
        assert model.input_shapes == {"input": (4,)}
    else:
        assert not shape_warnings


def test_batch_axis_that_does_not_fit_is_still_an_error():
    rng = rng_for("batch-axis")
    g = chain((1, 5), (3,), ("w", nir.Affine(weight=rng.normal(size=(3, 4)), bias=np.zeros(3))))
    with pytest.raises(nirjax.ShapeError, match="'w'"):
        nirjax.compile(g, dt=DT)


def test_limits_api():
    limits = nirjax.limits()
    assert isinstance(limits, nirjax.Limits)
    previous = nirjax.set_limits(max_depth=3)
    try:
        g = _lif_graph()
        for _ in range(5):
            g = nir.NIRGraph(nodes={"g": g}, edges=[], type_check=False)
        with pytest.raises(nirjax.GraphError, match="max_depth"):
            nirjax.compile(g, dt=DT)
    finally:
        nirjax.set_limits(**previous._asdict())
    assert nirjax.limits() == limits
    with pytest.raises(nirjax.NirjaxError, match="unknown limit"):
        nirjax.set_limits(max_bananas=3)

