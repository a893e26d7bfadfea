"""Run SynSense's own Xylo toolchain (Rockpool 3.1.0 + xylosim 0.1.3) on nirjax's test jobs.

Launched by ``tests/peers/xylo_harness.py`` with the Python of the ``xylo`` environment made
by ``tests/peers/setup_peers.sh``; it imports Rockpool and xylosim, never nirjax, and never
``samna`` (checked at the end). Usage::

    python xylo_runner.py JOBS_DIR

``JOBS_DIR/jobs.json`` is a list of jobs; each writes ``<id>.out.npz`` or, when the vendor
code raises, ``<id>.error.txt`` (the traceback). ``versions.json`` holds package versions.

Job kinds (``job["kind"]``):

* ``simulate``: ``XyloSim.from_specification(**np.load(spec))`` of the target's module, the
  ``.npz`` passed as is (this is also the round trip of nirjax's export), then for each
  sample ``b`` of ``x`` ``[T, B, Nin]``: ``reset_state()`` and ``evolve(x[:, b],
  record=True)``. Writes ``out`` ``[T, B, Nout]`` and the recordings ``Vmem``, ``Isyn``,
  ``Isyn2`` (Audio 2 only), ``Spikes``, ``Vmem_out``, ``Isyn_out`` as ``[T, B, N]``.
* ``quantize``: builds the Rockpool network a user would train for Xylo (``LinearTorch``
  and ``LIFTorch`` modules in a ``Sequential``, from the float arrays in ``net``), maps it
  with the target's ``mapper`` and quantizes the specification with ``global_quantize`` or
  ``channel_quantize`` (``job["method"]``); writes every specification array.
* ``from_nir``: Rockpool's ``from_nir`` on a ``.nir`` file, then ``as_graph`` and the
  target's ``mapper`` (what a user of Rockpool's NIR import would do).
* ``time``: XyloSim throughput (see ``benchmarks/hw_vendor_xylo.py``): runs ``x`` sample by
  sample ``repeat`` times and writes the wall times.

Importing ``rockpool.devices.xylo`` runs its ``__init__``, which imports ``syns65302``,
whose ``afe_samna_pdm`` imports ``samna`` unconditionally, so the package cannot be imported
without samna (a Rockpool 3.1.0 bug). The parent packages are therefore registered as bare
namespace modules and only the submodules needed are imported: ``syns61201`` and
``syns63300`` as packages, ``syns65302.xylo_mapper`` alone (Audio 3 simulates with the
``syns63300`` ``XyloSim``, as ``syns65302/__init__.py`` does).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import types
import warnings

import numpy as np

TARGETS = ("xylo-audio2", "xylo-audio3", "xylo-imu")


def _bare_package(name: str, path: str):
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module


def load_rockpool():
    """Import the Xylo submodules without the package ``__init__`` (see module docstring)."""
    import rockpool.devices

    base = os.path.join(os.path.dirname(rockpool.devices.__file__), "xylo")
    _bare_package("rockpool.devices.xylo", base)
    import rockpool.devices.xylo.syns61201 as audio2
    import rockpool.devices.xylo.syns63300 as imu

    _bare_package("rockpool.devices.xylo.syns65302", os.path.join(base, "syns65302"))
    import rockpool.devices.xylo.syns65302.xylo_mapper as audio3_mapper

    sims = {"xylo-audio2": audio2.XyloSim, "xylo-audio3": imu.XyloSim,
            "xylo-imu": imu.XyloSim}
    mappers = {"xylo-audio2": audio2.mapper, "xylo-audio3": audio3_mapper.mapper,
               "xylo-imu": imu.mapper}
    return sims, mappers


def simulate(job, sims, tmp):
    spec = dict(np.load(os.path.join(tmp, job["spec"])))
    sim = sims[job["target"]].from_specification(**spec)
    x = np.load(os.path.join(tmp, job["x"]))
    outs, recs = [], []
    for b in range(x.shape[1]):
        sim.reset_state()
        out, _, rec = sim(x[:, b], record=True)
        outs.append(np.asarray(out))
        recs.append({k: np.asarray(v) for k, v in rec.items()})
    result = {"out": np.stack(outs, 1)}
    for key in recs[0]:
        result[key] = np.stack([r[key] for r in recs], 1)
    return result


def _rockpool_net(net: dict):
    """The Rockpool network of a chain of hidden LIF layers and a readout LIF layer.

    ``net``: ``w_in`` ``(Nin, N0*S0)``; per hidden layer ``h``: ``tau_mem_h``, ``tau_syn_h``
    ``(N, S)``, ``threshold_h``, ``bias_h``, optional ``w_rec_h`` ``(N, N*S)`` and, for
    ``h > 0``, ``w_ff_h`` ``(N_{h-1}, N_h*S_h)``; readout ``w_out``, ``tau_mem_out``,
    ``tau_syn_out``, ``threshold_out``, ``bias_out``; ``dt``; ``n_hidden_layers``.
    """
    import torch
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch

    dt = float(net["dt"])
    layers = []
    n_layers = int(net["n_hidden_layers"])
    for h in range(n_layers):
        w = net["w_in"] if h == 0 else net[f"w_ff_{h}"]
        layers.append(LinearTorch(w.shape, weight=torch.tensor(w), has_bias=False))
        tau_syn = net[f"tau_syn_{h}"]
        n, s = tau_syn.shape
        kwargs = dict(tau_mem=torch.tensor(net[f"tau_mem_{h}"]),
                      tau_syn=torch.tensor(tau_syn), threshold=torch.tensor(net[f"threshold_{h}"]),
                      bias=torch.tensor(net[f"bias_{h}"]), dt=dt)
        if f"w_rec_{h}" in net:
            kwargs.update(has_rec=True, w_rec=torch.tensor(net[f"w_rec_{h}"]))
        layers.append(LIFTorch((n * s, n), **kwargs))
    w = net["w_out"]
    layers.append(LinearTorch(w.shape, weight=torch.tensor(w), has_bias=False))
    layers.append(LIFTorch((w.shape[1],), tau_mem=torch.tensor(net["tau_mem_out"]),
                           tau_syn=torch.tensor(net["tau_syn_out"]),
                           threshold=torch.tensor(net["threshold_out"]),
                           bias=torch.tensor(net["bias_out"]), dt=dt))
    return Sequential(*layers)


def quantize(job, mappers, tmp):
    from rockpool.transform.quantize_methods import channel_quantize, global_quantize

    net = dict(np.load(os.path.join(tmp, job["net"])))
    spec = mappers[job["target"]](_rockpool_net(net).as_graph(), weight_dtype="float",
                                  threshold_dtype="float", dash_dtype="float")
    float_spec = {f"float:{k}": np.array(v) for k, v in spec.items()
                  if k not in ("mapped_graph", "aliases", "dt")}
    if job["method"] == "global":
        spec.update(global_quantize(**spec, fuzzy_scaling=bool(job.get("fuzzy", False))))
    else:
        spec.update(channel_quantize(**spec))
    out = {k: np.asarray(v) for k, v in spec.items() if k not in ("mapped_graph", "aliases")}
    out["n_aliases"] = np.asarray(sum(len(a) for a in spec["aliases"]))
    out.update(float_spec)
    return out


def from_nir(job, mappers, tmp):
    import nir
    from rockpool.nn.modules import from_nir as rockpool_from_nir

    graph = nir.read(job["path"])
    model = rockpool_from_nir(graph)
    spec = mappers[job["target"]](model.as_graph(), weight_dtype="float",
                                  threshold_dtype="float", dash_dtype="float")
    return {k: np.asarray(v) for k, v in spec.items() if k not in ("mapped_graph", "aliases")}


def time_sim(job, sims, tmp):
    spec = dict(np.load(os.path.join(tmp, job["spec"])))
    sim = sims[job["target"]].from_specification(**spec)
    x = np.load(os.path.join(tmp, job["x"]))
    times = []
    for _ in range(int(job.get("repeat", 1))):
        start = time.perf_counter()
        for b in range(x.shape[1]):
            sim.reset_state()
            sim(x[:, b])
        times.append(time.perf_counter() - start)
    return {"seconds": np.asarray(times)}


def main(tmp: str):
    warnings.simplefilter("ignore")
    sims, mappers = load_rockpool()
    with open(os.path.join(tmp, "jobs.json")) as f:
        jobs = json.load(f)
    for job in jobs:
        stem = os.path.join(tmp, job["id"])
        try:
            if job["kind"] == "simulate":
                result = simulate(job, sims, tmp)
            elif job["kind"] == "quantize":
                result = quantize(job, mappers, tmp)
            elif job["kind"] == "from_nir":
                result = from_nir(job, mappers, tmp)
            elif job["kind"] == "time":
                result = time_sim(job, sims, tmp)
            else:
                raise ValueError(f"unknown job kind {job['kind']!r}")
            np.savez(stem + ".out.npz", **result)
        except Exception:  # noqa: BLE001 - every vendor failure is reported to the test
            with open(stem + ".error.txt", "w") as f:
                f.write(traceback.format_exc())
    from importlib.metadata import version

    versions = {p: version(p) for p in ("rockpool", "xylosim", "nir", "numpy", "torch")}
    versions["samna_imported"] = "samna" in sys.modules
    with open(os.path.join(tmp, "versions.json"), "w") as f:
        json.dump(versions, f)


if __name__ == "__main__":
    main(sys.argv[1])
