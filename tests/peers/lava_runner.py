"""Run lava-dl netx HDF5 networks in Lava's fixed-point simulator (the Loihi 2 oracle).

Launched by ``tests/peers/lava_harness.py`` with the Python of the ``lava`` environment that
``tests/peers/setup_peers.sh`` builds (lava-nc 0.10.0, lava-dl 0.6.0); it imports Lava, never
nirjax. Usage::

    python lava_runner.py --check          # import Lava and netx, print the versions as JSON
    python lava_runner.py JOBS_DIR

``JOBS_DIR/jobs.json`` lists jobs ``{"id", "hdf5", "record_state"}``; the input is
``<id>.x.npy`` of shape ``[T, B, *input_shape]`` in NIR's layout (``[C, H, W]`` for images;
event counts: netx's first synapse treats any nonzero value as one spike,
``input_message_bits = 0``). For every job this writes ``<id>.out.npz`` with, for each netx
layer ``i`` that has neurons, ``s:<i>`` (its output spikes, ``[T, B, *shape]``, NIR layout)
and with ``record_state`` also ``u:<i>`` and ``v:<i>`` (the neuron's integer current and
voltage after each step), plus ``seconds`` (wall time of the runs, not counting building
and compiling the network) and ``build_seconds``; or ``<id>.error.txt`` with the exception.
Lava's own layout is ``(W, H, C)``; the runner converts both ways.

How the network is run (Lava's own processes, called as its users call them):

* ``lava.lib.dl.netx.hdf5.Network(net_config=path)``, its ``inp`` fed by a
  ``lava.proc.io.source.RingBuffer`` holding the whole batch (sample after sample, ``B*T``
  steps) and each layer's ``out`` read by a ``lava.proc.io.sink.RingBuffer``;
* ``run(condition=RunSteps(T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))`` once per sample;
  between samples every neuron's ``u`` and ``v`` and every synapse's ``a_buff`` are set back
  to 0, so each sample starts from Lava's initial state exactly as a freshly built network
  would (one build and compile per job, as a user timing Lava would do);
* with ``record_state``, the network runs one step at a time and ``u``/``v`` are read with
  ``Var.get()`` after each step.

Environment quirks this runner handles (see ``make_lava_env`` in ``setup_peers.sh``):
``lava.lib.dl.slayer`` imports ``torchvision`` at import time, for object detection only; the
PyPI torchvision needs a CUDA torch, so a stub module stands in for it (netx never calls it).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import types

import numpy as np


def _stub_torchvision():
    """Put an empty ``torchvision`` (with ``ops`` and ``transforms``) in ``sys.modules``."""
    if "torchvision" in sys.modules:
        return
    tv = types.ModuleType("torchvision")
    for sub in ("ops", "transforms"):
        mod = types.ModuleType(f"torchvision.{sub}")
        setattr(tv, sub, mod)
        sys.modules[f"torchvision.{sub}"] = mod
    sys.modules["torchvision"] = tv


def _import_lava():
    _stub_torchvision()
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # prophesee toolbox notice
        import lava.lib.dl.netx  # noqa: F401
    from importlib.metadata import version

    return {"lava-nc": version("lava-nc"), "lava-dl": version("lava-dl"),
            "numpy": np.__version__, "python": sys.version.split()[0]}


def _layers_with_neurons(net):
    return [(i, layer) for i, layer in enumerate(net.layers) if hasattr(layer, "neuron")]


def _synapses(layer):
    return [getattr(layer, name) for name in ("synapse", "synapse_rec") if hasattr(layer, name)]


def _to_nir(a):
    """``[T, B, W, H, C]`` (Lava) -> ``[T, B, C, H, W]`` (NIR); flat layers unchanged."""
    return np.transpose(a, (0, 1, 4, 3, 2)) if a.ndim == 5 else a


def run_job(job, jobs_dir):
    """Run one netx network on one batch; returns the arrays to save."""
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    x = np.load(os.path.join(jobs_dir, job["id"] + ".x.npy"))
    T, B = x.shape[:2]
    record_state = bool(job.get("record_state"))
    start = time.perf_counter()
    net = netx.hdf5.Network(net_config=job["hdf5"])
    layers = _layers_with_neurons(net)
    # [*inp.shape, B*T] in Lava's layout: the source sends column (time_step - 1) each step
    flat = np.moveaxis(x, 1, 0).reshape((B * T,) + x.shape[2:])  # sample after sample
    if len(net.inp.shape) == 3:  # NIR [C, H, W] -> Lava (W, H, C)
        flat = np.transpose(flat, (0, 3, 2, 1))
    data = np.moveaxis(flat.reshape((B * T,) + tuple(net.inp.shape)), 0, -1).astype(np.int32)
    source = Source(data=data)
    source.s_out.connect(net.inp)
    sinks = {}
    for i, layer in layers:
        sinks[i] = Sink(shape=layer.out.shape, buffer=B * T)
        layer.out.connect(sinks[i].a_in)
    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    states = {f"{k}:{i}": np.zeros((T, B) + layer.neuron.v.shape, np.int64)
              for i, layer in layers for k in "uv"} if record_state else {}
    run_seconds = 0.0
    build_seconds = None
    try:
        for b in range(B):
            if b > 0:  # back to the initial state
                for _, layer in layers:
                    layer.neuron.u.set(np.zeros(layer.neuron.u.shape))
                    layer.neuron.v.set(np.zeros(layer.neuron.v.shape))
                    for syn in _synapses(layer):
                        buf = getattr(syn, "a_buff", None) or syn.a_buf  # Conv: a_buf
                        buf.set(np.zeros(buf.shape))
            t0 = time.perf_counter()
            if record_state:
                for t in range(T):
                    net.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
                    if build_seconds is None:
                        build_seconds = time.perf_counter() - start
                        t0 = time.perf_counter()
                    for i, layer in layers:
                        states[f"u:{i}"][t, b] = layer.neuron.u.get()
                        states[f"v:{i}"][t, b] = layer.neuron.v.get()
            else:
                if build_seconds is None:  # first run compiles: time it as build
                    net.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
                    build_seconds = time.perf_counter() - start
                    t0 = time.perf_counter()
                    net.run(condition=RunSteps(num_steps=T - 1), run_cfg=cfg) if T > 1 else None
                else:
                    net.run(condition=RunSteps(num_steps=T), run_cfg=cfg)
            run_seconds += time.perf_counter() - t0
        out = {}
        for i, sink in sinks.items():
            s = sink.data.get()  # [*shape, B*T]
            s = np.moveaxis(s, -1, 0).reshape((B, T) + s.shape[:-1])
            out[f"s:{i}"] = _to_nir(np.moveaxis(s, 0, 1))
    finally:
        net.stop()
    out.update({k: _to_nir(v) for k, v in states.items()})
    out["seconds"] = np.array(run_seconds)
    out["build_seconds"] = np.array(build_seconds or 0.0)
    out["layers"] = np.array([i for i, _ in layers])
    return out


def main(argv):
    if argv[1] == "--check":
        print(json.dumps(_import_lava()))
        return
    jobs_dir = argv[1]
    info = _import_lava()
    with open(os.path.join(jobs_dir, "jobs.json")) as f:
        jobs = json.load(f)
    for job in jobs:
        stem = os.path.join(jobs_dir, job["id"])
        try:
            np.savez(stem + ".out.npz", **run_job(job, jobs_dir))
        except Exception as e:  # the harness reports Lava's own exception
            with open(stem + ".error.txt", "w") as f:
                f.write(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
    with open(os.path.join(jobs_dir, "versions.json"), "w") as f:
        json.dump(info, f)


if __name__ == "__main__":
    main(sys.argv)
