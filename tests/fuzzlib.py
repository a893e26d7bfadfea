"""Case generators and the case runner shared by the fuzz tests and the fuzz campaign.

A *case* is one attempt, by a hostile or careless user, to break nirjax on one surface. Every
case is a pure function of ``(surface, seed)``. The runner classifies what happened:

* ``ok``: the call succeeded and the result is correct (checked against the float64 oracle
  ``oracle.py``, against the same graph compiled from the object, or byte-for-byte);
* ``clean``: nirjax raised a :class:`nirjax.NirjaxError` (the promised behaviour on bad input);
* ``bare``: anything else was raised (``KeyError``, ``TypeError``, JAX errors, ...);
* ``accepted``: a case that must be refused (e.g. ``tau=1e-50`` in float32) compiled;
* ``wrong``: a result differs from the oracle, or a round trip changed the answer;
* ``destroyed``: a failed write damaged the file that was there before;
* ``hang`` / ``crash``: set by the campaign's parent process (timeout / worker died).

Surfaces:

``file``
    a valid ``.nir`` file (paper files, peer-exported files, random graphs written with
    ``nir.write``) mutated by a byte flip, bit flips near the ``version`` dataset, a
    truncation, or a structural HDF5 edit; then ``nirjax.read`` + compile + 3 steps.
``graph``
    a random valid graph over every primitive (chains, fan-in, cycles, self-loops,
    subgraphs, Delays); compiled with ``optimize`` True and False, both checked against the
    float64 oracle (run under ``jax_enable_x64``).
``value``
    a random valid graph with one bad value or structure (underflowing time constants,
    overflowing weights, shapes as strings/floats/negatives, non-integer geometry, huge
    declared sizes, deep or self-referencing nesting, disagreeing Output types, ...).
``option``
    random ``compile`` options and ``semantics`` values, valid and invalid.
``runtime``
    misuse of a compiled model: ``T = 0``, broken params pytrees, foreign state, ragged or
    complex inputs, bad ``record`` entries, huge ``init_state``.
``roundtrip``
    a random valid graph written and read back (to a path and to a file object), and the
    same graph with its node dict and edge list shuffled: identical outputs, bit for bit.
``write``
    a bad graph written over an existing file: a clean error and the old file intact.
"""

from __future__ import annotations

import copy
import io
import pathlib
import tempfile
import traceback
import warnings

import h5py
import nir
import numpy as np

from builders import neuron  # the random neurons of the oracle tests

HERE = pathlib.Path(__file__).parent
SURFACES = ("file", "graph", "value", "option", "runtime", "roundtrip", "write")
DT = 1e-3
NEURONS = ("I", "IF", "LI", "LIF", "CubaLI", "CubaLIF")


# ----------------------------------------------------------------------------- random graphs


def _layer(rng, shape):
    """A random primitive taking ``shape``; returns (node, out_shape)."""
    shape = tuple(shape)
    if len(shape) == 3:
        c, h, w = shape
        pick = rng.choice(["conv2d", "sumpool", "avgpool", "flatten", "scale", "neuron"])
        if pick == "conv2d" and h >= 2 and w >= 2:
            groups = int(rng.choice([1, c])) if c > 1 else 1
            c_out = int(groups * rng.integers(1, 3))
            k = (int(rng.integers(1, min(3, h) + 1)), int(rng.integers(1, min(3, w) + 1)))
            stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            pad = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
            weight = rng.normal(size=(c_out, c // groups) + k) * 0.5
            node = nir.Conv2d(input_shape=np.array([h, w]) if rng.random() < 0.5 else None,
                              weight=weight, stride=np.array(stride), padding=np.array(pad),
                              dilation=np.array([1, 1]), groups=groups,
                              bias=rng.normal(size=(c_out,)) * 0.1)
            ho = (h + 2 * pad[0] - k[0]) // stride[0] + 1
            wo = (w + 2 * pad[1] - k[1]) // stride[1] + 1
            return node, (c_out, ho, wo)
        if pick in ("sumpool", "avgpool") and h >= 2 and w >= 2:
            k = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            cls = nir.SumPool2d if pick == "sumpool" else nir.AvgPool2d
            node = cls(kernel_size=np.array(k), stride=np.array(s), padding=np.array([0, 0]))
            return node, (c, (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1)
        if pick == "scale":
            return nir.Scale(scale=rng.normal(size=shape)), shape
        if pick == "neuron":
            return neuron(str(rng.choice(NEURONS)), rng, shape), shape
        return (nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1),
                (c * h * w,))
    if len(shape) == 2:
        c, n = shape
        if rng.random() < 0.6 and n >= 2:
            k = int(rng.integers(1, min(3, n) + 1))
            c_out = int(rng.integers(1, 4))
            node = nir.Conv1d(input_shape=n if rng.random() < 0.5 else None,
                              weight=rng.normal(size=(c_out, c, k)) * 0.5, stride=1,
                              padding=int(rng.integers(0, 2)), dilation=1, groups=1,
                              bias=rng.normal(size=(c_out,)) * 0.1)
            pad = int(node.padding)
            return node, (c_out, n + 2 * pad - k + 1)
        return (nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=1),
                (c * n,))
    (n,) = shape
    pick = rng.choice(["affine", "linear", "scale", "threshold", "delay", "neuron", "neuron"])
    if pick in ("affine", "linear"):
        m = int(rng.integers(1, 6))
        w = rng.normal(size=(m, n)) * (1.5 / np.sqrt(n))
        node = (nir.Affine(weight=w, bias=rng.normal(size=(m,)) * 0.2) if pick == "affine"
                else nir.Linear(weight=w))
        return node, (m,)
    if pick == "scale":
        return nir.Scale(scale=rng.normal(size=(n,))), (n,)
    if pick == "threshold":
        return nir.Threshold(threshold=rng.uniform(-0.5, 0.5, (n,))), (n,)
    if pick == "delay":
        return nir.Delay(delay=rng.integers(0, 4, (n,)) * DT), (n,)
    return neuron(str(rng.choice(NEURONS)), rng, (n,)), (n,)


def _wrap(rng, node, in_shape, out_shape):
    """``node`` inside a one-node subgraph (a nested NIRGraph)."""
    return nir.NIRGraph(
        nodes={"i": nir.Input(input_type=np.array(in_shape)), "n": node,
               "o": nir.Output(output_type=np.array(out_shape))},
        edges=[("i", "n"), ("n", "o")], type_check=False)


def random_graph(rng) -> tuple:
    """A random valid graph; returns ``(graph, {input name: shape})``."""
    kind = rng.choice(["vector", "vector", "vector", "image", "sequence"])
    if kind == "image":
        shape = (int(rng.integers(1, 3)), int(rng.integers(2, 6)), int(rng.integers(2, 6)))
    elif kind == "sequence":
        shape = (int(rng.integers(1, 3)), int(rng.integers(2, 7)))
    else:
        shape = (int(rng.integers(1, 6)),)
    names = [f"n{i}" for i in range(int(rng.integers(1, 6)))]
    rng.shuffle(names)
    nodes = {"input": nir.Input(input_type=np.array(shape))}
    edges = []
    shapes = {"input": shape}
    prev = "input"
    for name in names:
        node, out = _layer(rng, shapes[prev])
        if rng.random() < 0.15:
            node = _wrap(rng, node, shapes[prev], out)
        nodes[name] = node
        edges.append((prev, name))
        shapes[name] = out
        prev = name
    nodes["output"] = nir.Output(output_type=np.array(shapes[prev]))
    edges.append((prev, "output"))
    # extra edges: fan-in from a same-shaped earlier node, feedback, self-loops
    chain = ["input"] + names
    for _ in range(int(rng.integers(0, 4))):
        a, b = (str(x) for x in rng.choice(chain, 2))
        if b == "input" or shapes[a] != _in_shape(nodes[b], shapes, edges, b):
            continue
        if (a, b) in edges:
            continue
        if isinstance(nodes[b], nir.NIRGraph) or isinstance(nodes[a], nir.NIRGraph):
            continue
        edges.append((a, b))
    if rng.random() < 0.3:  # a second Input feeding a node of its shape
        target = str(rng.choice(names))
        ishape = _in_shape(nodes[target], shapes, edges, target)
        if ishape is not None and not isinstance(nodes[target], nir.NIRGraph):
            nodes["input2"] = nir.Input(input_type=np.array(ishape))
            edges.append(("input2", target))
            shapes["input2"] = ishape
    g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    inputs = {n: shapes[n] for n in nodes if isinstance(nodes[n], nir.Input)}
    return g, inputs


def _in_shape(node, shapes, edges, name):
    for s, d in edges:
        if d == name:
            return shapes[s]
    return None


def random_inputs(rng, inputs: dict, steps: int, batch: int):
    """Random inputs ``[T, B, *shape]`` for the Input nodes ``inputs`` (a dict when several)."""
    xs = {n: rng.uniform(-0.5, 2.0, (steps, batch) + tuple(s)) for n, s in inputs.items()}
    return xs if len(xs) > 1 else next(iter(xs.values()))


def shuffled(rng, g: nir.NIRGraph) -> nir.NIRGraph:
    """The same graph with its node dicts and edge lists in a random order (recursively)."""
    names = list(g.nodes)
    rng.shuffle(names)
    nodes = {n: shuffled(rng, g.nodes[n]) if isinstance(g.nodes[n], nir.NIRGraph) else g.nodes[n]
             for n in names}
    edges = list(g.edges)
    rng.shuffle(edges)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(g.metadata), type_check=False)


