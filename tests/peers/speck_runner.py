"""Run CNNs through sinabs 3.1.3's DYNAP-CNN / Speck backend (the oracle of the ``speck`` target).

Launched by ``tests/peers/speck_harness.py`` with the Python of the ``sinabs`` peer
environment; it imports sinabs, never nirjax. Usage::

    python speck_runner.py JOBS_DIR

``JOBS_DIR/jobs.json`` lists jobs. Each job builds one network and hands it to sinabs the
way its users do:

* ``"graph"``: a NIR graph (a ``.nir`` path or a portable description, as for ``runner.py``)
  imported with ``sinabs.from_nir(graph, batch_size=B)``. ``DynapcnnNetwork`` needs ONE
  threshold per layer (``discretize.py`` builds ``torch.tensor((min_v_mem, threshold))``,
  which fails on a per-neuron tensor), so every ``IAFSqueeze``'s threshold and lower clamp
  (``from_nir`` sets ``min_v_mem = -v_threshold``) are replaced by their common value; a
  layer whose values differ is reported as an error, not averaged.
* ``"chain"``: a list of torch layers (Conv2d, IF, SumPool2d, AvgPool2d, Flatten, Affine,
  Linear) built as an ``nn.Sequential`` (``sinabs.from_nir`` imports neither AvgPool2d nor a
  bias-free Linear).
* ``"mapping"``: only layer dimensions. ``DynapcnnLayer`` objects are built with their
  convolution on the ``meta`` device (no weights are allocated) and handed to
  ``Speck2FConfigBuilder.map_layers_to_cores``.

Then ``DynapcnnNetwork(net, input_shape=..., dvs_input=False, discretize=True)`` and, for
graph and chain jobs, the input ``<id>.x.npy`` (``[T, B, C, H, W]`` event counts) is passed
through its forward with a hook on every layer's ``IAFSqueeze``. Outputs, in
``<id>.out.npz``: per DYNAP-CNN layer ``i`` (sinabs' topological index) ``weight{i}``,
``bias{i}`` (absent without bias), ``threshold``, ``min_v_mem``, ``memory`` ``[L, 3]``
(kernel, neuron, bias words), ``cores`` ``[L]`` (the layer-to-core map) and ``spikes{i}``
(``[T, B, C, H, W]`` spike counts of layer ``i`` per step, before pooling); ``<id>.meta.json``
holds the shapes, pooling, weight rescaling and destinations; a failure writes
``<id>.error.txt``. A ``"bench"`` job times the discretized forward on a batch.

``samna`` is never imported: the ``samna`` on PyPI is a bootstrap that tries to download the
real package at import, and sinabs imports ``samna`` at module level (``dynapcnn_network.py:6``,
``config_builder.py:4``, ``chips/speck2f.py:3-4``, ``io.py:8-9``), so blocking it with
``sys.modules["samna"] = None`` makes ``import sinabs.backend.dynapcnn`` fail. Instead an
import hook serves inert stand-in modules for ``samna``, ``samna.*`` and ``samnagui`` before
sinabs is imported; nothing this runner calls uses them (configuration building and device
I/O are not run).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import sys
import time
import traceback
import types

import numpy as np

_BLOCKED = ("samna", "samnagui")


class _Inert:
    """Stands in for any samna object: attributes and calls give more inert objects."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()

    def __getattr__(self, name):
        return _Inert()


class _InertModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert()


