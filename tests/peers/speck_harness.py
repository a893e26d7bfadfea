"""Cross-check nirjax's Speck lowering against sinabs 3.1.3 (the ``sinabs`` peer environment).

Used by ``tests/test_speck_vendor.py`` and, for throughput, by Phase B's benchmark. A *chain*
is a seeded random CNN described layer by layer (:func:`random_chain`); :func:`chain_graph`
turns it into a NIR graph for nirjax and ``speck_runner.py`` builds the same layers in torch
for sinabs. :func:`run_sinabs` runs jobs (paper graph, chains, memory-only mapping problems,
throughput) in the sinabs environment in one subprocess; :func:`simulate` is the reference
integer simulation of a lowered network: a plain Python loop over time steps of nirjax's
kernels (``kernels/speck.py`` for the neurons, the float convolution, affine and sum-pooling
kernels at full precision for the integer sums).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import nir

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402  (peers_dir, portable graph descriptions)

RUNNER = pathlib.Path(__file__).with_name("speck_runner.py")
PAPER_CNN = harness.DATA / "cnn_sinabs.nir"
F32 = np.float32


def sinabs_python():
    """The sinabs environment's Python, or ``None`` when it was not built."""
    return harness.peer_python("sinabs")


# ----------------------------------------------------------------------------- random CNNs