# ----------------------------------------------------------------------------- bad values


def _first(g, types):
    """Name of the first top-level node of one of ``types`` (class names)."""
    for name, node in g.nodes.items():
        if type(node).__name__ in types:
            return name
    return None


def _set(node, field, value):
    object.__setattr__(node, field, value)


def value_mutations():
    """(name, must_fail, fn(rng, graph) -> graph or None) of one bad value each."""

    def neuron_field(value, fields=("tau", "tau_mem", "tau_syn")):
        def fn(rng, g):
            name = _first(g, NEURONS)
            if name is None:
                return None
            node = g.nodes[name]
            field = next((f for f in fields if getattr(node, f, None) is not None), None)
            if field is None:
                return None
            arr = np.array(getattr(node, field), dtype=np.float64)
            v = value(rng, arr) if callable(value) else value
            _set(node, field, v)
            return g
        return fn

    def weight(value):
        def fn(rng, g):
            name = _first(g, ("Affine", "Linear", "Conv1d", "Conv2d"))
            if name is None:
                return None
            w = np.array(g.nodes[name].weight, np.float64)
            w.reshape(-1)[0] = value
            _set(g.nodes[name], "weight", w)
            return g
        return fn

    def io_shape(value, which="Input"):
        def fn(rng, g):
            name = _first(g, (which,))
            field = "input_type" if which == "Input" else "output_type"
            key = "input" if which == "Input" else "output"
            _set(g.nodes[name], field, {key: value(np.asarray(getattr(g.nodes[name], field)[key]))})
            return g
        return fn

    def geometry(field, value, types=("Conv2d", "Conv1d", "SumPool2d", "AvgPool2d")):
        def fn(rng, g):
            name = _first(g, types)
            if name is None:
                return None
            _set(g.nodes[name], field, value)
            return g
        return fn

    def delay(value):
        def fn(rng, g):
            name = _first(g, ("Delay",))
            if name is None:
                out = _first(g, ("Output",))
                src = next(s for s, d in g.edges if d == out)
                shape = _out_shape_guess(g, src)
                if shape is None:
                    return None
                g.nodes["dly"] = nir.Delay(delay=np.full(shape, value))
                g.edges = [(s, "dly" if d == out else d) for s, d in g.edges] + [("dly", out)]
                return g
            _set(g.nodes[name], "delay", np.full(np.shape(g.nodes[name].delay), value))
            return g
        return fn

    def deep(depth):
        def fn(rng, g):
            inner = g
            for _ in range(depth):
                inner = nir.NIRGraph(nodes={"g": inner}, edges=[], type_check=False)
            return inner
        return fn

    def self_ref(rng, g):
        g.nodes["me"] = g
        return g

    def dangling_port(rng, g):
        g.edges.append(("input", "nosuch"))
        return g

    def mixed_scalar(rng, g):
        name = _first(g, NEURONS)
        if name is None:
            return None
        node = g.nodes[name]
        field = next(f for f in ("r", "tau", "v_leak") if getattr(node, f, None) is not None)
        _set(node, field, np.float64(1.0))
        return g

    def conv_padding(rng, g):
        name = _first(g, ("Conv2d", "Conv1d"))
        if name is None:
            return None
        nd = 2 if type(g.nodes[name]).__name__ == "Conv2d" else 1
        _set(g.nodes[name], "padding", np.full(nd, 60000))
        _set(g.nodes[name], "input_shape", None)
        return _retype_outputs(g)

    def huge_input(rng, g):
        out = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([10 ** 10])),
                                  "s": nir.Scale(scale=np.array(2.0)),
                                  "output": nir.Output(output_type=np.array([10 ** 10]))},
                           edges=[("input", "s"), ("s", "output")], type_check=False)
        return out

    def output_disagrees(rng, g):
        name = _first(g, ("Output",))
        shape = np.asarray(g.nodes[name].output_type["output"])
        _set(g.nodes[name], "output_type", {"output": np.array([2] + list(shape) + [1])})
        return g

    def not_a_node(rng, g):
        g.nodes["junk"] = {"weight": 1}
        return g

    def none_edges(rng, g):
        g.edges = [("input", None)] + list(g.edges)
        return g

    def int_name(rng, g):
        g.nodes[7] = nir.Scale(scale=np.array([1.0]))
        return g

    def field_type(value, fields=("r", "v_threshold", "scale", "threshold", "weight")):
        def fn(rng, g):
            for name, node in g.nodes.items():
                for f in fields:
                    if getattr(node, f, None) is not None:
                        _set(node, f, value(np.asarray(getattr(node, f))))
                        return g
            return None
        return fn

    return [
        ("tau=1e-50", True, neuron_field(lambda rng, a: np.full_like(a, 1e-50))),
        ("tau=1e-300", True, neuron_field(lambda rng, a: np.full_like(a, 1e-300))),
        ("tau=0", True, neuron_field(lambda rng, a: np.zeros_like(a))),
        ("tau=-1", True, neuron_field(lambda rng, a: -np.ones_like(a))),
        ("tau=nan", True, neuron_field(lambda rng, a: np.full_like(a, np.nan))),
        ("tau=str", True, neuron_field(lambda rng, a: np.full(a.shape, "abc"))),
        ("tau=complex", True, neuron_field(lambda rng, a: a + 1j)),
        ("tau=object", True, neuron_field(lambda rng, a: np.array([object()] * a.size))),
        ("tau=None", True, neuron_field(None)),
        ("tau=ragged", True, neuron_field(lambda rng, a: [[1e-3], [1e-3, 2e-3]])),
        ("weight=1e40", True, weight(1e40)),
        ("weight=-1e39", True, weight(-1e39)),
        ("weight=inf", True, weight(np.inf)),
        ("input=str", True, io_shape(lambda s: np.array([str(v) for v in s]))),
        ("input=float", True, io_shape(lambda s: s.astype(float) + 0.5)),
        ("input=negative", True, io_shape(lambda s: -np.abs(s))),
        ("input=zero", True, io_shape(lambda s: np.zeros_like(s))),
        ("input=2d", True, io_shape(lambda s: np.stack([s, s]))),
        ("input=1e10", True, huge_input),
        ("output=mismatch", True, output_disagrees),
        ("groups=2.5", True, geometry("groups", 2.5, ("Conv2d", "Conv1d"))),
        ("groups=inf", True, geometry("groups", np.inf, ("Conv2d", "Conv1d"))),
        ("groups=[]", True, geometry("groups", np.array([]), ("Conv2d", "Conv1d"))),
        ("stride=1.5", True, geometry("stride", np.array([1.5, 1.5]))),
        ("stride=str", True, geometry("stride", "two")),
        ("kernel=0", True, geometry("kernel_size", np.array([0, 0]), ("SumPool2d", "AvgPool2d"))),
        ("padding=60000", True, conv_padding),
        ("delay=1e16", True, delay(1e16)),
        ("delay=1e6", True, delay(1e6)),
        ("delay=-1", True, delay(-1.0)),
        ("delay=nan", True, delay(np.nan)),
        ("deep=1500", True, deep(1500)),
        ("deep=60", False, deep(60)),
        ("self-reference", True, self_ref),
        ("dangling", True, dangling_port),
        ("mixed-scalar", False, mixed_scalar),
        ("not-a-node", True, not_a_node),
        ("none-edge", True, none_edges),
        ("int-name", True, int_name),
        ("field=bool", False, field_type(lambda a: a > 0)),
        ("field=int", False, field_type(lambda a: np.round(a).astype(np.int64))),
        ("field=float16", False, field_type(lambda a: a.astype(np.float16))),
        ("field=longdouble", False, field_type(lambda a: a.astype(np.longdouble))),
        ("field=list", False, field_type(lambda a: a.tolist())),
        ("field=str", True, field_type(lambda a: "1.0")),
        ("field=bytes", True, field_type(lambda a: b"\xff\xfe")),
        ("field=dict", True, field_type(lambda a: {"a": a})),
    ]