class _SamnaBlocker(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import hook: ``samna`` and ``samnagui`` resolve to inert modules, never the package."""

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in _BLOCKED:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _InertModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []


def block_samna():
    """Install the import hook (idempotent) before anything imports sinabs' backend."""
    if not any(isinstance(f, _SamnaBlocker) for f in sys.meta_path):
        for name in list(sys.modules):
            if name.split(".")[0] in _BLOCKED:
                del sys.modules[name]
        sys.meta_path.insert(0, _SamnaBlocker())


def samna_is_blocked() -> bool:
    """True when every loaded ``samna*`` module is an inert stand-in."""
    return all(isinstance(m, _InertModule) for n, m in sys.modules.items()
               if n.split(".")[0] in _BLOCKED)


# ----------------------------------------------------------------------------- networks


def _scalar_thresholds(module):
    """One threshold and lower clamp per IAFSqueeze (what DynapcnnNetwork needs)."""
    import torch
    import sinabs.layers as sl

    for name, m in module.named_modules():
        if not isinstance(m, sl.IAFSqueeze):
            continue
        for attr in ("spike_threshold", "min_v_mem"):
            p = getattr(m, attr)
            if p is None or p.numel() == 1:
                continue
            values = torch.unique(p.detach())
            if values.numel() != 1:
                raise ValueError(f"IAFSqueeze {name!r}: {attr} differs between neurons "
                                 f"({values.numel()} values); the chip has one per layer")
            setattr(m, attr, torch.nn.Parameter(values.reshape(()), requires_grad=False))


def build_chain(chain, arrays, batch_size):
    """``nn.Sequential`` from a chain description (see the module docstring)."""
    import torch
    from torch import nn
    import sinabs.layers as sl

    def tensor(key):
        return None if key is None else torch.from_numpy(np.asarray(arrays[key], np.float32))

    mods = []
    for layer in chain:
        kind = layer["type"]
        if kind == "Conv2d":
            w, b = tensor(layer["weight"]), tensor(layer.get("bias"))
            conv = nn.Conv2d(w.shape[1] * layer.get("groups", 1), w.shape[0],
                             tuple(w.shape[2:]), stride=tuple(layer["stride"]),
                             padding=tuple(layer["padding"]),
                             dilation=tuple(layer.get("dilation", (1, 1))),
                             groups=layer.get("groups", 1), bias=b is not None)
            conv.weight.data = w.clone()
            if b is not None:
                conv.bias.data = b.clone()
            mods.append(conv)
        elif kind in ("Affine", "Linear"):
            w, b = tensor(layer["weight"]), tensor(layer.get("bias"))
            lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
            lin.weight.data = w.clone()
            if b is not None:
                lin.bias.data = b.clone()
            mods.append(lin)
        elif kind == "IF":
            thr = torch.tensor(np.float32(layer["threshold"]))
            vmin = layer.get("min_v_mem")
            mods.append(sl.IAFSqueeze(
                batch_size=batch_size, spike_threshold=thr,
                min_v_mem=None if vmin is None else torch.tensor(np.float32(vmin))))
        elif kind == "SumPool2d":
            mods.append(sl.SumPool2d(tuple(layer["kernel"]), tuple(layer["stride"])))
        elif kind == "AvgPool2d":
            mods.append(nn.AvgPool2d(tuple(layer["kernel"]), tuple(layer["stride"])))
        elif kind == "Flatten":
            mods.append(nn.Flatten())
        else:
            raise ValueError(f"unknown chain layer type {kind!r}")
    return nn.Sequential(*mods)


def dynapcnn_network(module, input_shape):
    """sinabs' ``DynapcnnNetwork`` of ``module`` with discretization, without DVS input."""
    from sinabs.backend.dynapcnn import DynapcnnNetwork

    return DynapcnnNetwork(module, input_shape=tuple(input_shape), dvs_input=False,
                           discretize=True)


def layer_to_core(net):
    """``Speck2FConfigBuilder.map_layers_to_cores`` of ``net``: ``(map, error text)``."""
    from sinabs.backend.dynapcnn.chips.speck2f import Speck2FConfigBuilder

    try:
        return Speck2FConfigBuilder.map_layers_to_cores(net.dynapcnn_layers), None
    except ValueError as e:
        return None, f"{type(e).__name__}: {e}"


def _np(t):
    return t.detach().cpu().numpy()


def describe(net, result, meta):
    """Integer parameters, memory and core map of every DYNAP-CNN layer."""
    layers = net.dynapcnn_layers
    assert list(layers) == list(range(len(layers))), list(layers)
    thr, vmin, mem = [], [], []
    meta["layers"] = []
    for i, layer in layers.items():
        conv, spk = layer.conv_layer, layer.spk_layer
        result[f"weight{i}"] = _np(conv.weight)
        if conv.bias is not None:
            result[f"bias{i}"] = _np(conv.bias)
        thr.append(float(spk.spike_threshold))
        vmin.append(float(spk.min_v_mem) if spk.min_v_mem is not None else float("nan"))
        summary = layer.memory_summary()
        mem.append([int(summary["kernel"]), int(summary["neuron"]), int(summary["bias"])])
        meta["layers"].append({
            "in_shape": [int(v) for v in layer.in_shape],
            "neuron_shape": [int(v) for v in layer.get_neuron_shape()],
            "pool": [[int(v) for v in p] for p in layer.pool],
            "rescale_weights": float(layer.rescale_weights),
            "kernel": [int(v) for v in conv.kernel_size],
            "stride": [int(v) for v in conv.stride],
            "padding": [int(v) for v in conv.padding],
        })
    result["threshold"] = np.array(thr)
    result["min_v_mem"] = np.array(vmin)
    result["memory"] = np.array(mem, np.int64).reshape(-1, 3)
    meta["destinations"] = {str(k): [int(d) for d in v]
                            for k, v in net.layer_destination_map.items()}
    cores, error = layer_to_core(net)
    meta["mapping_error"] = error
    if cores is not None:
        result["cores"] = np.array([cores[i] for i in layers], np.int64)


def forward_counts(net, x):
    """Spike counts of every layer per step: ``{i: [T, B, ...]}`` and the network output."""
    import torch

    T, B = x.shape[:2]
    captured = {}
    hooks = [layer.spk_layer.register_forward_hook(
        lambda mod, inp, out, i=i: captured.__setitem__(i, _np(out)))
        for i, layer in net.dynapcnn_layers.items()]
    xs = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 0, 1)).reshape(
        (B * T,) + x.shape[2:]).astype(np.float32))
    try:
        with torch.no_grad():
            out = net(xs)
    finally:
        for h in hooks:
            h.remove()
    counts = {i: np.moveaxis(c.reshape((B, T) + c.shape[1:]), 0, 1)
              for i, c in captured.items()}
    out = _np(out)
    return counts, np.moveaxis(out.reshape((B, T) + out.shape[1:]), 0, 1)


