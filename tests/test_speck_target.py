"""``nirjax.lower(graph, "speck")``: the public target, without the vendor package.

The integer simulation (the ``"speck"`` rule table run by the compiled scan) is checked
against an independent oracle: an int64 NumPy loop of Speck's layer update written here
from its definition (convolution as explicit sums over kernel offsets, the IAF of sinabs'
``layers/functional/lif.py`` with multi-spike, subtractive reset and lower clamp, sum
pooling as window sums), on the integers the lowering produced. That those integers are
sinabs' own (and that the simulation equals sinabs' forward) is ``test_speck_vendor.py``'s
job; the discretization's closed forms are in ``test_speck_lowering.py``.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import nir
import numpy as np
import pytest

import nirjax
from builders import chain, rng_for
from nirjax.lowering.speck import target as speck_target
from nirjax.lowering.speck import quantize as sq
from nirjax.rules import get_table

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
import speck_harness as sh  # noqa: E402

F32 = np.float32


# ----------------------------------------------------------------------------- the oracle


def _conv_int(x, w, b, stride, padding):
    """int64 cross-correlation of one sample ``x`` (C, H, W) with ``w`` (O, C, kh, kw)."""
    (plh, phh), (plw, phw) = padding
    xp = np.pad(x, ((0, 0), (plh, phh), (plw, phw)))
    o, c, kh, kw = w.shape
    sh_, sw = stride
    h_out = (xp.shape[1] - kh) // sh_ + 1
    w_out = (xp.shape[2] - kw) // sw + 1
    y = np.zeros((o, h_out, w_out), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + sh_ * (h_out - 1) + 1:sh_, j:j + sw * (w_out - 1) + 1:sw]
            y += np.einsum("oc,chw->ohw", w[:, :, i, j].astype(np.int64), patch)
    return y + (0 if b is None else b.astype(np.int64)[:, None, None])


def _sum_pool(x, k):
    c, h, w = x.shape
    h2, w2 = h // k[0], w // k[1]
    return x[:, :h2 * k[0], :w2 * k[1]].reshape(c, h2, k[0], w2, k[1]).sum(axis=(2, 4))


def oracle(network, xs):
    """Per layer spike counts ``[T, B, *neuron_shape]`` (int64) and the membrane of every
    layer after each step, for input counts ``xs`` ``[T, B, *input]``."""
    T, B = xs.shape[:2]
    spikes = [np.zeros((T, B) + tuple(q.layer.neuron_shape), np.int64) for q in network.layers]
    vs = [np.zeros_like(s) for s in spikes]
    for b in range(B):
        v = [np.zeros(q.layer.neuron_shape, np.int64) for q in network.layers]
        for t in range(T):
            s = xs[t, b].astype(np.int64).reshape(network.input_shape)
            for i, q in enumerate(network.layers):
                layer = q.layer
                if layer.kind == "conv":
                    cur = _conv_int(s, q.weight, q.bias, layer.stride, layer.padding)
                else:
                    cur = (q.linear_weight.astype(np.int64) @ s.reshape(-1)
                           + (0 if q.bias is None else q.bias.astype(np.int64)))
                    cur = cur.reshape(layer.neuron_shape)
                vv = v[i] + cur
                n = np.where(vv > 0, vv // q.threshold, 0)
                v[i] = np.maximum(vv - n * q.threshold, q.min_v_mem)
                spikes[i][t, b], vs[i][t, b] = n, v[i]
                s = n
                for k in layer.pool:
                    s = _sum_pool(s, k)
    return spikes, vs


def _events(rng, shape, p=0.3, most=3):
    return ((rng.random(shape) < p) * rng.integers(1, most + 1, shape)).astype(np.int32)


def _lower(graph, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return nirjax.lower(graph, "speck", **kw)


def _check_against_oracle(hw, xs):
    neurons = [q.layer.nodes["neuron"] for q in hw.details.layers]
    record = neurons + [(n, "v") for n in neurons]
    ys, rec = hw.run(xs, record=record)
    spikes, vs = oracle(hw.details, np.asarray(xs))
    total = 0
    for i, n in enumerate(neurons):
        got = np.asarray(rec[n]).reshape(spikes[i].shape)
        np.testing.assert_array_equal(got, spikes[i], err_msg=f"spikes of {n!r}")
        np.testing.assert_array_equal(np.asarray(rec[(n, "v")]).reshape(vs[i].shape), vs[i],
                                      err_msg=f"membrane of {n!r}")
        total += int(got.sum())
    assert np.asarray(ys).dtype == np.int32
    return ys, total


# ----------------------------------------------------------------------------- simulation


def test_paper_cnn_lowers_and_matches_the_oracle(read_paper):
    """The NIR paper's CNN (which the paper ran on Speck) lowers with no dt (Speck has no
    time constants) and its integer simulation equals the int64 oracle, layer by layer."""
    g = read_paper("cnn_sinabs")
    hw = _lower(g)
    assert hw.target == "speck" and hw.program.table is get_table("speck")
    assert hw.details.cores == (0, 1, 2, 3, 4)
    assert [q.threshold for q in hw.details.layers] == [72, 128, 205, 108, 197]
    xs = _events(rng_for("speck-target-paper"), (8, 3, 2, 34, 34), 0.2)
    ys, total = _check_against_oracle(hw, xs)
    assert total > 100 and np.asarray(ys).shape == (8, 3, 10)


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_random_cnns_match_the_oracle(seed):
    """Random CNNs (conv/linear, sum, average and chained pooling, with and without bias)."""
    hw = _lower(sh.chain_graph(*sh.random_chain(seed)), dt=1e-3)
    xs = _events(rng_for(f"speck-target-{seed}"), (7, 2) + hw.details.input_shape)
    _check_against_oracle(hw, xs)


def test_flat_input_and_bias_free_linear():
    """A flat input (sinabs sees (N, 1, 1)) into an Affine, then a Linear without bias."""
    rng = rng_for("speck-target-flat")
    g = chain((12,), (3,), ("fc0", nir.Affine(rng.normal(0, 1, (6, 12)).astype(F32),
                                             rng.normal(0, 0.2, 6).astype(F32))),
              ("if0", nir.IF(np.ones(6, F32), np.full(6, F32(1.3)), np.zeros(6, F32))),
              ("fc1", nir.Linear(rng.normal(0, 1, (3, 6)).astype(F32))),
              ("if1", nir.IF(np.ones(3, F32), np.full(3, F32(0.7)), np.zeros(3, F32))))
    hw = _lower(g)
    assert hw.details.input_shape == (12, 1, 1)
    _, total = _check_against_oracle(hw, _events(rng, (9, 4, 12), 0.5))
    assert total > 0


def test_a_compiled_model_and_fine_tuned_params_lower():
    """``lower(model)`` uses the model's parameters; ``params=`` overrides them. Scaling a
    layer's weights, bias and threshold by the same factor leaves its integers unchanged
    (one scale per layer), while scaling the threshold alone changes the integer threshold
    by that factor (up to rounding)."""
    g = sh.chain_graph(*sh.random_chain(3))
    model = nirjax.compile(g, dt=1e-3)
    base = _lower(model)
    conv, neuron = base.details.layers[0].layer.nodes["weight"], \
        base.details.layers[0].layer.nodes["neuron"]
    p = dict(model.params)
    same = {conv: p[conv]._replace(weight=p[conv].weight * 4, bias=p[conv].bias * 4),
            neuron: p[neuron]._replace(v_threshold=p[neuron].v_threshold * 4)}
    again = _lower(model, params=same)
    for q, r in zip(base.details.layers, again.details.layers):
        np.testing.assert_array_equal(q.weight, r.weight)
        assert q.threshold == r.threshold
    q0 = base.details.layers[0]
    # halve the threshold: if it set the scale, the weights double; else only theta halves
    half = _lower(model, params={neuron: p[neuron]._replace(v_threshold=p[neuron].v_threshold
                                                            / 2)})
    r0 = half.details.layers[0]
    thr = float(q0.layer.uniform_threshold()) / 2
    assert r0.threshold == int(np.rint(F32(thr) * r0.scale))


def test_flatten_order_of_the_semantics_does_not_matter(read_paper):
    """Speck reads Flatten C-major (sinabs' order) whatever the float semantics says."""
    g = read_paper("cnn_sinabs")
    xs = _events(rng_for("speck-target-hwc"), (4, 2, 2, 34, 34), 0.2)
    a = _lower(g)(xs)
    b = _lower(g, dt=1.0, semantics=nirjax.Semantics(flatten_order="hwc"))(xs)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ----------------------------------------------------------------------------- rules, errors


def test_violations_are_one_lowering_error(read_paper):
    """Every broken rule in one nirjax.LoweringError, records kept in ``violations``."""
    rng = rng_for("speck-target-bad")
    thr = np.ones((4, 4, 4), F32)
    thr[0, 0, 0] = 2.0
    g = chain((2, 12, 12), (4, 3, 3),
              ("conv", nir.Conv2d(None, rng.normal(0, 1, (4, 2, 3, 3)).astype(F32),
                                  np.array([3, 3]), np.array([0, 0]), np.array([1, 1]), 1,
                                  np.zeros(4, F32))),
              ("if1", nir.IF(np.ones((4, 4, 4), F32), thr, np.zeros((4, 4, 4), F32))),
              ("pool", nir.SumPool2d(np.array([2, 2]), np.array([1, 1]), np.array([0, 0]))))
    with pytest.raises(nirjax.LoweringError) as info:
        nirjax.lower(g, "speck")
    rules = {(v.node, v.rule) for v in info.value.violations}
    assert rules == {("conv", "stride"), ("if1", "one threshold per layer"),
                     ("pool", "pooling")}, rules
    assert info.value.target == "speck"
    msg = str(info.value)
    assert "node 'conv': stride: stride 3x3; allowed: 1, 2, 4, 8 per axis" in msg
    assert isinstance(info.value, nirjax.NirjaxError)


def test_unsupported_node_type_is_a_violation():
    g = chain((3,), (3,), ("fc", nir.Linear(np.eye(3, dtype=F32))),
              ("lif", nir.LIF(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3),
                              v_threshold=np.ones(3))))
    with pytest.raises(nirjax.LoweringError, match="node 'lif': node type: LIF") as info:
        nirjax.lower(g, "speck")
    assert [(v.node, v.rule) for v in info.value.violations] == [("lif", "node type")]