def _out_shape_guess(g, name):
    node = g.nodes[name]
    for f in ("v_threshold", "tau", "r", "scale", "threshold", "delay"):
        if getattr(node, f, None) is not None:
            return np.shape(getattr(node, f))
    if getattr(node, "weight", None) is not None and isinstance(node, (nir.Affine, nir.Linear)):
        return np.shape(node.weight)[:-1]
    return None


def _retype_outputs(g):
    for n in g.nodes.values():
        if isinstance(n, nir.Output):
            _set(n, "output_type", {"output": None})
    return g


# ----------------------------------------------------------------------------- options


def random_options(rng) -> tuple[dict, bool, set]:
    """Random compile keyword options; returns (options, all_valid, names of bad ones)."""
    menu = {
        "dt": ([1e-3, 5e-4], ["1e-4", True, 0, -1e-3, float("nan"), float("inf"), None,
                                np.array([1e-3, 1e-3]), 1e300, 1e-320]),
        "precision": (["highest", "default", None], ["bogus", 3]),
        "chunk_bytes": ([1 << 16, 8 << 20], [-1, 0, 2.5, "big"]),
        "unroll": ([1, 2], [0, -1, 2.5, True]),
        "checkpoint": ([None, "step", 2], ["bogus", 0, -3, 2.5]),
        "chunk": ([None, 3], [0, -2, 1.5]),
        "optimize": ([True, False], ["yes"]),
        "pallas": ([False], ["x", 2]),
        "matmul_dtype": ([None], ["int8", "bogus"]),
        "dtype": ([None, "float32"], ["int32", "bogus", "complex64"]),
        "semantics": ([None, "nir", {"integrator": "exact"}, {"reset": "subtract"}],
                      [{"ignore": 5}, {"overrides": "abc"}, {"overrides": {"n0": {"bogus": 1}}},
                       {"overrides": {"n0": 5}}, {"overrides": [1, 2]}, {"integrator": 5},
                       {"reset": None}, {"surrogate": 3}, 42, b"nir", ["nir"],
                       {"fire": "sometimes"}, {"threshold_test": 1.0}, {"ignore": ["Nope"]},
                       {"overrides": {("a", "b"): {}}}]),
        "surrogate": ([None, "fast_sigmoid"], ["bogus", 3.5]),
    }
    opts, bad = {"dt": 1e-3}, set()
    for key in rng.permutation(list(menu)):
        if rng.random() < 0.45:
            continue
        good, evil = menu[key]
        if rng.random() < 0.5:
            opts[key] = good[int(rng.integers(len(good)))]
        else:
            opts[key] = evil[int(rng.integers(len(evil)))]
            bad.add(key)
    return opts, not bad, bad


