"""Every NIR 1.0.8 primitive, compiled in a small graph, against a float64 NumPy oracle.

Each primitive sits in ``input -> node -> output`` and is compiled with ``nirjax.compile``;
the oracle (``tests/oracle.py``) is a loop over time written from the NIR equations and the
discrete updates nirjax documents. Neurons are checked under every integrator, reset mode,
threshold test, CubaLIF current order and initial state, with random non-trivial parameters
and inputs that make them spike. The main runs are float64 (x64) with tight tolerances; a
float32 run checks the default dtype with looser ones.
"""

from __future__ import annotations

import itertools

import hypothesis.strategies as st
import jax
import nir
import numpy as np
import pytest
from hypothesis import given, settings

import nirjax
import oracle
from builders import chain, conv_node, graph, io_nodes, neuron, neuron_input, rng_for

DT = 1e-3
T, B = 40, 3


# ----------------------------------------------------------------------------- neurons


def _semantics_grid():
    """(kind, semantics) pairs: every combination that changes the discrete update."""
    grid = []
    for kind in oracle.NEURONS:
        spiking = kind in oracle.SPIKING
        cuba = kind.startswith("Cuba")
        for integrator, reset, test, init in itertools.product(
                ("euler", "exact"),
                ("v_reset", "subtract", "none") if spiking else ("v_reset",),
                (">", ">=") if spiking else (">",),
                ("rest", "zero")):
            currents = ("old", "new") if cuba and integrator == "euler" else ("old",)
            for current in currents:
                grid.append((kind, dict(integrator=integrator, reset=reset, threshold_test=test,
                                        cuba_current=current, initial_v=init)))
    return grid


GRID = _semantics_grid()


def _grid_id(item):
    kind, sem = item
    return "-".join([kind, sem["integrator"], sem["reset"], sem["threshold_test"],
                     sem["cuba_current"], sem["initial_v"]])


def _neuron_problem(kind, sem, min_margin, shape=(5,)):
    """A neuron, inputs ``[T, B, *shape]`` and the oracle's per-sample results.

    Draws new random parameters until the oracle's trajectory is a meaningful test: spiking
    neurons must spike in some steps but not all, and never come closer to the threshold
    than ``min_margin`` (so rounding in float32 cannot flip a spike).
    """
    for attempt in range(50):
        rng = rng_for(f"{kind}:{shape}:{attempt}")
        node = neuron(kind, rng, shape)
        xs = neuron_input(rng, T, B, shape)
        results = [oracle.simulate_neuron(node, xs[:, b], DT, sem) for b in range(B)]
        if kind in oracle.SPIKING:
            spikes = sum(r[3].spikes for r in results)
            if not (0 < spikes < 0.8 * xs.size):
                continue
            if min(r[3].margin for r in results) < min_margin:
                continue
        ys = np.stack([r[0] for r in results], axis=1)
        vs = np.stack([r[1] for r in results], axis=1)
        isyn = np.stack([r[2] for r in results], axis=1)
        return node, xs, ys, vs, isyn
    raise AssertionError("no usable random problem found; the oracle or generator is off")


def _run_neuron(node, xs, sem, shape=(5,)):
    kind = type(node).__name__
    model = nirjax.compile(chain(shape, shape, ("node", node)), dt=DT, semantics=sem)
    fields = ["v"] + (["i_syn"] if kind.startswith("Cuba") else [])
    ys, state, rec = model.run(model.params, xs, record=["node"] + [("node", f) for f in fields])
    return model, np.asarray(ys), {f: np.asarray(rec[("node", f)]) for f in fields}, \
        np.asarray(rec["node"]), state


