"""Surrogate gradients: hand-derived gradients of single neurons, forward invariance, overrides.

The oracle for every gradient here is a derivation written out in this file: the chain rule
through one or two steps of the discrete update that ``kernels/neurons.py`` documents, with
each surrogate's derivative taken from its published form (SuperSpike's fast sigmoid, the
logistic sigmoid, Fang et al.'s arctan, Esser et al.'s triangle, a straight-through
constant). Nothing is compared against numbers nirjax itself produced.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax
from nirjax import Semantics, Surrogate


# d H / d x as published; k is the surrogate's scale
def _fast_sigmoid(x, k):
    return 1.0 / (1.0 + k * abs(x)) ** 2


def _sigmoid(x, k):
    s = 1.0 / (1.0 + math.exp(-k * x))
    return k * s * (1.0 - s)


def _arctan(x, k):
    return (k / 2.0) / (1.0 + (math.pi / 2.0 * k * x) ** 2)


def _triangle(x, k):
    return k * max(0.0, 1.0 - k * abs(x))


def _straight_through(x, k):
    return k


PUBLISHED = {
    "fast_sigmoid": (_fast_sigmoid, 10.0),
    "sigmoid": (_sigmoid, 5.0),
    "arctan": (_arctan, 2.0),
    "triangle": (_triangle, 1.0),
    "straight_through": (_straight_through, 1.0),
}
KINDS = sorted(PUBLISHED)
PARAMS = ("tau", "r", "v_leak", "v_threshold", "v_reset")


def _lif_graph(tau, r, v_leak, v_threshold, v_reset):
    one = lambda v: np.array([v], np.float64)
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([1])),
               "lif": nir.LIF(tau=one(tau), r=one(r), v_leak=one(v_leak),
                              v_threshold=one(v_threshold), v_reset=one(v_reset)),
               "output": nir.Output(output_type=np.array([1]))},
        edges=[("input", "lif"), ("lif", "output")])


def _hand_lif(p, xs, dt, sg, integrator, reset, detach):
    """Spikes z1, z2 and d z_n / d param for two steps of one LIF neuron from rest.

    Each quantity is carried as (value, {param: derivative}).
    """
    tau, r, vl, th, vr = (p[k] for k in PARAMS)
    unit = lambda name: {k: float(k == name) for k in PARAMS}
    zero = {k: 0.0 for k in PARAMS}
    if integrator == "euler":
        a = dt / tau
        da = {**zero, "tau": -dt / tau ** 2}
    else:
        a = math.exp(-dt / tau)
        da = {**zero, "tau": a * dt / tau ** 2}

    def integrate(v, dv, x):
        if integrator == "euler":  # v + a*((vl - v) + r x)
            val = v + a * ((vl - v) + r * x)
            d = {k: dv[k] + da[k] * ((vl - v) + r * x) + a * (unit("v_leak")[k] - dv[k]
                                                               + x * unit("r")[k]) for k in PARAMS}
        else:  # u + (v - u) a,  u = vl + r x
            u = vl + r * x
            du = {k: unit("v_leak")[k] + x * unit("r")[k] for k in PARAMS}
            val = u + (v - u) * a
            d = {k: du[k] + (dv[k] - du[k]) * a + (v - u) * da[k] for k in PARAMS}
        return val, d

    def fire(v, dv):
        z = 1.0 if v - th > 0 else 0.0
        s = sg(v - th)
        dz = {k: s * (dv[k] - unit("v_threshold")[k]) for k in PARAMS}
        dzr = zero if detach else dz
        if reset == "v_reset":
            val = v * (1 - z) + vr * z
            d = {k: dv[k] * (1 - z) + (vr - v) * dzr[k] + z * unit("v_reset")[k] for k in PARAMS}
        elif reset == "subtract":
            val = v - th * z
            d = {k: dv[k] - unit("v_threshold")[k] * z - th * dzr[k] for k in PARAMS}
        else:
            val, d = v, dv
        return (z, dz), (val, d)

    v0, dv0 = vl, unit("v_leak")  # initial_v = 'rest'
    v1p, dv1p = integrate(v0, dv0, xs[0])
    (z1, dz1), (v1, dv1) = fire(v1p, dv1p)
    v2p, dv2p = integrate(v1, dv1, xs[1])
    (z2, dz2), _ = fire(v2p, dv2p)
    return (z1, dz1), (z2, dz2), (v1p - th, v2p - th)


P0 = {"tau": 5e-3, "r": 2.0, "v_leak": 0.1, "v_threshold": 0.5, "v_reset": -0.1}
DT = 1e-3


CASES = [  # (integrator, reset, detach_reset, inputs of the two steps)
    ("euler", "v_reset", False, (1.4, 1.5)),    # spike, reset, spike
    ("euler", "v_reset", False, (0.9, 0.6)),    # no spike, then a spike
    ("euler", "subtract", False, (1.4, 1.2)),
    ("euler", "none", False, (1.4, -0.5)),
    ("euler", "v_reset", True, (1.4, 1.5)),     # detach_reset
    ("exact", "v_reset", False, (1.9, 2.1)),
    ("exact", "subtract", False, (1.9, 0.4)),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale", [None, 0.7])
def test_lif_surrogate_gradient_matches_hand_derivation(x64, kind, scale):
    """One graph holds a LIF branch per case; per-node overrides give each its semantics."""
    sg_fn, default = PUBLISHED[kind]
    k = default if scale is None else scale
    nodes, edges = {}, []
    sem = Semantics(surrogate=Surrogate(kind, scale))
    for c, (integrator, reset, detach, _) in enumerate(CASES):
        single = _lif_graph(**P0).nodes
        nodes.update({f"in{c}": single["input"], f"lif{c}": single["lif"], f"out{c}": single["output"]})
        edges += [(f"in{c}", f"lif{c}"), (f"lif{c}", f"out{c}")]
        sem = sem.override(f"lif{c}", integrator=integrator, reset=reset, detach_reset=detach)
    model = nirjax.compile(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT, semantics=sem)
    inputs = {f"in{c}": jnp.asarray(np.array(xs, np.float64).reshape(2, 1, 1))
              for c, (*_, xs) in enumerate(CASES)}
    spikes = lambda p: {k_: v[:, 0, 0] for k_, v in model.run(p, inputs)[0].items()}
    ys, jac = spikes(model.params), jax.jacrev(spikes)(model.params)
    for c, (integrator, reset, detach, xs) in enumerate(CASES):
        (z1, dz1), (z2, dz2), margins = _hand_lif(P0, xs, DT, lambda x: sg_fn(x, k), integrator,
                                                   reset, detach)
        assert all(abs(m) > 1e-3 for m in margins)  # well away from the threshold
        np.testing.assert_array_equal(np.asarray(ys[f"out{c}"]), [z1, z2], err_msg=str(CASES[c]))
        for n, expected in ((0, dz1), (1, dz2)):
            for field in PARAMS:
                got = float(np.asarray(getattr(jac[f"out{c}"][f"lif{c}"], field))[n, 0])
                np.testing.assert_allclose(
                    got, expected[field], rtol=1e-10, atol=1e-12,
                    err_msg=f"d z{n + 1} / d {field} ({kind}, case {CASES[c]})")


def test_hand_derivation_is_not_trivially_zero():
    """Guard the guard: the derivatives tested above are mostly non-zero."""
    (_, dz1), (_, dz2), _ = _hand_lif(P0, (1.4, 1.5), DT, lambda x: _arctan(x, 2.0), "euler",
                                      "v_reset", False)
    assert sum(abs(v) > 1e-3 for v in dz1.values()) >= 3
    assert all(abs(dz2[f]) > 1e-6 for f in PARAMS)


def _one(v):
    return np.array([v], np.float64)


@pytest.mark.parametrize("kind", KINDS)
def test_every_spiking_primitive_uses_the_surrogate(x64, kind):
    """IF, LIF, CubaLIF and Threshold: d z / d threshold = -H'(v' - threshold) in step one."""
    sg_fn, k = PUBLISHED[kind]
    th, x = 0.5, 0.8
    cases = {
        # IF: v' = dt * r * x
        "IF": (nir.IF(r=_one(300.0), v_threshold=_one(th), v_reset=_one(0.0)), DT * 300.0 * x),
        # LIF (Euler): v' = v_leak + dt/tau * r * x
        "LIF": (nir.LIF(tau=_one(4e-3), r=_one(2.0), v_leak=_one(0.0), v_threshold=_one(th),
                        v_reset=_one(0.0)), DT / 4e-3 * 2.0 * x),
        # CubaLIF (Euler, cuba_current='old'): the current is still 0 in step one, so v' = v_leak
        "CubaLIF": (nir.CubaLIF(tau_syn=_one(2e-3), tau_mem=_one(4e-3), r=_one(2.0),
                                v_leak=_one(0.3), v_threshold=_one(th), v_reset=_one(0.0),
                                w_in=_one(1.0)), 0.3),
        "Threshold": (nir.Threshold(threshold=_one(th)), x),
    }
    nodes = {"input": nir.Input(input_type=np.array([1])),
             "output": nir.Output(output_type=np.array([1]))}
    edges = []
    for name, (node, _) in cases.items():
        nodes[name] = node
        edges += [("input", name), (name, "output")]
    model = nirjax.compile(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT, surrogate=Surrogate(kind))
    xs = jnp.asarray(np.full((1, 1, 1), x))
    g = jax.grad(lambda p: model.run(p, xs)[0].sum())(model.params)
    for name, (_, v_prime) in cases.items():
        field = "threshold" if name == "Threshold" else "v_threshold"
        got = float(np.asarray(getattr(g[name], field))[0])
        assert got == pytest.approx(-sg_fn(v_prime - th, k), rel=1e-10, abs=1e-14), name


@pytest.mark.parametrize("kind", KINDS)
def test_forward_pass_is_unchanged_by_the_surrogate(kind, braille):
    graph = braille
    rng = np.random.default_rng(0)
    xs = (rng.random((120, 3, 12)) < 0.1).astype(np.float32)
    ref_model = nirjax.compile(graph, dt=1e-4, surrogate="none")
    model = nirjax.compile(graph, dt=1e-4, surrogate=Surrogate(kind, 3.0))
    rec = [("lif1.lif", "v"), ("lif2", "v"), "lif1.lif"]
    ys_ref, _, rec_ref = ref_model.run(ref_model.params, xs, record=rec)
    ys, _, recs = model.run(model.params, xs, record=rec)
    assert float(np.asarray(ys_ref).sum()) > 0  # the graph spikes
    np.testing.assert_array_equal(np.asarray(ys), np.asarray(ys_ref))
    for key in rec:
        np.testing.assert_array_equal(np.asarray(recs[key]), np.asarray(rec_ref[key]))


@pytest.mark.slow
def test_surrogate_choice_changes_the_gradient(braille):
    graph = braille
    xs = (np.random.default_rng(1).random((30, 2, 12)) < 0.2).astype(np.float32)
    grads = {}
    for kind in ("fast_sigmoid", "arctan", "none"):
        model = nirjax.compile(graph, dt=1e-4, surrogate=kind)
        g = jax.grad(lambda p: model.run(p, xs)[0].sum())(model.params)
        grads[kind] = np.asarray(g["fc1"].weight)
    assert np.abs(grads["none"]).max() == 0.0  # the true derivative of a step function
    assert np.abs(grads["fast_sigmoid"]).max() > 0
    assert not np.allclose(grads["fast_sigmoid"], grads["arctan"])


def test_per_node_override_selects_the_node_surrogate(x64):
    """An override reaches exactly its node, and its gradient is that surrogate's."""
    lif = lambda: nir.LIF(tau=_one(4e-3), r=_one(2.0), v_leak=_one(0.0), v_threshold=_one(0.5),
                          v_reset=_one(0.0))
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([1])), "a": lif(), "b": lif(),
               "output": nir.Output(output_type=np.array([1]))},
        edges=[("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")])
    sem = Semantics(surrogate="fast_sigmoid").override("b", surrogate=Surrogate("triangle", 1.0))
    model = nirjax.compile(graph, dt=DT, semantics=sem)
    assert model.program.node("a").semantics.surrogate == Surrogate("fast_sigmoid")
    assert model.program.node("b").semantics.surrogate == Surrogate("triangle", 1.0)
    x = 0.8
    xs = jnp.asarray(np.full((1, 1, 1), x))
    g = jax.grad(lambda p: model.run(p, xs)[0].sum())(model.params)
    v_minus_th = DT / 4e-3 * 2.0 * x - 0.5
    assert float(g["a"].v_threshold[0]) == pytest.approx(-_fast_sigmoid(v_minus_th, 10.0), rel=1e-10)
    assert float(g["b"].v_threshold[0]) == pytest.approx(-_triangle(v_minus_th, 1.0), rel=1e-10)


