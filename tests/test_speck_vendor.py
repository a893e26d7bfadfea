"""Speck lowering against sinabs 3.1.3's DYNAP-CNN backend, the vendor toolchain.

sinabs runs in its own environment (``tests/peers/setup_peers.sh``, env ``sinabs``) in one
subprocess (``tests/peers/speck_runner.py``, with ``samna`` blocked); it builds the same
networks the way its users do (``sinabs.from_nir`` for the NIR paper's CNN, ``nn.Sequential``
of torch layers for seeded random CNNs), discretizes them with ``DynapcnnNetwork(...,
discretize=True)``, maps them with the Speck 2F builder's ``map_layers_to_cores`` and runs
its forward. ``nirjax.lower(graph, "speck")`` must give the same integer weights, biases,
thresholds, lower clamps, memory words and core map, and its integer simulation (``hw.run``:
the ``"speck"`` rule table in the compiled scan, batched and jitted) the same spike counts
per layer and step, and the same output, with no float32 range warning.

A missing environment skips these tests with the reason; with ``NIRJAX_PEERS_REQUIRED=1`` it
is a failure instead.
"""

from __future__ import annotations

import os
import sys
import warnings

import nir
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
import speck_harness as sh  # noqa: E402

import nirjax  # noqa: E402
from nirjax.lowering.speck import from_nir as speck_nir, quantize as sq  # noqa: E402

pytestmark = pytest.mark.peers

REQUIRED = os.environ.get("NIRJAX_PEERS_REQUIRED") == "1"
CHAIN_SEEDS = list(range(10))
MAPPING_PROBLEMS = 60
T, B = 9, 3
_CACHE: dict = {}


def _events(rng, shape, p=0.3, most=3):
    """Input event counts: Bernoulli(p) pixels with 1..most events."""
    return ((rng.random(shape) < p) * rng.integers(1, most + 1, shape)).astype(np.float32)


def _paper_graph():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pre-1.0.6 file: reset ambiguity
        return nirjax.read(sh.PAPER_CNN)


def _mapping_problem(rng):
    """Random layer sizes: small layers that fit every core, kernel-heavy ones (16-64 Ki
    kernel words: cores 3-6), neuron-heavy ones (16-64 Ki neuron words: cores 0-4) and a few
    that fit no core; 1-10 layers."""
    dims = []
    n = int(rng.choice(np.arange(1, 11), p=[.1, .1, .15, .15, .15, .1, .08, .07, .05, .05]))
    for _ in range(n):
        kind = rng.choice(["small", "kernel", "neuron", "huge"], p=[0.6, 0.18, 0.18, 0.04])
        if kind == "small":
            c_in, c_out = rng.choice([1, 2, 8, 16]), rng.choice([2, 8, 16])
            k, hw = rng.choice([1, 3, 5]), rng.choice([4, 8, 16, 30])
        elif kind == "kernel":
            c_in, c_out = rng.choice([32, 64, 128]), rng.choice([32, 64, 100])
            k, hw = rng.choice([3, 4]), rng.choice([4, 8, 16])
        elif kind == "neuron":
            c_in, c_out = rng.choice([1, 2, 4]), rng.choice([8, 16, 24, 32])
            k, hw = rng.choice([1, 3]), rng.choice([32, 64, 100])
        else:
            c_in, c_out, k, hw = 64, rng.choice([64, 128]), 5, 128
        hw = max(int(hw), int(k))
        dims.append({"c_in": int(c_in), "c_out": int(c_out), "kernel": int(k),
                     "in_shape": [int(c_in), hw, hw], "stride": int(rng.choice([1, 1, 2])),
                     "bias": bool(rng.random() < 0.7)})
    return dims