@pytest.mark.parametrize("kind,sem", GRID, ids=[_grid_id(g) for g in GRID])
def test_neuron_matches_oracle_float64(kind, sem, x64):
    node, xs, ys_ref, v_ref, i_ref = _neuron_problem(kind, sem, min_margin=1e-9)
    model, ys, rec, rec_out, state = _run_neuron(node, xs, sem)
    assert model.dtype == np.float64 and ys.dtype == np.float64
    if kind in oracle.SPIKING:
        np.testing.assert_array_equal(ys, ys_ref)
        assert set(np.unique(ys)) <= {0.0, 1.0}
    else:
        np.testing.assert_allclose(ys, ys_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(rec_out, ys)
    # the recorded membrane is the state after the reset
    np.testing.assert_allclose(rec["v"], v_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(state.nodes["node"].v), v_ref[-1], rtol=1e-10,
                               atol=1e-12)
    if kind.startswith("Cuba"):
        np.testing.assert_allclose(rec["i_syn"], i_ref, rtol=1e-10, atol=1e-12)


FLOAT32_GRID = [(k, dict(integrator=i)) for k in oracle.NEURONS for i in ("euler", "exact")] + [
    ("LIF", dict(reset="subtract", threshold_test=">=")),
    ("CubaLIF", dict(reset="subtract", cuba_current="new")),
    ("CubaLIF", dict(reset="none", initial_v="zero")),
]


@pytest.mark.parametrize("kind,sem", FLOAT32_GRID,
                         ids=[f"{k}-{'-'.join(s.values())}" for k, s in FLOAT32_GRID])
def test_neuron_matches_oracle_float32(kind, sem):
    node, xs, ys_ref, v_ref, i_ref = _neuron_problem(kind, oracle.full_sem(sem), min_margin=1e-3)
    model, ys, rec, _, state = _run_neuron(node, xs.astype(np.float32), sem)
    assert model.dtype == np.float32 and ys.dtype == np.float32
    assert all(leaf.dtype == np.float32 for leaf in jax.tree_util.tree_leaves(state))
    if kind in oracle.SPIKING:
        np.testing.assert_array_equal(ys, ys_ref)
    else:
        np.testing.assert_allclose(ys, ys_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rec["v"], v_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF", "LI", "CubaLI", "IF", "I"])
@pytest.mark.parametrize("integrator", ["euler", "exact"])
def test_neuron_multidimensional_shape(kind, integrator, x64):
    """Neuron parameters of shape (2, 3): elementwise, no flattening assumptions."""
    sem = oracle.full_sem(dict(integrator=integrator))
    node, xs, ys_ref, v_ref, _ = _neuron_problem(kind, sem, 1e-9, shape=(2, 3))
    _, ys, rec, _, _ = _run_neuron(node, xs, sem, shape=(2, 3))
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rec["v"], v_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("relative_gap", [0.0, 1e-9, -5e-7, 5e-7, 1e-6, -2e-6, 1e-5, 1e-2])
def test_cuba_exact_equal_or_close_time_constants(relative_gap, x64):
    """tau_syn == tau_mem (and nearly so) is the degenerate case of the exact CubaLI
    solution, where its closed form divides by tau_syn - tau_mem."""
    rng = rng_for("cuba-equal-taus")
    tau = rng.uniform(2e-3, 6e-3, (4,))
    node = neuron("CubaLI", rng, (4,), tau_syn=tau * (1 + relative_gap), tau_mem=tau.copy())
    xs = neuron_input(rng, T, 2, (4,))
    model = nirjax.compile(chain((4,), (4,), ("node", node)), dt=DT, semantics="exact")
    ys = np.asarray(model(xs))
    ref = np.stack([oracle.simulate_neuron(node, xs[:, b], DT, dict(integrator="exact"))[0]
                    for b in range(2)], axis=1)
    np.testing.assert_allclose(ys, ref, rtol=1e-9, atol=1e-12)
    if abs(relative_gap) < 1e-8:  # the branch that avoids dividing by the gap
        grads = jax.grad(lambda p: model.run(p, xs)[0].sum())(model.params)
        assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))


def test_exact_integrator_is_exact_for_constant_input(x64):
    """Under 'exact', n steps of dt equal the closed-form LI solution at t = n*dt."""
    tau, r, v_leak, x = 4e-3, 1.5, 0.2, 0.7
    node = nir.LI(tau=np.array([tau]), r=np.array([r]), v_leak=np.array([v_leak]))
    model = nirjax.compile(chain((1,), (1,), ("node", node)), dt=DT, semantics="exact")
    ys = np.asarray(model(np.full((25, 1, 1), x)))[:, 0, 0]
    t = DT * np.arange(1, 26)
    closed = v_leak + r * x * (1 - np.exp(-t / tau))  # v(0) = v_leak
    np.testing.assert_allclose(ys, closed, rtol=1e-12, atol=1e-14)