# ----------------------------------------------------------------------------- files


def _write_nir(path, g):
    """Write with the reference package when it accepts the graph, else with nirjax."""
    import nirjax

    try:
        nir.write(str(path), g)
    except Exception:
        nirjax.write(path, g)


def seed_files(workdir: pathlib.Path) -> list:
    """Valid ``.nir`` files to mutate: the paper files, peer exports, random graphs."""
    files = [p for p in sorted((HERE / "data" / "paper").glob("*.nir"))
             if "subgraph" not in p.name and "cnn" not in p.name]
    files += sorted((HERE / "data" / "exports").glob("*.nir"))
    rng = np.random.default_rng(20240611)
    workdir.mkdir(parents=True, exist_ok=True)
    for i in range(6):
        g, _ = random_graph(rng)
        path = workdir / f"seed_random_{i}.nir"
        if not path.exists():
            _write_nir(path, g)
        files.append(path)
    return files


def _nodes_group(f):
    return f["node"]["nodes"]


def structural_mutations():
    """(name, fn(h5py.File, rng)) editing a file in place."""

    def any_node(f, rng):
        names = list(_nodes_group(f))
        return _nodes_group(f)[names[int(rng.integers(len(names)))]]

    def any_dataset(f, rng):
        found = []
        f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
        return found[int(rng.integers(len(found)))] if found else None

    def ds_to_group(f, rng):
        name = any_dataset(f, rng)
        del f[name]
        f.create_group(name).create_dataset("x", data=np.arange(3))

    def group_to_ds(f, rng):
        choices = ["node", "node/nodes"] + [f"node/nodes/{k}" for k in _nodes_group(f)]
        name = choices[int(rng.integers(len(choices)))]
        del f[name]
        f.create_dataset(name, data=np.arange(4.0))

    def dangling_soft(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if k != "type"]
        key = keys[int(rng.integers(len(keys)))] if keys else "tau"
        if key in node:
            del node[key]
        node[key] = h5py.SoftLink("/does/not/exist")

    def external(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if k != "type"]
        key = keys[int(rng.integers(len(keys)))] if keys else "tau"
        if key in node:
            del node[key]
        node[key] = h5py.ExternalLink(str(pathlib.Path(f.filename).with_name("other.h5")), "/data")

    def node_soft_cycle(f, rng):
        name = list(_nodes_group(f))[0]
        del _nodes_group(f)[name]
        grp = _nodes_group(f).create_group(name)
        grp.create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
        grp["nodes"] = h5py.SoftLink("/node/nodes")
        grp.create_dataset("edges", data=np.zeros((0,)))

    def hard_cycle(f, rng):
        name = list(_nodes_group(f))[0]
        del _nodes_group(f)[name]
        grp = _nodes_group(f).create_group(name)
        grp.create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
        grp["nodes"] = _nodes_group(f)  # a hard link to an ancestor
        grp.create_dataset("edges", data=np.zeros((0,)))

    def deep_nesting(f, rng):
        grp = _nodes_group(f).create_group("deep")
        for _ in range(int(rng.choice([40, 300, 1200]))):
            grp.create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
            grp.create_dataset("edges", data=np.zeros((0,)))
            grp = grp.create_group("nodes").create_group("g")
        grp.create_dataset("type", data="Scale", dtype=h5py.string_dtype())
        grp.create_dataset("scale", data=np.ones(1))

    def non_utf8_name(f, rng):
        node = any_node(f, rng)
        gid = node.id
        h5py.h5g.create(gid, b"bad\xff\xfename")
        node2 = any_node(f, rng)
        if "type" in node2:
            del node2["type"]
            node2.create_dataset("type", data=np.array(b"LIF\xff\xfe"),
                                 dtype=h5py.string_dtype("ascii"))

    def non_utf8_edge(f, rng):
        g = f["node"]
        if "edges" in g:
            del g["edges"]
        g.create_dataset("edges", data=np.array([[b"in\xff", b"out\xfe"]], dtype=object),
                         dtype=h5py.string_dtype("ascii"))

    def inf_int_field(f, rng):
        node = any_node(f, rng)
        key = str(rng.choice(["groups", "start_dim", "end_dim", "stride"]))
        if key in node:
            del node[key]
        node.create_dataset(key, data=rng.choice([np.inf, -np.inf, np.nan, 1e30]))

    def empty_int_field(f, rng):
        node = any_node(f, rng)
        key = str(rng.choice(["groups", "start_dim", "end_dim"]))
        if key in node:
            del node[key]
        node.create_dataset(key, data=np.zeros((0,)))

    def string_field(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if k not in ("type", "metadata")]
        if not keys:
            return
        key = keys[int(rng.integers(len(keys)))]
        del node[key]
        node.create_dataset(key, data="1e-3", dtype=h5py.string_dtype())

    def float128_field(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if isinstance(node[k], h5py.Dataset)
                and node[k].dtype.kind == "f"]
        if not keys:
            return
        key = keys[int(rng.integers(len(keys)))]
        data = node[key][()].astype(np.longdouble)
        del node[key]
        node.create_dataset(key, data=data)

    def other_dtype(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if isinstance(node[k], h5py.Dataset) and node[k].dtype.kind == "f"]
        if not keys:
            return
        key = keys[int(rng.integers(len(keys)))]
        data = node[key][()]
        del node[key]
        kind = str(rng.choice(["complex", "compound", "int8", "bool", "float16", "vlen", "enum",
                               "opaque", "uint64"]))
        if kind == "complex":
            node.create_dataset(key, data=np.asarray(data) + 1j)
        elif kind == "compound":
            dt = np.dtype([("a", "f8"), ("b", "i4")])
            node.create_dataset(key, data=np.zeros(np.shape(data), dt))
        elif kind == "vlen":
            node.create_dataset(key, (2,), dtype=h5py.vlen_dtype(np.float64))
        elif kind == "enum":
            node.create_dataset(key, data=np.zeros(np.shape(data), np.int8),
                                dtype=h5py.enum_dtype({"A": 0, "B": 1}, basetype="i1"))
        elif kind == "opaque":
            node.create_dataset(key, data=np.void(b"\x00" * 8))
        else:
            node.create_dataset(key, data=np.asarray(data).astype(kind))

    def huge_declared(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if isinstance(node[k], h5py.Dataset) and node[k].ndim >= 1
                and node[k].dtype.kind == "f"]
        key = keys[int(rng.integers(len(keys)))] if keys else "weight"
        if key in node:
            del node[key]
        shape = [(200000, 200000), (10 ** 9,), (50000, 50000, 100)][int(rng.integers(3))]
        node.create_dataset(key, shape=shape, dtype="f4", chunks=True, compression="gzip")

    def scalar_shape(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if isinstance(node[k], h5py.Dataset) and node[k].ndim >= 1
                and node[k].dtype.kind in "fi"]
        if not keys:
            return
        key = keys[int(rng.integers(len(keys)))]
        data = node[key][()]
        del node[key]
        node.create_dataset(key, data=np.asarray(data).reshape(-1)[:1].reshape(()))

    def reshape_field(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if isinstance(node[k], h5py.Dataset) and node[k].size >= 1
                and node[k].dtype.kind in "fi"]
        if not keys:
            return
        key = keys[int(rng.integers(len(keys)))]
        data = node[key][()]
        del node[key]
        node.create_dataset(key, data=np.concatenate([np.asarray(data).reshape(-1)] * 2))

    def edges_bad(f, rng):
        g = f["node"]
        if "edges" in g:
            del g["edges"]
        kind = int(rng.integers(5))
        if kind == 0:
            g.create_dataset("edges", data=np.arange(6.0).reshape(2, 3))
        elif kind == 1:
            g.create_dataset("edges", data=np.array([["a", "b", "c"]], dtype=object),
                             dtype=h5py.string_dtype())
        elif kind == 2:
            g.create_dataset("edges", data="input", dtype=h5py.string_dtype())
        elif kind == 3:
            g.create_dataset("edges", data=np.array([["input", "input"]] * 2, dtype=object),
                             dtype=h5py.string_dtype())
        else:
            g.create_dataset("edges", shape=(10 ** 8, 2), dtype=h5py.string_dtype(), chunks=True)

    def type_bad(f, rng):
        node = any_node(f, rng)
        if "type" in node:
            del node["type"]
        kind = int(rng.integers(4))
        if kind == 0:
            node.create_dataset("type", data=np.arange(3))
        elif kind == 1:
            node.create_dataset("type", data=np.array(["LIF", "LI"], dtype=object),
                                dtype=h5py.string_dtype())
        elif kind == 2:
            node.create_group("type")
        else:
            node.create_dataset("type", data="", dtype=h5py.string_dtype())

    def version_bad(f, rng):
        if "version" in f:
            del f["version"]
        kind = int(rng.integers(3))
        if kind == 0:
            f.create_dataset("version", data=np.arange(3))
        elif kind == 1:
            f.create_group("version")
        else:
            f.create_dataset("version", data=np.array(b"\xff\xfe"), dtype=h5py.string_dtype("ascii"))

    def metadata_bad(f, rng):
        node = any_node(f, rng)
        if "metadata" in node:
            del node["metadata"]
        kind = int(rng.integers(3))
        if kind == 0:
            node.create_dataset("metadata", data=np.arange(3))
        elif kind == 1:
            m = node.create_group("metadata")
            for _ in range(200):
                m = m.create_group("m")
        else:
            m = node.create_group("metadata")
            m["loop"] = m  # hard link cycle in metadata

    def attribute_only(f, rng):
        node = any_node(f, rng)
        node.attrs["extra"] = np.arange(3)

    def empty_group(f, rng):
        node = any_node(f, rng)
        for k in list(node):
            del node[k]

    def root_attrs(f, rng):
        del f["node"]
        f.create_group("node")

    def nested_in_dataset(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if isinstance(node[k], h5py.Dataset)]
        if keys:
            key = keys[0]
            del node[key]
            node.create_dataset(key, data=np.zeros((0, 3)))

    def rename_field(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if k != "type"]
        if keys:
            key = keys[int(rng.integers(len(keys)))]
            node.move(key, key.upper() if key != key.upper() else key + "_")

    def copy_node(f, rng):
        names = list(_nodes_group(f))
        src = names[int(rng.integers(len(names)))]
        f.copy(_nodes_group(f)[src], _nodes_group(f), name=src + "_copy")

    def duplicate_edges(f, rng):
        g = f["node"]
        edges = g["edges"][()]
        del g["edges"]
        if np.size(edges):
            g.create_dataset("edges", data=np.concatenate([edges, edges[:1], edges[:1, ::-1]]),
                             dtype=h5py.string_dtype())
        else:
            g.create_dataset("edges", data=np.array([["x", "y"]], dtype=object),
                             dtype=h5py.string_dtype())

    def swap_types(f, rng):
        names = list(_nodes_group(f))
        if len(names) < 2:
            return
        a, b = (str(v) for v in rng.choice(names, 2, replace=False))
        ta, tb = _nodes_group(f)[a]["type"][()], _nodes_group(f)[b]["type"][()]
        del _nodes_group(f)[a]["type"], _nodes_group(f)[b]["type"]
        _nodes_group(f)[a].create_dataset("type", data=tb, dtype=h5py.string_dtype())
        _nodes_group(f)[b].create_dataset("type", data=ta, dtype=h5py.string_dtype())

    def big_values(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if isinstance(node[k], h5py.Dataset) and node[k].dtype.kind in "fi"
                and k != "type"]
        if not keys:
            return
        key = keys[int(rng.integers(len(keys)))]
        data = np.array(node[key][()], dtype=np.float64)
        data.reshape(-1)[0] = rng.choice([1e300, -1e300, 1e-310, np.nan, -0.0, 2 ** 63, -1])
        del node[key]
        node.create_dataset(key, data=data)

    def chunked_filters(f, rng):
        node = any_node(f, rng)
        keys = [k for k in node if isinstance(node[k], h5py.Dataset) and node[k].ndim >= 1
                and node[k].dtype.kind == "f"]
        if not keys:
            return
        key = keys[0]
        data = node[key][()]
        del node[key]
        node.create_dataset(key, data=data, chunks=True, compression=str(rng.choice(["lzf", "gzip"])),
                            shuffle=True, fletcher32=True)

    def soft_to_sibling(f, rng):
        names = list(_nodes_group(f))
        if len(names) < 2:
            return
        a, b = names[0], names[1]
        del _nodes_group(f)[a]
        _nodes_group(f)[a] = h5py.SoftLink(f"/node/nodes/{b}")

    return [
        ("rename", rename_field), ("copy-node", copy_node), ("dup-edges", duplicate_edges),
        ("swap-types", swap_types), ("big-values", big_values), ("filters", chunked_filters),
        ("soft-sibling", soft_to_sibling),
        ("ds->group", ds_to_group), ("group->ds", group_to_ds), ("dangling-soft", dangling_soft),
        ("external", external), ("soft-cycle", node_soft_cycle), ("hard-cycle", hard_cycle),
        ("deep", deep_nesting), ("non-utf8", non_utf8_name), ("non-utf8-edge", non_utf8_edge),
        ("inf-int", inf_int_field), ("empty-int", empty_int_field), ("string", string_field),
        ("float128", float128_field), ("dtype", other_dtype), ("huge", huge_declared),
        ("scalar", scalar_shape), ("reshape", reshape_field), ("edges", edges_bad),
        ("type", type_bad), ("version", version_bad), ("metadata", metadata_bad),
        ("attrs", attribute_only), ("empty", empty_group), ("root", root_attrs),
        ("empty-ds", nested_in_dataset),
    ]


