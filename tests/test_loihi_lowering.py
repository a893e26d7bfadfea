"""The ``loihi2`` target through the public API: ``nirjax.lower(graph, "loihi2", dt)``.

The integer simulation (``hw(xs)``, ``hw.run(..., record=...)``) is checked against an
independent oracle: a NumPy int64 loop written from Lava 0.10's fixed-point update equations
that reads the exported netx file with h5py (``tests/loihi_cases.py:netx_oracle``); the
paper's LIF task against the published Loihi 2 chip and Lava CPU traces; design rules,
warnings, resources, ``to_nir`` and input checks through the same public calls. Lava itself
runs the exported files in ``tests/test_loihi_lowering_vendor.py``.
"""

from __future__ import annotations

import pathlib
import warnings

import nir
import numpy as np
import pytest

import nirjax
from loihi_cases import (cuba, g_conv, g_delays, g_direct, g_mlp, g_random, g_recurrent, graph,
                         if_, lif, netx_oracle, rng_for)
from nirjax.lowering import TARGETS

DATA = pathlib.Path(__file__).parent / "data" / "paper"
DT = 1e-3
PAPER_STEPS = [461, 511, 711, 761]


def lower_quiet(g, dt=DT, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.LoweringWarning)
        return nirjax.lower(g, "loihi2", dt=dt, **options)


