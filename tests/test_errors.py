"""Bad input: each case raises nirjax's own exception (``nirjax.errors``) whose message names
the culprit (file, node, edge, field or input) and says what was expected."""

from __future__ import annotations

import shutil

import h5py
import nir
import numpy as np
import pytest

import nirjax
from builders import chain, graph, io_nodes, neuron, paper_path, read_quiet, rng_for

DT = 1e-3


def _lif_graph(**params):
    rng = rng_for("errors-lif")
    return chain((3,), (3,), ("w", nir.Affine(weight=rng.normal(size=(3, 3)), bias=np.zeros(3))),
                 ("lif1", neuron("LIF", rng, (3,), **params)))


# ----------------------------------------------------------------------------- files


def test_missing_file(tmp_path):
    path = tmp_path / "nope.nir"
    with pytest.raises(nirjax.NirFileError, match="nope.nir"):
        nirjax.read(path)
    with pytest.raises(nirjax.NirFileError, match="nope.nir"):
        nirjax.compile(path, dt=DT)


def test_non_hdf5_file(tmp_path):
    path = tmp_path / "text.nir"
    path.write_text("this is not an HDF5 file\n")
    with pytest.raises(nirjax.NirFileError, match="text.nir") as info:
        nirjax.read(path)
    assert "HDF5" in str(info.value)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_file(tmp_path, fraction):
    data = paper_path("braille_bias_zero").read_bytes()
    path = tmp_path / "cut.nir"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(nirjax.NirFileError, match="cut.nir"):
        read_quiet(path)


def test_hdf5_file_that_is_not_nir(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.arange(3))
    with pytest.raises(nirjax.NirFileError, match="other.h5"):
        nirjax.read(path)


def _patched_copy(tmp_path, name, edit):
    path = tmp_path / name
    nirjax.write(path, _lif_graph())
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_unknown_node_type_in_file(tmp_path):
    def edit(f):
        del f["node/nodes/lif1/type"]
        f["node/nodes/lif1"].create_dataset("type", data="QuantumNeuron", dtype=h5py.string_dtype())

    path = _patched_copy(tmp_path, "unknown.nir", edit)
    with pytest.raises(nirjax.GraphError) as info:
        nirjax.read(path)
    assert "QuantumNeuron" in str(info.value) and "lif1" in str(info.value)


def test_missing_required_field_in_file(tmp_path):
    path = _patched_copy(tmp_path, "notau.nir", lambda f: f["node/nodes/lif1"].__delitem__("tau"))
    with pytest.raises(nirjax.NirFileError) as info:
        nirjax.read(path)
    assert "tau" in str(info.value) and "lif1" in str(info.value)


def test_unknown_field_in_file_is_not_dropped_silently(tmp_path):
    path = _patched_copy(tmp_path, "extra.nir",
                         lambda f: f["node/nodes/lif1"].create_dataset("refractory", data=np.ones(3)))
    with pytest.raises(nirjax.NirFileError) as info:
        nirjax.read(path)
    assert "refractory" in str(info.value) and "lif1" in str(info.value)
    with pytest.warns(nirjax.NirjaxWarning, match="refractory"):
        g = nirjax.read(path, strict=False)
    assert "refractory" in g.nodes["lif1"].metadata["nirjax_unread"]


def test_nan_parameter_in_file(tmp_path):
    def edit(f):
        tau = f["node/nodes/lif1/tau"][()]
        tau[1] = np.nan
        del f["node/nodes/lif1/tau"]
        f["node/nodes/lif1"].create_dataset("tau", data=tau)

    path = _patched_copy(tmp_path, "nan.nir", edit)
    with pytest.raises(nirjax.ParameterError) as info:
        nirjax.compile(path, dt=DT)
    assert "lif1" in str(info.value) and "tau" in str(info.value) and "NaN" in str(info.value)


# ----------------------------------------------------------------------------- structure


class QuantumNeuron(nir.NIRNode):
    """A node type nirjax does not know."""

    def __init__(self):
        self.metadata = {}
        self.input_type = {"input": np.array([3])}
        self.output_type = {"output": np.array([3])}


def test_unknown_node_type_in_graph_object():
    g = graph({**io_nodes((3,), (3,)), "qn": QuantumNeuron()}, [("input", "qn"), ("qn", "output")])
    with pytest.raises(nirjax.GraphError) as info:
        nirjax.compile(g, dt=DT)
    assert "qn" in str(info.value) and "QuantumNeuron" in str(info.value)