def mutate_file(rng, src: pathlib.Path, dst: pathlib.Path) -> str:
    """Write a mutated copy of ``src`` to ``dst``; returns the mutator's name."""
    data = bytearray(src.read_bytes())
    kind = rng.choice(["flip", "version", "truncate", "zero", "insert", "delete", "splice",
                       "garbage", "header", "structural", "structural", "structural"])
    if kind == "flip":
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(len(data)))
            data[i] ^= 1 << int(rng.integers(8))
    elif kind == "version":
        at = data.find(b"version")
        at = at if at >= 0 else 0
        for _ in range(int(rng.integers(1, 4))):
            i = int(np.clip(at + rng.integers(-512, 512), 0, len(data) - 1))
            data[i] ^= 1 << int(rng.integers(8))
    elif kind == "truncate":
        data = data[: int(rng.integers(0, len(data)))]
    elif kind == "zero":
        i = int(rng.integers(len(data)))
        data[i : i + 64] = bytes(len(data[i : i + 64]))
    elif kind == "insert":  # shifts every later offset
        i = int(rng.integers(len(data)))
        data[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))
    elif kind == "delete":
        i = int(rng.integers(len(data)))
        del data[i : i + int(rng.integers(1, 64))]
    elif kind == "splice":  # a block copied over another place
        n = int(rng.integers(8, 256))
        i, j = (int(v) for v in rng.integers(0, max(len(data) - n, 1), 2))
        data[j : j + n] = data[i : i + n]
    elif kind == "garbage":
        data += bytes(rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8))
    elif kind == "header":  # the superblock and the root group's first object header
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, min(len(data), 800)))
            data[i] = int(rng.integers(0, 256))
    dst.write_bytes(bytes(data))
    if kind != "structural":
        return str(kind)
    name, fn = structural_mutations()[int(rng.integers(len(structural_mutations())))]
    with h5py.File(dst, "r+") as f:
        fn(f, rng)
    return "structural:" + name


