"""Channels-last convolution stacks (nirjax.compiler.layout) compute what the plain program
computes: same outputs, records, final state and gradients; and the float64 NumPy oracle
(tests/oracle.py, no nirjax code) agrees with both."""

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax
from nirjax.compiler.layout import channels_last
from nirjax.compiler.schedule import schedule

from oracle import run_graph


def _conv2d(rng, c_out, c_in, k, stride=1, padding=1):
    w = rng.standard_normal((c_out, c_in, k, k)) * 1.5 / np.sqrt(c_in * k * k)
    return nir.Conv2d(input_shape=None, weight=w, stride=stride, padding=padding, dilation=1,
                      groups=1, bias=rng.normal(size=c_out) * 0.1)


def _lif(shape, rng):
    return nir.LIF(tau=rng.uniform(2e-3, 6e-3, shape), r=rng.uniform(0.5, 2, shape),
                   v_leak=np.zeros(shape), v_threshold=rng.uniform(0.3, 0.8, shape),
                   v_reset=np.zeros(shape))


def conv_graph():
    """Every case of the layout pass in one graph.

    * a 2-channel strided first layer (run space-to-depth), LIF, sum pool;
    * a second branch from the same convolution through Scale (an elementwise map),
      Threshold and an average pool, summed with the first into the next convolution
      (fan-in of two channels-last values);
    * IF, Scale and IF layers in a row with coefficients that differ along every axis (a
      wrong permutation would show), Flatten, Affine, LI;
    * a convolution feeding a CubaLIF on a cycle through another convolution (a scan stage
      of two members, which stays channels-first);
    * a Conv1d branch with a strided 2-channel convolution into two LIF layers in a row
      (one scan stage of two members, channels-first).
    """
    rng = np.random.default_rng(3)
    nodes = {
        "in": nir.Input(np.array([2, 12, 12])),
        "c1": _conv2d(rng, 4, 2, 5, stride=2, padding=2),            # -> (4, 6, 6)
        "l1": _lif((4, 6, 6), rng),
        "p1": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                            padding=np.array([0, 0])),                # -> (4, 3, 3)
        "s": nir.Scale(rng.uniform(0.5, 2.0, (4, 6, 6))),
        "t": nir.Threshold(np.full((4, 6, 6), 0.1)),
        "p2": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                            padding=np.array([0, 0])),
        "c2": _conv2d(rng, 3, 4, 3),                                  # -> (3, 3, 3)
        "i2": nir.IF(r=rng.uniform(500, 2000, (3, 3, 3)), v_threshold=rng.uniform(0.2, 0.6, (3, 3, 3)),
                     v_reset=rng.uniform(-0.1, 0.1, (3, 3, 3))),
        "s2": nir.Scale(rng.uniform(0.7, 1.5, (3, 3, 3))),
        "f": nir.Flatten(input_type={"input": np.array([3, 3, 3])}, start_dim=0, end_dim=2),
        "a": nir.Affine(rng.standard_normal((5, 27)) * 0.5, rng.normal(size=5) * 0.1),
        "li": nir.LI(tau=np.full(5, 4e-3), r=np.ones(5), v_leak=np.zeros(5)),
        "out": nir.Output(np.array([5])),
        # a convolution into a recurrent pair
        "c3": _conv2d(rng, 2, 2, 3, stride=2, padding=1),             # -> (2, 6, 6)
        "cl": nir.CubaLIF(tau_syn=np.full((2, 6, 6), 3e-3), tau_mem=np.full((2, 6, 6), 6e-3),
                          r=np.ones((2, 6, 6)), v_leak=np.zeros((2, 6, 6)),
                          v_threshold=np.full((2, 6, 6), 0.5), v_reset=np.zeros((2, 6, 6)),
                          w_in=np.ones((2, 6, 6))),
        "rec": _conv2d(rng, 2, 2, 3),
        "out2": nir.Output(np.array([2, 6, 6])),
        # Conv1d
        "in1": nir.Input(np.array([2, 20])),
        "d1": nir.Conv1d(input_shape=None, weight=rng.standard_normal((3, 2, 4)) * 0.6,
                         stride=2, padding=1, dilation=1, groups=1, bias=np.zeros(3)),
        "l3": _lif((3, 10), rng),
        "l4": _lif((3, 10), rng),
        "out3": nir.Output(np.array([3, 10])),
        "i3": nir.IF(r=np.full((3, 3, 3), 1000.0), v_threshold=rng.uniform(0.2, 0.4, (3, 3, 3)),
                     v_reset=np.zeros((3, 3, 3))),
    }
    edges = [("in", "c1"), ("c1", "l1"), ("l1", "p1"), ("c1", "s"), ("s", "t"), ("t", "p2"),
             ("p1", "c2"), ("p2", "c2"), ("c2", "i2"), ("i2", "s2"), ("s2", "i3"), ("i3", "f"), ("f", "a"),
             ("a", "li"), ("li", "out"),
             ("in", "c3"), ("c3", "cl"), ("cl", "rec"), ("rec", "cl"), ("cl", "out2"),
             ("in1", "d1"), ("d1", "l3"), ("l3", "l4"), ("l4", "out3")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


RECORD = ["l1", ("l1", "v"), "p2", "c2", "i2", ("i2", "v"), ("cl", "i_syn"), "l3"]


def _inputs(rng, steps, batch):
    return {"in": (rng.random((steps, batch, 2, 12, 12)) < 0.4).astype(np.float64),
            "in1": (rng.random((steps, batch, 2, 20)) < 0.4).astype(np.float64)}


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def test_layout_pass_picks_the_convolution_stack():
    model = nirjax.compile(conv_graph(), dt=1e-3)
    last = channels_last(model.program, schedule(model.program))
    # l3 -> l4 share one scan stage, as do the recurrent pair cl <-> rec: channels-first
    assert last == {"c1", "l1", "p1", "s", "t", "p2", "c2", "i2", "s2", "i3", "c3", "d1"}


@pytest.mark.parametrize("chunk", [None, 4])
def test_channels_last_equals_plain_and_oracle(chunk):
    graph = conv_graph()
    rng = np.random.default_rng(0)
    plain = nirjax.compile(graph, dt=1e-3, optimize=False)
    staged = nirjax.compile(graph, dt=1e-3, chunk=chunk)
    xs = _inputs(rng, 10, 3)
    y0, s0, r0 = plain.run(plain.params, xs, record=RECORD)
    y1, s1, r1 = staged.run(staged.params, xs, record=RECORD)
    for key in y0:
        np.testing.assert_allclose(y1[key], y0[key], rtol=1e-12, atol=1e-12)
    for key in r0:
        assert r0[key].shape == r1[key].shape, key
        np.testing.assert_allclose(r1[key], r0[key], rtol=1e-12, atol=1e-12, err_msg=str(key))
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12),
                           s0, s1)
    # not vacuous: spikes in every spiking layer
    for name in ("l1", "l3", "i2"):
        assert 0 < float(np.mean(r0[name])) < 1, name
    assert float(np.std(y0["out"])) > 0 and 0 < float(np.mean(y0["out2"])) < 1
    ys, rec = run_graph(graph, xs, 1e-3, record=["l1", "p2", "c2", "l3"])
    for key in ("out", "out2", "out3"):
        np.testing.assert_allclose(y1[key], ys[key], rtol=1e-9, atol=1e-9, err_msg=key)
    for key in ("l1", "p2", "c2", "l3"):
        np.testing.assert_allclose(r1[key], rec[key], rtol=1e-9, atol=1e-9, err_msg=key)


