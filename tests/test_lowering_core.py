"""The lowering core: nirjax.lower, Lowered, the target registry, compare(model, hw, xs).

Exercised with the tiny integer target of ``tests/lowering_test_target.py`` (integer Linear
+ IF), checked against a float64 NumPy loop written here, and against the float model where
the lowering is exact.
"""

from __future__ import annotations

import os
import sys
import warnings

import nir
import numpy as np
import pytest

import nirjax
from nirjax.lowering import TARGET_NAMES, TARGETS, Lowered, register_target

sys.path.insert(0, os.path.dirname(__file__))
import lowering_test_target as tt  # noqa: E402

DT = 1e-3


def _graph(w1=None, w2=None, th1=1.5, th2=0.5, r=1 / DT, extra=None):
    rng = np.random.default_rng(0)
    w1_default = rng.integers(-3, 4, (6, 4)).astype(float)
    w2_default = rng.integers(-3, 4, (3, 6)).astype(float)
    w1 = w1_default if w1 is None else w1
    w2 = w2_default if w2 is None else w2
    nodes = {
        "input": nir.Input(np.array([4])),
        "fc1": nir.Linear(weight=w1),
        "if1": nir.IF(r=np.full(6, r), v_threshold=np.full(6, th1), v_reset=np.zeros(6)),
        "fc2": nir.Linear(weight=w2),
        "if2": nir.IF(r=np.full(3, r), v_threshold=np.full(3, th2), v_reset=np.zeros(3)),
        "output": nir.Output(np.array([3])),
    }
    edges = [("input", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "if2"),
             ("if2", "output")]
    if extra:
        nodes.update(extra[0])
        edges += extra[1]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _oracle(g, xs, scale=1.0):
    """Float64 NumPy loop of the test target's integer rules."""
    n = g.nodes
    w1 = np.round(scale * n["fc1"].weight)
    w2 = np.round(scale * n["fc2"].weight)
    th1 = np.floor(scale * n["if1"].v_threshold)
    th2 = np.floor(scale * n["if2"].v_threshold)
    T, B, _ = xs.shape
    v1 = np.zeros((B, 6))
    v2 = np.zeros((B, 3))
    out, s1 = np.zeros((T, B, 3)), np.zeros((T, B, 6))
    for t in range(T):
        v1 = v1 + xs[t] @ w1.T
        z1 = (v1 > th1).astype(float)
        v1 = np.where(z1 > 0, 0, v1)
        v2 = v2 + z1 @ w2.T
        z2 = (v2 > th2).astype(float)
        v2 = np.where(z2 > 0, 0, v2)
        out[t], s1[t] = z2, z1
    return out, s1


def _xs(T=30, B=5, seed=1):
    return np.random.default_rng(seed).integers(0, 4, (T, B, 4))


def test_public_names_and_registry():
    assert nirjax.lower is nirjax.lowering.lower and nirjax.Lowered is Lowered
    assert issubclass(nirjax.LoweringWarning, nirjax.NirjaxWarning)
    assert set(TARGET_NAMES) == {"xylo-audio2", "xylo-audio3", "xylo-imu", "loihi2", "speck",
                                 "spinnaker2"}
    assert TARGETS["test-int"].family == "test"
    with pytest.raises(TypeError):
        TARGETS["x"] = None  # read-only view


def test_unknown_target_names_the_registered_ones():
    with pytest.raises(nirjax.LoweringError, match="unknown target 'nope'.*'test-int'"):
        nirjax.lower(_graph(), "nope", dt=DT)


def test_unknown_option_is_refused_with_the_valid_ones():
    with pytest.raises(nirjax.LoweringError, match="no option.*bogus.*scale"):
        nirjax.lower(_graph(), "test-int", dt=DT, bogus=1)


def test_dt_required_for_a_graph():
    with pytest.raises(nirjax.LoweringError, match="dt is required"):
        nirjax.lower(_graph(), "test-int")


def test_integer_simulation_equals_the_oracle_and_is_int32():
    g = _graph()
    hw = nirjax.lower(g, "test-int", dt=DT)
    xs = _xs()
    ys = np.asarray(hw(xs))
    want, hidden = _oracle(g, xs)
    assert ys.dtype == np.int32
    np.testing.assert_array_equal(ys, want)
    assert want.sum() > 0 and hidden.sum() > 0  # not vacuous
    ys2, rec = hw.run(xs, record=["if1", ("if1", "v")])
    np.testing.assert_array_equal(ys2, want)
    np.testing.assert_array_equal(rec["if1"], hidden)
    assert rec[("if1", "v")].shape == (30, 5, 6)


def test_a_path_and_a_scale_option(tmp_path):
    g = _graph(w1=np.full((6, 4), 0.5), w2=np.full((3, 6), 0.25))
    path = tmp_path / "g.nir"
    nirjax.write(path, g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hw = nirjax.lower(str(path), "test-int", dt=DT, scale=4.0)
    xs = _xs()
    np.testing.assert_array_equal(np.asarray(hw(xs)), _oracle(g, xs, 4.0)[0])


def test_every_violation_is_listed_at_once():
    big = np.full((6, 4), 300.0)
    extra = ({"lif": nir.LIF(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3),
                             v_threshold=np.ones(3))}, [("if2", "lif")])
    g = _graph(w1=big, w2=np.full((3, 6), 200.0), extra=extra)
    with pytest.raises(nirjax.LoweringError) as info:
        nirjax.lower(g, "test-int", dt=DT)
    err = info.value
    rules = sorted((v.node, v.rule) for v in err.violations)
    assert rules == [("fc1", "weight_range"), ("fc2", "weight_range"), ("lif", "node_type")]
    msg = str(err)
    assert "node 'fc1'" in msg and "node 'fc2'" in msg and "node 'lif'" in msg
    assert "300" in msg and "127" in msg
    assert isinstance(err, nirjax.NirjaxError)


