"""Cross-check nirjax's platform profiles against the real peer packages.

Used by ``tests/test_conformance_peers.py`` and ``benchmarks/conformance.py``. A *case* is a
NIR graph plus a spike input; :func:`cases_for` lists the cases a framework can import (the
NIR paper graphs and seeded random chains, recurrent layers and conv stacks built within the
framework's import limits). :func:`run_peer` runs a list of cases in the framework's own
environment (``tests/peers/runner.py`` in a subprocess, one per framework) and
:func:`run_nirjax` simulates them under the matching nirjax profile; :func:`agreement`
compares the two.

Environments come from ``tests/peers/setup_peers.sh``, under ``$NIRJAX_PEERS_DIR`` or
``.peers/`` in the repository root.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import tempfile
import warnings

import numpy as np
import nir

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNNER = pathlib.Path(__file__).with_name("runner.py")
DATA = ROOT / "tests" / "data" / "paper"

# framework -> (environment under the peers dir, nirjax profile)
FRAMEWORKS = {
    "norse": ("torch", "norse"),
    "snntorch": ("torch", "snntorch"),
    "rockpool": ("torch", "rockpool"),
    "sinabs": ("sinabs", "sinabs"),
    "spyx1": ("spyx", "spyx1"),
    "spyx01": ("spyx01", "spyx"),
    "nengo": ("nengo", "nengo"),
}
DT = 1e-4
F32 = np.float32


def peers_dir() -> pathlib.Path:
    """Where ``setup_peers.sh`` puts the environments."""
    return pathlib.Path(os.environ.get("NIRJAX_PEERS_DIR", ROOT / ".peers"))


def peer_python(framework: str) -> pathlib.Path | None:
    """The Python of ``framework``'s environment, or ``None`` when it was not built."""
    env = peers_dir() / FRAMEWORKS[framework][0]
    py = env / "bin" / "python"
    return py if (env / ".ready").exists() and py.exists() else None


@dataclasses.dataclass
class Case:
    """One graph and input to run in a framework and in nirjax.

    Attributes:
        id: unique name (also the file stem of the job).
        graph: a ``nir.NIRGraph`` (nir 1.0.8 objects) or a path to a ``.nir`` file.
        x: input ``[T, B, *in_shape]`` (float32).
        semantics: the nirjax semantics to compare with (a profile name or a Semantics).
        job: extra keys for the runner (reset, record, chain, per_sample, ...).
        record: neuron node names whose membrane both sides record.
        v_scale: factor mapping the peer's recorded membrane to nirjax's recorded one.
        description: a short text for reports.
        expect_error: for a case that pins a peer's bug: text its exception must contain.
        v_tolerance: allowed membrane difference, relative to the largest |v| (at least 1).
        out_tolerance: for outputs that are not spikes (e.g. an LI's value): two outputs
            count as identical within ``out_tolerance * max(1, |peer output|)``; 0: exact.
    """

    id: str
    graph: object
    x: np.ndarray
    semantics: object
    job: dict = dataclasses.field(default_factory=dict)
    record: tuple = ()
    v_scale: float = 1.0
    description: str = ""
    expect_error: str = ""
    v_tolerance: float = 1e-5
    out_tolerance: float = 0.0


# ----------------------------------------------------------------------------- portable graphs


def _field_value(value):
    if isinstance(value, dict):  # input_type / output_type of nir 1.0.8: {"input": shape}
        (shape,) = value.values()
        return "array", np.asarray(shape)
    if isinstance(value, np.ndarray):
        return "array", value
    if isinstance(value, (np.integer, np.floating)):
        return "value", value.item()
    if isinstance(value, (tuple, list)):
        return "value", [v.item() if isinstance(v, np.generic) else v for v in value]
    return "value", value


def graph_description(graph: nir.NIRGraph, arrays: dict, prefix: str = "") -> dict:
    """A JSON-able description of ``graph`` (arrays go to ``arrays``), rebuilt by the runner
    with the peer environment's own ``nir`` version."""
    nodes = {}
    for name, node in graph.nodes.items():
        key = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            nodes[name] = dict(type="NIRGraph", **graph_description(node, arrays, f"{key}/"))
            continue
        fields = {}
        for f in dataclasses.fields(node):
            if f.name == "metadata":
                continue
            if f.name in ("input_type", "output_type") and not isinstance(
                    node, (nir.Input, nir.Output, nir.Flatten)):
                continue
            value = getattr(node, f.name)
            if isinstance(node, nir.Input) and f.name == "output_type":
                continue
            if isinstance(node, nir.Output) and f.name == "input_type":
                continue
            if isinstance(node, nir.Flatten) and f.name == "output_type":
                continue
            kind, v = _field_value(value)
            if kind == "array":
                arrays[f"{key}::{f.name}"] = v
                fields[f.name] = "array"
            else:
                fields[f.name] = {"value": v}
        nodes[name] = {"type": type(node).__name__, "fields": fields}
    return {"nodes": nodes, "edges": [list(e) for e in graph.edges]}


# ----------------------------------------------------------------------------- generators


def spikes(rng, shape, p):
    """Bernoulli spike trains (float32)."""
    return (rng.random(shape) < p).astype(F32)


def _lif(rng, n, tau=None, r=None, v_leak=None, thr=1.0):
    tau = rng.uniform(1.5e-3, 6e-3, n).astype(F32) if tau is None else np.asarray(tau, F32)
    return nir.LIF(tau=tau, r=np.ones(n, F32) if r is None else np.asarray(r, F32),
                   v_leak=np.zeros(n, F32) if v_leak is None else np.asarray(v_leak, F32),
                   v_threshold=np.full(n, thr, F32), v_reset=np.zeros(n, F32))


def _cubalif(rng, n, tau_syn=None, tau_mem=None, r=None, w_in=None, v_leak=None, thr=1.0):
    ts = rng.uniform(1.5e-3, 5e-3, n).astype(F32) if tau_syn is None else np.asarray(tau_syn, F32)
    tm = rng.uniform(3e-3, 8e-3, n).astype(F32) if tau_mem is None else np.asarray(tau_mem, F32)
    return nir.CubaLIF(tau_syn=ts, tau_mem=tm,
                       r=np.ones(n, F32) if r is None else np.asarray(r, F32),
                       v_leak=np.zeros(n, F32) if v_leak is None else np.asarray(v_leak, F32),
                       v_threshold=np.full(n, thr, F32), v_reset=np.zeros(n, F32),
                       w_in=np.ones(n, F32) if w_in is None else np.asarray(w_in, F32))


