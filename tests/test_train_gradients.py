"""Gradients with respect to every parameter, checked against finite differences (float64).

Smooth paths (Affine, Linear, Scale, Conv1d, Conv2d, I, LI, CubaLI, recurrent edges) are
differentiable in the ordinary sense, so ``jax.grad`` of a smooth loss of the outputs must
equal a central finite difference of the simulation itself (the oracle here: two forward
runs, no autodiff). Also: gradients are identical in every ``checkpoint`` mode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax


def _dense_graph(rng):
    """Affine -> LI -> Linear -> Scale -> CubaLI, a recurrent Linear back into the LI, and an
    I node on a second output: every smooth dense primitive and a delayed edge."""
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([3])),
            "affine": nir.Affine(rng.normal(size=(5, 3)), rng.normal(size=5)),
            "li": nir.LI(tau=rng.uniform(2e-3, 5e-3, 5), r=rng.uniform(0.5, 2, 5),
                         v_leak=rng.normal(0, 0.1, 5)),
            "linear": nir.Linear(rng.normal(size=(4, 5))),
            "scale": nir.Scale(rng.uniform(0.5, 1.5, 4)),
            "cubali": nir.CubaLI(tau_syn=rng.uniform(1e-3, 3e-3, 4), tau_mem=rng.uniform(3e-3, 6e-3, 4),
                                 r=rng.uniform(0.5, 2, 4), v_leak=rng.normal(0, 0.1, 4),
                                 w_in=rng.uniform(0.5, 2, 4)),
            "rec": nir.Linear(0.3 * rng.normal(size=(5, 4))),
            "integ": nir.I(r=rng.uniform(50, 150, 4)),
            "out_v": nir.Output(output_type=np.array([4])),
            "out_i": nir.Output(output_type=np.array([4])),
        },
        edges=[("input", "affine"), ("affine", "li"), ("li", "linear"), ("linear", "scale"),
               ("scale", "cubali"), ("cubali", "rec"), ("rec", "li"), ("cubali", "out_v"),
               ("scale", "integ"), ("integ", "out_i")],
        type_check=False,
    )


def _conv_graph(rng):
    """Conv1d -> LI and Conv2d -> CubaLI branches, flattened into one Affine readout."""
    return nir.NIRGraph(
        nodes={
            "in1": nir.Input(input_type=np.array([2, 6])),
            "conv1": nir.Conv1d(input_shape=6, weight=rng.normal(size=(3, 2, 3)), stride=1,
                                padding=1, dilation=1, groups=1, bias=rng.normal(size=3)),
            "li1": nir.LI(tau=np.full((3, 6), 3e-3), r=np.ones((3, 6)), v_leak=np.zeros((3, 6))),
            "flat1": nir.Flatten(input_type={"input": np.array([3, 6])}, start_dim=0, end_dim=-1),
            "in2": nir.Input(input_type=np.array([1, 5, 5])),
            "conv2": nir.Conv2d(input_shape=(5, 5), weight=rng.normal(size=(2, 1, 3, 2)),
                                stride=(2, 1), padding=(1, 0), dilation=(1, 1), groups=1,
                                bias=rng.normal(size=2)),
            "cuba2": nir.CubaLI(tau_syn=np.full((2, 3, 4), 2e-3), tau_mem=np.full((2, 3, 4), 4e-3),
                                r=np.full((2, 3, 4), 1.5), v_leak=np.zeros((2, 3, 4)),
                                w_in=np.full((2, 3, 4), 0.7)),
            "flat2": nir.Flatten(input_type={"input": np.array([2, 3, 4])}, start_dim=0, end_dim=-1),
            "read1": nir.Affine(rng.normal(size=(4, 18)), rng.normal(size=4)),
            "read2": nir.Affine(rng.normal(size=(4, 24)), rng.normal(size=4)),
            "li_out": nir.LI(tau=np.full(4, 5e-3), r=np.ones(4), v_leak=np.zeros(4)),
            "output": nir.Output(output_type=np.array([4])),
        },
        edges=[("in1", "conv1"), ("conv1", "li1"), ("li1", "flat1"), ("flat1", "read1"),
               ("in2", "conv2"), ("conv2", "cuba2"), ("cuba2", "flat2"), ("flat2", "read2"),
               ("read1", "li_out"), ("read2", "li_out"), ("li_out", "output")],
        type_check=False,
    )


def _smooth_loss(model, xs, seed=0):
    out_shapes = model.output_shapes
    rng = np.random.default_rng(seed)
    steps, batch = jax.tree_util.tree_leaves(xs)[0].shape[:2]
    coeff = {n: jnp.asarray(rng.normal(size=(steps, batch) + s)) for n, s in out_shapes.items()}

    def loss(params):
        ys = model.run(params, xs)[0]
        ys = ys if isinstance(ys, dict) else {model.output_names[0]: ys}
        return sum(jnp.mean(coeff[n] * jnp.tanh(ys[n])) for n in ys)

    return loss


def _check_against_finite_differences(model, xs, h=1e-6, rtol=2e-6):
    loss = _smooth_loss(model, xs)
    params = model.params
    grads = jax.grad(loss)(params)
    loss_jit = jax.jit(loss)
    rng = np.random.default_rng(1)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    grad_leaves = jax.tree_util.tree_leaves(grads)
    checked = []
    for i, ((path, p), g) in enumerate(zip(leaves, grad_leaves)):
        p = np.asarray(p)
        # relative steps (tau ~ 1e-3 s); unit steps for fields that are all zero (v_leak)
        scale = np.maximum(np.abs(p), np.abs(p).mean()) if np.abs(p).max() > 0 else np.ones_like(p)
        for _ in range(2):
            d = rng.normal(size=p.shape) * scale
            shift = lambda s: jax.tree_util.tree_unflatten(
                treedef, [np.asarray(q) + (s * d if j == i else 0) for j, (_, q) in enumerate(leaves)])
            fd = (float(loss_jit(shift(h))) - float(loss_jit(shift(-h)))) / (2 * h)
            ad = float(np.sum(np.asarray(g) * d))
            name = jax.tree_util.keystr(path)
            assert abs(ad) > 1e-9, f"{name}: the directional derivative is ~0; the check is void"
            assert ad == pytest.approx(fd, rel=rtol, abs=1e-10), name
        checked.append(jax.tree_util.keystr(path))
    return checked


@pytest.mark.parametrize("semantics", [
    {"integrator": "euler", "cuba_current": "old"},
    {"integrator": "euler", "cuba_current": "new", "initial_v": "zero"},
    {"integrator": "exact"},
])
def test_dense_smooth_path_gradients_match_finite_differences(x64, semantics):
    rng = np.random.default_rng(0)
    model = nirjax.compile(_dense_graph(rng), dt=1e-3, semantics=semantics)
    assert model.program.delayed_edges  # the recurrent edge is exercised
    xs = jnp.asarray(rng.normal(size=(25, 2, 3)))
    checked = _check_against_finite_differences(model, xs)
    expected = {
        "affine": ("weight", "bias"), "li": ("tau", "r", "v_leak"), "linear": ("weight",),
        "scale": ("scale",), "cubali": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
        "rec": ("weight",), "integ": ("r",),
    }
    for node, fields in expected.items():
        for field in fields:
            assert any(node in c and field in c for c in checked), (node, field)


def test_conv_smooth_path_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(2)
    model = nirjax.compile(_conv_graph(rng), dt=1e-3, semantics="exact")
    xs = {"in1": jnp.asarray(rng.normal(size=(12, 2, 2, 6))),
          "in2": jnp.asarray(rng.normal(size=(12, 2, 1, 5, 5)))}
    checked = _check_against_finite_differences(model, xs)
    assert sum("conv1" in c for c in checked) == 2 and sum("conv2" in c for c in checked) == 2


def test_cuba_exact_gradient_is_finite_at_equal_time_constants(x64):
    """tau_syn == tau_mem takes the limit branch of the exact update; its gradient is finite."""
    graph = nir.NIRGraph.from_list(
        nir.CubaLI(tau_syn=np.full(2, 3e-3), tau_mem=np.full(2, 3e-3), r=np.ones(2),
                   v_leak=np.zeros(2), w_in=np.ones(2)))
    model = nirjax.compile(graph, dt=1e-3, semantics="exact")
    xs = jnp.ones((10, 1, 2))
    g = jax.grad(lambda p: model.run(p, xs)[0].sum())(model.params)
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree_util.tree_leaves(g))
    # the limit branch's value and gradient in tau_mem equal the nearby generic branch's
    near = dict(model.params)
    near["cubali"] = near["cubali"]._replace(tau_mem=near["cubali"].tau_mem * (1 + 1e-4))
    g_near = jax.grad(lambda p: model.run(p, xs)[0].sum())(near)
    np.testing.assert_allclose(np.asarray(g["cubali"].tau_syn) + np.asarray(g["cubali"].tau_mem),
                               np.asarray(g_near["cubali"].tau_syn) + np.asarray(g_near["cubali"].tau_mem),
                               rtol=1e-3)


# ----------------------------------------------------------------------------- checkpointing


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradients_identical_in_every_checkpoint_mode(dtype, braille):
    with jax.enable_x64(dtype == "float64"):
        graph = braille
        xs = (np.random.default_rng(0).random((40, 3, 12)) < 0.15).astype(dtype)
        results = {}
        for mode in (None, "step", 10, 7):  # 7 does not divide T = 40: a shorter last chunk
            model = nirjax.compile(graph, dt=1e-4, checkpoint=mode, dtype=dtype)

            def loss(p):
                ys, _, rec = model.run(p, xs, record=[("lif2", "v")])
                return jnp.sum(ys * jnp.arange(7)[None, None]) + jnp.sum(rec[("lif2", "v")] ** 2)

            value, grads = jax.value_and_grad(loss)(model.params)
            results[mode] = (float(value), grads)
        ref_value, ref = results[None]
        assert any(np.abs(np.asarray(a)).max() > 0 for a in jax.tree_util.tree_leaves(ref))
        for mode, (value, grads) in results.items():
            assert value == ref_value, mode
            # rematerialization changes XLA's fusion, hence the order of float additions:
            # equal to rounding, relative to each gradient array's magnitude
            tol = 1e-5 if dtype == "float32" else 1e-12
            for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(ref)):
                b = np.asarray(b)
                np.testing.assert_allclose(np.asarray(a), b, rtol=tol, atol=tol * np.abs(b).max(),
                                           err_msg=f"checkpoint={mode!r}")