def test_approximations_warn_saying_by_how_much():
    g = _graph(w1=np.full((6, 4), 1.3))
    with pytest.warns(nirjax.LoweringWarning, match="fc1.*rounded by up to 0.3"):
        hw = nirjax.lower(g, "test-int", dt=DT)
    assert any("0.3" in w for w in hw.warnings)


def test_inputs_are_validated():
    hw = nirjax.lower(_graph(), "test-int", dt=DT)
    xs = _xs().astype(float)
    hw(xs)  # integral floats are fine
    xs[3, 2, 1] = 0.5
    with pytest.raises(nirjax.InputError, match=r"integer.*\(3, 2, 1\)"):
        hw(xs)
    xs = _xs()
    xs[4, 0, 0] = 4
    with pytest.raises(nirjax.InputError, match=r"\[0, 3\].*\(4, 0, 0\).*4"):
        hw(xs)
    with pytest.raises(nirjax.InputError, match="recordable"):
        hw.run(_xs(), record=["fc9"])


def test_report_resources_export_to_nir(tmp_path):
    hw = nirjax.lower(_graph(), "test-int", dt=DT)
    text = hw.report()
    for part in ("test-int", "Mapping:", "Resources", "Quantization", "fc1 weight", "if1",
                 "[0, 3]"):
        assert part in text, part
    assert hw.resources["total"]["neurons"] == {"used": 9, "limit": 64}
    assert hw.resources["if1"]["neurons"]["used"] == 6
    hw.export(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as f:
        np.testing.assert_array_equal(f["fc1"], np.asarray(hw.params["fc1"].weight))
    g2 = hw.to_nir()
    assert isinstance(g2, nir.NIRGraph) and set(g2.nodes) == set(_graph().nodes)
    # the quantized graph lowers to the same integers
    hw2 = nirjax.lower(g2, "test-int", dt=DT)
    xs = _xs()
    np.testing.assert_array_equal(np.asarray(hw2(xs)), np.asarray(hw(xs)))


def test_lower_a_compiled_model_with_params_override():
    g = _graph()
    model = nirjax.compile(g, dt=DT)
    hw = nirjax.lower(model, "test-int")
    assert hw.dt == DT
    xs = _xs()
    np.testing.assert_array_equal(np.asarray(hw(xs)), _oracle(g, xs)[0])
    params = dict(model.params)
    params["fc1"] = params["fc1"]._replace(weight=-params["fc1"].weight)
    hw2 = nirjax.lower(model, "test-int", params=params)
    g2 = _graph(w1=-np.asarray(g.nodes["fc1"].weight))
    np.testing.assert_array_equal(np.asarray(hw2(xs)), _oracle(g2, xs)[0])
    with pytest.raises(nirjax.LoweringError, match="dt"):
        nirjax.lower(model, "test-int", dt=2 * DT)
    with pytest.raises(nirjax.LoweringError, match="nodes without parameters"):
        nirjax.lower(model, "test-int", params={"nope": None})


def test_compare_float_model_with_the_chip():
    # integer weights, r*dt = 1, threshold k + 0.5: the float graph equals the chip
    g = _graph()
    model = nirjax.compile(g, dt=DT)
    hw = nirjax.lower(model, "test-int")
    xs = _xs()
    c = nirjax.compare(model, hw, xs)
    assert c.nodes == ("if1", "if2", "output")
    assert c.agreement(hw.target) == 1.0 and c.output_agreement() == 1.0
    assert c.divergence(hw.target) is None
    assert "100.00%" in str(c)
    # a chip whose first layer's weights differ: the divergence is found where it starts
    params = dict(model.params)
    w = np.asarray(params["fc1"].weight).copy()
    w[2] += 1
    params["fc1"] = params["fc1"]._replace(weight=w)
    hw2 = nirjax.lower(model, "test-int", params=params)
    c2 = nirjax.compare(model, hw2, xs)
    d = c2.divergence(hw2.target)
    want = _oracle(g, xs)[1] != _oracle(_graph(w1=w), xs)[1]
    first = int(np.flatnonzero(want.any(axis=(1, 2)))[0])
    assert d is not None and d.node == "if1" and d.step == first
    assert c2.agreement(hw2.target, "if1") < 1.0


def test_compare_profiles_signature_unchanged():
    g = _graph()
    c = nirjax.compare(g, np.ones((10, 2, 4)), DT, ["nir", "exact"])
    assert c.profiles == ("nir", "exact")


def test_register_target_validates():
    with pytest.raises(nirjax.LoweringError):
        register_target("", lambda *a: None, family="x", doc="")
    with pytest.raises(nirjax.LoweringError):
        register_target("bad", 3, family="x", doc="")
    register_target("returns-nothing", lambda p, params, o: None, family="test", doc="")
    try:
        with pytest.raises(nirjax.LoweringError, match="not a LoweringResult"):
            nirjax.lower(_graph(), "returns-nothing", dt=DT)
    finally:
        nirjax.lowering.core._REGISTRY.pop("returns-nothing")
