"""Speck lowering without the vendor package: rules, discretization, mapping, kernel, export.

The vendor equality (same integers, cores and spikes as sinabs 3.1.3) is in
``test_speck_vendor.py``; here each piece is checked against a closed form, a brute-force
search, a float64 NumPy loop of sinabs' documented update, or numbers sinabs printed for the
NIR paper's CNN.
"""

from __future__ import annotations

import itertools
import json
import os
import sys

import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax
from builders import chain, rng_for
from nirjax.kernels import speck as speck_k
from nirjax.lowering.speck import from_nir as speck_nir, quantize as sq
from nirjax.lowering.violations import DesignRuleError

F32 = np.float32

# sinabs 3.1.3's DynapcnnNetwork(cnn_sinabs, discretize=True).memory_summary(), thresholds and
# Speck2FConfigBuilder.map_layers_to_cores, as that run printed them
PAPER_MEMORY = [(1024, 4096, 16), (4096, 4096, 16), (2048, 512, 8), (32768, 256, 256),
                (4096, 10, 10)]
PAPER_THRESHOLDS = [72, 128, 205, 108, 197]
PAPER_CORES = (0, 1, 2, 3, 4)


def _if(shape, thr=1.0, **kw):
    return nir.IF(r=kw.get("r", np.ones(shape, F32)),
                  v_threshold=np.full(shape, thr, F32) if np.isscalar(thr) else thr,
                  v_reset=kw.get("v_reset", np.zeros(shape, F32)))


