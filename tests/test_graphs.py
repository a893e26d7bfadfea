"""Graph-level behaviour: ordering, fan-in, cycles, subgraphs, several inputs/outputs,
state, recording, the structure of the compiled scan, and dtypes.

Numerics are checked against ``oracle.NpGraph``, a NumPy interpreter that implements the
documented evaluation rule (``nirjax/graph/flat.py`` docstring: depth-first order from the Input
nodes with successors in sorted name order; an edge that reaches a node on the search stack
is delayed and reads its source's previous-step output, zeros at step 0; fan-in is summed;
Delay nodes of at least one step have no feedthrough) and, where one exists, against a
closed form written in the test.
"""

from __future__ import annotations

import random

import hypothesis.strategies as st
import jax
import nir
import numpy as np
import pytest
from hypothesis import given, settings

import nirjax
import oracle
from builders import chain, graph, io_nodes, neuron, rng_for

DT = 1e-3
T, B = 30, 3


def check(g, xs, sem=None, record=(), dt=DT, rtol=1e-10):
    """Compile ``g`` as the staged (default) and the plain one-scan program, run both, and
    compare outputs and records with the oracle; returns the default model."""
    ref, ref_rec = oracle.run_graph(g, xs, dt, sem, record=record)
    models = []
    for optimize in (True, False):
        model = nirjax.compile(g, dt=dt, semantics=sem, optimize=optimize)
        if record:
            ys, _, rec = model.run(model.params, xs, record=list(record))
        else:
            (ys, _), rec = model.run(model.params, xs), {}
        if isinstance(ref, dict):
            assert set(ys) == set(ref)
            for k in ref:
                np.testing.assert_allclose(np.asarray(ys[k]), ref[k], rtol=rtol, atol=rtol,
                                           err_msg=f"{k} optimize={optimize}")
        else:
            np.testing.assert_allclose(np.asarray(ys), ref, rtol=rtol, atol=rtol,
                                       err_msg=f"optimize={optimize}")
        for item in record:
            np.testing.assert_allclose(np.asarray(rec[item]), ref_rec[item], rtol=rtol,
                                       atol=rtol, err_msg=f"{item} optimize={optimize}")
        models.append(model)
    assert delayed(models[0]) == delayed(models[1])
    return models[0]


def delayed(model):
    return {(e.src, e.dst) for e in model.program.delayed_edges}


def affine(rng, n_out, n_in, gain=1.0):
    return nir.Affine(weight=gain * rng.normal(size=(n_out, n_in)),
                      bias=rng.uniform(0.0, 0.5, n_out))


def drive(key, shape=(3,), steps=T, batch=B):
    return rng_for(key).uniform(0.0, 1.5, (steps, batch) + tuple(shape))


# ----------------------------------------------------------------------------- ordering


def _recurrent_graph(edges):
    rng = rng_for("recurrent-graph")
    nodes = {**io_nodes((3,), (2,)),
             "a": affine(rng, 4, 3, 1.5), "b": neuron("LIF", rng, (4,)),
             "c": affine(rng, 4, 4, 0.5), "d": neuron("LI", rng, (4,)),
             "e": affine(rng, 2, 4)}
    return graph(nodes, edges)


RECURRENT_EDGES = [("input", "a"), ("a", "b"), ("b", "c"), ("c", "b"), ("b", "d"), ("a", "d"),
                   ("d", "e"), ("e", "output")]


def test_edge_order_does_not_matter(x64):
    xs = drive("edge-order")
    base = check(_recurrent_graph(RECURRENT_EDGES), xs, record=[("b", "v")])
    ys = np.asarray(base(xs))
    assert ys.std() > 0
    shuffler = random.Random(0)
    for _ in range(5):
        edges = list(RECURRENT_EDGES)
        shuffler.shuffle(edges)
        model = nirjax.compile(_recurrent_graph(edges), dt=DT)
        np.testing.assert_array_equal(np.asarray(model(xs)), ys)
        assert [n.name for n in model.program.nodes] == [n.name for n in base.program.nodes]
        assert delayed(model) == delayed(base) == {("c", "b")}