def test_bad_surrogates_raise_semantics_errors():
    with pytest.raises(nirjax.SemanticsError, match="unknown surrogate 'superspike'"):
        Surrogate("superspike")
    with pytest.raises(nirjax.SemanticsError, match="scale"):
        Surrogate("arctan", -1.0)
    with pytest.raises(nirjax.SemanticsError, match="scale"):
        Surrogate("arctan", float("nan"))
    graph = _lif_graph(**P0)
    with pytest.raises(nirjax.SemanticsError, match="unknown surrogate"):
        nirjax.compile(graph, dt=DT, surrogate="bogus")


def test_surrogates_integrate_to_one():
    """The documented normalization: each derivative (but fast sigmoid's) has unit area."""
    x = np.linspace(-200, 200, 2_000_001)
    for kind in ("sigmoid", "arctan", "triangle"):
        for scale in (0.5, 3.0):
            d = np.asarray(Surrogate(kind, scale).derivative(jnp.asarray(x)))
            area = np.trapezoid(d, x)
            tail = {"arctan": 4.0 / (math.pi ** 2 * scale * 200)}.get(kind, 0.0)
            assert area == pytest.approx(1.0 - tail, abs=2e-3), (kind, scale)


@pytest.mark.parametrize("integrator", ["euler", "exact"])
def test_every_parameter_of_the_spiking_primitives_gets_a_gradient(x64, integrator):
    """Affine -> CubaLIF -> Affine -> IF -> Affine -> Threshold: every field of every node has a
    finite, non-zero gradient (the surrogate reaches all of them, resets included)."""
    rng = np.random.default_rng(4)
    n = 3
    graph = nir.NIRGraph.from_list(
        nir.Affine(rng.uniform(0.5, 1.5, (n, 2)), np.full(n, 0.2)),
        nir.CubaLIF(tau_syn=np.full(n, 2e-3), tau_mem=np.full(n, 4e-3), r=np.full(n, 2.0),
                    v_leak=np.full(n, 0.05), v_threshold=np.full(n, 0.3), v_reset=np.full(n, -0.05),
                    w_in=np.full(n, 1.5)),
        nir.Affine(rng.uniform(0.5, 1.5, (n, n)), np.full(n, 0.1)),
        nir.IF(r=np.full(n, 200.0), v_threshold=np.full(n, 0.2), v_reset=np.full(n, 0.02)),
        nir.Affine(rng.uniform(0.5, 1.5, (n, n)), np.full(n, 0.1)),
        nir.Threshold(threshold=np.full(n, 0.6)))
    model = nirjax.compile(graph, dt=1e-3, semantics={"integrator": integrator})
    xs = jnp.asarray(rng.uniform(0.5, 1.5, (40, 2, 2)))
    ys, _, rec = model.run(model.params, xs, record=["cubalif", "if"])
    assert all(float(np.asarray(a).sum()) > 0 for a in (ys, rec["cubalif"], rec["if"]))
    g = jax.grad(lambda p: model.run(p, xs)[0].sum())(model.params)
    for name, p in g.items():
        for field, value in p._asdict().items():
            value = np.asarray(value)
            assert np.all(np.isfinite(value)) and np.abs(value).max() > 0, (name, field)