def _conv(rng, c_in, c_out, k, stride=1, padding=0, dilation=1, groups=1):
    return nir.Conv2d(input_shape=None,
                      weight=rng.normal(0, 0.5, (c_out, c_in // groups, k, k)).astype(F32),
                      stride=np.array([stride, stride]) if np.isscalar(stride) else
                      np.array(stride), padding=np.array([padding, padding]),
                      dilation=np.array([dilation, dilation]), groups=groups,
                      bias=rng.normal(0, 0.1, c_out).astype(F32))


def _small_cnn(rng, c=2, hw=12):
    """conv -> if -> sumpool -> flatten -> affine -> if, within every rule."""
    return chain((c, hw, hw), (5,),
                 ("conv", _conv(rng, c, 4, 3, padding=1)), ("if1", _if((4, hw, hw))),
                 ("pool", nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))),
                 ("flat", nir.Flatten({"input": np.array([4, hw // 2, hw // 2])}, 0, -1)),
                 ("fc", nir.Affine(rng.normal(0, 0.3, (5, 4 * (hw // 2) ** 2)).astype(F32),
                                   np.zeros(5, F32))),
                 ("if2", _if((5,))))


# ----------------------------------------------------------------------------- discretization


def test_scale_rule_closed_form():
    """``127/max`` when the positive side dominates (with the 128/127 allowance), else
    ``128/|min|``; torch's ``c / x`` is ``float32(1/x) * c``; all zeros give ``inf``."""
    assert sq.discretization_scale(F32([-1.0, 1.0]), 8) == F32(127.0)
    assert sq.discretization_scale(F32([-1.0078, 1.0]), 8) == F32(127.0)  # within 128/127
    assert sq.discretization_scale(F32([-2.0, 1.0]), 8) == F32(64.0)
    assert sq.discretization_scale(F32([-3.0, -1.0]), 8) == F32(128.0) / F32(3.0)
    assert sq.discretization_scale(F32([0.0, 0.0]), 8) == np.inf
    assert sq.discretization_scale(F32([-2 ** 15, 1.0]), 16) == F32(1.0)
    # a value where float32 division and reciprocal-times-127 differ: the latter is torch's
    x = F32(1.0055027)
    recip = (F32(1) / x) * F32(127)
    assert recip != F32(127) / x
    assert sq.discretization_scale(np.array([x], F32), 8) == recip


def test_discretize_hand_example():
    """One layer by hand: weights [0.5, -0.25], bias [0.1], threshold 1, clamp -1."""
    d = sq.discretize(F32([[0.5, -0.25]]), F32([0.1]), 1.0, -1.0)
    # scales: w 127/0.5 = 254, b 127/0.1 = 1270, thresholds 32767/1 -> 254 wins
    assert float(d.scale) == 254.0
    assert d.weight.tolist() == [[127, -64]]  # -63.5 rounds half to even
    assert d.bias.tolist() == [25]             # 25.4
    assert (d.threshold, d.min_v_mem) == (254, -254)
    d2 = sq.discretize(F32([[0.5, -0.25]]), None, 1.0, None)
    assert d2.bias is None and d2.min_v_mem == -32768 and float(d2.scale) == 1.0
    assert d2.weight.tolist() == [[0, 0]]  # sinabs' default clamp forces the scale to 1
    d3 = sq.discretize(F32([[0.5, -0.25]]), None, 1.0, -1.0, rescale=0.25)
    assert float(d3.scale) == 1016.0 and d3.weight.tolist() == [[127, -64]]


def test_memory_words_closed_form():
    assert sq.memory_words(3, 5, (3, 3), (7, 9), False) == (3 * 2 ** (4 + 3), 5 * 2 ** (3 + 4),
                                                            0)
    assert sq.memory_words(1, 1, (1, 1), (1, 1), True) == (1, 1, 1)
    assert sq.memory_words(8, 256, (4, 4), (1, 1), True) == PAPER_MEMORY[3]


def test_paper_cnn_matches_sinabs_numbers(read_paper):
    network = speck_nir.lower_nir(read_paper("cnn_sinabs"))
    assert network.ok and not network.notes
    assert [tuple(q.memory) for q in network.layers] == PAPER_MEMORY
    assert [q.threshold for q in network.layers] == PAPER_THRESHOLDS
    assert [q.min_v_mem for q in network.layers] == [-t for t in PAPER_THRESHOLDS]
    assert network.cores == PAPER_CORES
    for q in network.layers:
        assert np.abs(q.weight).max() <= 128 and q.weight.dtype == np.int32
        assert q.weight_error <= 0.5 / float(q.scale) * 1.0001


# ----------------------------------------------------------------------------- core mapping


def _perfect_matching_exists(candidates):
    for perm in itertools.permutations(range(len(sq.CORE_MEMORY)), len(candidates)):
        if all(c in cand for c, cand in zip(perm, candidates)):
            return True
    return False


@pytest.mark.parametrize("seed", range(40))
def test_core_mapping_is_a_valid_assignment(seed):
    """Brute force: an assignment is returned exactly when one exists, and it is one."""
    rng = rng_for(f"speck-map-{seed}")
    words = []
    for _ in range(int(rng.integers(1, 8))):
        words.append(sq.MemoryWords(int(rng.choice([1, 16, 32, 64])) * 1024 - int(rng.integers(
            0, 2)) * 512, int(rng.choice([1, 16, 32, 64, 80])) * 1024, int(rng.choice([8,
                                                                                     2000]))))
    candidates = [sq.fitting_cores(w) for w in words]
    cores = sq.map_layers_to_cores(words)
    assert (cores is not None) == _perfect_matching_exists(candidates)
    if cores is not None:
        assert len(set(cores)) == len(cores)
        assert all(c in cand for c, cand in zip(cores, candidates))


def test_core_mapping_search_order():
    """Two kernel-heavy layers after two small ones: the augmenting paths move the small
    layers off cores 3 and 4 only as far as needed (the assignment sinabs returns)."""
    small, big = sq.MemoryWords(1024, 1024, 16), sq.MemoryWords(32768, 1024, 16)
    assert sq.map_layers_to_cores([small, small, big, big]) == (0, 1, 3, 4)
    assert sq.map_layers_to_cores([big] * 4) == (3, 4, 5, 6)
    assert sq.map_layers_to_cores([big] * 5) is None
    assert sq.map_layers_to_cores([small] * 9) == tuple(range(9))
    assert sq.map_layers_to_cores([small] * 10) is None


# ----------------------------------------------------------------------------- design rules


def test_every_violation_reported_at_once():
    """A graph that breaks many rules gets every one, each naming node, rule, limit, value."""
    rng = rng_for("speck-rules")
    thr = np.ones((4, 8, 8), F32)
    thr[0, 0, 0] = 2.0
    # conv: (140 + 16 - 17)//3 + 1 = 47; pool 3: 15; conv2 (dilation 2, padding 3): 17
    g = chain((2, 140, 140), (5,),
              ("conv", _conv(rng, 2, 4, 17, stride=(3, 3), padding=8)),
              ("if1", _if((4, 47, 47), thr=0.5, r=np.full((4, 47, 47), 2.0, F32))),
              ("pool", nir.SumPool2d(np.array([3, 3]), np.array([3, 3]), np.array([0, 0]))),
              ("conv2", _conv(rng, 4, 4, 3, padding=3, dilation=2)),
              ("if2", _if((4, 17, 17), thr=np.where(np.arange(4 * 17 * 17).reshape(4, 17, 17)
                                                     % 2, 1.0, 2.0).astype(F32))),
              ("flat", nir.Flatten({"input": np.array([4, 17, 17])}, 0, -1)),
              ("fc", nir.Affine(rng.normal(0, 1, (5, 4 * 17 * 17)).astype(F32),
                                np.zeros(5, F32))),
              ("if3", _if((5,), v_reset=np.full(5, 0.5, F32))))
    network = speck_nir.lower_nir(g)
    got = {(v.node, v.rule) for v in network.violations}
    expected = {("conv", "kernel size"), ("conv", "stride"), ("conv", "padding"),
                ("conv", "input size"), ("if1", "IF r"), ("pool", "pooling"),
                ("conv2", "dilation"), ("if2", "one threshold per layer"),
                ("fc", "kernel size"), ("if3", "IF v_reset")}
    assert expected == got - {("conv", "output size")}, got
    with pytest.raises(DesignRuleError) as info:
        sq.raise_violations(network.violations)
    assert isinstance(info.value, nirjax.NirjaxError)
    msg = str(info.value)
    assert "node 'conv': kernel size: kernel 17x17; allowed: at most 16x16" in msg
    assert "node 'conv': stride: stride 3x3" in msg
    assert msg.count("\n") == len(network.violations)


def test_structure_rules():
    rng = rng_for("speck-structure")
    two_weights = chain((2, 8, 8), (4, 8, 8), ("c1", _conv(rng, 2, 4, 3, padding=1)),
                        ("c2", _conv(rng, 4, 4, 3, padding=1)), ("if", _if((4, 8, 8))))
    rules = {(v.node, v.rule) for v in speck_nir.lower_nir(two_weights).violations}
    assert ("c2", "weight -> IF") in rules
    lif = chain((2, 8, 8), (4, 8, 8), ("c1", _conv(rng, 2, 4, 3, padding=1)),
                ("lif", nir.LIF(tau=np.ones((4, 8, 8)), r=np.ones((4, 8, 8)),
                                v_leak=np.zeros((4, 8, 8)), v_threshold=np.ones((4, 8, 8)))))
    rules = {(v.node, v.rule) for v in speck_nir.lower_nir(lif).violations}
    assert rules == {("lif", "node type")}  # no second, derived complaint about c1
    no_flatten = chain((2, 4, 4), (3,), ("c1", _conv(rng, 2, 4, 3, padding=1)),
                       ("if", _if((4, 4, 4))),
                       ("fc", nir.Affine(np.ones((3, 64), F32), np.zeros(3, F32))),
                       ("if2", _if((3,))))
    assert ("fc", "flatten") in {(v.node, v.rule)
                                 for v in speck_nir.lower_nir(no_flatten).violations}
    pool_first = chain((2, 8, 8), (4, 4, 4),
                       ("p", nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))),
                       ("c1", _conv(rng, 2, 4, 3, padding=1)), ("if", _if((4, 4, 4))))
    assert ("p", "pooling after an IF") in {
        (v.node, v.rule) for v in speck_nir.lower_nir(pool_first).violations}
    g = _small_cnn(rng)
    branched = nir.NIRGraph(nodes=dict(g.nodes), edges=list(g.edges) + [("if1", "output")],
                            type_check=False)
    assert ("if1", "chain") in {(v.node, v.rule)
                                for v in speck_nir.lower_nir(branched).violations}


def test_too_many_layers_and_memory():
    rng = rng_for("speck-cores")
    named = []
    for i in range(10):
        named += [(f"c{i}", _conv(rng, 2, 2, 1)), (f"if{i}", _if((2, 4, 4)))]
    network = speck_nir.lower_nir(chain((2, 4, 4), (2, 4, 4), *named))
    assert [(v.node, v.rule) for v in network.violations] == [("graph", "cores")]
    assert "10 layers" in network.violations[0].value
    big = chain((256, 16, 16), (512, 16, 16), ("c", _conv(rng, 256, 512, 3, padding=1)),
                ("if", _if((512, 16, 16))))
    v = speck_nir.lower_nir(big).violations
    assert [(x.node, x.rule) for x in v] == [("c", "memory")]
    assert "kernel 2097152" in v[0].value
    # each fits some core, but five layers all need one of cores 3-6
    named = []
    for i in range(5):
        named += [(f"c{i}", _conv(rng, 64, 64, 3, padding=1)), (f"if{i}", _if((64, 4, 4)))]
    v = speck_nir.lower_nir(chain((64, 4, 4), (64, 4, 4), *named)).violations
    assert [(x.node, x.rule) for x in v] == [("graph", "core assignment")]


def test_threshold_rounding_to_zero_is_a_violation():
    rng = rng_for("speck-thr")
    g = chain((2, 4, 4), (2, 4, 4), ("c", _conv(rng, 2, 2, 1)), ("if", _if((2, 4, 4), 1e-4)))
    v = speck_nir.lower_nir(g).violations
    assert [(x.node, x.rule) for x in v] == [("if", "threshold range")]


def test_average_pooling_becomes_sum_pooling_with_rescaled_weights():
    rng = rng_for("speck-avg")
    g = chain((2, 8, 8), (3,), ("c", _conv(rng, 2, 4, 3, padding=1)), ("if1", _if((4, 8, 8))),
              ("p", nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))),
              ("flat", nir.Flatten({"input": np.array([4, 4, 4])}, 0, -1)),
              ("fc", nir.Linear(rng.normal(0, 1, (3, 64)).astype(F32))), ("if2", _if((3,))))
    network = speck_nir.lower_nir(g)
    assert network.ok and network.layers[1].layer.rescale == 0.25
    assert any("AvgPool2d 'p'" in n for n in network.notes)
    fc = network.layers[1]
    direct = sq.discretize(g.nodes["fc"].weight * F32(0.25), None, 1.0, -1.0)
    np.testing.assert_array_equal(fc.linear_weight, direct.weight)
    assert fc.bias is None and fc.memory.bias == 0


# ----------------------------------------------------------------------------- kernel


def _sinabs_iaf_float64(xs, thr, vmin):
    """sinabs' IAF forward (lif.py with alpha=1, MultiSpike, MembraneSubtract, min_v_mem),
    written out in float64."""
    v = np.zeros(xs.shape[1:])
    out = []
    for x in xs:
        v = v + x
        n = (v > 0) * np.trunc(v / thr)
        v = v - n * thr
        v = np.maximum(v - vmin, 0) + vmin
        out.append(n)
    return np.array(out), v


@pytest.mark.parametrize("thr,vmin", [(1, -1), (7, -7), (250, -32768), (3, 0)])
def test_iaf_step_equals_sinabs_update(thr, vmin):
    rng = rng_for(f"speck-iaf-{thr}")
    xs = rng.integers(-3 * thr - 5, 4 * thr + 5, (50, 17))
    want_n, want_v = _sinabs_iaf_float64(xs.astype(np.float64), thr, vmin)
    params = speck_k.IAFParams(jnp.int32(thr), jnp.int32(vmin))
    state = speck_k.iaf_init_state((17,))
    got = []
    for x in xs:
        state, n = speck_k.iaf_step(params, state, jnp.asarray(x, jnp.int32))
        got.append(np.asarray(n))
    np.testing.assert_array_equal(np.array(got), want_n)
    np.testing.assert_array_equal(np.asarray(state.v), want_v)
    assert np.asarray(state.v).dtype == np.int32 and np.array(got).max() > 1  # multi-spikes


def test_count_bounds_hold_on_a_run():
    """The simulated run never leaves the bounds, and the bounds are the hand-derived ones."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
    import speck_harness as sh

    rng = rng_for("speck-bounds")
    network = speck_nir.lower_nir(_small_cnn(rng))
    bounds = sq.count_bounds(network, max_input_count=2)
    q0 = network.layers[0]
    per_neuron = np.abs(q0.weight.astype(np.int64)).reshape(4, -1).sum(1) * 2 + np.abs(q0.bias)
    assert bounds[0].current == per_neuron.max()
    assert bounds[0].v_high == q0.threshold - 1 + per_neuron.max()
    assert bounds[1].s_in == bounds[0].spikes * 4
    x = (rng.random((12, 2, 2, 12, 12)) < 0.5).astype(F32) * 2
    spikes, _, peak = sh.simulate(network, x)
    assert all(s.max() <= b.spikes for s, b in zip(spikes, bounds))
    assert peak <= max(max(-b.v_low, b.v_high, b.current) for b in bounds)
    assert all(b.float32_exact for b in bounds)


# ----------------------------------------------------------------------------- export


def test_export_writes_nir_and_json(tmp_path, read_paper):
    g = read_paper("cnn_sinabs")
    network = speck_nir.lower_nir(g)
    nir_path, json_path = speck_nir.export(g, network, tmp_path / "cnn.nir")
    back = nirjax.read(nir_path)
    assert set(back.nodes) == set(g.nodes) and sorted(back.edges) == sorted(g.edges)
    w = np.asarray(back.nodes["0"].weight)
    np.testing.assert_array_equal(w, network.layers[0].weight)
    assert np.all(np.asarray(back.nodes["1"].v_threshold) == PAPER_THRESHOLDS[0])
    assert int(np.asarray(back.nodes["1"].metadata["speck_min_v_mem"])) == -PAPER_THRESHOLDS[0]
    with open(json_path) as f:
        info = json.load(f)
    assert [layer["core"] for layer in info["layers"]] == list(PAPER_CORES)
    assert [tuple(layer["memory"].values()) for layer in info["layers"]] == PAPER_MEMORY
    assert info["memory"]["kernel"]["used"] == sum(m[0] for m in PAPER_MEMORY)
    again = speck_nir.lower_nir(back)
    assert all(float(q.scale) == 1.0 for q in again.layers)


def test_export_refuses_a_graph_with_violations(tmp_path):
    rng = rng_for("speck-export-bad")
    g = chain((2, 4, 4), (2, 4, 4), ("c", _conv(rng, 2, 2, 1, stride=3)),
              ("if", _if((2, 2, 2))))
    network = speck_nir.lower_nir(g)
    with pytest.raises(DesignRuleError, match="stride"):
        speck_nir.export(g, network, tmp_path / "bad.nir")
    assert not (tmp_path / "bad.nir").exists()
