"""The staged program (nirjax.compiler.schedule) must compute exactly what the plain one-scan program
computes: same outputs, records, final state and gradients, for every chunking."""

import warnings

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax
from nirjax.compiler.schedule import components, schedule


def _lif(n, rng, tau=5e-3):
    return nir.LIF(tau=rng.uniform(0.5, 2, n) * tau, r=rng.uniform(0.5, 2, n),
                   v_leak=rng.uniform(-0.1, 0.1, n), v_threshold=rng.uniform(0.5, 1.0, n),
                   v_reset=rng.uniform(-0.2, 0.0, n))


def _cuba(n, rng):
    return nir.CubaLIF(tau_syn=rng.uniform(2e-3, 5e-3, n), tau_mem=rng.uniform(5e-3, 1e-2, n),
                       r=rng.uniform(0.5, 2, n), v_leak=np.zeros(n),
                       v_threshold=rng.uniform(0.5, 1.0, n), v_reset=np.zeros(n),
                       w_in=rng.uniform(0.5, 2, n))


def _w(o, i, rng, gain=3.0):
    return rng.standard_normal((o, i)) * gain / np.sqrt(i)


def _graphs():
    rng = np.random.default_rng(1)
    chain = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([6])), "a": nir.Affine(_w(8, 6, rng), rng.normal(size=8)),
               "l": _lif(8, rng), "b": nir.Linear(_w(3, 8, rng)), "li": nir.LI(
                   tau=np.full(3, 4e-3), r=np.ones(3), v_leak=np.zeros(3)),
               "out": nir.Output(np.array([3]))},
        edges=[("in", "a"), ("a", "l"), ("l", "b"), ("b", "li"), ("li", "out")], type_check=False)
    recurrent = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([5])), "fc": nir.Linear(_w(7, 5, rng)), "c": _cuba(7, rng),
               "rec": nir.Affine(_w(7, 7, rng), rng.normal(size=7) * 0.1), "self": _lif(7, rng),
               "d": nir.Delay(delay=np.full(7, 3e-3)), "out": nir.Output(np.array([7])),
               "out2": nir.Output(np.array([7]))},
        edges=[("in", "fc"), ("fc", "c"), ("c", "rec"), ("rec", "c"), ("c", "self"),
               ("self", "self"), ("self", "d"), ("d", "c"), ("self", "out"), ("rec", "out2")],
        type_check=False)
    two_inputs = nir.NIRGraph(
        nodes={"x": nir.Input(np.array([4])), "y": nir.Input(np.array([3])),
               "fx": nir.Linear(_w(5, 4, rng)), "fy": nir.Linear(_w(5, 3, rng)),
               "l": _lif(5, rng), "s": nir.Scale(rng.uniform(0.5, 2, 5)),
               "t": nir.Threshold(np.full(5, 0.3)), "o": nir.Output(np.array([5]))},
        edges=[("x", "fx"), ("y", "fy"), ("fx", "l"), ("fy", "l"), ("fy", "s"), ("l", "s"),
               ("s", "t"), ("t", "o")], type_check=False)
    return {"chain": chain, "recurrent": recurrent, "two_inputs": two_inputs}


def _inputs(model, steps, batch, rng):
    return {n: (rng.random((steps, batch) + s) < 0.3).astype(np.float64)
            for n, s in model.input_shapes.items()}


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("name", ["chain", "recurrent", "two_inputs"])
@pytest.mark.parametrize("chunk", [None, 1, 7, 12, 40])
def test_staged_equals_plain(name, chunk):
    graph = _graphs()[name]
    rng = np.random.default_rng(0)
    plain = nirjax.compile(graph, dt=1e-3, optimize=False)
    staged = nirjax.compile(graph, dt=1e-3, chunk=chunk)
    xs = _inputs(plain, 40, 3, rng)
    record = [n.name for n in plain.program.nodes if n.role == "op"][:3]
    record += [(n.name, "v") for n in plain.program.nodes if n.type_name in ("LIF", "CubaLIF")]
    y0, s0, r0 = plain.run(plain.params, xs, record=record)
    y1, s1, r1 = staged.run(staged.params, xs, record=record)
    jax.tree_util.tree_map(np.testing.assert_array_equal, y0, y1)
    assert r0.keys() == r1.keys()
    for key in r0:
        np.testing.assert_array_equal(r0[key], r1[key])
    jax.tree_util.tree_map(np.testing.assert_array_equal, s0, s1)
    assert sum(float(jnp.sum(v)) for v in jax.tree_util.tree_leaves(y0)) > 0  # not trivially silent