def test_neuron_parameters_are_not_ignored(x64):
    """Changing any one neuron parameter changes the simulation (nothing silently dropped)."""
    rng = rng_for("not-ignored")
    base = neuron("CubaLIF", rng, (5,))
    xs = neuron_input(rng, T, 2)
    for sem in (dict(), dict(integrator="exact")):
        ref = oracle.simulate_neuron(base, xs[:, 0], DT, sem)
        for field in ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"):
            changed = neuron("CubaLIF", rng_for("not-ignored"), (5,),
                             **{field: getattr(base, field) * 1.3 + 0.05})
            model = nirjax.compile(chain((5,), (5,), ("node", changed)), dt=DT, semantics=sem)
            _, _, rec = model.run(model.params, xs, record=[("node", "v")])
            v = np.asarray(rec[("node", "v")])[:, 0]
            ref_changed = oracle.simulate_neuron(changed, xs[:, 0], DT, sem)[1]
            np.testing.assert_allclose(v, ref_changed, rtol=1e-10, atol=1e-12)
            assert not np.allclose(v, ref[1]), field


# threshold equality: dyadic numbers make ``v == v_threshold`` exact in float32 and float64


def _equality_node(kind):
    one = np.ones(1)
    if kind == "IF":  # v: 0.5, 1.0 (== threshold), 1.5, ...
        return nir.IF(r=one, v_threshold=one, v_reset=0 * one), 0.5, 1.0
    if kind == "LIF":  # v: 1.0 (== threshold) at the first step
        return nir.LIF(tau=one, r=one, v_leak=0 * one, v_threshold=one, v_reset=0 * one), 0.5, 2.0
    # CubaLIF, Euler 'old': i = 1, 1.5, ...; v = 0, 0.5 (== threshold), ...
    return nir.CubaLIF(tau_syn=one, tau_mem=one, r=one, v_leak=0 * one, v_threshold=0.5 * one,
                       v_reset=0 * one, w_in=one), 0.5, 2.0


@pytest.mark.parametrize("kind", ["IF", "LIF", "CubaLIF"])
def test_threshold_test_on_equality(kind):
    node, dt, x = _equality_node(kind)
    xs = np.full((8, 2, 1), x, np.float32)
    outputs = {}
    for test in (">", ">="):
        model = nirjax.compile(chain((1,), (1,), ("node", node)), dt=dt,
                               semantics=dict(threshold_test=test))
        ys = np.asarray(model(xs))
        ref = oracle.simulate_neuron(node, xs[:, 0], dt, dict(threshold_test=test))[0]
        np.testing.assert_array_equal(ys[:, 0], ref)
        np.testing.assert_array_equal(ys[:, 1], ref)
        outputs[test] = ys[:, 0, 0]
    assert not np.array_equal(outputs[">"], outputs[">="])
    if kind == "IF":  # by hand: v = 0.5, 1.0, 1.5 -> spike at the third step for '>'
        np.testing.assert_array_equal(outputs[">"], [0, 0, 1, 0, 0, 1, 0, 0])
        np.testing.assert_array_equal(outputs[">="], [0, 1, 0, 1, 0, 1, 0, 1])


# ----------------------------------------------------------------------------- stateless


def _run_stateless(node, in_shape, xs, sem=None, **compile_kw):
    """Compile ``input -> node -> output`` (output shape from the oracle) and run it."""
    probe = oracle.make_op(node, DT, sem).step(xs[0, 0])
    g = chain(in_shape, probe.shape, ("node", node))
    model = nirjax.compile(g, dt=DT, semantics=sem, **compile_kw)
    ys = np.asarray(model(xs))
    ref = np.stack([np.stack([oracle.make_op(node, DT, sem).step(xs[t, b])
                              for b in range(xs.shape[1])]) for t in range(xs.shape[0])])
    return ys, ref