def test_inputs_are_validated(read_paper):
    hw = _lower(read_paper("cnn_sinabs"))
    x = np.zeros((2, 1, 2, 34, 34), np.float32)
    x[0, 0, 0, 0, 0] = 0.5
    with pytest.raises(nirjax.InputError, match="integer event counts"):
        hw(x)
    x[0, 0, 0, 0, 0] = -1
    with pytest.raises(nirjax.InputError, match=r"\[0, 16777216\]"):
        hw(x)


def test_speck_table_refuses_non_integer_graphs(read_paper):
    """The 'speck' rule table takes integer graphs only (the lowered, exported kind)."""
    with pytest.raises(nirjax.LoweringError, match="node '0' \\(Conv2d\\).*integers"):
        nirjax.compile(read_paper("cnn_sinabs"), dt=1.0,
                       semantics=nirjax.Semantics(arithmetic="speck"))
    assert set(get_table("speck")) <= set(get_table("float"))


# ----------------------------------------------------------------------------- range check


def test_float32_range_is_checked_after_each_run():
    """One big layer driven hard: partial sums beyond 2**24 warn, an ordinary run does not.

    A 1x1 convolution with 512 input channels of weight 127 and threshold 1: an input of
    300 events per element gives partial sums up to 512 * 300 * 127 = 19.5e6 > 2**24."""
    w = np.full((1, 512, 1, 1), 1.0, F32)
    g = chain((512, 2, 2), (1, 2, 2),
              ("c", nir.Conv2d(None, w, np.array([1, 1]), np.array([0, 0]), np.array([1, 1]),
                               1, np.zeros(1, F32))),
              ("n", nir.IF(np.ones((1, 2, 2), F32), np.full((1, 2, 2), F32(0.01)),
                           np.zeros((1, 2, 2), F32))))
    hw = _lower(g)
    q = hw.details.layers[0]
    assert int(q.weight.max()) == 127 and q.threshold == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hw(np.ones((2, 1, 512, 2, 2), np.int32))
    big = np.full((2, 1, 512, 2, 2), 300, np.int32)
    with pytest.warns(nirjax.errors.LoweringWarning, match="layer 'c' may have left float32"):
        hw(big)
    bad = speck_target.check_float32_range(hw.details, 300, [0])
    assert [b.name for b in bad] == ["c"] and bad[0].current == 512 * 300 * 127