def random_chain(seed: int):
    """A random CNN within Speck's rules: ``(input_shape, layers, arrays)``.

    1-3 convolutions (kernel 1-5, stride 1-2, padding 0-2, optional bias, SumPool2d or
    AvgPool2d 2 or chained 2x2 after some), Flatten, then 1-2 Affine/Linear layers, each
    followed by an IF with one threshold (lower clamp ``-threshold``, as ``sinabs.from_nir``).
    Weight, bias and threshold magnitudes vary so that each of the three scales
    (weights, bias, threshold) limits some layer, and weights lean positive or negative so
    that both branches of the scale rule occur.
    """
    rng = np.random.default_rng(seed)
    c = int(rng.integers(1, 4))
    hw = int(rng.integers(10, 21))
    shape = (c, hw, hw)
    layers, arrays = [], {}

    def param(name, value):
        arrays[name] = np.asarray(value, F32)
        return name

    def neuron(i, gain):
        thr = float(F32(gain * rng.uniform(0.3, 2.0)))
        if rng.random() < 0.15:
            thr = float(F32(thr * 300))  # the threshold limits the scale
        return {"type": "IF", "threshold": thr, "min_v_mem": -thr, "name": f"if{i}"}

    def weights(shape_w, fan_in, gain=2.0):
        w = rng.normal(0, 1, shape_w) * gain / np.sqrt(fan_in)
        lean = rng.choice([-0.4, 0.0, 0.4])
        return (w + lean * np.abs(w)).astype(F32)

    n_conv = int(rng.integers(1, 4))
    i = 0
    for _ in range(n_conv):
        k = int(rng.choice([1, 2, 3, 5]))
        s = int(rng.choice([1, 1, 2]))
        p = int(rng.integers(0, min(2, k - 1) + 1)) if k > 1 else 0
        co = int(rng.integers(2, 9))
        out_hw = (shape[1] + 2 * p - k) // s + 1
        if out_hw < 2:
            break
        # NIR's Conv2d always has a bias (sinabs.from_nir always makes one): zeros or not
        bias = np.zeros(co)
        if rng.random() < 0.7:
            bias = rng.normal(0, 0.3, co) * (8.0 if rng.random() < 0.2 else 1.0)
        layers.append({"type": "Conv2d", "name": f"conv{i}",
                       "weight": param(f"conv{i}.w", weights((co, shape[0], k, k),
                                                             shape[0] * k * k)),
                       "bias": param(f"conv{i}.b", bias),
                       "stride": [s, s], "padding": [p, p]})
        layers.append(neuron(i, 1.0))
        shape = (co, out_hw, out_hw)
        choice = rng.integers(0, 4)
        if choice and shape[1] >= 4:
            kinds = {1: ["SumPool2d"], 2: ["AvgPool2d"], 3: ["SumPool2d", "AvgPool2d"]}
            for j, kind in enumerate(kinds[int(choice)]):
                if shape[1] < 2:
                    break
                layers.append({"type": kind, "name": f"pool{i}_{j}", "kernel": [2, 2],
                               "stride": [2, 2]})
                shape = (shape[0], shape[1] // 2, shape[2] // 2)
        i += 1
    layers.append({"type": "Flatten", "name": "flat"})
    n = int(np.prod(shape))
    for j in range(int(rng.integers(1, 3))):
        out = int(rng.integers(3, 12))
        kind = "Affine" if rng.random() < 0.7 else "Linear"
        bias = param(f"fc{j}.b", rng.normal(0, 0.2, out)) if kind == "Affine" else None
        layers.append({"type": kind, "name": f"fc{j}",
                       "weight": param(f"fc{j}.w", weights((out, n), n, 6.0)), "bias": bias})
        layers.append(neuron(i, 1.0))
        i += 1
        n = out
    return (c, hw, hw), layers, arrays


def chain_graph(input_shape, layers, arrays) -> nir.NIRGraph:
    """The chain as a NIR graph (nir 1.0.8 objects), node names as in the chain."""
    nodes = {"input": nir.Input(input_type=np.array(input_shape))}
    edges, prev = [], "input"
    shape = tuple(input_shape)
    for layer in layers:
        kind, name = layer["type"], layer["name"]
        if kind == "Conv2d":
            w = arrays[layer["weight"]]
            node = nir.Conv2d(input_shape=np.array(shape[1:]), weight=w,
                              stride=np.array(layer["stride"]),
                              padding=np.array(layer["padding"]), dilation=np.array([1, 1]),
                              groups=1, bias=arrays[layer["bias"]])
            k, s, p = w.shape[2], layer["stride"][0], layer["padding"][0]
            hw = (shape[1] + 2 * p - k) // s + 1
            shape = (w.shape[0], hw, hw)
        elif kind == "IF":
            thr = F32(layer["threshold"])
            node = nir.IF(r=np.ones(shape, F32), v_threshold=np.full(shape, thr, F32),
                          v_reset=np.zeros(shape, F32))
        elif kind in ("SumPool2d", "AvgPool2d"):
            cls = nir.SumPool2d if kind == "SumPool2d" else nir.AvgPool2d
            node = cls(kernel_size=np.array(layer["kernel"]), stride=np.array(layer["stride"]),
                       padding=np.array([0, 0]))
            shape = (shape[0], shape[1] // layer["kernel"][0], shape[2] // layer["kernel"][1])
        elif kind == "Flatten":
            node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
            shape = (int(np.prod(shape)),)
        elif kind in ("Affine", "Linear"):
            w = arrays[layer["weight"]]
            node = nir.Affine(weight=w, bias=arrays[layer["bias"]]) if kind == "Affine" \
                else nir.Linear(weight=w)
            shape = (w.shape[0],)
        else:
            raise ValueError(kind)
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    nodes["output"] = nir.Output(output_type=np.array(shape))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


# ----------------------------------------------------------------------------- sinabs


@dataclasses.dataclass
class SinabsResult:
    """What sinabs returned for one job (``error`` set when it raised)."""

    arrays: dict
    meta: dict
    error: str | None


def run_sinabs(jobs: list, timeout: float = 900) -> tuple:
    """Run jobs in the sinabs environment; returns ``({job id: SinabsResult}, versions)``.

    A job is a dict with ``id`` and one of: ``graph`` (a ``nir.NIRGraph`` or a ``.nir`` path)
    with ``x``; ``chain`` (``(input_shape, layers, arrays)`` from :func:`random_chain`) with
    ``x``; ``mapping`` (a list of layer dimension dicts). ``bench=True`` (with ``repeats``)
    times the forward instead of recording it.
    """
    py = sinabs_python()
    if py is None:
        raise harness.PeerUnavailable(f"no sinabs environment under {harness.peers_dir()}")
    with tempfile.TemporaryDirectory(prefix="nirjax-speck-") as tmp:
        specs = []
        for job in jobs:
            spec = {k: v for k, v in job.items() if k not in ("graph", "chain", "x")}
            if "x" in job:
                np.save(os.path.join(tmp, f"{job['id']}.x.npy"), np.asarray(job["x"], F32))
            if "graph" in job:
                g = job["graph"]
                if isinstance(g, (str, pathlib.Path)):
                    spec["graph"] = str(g)
                else:
                    arrays = {}
                    with open(os.path.join(tmp, f"{job['id']}.graph.json"), "w") as f:
                        json.dump(harness.graph_description(g, arrays), f)
                    np.savez(os.path.join(tmp, f"{job['id']}.graph.npz"), **arrays)
                    spec["graph"] = f"{job['id']}.graph.json"
            if "chain" in job:
                input_shape, layers, arrays = job["chain"]
                spec["chain"] = layers
                spec.setdefault("input_shape", list(input_shape))
                np.savez(os.path.join(tmp, f"{job['id']}.chain.npz"), **arrays)
            specs.append(spec)
        with open(os.path.join(tmp, "jobs.json"), "w") as f:
            json.dump(specs, f)
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        proc = subprocess.run([str(py), str(RUNNER), tmp], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"sinabs runner failed:\n{proc.stdout[-3000:]}\n"
                               f"{proc.stderr[-3000:]}")
        results = {}
        for job in jobs:
            stem = os.path.join(tmp, job["id"])
            if os.path.exists(stem + ".error.txt"):
                with open(stem + ".error.txt") as f:
                    results[job["id"]] = SinabsResult({}, {}, f.read())
                continue
            with np.load(stem + ".out.npz") as data:
                arrays = {k: data[k] for k in data.files}
            with open(stem + ".meta.json") as f:
                meta = json.load(f)
            results[job["id"]] = SinabsResult(arrays, meta, None)
        with open(os.path.join(tmp, "versions.json")) as f:
            versions = json.load(f)
    return results, versions


def sinabs_throughput(graph, x, repeats: int = 3) -> dict:
    """Time sinabs' discretized ``DynapcnnNetwork`` forward on the batch ``x``.

    Args:
        graph: a ``nir.NIRGraph``, a ``.nir`` path or a chain (``random_chain``'s triple).
        x: ``[T, B, C, H, W]`` input event counts.
        repeats: forwards timed (state reset before each).

    Returns:
        ``{"seconds": [...], "batch": B, "steps": T, "threads": torch threads,
        "samples_per_s": B / min(seconds)}``.
    """
    key = "chain" if isinstance(graph, tuple) else "graph"
    job = {"id": "bench", key: graph, "x": x, "bench": True, "repeats": repeats,
           "input_shape": list(np.shape(x)[2:])}
    results, _ = run_sinabs([job])
    res = results["bench"]
    if res.error:
        raise RuntimeError(res.error)
    out = dict(res.meta["bench"])
    out["samples_per_s"] = out["batch"] / min(out["seconds"])
    return out


# ----------------------------------------------------------------------------- reference loop


def simulate(network, x):
    """Integer simulation of a lowered network, one step at a time in a Python loop.

    Args:
        network: a ``SpeckNetwork`` (``nirjax.lowering.speck.quantize``).
        x: ``[T, B, C, H, W]`` input event counts.

    Returns:
        ``(spikes, out, peak)``: per layer ``[T, B, *neuron_shape]`` int32 spike counts, the
        output after the last layer's pooling ``[T, B, ...]``, and the largest ``|v'|`` and
        ``|W s + b|`` met (to show the run stayed in float32's exact range).
    """
    import jax
    import jax.numpy as jnp
    from nirjax.kernels import conv as conv_k
    from nirjax.kernels import linear as linear_k
    from nirjax.kernels import pooling as pool_k
    from nirjax.kernels import speck as speck_k

    mm = linear_k.MatmulConfig(precision="highest")

    def layer_fn(q):
        layer = q.layer
        bias = np.zeros(q.weight.shape[0], F32) if q.bias is None else q.bias.astype(F32)
        params = speck_k.IAFParams(jnp.int32(q.threshold), jnp.int32(q.min_v_mem))
        if layer.kind == "conv":
            cp = conv_k.ConvParams(jnp.asarray(q.weight, F32), jnp.asarray(bias))
            cfg = conv_k.ConvConfig(tuple(layer.stride), tuple(layer.padding),
                                    tuple(layer.dilation), int(layer.groups))

            def current(s):
                return conv_k.conv(cp, s.astype(F32), cfg, mm)
        else:
            ap = linear_k.AffineParams(jnp.asarray(q.linear_weight, F32), jnp.asarray(bias))

            def current(s):
                return linear_k.affine(ap, s.astype(F32).reshape(-1), mm)

        pools = [pool_k.PoolConfig(tuple(k), tuple(st), (0, 0))
                 for k, st in zip(layer.pool, layer.pool_strides)]

        def step(state, s):
            i = current(s)
            v_int = state.v + i.astype(jnp.int32)
            state, n = speck_k.iaf_step(params, state, i)
            out = n.astype(F32)
            for cfg_p in pools:
                out = pool_k.sum_pool(out, cfg_p)
            peak = jnp.maximum(jnp.max(jnp.abs(v_int)), jnp.max(jnp.abs(i)).astype(jnp.int32))
            return state, n, out, peak

        return jax.jit(jax.vmap(step)), layer.neuron_shape if layer.kind == "conv" \
            else (q.weight.shape[0],)

    fns = [layer_fn(q) for q in network.layers]
    T, B = x.shape[:2]
    states = [speck_k.IAFState(jnp.zeros((B,) + tuple(shape), jnp.int32)) for _, shape in fns]
    spikes = [[] for _ in fns]
    outs, peak = [], 0
    for t in range(T):
        s = jnp.asarray(x[t], F32)
        for li, (fn, _) in enumerate(fns):
            states[li], n, s, pk = fn(states[li], s)
            spikes[li].append(np.asarray(n))
            peak = max(peak, int(jnp.max(pk)))
        outs.append(np.asarray(s))
    return [np.stack(sp) for sp in spikes], np.stack(outs), peak
