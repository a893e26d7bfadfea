"""nirjax's activity counts equal NeuroBench 2.3.0's on the same graphs run in snnTorch.

NeuroBench runs in its own environment (``neurobench`` under the peers dir, built by
``tests/peers/setup_peers.sh``) in a subprocess (``tests/peers/neurobench_runner.py``): its
``Benchmark`` with its own metrics on the module snnTorch 1.0.0 imports from the graph.
nirjax counts the same graph and input under the ``snntorch`` profile. Cases: the NIR paper
graphs (LIF task, Braille with both resets, the CNN) and seeded random chains (LIF,
CubaLIF, IF), recurrent layers (LIF, CubaLIF) and conv stacks.

Before the counts are compared, the output spikes of both runs must be equal step by step
(counts of two different runs would agree only by chance). A missing environment skips with
the reason; with ``NIRJAX_PEERS_REQUIRED=1`` it is a failure.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
import harness  # noqa: E402

import nirjax  # noqa: E402
from nirjax.cost import count_activity  # noqa: E402

pytestmark = pytest.mark.peers

REQUIRED = os.environ.get("NIRJAX_PEERS_REQUIRED") == "1"
RUNNER = pathlib.Path(__file__).parent / "peers" / "neurobench_runner.py"


def _neurobench_python():
    env = harness.peers_dir() / "neurobench"
    py = env / "bin" / "python"
    return py if (env / ".ready").exists() and py.exists() else None


def _cases():
    cases = []
    for c in harness.cases_for("snntorch", n_random=2, braille_batches=1):
        if c.expect_error or c.id == "braille_subtract_native":
            continue
        cases.append(c)
    cnn = harness.Case("cnn", harness.paper_path("cnn_sinabs.nir"), harness._cnn_input(30, 2),
                       "snntorch", job={"per_sample": True},
                       description="NIR paper CNN (snnTorch: IF as Leaky(beta=0.9))")
    cases.append(cnn)
    for i in range(2):
        rng = np.random.default_rng(harness._seed("neurobench", "conv", i))
        g = harness.conv_graph(rng, "snntorch")
        x = harness.spikes(rng, (40, 2, 2, 12, 12), 0.15)
        cases.append(harness.Case(f"conv_{i}", g, x, "snntorch", job={"per_sample": True},
                                  description="random conv stack (Conv2d, IF, SumPool2d, "
                                              "Flatten, Affine)"))
    # an analog (non-spike) input: NeuroBench counts the first layer's products as MACs
    rng = np.random.default_rng(harness._seed("neurobench", "analog"))
    g = harness.random_chain(rng, "snntorch", "LIF", [6, 10, 4])
    x = (rng.random((60, 3, 6)) * (rng.random((60, 3, 6)) < 0.3)).astype(np.float32)
    cases.append(harness.Case("analog_chain", g, x, "snntorch",
                              description="random chain 6-10-4 LIF with analog input"))
    return cases


CASES = _cases()
_RESULT: dict = {}


def _run_neurobench():
    """Every case in one subprocess of the neurobench environment (cached)."""
    if "result" in _RESULT:
        return _RESULT["result"]
    py = _neurobench_python()
    if py is None:
        _RESULT["result"] = None
        return None
    with tempfile.TemporaryDirectory(prefix="nirjax-neurobench-") as tmp:
        jobs = []
        for case in CASES:
            job = dict(case.job, id=case.id, dt=harness.DT)
            if isinstance(case.graph, (str, pathlib.Path)):
                job["graph"] = str(case.graph)
            else:
                arrays = {}
                desc = harness.graph_description(case.graph, arrays)
                with open(os.path.join(tmp, f"{case.id}.graph.json"), "w") as f:
                    json.dump(desc, f)
                np.savez(os.path.join(tmp, f"{case.id}.graph.npz"), **arrays)
                job["graph"] = f"{case.id}.graph.json"
            np.save(os.path.join(tmp, f"{case.id}.x.npy"), np.asarray(case.x, np.float32))
            jobs.append(job)
        with open(os.path.join(tmp, "jobs.json"), "w") as f:
            json.dump(jobs, f)
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        proc = subprocess.run([str(py), str(RUNNER), tmp], capture_output=True, text=True,
                              timeout=1800, env=env, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"neurobench runner failed:\n{proc.stdout[-3000:]}\n"
                               f"{proc.stderr[-3000:]}")
        results = {}
        for case in CASES:
            stem = os.path.join(tmp, case.id)
            if os.path.exists(stem + ".error.txt"):
                with open(stem + ".error.txt") as f:
                    results[case.id] = f.read()
                continue
            with open(stem + ".nb.json") as f:
                metrics = json.load(f)
            results[case.id] = (metrics, np.load(stem + ".out.npy"))
        with open(os.path.join(tmp, "versions.json")) as f:
            versions = json.load(f)
    _RESULT["result"] = (results, versions)
    return _RESULT["result"]


def _result():
    result = _run_neurobench()
    if result is None:
        msg = (f"neurobench environment not found under {harness.peers_dir()}: build it with "
               f"tests/peers/setup_peers.sh")
        if REQUIRED:
            pytest.fail(msg + " (NIRJAX_PEERS_REQUIRED=1)")
        pytest.skip(msg)
    return result


def _nirjax(case):
    graph = case.graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old files: reset ambiguity
        if isinstance(graph, (str, pathlib.Path)):
            graph = nirjax.read(graph)
        model = nirjax.compile(graph, dt=harness.DT, semantics=case.semantics)
    out = np.asarray(model(case.x))
    classify = "sample" if case.job.get("per_sample") else "batch"
    return model, out, count_activity(model, case.x, classify=classify)


def _recurrent_weights(model, types=("Linear", "Affine"), neuron=None):
    """Weight nodes in a two-node cycle with a neuron (snnTorch's RLeaky/RSynaptic)."""
    edges = {(e.src, e.dst) for e in model.program.edges}
    names = []
    for n in model.program.nodes:
        if n.type_name not in types:
            continue
        srcs = {e.src for e in model.program.incoming(n.name)}
        # the snntorch profile routes the cycle through an inserted Delay node
        srcs |= {e.src for s in list(srcs) if model.program.node(s).type_name == "Delay"
                 for e in model.program.incoming(s)}
        if any((n.name, s) in edges and (neuron is None or model.program.node(s).type_name
                                         == neuron) for s in srcs):
            names.append(n.name)
    return names


def _recurrent_linear(model):
    return _recurrent_weights(model, ("Linear",))


def _rleaky_recurrent(model):
    return _recurrent_weights(model, neuron="LIF")


def test_neurobench_versions():
    """The environment runs the versions the definitions were read from."""
    _, versions = _result()
    assert versions["neurobench"] == "2.3.0", versions
    assert versions["snntorch"] == "1.0.0", versions


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_counts_equal_neurobench(case_id):
    """Same output spikes, then the same synaptic operations (ACs, MACs, dense), activation
    sparsity, membrane updates, connection sparsity and connection-layer footprint."""
    results, _ = _result()
    case = next(c for c in CASES if c.id == case_id)
    nb = results[case_id]
    assert not isinstance(nb, str), f"NeuroBench failed on {case.description}:\n{nb}"
    metrics, nb_out = nb
    model, out, counts = _nirjax(case)
    out = out.reshape(out.shape[:2] + (-1,))
    assert np.array_equal(nb_out.reshape(out.shape), out), (
        f"{case.description}: output spikes differ, so the runs differ "
        f"({int(np.sum(nb_out.reshape(out.shape) != out))} values)")
    c = dict(counts.totals)
    # snnTorch's RLeaky with reset to zero evaluates its recurrent layer twice per step
    # (Leaky._base_zero calls the state function twice); NeuroBench's hook counts both calls
    for name in _rleaky_recurrent(model):
        for key, field in (("Effective_ACs", "effective_acs"),
                           ("Effective_MACs", "effective_macs"), ("Dense", "dense")):
            c[key] += counts.per_node[name][field]
    syn = metrics["SynapticOperations"]
    assert c["Effective_ACs"] == syn["Effective_ACs"], (c["Effective_ACs"], syn)
    assert c["Effective_MACs"] == syn["Effective_MACs"], (c["Effective_MACs"], syn)
    assert c["Dense"] == syn["Dense"], (c["Dense"], syn)
    assert c["MembraneUpdates"] == metrics["MembraneUpdates"], (c["MembraneUpdates"], metrics)
    assert c["ActivationSparsity"] == pytest.approx(metrics["ActivationSparsity"], rel=1e-12,
                                                    abs=1e-15)
    assert round(c["ConnectionSparsity"], 4) == metrics["ConnectionSparsity"]
    synapse_bytes = sum(v["footprint_bytes"] for v in counts.per_node.values()
                        if v["kind"] == "synapse")
    # snnTorch's recurrent layer is an nn.Linear with a bias even for a nir.Linear w_rec
    added_bias = sum(4 * v["out_size"] for name in _recurrent_linear(model)
                     for v in [counts.per_node[name]])
    assert synapse_bytes + added_bias == metrics["Footprint_connections"], (
        synapse_bytes, added_bias, metrics)
    assert c["Footprint"] >= synapse_bytes


def test_cases_are_not_vacuous():
    """The cases spike, exercise ACs and MACs, and have silent steps (checked on nirjax's
    side, no NeuroBench needed)."""
    acs = macs = 0
    for case in CASES:
        _, out, counts = _nirjax(case)
        acs += counts.totals["Effective_ACs"] > 0
        macs += counts.totals["Effective_MACs"] > 0
        assert counts.totals["Spikes"] > 0, case.id
    assert acs >= len(CASES) - 1 and macs >= 1