def test_range_check_uses_the_observed_spike_counts(read_paper):
    """The paper CNN's worst case is not provably exact, yet a run with ordinary inputs is
    checked exact from the spike counts it produced (no warning)."""
    hw = _lower(read_paper("cnn_sinabs"))
    assert not all(b.float32_exact for b in sq.count_bounds(hw.details, 1))
    assert any("runs are checked" in n for n in hw.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hw(_events(rng_for("speck-range"), (6, 2, 2, 34, 34), 0.3))


# ----------------------------------------------------------------------------- reports, files


def test_resources_and_report(read_paper):
    hw = _lower(read_paper("cnn_sinabs"))
    res = hw.resources
    layers = [k for k in res if k != "total"]
    assert layers == ["0", "2", "5", "9", "11"]
    assert res["total"]["cores"] == {"used": 5, "limit": 9}
    for kind, j in (("kernel", 0), ("neuron", 1), ("bias", 2)):
        key = f"{kind} memory words"
        assert res["total"][key]["used"] == sum(res[k][key]["used"] for k in layers)
        for k, core in zip(layers, hw.details.cores):
            assert res[k][key]["limit"] == sq.CORE_MEMORY[core][j]
    # the paper CNN's first layer: 2 -> 16 channels, 5x5 kernel, 16x16 map, with bias
    assert res["0"]["kernel memory words"]["used"] == 2 * 2 ** (5 + 4)
    assert res["0"]["neuron memory words"]["used"] == 16 * 2 ** (4 + 4)
    assert res["0"]["neurons"]["used"] == 16 * 16 * 16
    text = hw.report()
    for needle in ("core 3", "threshold 108", "scale set by the weights", "min_v_mem",
                   "kernel memory words", "semantics='sinabs'"):
        assert needle in text, needle
    names = {m.node for m in hw.mapping}
    assert names == set(read_paper("cnn_sinabs").nodes)


def test_export_and_to_nir_round_trip(tmp_path, read_paper):
    """export writes the discretized .nir and the core/memory JSON; the .nir compiled with
    the 'speck' table simulates exactly as hw, and lowering it again changes nothing."""
    g = read_paper("cnn_sinabs")
    hw = _lower(g)
    hw.export(tmp_path / "cnn.nir")
    assert (tmp_path / "cnn.nir").exists()
    with open(tmp_path / "cnn.speck.json") as f:
        info = json.load(f)
    assert [layer["core"] for layer in info["layers"]] == [0, 1, 2, 3, 4]
    back = nirjax.read(tmp_path / "cnn.nir")
    model = nirjax.compile(back, dt=1.0, semantics=nirjax.Semantics(arithmetic="speck"))
    xs = _events(rng_for("speck-export"), (5, 2, 2, 34, 34), 0.2)
    np.testing.assert_array_equal(np.asarray(model(xs)), np.asarray(hw(xs)))
    again = _lower(back)
    for q, r in zip(hw.details.layers, again.details.layers):
        np.testing.assert_array_equal(q.weight, r.weight)
        assert float(r.scale) == 1.0
    g2 = hw.to_nir()
    np.testing.assert_array_equal(np.asarray(g2.nodes["0"].weight), hw.details.layers[0].weight)


def test_average_pooling_at_the_end_warns_and_sums():
    """A final AvgPool2d has no next layer to fold 1/(kh*kw) into: the chip outputs window
    sums, with a warning saying by how much that differs."""
    rng = rng_for("speck-target-avg")
    g = chain((2, 8, 8), (12 * 4 * 4,),
              ("c", nir.Conv2d(None, rng.normal(0, 1, (12, 2, 3, 3)).astype(F32),
                               np.array([1, 1]), np.array([1, 1]), np.array([1, 1]), 1,
                               rng.normal(0, 0.1, 12).astype(F32))),
              ("n", nir.IF(np.ones((12, 8, 8), F32), np.full((12, 8, 8), F32(0.8)),
                           np.zeros((12, 8, 8), F32))),
              ("p", nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))),
              ("f", nir.Flatten({"input": np.array([12, 4, 4])}, 0, -1)))
    with pytest.warns(nirjax.errors.LoweringWarning, match="'p'.*4 times the float graph"):
        hw = nirjax.lower(g, "speck")
    x = _events(rng, (6, 2, 2, 8, 8))
    spikes, _ = oracle(hw.details, x)
    want = np.stack([np.stack([_sum_pool(spikes[0][t, b], (2, 2)).reshape(-1)
                               for b in range(2)]) for t in range(6)])
    np.testing.assert_array_equal(np.asarray(hw(x)), want)
    assert any("AvgPool2d 'p' runs as sum pooling" in n for n in hw.notes)