def read_quiet(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nirjax.read(nirjax.example_path(name))


def spikes_in(rng, hw, steps=40, batch=3, p=0.3):
    shape = next(iter(hw.model.input_shapes.values()))
    return (rng.random((steps, batch) + tuple(shape)) < p).astype(np.int64)


def layer_names(hw):
    return [q.name for q in hw.details.layers]


def assert_equals_oracle(hw, xs, tmp_path, case):
    path = tmp_path / f"{case}.net"
    hw.export(path)
    ref_s, ref_u, ref_v = netx_oracle(path, xs)
    names = layer_names(hw)
    ys, rec = hw.run(xs, record=names + [(n, "u") for n in names] + [(n, "v") for n in names])
    for k, n in enumerate(names):
        got = np.asarray(rec[n])
        diff = np.argwhere(got != ref_s[k])
        assert diff.size == 0, f"{case} {n}: first differing spike at {tuple(diff[0])}"
        np.testing.assert_array_equal(np.asarray(rec[(n, "u")]), ref_u[k], err_msg=f"{case} {n} u")
        np.testing.assert_array_equal(np.asarray(rec[(n, "v")]), ref_v[k], err_msg=f"{case} {n} v")
        assert ref_s[k].sum() > 0, f"{case} {n}: no spikes (vacuous)"
    np.testing.assert_array_equal(np.asarray(ys), ref_s[-1])
    assert np.asarray(ys).dtype == np.int32


# ----------------------------------------------------------------------------- simulation


def test_registered_with_its_option():
    t = TARGETS["loihi2"]
    assert t.family == "loihi" and set(t.options) == {"scale"}


@pytest.mark.parametrize("case", ["mlp", "recurrent", "delays", "conv", "direct", "braille"])
def test_integer_simulation_equals_the_netx_oracle(case, tmp_path):
    """Every layer's spikes, current and voltage at every step equal the int64 loop of Lava's
    update run on the exported file."""
    rng = rng_for(f"oracle-{case}")
    if case == "braille":
        g, dt = read_quiet("braille_bias_zero"), 1e-4
    else:
        g, dt = {"mlp": lambda: g_mlp(rng), "recurrent": lambda: g_recurrent(rng),
                 "delays": lambda: g_delays(rng, DT), "conv": lambda: g_conv(rng),
                 "direct": lambda: g_direct(rng)}[case](), DT
    hw = lower_quiet(g, dt)
    xs = spikes_in(rng, hw, steps=30 if case == "conv" else 50, batch=2 if case == "conv" else 3)
    assert_equals_oracle(hw, xs, tmp_path, case)


@pytest.mark.parametrize("seed", range(4))
def test_random_chains_equal_the_netx_oracle(seed, tmp_path):
    rng = rng_for(f"random-chain-{seed}")
    g = g_random(rng, DT)
    hw = lower_quiet(g)
    xs = spikes_in(rng, hw, steps=60, p=0.4)
    path = tmp_path / "net.net"
    hw.export(path)
    ref_s, ref_u, ref_v = netx_oracle(path, xs)
    names = layer_names(hw)
    _, rec = hw.run(xs, record=names + [(n, "v") for n in names])
    for k, n in enumerate(names):
        np.testing.assert_array_equal(np.asarray(rec[n]), ref_s[k], err_msg=n)
        np.testing.assert_array_equal(np.asarray(rec[(n, "v")]), ref_v[k], err_msg=n)


def test_one_step_of_latency_per_weight_layer():
    """A single input spike reaches layer k after k steps; hw.latency says so."""
    g = graph({"input": nir.Input(input_type=np.array([1])),
               "w1": nir.Linear(weight=np.array([[1.0]], np.float32)), "a": if_(1, thr=0.5),
               "w2": nir.Linear(weight=np.array([[1.0]], np.float32)), "b": if_(1, thr=0.5),
               "output": nir.Output(output_type=np.array([1]))},
              [("input", "w1"), ("w1", "a"), ("a", "w2"), ("w2", "b"), ("b", "output")])
    hw = lower_quiet(g)
    xs = np.zeros((6, 1, 1), np.int64)
    xs[0] = 1
    ys, rec = hw.run(xs, record=["a", "b"])
    assert np.flatnonzero(np.asarray(rec["a"]).ravel()).tolist() == [1]
    assert np.flatnonzero(np.asarray(ys).ravel()).tolist() == [2]
    assert hw.latency == {"a": 1, "b": 2, "output": 2}


def test_paper_lif_task_reproduces_the_loihi2_chip_trace():
    """lif_norse.nir lowered at dt = 1e-4 spikes where the Loihi 2 chip did (461, 511, 711,
    761), with both mappings; scale='paper' also gives Lava's CPU fixed-point voltage."""
    g = read_quiet("lif_norse")
    chip = np.loadtxt(DATA / "lif_lava_loihi_fixed.csv", delimiter=",")
    cpu = np.loadtxt(DATA / "lif_lava_cpu_fixed.csv", delimiter=",")
    xs = chip[:, 0].reshape(-1, 1, 1).astype(np.int64)
    for scale in ("auto", "paper"):
        hw = lower_quiet(g, 1e-4, scale=scale)
        ys, rec = hw.run(xs, record=[("1", "v")])
        assert np.flatnonzero(np.asarray(ys).ravel()).tolist() == PAPER_STEPS, scale
        np.testing.assert_array_equal(np.asarray(ys).ravel() != 0, chip[:, 2] != 0)
        if scale == "paper":
            np.testing.assert_array_equal(np.asarray(rec[("1", "v")]).ravel(), cpu[:, 1])


def test_lava_fixed_profile_is_the_same_arithmetic():
    """The lava_fixed profile (the importer's integers) and loihi2 with scale='paper' give the
    paper LIF task the same voltage trace, through the same CUBA kernel."""
    g = read_quiet("lif_norse")
    cpu = np.loadtxt(DATA / "lif_lava_cpu_fixed.csv", delimiter=",")
    xs = cpu[:, 0].reshape(-1, 1, 1)
    model = nirjax.compile(g, dt=1e-4, semantics="lava_fixed")
    _, _, rec = model.run(model.params, xs.astype(np.float32), record=[("1", "v")])
    np.testing.assert_array_equal(np.asarray(rec[("1", "v")]).ravel(), cpu[:, 1])
    assert model.program.table is nirjax.rules.get_table("loihi")
    hw = lower_quiet(g, 1e-4, scale="paper")
    assert hw.program.table is model.program.table


def test_lava_fixed_profile_refuses_what_its_importer_cannot_map():
    g = graph({"input": nir.Input(input_type=np.array([2])),
               "fc": nir.Linear(weight=np.eye(2, dtype=np.float32)), "n": if_(2),
               "output": nir.Output(output_type=np.array([2]))},
              [("input", "fc"), ("fc", "n"), ("n", "output")])
    with pytest.raises(nirjax.LoweringError, match=r"IF node 'n'.*nirjax.lower\(graph, 'loihi2'"):
        nirjax.compile(g, dt=DT, semantics="lava_fixed")
    assert np.asarray(lower_quiet(g)(np.ones((3, 1, 2), np.int64))).shape == (3, 1, 2)


# ----------------------------------------------------------------------------- design rules


def test_every_violation_in_one_lowering_error():
    """Structure, parameter and integer-range violations of every layer come together, each
    naming node, rule, the chip's limit and the graph's value."""
    rng = rng_for("violations")
    nodes = {
        "input": nir.Input(input_type=np.array([4])),
        "d": nir.Delay(delay=np.full(4, 0.1, np.float32)),              # 100 steps > 62
        "fc0": nir.Linear(weight=rng.normal(0, 1, (3, 4)).astype(np.float32)),
        "n0": nir.LIF(tau=np.full(3, 2e-3, np.float32), r=np.ones(3, np.float32),
                      v_leak=np.zeros(3, np.float32), v_threshold=np.ones(3, np.float32),
                      v_reset=np.full(3, 0.3, np.float32)),             # reset not to 0
        "fc1": nir.Affine(weight=rng.normal(0, 1, (2, 3)).astype(np.float32),
                          bias=np.full(2, 1e5, np.float32)),           # bias beyond 13 bits
        "n1": lif(2, 5e-3),
        "fc2": nir.Linear(weight=rng.normal(0, 1, (2, 2)).astype(np.float32)),
        "n2": lif(2, 5e-4),                                             # tau below dt
        "li": nir.LI(tau=np.full(2, 1e-2, np.float32), r=np.ones(2, np.float32),
                     v_leak=np.zeros(2, np.float32)),                   # no netx layer
        "output": nir.Output(output_type=np.array([2])),
    }
    edges = [("input", "d"), ("d", "fc0"), ("fc0", "n0"), ("n0", "fc1"), ("fc1", "n1"),
             ("n1", "fc2"), ("fc2", "n2"), ("n2", "li"), ("li", "output")]
    with pytest.raises(nirjax.LoweringError) as info:
        nirjax.lower(graph(nodes, edges), "loihi2", dt=DT)
    err = info.value
    assert err.target == "loihi2" and isinstance(err, nirjax.NirjaxError)
    found = {(v.node, v.rule): v for v in err.violations}
    assert found[("d", "delay-max")].limit == 62 and found[("d", "delay-max")].value == 100
    assert found[("n0", "reset-to-zero")].value == pytest.approx(0.3)
    assert ("n1", "bias-range") in found or ("fc1", "bias-range") in found
    assert found[("n2", "decay-range")].value == pytest.approx(5e-4)
    assert ("li", "node-type") in found
    text = str(err)
    for node in ("'d'", "'n0'", "'n2'", "'li'"):
        assert f"node {node}" in text
    assert text.count("\n") == len(err.violations)


@pytest.mark.parametrize("steps,ok", [(62, True), (63, False)])
def test_delays_beyond_62_steps_are_an_error(steps, ok):
    g = graph({"input": nir.Input(input_type=np.array([2])),
               "d": nir.Delay(delay=np.array([0.0, steps * DT], np.float32)),
               "fc": nir.Linear(weight=np.eye(2, dtype=np.float32)), "n": lif(2, 5e-3, 0.1),
               "output": nir.Output(output_type=np.array([2]))},
              [("input", "d"), ("d", "fc"), ("fc", "n"), ("n", "output")])
    if ok:
        hw = lower_quiet(g)
        xs = np.zeros((70, 1, 2), np.int64)
        xs[0] = 1
        ys = np.asarray(hw(xs))[:, 0]
        assert np.flatnonzero(ys[:, 0]).tolist() == [1] and np.flatnonzero(ys[:, 1]).tolist() == [
            steps + 1]
        return
    with pytest.raises(nirjax.LoweringError) as info:
        nirjax.lower(g, "loihi2", dt=DT)
    (v,) = info.value.violations
    assert (v.node, v.rule, v.limit, v.value) == ("d", "delay-max", 62, 63)


def test_approximations_warn_saying_what_and_how_much():
    g = graph({"input": nir.Input(input_type=np.array([3])),
               "fc": nir.Affine(weight=np.eye(3, dtype=np.float32),
                                bias=np.array([0.2, 0.0, 0.1], np.float32)),
               "c": cuba(3, 2e-3, 4e-3), "output": nir.Output(output_type=np.array([3]))},
              [("input", "fc"), ("fc", "c"), ("c", "output")])
    with pytest.warns(nirjax.LoweringWarning, match=r"membrane bias.*tau_syn \(2 steps\).*0\.1 "
                                                    r"threshold"):
        hw = nirjax.lower(g, "loihi2", dt=DT)
    assert len(hw.warnings) == 1 and "Warnings (approximations)" in hw.report()


def test_current_wrap_warning():
    """A layer whose 24-bit current can pass 2**23 says by how much."""
    n_in = 800
    g = graph({"input": nir.Input(input_type=np.array([n_in])),
               "fc": nir.Linear(weight=np.ones((2, n_in), np.float32)), "n": if_(2, thr=1.0),
               "output": nir.Output(output_type=np.array([2]))},
              [("input", "fc"), ("fc", "n"), ("n", "output")])
    with pytest.warns(nirjax.LoweringWarning, match="current can wrap"):
        hw = nirjax.lower(g, "loihi2", dt=DT)
    xs = np.ones((3, 1, n_in), np.int64)
    _, rec = hw.run(xs, record=[("n", "u")])
    w = int(hw.details.layers[0].weight[0, 0])
    u = w * n_in * 64
    expected = u - 2 ** 24 if u > 2 ** 23 else u
    assert int(np.asarray(rec[("n", "u")])[1, 0, 0]) == expected


# ----------------------------------------------------------------------------- the rest of the API


def test_report_resources_and_export(tmp_path):
    rng = rng_for("resources")
    hw = lower_quiet(g_recurrent(rng))
    r = hw.resources
    assert r["lif1"]["neurons"] == {"used": 10, "limit": 1_048_576}
    assert r["fc1"]["synapses"]["used"] == np.count_nonzero(hw.details.layers[0].weight)
    assert r["w_rec"]["synapses"]["used"] == np.count_nonzero(hw.details.layers[0].weight_rec)
    total = r["total"]
    assert total["neurons"]["used"] == 14 and total["cores"] == {"used": 2, "limit": 128}
    assert total["synapses"]["used"] == sum(r[k]["synapses"]["used"]
                                            for k in ("fc1", "w_rec", "fc2"))
    # memory words: one per stored weight, 6 per neuron (an estimate, labelled)
    assert total["memory words"]["used"] == total["synapses"]["used"] + 6 * 14
    text = hw.report()
    for key in ("neurons", "synapses", "memory words", "cores", "estimate",
                "Intel Loihi 2 technology brief", "vThMant", "iDecay", "lif1 weight"[:4]):
        assert key in text, key
    hw.export(tmp_path / "net.net")
    from nirjax.lowering.loihi.netx import read_netx
    f = read_netx(tmp_path / "net.net")["layers"]
    assert [x["type"] for x in f] == ["input", "dense_rec", "dense"]


def test_to_nir_holds_the_integers_and_compiles():
    rng = rng_for("to-nir")
    hw = lower_quiet(g_mlp(rng))
    g = hw.to_nir()
    q = {layer.name: layer for layer in hw.details.layers}
    assert set(g.nodes) == {"input", "fc1", "lif1", "fc2", "cuba2", "fc3", "if3", "output"}
    np.testing.assert_array_equal(g.nodes["fc2"].weight, q["cuba2"].weight)
    assert isinstance(g.nodes["if3"], nir.IF) and isinstance(g.nodes["lif1"], nir.LIF)
    assert isinstance(g.nodes["cuba2"], nir.CubaLIF)
    np.testing.assert_array_equal(g.nodes["lif1"].v_threshold, q["lif1"].v_th)
    np.testing.assert_allclose(DT / g.nodes["lif1"].tau, q["lif1"].v_decay / 4096)
    np.testing.assert_allclose(DT / g.nodes["cuba2"].tau_syn, q["cuba2"].i_decay / 4096)
    # the IF's bias rides on its weight node, in units of the threshold mantissa
    np.testing.assert_array_equal(g.nodes["fc3"].bias, q["if3"].bias)
    model = nirjax.compile(g, dt=DT)
    xs = spikes_in(rng, hw, steps=10)
    assert np.asarray(model(xs.astype(np.float32))).shape == (10, 3, 6)


def test_to_nir_of_the_lif_task_is_lavas_update_in_real_arithmetic():
    """With iDecay = 4096 and no truncation at play, the to_nir graph under the NIR spec's
    Euler update spikes where the integer simulation does, one step earlier (no latency)."""
    g = read_quiet("lif_norse")
    hw = lower_quiet(g, 1e-4)
    chip = np.loadtxt(DATA / "lif_lava_loihi_fixed.csv", delimiter=",")
    xs = chip[:, 0].reshape(-1, 1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nirjax.compile(hw.to_nir(), dt=1e-4)
    z = np.asarray(model(xs.astype(np.float32))).ravel()
    assert (np.flatnonzero(z) + 1).tolist() == PAPER_STEPS


def test_inputs_are_binary_spikes():
    hw = lower_quiet(g_recurrent(rng_for("inputs")))
    with pytest.raises(nirjax.InputError, match=r"\[0, 1\]"):
        hw(np.full((3, 1, 8), 2))
    with pytest.raises(nirjax.InputError):
        hw(np.full((3, 1, 8), 0.5))


def test_records_by_graph_names_and_subgraph_aliases():
    g = read_quiet("braille_subtract")
    hw = lower_quiet(g, 1e-4)
    xs = spikes_in(rng_for("braille-rec"), hw, steps=20, batch=2)
    _, rec = hw.run(xs, record=["lif1", ("lif1", "v"), "lif1.lif", "fc1"])
    np.testing.assert_array_equal(np.asarray(rec["lif1"]), np.asarray(rec["lif1.lif"]))
    assert np.asarray(rec[("lif1", "v")]).shape == (20, 2, 40)
    assert np.asarray(rec["fc1"]).shape == (20, 2, 40)


def test_params_override_and_compare():
    """Lowering a compiled model takes its (fine-tuned) params; compare aligns the latency."""
    rng = rng_for("params")
    g = g_recurrent(rng)
    model = nirjax.compile(g, dt=DT)
    hw = lower_quiet(model)
    params = dict(model.params)
    params["fc2"] = params["fc2"]._replace(weight=-np.asarray(params["fc2"].weight))
    hw2 = lower_quiet(model, params=params)
    w, w2 = hw.details.layers[1].weight, hw2.details.layers[1].weight
    np.testing.assert_array_equal(np.sign(w2), -np.sign(w))
    np.testing.assert_array_equal(hw2.details.layers[0].weight, hw.details.layers[0].weight)
    xs = spikes_in(rng, hw, steps=40)
    c = nirjax.compare(model, hw, xs)
    assert set(c.nodes) >= {"lif1", "lif2"}
    assert 0.5 < c.agreement(hw.target) <= 1.0


def test_semantics_of_a_compiled_model_are_noted():
    rng = rng_for("sem")
    model = nirjax.compile(g_recurrent(rng), dt=DT, semantics="lava")
    hw = lower_quiet(model)
    assert any("'lava'" in n for n in hw.notes)
    # the model's own latency Delays are not lowered twice: one per weight node
    assert sorted(n.name for n in hw.program.nodes if n.type_name == "Delay") == [
        "fc1->lif1", "fc2->lif2", "w_rec->lif1"]