def mapping_layers(dims):
    """``DynapcnnLayer`` objects of the given sizes, their convolutions on the meta device."""
    from torch import nn
    import sinabs.layers as sl
    from sinabs.backend.dynapcnn import DynapcnnLayer

    layers = {}
    for i, d in enumerate(dims):
        conv = nn.Conv2d(d["c_in"], d["c_out"], d["kernel"], stride=d.get("stride", 1),
                         padding=d.get("padding", 0), bias=d.get("bias", True),
                         device="meta")
        layers[i] = DynapcnnLayer(conv, sl.IAFSqueeze(batch_size=1),
                                  in_shape=tuple(d["in_shape"]), pool=[[1, 1]],
                                  discretize=False)
    return layers


def run_job(job, jobs_dir):
    """One job; returns ``(arrays, meta)``."""
    import runner  # noqa: the portable-graph reader of the other peers

    result, meta = {}, {}
    if "mapping" in job:
        from sinabs.backend.dynapcnn.chips.speck2f import Speck2FConfigBuilder

        layers = mapping_layers(job["mapping"])
        result["memory"] = np.array([[int(v) for v in (lyr.memory_summary()[k]
                                      for k in ("kernel", "neuron", "bias"))]
                                     for lyr in layers.values()], np.int64).reshape(-1, 3)
        try:
            cores = Speck2FConfigBuilder.map_layers_to_cores(layers)
            result["cores"] = np.array([cores[i] for i in layers], np.int64)
            meta["mapping_error"] = None
        except ValueError as e:
            meta["mapping_error"] = f"{type(e).__name__}: {e}"
        return result, meta

    x = np.load(os.path.join(jobs_dir, job["id"] + ".x.npy"))
    T, B = x.shape[:2]
    if "graph" in job:
        import sinabs

        module = sinabs.from_nir(runner.load_graph(job, jobs_dir), batch_size=B)
        _scalar_thresholds(module)
    else:
        arrays = np.load(os.path.join(jobs_dir, job["id"] + ".chain.npz"))
        module = build_chain(job["chain"], arrays, B)
    net = dynapcnn_network(module, job["input_shape"])
    describe(net, result, meta)
    if job.get("bench"):
        meta["bench"] = bench(net, x, job.get("repeats", 3))
        return result, meta
    counts, out = forward_counts(net, x)
    for i, c in counts.items():
        result[f"spikes{i}"] = c
    result["out"] = out
    return result, meta


def bench(net, x, repeats):
    """Seconds per forward of the whole batch (state reset before each run)."""
    import torch

    T, B = x.shape[:2]
    xs = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 0, 1)).reshape(
        (B * T,) + x.shape[2:]).astype(np.float32))
    times = []
    for _ in range(repeats):
        for layer in net.dynapcnn_layers.values():
            layer.spk_layer.reset_states()
        t0 = time.perf_counter()
        with torch.no_grad():
            net(xs)
        times.append(time.perf_counter() - t0)
    return {"seconds": times, "batch": int(B), "steps": int(T),
            "threads": int(torch.get_num_threads())}


def main(argv):
    jobs_dir = argv[1]
    block_samna()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(jobs_dir, "jobs.json")) as f:
        jobs = json.load(f)
    for job in jobs:
        stem = os.path.join(jobs_dir, job["id"])
        try:
            result, meta = run_job(job, jobs_dir)
            np.savez(stem + ".out.npz", **result)
            with open(stem + ".meta.json", "w") as f:
                json.dump(meta, f)
        except Exception as e:  # the harness reports sinabs' own exception
            with open(stem + ".error.txt", "w") as f:
                f.write(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
    import nir
    import sinabs
    import torch

    info = {"sinabs": sinabs.__version__, "torch": torch.__version__, "nir": nir.version,
            "samna_blocked": samna_is_blocked()}
    with open(os.path.join(jobs_dir, "versions.json"), "w") as f:
        json.dump(info, f)


if __name__ == "__main__":
    main(sys.argv)