AFFINE_CASES = {
    "affine-2d": lambda r: (nir.Affine(weight=r.normal(size=(4, 6)), bias=r.normal(size=4)), (6,)),
    "affine-batched-bias-out": lambda r: (
        nir.Affine(weight=r.normal(size=(3, 4, 5)), bias=r.normal(size=(4,))), (3, 5)),
    "affine-batched-bias-full": lambda r: (
        nir.Affine(weight=r.normal(size=(2, 3, 4, 5)), bias=r.normal(size=(2, 3, 4))), (2, 3, 5)),
    "linear-2d": lambda r: (nir.Linear(weight=r.normal(size=(7, 3))), (3,)),
    "linear-batched": lambda r: (nir.Linear(weight=r.normal(size=(3, 2, 5))), (3, 5)),
    "scale": lambda r: (nir.Scale(scale=r.normal(size=(2, 3))), (2, 3)),
}


@pytest.mark.parametrize("case", list(AFFINE_CASES))
def test_linear_maps(case, x64):
    rng = rng_for(case)
    node, in_shape = AFFINE_CASES[case](rng)
    xs = rng.normal(size=(4, 3) + in_shape)
    ys, ref = _run_stateless(node, in_shape, xs)
    np.testing.assert_allclose(ys, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", list(AFFINE_CASES))
def test_linear_maps_float32(case):
    rng = rng_for(case)
    node, in_shape = AFFINE_CASES[case](rng)
    xs = rng.normal(size=(4, 3) + in_shape).astype(np.float32)
    ys, ref = _run_stateless(node, in_shape, xs)
    assert ys.dtype == np.float32
    np.testing.assert_allclose(ys, ref, rtol=1e-5, atol=1e-5)


# (nd, c_in, c_out, kernel, stride, padding, dilation, groups, spatial, give input_shape)
CONV_CASES = {
    "1d-plain": (1, 2, 4, 3, 1, 0, 1, 1, (10,), True),
    "1d-stride2-pad1": (1, 3, 5, 3, 2, 1, 1, 1, (11,), False),
    "1d-same-even-kernel": (1, 2, 3, 4, 1, "same", 1, 1, (9,), True),
    "1d-same-dilated-grouped": (1, 4, 2, 4, 1, "same", 2, 2, (12,), False),
    "1d-valid-stride3": (1, 2, 2, 5, 3, "valid", 1, 1, (17,), True),
    "1d-depthwise-dilated": (1, 4, 8, 3, 2, 2, 3, 4, (15,), False),
    "2d-nonsquare-grouped": (2, 2, 4, (3, 2), (2, 1), (1, 0), (1, 2), 2, (7, 6), True),
    "2d-same-even": (2, 3, 2, (4, 3), 1, "same", (1, 2), 1, (6, 7), False),
    "2d-valid-strided": (2, 2, 3, (2, 5), (3, 2), "valid", 1, 1, (8, 11), True),
    "2d-depthwise": (2, 3, 6, (3, 3), 1, 1, 1, 3, (5, 5), False),
    "2d-pad2-tall-kernel": (2, 2, 2, (5, 1), 1, 2, 1, 1, (4, 3), True),
    "2d-1x1": (2, 4, 3, (1, 1), 1, 0, 1, 1, (3, 4), False),
    "2d-cnn-like": (2, 2, 16, (5, 5), 2, 1, 1, 1, (34, 34), True),
}


def _conv_from_case(case, rng):
    nd, c_in, c_out, k, s, p, d, g, spatial, give = CONV_CASES[case]
    node = conv_node(rng, nd, c_in, c_out, k, s, p, d, g,
                     input_shape=np.array(spatial) if give else None)
    return node, (c_in,) + spatial


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv(case, x64):
    rng = rng_for(case)
    node, in_shape = _conv_from_case(case, rng)
    xs = rng.normal(size=(2, 2) + in_shape)
    ys, ref = _run_stateless(node, in_shape, xs)
    assert ys.shape == ref.shape
    np.testing.assert_allclose(ys, ref, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("case", ["1d-same-even-kernel", "2d-nonsquare-grouped", "2d-cnn-like"])
def test_conv_float32(case):
    rng = rng_for(case)
    node, in_shape = _conv_from_case(case, rng)
    xs = rng.normal(size=(2, 2) + in_shape).astype(np.float32)
    ys, ref = _run_stateless(node, in_shape, xs)
    assert ys.dtype == np.float32
    np.testing.assert_allclose(ys, ref, rtol=1e-4, atol=1e-4)


@st.composite
def conv_geometries(draw):
    nd = draw(st.sampled_from([1, 2]))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = draw(st.sampled_from(["same", "valid", 0, 1, 2]))
    stride = (1,) * nd if padding == "same" else tuple(draw(st.integers(1, 3)) for _ in range(nd))
    pad = padding if isinstance(padding, int) else 0
    spatial = tuple(max(1, d * (k - 1) + 1 - 2 * pad) + draw(st.integers(0, 5))
                    for k, d in zip(kernel, dilation))
    return nd, c_in, c_out, kernel, stride, padding, dilation, groups, spatial


@settings(max_examples=20, deadline=None)
@given(geometry=conv_geometries(), seed=st.integers(0, 2**16))
def test_conv_random_geometry(geometry, seed):
    nd, c_in, c_out, kernel, stride, padding, dilation, groups, spatial = geometry
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        node = conv_node(rng, nd, c_in, c_out, kernel if nd == 2 else kernel[0],
                         stride if nd == 2 else stride[0],
                         padding, dilation if nd == 2 else dilation[0], groups)
        xs = rng.normal(size=(2, 2, c_in) + spatial)
        ys, ref = _run_stateless(node, (c_in,) + spatial, xs)
    np.testing.assert_allclose(ys, ref, rtol=1e-10, atol=1e-10)


POOL_CASES = {
    "2x2-s2": ((2, 2), (2, 2), (0, 0), (3, 8, 8)),
    "3x2-s1x2-p1": ((3, 2), (1, 2), (1, 1), (2, 5, 6)),
    "2x3-s2x1-p1x0": ((2, 3), (2, 1), (1, 0), (2, 5, 7)),
    "1x1": ((1, 1), (1, 1), (0, 0), (2, 3, 3)),
    "3x3-s3-ragged": ((3, 3), (3, 3), (0, 0), (1, 10, 7)),
}


@pytest.mark.parametrize("kind", ["SumPool2d", "AvgPool2d"])
@pytest.mark.parametrize("case", list(POOL_CASES))
def test_pool(kind, case, x64):
    k, s, p, in_shape = POOL_CASES[case]
    node = getattr(nir, kind)(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p))
    rng = rng_for(kind + case)
    xs = rng.normal(size=(3, 2) + in_shape)
    ys, ref = _run_stateless(node, in_shape, xs)
    np.testing.assert_allclose(ys, ref, rtol=1e-12, atol=1e-12)


def test_avgpool_is_scaled_sumpool_float32():
    rng = rng_for("avgpool32")
    xs = rng.normal(size=(3, 2, 2, 6, 6)).astype(np.float32)
    node = nir.AvgPool2d(kernel_size=np.array([2, 3]), stride=np.array([2, 3]),
                         padding=np.array([0, 0]))
    ys, ref = _run_stateless(node, (2, 6, 6), xs)
    assert ys.dtype == np.float32
    np.testing.assert_allclose(ys, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("start,end,expected", [
    (0, -1, (24,)), (1, -1, (2, 12)), (0, 1, (6, 4)), (1, 1, (2, 3, 4)),
    (-2, -1, (2, 12)), (0, 0, (2, 3, 4)), (2, 2, (2, 3, 4)), (-3, -2, (6, 4)),
])
@pytest.mark.parametrize("declared", [True, False])
def test_flatten_dims_count_on_unbatched_shape(start, end, expected, declared, x64):
    node = nir.Flatten(input_type={"input": np.array([2, 3, 4]) if declared else None},
                       start_dim=start, end_dim=end)
    xs = rng_for(f"flatten{start}{end}").normal(size=(3, 2, 2, 3, 4))
    model = nirjax.compile(chain((2, 3, 4), expected, ("node", node)), dt=DT)
    ys = np.asarray(model(xs))
    assert ys.shape == (3, 2) + expected
    # row-major reshape of each sample, batch and time untouched
    np.testing.assert_array_equal(ys, xs.reshape((3, 2) + expected))


@pytest.mark.parametrize("test", [">", ">="])
def test_threshold(test, x64):
    rng = rng_for("threshold" + test)
    theta = rng.uniform(-0.5, 0.5, (6,))
    theta[:3] = [0.25, -0.5, 0.0]
    xs = rng.uniform(-1, 1, (10, 2, 6))
    xs[::2, :, :3] = theta[:3]  # exact equality in every other step
    node = nir.Threshold(threshold=theta)
    ys, ref = _run_stateless(node, (6,), xs, sem=dict(threshold_test=test))
    np.testing.assert_array_equal(ys, ref)
    assert ys[0, 0, :3].tolist() == ([0, 0, 0] if test == ">" else [1, 1, 1])


def test_input_output_identity_multidim(x64):
    g = graph({**io_nodes((2, 3, 4), (2, 3, 4))}, [("input", "output")])
    xs = rng_for("io").normal(size=(5, 3, 2, 3, 4))
    np.testing.assert_array_equal(np.asarray(nirjax.compile(g, dt=DT)(xs)), xs)


# ----------------------------------------------------------------------------- Delay


def _shifted(x, n):
    """``y[t] = x[t - n]`` along axis 0, zeros before the start."""
    y = np.zeros_like(x)
    y[n:] = x[:len(x) - n] if n else x
    return y


def test_delay_per_element_rounding_half_up(x64):
    """Delays in time units become ``floor(delay/dt + 1/2)`` steps, element by element."""
    dt = 0.25
    delays = np.array([0.0, 0.25, 0.75, 0.625, 0.6, 0.65, 1.375])
    steps = [0, 1, 3, 3, 2, 3, 6]  # 2.5 steps rounds up to 3, 5.5 to 6
    xs = rng_for("delay").normal(size=(12, 2, 7))
    node = nir.Delay(delay=delays)
    with pytest.warns(nirjax.NirjaxWarning, match="rounded"):
        model = nirjax.compile(chain((7,), (7,), ("node", node)), dt=dt)
    ys = np.asarray(model(xs))
    for e, n in enumerate(steps):
        np.testing.assert_array_equal(ys[:, :, e], _shifted(xs[:, :, e], n), err_msg=f"element {e}")
    # the oracle agrees with the hand-derived shifts
    d = oracle.Delay(node, dt)
    ref = np.stack([d.step(x) for x in xs[:, 0]])
    np.testing.assert_array_equal(ys[:, 0], ref)


def test_delay_float_noise_rounds_without_warning(x64):
    """3e-4 / 1e-4 is 2.9999999999999996 in floating point: 3 steps, and no warning."""
    node = nir.Delay(delay=np.array([3e-4, 1e-4, 0.0]))
    xs = rng_for("delay-noise").normal(size=(9, 2, 3))
    ys = np.asarray(nirjax.compile(chain((3,), (3,), ("node", node)), dt=1e-4)(xs))
    for e, n in enumerate([3, 1, 0]):
        np.testing.assert_array_equal(ys[:, :, e], _shifted(xs[:, :, e], n))


def test_delay_all_positive_in_chain(x64):
    """A delay with no zero element (no feedthrough) inside a chain with neurons."""
    rng = rng_for("delay-chain")
    lif = neuron("LIF", rng, (4,))
    g = chain((4,), (4,), ("aff", nir.Affine(weight=rng.normal(size=(4, 4)) + 1.0,
                                             bias=rng.uniform(0, 1, 4))),
              ("delay", nir.Delay(delay=np.array([1e-3, 2e-3, 4e-3, 1e-3]))), ("lif", lif))
    xs = rng.uniform(0, 1.5, (30, 2, 4))
    model = nirjax.compile(g, dt=DT)
    ys, _, rec = model.run(model.params, xs, record=[("lif", "v")])
    ref, ref_rec = oracle.run_graph(g, xs, DT, record=[("lif", "v")])
    assert ref.sum() > 0
    np.testing.assert_array_equal(np.asarray(ys), ref)
    np.testing.assert_allclose(np.asarray(rec[("lif", "v")]), ref_rec[("lif", "v")],
                               rtol=1e-10, atol=1e-12)


def test_delay_scalar_parameter_takes_input_shape(x64):
    node = nir.Delay(delay=np.array(2e-3))
    xs = rng_for("delay-scalar").normal(size=(7, 2, 3))
    ys = np.asarray(nirjax.compile(chain((3,), (3,), ("node", node)), dt=DT)(xs))
    np.testing.assert_array_equal(ys, _shifted(xs, 2))


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF", "LI"])
def test_scalar_neuron_parameters_take_the_incoming_shape(kind, x64):
    """0-d parameters (which break nir's own type inference) broadcast over the input."""
    rng = rng_for("scalar-" + kind)
    full = neuron(kind, rng, (1,))
    scalar = type(full)(**{f: np.asarray(getattr(full, f)).reshape(()) for f in
                           ("tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset",
                            "w_in") if hasattr(full, f)})
    g = chain((4,), (4,), ("w", nir.Affine(weight=rng.normal(size=(4, 4)) + 1, bias=np.zeros(4))),
              ("node", scalar))
    xs = rng.uniform(0, 1.5, (T, 2, 4))
    model = nirjax.compile(g, dt=DT)
    ys, _, rec = model.run(model.params, xs, record=[("node", "v")])
    ref, ref_rec = oracle.run_graph(g, xs, DT, record=[("node", "v")])
    np.testing.assert_allclose(np.asarray(ys), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(rec[("node", "v")]), ref_rec[("node", "v")],
                               rtol=1e-10, atol=1e-12)
    assert ref_rec[("node", "v")].shape == (T, 2, 4)


# surrogate derivatives dH/dx as the table in kernels/surrogate.py states them
SURROGATE_DERIVATIVES = {
    "fast_sigmoid": (10.0, lambda x, s: 1.0 / (1.0 + s * np.abs(x)) ** 2),
    "sigmoid": (5.0, lambda x, s: s * np.exp(-s * x) / (1.0 + np.exp(-s * x)) ** 2),
    "arctan": (2.0, lambda x, s: (s / 2.0) / (1.0 + (np.pi / 2.0 * s * x) ** 2)),
    "triangle": (1.0, lambda x, s: s * np.maximum(0.0, 1.0 - s * np.abs(x))),
    "straight_through": (1.0, lambda x, s: np.full_like(x, s)),
}


@pytest.mark.parametrize("kind", list(SURROGATE_DERIVATIVES))
def test_threshold_surrogate_gradient(kind, x64):
    """d/dtheta of sum(H(x - theta)) is minus the surrogate derivative summed over steps."""
    scale, derivative = SURROGATE_DERIVATIVES[kind]
    rng = rng_for("surrogate" + kind)
    theta = rng.uniform(-0.3, 0.3, (4,))
    xs = rng.uniform(-1, 1, (6, 2, 4))
    model = nirjax.compile(chain((4,), (4,), ("node", nir.Threshold(threshold=theta))), dt=DT,
                           surrogate=kind)
    grad = jax.grad(lambda p: model.run(p, xs)[0].sum())(model.params)
    expected = -derivative(xs - theta, scale).sum(axis=(0, 1))
    np.testing.assert_allclose(np.asarray(grad["node"].threshold), expected, rtol=1e-10)
    # the forward pass is the exact step function whatever the surrogate
    np.testing.assert_array_equal(np.asarray(model(xs)), (xs > theta).astype(float))


def test_delay_two_dimensional(x64):
    delays = np.array([[0.0, 1e-3, 4e-3], [2e-3, 0.0, 3e-3]])
    node = nir.Delay(delay=delays)
    xs = rng_for("delay-2d").normal(size=(10, 2, 2, 3))
    ys = np.asarray(nirjax.compile(chain((2, 3), (2, 3), ("node", node)), dt=DT)(xs))
    for idx in np.ndindex(2, 3):
        n = int(round(delays[idx] / DT))
        np.testing.assert_array_equal(ys[(slice(None), slice(None)) + idx],
                                      _shifted(xs[(slice(None), slice(None)) + idx], n))