def test_fan_in_is_summed_closed_form(x64):
    s1, s2 = np.array([2.0, 3.0]), np.array([-1.0, 0.5])
    g = graph({**io_nodes((2,), (2,)), "s1": nir.Scale(scale=s1), "s2": nir.Scale(scale=s2)},
              [("input", "s1"), ("input", "s2"), ("s1", "output"), ("s2", "output")])
    xs = drive("fan-in", (2,))
    ys = np.asarray(nirjax.compile(g, dt=DT)(xs))
    np.testing.assert_allclose(ys, (s1 + s2) * xs, rtol=1e-15)


def test_fan_in_of_three_into_a_neuron(x64):
    rng = rng_for("fan-in-3")
    g = graph({**io_nodes((3,), (3,)), "a": affine(rng, 3, 3), "s": nir.Scale(scale=np.ones(3) * 0.7),
               "lif": neuron("LIF", rng, (3,))},
              [("input", "a"), ("input", "s"), ("input", "lif"), ("a", "lif"), ("s", "lif"),
               ("lif", "output")])
    check(g, drive("fan-in-3"), record=[("lif", "v")])


def test_branches_and_merges(x64):
    rng = rng_for("diamond")
    g = graph({**io_nodes((3,), (4,)), "a": affine(rng, 4, 3), "b": neuron("LIF", rng, (4,)),
               "c": neuron("CubaLI", rng, (4,)), "d": affine(rng, 4, 4), "m": neuron("LI", rng, (4,))},
              [("input", "a"), ("a", "b"), ("a", "c"), ("b", "d"), ("c", "m"), ("d", "m"),
               ("m", "output")])
    model = check(g, drive("diamond"), record=["b", ("m", "v")])
    assert delayed(model) == set()


def test_self_loop_closed_form(x64):
    """``s -> s``: y[t] = x[t] + y[t-1], the running sum."""
    g = graph({**io_nodes((2,), (2,)), "s": nir.Scale(scale=np.ones(2))},
              [("input", "s"), ("s", "s"), ("s", "output")])
    xs = drive("self-loop", (2,))
    model = nirjax.compile(g, dt=DT)
    assert delayed(model) == {("s", "s")}
    np.testing.assert_allclose(np.asarray(model(xs)), np.cumsum(xs, axis=0), rtol=1e-13)


def test_self_loop_on_neuron(x64):
    rng = rng_for("lif-self-loop")
    g = graph({**io_nodes((3,), (3,)), "a": affine(rng, 3, 3), "lif": neuron("LIF", rng, (3,))},
              [("input", "a"), ("a", "lif"), ("lif", "lif"), ("lif", "output")])
    model = check(g, drive("lif-self-loop"), record=[("lif", "v")])
    assert delayed(model) == {("lif", "lif")}


def test_two_node_cycle_closed_form(x64):
    """input -> a -> b -> a: the edge b -> a closes the cycle and reads b of step t-1."""
    g = graph({**io_nodes((2,), (2,)), "a": nir.Scale(scale=np.ones(2)),
               "b": nir.Scale(scale=np.full(2, 0.5))},
              [("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")])
    xs = drive("two-cycle", (2,))
    model = nirjax.compile(g, dt=DT)
    assert delayed(model) == {("b", "a")}
    y_b = np.zeros_like(xs[0])
    expected = []
    for x in xs:
        y_a = x + y_b  # y_b still holds the previous step
        y_b = 0.5 * y_a
        expected.append(y_b)
    np.testing.assert_allclose(np.asarray(model(xs)), np.stack(expected), rtol=1e-13)


@pytest.mark.parametrize("first,second", [("p", "q"), ("z", "q")])
def test_cycle_edge_chosen_by_sorted_successors(first, second, x64):
    """input feeds both nodes of a 2-cycle; the DFS visits successors in sorted order, so the
    edge back into the alphabetically first node is the delayed one."""
    rng = rng_for("sorted-cycle")
    g = graph({**io_nodes((3,), (3,)), first: affine(rng, 3, 3, 0.7),
               second: neuron("LIF", rng, (3,))},
              [("input", first), ("input", second), (first, second), (second, first),
               (second, "output")])
    model = check(g, drive("sorted-cycle"), record=[(second, "v")])
    lo, hi = sorted([first, second])
    assert delayed(model) == {(hi, lo)}