# ----------------------------------------------------------------------------- the runner


class Skip(Exception):
    """The case could not be built (the generator, not nirjax, failed): not counted."""


class Wrong(Exception):
    """A result that differs from the oracle or from the object's result."""


class Accepted(Exception):
    """A case that must be refused compiled or ran."""


class Destroyed(Exception):
    """A failed write damaged the file that was there before."""


def _quiet():
    warnings.simplefilter("ignore")


def _prep(fn, *args):
    """Run a generator step; its own failures skip the case instead of counting."""
    try:
        return fn(*args)
    except Exception as exc:
        raise Skip(f"generator failed: {type(exc).__name__}: {exc}") from None


def _smoke_run(model, rng, steps=3):
    import nirjax

    xs = {n: np.asarray(rng.uniform(-1, 1, (steps, 1) + tuple(s)), np.float32)
          for n, s in model.input_shapes.items()}
    ys = model(xs if len(xs) > 1 else next(iter(xs.values())))
    leaves = ys.values() if isinstance(ys, dict) else [ys]
    for y in leaves:
        np.asarray(y)
    return nirjax


def case_file(rng, workdir):
    """A mutated seed file: read, compile, run 3 steps."""
    import nirjax

    seeds = _prep(seed_files, workdir / "seeds")
    src = seeds[int(rng.integers(len(seeds)))]
    dst = workdir / "case.nir"
    if dst.exists():
        dst.unlink()
    (workdir / "other.h5").unlink(missing_ok=True)
    try:
        mutate_file(rng, src, dst)
    except Exception as exc:  # the mutation itself did not apply: not a case
        raise Skip(f"mutation failed: {exc}") from None
    g = nirjax.read(dst)
    model = nirjax.compile(g, dt=1e-4)
    _smoke_run(model, rng)
    return "ok"


def _check_oracle(g, xs, dt, optimize):
    import jax
    import nirjax
    import oracle

    with jax.enable_x64(True):
        model = nirjax.compile(g, dt=dt, optimize=optimize)
        ys = model(xs)
    ref, _ = oracle.run_graph(g, xs, dt)
    ys_d = ys if isinstance(ys, dict) else {"_": ys}
    ref_d = ref if isinstance(ref, dict) else {"_": ref}
    for k in ref_d:
        a, b = np.asarray(ys_d[k], np.float64), np.asarray(ref_d[k])
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-7, atol=1e-9):
            raise Wrong(f"output {k!r} differs from the float64 oracle (optimize={optimize}): "
                        f"max |diff| {np.max(np.abs(a - b)) if a.shape == b.shape else 'shape'}")


