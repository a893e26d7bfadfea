"""SpiNNaker2: py-spinnaker2 ``from_nir``'s import rules and int8 weight scaling as data.

py-spinnaker2 cannot be installed, so the rules are checked on graphs built to break each
one (and on the NIR paper graphs, which the paper ran on SpiNNaker2), and the scaling
against its definition: per neuron node, ``127 / max |W|`` over the weight nodes feeding it.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest

import nirjax
from builders import chain, graph, rng_for
from nirjax.lowering import spinnaker2 as s2
from nirjax.lowering.violations import DesignRuleError

F32 = np.float32


def _if(n, thr=1.0):
    return nir.IF(r=np.ones(n, F32), v_threshold=np.full(n, thr, F32), v_reset=np.zeros(n, F32))


def _lin(rng, n_out, n_in):
    return nir.Affine(rng.normal(0, 1, (n_out, n_in)).astype(F32), np.zeros(n_out, F32))


@pytest.mark.parametrize("name,delay", [("lif_norse", 1), ("braille_subtract", 1),
                                        ("cnn_sinabs", 0)])
def test_paper_graphs_pass(read_paper, name, delay):
    assert s2.check_graph(read_paper(name), conn_delay=delay) == []


def test_conv_needs_zero_delay(read_paper):
    v = s2.check_graph(read_paper("cnn_sinabs"), conn_delay=1)
    assert {x.rule for x in v} == {"Conv2d delay"} and len(v) == 3


def test_each_rule():
    rng = rng_for("s2-rules")
    cases = {
        "two weight layers in a row": chain((3,), (2,), ("a", _lin(rng, 4, 3)),
                                            ("b", _lin(rng, 2, 4)), ("n", _if(2))),
        "neuron to neuron": chain((3,), (3,), ("a", _lin(rng, 3, 3)), ("n1", _if(3)),
                                  ("n2", _if(3))),
        "CubaLIF after Conv2d": chain(
            (1, 4, 4), (1, 4, 4),
            ("c", nir.Conv2d(None, np.ones((1, 1, 1, 1), F32), np.array([1, 1]),
                             np.array([0, 0]), np.array([1, 1]), 1, np.zeros(1, F32))),
            ("n", nir.CubaLIF(tau_syn=np.ones((1, 4, 4)), tau_mem=np.ones((1, 4, 4)),
                              r=np.ones((1, 4, 4)), v_leak=np.zeros((1, 4, 4)),
                              v_threshold=np.ones((1, 4, 4))))),
        "input rank": chain((2, 3), (2, 4), ("a", _lin(rng, 4, 6)), ("n", _if(4))),
        "weight target": chain((3,), (4,), ("a", _lin(rng, 4, 3))),
        "pooling": chain((1, 4, 4), (3,), ("p", nir.SumPool2d(np.array([2, 2]),
                                                            np.array([2, 2]),
                                                            np.array([0, 0]))),
                         ("f", nir.Flatten({"input": np.array([1, 2, 2])}, 0, -1)),
                         ("a", nir.Linear(np.ones((3, 4), F32))), ("n", _if(3))),
        "dropped connection": chain((1, 2, 2), (3,), ("f", nir.Flatten(
            {"input": np.array([1, 2, 2])}, 0, -1)), ("a", _lin(rng, 3, 4)), ("n", _if(3))),
        "node type": chain((3,), (3,), ("a", _lin(rng, 3, 3)),
                           ("n", nir.LI(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3)))),
    }
    for rule, g in cases.items():
        got = {v.rule for v in s2.check_graph(g)}
        assert rule in got, (rule, got)
    nested = graph({"input": nir.Input(np.array([3])), "sub": cases["neuron to neuron"],
                    "output": nir.Output(np.array([3]))}, [("input", "sub"), ("sub", "output")])
    v = s2.check_graph(nested)
    assert [(x.node, x.rule, x.value) for x in v] == [("sub", "node type", "a nested NIRGraph")]


def test_all_violations_at_once():
    rng = rng_for("s2-all")
    g = chain((3,), (2,), ("a", _lin(rng, 4, 3)), ("b", _lin(rng, 4, 4)), ("n1", _if(4)),
              ("n2", _if(4)), ("li", nir.LI(tau=np.ones(4), r=np.ones(4), v_leak=np.zeros(4))))
    v = s2.check_graph(g)
    assert {x.rule for x in v} >= {"two weight layers in a row", "neuron to neuron",
                                   "node type"}
    with pytest.raises(DesignRuleError) as info:
        s2.raise_violations(v)
    assert "spinnaker2" in str(info.value) and str(info.value).count("\n") == len(v)


def test_weight_scale_per_neuron_node(read_paper):
    """Scope: one neuron node, over every weight node feeding it (Braille's recurrent LIF has
    two: the input and the recurrent weights)."""
    g = read_paper("braille_subtract")
    scales = s2.weight_scales(g)
    assert set(scales) == {"lif1.lif", "lif2"}
    m = max(np.abs(g.nodes["fc1"].weight).max(), np.abs(g.nodes["lif1.w_rec"].weight).max())
    assert scales["lif1.lif"] == pytest.approx(127 / float(m), rel=1e-12)
    assert scales["lif2"] == pytest.approx(127 / float(np.abs(g.nodes["fc2"].weight).max()),
                                           rel=1e-12)


def test_scale_weights_truncates_to_int8():
    g = chain((2,), (2,), ("a", nir.Affine(np.array([[0.5, -0.3], [0.1, 0.25]], F32),
                                          np.array([0.2, -0.1], F32))), ("n", _if(2, 1.5)))
    scaled, report = s2.scale_weights(g)
    (r,) = report
    assert r.w_scale == 254.0 and r.weights == ("a",)
    w = np.asarray(scaled.nodes["a"].weight)
    assert w.tolist() == [[127.0, -76.0], [25.0, 63.0]]  # trunc(-76.2), trunc(25.4), trunc(63.5)
    np.testing.assert_allclose(scaled.nodes["a"].bias, [50.8, -25.4], rtol=1e-6)
    np.testing.assert_allclose(scaled.nodes["n"].v_threshold, [381.0, 381.0])
    assert r.max_error == pytest.approx(0.5 / 254, rel=1e-6) and r.zeroed == 0


def test_scaled_graph_spikes_like_the_original(read_paper):
    """Scaling weights and voltages together changes no spike (the LIF task's one weight
    scales exactly to 127)."""
    g = read_paper("lif_norse")
    scaled, report = s2.scale_weights(g)
    assert report[0].max_error == 0.0
    rng = rng_for("s2-lif")
    x = (rng.random((200, 3, 1)) < 0.3).astype(F32)
    outs = []
    for gg in (g, scaled):
        model = nirjax.compile(gg, dt=1e-4, semantics="spinnaker2")
        outs.append(np.asarray(model.run(model.params, x, model.init_state(3))[0]))
    assert outs[0].sum() > 0
    np.testing.assert_array_equal(outs[0], outs[1])


def test_shared_weights_refused():
    rng = rng_for("s2-shared")
    a = nir.Affine(rng.normal(0, 1, (3, 3)).astype(F32), np.zeros(3, F32))
    b = nir.Affine(3 * rng.normal(0, 1, (3, 3)).astype(F32), np.zeros(3, F32))
    g = graph({"input": nir.Input(np.array([3])), "a": a, "b": b, "n1": _if(3), "n2": _if(3),
               "output": nir.Output(np.array([3]))},
              [("input", "a"), ("a", "n1"), ("a", "n2"), ("input", "b"), ("b", "n2"),
               ("n1", "output")])
    with pytest.raises(DesignRuleError, match="shared weights"):
        s2.scale_weights(g)