def test_not_a_graph():
    with pytest.raises(nirjax.GraphError, match="NIRGraph"):
        nirjax.compile({"nodes": {}}, dt=DT)


@pytest.mark.parametrize("edge,culprit", [(("w", "lif9"), "lif9"), (("ghost", "lif1"), "ghost")])
def test_dangling_edge(edge, culprit):
    g = _lif_graph()
    g.edges.append(edge)
    with pytest.raises(nirjax.GraphError) as info:
        nirjax.compile(g, dt=DT)
    assert culprit in str(info.value) and "edge" in str(info.value)


def test_duplicate_edge():
    g = _lif_graph()
    g.edges.append(("w", "lif1"))
    with pytest.raises(nirjax.GraphError) as info:
        nirjax.compile(g, dt=DT)
    assert "'w'" in str(info.value) and "'lif1'" in str(info.value)
    assert "twice" in str(info.value) or "already" in str(info.value)


def test_edge_into_input_node():
    g = _lif_graph()
    g.edges.append(("lif1", "input"))
    with pytest.raises(nirjax.GraphError, match="input"):
        nirjax.compile(g, dt=DT)


def test_shape_mismatch_between_nodes():
    rng = rng_for("mismatch")
    g = chain((3,), (5,), ("w", nir.Affine(weight=rng.normal(size=(4, 3)), bias=np.zeros(4))),
              ("lif1", neuron("LIF", rng, (5,))))
    with pytest.raises(nirjax.ShapeError) as info:
        nirjax.compile(g, dt=DT)
    message = str(info.value)
    assert "lif1" in message and "(4,)" in message and "(5,)" in message


def test_fan_in_of_different_shapes():
    rng = rng_for("fan-in-mismatch")
    g = graph({**io_nodes((3,), (4,)), "a": nir.Affine(weight=rng.normal(size=(4, 3)), bias=np.zeros(4)),
               "b": nir.Affine(weight=rng.normal(size=(5, 3)), bias=np.zeros(5)),
               "lif1": neuron("LIF", rng, (4,))},
              [("input", "a"), ("input", "b"), ("a", "lif1"), ("b", "lif1"), ("lif1", "output")])
    with pytest.raises(nirjax.ShapeError) as info:
        nirjax.compile(g, dt=DT)
    assert "lif1" in str(info.value)


def test_conv_input_shape_disagrees_with_incoming():
    rng = rng_for("conv-mismatch")
    conv = nir.Conv2d(input_shape=np.array([8, 8]), weight=rng.normal(size=(2, 2, 3, 3)),
                      stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(2))
    g = chain((2, 6, 6), (2, 6, 6), ("conv", conv))
    with pytest.raises(nirjax.ShapeError, match="conv"):
        nirjax.compile(g, dt=DT)


def test_same_padding_with_stride_rejected():
    rng = rng_for("same-stride")
    conv = nir.Conv2d(input_shape=None, weight=rng.normal(size=(2, 2, 3, 3)), stride=2,
                      padding="same", dilation=1, groups=1, bias=np.zeros(2))
    with pytest.raises(nirjax.ParameterError, match="conv"):
        nirjax.compile(chain((2, 6, 6), (2, 6, 6), ("conv", conv)), dt=DT)


# ----------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("value", [0.0, -1e-3])
def test_non_positive_lif_tau(value):
    tau = np.array([1e-3, value, 2e-3])
    with pytest.raises(nirjax.ParameterError) as info:
        nirjax.compile(_lif_graph(tau=tau), dt=DT)
    message = str(info.value)
    assert "lif1" in message and "tau" in message and "(1,)" in message


@pytest.mark.parametrize("field", ["tau_syn", "tau_mem"])
def test_non_positive_cubalif_time_constants(field):
    rng = rng_for("cuba-tau")
    bad = np.array([2e-3, 3e-3, 0.0 if field == "tau_mem" else -2e-3])
    g = chain((3,), (3,), ("cuba", neuron("CubaLIF", rng, (3,), **{field: bad})))
    with pytest.raises(nirjax.ParameterError) as info:
        nirjax.compile(g, dt=DT)
    assert "cuba" in str(info.value) and field in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("field", ["v_threshold", "r", "v_leak", "v_reset"])