def _dense_chain():
    """Flatten -> Affine -> IF -> Linear (no bias) -> IF: a Linear as the first layer (its
    kernel is the whole 2x4x4 input) and a bias-free layer."""
    rng = np.random.default_rng(5)
    arrays = {"w0": rng.normal(0, 1, (6, 32)).astype(np.float32),
              "b0": rng.normal(0, 0.2, 6).astype(np.float32),
              "w1": rng.normal(0, 1, (3, 6)).astype(np.float32)}
    layers = [{"type": "Flatten", "name": "flat"},
              {"type": "Affine", "name": "fc0", "weight": "w0", "bias": "b0"},
              {"type": "IF", "name": "if0", "threshold": 1.3, "min_v_mem": -1.3},
              {"type": "Linear", "name": "fc1", "weight": "w1", "bias": None},
              {"type": "IF", "name": "if1", "threshold": 0.7, "min_v_mem": -0.7}]
    return (2, 4, 4), layers, arrays


def _flat_input_graph():
    """The dense chain on a flat input of 32 (no Flatten node): sinabs is given (32, 1, 1)."""
    _, layers, arrays = _dense_chain()
    f = np.float32
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([32])),
               "fc0": nir.Affine(arrays["w0"], arrays["b0"]),
               "if0": nir.IF(np.ones(6, f), np.full(6, f(1.3)), np.zeros(6, f)),
               "fc1": nir.Linear(arrays["w1"]),
               "if1": nir.IF(np.ones(3, f), np.full(3, f(0.7)), np.zeros(3, f)),
               "output": nir.Output(np.array([3]))},
        edges=[("input", "fc0"), ("fc0", "if0"), ("if0", "fc1"), ("fc1", "if1"),
               ("if1", "output")])


def _jobs():
    rng = np.random.default_rng(2024)
    jobs = [{"id": "paper", "graph": str(sh.PAPER_CNN), "input_shape": [2, 34, 34],
             "x": _events(rng, (T, B, 2, 34, 34), 0.2)}]
    dense = _dense_chain()
    x = _events(rng, (T, B, 2, 4, 4), 0.4)
    jobs.append({"id": "dense", "chain": dense, "x": x})
    jobs.append({"id": "flat_input", "chain": ((32, 1, 1),) + dense[1:],
                 "x": x.reshape(T, B, 32, 1, 1)})
    for seed in CHAIN_SEEDS:
        chain = sh.random_chain(seed)
        jobs.append({"id": f"chain{seed}", "chain": chain,
                     "x": _events(np.random.default_rng(100 + seed), (T, B) + chain[0])})
    for i in range(MAPPING_PROBLEMS):
        jobs.append({"id": f"map{i}", "mapping": _mapping_problem(rng)})
    return jobs


def _sinabs():
    """All jobs, run once in the sinabs environment."""
    if "results" not in _CACHE:
        if sh.sinabs_python() is None:
            _CACHE["results"] = None
        else:
            jobs = _jobs()
            results, versions = sh.run_sinabs(jobs)
            _CACHE["results"] = ({j["id"]: j for j in jobs}, results, versions)
    if _CACHE["results"] is None:
        msg = (f"sinabs environment not found under {sh.harness.peers_dir()}: build it with "
               "tests/peers/setup_peers.sh")
        if REQUIRED:
            pytest.fail(msg + " (NIRJAX_PEERS_REQUIRED=1)")
        pytest.skip(msg)
    return _CACHE["results"]


def _result(job_id):
    jobs, results, _ = _sinabs()
    res = results[job_id]
    assert res.error is None, res.error
    return jobs[job_id], res


def _assert_same_layers(network, res):
    """Integer parameters, memory and cores equal sinabs'."""
    assert len(network.layers) == len(res.meta["layers"])
    for i, q in enumerate(network.layers):
        theirs = res.arrays[f"weight{i}"]
        np.testing.assert_array_equal(q.weight, theirs.reshape(q.weight.shape),
                                      err_msg=f"layer {i} ({q.name}) weights")
        assert theirs.shape[2:] == q.weight.shape[2:] or q.layer.kind == "linear"
        if q.bias is None:
            assert f"bias{i}" not in res.arrays
        else:
            np.testing.assert_array_equal(q.bias, res.arrays[f"bias{i}"],
                                          err_msg=f"layer {i} bias")
        assert q.threshold == res.arrays["threshold"][i], i
        assert q.min_v_mem == res.arrays["min_v_mem"][i], i
        assert tuple(q.memory) == tuple(res.arrays["memory"][i]), i
        meta = res.meta["layers"][i]
        assert list(q.layer.in_shape) == meta["in_shape"]
        assert list(q.layer.neuron_shape) == meta["neuron_shape"]
        assert list(q.layer.pool_total) == (meta["pool"][0] if meta["pool"] else [1, 1])
        assert q.layer.rescale == meta["rescale_weights"]
    assert res.meta["mapping_error"] is None
    assert network.cores == tuple(int(c) for c in res.arrays["cores"])