def case_graph(rng, workdir):
    """A random valid graph against the float64 oracle, ``optimize`` True and False."""
    g, inputs = random_graph(rng)
    xs = random_inputs(rng, inputs, int(rng.integers(1, 7)), int(rng.integers(1, 3)))
    for optimize in (True, False):
        _check_oracle(copy.deepcopy(g), xs, DT, optimize)
    return "ok"


def case_value(rng, workdir):
    """A random graph with one bad value (``value_mutations``): compile, run."""
    import nirjax

    g, inputs = _prep(random_graph, rng)
    muts = value_mutations()
    name, must_fail, fn = muts[int(rng.integers(len(muts)))]
    g = _prep(fn, rng, g)
    if g is None:
        return "skip"
    model = nirjax.compile(g, dt=DT)
    _smoke_run(model, rng)
    if must_fail:
        raise Accepted(f"value mutation {name!r} was accepted")
    return "ok"


def case_option(rng, workdir):
    """Random compile options (``random_options``): compile, run, finite outputs."""
    import nirjax

    g, inputs = random_graph(rng)
    opts, valid, bad = random_options(rng)
    xs = random_inputs(rng, inputs, 4, 2)
    model = nirjax.compile(g, **opts)
    ys = model(xs)
    for y in (ys.values() if isinstance(ys, dict) else [ys]):
        if not np.all(np.isfinite(np.asarray(y))):
            raise Wrong("non-finite output")
    if not valid:
        raise Accepted(f"invalid options {sorted(bad)} accepted: {opts}")
    return "ok"


def case_runtime(rng, workdir):
    """One misuse of a compiled model's ``run`` / ``step`` / ``init_state``."""
    import jax
    import nirjax

    g, inputs = random_graph(rng)
    model = nirjax.compile(g, dt=DT)
    xs = random_inputs(rng, inputs, 3, 2)
    params = jax.tree_util.tree_map(lambda a: a, model.params)
    state = None
    record = None
    kind = str(rng.choice([
        "T0", "missing-node", "none-leaf", "wrong-shape", "wrong-dtype", "str-leaf",
        "foreign-state", "state-dict", "state-none-leaf", "ragged", "complex", "record5",
        "record-dict", "record-bad-field", "record-tuple3", "huge-batch", "batch-bool",
        "xs-str", "xs-none", "xs-nested", "step-bad", "params-list", "params-none",
        "xs-object", "record-unhashable", "extra-node"]))
    must_fail = True
    key = next(iter(params), None)
    if kind == "T0":
        xs = jax.tree_util.tree_map(lambda a: a[:0], xs)
    elif kind in ("missing-node", "none-leaf", "wrong-shape", "wrong-dtype", "str-leaf"):
        if key is None:
            return "skip"
        p = params[key]
        if kind == "missing-node":
            params = {k: v for k, v in params.items() if k != key}
        elif kind == "none-leaf":
            params[key] = p._replace(**{p._fields[0]: None})
        elif kind == "wrong-shape":
            params[key] = p._replace(**{p._fields[0]: np.zeros((7, 7, 7), np.float32)})
        elif kind == "wrong-dtype":
            leaf = np.asarray(getattr(p, p._fields[0]))
            params[key] = p._replace(**{p._fields[0]: (leaf + 1j).astype(np.complex64)})
        else:
            params[key] = p._replace(**{p._fields[0]: "abc"})
    elif kind == "extra-node":
        params = dict(params, ghost=np.zeros(3))
    elif kind == "foreign-state":
        other, _ = random_graph(rng)
        try:
            state = nirjax.compile(other, dt=DT).init_state(2)
        except nirjax.NirjaxError:
            return "skip"
        must_fail = None  # may be compatible by chance
    elif kind == "state-dict":
        state = dict(model.init_state(2)._asdict())
    elif kind == "state-none-leaf":
        st = model.init_state(2)
        if not st.nodes:
            return "skip"
        k0 = next(iter(st.nodes))
        st.nodes[k0] = None
        state = st
    elif kind == "ragged":
        xs = [[[0.0] * 3], [[0.0]]]
    elif kind == "complex":
        xs = jax.tree_util.tree_map(lambda a: a + 1j, xs)
    elif kind == "record5":
        record = 5
    elif kind == "record-dict":
        record = [{"a": 1}]
    elif kind == "record-bad-field":
        record = [(next(iter(model.program.nodes)).name, "nope")]
    elif kind == "record-tuple3":
        record = [("a", "b", "c")]
    elif kind == "record-unhashable":
        record = [["input", ["v"]]]
    elif kind == "huge-batch":
        model.init_state(2 ** 40)
        raise Accepted("init_state(2**40) accepted")
    elif kind == "batch-bool":
        model.init_state(True)
        raise Accepted("init_state(True) accepted")
    elif kind == "xs-str":
        xs = "abc"
    elif kind == "xs-none":
        xs = None
    elif kind == "xs-nested":
        xs = {"input": {"a": 1}}
    elif kind == "xs-object":
        xs = np.array([object()])
    elif kind == "params-list":
        params = list(params.values())
    elif kind == "params-none":
        params = None
    elif kind == "step-bad":
        model.step(model.params, model.init_state(1), np.zeros((1, 1, 1, 1, 1)))
        raise Accepted("step with a bad input accepted")
    out = model.run(params, xs, state, record=record)
    for y in jax.tree_util.tree_leaves(out[0]):
        np.asarray(y)
    if must_fail:
        raise Accepted(f"runtime misuse {kind!r} accepted")
    return "ok"


def _outputs(model, xs):
    ys = model(xs)
    return {k: np.asarray(v) for k, v in (ys.items() if isinstance(ys, dict) else [("_", ys)])}