def test_non_finite_neuron_parameter(bad, field):
    rng = rng_for("nonfinite")
    values = getattr(neuron("LIF", rng, (3,)), field).copy()
    values[2] = bad
    with pytest.raises(nirjax.ParameterError) as info:
        nirjax.compile(_lif_graph(**{field: values}), dt=DT)
    message = str(info.value)
    assert "lif1" in message and field in message
    assert ("NaN" in message) if np.isnan(bad) else ("inf" in message)


def test_nan_in_weight():
    g = _lif_graph()
    g.nodes["w"].weight[1, 2] = np.nan
    with pytest.raises(nirjax.ParameterError) as info:
        nirjax.compile(g, dt=DT)
    assert "'w'" in str(info.value) and "weight" in str(info.value) and "NaN" in str(info.value)


def test_negative_delay():
    g = chain((2,), (2,), ("d", nir.Delay(delay=np.array([1e-3, -1e-3]))))
    with pytest.raises(nirjax.ParameterError, match="'d'"):
        nirjax.compile(g, dt=DT)


# ----------------------------------------------------------------------------- semantics


def test_missing_dt_suggests_paper_value():
    with pytest.raises(nirjax.SemanticsError) as info:
        nirjax.compile(_lif_graph())
    assert "dt" in str(info.value) and "1e-4" in str(info.value)


@pytest.mark.parametrize("dt", [0.0, -1e-4, float("nan"), float("inf"), "fast", "1e-4", True,
                                np.array([1e-4]), 1e-4j])
def test_bad_dt(dt):
    with pytest.raises(nirjax.SemanticsError, match="dt"):
        nirjax.compile(_lif_graph(), dt=dt)


@pytest.mark.parametrize("field,value", [("integrator", "rk4"), ("reset", "zero"),
                                         ("threshold_test", ">>"), ("cuba_current", "mid"),
                                         ("initial_v", "random")])
def test_bad_semantics_value(field, value):
    with pytest.raises(nirjax.SemanticsError) as info:
        nirjax.compile(_lif_graph(), dt=DT, semantics={field: value})
    assert field in str(info.value) and value in str(info.value)


def test_unknown_semantics_field_and_profile():
    with pytest.raises(nirjax.SemanticsError, match="colour"):
        nirjax.compile(_lif_graph(), dt=DT, semantics={"colour": "blue"})
    with pytest.raises(nirjax.SemanticsError, match="loihi9"):
        nirjax.compile(_lif_graph(), dt=DT, semantics="loihi9")


@pytest.mark.parametrize("option,value,expected", [
    ("precision", "bogus", "'highest'"),
    ("precision", 3, "precision"),
    ("chunk_bytes", -1, "positive int"),
    ("chunk_bytes", 2.5e6, "positive int"),
    ("unroll", 0, "positive int"),
    ("unroll", True, "bool given"),
    ("checkpoint", -1, "'step'"),
    ("checkpoint", "steps", "'step'"),
    ("checkpoint", False, "bool given"),
    ("chunk", 2.5, "positive int"),
    ("pallas", "x", "'interpret'"),
    ("pallas", 1, "'interpret'"),
    ("optimize", "yes", "True or False"),
    ("fast_backward", 1, "True or False"),
    ("matmul_dtype", "int8", "floating dtype"),
    ("matmul_dtype", "bf16", "not a dtype"),
    ("dtype", 32, "dtype"),
    ("mesh", "devices", "mesh"),
    ("colour", "blue", "unknown compile option.*unroll"),
])
def test_bad_compile_option(option, value, expected):
    """Every option is checked (type first) when compile is called, before anything runs."""
    with pytest.raises(nirjax.OptionsError, match=expected) as info:
        nirjax.compile(_lif_graph(), dt=DT, **{option: value})
    assert option in str(info.value)


def test_compile_options_are_typed_and_frozen():
    from nirjax.compiler import CompileOptions

    opts = CompileOptions(unroll=np.int64(2), chunk=4, pallas="interpret")
    assert opts.unroll == 2 and type(opts.unroll) is int
    with pytest.raises(AttributeError):
        opts.unroll = 3
    model = nirjax.compile(_lif_graph(), dt=DT, options=opts)
    assert model.options is opts
    with pytest.raises(nirjax.OptionsError, match="not both"):
        nirjax.compile(_lif_graph(), dt=DT, options=opts, unroll=2)