def _lower(graph):
    """``nirjax.lower(graph, "speck")``; any warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return nirjax.lower(graph, "speck")


def _assert_same_spikes(hw, job, res):
    """``hw.run`` records every IF: the spike counts of every layer at every step equal
    sinabs', and so does the output (the last layer's pooled spikes). The run's float32
    range check must pass (a warning would be an error here)."""
    neurons = [q.layer.nodes["neuron"] for q in hw.details.layers]
    x = job["x"].reshape(job["x"].shape[:2] + hw.model.input_shapes[hw.input_names[0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ys, rec = hw.run(x, record=neurons)
    total = 0
    for i, n in enumerate(neurons):
        theirs = res.arrays[f"spikes{i}"]
        ours = np.asarray(rec[n])
        assert ours.dtype == np.int32
        np.testing.assert_array_equal(ours.reshape(theirs.shape), theirs,
                                      err_msg=f"layer {i} ({n!r}) spike counts")
        total += int(ours.sum())
    np.testing.assert_array_equal(np.asarray(ys).reshape(res.arrays["out"].shape),
                                  res.arrays["out"])
    return total


def test_sinabs_environment():
    """The pinned sinabs runs, and samna was never imported."""
    _, _, versions = _sinabs()
    assert versions["sinabs"] == "3.1.3"
    assert versions["samna_blocked"] is True


def test_paper_cnn_equals_sinabs():
    """The NIR paper's CNN (which the paper ran on Speck): same integers, memory, cores
    (0..4) and spike counts of every layer at every step as sinabs' discretized network."""
    job, res = _result("paper")
    hw = _lower(_paper_graph())
    _assert_same_layers(hw.details, res)
    assert hw.details.cores == (0, 1, 2, 3, 4)
    assert _assert_same_spikes(hw, job, res) > 100


@pytest.mark.slow
@pytest.mark.parametrize("seed", CHAIN_SEEDS)
def test_random_cnn_equals_sinabs(seed):
    """Seeded random CNNs (conv/linear, sum and average pooling, chained pooling, layers with
    and without bias, threshold-, bias- and weight-limited scales): same integers, memory,
    cores and spike counts per layer and step."""
    job, res = _result(f"chain{seed}")
    hw = _lower(sh.chain_graph(*job["chain"]))
    _assert_same_layers(hw.details, res)
    _assert_same_spikes(hw, job, res)


@pytest.mark.parametrize("case", ["dense", "flat_input"])
def test_dense_layers_equal_sinabs(case):
    """A Linear as the first layer (a convolution over the whole input map), a bias-free
    Linear, and a flat input: same integers, memory, cores and spikes."""
    job, res = _result(case)
    g = sh.chain_graph(*job["chain"]) if case == "dense" else _flat_input_graph()
    hw = _lower(g)
    network = hw.details
    assert network.input_shape == tuple(job["chain"][0])
    _assert_same_layers(network, res)
    assert network.layers[1].bias is None and network.layers[1].memory.bias == 0
    assert _assert_same_spikes(hw, job, res) > 0


def test_random_cnns_cover_the_cases():
    """The random CNNs exercise what they claim to (else the tests above prove less)."""
    kinds, limited, avg, no_bias = set(), set(), False, False
    for seed in CHAIN_SEEDS:
        network = speck_nir.lower_nir(sh.chain_graph(*sh.random_chain(seed)))
        for q in network.layers:
            kinds.add(q.layer.kind)
            avg |= q.layer.rescale != 1.0
            no_bias |= q.bias is None
            w = sq.discretization_scale(q.layer.weight * np.float32(q.layer.rescale), 8)
            t = sq.discretization_scale([q.layer.min_v_mem, q.layer.uniform_threshold()], 16)
            limited.add("weight" if q.scale == w else "threshold" if q.scale == t else "bias")
    assert kinds == {"conv", "linear"} and avg and no_bias
    assert limited == {"weight", "threshold", "bias"}