def case_roundtrip(rng, workdir):
    """Write -> read (path, file object, nir.write) and shuffling: identical outputs."""
    import nirjax

    g, inputs = random_graph(rng)
    xs = random_inputs(rng, inputs, int(rng.integers(2, 8)), 2)
    ref_model = nirjax.compile(g, dt=DT)
    ref = _outputs(ref_model, xs)
    ref_delayed = {(e.src, e.dst) for e in ref_model.program.delayed_edges}
    path = workdir / "rt.nir"
    nirjax.write(path, g)
    variants = {"path": lambda: nirjax.read(path), "shuffled": lambda: shuffled(rng, g)}
    try:
        nir.write(str(workdir / "rt_nir.nir"), copy.deepcopy(g))
    except Exception:
        pass
    else:
        variants["nir.write"] = lambda: nirjax.read(workdir / "rt_nir.nir")
    buf = io.BytesIO()
    nirjax.write(buf, g) if _accepts_fileobj() else None
    if _accepts_fileobj():
        variants["BytesIO"] = lambda: (buf.seek(0), nirjax.read(buf))[1]
    for label, make in variants.items():
        model = nirjax.compile(make(), dt=DT)
        got = _outputs(model, xs)
        delayed = {(e.src, e.dst) for e in model.program.delayed_edges}
        if delayed != ref_delayed:
            raise Wrong(f"{label}: delayed edges {sorted(delayed)} != {sorted(ref_delayed)}")
        for k in ref:
            if got[k].shape != ref[k].shape or not np.array_equal(got[k], ref[k]):
                raise Wrong(f"{label}: output {k!r} changed after the round trip")
    return "ok"


def _accepts_fileobj():
    import inspect

    import nirjax

    return "file object" in (inspect.getdoc(nirjax.write) or "")


def write_mutations():
    """(name, fn(rng, graph) -> graph) producing graphs that must not be written."""

    def meta_object(rng, g):
        g.nodes[next(iter(g.nodes))].metadata = {"obj": object()}
        return g

    def meta_nested_object(rng, g):
        g.metadata = {"a": {"b": [1, object()]}}
        return g

    def meta_selfref(rng, g):
        d = {}
        d["d"] = d
        g.metadata = d
        return g

    def rename(new):
        def fn(rng, g):
            name = next(n for n in g.nodes if n not in ("input", "output"))
            g.nodes[new] = g.nodes.pop(name)
            g.edges = [(new if s == name else s, new if d == name else d) for s, d in g.edges]
            return g
        return fn

    def mixed(rng, g):
        name = _first(g, NEURONS)
        if name is None:
            g.nodes["lif"] = nir.LIF(tau=np.float64(1e-3), r=np.ones(3), v_leak=np.zeros(3),
                                     v_threshold=np.ones(3))
            return g
        node = g.nodes[name]
        field = next(f for f in ("r", "tau", "v_leak") if getattr(node, f, None) is not None)
        _set(node, field, np.float64(1.0))
        shape = np.shape(getattr(node, "r", getattr(node, "tau", None)))
        if shape == ():
            return None
        return g

    def not_graph(rng, g):
        return {"nodes": g.nodes}

    def self_ref(rng, g):
        g.nodes["me"] = g
        return g

    def dangling(rng, g):
        g.edges.append(("input", "ghost"))
        return g

    def bad_field(rng, g):
        name = next(n for n in g.nodes if n not in ("input", "output"))
        node = g.nodes[name]
        fields = [k for k, v in vars(node).items() if isinstance(v, np.ndarray)]
        if not fields:
            return None
        _set(node, fields[0], np.array([object()]))
        return g

    def unknown_node(rng, g):
        class Weird(nir.NIRNode):
            pass
        w = Weird.__new__(Weird)
        w.metadata = {}
        g.nodes["weird"] = w
        return g

    return [("meta-object", meta_object), ("meta-nested-object", meta_nested_object),
            ("meta-selfref", meta_selfref), ("name-empty", rename("")), ("name-dot", rename(".")),
            ("name-slash", rename("a/b")), ("name-int", rename(7)), ("mixed-scalar", mixed),
            ("not-graph", not_graph), ("self-ref", self_ref), ("dangling", dangling),
            ("bad-field", bad_field), ("unknown-node", unknown_node),
            ("name-nul", rename("a\x00b")), ("name-surrogate", rename("a\udcff"))]


def case_write(rng, workdir):
    """A bad graph written over an existing file: clean error, old file intact."""
    import nirjax

    g, _ = _prep(random_graph, rng)
    path = workdir / "existing.nir"
    _prep(_write_nir, path, copy.deepcopy(g))
    before = path.read_bytes()
    name, fn = write_mutations()[int(rng.integers(len(write_mutations())))]
    bad = _prep(fn, rng, copy.deepcopy(g))
    if bad is None:
        return "skip"
    try:
        nirjax.write(path, bad)
    except BaseException:
        if path.read_bytes() != before:
            raise Destroyed(f"write mutation {name!r} failed and changed the existing file")
        raise
    # written although the graph is bad: at best the reader refuses it
    try:
        nirjax.read(path)
    except nirjax.NirjaxError as exc:
        raise Accepted(f"write mutation {name!r} wrote a file the reader refuses: {exc}") from None
    raise Accepted(f"write mutation {name!r} was written")


CASES = {"file": case_file, "graph": case_graph, "value": case_value, "option": case_option,
         "runtime": case_runtime, "roundtrip": case_roundtrip, "write": case_write}


def classify(surface: str, seed: int, workdir) -> tuple[str, str]:
    """Run one case; returns ``(outcome, detail)`` (outcomes in the module docstring)."""
    import nirjax

    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([SURFACES.index(surface), seed])
    with warnings.catch_warnings():
        _quiet()
        try:
            result = CASES[surface](rng, workdir)
            return result, ""
        except Skip as exc:
            return "skip", str(exc)
        except nirjax.NirjaxError as exc:
            return "clean", f"{type(exc).__name__}: {str(exc)[:300]}"
        except Wrong as exc:
            return "wrong", str(exc)
        except Accepted as exc:
            return "accepted", str(exc)
        except Destroyed as exc:
            return "destroyed", str(exc)
        except BaseException as exc:  # noqa: BLE001 - this is what the fuzzer looks for
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = traceback.extract_tb(exc.__traceback__)
            where = next((f"{pathlib.Path(fr.filename).name}:{fr.lineno}" for fr in reversed(tb)
                          if "nirjax" in fr.filename), "?")
            return "bare", f"{type(exc).__name__} at {where}: {str(exc)[:300]}"


def scratch_dir() -> pathlib.Path:
    """A fresh temporary directory for cases."""
    return pathlib.Path(tempfile.mkdtemp(prefix="nirjax_fuzz_"))


__all__ = ["SURFACES", "classify", "random_graph", "random_inputs", "shuffled",
           "value_mutations", "structural_mutations", "mutate_file", "seed_files",
           "write_mutations", "random_options", "scratch_dir"]
