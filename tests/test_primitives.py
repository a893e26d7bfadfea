"""Generic tests driven by ONE table of all NIR primitives (``builders.PRIMITIVE_CASES``).

For every primitive: the compiled graph matches the NumPy oracle (float64 and float32), runs
under an outer ``jax.jit``, a batch equals its samples run one at a time and ``jax.vmap``,
the carried state keeps its structure, shapes and dtype, ``model.step`` in a loop equals
``model.run``, and gradients through ``model.run`` are finite (and, for primitives without
spikes, equal finite differences).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax
import oracle
from builders import NIR_TYPES, PRIMITIVE_CASES, build_case, rng_for

CASES = list(PRIMITIVE_CASES)
T, B = 12, 3

_MODELS: dict = {}


def compiled(case_id: str, optimize: bool = True):
    """The case and its compiled model, shared across tests (one per dtype mode and per
    program: the staged default or the plain one-scan reference, ``optimize=False``)."""
    key = (case_id, bool(jax.config.jax_enable_x64), optimize)
    if key not in _MODELS:
        case = build_case(case_id)
        _MODELS[key] = case, nirjax.compile(case.graph, dt=case.dt, optimize=optimize)
    return _MODELS[key]


def inputs(case, steps=T, batch=B, key="x"):
    return case.make_input(rng_for(key), steps, batch)


def _types(g):
    out = set()
    for node in g.nodes.values():
        out.add(type(node).__name__)
        if isinstance(node, nir.NIRGraph):
            out |= _types(node)
    return out


def test_table_covers_every_nir_primitive():
    covered = set()
    for case_id in CASES:
        covered |= _types(build_case(case_id).graph)
    assert set(NIR_TYPES) <= covered, set(NIR_TYPES) - covered


@pytest.mark.parametrize("case_id", CASES)
@pytest.mark.parametrize("optimize", [True, False], ids=["staged", "plain"])
def test_matches_oracle_float64(case_id, optimize, x64):
    case, model = compiled(case_id, optimize)
    xs = inputs(case)
    ys, _ = model.run(model.params, xs)
    ref, ref_rec = oracle.run_graph(case.graph, xs, case.dt, record=case.record)
    assert np.asarray(ys).dtype == np.float64
    np.testing.assert_allclose(np.asarray(ys), ref, rtol=1e-10, atol=1e-12)
    if case.record:
        _, _, rec = model.run(model.params, xs, record=list(case.record))
        for item in case.record:
            np.testing.assert_allclose(np.asarray(rec[item]), ref_rec[item], rtol=1e-10,
                                       atol=1e-12, err_msg=str(item))


@pytest.mark.parametrize("case_id", CASES)
def test_matches_oracle_float32(case_id):
    case, model = compiled(case_id)
    xs = inputs(case).astype(np.float32)
    ys = np.asarray(model(xs))
    assert ys.dtype == np.float32
    ref, _ = oracle.run_graph(case.graph, xs, case.dt)
    if case.smooth:
        np.testing.assert_allclose(ys, ref, rtol=1e-4, atol=1e-4)
    else:
        # spikes must all agree; the test data keep every threshold crossing at least 1e-4
        # away from equality, far above float32 rounding
        assert _spike_margin(case, xs) > 1e-4
        np.testing.assert_array_equal(ys, ref)


def _spike_margin(case, xs):
    """Smallest distance to a threshold the oracle meets on ``xs`` (spiking cases)."""
    margins = []
    for b in range(xs.shape[1]):
        interpreter = oracle.NpGraph(case.graph, case.dt)
        interpreter.run({"input": np.asarray(xs[:, b], np.float64)})
        op = interpreter.ops["node"]
        if isinstance(op, oracle.Neuron):
            margins.append(op.margin)
        else:  # Threshold
            margins.append(np.min(np.abs(xs[:, b] - op.node.threshold)))
    return min(margins)


@pytest.mark.parametrize("case_id", CASES)
def test_runs_under_outer_jit(case_id, x64):
    case, model = compiled(case_id)
    xs = inputs(case)
    jitted = jax.jit(lambda p, x: model.run(p, x)[0])
    np.testing.assert_array_equal(np.asarray(jitted(model.params, xs)),
                                  np.asarray(model.run(model.params, xs)[0]))


@pytest.mark.parametrize("case_id", CASES)
def test_batch_equals_samples_one_at_a_time(case_id, x64):
    case, model = compiled(case_id)
    xs = inputs(case)
    ys = np.asarray(model(xs))
    for b in range(B):
        single = np.asarray(model(xs[:, b:b + 1]))
        np.testing.assert_allclose(ys[:, b:b + 1], single, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("case_id", CASES)
def test_vmap_over_samples_equals_batch(case_id, x64):
    case, model = compiled(case_id)
    xs = inputs(case)

    def one_sample(x):  # x: [T, *shape] -> [T, *out_shape]
        return model.run(model.params, x[:, None])[0][:, 0]

    mapped = jax.vmap(one_sample, in_axes=1, out_axes=1)(jnp.asarray(xs))
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(model(xs)), rtol=1e-13, atol=1e-13)


def _signature(tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, [(leaf.shape, leaf.dtype) for leaf in leaves]


@pytest.mark.parametrize("case_id", CASES)
@pytest.mark.parametrize("x64_mode", [False, True], ids=["float32", "float64"])
def test_state_structure_and_dtype_stable(case_id, x64_mode):
    with jax.enable_x64(x64_mode):
        case, model = compiled(case_id)
        xs = inputs(case)
        state0 = model.init_state(batch_size=B)
        _, state1 = model.run(model.params, xs, state0)
        _, state2 = model.step(model.params, state1, xs[0])
        float_dtype = np.float64 if x64_mode else np.float32
        assert model.dtype == float_dtype
        for leaf in jax.tree_util.tree_leaves(state0):
            assert leaf.shape[0] == B
            if jnp.issubdtype(leaf.dtype, jnp.floating):
                assert leaf.dtype == float_dtype
        assert _signature(state1) == _signature(state0)
        assert _signature(state2) == _signature(state0)
        for leaf in jax.tree_util.tree_leaves(model.params):
            assert leaf.dtype == float_dtype


@pytest.mark.parametrize("case_id", CASES)
def test_step_loop_equals_run(case_id, x64):
    case, model = compiled(case_id)
    xs = inputs(case)
    ys_run, state_run = model.run(model.params, xs)
    state = model.init_state(batch_size=B)
    ys = []
    for t in range(T):
        y, state = model.step(model.params, state, xs[t])
        ys.append(np.asarray(y))
    np.testing.assert_allclose(np.stack(ys), np.asarray(ys_run), rtol=1e-13, atol=1e-13)
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(state_run)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-13)


def _loss(model, case, xs):
    readout = rng_for("readout").normal(size=np.shape(model(xs)))

    def loss(params, x):
        if case.record:
            ys, _, rec = model.run(params, x, record=list(case.record))
            extra = sum(jnp.sum(jnp.sin(r)) for r in rec.values())
        else:
            ys, _ = model.run(params, x)
            extra = 0.0
        return jnp.sum(ys * readout) + extra

    return loss


@pytest.mark.parametrize("case_id", CASES)
def test_gradients_finite(case_id):
    case, model = compiled(case_id)
    xs = jnp.asarray(inputs(case), jnp.float32)
    loss = _loss(model, case, xs)
    g_params, g_xs = jax.grad(loss, argnums=(0, 1))(model.params, xs)
    assert jax.tree_util.tree_structure(g_params) == jax.tree_util.tree_structure(model.params)
    for leaf in jax.tree_util.tree_leaves(g_params) + [g_xs]:
        assert np.all(np.isfinite(np.asarray(leaf)))
    if case.has_params:
        assert any(np.any(np.asarray(leaf) != 0) for leaf in jax.tree_util.tree_leaves(g_params))


SMOOTH = [c for c in CASES if build_case(c).smooth]


@pytest.mark.parametrize("case_id", SMOOTH)
def test_gradients_match_finite_differences(case_id, x64):
    """Directional derivative along a random direction vs a central difference."""
    case, model = compiled(case_id)
    xs = jnp.asarray(inputs(case))
    loss = _loss(model, case, xs)
    rng = rng_for("direction" + case_id)
    params = model.params
    d_params = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(size=a.shape)), params)
    d_xs = jnp.asarray(rng.normal(size=xs.shape))
    g_params, g_xs = jax.grad(loss, argnums=(0, 1))(params, xs)
    # relative step on parameters, so time constants stay positive
    eps = 1e-6

    def shifted(sign):
        p = jax.tree_util.tree_map(lambda a, d: a + sign * eps * d * jnp.maximum(jnp.abs(a), 1e-3),
                                   params, d_params)
        return float(loss(p, xs + sign * eps * d_xs))

    scaled = jax.tree_util.tree_map(lambda d, a: d * jnp.maximum(jnp.abs(a), 1e-3), d_params, params)
    analytic = sum(float(jnp.vdot(g, d)) for g, d in zip(jax.tree_util.tree_leaves(g_params),
                                                         jax.tree_util.tree_leaves(scaled)))
    analytic += float(jnp.vdot(g_xs, d_xs))
    numeric = (shifted(+1) - shifted(-1)) / (2 * eps)
    assert numeric == pytest.approx(analytic, rel=1e-5, abs=1e-7)


def _with_params(g, params):
    """A deep copy of ``g`` whose nodes carry ``params`` (node name -> NamedTuple)."""
    import copy

    g = copy.deepcopy(g)
    for name, values in params.items():
        node = g
        for part in name.split("."):  # the test graphs' names have no dots of their own
            node = node.nodes[part]
        for field, value in values._asdict().items():
            setattr(node, field, np.asarray(value))
    return g


@pytest.mark.parametrize("case_id", [c for c in CASES if build_case(c).has_params])
def test_run_uses_the_params_it_is_given(case_id, x64):
    """``run(params, ...)`` simulates the given parameters, not the compiled-in ones."""
    case, model = compiled(case_id)
    rng = rng_for("perturb" + case_id)
    params = jax.tree_util.tree_map(
        lambda a: a * jnp.asarray(rng.uniform(0.8, 1.25, a.shape)), model.params)
    xs = inputs(case)
    ys = np.asarray(model.run(params, xs)[0])
    ref, _ = oracle.run_graph(_with_params(case.graph, jax.device_get(params)), xs, case.dt)
    np.testing.assert_allclose(ys, ref, rtol=1e-10, atol=1e-12)
    assert not np.allclose(ys, np.asarray(model(xs)))