def _weights(rng, n_out, n_in, scale, affine=True, bias=0.0):
    w = (rng.normal(0.0, 1.0, (n_out, n_in)) * scale / np.sqrt(n_in)).astype(F32)
    if not affine:
        return nir.Linear(weight=w)
    return nir.Affine(weight=w, bias=(rng.normal(0.0, 1.0, n_out) * bias).astype(F32))


def chain_graph(layers, n_in):
    """A chain ``input -> layers... -> output``; ``layers`` is a list of (name, node)."""
    nodes = {"input": nir.Input(input_type=np.array([n_in]))}
    edges, prev = [], "input"
    for name, node in layers:
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    out_n = _out_size(layers[-1][1])
    nodes["output"] = nir.Output(output_type=np.array([out_n]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _out_size(node):
    for f in ("tau", "tau_mem", "v_threshold"):
        if hasattr(node, f):
            return int(np.asarray(getattr(node, f)).size)
    return int(node.weight.shape[0])


def recurrent_graph(rng, n_in, n_hid, n_out, cell, framework, affine_rec=True, nested=False):
    """The NIR paper's Braille topology with random parameters: ``fc1 -> lif1 (<-> w_rec) ->
    fc2 -> lif2``; ``nested`` puts the recurrent layer in a sub-NIRGraph (Rockpool's form)."""
    make = _cell_maker(rng, framework, cell, recurrent=True)
    lif1, lif2 = make(n_hid), make(n_out)
    fc1 = _weights(rng, n_hid, n_in, 4.0 * _in_scale(framework, lif1), bias=0.0)
    w_rec = _weights(rng, n_hid, n_hid, 1.5 * _in_scale(framework, lif1), affine=affine_rec,
                     bias=0.0)
    fc2 = _weights(rng, n_out, n_hid, 4.0 * _in_scale(framework, lif2), bias=0.0)
    nodes = {"input": nir.Input(input_type=np.array([n_in])), "fc1": fc1, "fc2": fc2,
             "lif2": lif2, "output": nir.Output(output_type=np.array([n_out]))}
    if nested:
        sub = nir.NIRGraph(
            nodes={"input": nir.Input(input_type=np.array([n_hid])), "lif": lif1,
                   "w_rec": w_rec, "output": nir.Output(output_type=np.array([n_hid]))},
            edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
        nodes["lif1"] = sub
        edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
                 ("lif2", "output")]
    else:
        nodes["lif1.lif"], nodes["lif1.w_rec"] = lif1, w_rec
        edges = [("input", "fc1"), ("fc1", "lif1.lif"), ("lif1.lif", "lif1.w_rec"),
                 ("lif1.w_rec", "lif1.lif"), ("lif1.lif", "fc2"), ("fc2", "lif2"),
                 ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _in_scale(framework, cell):
    """Weight scale that gives a moderate firing rate under the framework's input gain."""
    if framework in ("spyx1", "sinabs", "rockpool"):  # raw input: a spike adds the weight
        if isinstance(cell, nir.CubaLIF):  # ... to a current that lasts ~tau_syn/dt steps
            return 2.0 * float(np.mean(DT / cell.tau_syn))
        return 0.6
    if isinstance(cell, nir.CubaLIF):
        return 0.6 * float(np.mean(cell.tau_syn / (DT * cell.w_in)))
    return 0.6 * float(np.mean(cell.tau / (DT * cell.r)))


def _cell_maker(rng, framework, cell, recurrent=False):
    """Neuron parameters within what ``framework``'s importer accepts."""
    def lif(n):
        tau = np.full(n, rng.uniform(2e-3, 5e-3), F32)
        if framework == "norse":
            return _lif(rng, n, v_leak=rng.uniform(-0.2, 0.2, n), r=rng.uniform(0.5, 2.0, n))
        if framework == "snntorch":  # v_leak = 0, one threshold per layer; RLeaky: r = tau/dt
            r = tau / F32(DT) if recurrent else np.full(n, rng.uniform(0.5, 2.0), F32)
            return _lif(rng, n, tau=tau, r=r)
        if framework == "rockpool":  # r as Rockpool's exporter writes it: tau/(1+r) = dt
            return _lif(rng, n, tau=tau, r=(tau / F32(DT) - 1).astype(F32))
        return _lif(rng, n, tau=tau)

    def cuba(n):
        ts = np.full(n, rng.uniform(1.5e-3, 4e-3), F32)
        tm = np.full(n, rng.uniform(3e-3, 8e-3), F32)
        if framework == "norse":
            return _cubalif(rng, n, r=rng.uniform(0.5, 2.0, n), w_in=rng.uniform(0.5, 2.0, n),
                            v_leak=rng.uniform(-0.1, 0.1, n))
        if framework == "nengo":  # the paper's conversion: one r, tau and threshold per layer
            return _cubalif(rng, n, ts, tm, r=np.full(n, rng.uniform(0.5, 2.0), F32),
                            w_in=rng.uniform(0.5, 2.0, n).astype(F32))
        if framework in ("snntorch", "spyx01"):  # snnTorch's convention: r = tau_mem/dt
            return _cubalif(rng, n, ts, tm, r=(tm / F32(DT)).astype(F32),
                            w_in=np.full(n, rng.uniform(0.5, 2.0), F32))
        if framework == "rockpool":
            return _cubalif(rng, n, ts, tm, r=(tm / F32(DT) - 1).astype(F32))
        return _cubalif(rng, n, ts, tm)

    return lif if cell == "LIF" else cuba


def random_chain(rng, framework, cell, sizes, affine=True):
    """``fc1 -> n1 -> fc2 -> n2 ...`` with ``cell`` neurons (names fc<k>, n<k>)."""
    make = _cell_maker(rng, framework, cell)
    layers = []
    for k in range(1, len(sizes)):
        neuron = make(sizes[k])
        layers.append((f"fc{k}", _weights(rng, sizes[k], sizes[k - 1],
                                         6.0 * _in_scale(framework, neuron), affine=affine,
                                         bias=0.1 if affine else 0.0)))
        layers.append((f"n{k}", neuron))
    return chain_graph(layers, sizes[0])


def conv_graph(rng, framework, channels=(2, 4, 6), hw=12, n_out=5):
    """``conv1 -> if1 -> pool1 -> conv2 -> if2 -> flat -> fc -> if3`` on [C, hw, hw] input
    (the NIR paper CNN's layer types at a small size)."""
    c0, c1, c2 = channels

    def conv(cin, cout):
        w = (rng.normal(0, 1, (cout, cin, 3, 3)) * 1.2 / np.sqrt(cin * 9)).astype(F32)
        return nir.Conv2d(input_shape=None, weight=w, stride=np.array([1, 1]),
                          padding=np.array([1, 1]), dilation=np.array([1, 1]), groups=1,
                          bias=(rng.normal(0, 0.05, cout)).astype(F32))

    def neuron(shape):
        return nir.IF(r=np.ones(shape, F32), v_threshold=np.ones(shape, F32),
                      v_reset=np.zeros(shape, F32))

    h2 = hw // 2
    flat_n = c2 * h2 * h2
    w = (rng.normal(0, 1, (n_out, flat_n)) * 3.0 / np.sqrt(flat_n)).astype(F32)
    layers = [
        ("conv1", conv(c0, c1)), ("if1", neuron((c1, hw, hw))),
        ("pool1", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                padding=np.array([0, 0]))),
        ("conv2", conv(c1, c2)), ("if2", neuron((c2, h2, h2))),
        ("flat", nir.Flatten(input_type={"input": np.array([c2, h2, h2])}, start_dim=0,
                             end_dim=-1)),
        ("fc", nir.Affine(weight=w, bias=np.zeros(n_out, F32))), ("if3", neuron((n_out,))),
    ]
    nodes = {"input": nir.Input(input_type=np.array([c0, hw, hw]))}
    edges, prev = [], "input"
    for name, node in layers:
        nodes[name], prev = node, edges.append((prev, name)) or name
    nodes["output"] = nir.Output(output_type=np.array([n_out]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _chain_meta(graph):
    order, types, node = ["input"], {}, "input"
    succ = {}
    for s, d in graph.edges:
        succ.setdefault(s, d)
    while node in succ and succ[node] not in order:
        node = succ[node]
        order.append(node)
    for name, n in graph.nodes.items():
        types[name] = type(n).__name__
    return {"chain": order, "types": types}


# ----------------------------------------------------------------------------- case lists


def paper_path(name: str) -> pathlib.Path:
    """A NIR paper file: shipped example or ``tests/data/paper``."""
    import nirjax

    examples = {"lif_norse.nir": "lif_norse", "braille_noDelay_bias_zero.nir": "braille_bias_zero",
                "braille_noDelay_noBias_subtract.nir": "braille_subtract",
                "cnn_sinabs.nir": "cnn_sinabs"}
    if name in examples:
        return pathlib.Path(nirjax.example_path(examples[name]))
    return DATA / name


def lif_task_input():
    """The LIF task's input spikes (``lif_norse.csv``, column 0), [1000, 1, 1]."""
    import nirjax

    csv = np.loadtxt(nirjax.example_path("lif_norse_trace"), delimiter=",")
    return csv[:, 0].astype(F32).reshape(-1, 1, 1)


def braille_input(seed, T=256, B=4, p=0.05):
    """Seeded random spikes for the Braille graphs' 12 inputs."""
    return spikes(np.random.default_rng(seed), (T, B, 12), p)


def cases_for(framework: str, n_random: int = 2, braille_batches: int = 3) -> list:
    """Every case ``framework`` can import, paper graphs first."""
    prof = FRAMEWORKS[framework][1]
    cases = []
    lif_x = lif_task_input()
    rec_lif = ("1",)
    if framework == "norse":
        cases.append(Case("lif_task", paper_path("lif_norse.nir"), lif_x, prof,
                          record=rec_lif, description="NIR paper LIF task (lif_norse.nir)"))
        for reset, name in (("zero", "braille_noDelay_bias_zero.nir"),
                            ("subtract", "braille_noDelay_noBias_subtract.nir")):
            sem = _norse_reset(reset)
            for b in range(braille_batches):
                cases.append(Case(f"braille_{reset}_b{b}", paper_path(name),
                                  braille_input(100 + b), sem,
                                  job={"reset": "subtract" if reset == "subtract" else "value"},
                                  description=f"Braille ({reset}) batch {b}"))
        cases.append(Case("cnn", paper_path("cnn_sinabs.nir"), _cnn_input(30, 2), prof,
                          job={"per_sample": True}, description="NIR paper CNN (batch 1 each)"))
        cases.append(Case("cnn_batch2", paper_path("cnn_sinabs.nir"), _cnn_input(3, 2), prof,
                          expect_error="mat1 and mat2 shapes cannot be multiplied",
                          description="Norse bug: Flatten(start_dim=0) also flattens the batch"))
    elif framework == "snntorch":
        cases.append(Case("lif_task", paper_path("lif_norse.nir"), lif_x, prof, record=rec_lif,
                          description="NIR paper LIF task (lif_norse.nir)"))
        for b in range(braille_batches):
            cases.append(Case(f"braille_zero_b{b}", paper_path("braille_noDelay_bias_zero.nir"),
                              braille_input(100 + b), prof, job={"snntorch_path": "paper"},
                              description=f"Braille (zero) batch {b}"))
            cases.append(Case(f"braille_subtract_b{b}",
                              paper_path("braille_noDelay_noBias_subtract.nir"),
                              braille_input(100 + b), prof, job={"snntorch_path": "paper"},
                              description=f"Braille (subtract graph, snnTorch resets to zero) batch {b}"))
        import nirjax

        cases.append(Case("braille_subtract_native", paper_path("braille_noDelay_noBias_subtract.nir"),
                          braille_input(200), nirjax.PROFILES["snntorch"].replace(reset="subtract"),
                          job={"snntorch_path": "paper", "reset": "subtract"},
                          description="Braille (subtract), snnTorch's own reset by subtraction"))
        cases.append(Case("braille_import_released", paper_path("braille_noDelay_bias_zero.nir"),
                          braille_input(100)[:2], prof, job={"snntorch_path": "released"},
                          expect_error="'GraphModule' object has no attribute 'items'",
                          description="snnTorch 1.0.0 bug: import_from_nir fails on a recurrent graph"))
    elif framework == "spyx01":
        meta = _chain_meta(nir.read(paper_path("lif_norse.nir")))
        cases.append(Case("lif_task", paper_path("lif_norse.nir"), lif_x, prof, record=rec_lif,
                          job=meta, description="NIR paper LIF task (lif_norse.nir)"))
        cases.append(Case("lif_task_released", paper_path("lif_norse.nir"), lif_x, prof,
                          job=dict(meta, released=True), expect_error="w_in",
                          description="Spyx 0.1 bug: UnboundLocalError on w_in for Affine -> LIF"))
        for b in range(braille_batches):
            cases.append(Case(f"braille_zero_b{b}", paper_path("braille_noDelay_bias_zero.nir"),
                              braille_input(100 + b), prof, job={"chain": [], "types": {}},
                              description=f"Braille (zero graph) batch {b}"))
    elif framework == "spyx1":
        for b in range(braille_batches):
            cases.append(Case(f"braille_zero_b{b}", paper_path("braille_noDelay_bias_zero.nir"),
                              braille_input(100 + b), prof, job={"chain": [], "types": {}},
                              description=f"Braille (zero graph) batch {b}"))
        cases.append(Case("cnn", paper_path("cnn_sinabs.nir"), _cnn_input(30, 2), prof,
                          job={"chain": [], "types": {}}, description="NIR paper CNN"))
    elif framework == "sinabs":
        x = lif_x * F32(0.04)  # the paper's Sinabs run scaled the input by dt/tau
        cases.append(Case("lif_task", paper_path("lif_norse.nir"), x, prof, record=rec_lif,
                          description="NIR paper LIF task (lif_norse.nir, input x 0.04)"))
        cases.append(Case("cnn", paper_path("cnn_sinabs.nir"), _cnn_input(30, 2), prof,
                          description="NIR paper CNN"))
    elif framework == "rockpool":
        cases.append(Case("lif_task", paper_path("lif_rockpool.nir"), lif_x, prof,
                          record=("1_LIFNeuronTorch",),
                          job={"type_check": False, "record_all": True},
                          v_tolerance=1e-4,  # Rockpool infers dt = 9.992e-5 from r
                          description="NIR paper LIF task (lif_rockpool.nir)"))
        cases.append(Case("lif_task_released", paper_path("lif_rockpool.nir"), lif_x, prof,
                          job={"type_check": False, "released": True}, expect_error="tau_mem",
                          description="Rockpool bug: from_nir reads nir.LIF.tau_mem"))
        cases += _rockpool_parting_cases()
        cases += rockpool_cases(n_random)
    elif framework == "nengo":
        cases += nengo_paper_cases(braille_batches)
    cases += random_cases(framework, n_random)
    return cases


# seeds of random CubaLIF graphs whose Rockpool and nirjax runs part on this project's AMD
# EPYC machine at a crossing decided by float32 rounding (found by running 60 seeds of each)
_PARTING = (("chain_CubaLIF", 8), ("rec_CubaLIF", 2), ("rec_CubaLIF", 38))


def _rockpool_parting_cases() -> list:
    """Random CubaLIF graphs on which the two float32 programs part at a near-threshold
    crossing (on some processor, at least the one named above), so the rounding-aware
    comparison of ``tests/test_conformance_peers.py`` is exercised on every machine."""
    out = []
    for kind, i in _PARTING:
        rng = np.random.default_rng(_seed("explore", kind, i))
        if kind.startswith("chain"):
            sizes = [int(rng.integers(4, 10)), int(rng.integers(6, 16)), int(rng.integers(3, 8))]
            g = random_chain(rng, "rockpool", "CubaLIF", sizes, affine=bool(rng.integers(2)))
            x = spikes(rng, (120, 3, sizes[0]), 0.15)
            desc = f"random chain {'-'.join(map(str, sizes))} CubaLIF (parts by rounding)"
        else:
            g = recurrent_graph(rng, 6, 14, 5, "CubaLIF", "rockpool",
                                affine_rec=bool(rng.integers(2)), nested=True)
            x = spikes(rng, (120, 3, 6), 0.15)
            desc = "random recurrent 6-14(rec)-5 CubaLIF (parts by rounding)"
        out.append(Case(f"parting_{kind}_{i}", g, x, "rockpool", job={"record_all": True},
                        description=desc))
    return out
def rockpool_cases(n: int) -> list:
    """Rockpool cases beyond the random chains: an Affine -> LI chain (LI is Rockpool's
    ``ExpSynTorch``, built as Rockpool exports it: ``from_nir`` itself truncates ``tau`` with
    ``.int()``; job ``li_as_exported``), that truncation's crash on a one-neuron LI (pinned),
    and a runaway LIF chain whose neurons reach more than ``2**16`` spikes per step (Rockpool
    clamps at ``max_spikes_per_dt = 2**16``)."""
    cases = []
    for i in range(n):
        rng = np.random.default_rng(_seed("rockpool", "chain_LI", i))
        n_in, n_out = int(rng.integers(4, 10)), int(rng.integers(3, 8))
        tau = rng.uniform(2e-3, 2e-2, n_out).astype(F32)
        li = nir.LI(tau=tau, r=(tau * np.exp(-DT / tau) / DT).astype(F32),  # as exported
                    v_leak=np.zeros(n_out, F32))
        g = chain_graph([("fc1", _weights(rng, n_out, n_in, 1.0, bias=0.1)), ("li", li)], n_in)
        cases.append(Case(f"chain_LI_{i}", g, spikes(rng, (120, 3, n_in), 0.15), "rockpool",
                          job={"li_as_exported": True}, out_tolerance=1e-5,
                          description=f"random Affine -> LI {n_in}-{n_out} (ExpSynTorch)"))
    one = nir.LI(tau=np.array([0.01], F32), r=np.array([9.9], F32), v_leak=np.zeros(1, F32))
    cases.append(Case("li_released", chain_graph([("li", one)], 1),
                      np.ones((3, 1, 1), F32), "rockpool", job={"released": True},
                      expect_error="'float' object has no attribute 'int'",
                      description="Rockpool bug: from_nir builds LI with tau.int() (a 1-element "
                                  "tau is a float)"))
    rng = np.random.default_rng(_seed("rockpool", "runaway"))
    n_in, n_out = 5, 6
    tau = np.full(n_out, 4e-3, F32)
    lif = _lif(rng, n_out, tau=tau, r=(tau / F32(DT) - 1).astype(F32))
    w = (rng.uniform(0.5, 1.5, (n_out, n_in)) * 6e4).astype(F32)
    g = chain_graph([("fc1", nir.Linear(weight=w)), ("n1", lif)], n_in)
    cases.append(Case("chain_LIF_runaway", g, spikes(rng, (60, 2, n_in), 0.5), "rockpool",
                      description="LIF chain driven past max_spikes_per_dt = 2**16 spikes"))
    return cases


def nengo_paper_cases(braille_batches: int = 3) -> list:
    """The NIR paper graphs as the paper ran them in Nengo (``nengo_runner.py``): the LIF task
    (membrane recorded in Nengo's units, ``voltage = v / v_threshold``, as in lif_nengo.csv;
    the ``nengo`` profile records the same), both Braille RSNNs (Nengo resets to 0 in both:
    the "subtract" graph is run as the paper ran it) and the CNN."""
    lif_x = lif_task_input()
    cases = [Case("lif_task", paper_path("lif_norse.nir"), lif_x, "nengo", record=("1",),
                  description="NIR paper LIF task (lif_norse.nir)")]
    for reset, name in (("zero", "braille_noDelay_bias_zero.nir"),
                        ("subtract", "braille_noDelay_noBias_subtract.nir")):
        for b in range(braille_batches):
            cases.append(Case(f"braille_{reset}_b{b}", paper_path(name), braille_input(100 + b),
                              "nengo", record=("lif1.lif",),
                              description=f"Braille ({reset} graph) batch {b}"))
    cases.append(Case("cnn", paper_path("cnn_sinabs.nir"), _cnn_input(300, 2), "nengo",
                      description="NIR paper CNN, 300 steps (Nengo: about 2 s)"))
    return cases


def _norse_reset(reset):
    import nirjax

    return "norse" if reset == "zero" else nirjax.PROFILES["norse"].replace(reset="subtract")


def _cnn_input(T, B, seed=1):
    return spikes(np.random.default_rng(seed), (T, B, 2, 34, 34), 0.1)


def random_cases(framework: str, n: int) -> list:
    """Seeded random graphs ``framework`` can import, with random spike inputs."""
    prof = FRAMEWORKS[framework][1]
    out = []
    kinds = {
        "norse": ["chain_LIF", "chain_CubaLIF", "rec_CubaLIF", "rec_LIF", "conv"],
        "snntorch": ["chain_LIF", "chain_CubaLIF", "rec_CubaLIF", "rec_LIF", "chain_IF"],
        "spyx1": ["chain_LIF", "chain_CubaLIF", "rec_CubaLIF", "conv"],
        "spyx01": ["chain_LIF", "chain_CubaLIF", "rec_CubaLIF"],
        "sinabs": ["chain_LIF", "conv"],
        "rockpool": ["chain_LIF", "chain_CubaLIF", "rec_CubaLIF"],
        "nengo": ["chain_LIF", "chain_CubaLIF", "rec_CubaLIF", "chain_IF", "chain_LI", "conv",
                  "rec_LIF"],
    }[framework]
    for kind in kinds:
        for i in range(n):
            rng = np.random.default_rng(_seed(framework, kind, i))
            job, record = {}, ()
            T, B = 120, 3
            if framework == "nengo":
                out.append(nengo_case(rng, kind, i))
                continue
            if kind == "chain_IF":  # snnTorch imports IF as Leaky(beta=0.9) (a bug, pinned)
                n_in, n_out = int(rng.integers(4, 10)), int(rng.integers(3, 8))
                g = chain_graph([("fc1", _weights(rng, n_out, n_in, 1.5, bias=0.05)),
                                 ("n1", nir.IF(r=np.ones(n_out, F32),
                                               v_threshold=np.ones(n_out, F32),
                                               v_reset=np.zeros(n_out, F32)))], n_in)
                x = spikes(rng, (T, B, n_in), 0.15)
                record = ("n1",)
                desc = f"random Affine -> IF {n_in}-{n_out} (snnTorch: Leaky beta=0.9)"
            elif kind.startswith("chain"):
                cell = kind.split("_")[1]
                sizes = [int(rng.integers(4, 10)), int(rng.integers(6, 16)),
                         int(rng.integers(3, 8))]
                # Sinabs does not import Linear
                affine = framework == "sinabs" or bool(rng.integers(2))
                g = random_chain(rng, framework, cell, sizes, affine=affine)
                x = spikes(rng, (T, B, sizes[0]), 0.15)
                record = ("n1",)
                desc = f"random chain {'-'.join(map(str, sizes))} {cell}"
            elif kind.startswith("rec"):
                cell = kind.split("_")[1]
                n_in, n_h, n_o = int(rng.integers(4, 10)), int(rng.integers(8, 20)), int(rng.integers(3, 7))
                g = recurrent_graph(rng, n_in, n_h, n_o, cell, framework,
                                    affine_rec=bool(rng.integers(2)),
                                    nested=framework == "rockpool")
                x = spikes(rng, (T, B, n_in), 0.15)
                desc = f"random recurrent {n_in}-{n_h}(rec)-{n_o} {cell}"
                if framework == "snntorch":
                    job["snntorch_path"] = "paper"
            else:
                g = conv_graph(rng, framework)
                x = spikes(rng, (40, 2, 2, 12, 12), 0.15)
                desc = "random conv stack 2x12x12 (Conv2d, IF, SumPool2d, Flatten, Affine)"
                if framework == "norse":
                    job["per_sample"] = True
            if framework in ("spyx1", "spyx01"):
                job.update(_chain_meta(g))
            if framework == "rockpool":  # every layer's spikes and membrane: see rounding_events
                job["record_all"] = True
            out.append(Case(f"{kind}_{i}", g, x, prof, job=job, record=record, description=desc))
    return out


def nengo_case(rng, kind: str, i: int) -> Case:
    """A seeded random graph within the NIR paper's Nengo conversion (``nengo_runner.py``):
    LIF with ``r = 1``, ``v_leak = 0`` (its ``tau`` is made per-neuron in odd cases: the
    conversion uses ``tau[0]`` for the whole layer); CubaLIF with one ``tau_syn``, ``tau_mem``,
    ``r`` and threshold per layer (float32, so Nengo's ``w_in*r`` is a float32 product), any
    ``w_in``; IF with ``r = 1``; LI (the last layer of ``chain_LI``) with any ``r`` and
    ``v_leak``, which the conversion does not read. A LIF spike is ``1/dt`` in Nengo, so weights
    after a LIF layer are scaled by ``dt``. ``rec_LIF`` pins Nengo's refusal of a cycle without
    a synapse."""
    T, B = 120, 3

    def lif(n):
        tau = (rng.uniform(2e-3, 5e-3, n) if i % 2 else np.full(n, rng.uniform(2e-3, 5e-3)))
        return _lif(rng, n, tau=tau.astype(F32), thr=float(rng.uniform(0.5, 1.5)))

    def cuba(n):
        return _cubalif(rng, n, np.full(n, rng.uniform(1.5e-3, 4e-3), F32),
                        np.full(n, rng.uniform(3e-3, 8e-3), F32),
                        r=np.full(n, rng.uniform(0.5, 2.0), F32), w_in=rng.uniform(0.5, 2.0, n),
                        thr=float(rng.uniform(0.5, 1.5)))

    def scale(cell, k):  # an input spike moves v by ~ w*dt/tau (LIF) or w*w_in*r*dt/tau_syn
        base = 0.6 * 3e-3 / DT * (2.0 if cell == "CubaLIF" else 1.0)
        return base * (DT if cell == "LIF" and k > 1 else 1.0)

    if kind.startswith("chain") or kind == "rec_LIF":
        cell = kind.split("_")[1]
        sizes = [int(rng.integers(4, 10)), int(rng.integers(6, 16)), int(rng.integers(3, 8))]
        layers, make = [], {"LIF": lif, "CubaLIF": cuba, "LI": lif}.get(cell)
        for k in range(1, len(sizes)):
            last = k == len(sizes) - 1
            n = sizes[k]
            if cell == "IF":
                neuron = nir.IF(r=np.ones(n, F32), v_threshold=np.full(n, 0.8, F32),
                                v_reset=np.zeros(n, F32))
                w = _weights(rng, n, sizes[k - 1], 1.5, affine=bool(k % 2), bias=0.05)
            elif cell == "LI" and last:
                # r and v_leak are not read by the conversion (a Lowpass has unit DC gain)
                neuron = nir.LI(tau=np.full(n, rng.uniform(2e-3, 6e-3), F32),
                                r=rng.uniform(0.5, 2.0, n).astype(F32),
                                v_leak=rng.uniform(-0.2, 0.2, n).astype(F32))
                w = _weights(rng, n, sizes[k - 1], 1e-4 * scale("LIF", 1), bias=0.0)
            else:
                neuron = make(n)
                w = _weights(rng, n, sizes[k - 1], 6.0 * scale(cell if cell != "LI" else "LIF", k),
                             affine=bool(rng.integers(2)), bias=0.1)
            layers += [(f"fc{k}", w), (f"n{k}", neuron)]
        g = chain_graph(layers, sizes[0])
        desc = f"random chain {'-'.join(map(str, sizes))} {cell}"
        record = ("n1",)
        if kind == "rec_LIF":
            n = sizes[1]
            g.nodes["w_rec"] = _weights(rng, n, n, 1e-3, affine=False)
            g.edges += [("n1", "w_rec"), ("w_rec", "n1")]
            return Case(f"{kind}_{i}", g, spikes(rng, (T, B, sizes[0]), 0.15), "nengo",
                        expect_error="Input graph has cycles",
                        description="Nengo refuses a LIF <-> Linear cycle: no synapse on it")
        return Case(f"{kind}_{i}", g, spikes(rng, (T, B, sizes[0]), 0.15), "nengo",
                    record=record, description=desc,
                    out_tolerance=1e-5 if cell == "LI" else 0.0)  # LI: a filtered value
    if kind == "rec_CubaLIF":
        n_in, n_h, n_o = int(rng.integers(4, 10)), int(rng.integers(8, 20)), int(rng.integers(3, 7))
        g = recurrent_graph(rng, n_in, n_h, n_o, "CubaLIF", "nengo", affine_rec=bool(i % 2))
        for name in ("fc1", "lif1.w_rec"):  # a bias exercises the Lowpass (it is filtered too)
            if isinstance(g.nodes[name], nir.Affine):
                g.nodes[name].bias = rng.normal(0, 0.2, g.nodes[name].bias.shape).astype(F32)
        return Case(f"{kind}_{i}", g, spikes(rng, (T, B, n_in), 0.15), "nengo",
                    record=("lif1.lif",), description=f"random recurrent {n_in}-{n_h}(rec)-{n_o} CubaLIF")
    g = conv_graph(rng, "nengo")
    return Case(f"{kind}_{i}", g, spikes(rng, (40, 2, 2, 12, 12), 0.15), "nengo",
                description="random conv stack 2x12x12 (Conv2d, IF, SumPool2d, Flatten, Affine); "
                            "conv bias unused")


def _seed(*parts):
    import zlib

    return zlib.crc32("/".join(map(str, parts)).encode())


# ----------------------------------------------------------------------------- running


class PeerUnavailable(RuntimeError):
    """The framework's environment is missing (run tests/peers/setup_peers.sh)."""


@dataclasses.dataclass
class PeerResult:
    """What a framework returned for one case: outputs or the exception it raised.

    ``records`` maps a recorded node to its membrane ``[T, B, ...]``; where the runner
    records them (Rockpool), ``spikes`` maps every neuron layer to its spikes and ``decays``
    ``(layer, "alpha"|"beta")`` to the float32 decay factors the framework multiplied by;
    ``extras`` holds any other values the runner reported (``x:<key>`` entries, e.g.
    Rockpool's decay arguments).
    """

    out: np.ndarray | None
    records: dict
    error: str | None
    spikes: dict = dataclasses.field(default_factory=dict)
    decays: dict = dataclasses.field(default_factory=dict)
    extras: dict = dataclasses.field(default_factory=dict)


def run_peer(framework: str, cases: list, timeout: float = 900) -> tuple[dict, dict]:
    """Run ``cases`` in ``framework``'s environment; returns ``({case id: PeerResult},
    versions)``."""
    py = peer_python(framework)
    if py is None:
        raise PeerUnavailable(
            f"no {framework} environment under {peers_dir()} (build it with "
            f"tests/peers/setup_peers.sh)")
    with tempfile.TemporaryDirectory(prefix=f"nirjax-peer-{framework}-") as tmp:
        jobs = []
        for case in cases:
            job = dict(case.job, id=case.id, dt=DT, record=list(case.record))
            job["out_shape"] = list(np.shape(case.x)[2:])  # replaced below when known
            if isinstance(case.graph, (str, pathlib.Path)):
                job["graph"] = str(case.graph)
            else:
                arrays = {}
                desc = graph_description(case.graph, arrays)
                with open(os.path.join(tmp, f"{case.id}.graph.json"), "w") as f:
                    json.dump(desc, f)
                np.savez(os.path.join(tmp, f"{case.id}.graph.npz"), **arrays)
                job["graph"] = f"{case.id}.graph.json"
            job["out_shape"] = list(_output_shape(case.graph))
            np.save(os.path.join(tmp, f"{case.id}.x.npy"), np.asarray(case.x, F32))
            jobs.append(job)
        with open(os.path.join(tmp, "jobs.json"), "w") as f:
            json.dump(jobs, f)
        env = dict(os.environ, PYTHONWARNINGS="ignore", JAX_PLATFORMS="cpu",
                   XLA_FLAGS=os.environ.get("NIRJAX_PEER_XLA_FLAGS", ""))
        proc = subprocess.run([str(py), str(RUNNER), framework, tmp], capture_output=True,
                              text=True, timeout=timeout, env=env, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"{framework} runner failed:\n{proc.stdout[-3000:]}\n"
                               f"{proc.stderr[-3000:]}")
        results = {}
        for case in cases:
            stem = os.path.join(tmp, case.id)
            if os.path.exists(stem + ".error.txt"):
                with open(stem + ".error.txt") as f:
                    results[case.id] = PeerResult(None, {}, f.read())
                continue
            data = np.load(stem + ".out.npz")
            records = {k[2:]: data[k] for k in data.files if k.startswith("v:")}
            spikes_ = {k[2:]: data[k] for k in data.files if k.startswith("z:")}
            decays = {tuple(k[2:].rsplit(":", 1)): data[k] for k in data.files
                      if k.startswith("d:")}
            extras = {k[2:]: data[k] for k in data.files if k.startswith("x:")}
            results[case.id] = PeerResult(data["out"], records, None, spikes_, decays, extras)
        with open(os.path.join(tmp, "versions.json")) as f:
            versions = json.load(f)
    return results, versions


def _output_shape(graph):
    import nirjax

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old files: reset ambiguity
        g = nirjax.read(graph) if isinstance(graph, (str, pathlib.Path)) else graph
        model = nirjax.compile(g, dt=DT)
    (shape,) = model.output_shapes.values()
    return shape


def run_nirjax(case: Case):
    """Simulate ``case`` under its nirjax semantics; returns ``(out, {node: v})``."""
    import nirjax

    graph = case.graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old files: reset ambiguity; dropped recurrent bias
        if isinstance(graph, (str, pathlib.Path)):
            graph = nirjax.read(graph)
        model = nirjax.compile(graph, dt=DT, semantics=case.semantics)
    record = [(n, "v") for n in case.record]
    result = model.run(model.params, case.x, model.init_state(case.x.shape[1]),
                       record=record or None)
    rec = result[2] if record else {}
    return np.asarray(result[0]), {n: np.asarray(rec[(n, "v")]) for n in case.record}


@dataclasses.dataclass
class Agreement:
    """How a peer's output compares with nirjax's.

    Attributes:
        identical: fraction of output values (spikes per neuron and step) that are equal.
        n: number of output values compared.
        first_difference: ``(step, batch, neuron index)`` of the first differing output, or
            ``None``.
        max_v_error: largest |peer membrane * v_scale - nirjax membrane| over recorded
            neurons (``nan`` when none was recorded).
        v_range: largest |nirjax membrane| over the recorded neurons.
        spikes_peer / spikes_nirjax: total output spikes.
    """

    identical: float
    n: int
    first_difference: tuple | None
    max_v_error: float
    spikes_peer: float
    spikes_nirjax: float
    v_range: float = float("nan")

    @property
    def max_v_rel(self) -> float:
        """``max_v_error`` relative to the largest recorded |v| (at least 1)."""
        return self.max_v_error / max(1.0, self.v_range)

    @property
    def exact(self) -> bool:
        """Every output spike equal."""
        return self.first_difference is None


def agreement(case: Case, peer: PeerResult, ours) -> Agreement:
    """Compare a peer's result with nirjax's ``(out, records)``."""
    out, recs = ours
    theirs = np.asarray(peer.out, np.float64).reshape(out.shape)
    ours_f = np.asarray(out, np.float64)
    if case.out_tolerance:
        same = np.abs(theirs - ours_f) <= case.out_tolerance * np.maximum(1.0, np.abs(theirs))
    else:
        same = theirs == ours_f
    diff = np.argwhere(~same)
    first = tuple(int(i) for i in diff[0][:2]) + (int(np.ravel_multi_index(
        diff[0][2:], out.shape[2:])) if out.ndim > 2 else 0,) if len(diff) else None
    errs = [np.max(np.abs(peer.records[n].reshape(recs[n].shape) * case.v_scale - recs[n]))
            for n in case.record if n in peer.records]
    v_range = max((float(np.max(np.abs(recs[n]))) for n in case.record), default=float("nan"))
    return Agreement(float(np.mean(same)), int(ours_f.size), first,
                     float(max(errs)) if errs else float("nan"), float(theirs.sum()),
                     float(ours_f.sum()), v_range)


# ----------------------------------------------------------------------------- rounding


def _ulp32(x):
    """The spacing of float32 numbers at ``|x|`` (float64 array)."""
    x = np.abs(np.asarray(x, np.float32))
    return (np.nextafter(x, np.float32(np.inf)) - x).astype(np.float64)


@dataclasses.dataclass
class RoundingEvent:
    """The first differing spike of one sample, traced to the neuron where it started.

    Attributes:
        batch: the sample.
        step: the first step at which some neuron layer's spikes differ.
        node: the nirjax neuron node where they differ first (the most upstream at that step).
        neuron: the neuron's flat index in the node.
        v_peer / v_nirjax: that neuron's membrane before the reset at that step, both runs.
        level: the threshold multiple ``k*theta`` one run reached and the other did not.
        ulps: ``|v_peer - v_nirjax|`` in float32 steps at ``level``.
        drift: the largest membrane difference between the two runs in that layer over the
            steps before (while every spike agreed).
        kind: ``'ulp'`` (the two membranes within ``ULP_TOLERANCE`` float32 steps),
            ``'drift'`` (within twice the drift already seen) or ``'unexplained'``.
    """

    batch: int
    step: int
    node: str
    neuron: int
    v_peer: float
    v_nirjax: float
    level: float
    ulps: float
    drift: float
    kind: str

    def __str__(self):
        return (f"sample {self.batch}, step {self.step}, {self.node}[{self.neuron}]: membrane "
                f"{self.v_peer!r} (peer) vs {self.v_nirjax!r} (nirjax) around {self.level!r} "
                f"({self.ulps:.0f} float32 steps apart; drift before {self.drift:.3g}): "
                f"{self.kind}")


ULP_TOLERANCE = 4
DRIFT_TOLERANCE = 1e-4


def rounding_events(peer: PeerResult, layers: dict, ours_layers: dict) -> tuple[list, list]:
    """Check that every sample's spikes agree until a threshold crossing that float32
    rounding decided, and find those crossings.

    ``layers`` maps each nirjax neuron node (in program order) to the peer's name for it;
    ``ours_layers[node] = (spikes, v_after_reset, v_threshold)`` from nirjax, the peer's in
    ``peer.spikes`` / ``peer.records``. Two float32 programs that compute the same equations
    with sums in another order (a BLAS matrix product, exp() of another library) differ in
    the last bits of their membranes; now and then one run's membrane ends just above a
    threshold and the other's just below, and from that step on their spikes legitimately
    part. Per sample this checks:

    * before the first step at which any layer's spikes differ, the membranes of every layer
      agree within ``DRIFT_TOLERANCE`` of the layer's largest membrane before the reset
      (``v_after + n*theta``): the two runs are the same computation up to rounding;
    * at that step, in the most upstream layer that differs, every differing neuron's
      membranes before the reset lie on either side of a threshold multiple ``k*theta``
      (``k`` the larger spike count) and are at most ``ULP_TOLERANCE`` float32 steps apart
      (kind ``'ulp'``) or at most twice the largest difference already seen in that layer
      (kind ``'drift'``: the crossing is decided by the rounding drift that was there
      before).

    Anything else (membranes far apart, both on the same side of every level, a count that
    one run clips) is returned as a problem. Returns ``(events, problems)``.
    """
    events, problems = [], []
    some = next(iter(ours_layers.values()))[0]
    steps, batch = some.shape[:2]

    def peer_of(node, what):
        arr = (peer.spikes if what == "z" else peer.records)[layers[node]]
        return np.asarray(arr, np.float64).reshape(ours_layers[node][0].shape)

    for b in range(batch):
        first = {}
        for node in layers:
            diff = np.argwhere(ours_layers[node][0][:, b] != peer_of(node, "z")[:, b])
            if len(diff):
                first[node] = int(diff[0][0])
        if not first:
            continue
        step = min(first.values())
        root = next(n for n in layers if first.get(n) == step)
        drift = {}
        for node in layers:
            z, v, theta = ours_layers[node]
            v_peer = peer_of(node, "v")
            th = np.broadcast_to(np.asarray(theta, np.float64), v.shape[2:])
            scale = max(float(np.max(np.abs(v[:step + 1, b] + z[:step + 1, b] * th),
                                     initial=0.0)), float(np.max(np.abs(th))))
            drift[node] = float(np.max(np.abs(v[:step, b] - v_peer[:step, b]), initial=0.0))
            if drift[node] > DRIFT_TOLERANCE * scale:
                problems.append(
                    f"sample {b}: {node}'s membrane differs by {drift[node]:.3g} (|v| up to "
                    f"{scale:.3g}) before the first differing spike at step {step}")
        z_o, v_o, theta = ours_layers[root]
        z_p, v_p = peer_of(root, "z"), peer_of(root, "v")
        th = np.broadcast_to(np.asarray(theta, np.float64), v_o.shape[2:])
        for idx in np.argwhere(z_o[step, b] != z_p[step, b]):
            i = tuple(int(k) for k in idx)
            n_o, n_p = z_o[(step, b) + i], z_p[(step, b) + i]
            pre_o = v_o[(step, b) + i] + n_o * th[i]
            pre_p = v_p[(step, b) + i] + n_p * th[i]
            level = max(n_o, n_p) * th[i]
            gap = abs(pre_p - pre_o)
            ulps = gap / float(_ulp32(level))
            low, high = sorted((pre_o, pre_p))
            straddles = low <= level <= high
            if straddles and ulps <= ULP_TOLERANCE:
                kind = "ulp"
            elif straddles and gap <= 2 * drift[root]:
                kind = "drift"
            else:
                kind = "unexplained"
            flat = int(np.ravel_multi_index(i, th.shape)) if i else 0
            event = RoundingEvent(b, step, root, flat, float(pre_p), float(pre_o),
                                  float(level), float(ulps), drift[root], kind)
            events.append(event)
            if kind == "unexplained":
                problems.append(f"{event} (spikes {n_p:g} peer vs {n_o:g} nirjax)")
    return events, problems


def run_nirjax_layers(case: Case, peer: PeerResult):
    """Simulate ``case`` recording every spiking neuron layer the peer also recorded.

    Returns ``(layers, ours_layers)`` for :func:`rounding_events`: nirjax node -> peer name
    (a nested peer module ``lif1`` is nirjax's flat ``lif1.lif``), in program order, and node
    -> ``(spikes, v_after_reset, v_threshold)``.
    """
    import nirjax

    graph = case.graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(graph, (str, pathlib.Path)):
            graph = nirjax.read(graph)
        model = nirjax.compile(graph, dt=DT, semantics=case.semantics)
    layers = {}
    for node in model.program.nodes:
        if not node.rule.spiking or not node.stateful:
            continue
        match = [p for p in peer.spikes if node.name == p or node.name.startswith(p + ".")]
        if len(match) == 1:
            layers[node.name] = match[0]
    record = [n for n in layers] + [(n, "v") for n in layers]
    _, _, rec = model.run(model.params, case.x, model.init_state(case.x.shape[1]), record=record)
    ours = {n: (np.asarray(rec[n], np.float64), np.asarray(rec[(n, "v")], np.float64),
                np.asarray(model.params[n].v_threshold, np.float64)) for n in layers}
    return layers, ours