@pytest.mark.parametrize("checkpoint", [None, "step", 8])
def test_gradients_equal_plain(checkpoint):
    graph = _graphs()["recurrent"]
    rng = np.random.default_rng(3)
    plain = nirjax.compile(graph, dt=1e-3, optimize=False)
    staged = nirjax.compile(graph, dt=1e-3, checkpoint=checkpoint)
    xs = _inputs(plain, 32, 2, rng)

    def loss(model):
        return lambda p: sum(jnp.sum(jnp.sin(jnp.arange(y.size).reshape(y.shape)) * y)
                             for y in jax.tree_util.tree_leaves(model.run(p, xs)[0]))

    g0 = jax.grad(loss(plain))(plain.params)
    g1 = jax.grad(loss(staged))(staged.params)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12), g0, g1)
    assert any(float(jnp.abs(v).sum()) > 0 for v in jax.tree_util.tree_leaves(g0))


@pytest.mark.parametrize("example,shape", [("braille_bias_zero", (12,)), ("cnn_sinabs", (2, 34, 34))])
def test_paper_graphs_staged_equals_plain(example, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        graph = nirjax.read(nirjax.example_path(example))
    rng = np.random.default_rng(5)
    steps = 20
    xs = (rng.random((steps, 2) + shape) < 0.3).astype(np.float64)
    plain = nirjax.compile(graph, dt=1e-3, optimize=False, semantics={"reset": "subtract"})
    staged = nirjax.compile(graph, dt=1e-3, chunk=6, semantics={"reset": "subtract"})
    np.testing.assert_array_equal(plain(xs), staged(xs))


def test_schedule_groups_stateless_projections():
    prog = nirjax.compile(_graphs()["recurrent"], dt=1e-3).program
    stages = schedule(prog)
    kinds = {m: s.kind for s in stages for m in s.members}
    assert kinds["fc"] == "map" and kinds["in"] == "map"
    # the recurrent Affine, the CubaLIF, the self-looped LIF and the delay form one loop
    loop = [s for s in stages if "c" in s.members][0]
    assert {"c", "rec", "self", "d"} <= set(loop.members) and loop.kind == "scan"
    # every edge goes forward in stage order or stays inside a stage
    where = {m: i for i, s in enumerate(stages) for m in s.members}
    assert all(where[e.src] <= where[e.dst] for e in prog.edges)


def test_components_finds_cycles():
    comps = components(list("abcde"), [("a", "b"), ("b", "c"), ("c", "b"), ("c", "d"), ("e", "e")])
    assert sorted(map(sorted, comps)) == [["a"], ["b", "c"], ["d"], ["e"]]


def test_pallas_lif_kernel_equals_reference():
    from nirjax.kernels import neurons as kn
    from nirjax.kernels.pallas_lif import lif_multistep, lif_multistep_reference
    from nirjax.kernels.surrogate import Surrogate

    rng = np.random.default_rng(0)
    m, steps = 700, 30
    coeffs = kn.LIFCoeffs(*[jnp.asarray(a) for a in (
        rng.uniform(0.05, 0.2, m), rng.uniform(0.5, 2, m), rng.uniform(-0.1, 0.1, m),
        rng.uniform(0.5, 1, m), rng.uniform(-0.2, 0, m))])
    xs = jnp.asarray(rng.random((steps, m)) * 3)
    v0 = jnp.asarray(rng.uniform(-0.1, 0.5, m))
    pieces = [  # (update, fire): the spec's Euler step with reset to v_reset, strict test;
        (kn.leaky_euler, kn.fire_same_step(kn.spike_rule(False, Surrogate()),
                                           kn.reset_rule("v_reset"))),
        # exact integration, subtractive reset, inclusive test
        (kn.leaky_exact, kn.fire_same_step(kn.spike_rule(True, Surrogate()),
                                           kn.reset_rule("subtract")))]
    for update, fire in pieces:
        ref = lif_multistep_reference(coeffs, v0, xs, update, fire)
        got = lif_multistep(coeffs, v0, xs, update, fire, 256, True)
        np.testing.assert_array_equal(ref[0], got[0])
        np.testing.assert_array_equal(ref[1], got[1])
        assert 0 < float(ref[1].mean()) < 1
        weights = jnp.asarray(rng.standard_normal(ref[1].shape))
        g_ref = jax.grad(lambda x: jnp.sum(
            lif_multistep_reference(coeffs, v0, x, update, fire)[1] * weights))(xs)
        g_got = jax.grad(lambda x: jnp.sum(
            lif_multistep(coeffs, v0, x, update, fire, 256, True)[1] * weights))(xs)
        np.testing.assert_allclose(g_ref, g_got, rtol=1e-12)


def test_pallas_option_in_compiled_graph():
    graph = _graphs()["chain"]
    rng = np.random.default_rng(2)
    plain = nirjax.compile(graph, dt=1e-3, optimize=False)
    fused = nirjax.compile(graph, dt=1e-3, pallas="interpret", chunk=10)
    xs = _inputs(plain, 30, 3, rng)
    np.testing.assert_array_equal(plain(xs), fused(xs))


def test_bfloat16_matmul_is_explicit_and_close():
    graph = _graphs()["chain"]
    rng = np.random.default_rng(4)
    ref = nirjax.compile(graph, dt=1e-3, semantics={"reset": "none"})
    bf16 = nirjax.compile(graph, dt=1e-3, matmul_dtype="bfloat16", semantics={"reset": "none"})
    xs = _inputs(ref, 30, 3, rng)
    _, _, r0 = ref.run(ref.params, xs, record=["a"])
    _, _, r1 = bf16.run(bf16.params, xs, record=["a"])
    assert r1["a"].dtype == r0["a"].dtype  # accumulation and state stay in the model dtype
    assert not np.array_equal(r0["a"], r1["a"])  # operands really were rounded
    np.testing.assert_allclose(r0["a"], r1["a"], rtol=2e-2, atol=2e-2)


def test_donated_state_is_consumed():
    graph = _graphs()["chain"]
    model = nirjax.compile(graph, dt=1e-3, donate_state=True)
    xs = _inputs(model, 5, 2, np.random.default_rng(0))
    state = model.init_state(2)
    _, new_state = model.run(model.params, xs, state)
    assert jax.tree_util.tree_leaves(new_state)[0].shape[0] == 2
    assert all(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(state))


@pytest.mark.parametrize("integrator", ["euler", "exact"])
@pytest.mark.parametrize("cuba_current", ["old", "new"])
def test_associative_scan_matches_sequential(integrator, cuba_current):
    rng = np.random.default_rng(7)
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([5])), "fc": nir.Linear(_w(6, 5, rng)),
               "c": _cuba(6, rng),
               "fc2": nir.Linear(_w(4, 6, rng)),
               "cli": nir.CubaLI(tau_syn=np.full(4, 3e-3), tau_mem=np.full(4, 6e-3), r=np.ones(4),
                                 v_leak=np.full(4, 0.1), w_in=np.full(4, 2.0)),
               "li": nir.LI(tau=np.full(4, 4e-3), r=np.full(4, 2.0), v_leak=np.zeros(4)),
               "o1": nir.Output(np.array([4])), "o2": nir.Output(np.array([4]))},
        edges=[("in", "fc"), ("fc", "c"), ("c", "fc2"), ("fc2", "cli"), ("fc2", "li"),
               ("cli", "o1"), ("li", "o2")], type_check=False)
    sem = {"integrator": integrator, "cuba_current": cuba_current}
    seq = nirjax.compile(graph, dt=1e-3, semantics=sem, optimize=False)
    par = nirjax.compile(graph, dt=1e-3, semantics=sem, associative_scan=True, chunk=16)
    xs = _inputs(seq, 48, 3, rng)
    y0, s0, r0 = seq.run(seq.params, xs, record=["c"])
    y1, s1, r1 = par.run(par.params, xs, record=["c"])
    np.testing.assert_array_equal(r0["c"], r1["c"])  # spikes identical
    assert 0 < float(r0["c"].mean()) < 1
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12), y0, y1)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12), s0, s1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["chain", "recurrent", "two_inputs"])
@pytest.mark.parametrize("optimize", [True, False])
def test_fast_backward_equals_autodiff(name, optimize):
    """nirjax.compiler.scan_vjp's recompute VJP gives autodiff's gradient w.r.t. params, inputs and
    initial state (the recurrent graph carries an integer delay-line position)."""
    graph = _graphs()[name]
    rng = np.random.default_rng(5)
    fast = nirjax.compile(graph, dt=1e-3, optimize=optimize, chunk=9)
    ref = nirjax.compile(graph, dt=1e-3, optimize=optimize, chunk=9, fast_backward=False)
    xs = _inputs(ref, 30, 2, rng)
    state = jax.tree_util.tree_map(
        lambda a: a + 0.3 if jnp.issubdtype(a.dtype, jnp.floating) else a, ref.init_state(2))

    def loss(model):
        def f(p, x, s):
            ys, end, rec = model.run(p, x, s, record=[(n.name, "v") for n in model.program.nodes
                                                      if n.type_name == "LIF"])
            total = sum(jnp.sum(jnp.cos(jnp.arange(y.size).reshape(y.shape)) * y)
                        for y in jax.tree_util.tree_leaves(ys))
            total += sum(jnp.sum(r ** 2) for r in jax.tree_util.tree_leaves(rec))
            return total + sum(jnp.sum(v) for v in jax.tree_util.tree_leaves(end)
                               if jnp.issubdtype(v.dtype, jnp.floating))
        return f

    g_ref = jax.grad(loss(ref), argnums=(0, 1, 2), allow_int=True)(ref.params, xs, state)
    g_fast = jax.grad(loss(fast), argnums=(0, 1, 2), allow_int=True)(fast.params, xs, state)
    leaves_ref = jax.tree_util.tree_leaves(g_ref)
    leaves_fast = jax.tree_util.tree_leaves(g_fast)
    assert len(leaves_ref) == len(leaves_fast)
    for a, b in zip(leaves_ref, leaves_fast):
        assert a.dtype == b.dtype and a.shape == b.shape
        if a.dtype != jax.dtypes.float0:
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    assert sum(float(jnp.abs(v).sum()) for v in leaves_ref if v.dtype != jax.dtypes.float0) > 0


def test_forward_mode_with_fast_backward_off_matches_reverse_mode():
    """jax.jvp needs fast_backward=False; its directional derivative equals the one from the
    default reverse-mode rule (gradient dotted with the direction)."""
    graph = _graphs()["chain"]
    rng = np.random.default_rng(9)
    fwd_model = nirjax.compile(graph, dt=1e-3, fast_backward=False, chunk=7)
    rev_model = nirjax.compile(graph, dt=1e-3, chunk=7)
    xs = _inputs(rev_model, 20, 2, rng)

    def f(model):
        return lambda p: jnp.sum(jnp.sin(model.run(p, xs)[0]))

    direction = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(size=a.shape)),
                                       rev_model.params)
    _, tangent = jax.jvp(f(fwd_model), (fwd_model.params,), (direction,))
    grad = jax.grad(f(rev_model))(rev_model.params)
    expected = sum(jnp.vdot(g, d) for g, d in zip(jax.tree_util.tree_leaves(grad),
                                                   jax.tree_util.tree_leaves(direction)))
    np.testing.assert_allclose(tangent, expected, rtol=1e-9)
    assert abs(float(expected)) > 0