def test_override_of_unknown_node():
    sem = nirjax.Semantics().override("lif7", integrator="exact")
    with pytest.raises(nirjax.SemanticsError, match="lif7"):
        nirjax.compile(_lif_graph(), dt=DT, semantics=sem)


# ----------------------------------------------------------------------------- inputs and state


@pytest.fixture(scope="module")
def model():
    return nirjax.compile(_lif_graph(), dt=DT)


def test_input_of_wrong_shape(model):
    with pytest.raises(nirjax.InputError) as info:
        model(np.zeros((10, 2, 4)))
    message = str(info.value)
    assert "input" in message and "(10, 2, 4)" in message and "(3,)" in message


def test_input_of_wrong_rank_gives_hint(model):
    with pytest.raises(nirjax.InputError) as info:
        model(np.zeros((10, 3)))  # forgot the batch axis
    assert "batch" in str(info.value) and "(10, 3)" in str(info.value)
    with pytest.raises(nirjax.InputError) as info:
        model.step(model.params, model.init_state(2), np.zeros(3))
    assert "batch" in str(info.value)


def test_non_numeric_input(model):
    with pytest.raises(nirjax.InputError, match="input"):
        model(np.full((4, 2, 3), "a"))


def test_empty_batch(model):
    with pytest.raises(nirjax.InputError, match="batch"):
        model(np.zeros((4, 0, 3)))


def test_wrong_dict_keys_for_multi_input_graph():
    rng = rng_for("keys")
    g = graph({"in_a": nir.Input(input_type=np.array([3])), "in_b": nir.Input(input_type=np.array([3])),
               "lif1": neuron("LIF", rng, (3,)), "output": nir.Output(output_type=np.array([3]))},
              [("in_a", "lif1"), ("in_b", "lif1"), ("lif1", "output")])
    m = nirjax.compile(g, dt=DT)
    xs = np.zeros((5, 2, 3))
    with pytest.raises(nirjax.InputError) as info:
        m({"in_a": xs, "in_c": xs})
    assert "in_b" in str(info.value) and "in_c" in str(info.value)
    with pytest.raises(nirjax.InputError) as info:
        m(xs)  # an array for a graph with two inputs
    assert "in_a" in str(info.value) and "in_b" in str(info.value)
    with pytest.raises(nirjax.InputError) as info:
        m({"in_a": xs, "in_b": np.zeros((6, 2, 3))})  # disagreeing time axes
    assert "in_a" in str(info.value) and "in_b" in str(info.value)


def test_state_with_wrong_batch_size(model):
    with pytest.raises(nirjax.InputError) as info:
        model.run(model.params, np.zeros((5, 3, 3)), model.init_state(batch_size=2))
    assert "2" in str(info.value) and "3" in str(info.value)
    with pytest.raises(nirjax.InputError):
        model.step(model.params, model.init_state(batch_size=4), np.zeros((3, 3)))


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "8"])
def test_bad_batch_size(model, batch_size):
    with pytest.raises(nirjax.InputError, match="batch_size"):
        model.init_state(batch_size=batch_size)


def test_state_of_wrong_type(model):
    with pytest.raises(nirjax.InputError, match="init_state"):
        model.run(model.params, np.zeros((5, 2, 3)), {"lif1": np.zeros((2, 3))})


def test_record_of_unknown_node(model):
    with pytest.raises(nirjax.NirjaxError) as info:
        model.run(model.params, np.zeros((5, 2, 3)), record=["lif9"])
    assert "lif9" in str(info.value) and "lif1" in str(info.value)


def test_record_of_unknown_field(model):
    with pytest.raises(nirjax.InputError) as info:
        model.run(model.params, np.zeros((5, 2, 3)), record=[("lif1", "u")])
    assert "'u'" in str(info.value) and "lif1" in str(info.value) and "'v'" in str(info.value)
    with pytest.raises(nirjax.InputError, match="'w'"):
        model.run(model.params, np.zeros((5, 2, 3)), record=[("w", "v")])  # Affine: no state


def test_errors_are_also_builtin_exceptions(tmp_path):
    """Generic handlers keep working: NirFileError is an OSError, the others ValueErrors."""
    with pytest.raises(OSError):
        nirjax.read(tmp_path / "missing.nir")
    with pytest.raises(ValueError):
        nirjax.compile(_lif_graph(tau=np.zeros(3)), dt=DT)