def test_channels_last_state_round_trip():
    """A run continued from a returned state equals one run over both halves."""
    graph = conv_graph()
    staged = nirjax.compile(graph, dt=1e-3, chunk=3)
    xs = _inputs(np.random.default_rng(1), 12, 2)
    first = {k: v[:5] for k, v in xs.items()}
    second = {k: v[5:] for k, v in xs.items()}
    y_all, s_all = staged.run(staged.params, xs)
    y_a, s_a = staged.run(staged.params, first)
    y_b, s_b = staged.run(staged.params, second, s_a)
    for key in y_all:
        np.testing.assert_allclose(np.concatenate([y_a[key], y_b[key]]), y_all[key], atol=1e-12)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-12), s_all, s_b)
    assert s_all.nodes["l1"].v.shape == (2, 4, 6, 6)  # channels-first, as init_state made it


def test_channels_last_gradients_equal_plain():
    graph = conv_graph()
    rng = np.random.default_rng(2)
    plain = nirjax.compile(graph, dt=1e-3, optimize=False)
    staged = nirjax.compile(graph, dt=1e-3, chunk=4)
    xs = _inputs(rng, 9, 2)
    state = jax.tree_util.tree_map(lambda a: a + 0.2, plain.init_state(2))

    def loss(model):
        def f(p, s):
            ys, end, rec = model.run(p, xs, s, record=["l1", ("i2", "v")])
            total = sum(jnp.sum(jnp.cos(jnp.arange(y.size).reshape(y.shape)) * y)
                        for y in jax.tree_util.tree_leaves(ys))
            total += sum(jnp.sum(r ** 2) for r in rec.values())  # keys mix str and tuple
            return total + sum(jnp.sum(v ** 2) for v in jax.tree_util.tree_leaves(end))
        return f

    g0 = jax.grad(loss(plain), argnums=(0, 1))(plain.params, state)
    g1 = jax.grad(loss(staged), argnums=(0, 1))(staged.params, state)
    leaves0, leaves1 = jax.tree_util.tree_leaves(g0), jax.tree_util.tree_leaves(g1)
    assert len(leaves0) == len(leaves1)
    for a, b in zip(leaves0, leaves1):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-10)
    assert float(jnp.abs(g0[0]["c1"].weight).sum()) > 0


def test_per_sample_coefficient_gradients_equal_autodiff():
    """The recompute VJP with per-sample coefficient copies (scan_vjp ``per_sample``) gives
    jax's own scan gradient, for the per-element coefficients of every neuron layer too."""
    graph = conv_graph()
    fast = nirjax.compile(graph, dt=1e-3, chunk=4)
    slow = nirjax.compile(graph, dt=1e-3, chunk=4, fast_backward=False)
    xs = _inputs(np.random.default_rng(5), 8, 3)

    def loss(model):
        def f(p):
            ys = model.run(p, xs)[0]
            return sum(jnp.sum(jnp.cos(jnp.arange(y.size).reshape(y.shape)) * y)
                       for y in jax.tree_util.tree_leaves(ys))
        return f

    g_fast = jax.grad(loss(fast))(fast.params)
    g_slow = jax.grad(loss(slow))(slow.params)
    for name in ("l1", "i2", "cl", "l3", "c1", "a"):
        for a, b in zip(jax.tree_util.tree_leaves(g_slow[name]), jax.tree_util.tree_leaves(g_fast[name])):
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-10, err_msg=name)
    assert float(jnp.abs(g_slow["l1"].tau).sum()) > 0  # per-element coefficients get gradient