def test_core_mapping_equals_sinabs():
    """Random memory profiles (1-10 layers, some fitting no core, some only the large-kernel
    or large-neuron cores): same memory words and the same layer-to-core map as sinabs'
    ``map_layers_to_cores``, or a failure exactly where sinabs finds no valid mapping."""
    jobs, results, _ = _sinabs()
    feasible = infeasible = nontrivial = 0
    for i in range(MAPPING_PROBLEMS):
        job, res = jobs[f"map{i}"], results[f"map{i}"]
        assert res.error is None, res.error
        words = []
        for d in job["mapping"]:
            k, hw, s = d["kernel"], d["in_shape"][1], d["stride"]
            out = (hw - k) // s + 1
            words.append(sq.memory_words(d["c_in"], d["c_out"], (k, k), (out, out), d["bias"]))
        assert [tuple(w) for w in words] == [tuple(m) for m in res.arrays["memory"]], i
        cores = sq.map_layers_to_cores(words)
        if res.meta["mapping_error"] is not None:
            assert "No valid mapping found" in res.meta["mapping_error"]
            assert cores is None, i
            infeasible += 1
        else:
            assert cores == tuple(int(c) for c in res.arrays["cores"]), i
            feasible += 1
            nontrivial += cores != tuple(range(len(cores)))
    assert feasible >= 10 and infeasible >= 10 and nontrivial >= 5, (feasible, infeasible,
                                                                       nontrivial)


def test_exported_graph_round_trips_through_sinabs(tmp_path):
    """The exported ``.nir`` of the paper CNN (``hw.export``), imported by sinabs and
    discretized again, gives the same integers (every scale is 1) and the same spikes."""
    hw = _lower(_paper_graph())
    network = hw.details
    hw.export(tmp_path / "cnn.nir")
    exported = nirjax.read(tmp_path / "cnn.nir")
    again = speck_nir.lower_nir(exported)
    for q, r in zip(network.layers, again.layers):
        np.testing.assert_array_equal(q.weight, r.weight)
        assert float(r.scale) == 1.0 and r.threshold == q.threshold
    job = {"id": "exported", "graph": exported, "input_shape": [2, 34, 34],
           "x": _events(np.random.default_rng(7), (T, B, 2, 34, 34), 0.2)}
    results, _ = sh.run_sinabs([job]) if sh.sinabs_python() else (None, None)
    if results is None:
        _sinabs()  # skips or fails with the reason
    res = results["exported"]
    assert res.error is None, res.error
    _assert_same_layers(network, res)
    _assert_same_spikes(hw, job, res)


def test_sinabs_throughput_runs():
    """The benchmark hook times sinabs' discretized forward on a batch of 32 (no timing is
    asserted: this machine's numbers mean nothing)."""
    _sinabs()  # skips or fails with the reason when the environment is missing
    x = _events(np.random.default_rng(3), (5, 32, 2, 34, 34), 0.1)
    out = sh.sinabs_throughput(sh.PAPER_CNN, x, repeats=1)
    assert out["batch"] == 32 and out["steps"] == 5 and out["samples_per_s"] > 0


def test_hardware_benchmark_case_checks_identical_spikes():
    """The benchmark's Speck case runs nirjax and sinabs on the same batch and finds the
    same spike counts in every layer at every step (timings not asserted)."""
    _sinabs()  # skips or fails with the reason when the environment is missing
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import hardware_sim_speck

    out = hardware_sim_speck.speck_case(batch=4, steps=5, repeats=1, rate=0.2)
    assert "skipped" not in out, out.get("skipped")
    assert out["identical_spikes"] is True and out["output_spikes"] > 0 and out["ratio"] > 0