def test_errors_survive_python_optimizations(tmp_path):
    """Validation must not rely on ``assert`` (stripped by ``python -O``)."""
    import subprocess
    import sys

    src = paper_path("braille_bias_zero_subgraph")
    shutil.copy(src, tmp_path / "bad.nir")
    code = ("import warnings, nirjax\nwarnings.simplefilter('ignore')\n"
            "try:\n    nirjax.read('bad.nir')\nexcept nirjax.GraphError as e:\n    print('GraphError', e)\n"
            "import numpy as np, nir\n"
            "g = nir.NIRGraph(nodes={'input': nir.Input(np.array([2])), 'lif': nir.LIF("
            "tau=np.array([1e-3, 0.0]), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),"
            " 'output': nir.Output(np.array([2]))}, edges=[('input','lif'),('lif','output')], type_check=False)\n"
            "try:\n    nirjax.compile(g, dt=1e-3)\nexcept nirjax.ParameterError as e:\n    print('ParameterError', e)\n")
    out = subprocess.run([sys.executable, "-O", "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "GraphError" in out.stdout and "ParameterError" in out.stdout


def test_flattened_name_collision():
    rng = rng_for("collision")
    sub = graph({"i": nir.Input(input_type=np.array([3])), "lif": neuron("LIF", rng, (3,)),
                 "o": nir.Output(output_type=np.array([3]))}, [("i", "lif"), ("lif", "o")])
    g = graph({**io_nodes((3,), (3,)), "sub": sub, "sub.lif": neuron("LIF", rng, (3,))},
              [("input", "sub"), ("sub", "sub.lif"), ("sub.lif", "output")])
    with pytest.raises(nirjax.GraphError, match="sub.lif"):
        nirjax.compile(g, dt=DT)


def test_ambiguous_subgraph_port():
    rng = rng_for("ambiguous-port")
    sub = graph({"i1": nir.Input(input_type=np.array([3])), "i2": nir.Input(input_type=np.array([3])),
                 "lif": neuron("LIF", rng, (3,)), "o": nir.Output(output_type=np.array([3]))},
                [("i1", "lif"), ("i2", "lif"), ("lif", "o")])
    g = graph({**io_nodes((3,), (3,)), "sub": sub}, [("input", "sub"), ("sub", "output")])
    with pytest.raises(nirjax.GraphError) as info:
        nirjax.compile(g, dt=DT)
    assert "'sub'" in str(info.value) and "Input" in str(info.value)


def test_edge_out_of_output_node():
    g = _lif_graph()
    g.edges.append(("output", "w"))
    with pytest.raises(nirjax.GraphError, match="output"):
        nirjax.compile(g, dt=DT)


@pytest.mark.parametrize("drop", ["input", "output"])
def test_graph_without_input_or_output(drop):
    g = _lif_graph()
    del g.nodes[drop]
    g.edges = [e for e in g.edges if drop not in e]
    with pytest.raises(nirjax.GraphError, match=drop.capitalize()):
        nirjax.compile(g, dt=DT)


def test_flatten_dims_outside_the_unbatched_shape():
    node = nir.Flatten(input_type={"input": None}, start_dim=1, end_dim=3)
    with pytest.raises(nirjax.ShapeError) as info:
        nirjax.compile(chain((2, 3, 4), (2, 12), ("flat", node)), dt=DT)
    assert "flat" in str(info.value) and "(2, 3, 4)" in str(info.value)


def test_conv_input_too_small_for_kernel():
    rng = rng_for("small-conv")
    conv = nir.Conv2d(input_shape=None, weight=rng.normal(size=(2, 2, 5, 5)), stride=1,
                      padding=0, dilation=1, groups=1, bias=np.zeros(2))
    with pytest.raises(nirjax.ShapeError, match="conv"):
        nirjax.compile(chain((2, 3, 3), (2, 1, 1), ("conv", conv)), dt=DT)


def test_non_float_dtype_rejected():
    with pytest.raises(nirjax.NirjaxError, match="dtype"):
        nirjax.compile(_lif_graph(), dt=DT, dtype=np.int32)


def test_float64_without_x64_is_not_silently_truncated():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            model = nirjax.compile(_lif_graph(), dt=DT, dtype=np.float64)
        except nirjax.NirjaxError:
            return
        ys = model(np.zeros((2, 1, 3)))
    assert np.asarray(ys).dtype == model.dtype