def test_lower_command_writes_the_speck_files(tmp_path):
    """``nirjax lower cnn.nir --target speck -o out.nir`` (no --dt: Speck needs none)."""
    import argparse

    from builders import paper_path
    from nirjax.cli import lower as command

    args = command.add_arguments(argparse.ArgumentParser()).parse_args(
        [str(paper_path("cnn_sinabs")), "--target", "speck", "-o", str(tmp_path / "cnn.nir")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        assert command.run(args) == 0
    assert (tmp_path / "cnn.nir").exists() and (tmp_path / "cnn.speck.json").exists()


# ----------------------------------------------------------------------------- fine-tuning


def test_hardware_aware_transform_rounds_to_the_chip_integers(read_paper):
    """``train.hardware_aware(model, "speck")``: the transformed parameters are the values
    the chip represents (lowering them gives the same integers as lowering the originals,
    on the paper CNN and random CNNs), thresholds are one per layer even after training
    moved them apart, and gradients pass straight through."""
    import jax
    import jax.numpy as jnp

    from nirjax import train

    graphs = [read_paper("cnn_sinabs")] + [sh.chain_graph(*sh.random_chain(s))
                                           for s in (1, 5, 8)]
    for g in graphs:
        model = nirjax.compile(g, dt=1.0, semantics=nirjax.lowering.TARGETS["speck"]
                               .semantics(g))
        transform = train.hardware_aware(model, "speck")
        base = _lower(model)
        tuned = _lower(model, params=transform(model.params))
        for q, r in zip(base.details.layers, tuned.details.layers):
            np.testing.assert_array_equal(q.weight, r.weight)
            assert q.threshold == r.threshold and q.min_v_mem == r.min_v_mem
            if q.bias is not None:
                np.testing.assert_array_equal(q.bias, r.bias)
            # the transformed weights are the integers over the layer's scale
            w = np.asarray(transform(model.params)[q.name].weight, np.float64)
            np.testing.assert_allclose(w * q.layer.rescale * float(q.scale),
                                       q.weight.reshape(w.shape), atol=1e-3)
    model = nirjax.compile(read_paper("cnn_sinabs"), dt=1.0, semantics="sinabs")
    transform = train.hardware_aware(model, "speck")
    p = dict(model.params)
    p["1"] = p["1"]._replace(v_threshold=p["1"].v_threshold.at[0, 0, 0].set(1.3))
    hw = _lower(model, params=transform(p))  # one threshold per layer again: it lowers
    assert hw.details.layers[0].threshold > 0
    grad = jax.grad(lambda q: jnp.sum(transform(q)["0"].weight)
                    + jnp.sum(transform(q)["1"].v_threshold))(model.params)
    np.testing.assert_array_equal(np.asarray(grad["0"].weight), 1.0)
    np.testing.assert_array_equal(np.asarray(grad["1"].v_threshold), 1.0)