def test_three_node_cycle_with_neurons(x64):
    rng = rng_for("three-cycle")
    g = graph({**io_nodes((3,), (3,)), "a": affine(rng, 4, 3, 1.5), "b": neuron("LIF", rng, (4,)),
               "c": affine(rng, 3, 4, 0.8), "d": neuron("CubaLIF", rng, (3,))},
              [("input", "a"), ("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "output")])
    model = check(g, drive("three-cycle"), record=[("b", "v"), ("d", "v"), "c"])
    assert delayed(model) == {("c", "a")}


def test_nested_cycles(x64):
    rng = rng_for("nested-cycles")
    g = graph({**io_nodes((3,), (3,)), "a": neuron("LIF", rng, (3,)), "b": affine(rng, 3, 3),
               "c": neuron("LI", rng, (3,))},
              [("input", "a"), ("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"), ("c", "output")])
    model = check(g, drive("nested-cycles"), record=[("a", "v"), "b"])
    assert delayed(model) == {("b", "a"), ("c", "b")}


def test_node_unreachable_from_input(x64):
    """A node fed by nothing gets zeros; its bias still drives the rest of the graph."""
    rng = rng_for("unreachable")
    g = graph({**io_nodes((3,), (3,)), "bias": affine(rng, 3, 3), "lif": neuron("LIF", rng, (3,))},
              [("input", "lif"), ("bias", "lif"), ("lif", "output")])
    check(g, drive("unreachable"), record=[("lif", "v")])


NODE_KINDS = ("Affine", "LIF", "LI", "Scale", "CubaLIF")


@st.composite
def random_graphs(draw):
    """Random graphs of 2..6 nodes of width 3 with random extra edges (cycles, self-loops,
    fan-in); every node is reachable from the input and feeds forward to the next."""
    n = draw(st.integers(2, 6))
    kinds = [draw(st.sampled_from(NODE_KINDS)) for _ in range(n)]
    names = [f"n{draw(st.integers(0, 99)):02d}_{i}" for i in range(n)]
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                          max_size=2 * n, unique=True))
    outputs = draw(st.integers(1, 2))
    return kinds, names, extra, outputs


@settings(max_examples=15, deadline=None)
@given(spec=random_graphs(), seed=st.integers(0, 2**16))
def test_random_graphs_match_interpreter(spec, seed):
    kinds, names, extra, n_out = spec
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type=np.array([3]))}
    for kind, name in zip(kinds, names):
        if kind == "Affine":
            nodes[name] = affine(rng, 3, 3, 0.6)
        elif kind == "Scale":
            nodes[name] = nir.Scale(scale=rng.uniform(-0.9, 0.9, 3))
        else:
            nodes[name] = neuron(kind, rng, (3,))
    edges = [("input", names[0])] + list(zip(names[:-1], names[1:]))
    for i, j in extra:
        if (names[i], names[j]) not in edges:
            edges.append((names[i], names[j]))
    for k in range(n_out):
        nodes[f"out{k}"] = nir.Output(output_type=np.array([3]))
        edges.append((names[-1 - k % len(names)], f"out{k}"))
    random.Random(seed).shuffle(edges)
    g = graph(nodes, edges)
    xs = rng.uniform(0.0, 1.5, (15, 2, 3))
    with jax.enable_x64(True):
        model = nirjax.compile(g, dt=DT)
        ys = model(xs)
    ref, _ = oracle.run_graph(g, xs, DT)
    probe = oracle.NpGraph(g, DT)
    assert delayed(model) == probe.delayed
    ys = ys if isinstance(ys, dict) else {"out0": ys}
    ref = ref if isinstance(ref, dict) else {"out0": ref}
    for k in ref:
        np.testing.assert_allclose(np.asarray(ys[k]), ref[k], rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- subgraphs


def _lif_block(rng, n=3):
    return graph({"i": nir.Input(input_type=np.array([n])), "w": affine(rng, n, n, 1.2),
                  "lif": neuron("LIF", rng, (n,)), "o": nir.Output(output_type=np.array([n]))},
                 [("i", "w"), ("w", "lif"), ("lif", "o")])


def test_nested_subgraph_equals_inlined_graph(x64):
    rng = rng_for("nested")
    sub = _lif_block(rng)
    head = affine(rng, 3, 3)
    g = graph({**io_nodes((3,), (3,)), "head": head, "sub": sub},
              [("input", "head"), ("head", "sub"), ("sub", "output")])
    # the same graph inlined by hand (a flat graph may use dotted names); the subgraph's
    # Input/Output nodes are identities
    flat = graph({**io_nodes((3,), (3,)), "head": head, "sub.w": sub.nodes["w"],
                  "sub.lif": sub.nodes["lif"]},
                 [("input", "head"), ("head", "sub.w"), ("sub.w", "sub.lif"),
                  ("sub.lif", "output")])
    xs = drive("nested")
    model = check(g, xs, record=["sub.lif", ("sub.lif", "v")])
    np.testing.assert_array_equal(np.asarray(model(xs)),
                                  np.asarray(nirjax.compile(flat, dt=DT)(xs)))
    assert "sub.lif" in model.params


def test_two_levels_of_nesting(x64):
    rng = rng_for("two-levels")
    inner = _lif_block(rng)
    middle = graph({"in": nir.Input(input_type=np.array([3])), "pre": affine(rng, 3, 3),
                    "inner": inner, "li": neuron("LI", rng, (3,)),
                    "out": nir.Output(output_type=np.array([3]))},
                   [("in", "pre"), ("pre", "inner"), ("inner", "li"), ("li", "out")])
    g = graph({**io_nodes((3,), (3,)), "middle": middle},
              [("input", "middle"), ("middle", "output")])
    model = check(g, drive("two-levels"),
                  record=["middle.inner.lif", ("middle.inner.lif", "v"), ("middle.li", "v")])
    assert "middle.inner.lif" in model.params and "middle.pre" in model.params


def test_subgraph_port_references(x64):
    """A subgraph with two Input and two Output nodes, addressed as 'sub.<port>'."""
    rng = rng_for("ports")
    sub = graph({"i1": nir.Input(input_type=np.array([3])), "i2": nir.Input(input_type=np.array([3])),
                 "lif": neuron("LIF", rng, (3,)), "li": neuron("LI", rng, (3,)),
                 "o1": nir.Output(output_type=np.array([3])), "o2": nir.Output(output_type=np.array([3]))},
                [("i1", "lif"), ("i2", "lif"), ("i2", "li"), ("lif", "o1"), ("li", "o2")])
    g = graph({"input": nir.Input(input_type=np.array([3])), "pre": affine(rng, 3, 3),
               "sub": sub, "out1": nir.Output(output_type=np.array([3])),
               "out2": nir.Output(output_type=np.array([3]))},
              [("input", "sub.i1"), ("input", "pre"), ("pre", "sub.i2"), ("sub.o1", "out1"),
               ("sub.o2", "out2")])
    model = check(g, drive("ports"), record=[("sub.lif", "v"), ("sub.li", "v")])
    assert set(model.output_names) == {"out1", "out2"}


def test_subgraph_with_inner_cycle(x64):
    """The Braille recurrent layer as a well-formed nested graph."""
    rng = rng_for("inner-cycle")
    sub = graph({"input": nir.Input(input_type=np.array([4])), "lif": neuron("CubaLIF", rng, (4,)),
                 "rec": affine(rng, 4, 4, 0.8), "output": nir.Output(output_type=np.array([4]))},
                [("input", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")])
    g = graph({**io_nodes((3,), (4,)), "fc": affine(rng, 4, 3, 2.0), "layer": sub},
              [("input", "fc"), ("fc", "layer"), ("layer", "output")])
    model = check(g, drive("inner-cycle"), record=[("layer.lif", "v"), ("layer.lif", "i_syn")])
    assert delayed(model) == {("layer.rec", "layer.lif")}


# ----------------------------------------------------------------------------- I/O arity


def _two_in_two_out(rng):
    return graph({"in_a": nir.Input(input_type=np.array([3])), "in_b": nir.Input(input_type=np.array([2])),
                  "wa": affine(rng, 4, 3), "wb": affine(rng, 4, 2), "lif": neuron("LIF", rng, (4,)),
                  "ro": affine(rng, 2, 4),
                  "out_x": nir.Output(output_type=np.array([4])),
                  "out_y": nir.Output(output_type=np.array([2]))},
                 [("in_a", "wa"), ("in_b", "wb"), ("wa", "lif"), ("wb", "lif"), ("lif", "out_x"),
                  ("lif", "ro"), ("ro", "out_y")])


def test_multiple_inputs_and_outputs_are_dicts(x64):
    g = _two_in_two_out(rng_for("multi"))
    xs = {"in_a": drive("multi-a", (3,)), "in_b": drive("multi-b", (2,))}
    model = check(g, xs, record=[("lif", "v")])
    ys = model(xs)
    assert isinstance(ys, dict) and set(ys) == {"out_x", "out_y"}
    assert ys["out_x"].shape == (T, B, 4) and ys["out_y"].shape == (T, B, 2)
    assert model.input_shapes == {"in_a": (3,), "in_b": (2,)}
    y_t, _ = model.step(model.params, model.init_state(B), {k: v[0] for k, v in xs.items()})
    assert set(y_t) == {"out_x", "out_y"}


def test_one_input_two_outputs_and_two_inputs_one_output(x64):
    rng = rng_for("arity")
    one_in = graph({**io_nodes((3,), (3,), out_name="o1"), "o2": nir.Output(output_type=np.array([3])),
                    "lif": neuron("LIF", rng, (3,))},
                   [("input", "lif"), ("lif", "o1"), ("input", "o2")])
    xs = drive("arity")
    ys = check(one_in, xs)(xs)
    assert set(ys) == {"o1", "o2"}
    np.testing.assert_array_equal(np.asarray(ys["o2"]), xs)
    two_in = graph({"a": nir.Input(input_type=np.array([3])), "b": nir.Input(input_type=np.array([3])),
                    "output": nir.Output(output_type=np.array([3]))}, [("a", "output"), ("b", "output")])
    xs2 = {"a": drive("a"), "b": drive("b")}
    ys2 = check(two_in, xs2)(xs2)
    assert not isinstance(ys2, dict)
    np.testing.assert_allclose(np.asarray(ys2), xs2["a"] + xs2["b"], rtol=1e-15)


# ----------------------------------------------------------------------------- Delay in cycles


def test_delay_closes_cycle_without_extra_step(x64):
    """input -> a -> delay(2 steps) -> a: y_a[t] = x[t] + y_a[t-2], no delayed edge added."""
    g = graph({**io_nodes((2,), (2,)), "a": nir.Scale(scale=np.ones(2)),
               "d": nir.Delay(delay=np.full(2, 2e-3))},
              [("input", "a"), ("a", "d"), ("d", "a"), ("a", "output")])
    xs = drive("delay-cycle", (2,))
    model = nirjax.compile(g, dt=DT)
    assert delayed(model) == set()
    expected = np.zeros_like(xs)
    for t in range(T):
        expected[t] = xs[t] + (expected[t - 2] if t >= 2 else 0)
    np.testing.assert_allclose(np.asarray(model(xs)), expected, rtol=1e-13)
    check(g, xs)


def test_one_step_delay_cycle_equals_self_loop(x64):
    loop = graph({**io_nodes((2,), (2,)), "a": nir.Scale(scale=np.full(2, 0.9))},
                 [("input", "a"), ("a", "a"), ("a", "output")])
    via_delay = graph({**io_nodes((2,), (2,)), "a": nir.Scale(scale=np.full(2, 0.9)),
                       "d": nir.Delay(delay=np.full(2, 1e-3))},
                      [("input", "a"), ("a", "d"), ("d", "a"), ("a", "output")])
    xs = drive("delay-vs-loop", (2,))
    np.testing.assert_allclose(np.asarray(nirjax.compile(via_delay, dt=DT)(xs)),
                               np.asarray(nirjax.compile(loop, dt=DT)(xs)), rtol=1e-14)


def test_delay_with_neurons_in_cycle(x64):
    rng = rng_for("delay-neuron-cycle")
    g = graph({**io_nodes((3,), (3,)), "a": affine(rng, 3, 3, 1.5), "lif": neuron("LIF", rng, (3,)),
               "d": nir.Delay(delay=np.array([1e-3, 3e-3, 2e-3])), "w": affine(rng, 3, 3, 0.5)},
              [("input", "a"), ("a", "lif"), ("lif", "d"), ("d", "w"), ("w", "lif"),
               ("lif", "output")])
    model = check(g, drive("delay-neuron-cycle"), record=[("lif", "v"), "w"])
    assert delayed(model) == set()


# ----------------------------------------------------------------------------- state, step, record


def test_step_loop_and_resumed_runs_equal_one_run(x64):
    g = _recurrent_graph(RECURRENT_EDGES)
    xs = drive("resume")
    model = nirjax.compile(g, dt=DT)
    ys, final = model.run(model.params, xs)
    ys1, mid = model.run(model.params, xs[:11])
    ys2, final2 = model.run(model.params, xs[11:], mid)
    np.testing.assert_array_equal(np.concatenate([np.asarray(ys1), np.asarray(ys2)]), np.asarray(ys))
    state = model.init_state(batch_size=B)
    steps = []
    for x in xs:
        y, state = model.step(model.params, state, x)
        steps.append(np.asarray(y))
    np.testing.assert_allclose(np.stack(steps), np.asarray(ys), rtol=1e-13, atol=1e-13)
    for a, b, c in zip(jax.tree_util.tree_leaves(final), jax.tree_util.tree_leaves(final2),
                       jax.tree_util.tree_leaves(state)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-13, atol=1e-13)


def test_record_outputs_and_state_fields(x64):
    g = _recurrent_graph(RECURRENT_EDGES)
    xs = drive("record")
    check(g, xs, record=["a", "b", "c", "d", ("b", "v"), ("d", "v")])


@pytest.mark.parametrize("optimize", [True, False], ids=["staged", "plain"])
def test_record_mixed_names_and_fields(optimize, x64):
    """The README's own example: record=["lif1", ("lif1", "v")] in one call."""
    g = _recurrent_graph(RECURRENT_EDGES)
    xs = drive("record-mixed")
    model = nirjax.compile(g, dt=DT, optimize=optimize)
    _, _, rec = model.run(model.params, xs, record=["b", ("b", "v")])
    assert set(rec) == {"b", ("b", "v")}
    _, ref_rec = oracle.run_graph(g, xs, DT, record=["b", ("b", "v")])
    np.testing.assert_array_equal(np.asarray(rec["b"]), ref_rec["b"])
    np.testing.assert_allclose(np.asarray(rec[("b", "v")]), ref_rec[("b", "v")], rtol=1e-10)


def test_per_node_semantics_override(x64):
    rng = rng_for("override")
    g = chain((3,), (3,), ("a", affine(rng, 3, 3, 1.5)), ("lif1", neuron("LIF", rng, (3,))),
              ("w", affine(rng, 3, 3, 1.5)), ("lif2", neuron("LIF", rng, (3,))))
    xs = drive("override")
    sem = nirjax.Semantics(reset="subtract").override("lif2", integrator="exact", threshold_test=">=")
    model = nirjax.compile(g, dt=DT, semantics=sem)
    ref, _ = oracle.run_graph(g, xs, DT, dict(reset="subtract"),
                              overrides={"lif2": dict(integrator="exact", threshold_test=">=")})
    np.testing.assert_array_equal(np.asarray(model(xs)), ref)
    plain, _ = oracle.run_graph(g, xs, DT, dict(reset="subtract"))
    assert not np.array_equal(ref, plain)  # the override matters for this input


# ----------------------------------------------------------------------------- structure


def _walk(jaxpr):
    """Every equation of a jaxpr, recursively into sub-jaxprs (scan bodies, pjit, ...)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _walk(inner)


def _program(model, steps):
    xs = np.zeros((steps, 2, 3), np.float32)
    jaxpr = jax.make_jaxpr(lambda x: model.run(model.params, x)[0])(xs)
    eqns = list(_walk(jaxpr.jaxpr))
    return len(eqns), sorted(e.primitive.name for e in eqns), \
        [e.params["length"] for e in eqns if e.primitive.name == "scan"]


@pytest.mark.parametrize("optimize", [True, False], ids=["staged", "plain"])
@pytest.mark.parametrize("checkpoint", [None, "step", 8])
def test_program_size_does_not_grow_with_steps(optimize, checkpoint):
    """Time is iterated by scans, never unrolled, so the traced program (and compile time)
    does not grow with T. Chunked programs trace one chunk body, plus one for a ragged last
    chunk when the chunk size does not divide T: at most two program sizes over all T."""
    g = _recurrent_graph(RECURRENT_EDGES)
    model = nirjax.compile(g, dt=DT, checkpoint=checkpoint, optimize=optimize)
    programs = {steps: _program(model, steps) for steps in (10, 1000, 4099, 8191, 16384)}
    sizes = {steps: p[:2] for steps, p in programs.items()}
    assert len(set(n for n, _ in sizes.values())) <= 2, {t: n for t, (n, _) in sizes.items()}
    assert sizes[4099] == sizes[8191]  # both prime: full chunks and a ragged tail
    for n_eqns, names, lengths in programs.values():
        assert n_eqns < 200 and "scan" in names
    if not optimize and not isinstance(checkpoint, int):
        # the reference program is exactly one scan over time
        assert programs[1000][2] == [1000] and programs[8191][2] == [8191]
    if not optimize and isinstance(checkpoint, int):
        # checkpoint=K: one scan over T // K chunks of one K-step scan, plus a ragged tail
        assert programs[1000][2] == [125, 8]


def test_default_float32_and_float64_with_x64():
    rng = rng_for("dtypes")
    g = chain((3,), (3,), ("a", affine(rng, 3, 3)), ("lif", neuron("CubaLIF", rng, (3,))))
    xs = drive("dtypes")
    for x64_mode, dtype in ((False, np.float32), (True, np.float64)):
        with jax.enable_x64(x64_mode):
            model = nirjax.compile(g, dt=DT)
            ys, state = model.run(model.params, xs)
            assert model.dtype == dtype and np.asarray(ys).dtype == dtype
            for leaf in jax.tree_util.tree_leaves((model.params, state)):
                assert leaf.dtype == dtype
            # integer and boolean spike inputs are accepted and cast
            spikes = (xs > 0.7)
            np.testing.assert_array_equal(np.asarray(model(spikes)),
                                          np.asarray(model(spikes.astype(dtype))))
    with jax.enable_x64(True):
        model = nirjax.compile(g, dt=DT, dtype=np.float32)
        assert np.asarray(model(xs)).dtype == np.float32


@pytest.mark.parametrize("options", [dict(checkpoint="step"), dict(checkpoint=5),
                                     dict(checkpoint=7), dict(unroll=3), dict(optimize=False),
                                     dict(optimize=False, checkpoint=5), dict(chunk=6),
                                     dict(associative_scan=True)],
                         ids=["checkpoint-step", "checkpoint-5", "checkpoint-7", "unroll-3",
                              "plain", "plain-checkpoint-5", "chunk-6", "associative-scan"])
def test_scan_options_do_not_change_results(options, x64):
    """checkpoint/unroll/chunking change memory and speed only: same outputs, same gradients."""
    plain_ys, plain_grads = _reference_run_and_grads()
    other = nirjax.compile(_recurrent_graph(RECURRENT_EDGES), dt=DT, **options)
    ys, grads = _run_and_grads(other)
    # equal up to float rounding: a different chunk size changes the shapes XLA sums over
    # (compile's docstring says "identical"; it is not bit-for-bit, see the test report)
    np.testing.assert_allclose(ys, plain_ys, rtol=1e-13, atol=1e-13)
    for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(plain_grads)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)


_OPTIONS_XS = drive("options", steps=20)
_REFERENCE: dict = {}


def _run_and_grads(model):
    def loss(p):
        ys, _, rec = model.run(p, _OPTIONS_XS, record=[("d", "v")])
        return (ys * np.arange(2)[None, None]).sum() + rec[("d", "v")].sum()

    return np.asarray(model(_OPTIONS_XS)), jax.grad(loss)(model.params)


def _reference_run_and_grads():
    """Outputs and gradients of the default compile, computed once for the module."""
    if "x64" not in _REFERENCE:
        _REFERENCE["x64"] = _run_and_grads(nirjax.compile(_recurrent_graph(RECURRENT_EDGES), dt=DT))
    return _REFERENCE["x64"]


def test_compile_and_write_do_not_mutate_the_graph(tmp_path):
    """nir's own type inference adds nodes to a graph; nirjax must leave the user's alone."""
    import copy

    rng = rng_for("no-mutation")
    sub = graph({"i": nir.Input(input_type=np.array([3])), "lif": neuron("LIF", rng, (3,)),
                 "o": nir.Output(output_type=np.array([3]))}, [("i", "lif"), ("lif", "o")])
    g = graph({**io_nodes((3,), (3,)), "w": affine(rng, 3, 3), "sub": sub},
              [("input", "w"), ("w", "sub"), ("sub", "output"), ("sub", "w")])
    before = copy.deepcopy(g)
    model = nirjax.compile(g, dt=DT)
    model(drive("no-mutation"))
    nirjax.write(tmp_path / "g.nir", g)
    nirjax.to_nir(model)
    assert list(g.nodes) == list(before.nodes) and g.edges == before.edges
    assert list(g.nodes["sub"].nodes) == list(before.nodes["sub"].nodes)
    assert g.nodes["sub"].edges == before.nodes["sub"].edges
    np.testing.assert_array_equal(g.nodes["w"].weight, before.nodes["w"].weight)


def test_compile_accepts_a_path(tmp_path, x64):
    rng = rng_for("path")
    g = chain((3,), (3,), ("w", affine(rng, 3, 3)), ("lif", neuron("LIF", rng, (3,))))
    nirjax.write(tmp_path / "g.nir", g)
    xs = drive("path")
    expected = np.asarray(nirjax.compile(g, dt=DT)(xs))
    for path in (tmp_path / "g.nir", str(tmp_path / "g.nir")):
        np.testing.assert_array_equal(np.asarray(nirjax.compile(path, dt=DT)(xs)), expected)


@pytest.mark.parametrize("delays", [[2e-3, 3e-3], [0.0, 2e-3]], ids=["all-positive", "with-zero"])
def test_delay_self_loop(delays, x64):
    """d -> d: a delay of n >= 1 steps needs no extra step; one with a zero element has
    feedthrough, so its self-loop is a delayed edge like any other."""
    g = graph({**io_nodes((2,), (2,)), "d": nir.Delay(delay=np.array(delays))},
              [("input", "d"), ("d", "d"), ("d", "output")])
    xs = drive("delay-self-loop", (2,))
    model = check(g, xs)
    steps = [int(round(d / DT)) for d in delays]
    lag = 0 if min(steps) >= 1 else 1  # the self-loop is a delayed edge only with feedthrough
    y = np.zeros_like(xs)  # the delay's output
    u = np.zeros_like(xs)  # its summed input: x + the self-loop
    for t in range(T):
        if lag == 0:  # every element reads the past only: output first, then input
            for e, n in enumerate(steps):
                y[t, :, e] = u[t - n, :, e] if t >= n else 0.0
            u[t] = xs[t] + y[t]
        else:
            u[t] = xs[t] + (y[t - 1] if t >= 1 else 0.0)
            for e, n in enumerate(steps):
                y[t, :, e] = u[t - n, :, e] if t >= n else 0.0
    expected = y
    if min(steps) >= 1:
        assert delayed(model) == set()
    else:
        assert delayed(model) == {("d", "d")}
    np.testing.assert_allclose(np.asarray(model(xs)), expected, rtol=1e-13)


@pytest.mark.parametrize("checkpoint,optimize", [
    ("step", True), (5, True), ("step", False),
    (5, False),
], ids=["step-staged", "5-staged", "step-plain", "5-plain"])
def test_checkpoint_rematerializes(checkpoint, optimize):
    """checkpoint= puts the scan body (or chunk) under jax.checkpoint in every program."""
    model = nirjax.compile(_recurrent_graph(RECURRENT_EDGES), dt=DT, checkpoint=checkpoint,
                           optimize=optimize)
    jaxpr = jax.make_jaxpr(lambda x: model.run(model.params, x)[0])(np.zeros((20, 2, 3), np.float32))
    names = {e.primitive.name for e in _walk(jaxpr.jaxpr)}
    assert names & {"remat2", "remat", "checkpoint"}, sorted(names)
