"""Graphs and an independent oracle for the ``loihi2`` lowering tests.

* Graph builders: NIR chains of the shape netx runs (LIF / CubaLIF / IF layers, Affine and
  Linear, negative weights, biases, per-neuron thresholds, a self-recurrent layer, Delay
  nodes before and after a weight node, Conv2d -> Flatten -> Affine), and a generator of
  random such chains.
* :func:`netx_oracle`: what Lava 0.10 computes for a lava-dl netx HDF5 file, written from
  Lava's update equations as a NumPy int64 loop over steps, layers and samples. It reads the
  file with h5py (not with nirjax's reader) and uses no nirjax code: per step, every layer's
  neurons integrate what its synapse sent on the previous step (``a``), then every synapse
  accumulates this step's spikes of the layer before it (and of its own layer for
  ``weight_rec``) for the step ``1 + delay`` later::

      u = wrap24(trunc0(u (4096 - iDecay) / 4096) + (a << 6))
      v = clip(trunc0(v (4096 - vDecay) / 4096) + u + (bias << 6), +-(2**23 - 1))
      s = v > vThMant << 6;   v = 0 where s

  Dense synapses add ``W[i, j]`` for every input ``j`` that is nonzero (netx's packing keeps
  that sum exact for the weights the lowering writes; Lava itself checks that in the vendor
  tests); a conv synapse correlates the kernel with the binary input, zero padding, and clamps
  the sum to signed 24 bits.
"""

from __future__ import annotations

import zlib

import h5py
import nir
import numpy as np

HALF = 2 ** 23


def rng_for(key: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(key.encode()))


def _arr(n, v):
    return np.broadcast_to(np.asarray(v, np.float32), np.atleast_1d(n)).copy()


def lif(n, tau, thr=1.0, v_leak=0.0, r=1.0):
    return nir.LIF(tau=_arr(n, tau), r=_arr(n, r), v_leak=_arr(n, v_leak),
                   v_threshold=_arr(n, thr), v_reset=_arr(n, 0.0))


def cuba(n, tau_syn, tau_mem, thr=1.0, w_in=1.0, r=1.0, v_leak=0.0):
    return nir.CubaLIF(tau_syn=_arr(n, tau_syn), tau_mem=_arr(n, tau_mem), r=_arr(n, r),
                       v_leak=_arr(n, v_leak), v_threshold=_arr(n, thr),
                       v_reset=_arr(n, 0.0), w_in=_arr(n, w_in))


def if_(n, thr=1.0, r=1.0):
    return nir.IF(r=_arr(n, r), v_threshold=_arr(n, thr), v_reset=_arr(n, 0.0))


def graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges)


def g_mlp(rng):
    """Three layers (LIF, CubaLIF, IF), negative weights, biases, per-neuron thresholds."""
    w = lambda o, i, s=1.0: (rng.normal(0, s, (o, i))).astype(np.float32)
    return graph({
        "input": nir.Input(input_type=np.array([12])),
        "fc1": nir.Affine(weight=w(20, 12, 1.5), bias=rng.normal(0, 0.2, 20).astype(np.float32)),
        "lif1": lif(20, 4e-3, thr=rng.uniform(0.5, 1.5, 20)),
        "fc2": nir.Linear(weight=w(15, 20, 2.0)),
        "cuba2": cuba(15, 2e-3, 5e-3, thr=0.3, w_in=1.5),
        "fc3": nir.Affine(weight=w(6, 15, 3.0), bias=rng.normal(0, 0.3, 6).astype(np.float32)),
        "if3": if_(6, thr=2.0),
        "output": nir.Output(output_type=np.array([6])),
    }, [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "cuba2"),
        ("cuba2", "fc3"), ("fc3", "if3"), ("if3", "output")])


def g_recurrent(rng):
    """A recurrent CubaLIF layer (netx dense_rec) and a LIF readout layer."""
    return graph({
        "input": nir.Input(input_type=np.array([8])),
        "fc1": nir.Linear(weight=rng.normal(0, 2.0, (10, 8)).astype(np.float32)),
        "lif1": cuba(10, 3e-3, 4e-3, thr=0.2),
        "w_rec": nir.Linear(weight=rng.normal(0, 1.0, (10, 10)).astype(np.float32)),
        "fc2": nir.Linear(weight=rng.normal(0, 2.0, (4, 10)).astype(np.float32)),
        "lif2": lif(4, 3e-3, thr=0.5),
        "output": nir.Output(output_type=np.array([4])),
    }, [("input", "fc1"), ("fc1", "lif1"), ("lif1", "w_rec"), ("w_rec", "lif1"),
        ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")])


def g_delays(rng, dt):
    """Per-input and per-output Delay nodes (netx per-synapse delays) up to 12 steps."""
    return graph({
        "input": nir.Input(input_type=np.array([6])),
        "d_in": nir.Delay(delay=(rng.integers(0, 6, 6) * dt).astype(np.float32)),
        "fc1": nir.Affine(weight=rng.normal(0, 1.5, (8, 6)).astype(np.float32),
                          bias=np.zeros(8, np.float32)),
        "d_out": nir.Delay(delay=(rng.integers(0, 7, 8) * dt).astype(np.float32)),
        "lif1": lif(8, 3e-3, thr=0.4),
        "fc2": nir.Linear(weight=rng.normal(0, 1.5, (3, 8)).astype(np.float32)),
        "lif2": lif(3, 4e-3, thr=0.4),
        "output": nir.Output(output_type=np.array([3])),
    }, [("input", "d_in"), ("d_in", "fc1"), ("fc1", "d_out"), ("d_out", "lif1"),
        ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")])


def g_conv(rng, stride=1, padding=1, dilation=1, groups=1, cin=2, cout=3):
    """Conv2d -> IF -> Flatten -> Affine -> LIF (netx conv, flatten, dense)."""
    hw = (7, 6)
    conv = nir.Conv2d(input_shape=hw, weight=rng.normal(0, 1, (cout, cin // groups, 3, 3)).astype(
        np.float32), stride=stride, padding=padding, dilation=dilation, groups=groups,
        bias=rng.normal(0, 0.1, cout).astype(np.float32))
    out_hw = [(h + 2 * padding - dilation * 2 - 1) // stride + 1 for h in hw]
    n = cout * out_hw[0] * out_hw[1]
    return graph({
        "input": nir.Input(input_type=np.array([cin, *hw])),
        "conv": conv,
        "if1": if_((cout, *out_hw), thr=1.5),
        "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array(
            [cout, *out_hw])}),
        "fc": nir.Affine(weight=rng.normal(0, 0.5, (5, n)).astype(np.float32),
                         bias=np.zeros(5, np.float32)),
        "lif": lif(5, 2e-3),
        "output": nir.Output(output_type=np.array([5])),
    }, [("input", "conv"), ("conv", "if1"), ("if1", "flat"), ("flat", "fc"), ("fc", "lif"),
        ("lif", "output")])


def g_direct(rng):
    """A LIF fed straight from the input (no weight node: the lowering adds a synapse),
    then an Affine -> CubaLIF layer."""
    return graph({
        "input": nir.Input(input_type=np.array([5])),
        "lif0": lif(5, 5e-3, thr=rng.uniform(0.02, 0.05, 5)),
        "fc": nir.Affine(weight=rng.normal(0, 1.0, (4, 5)).astype(np.float32),
                         bias=np.zeros(4, np.float32)),
        "cuba": cuba(4, 2e-3, 3e-3, thr=0.1),
        "output": nir.Output(output_type=np.array([4])),
    }, [("input", "lif0"), ("lif0", "fc"), ("fc", "cuba"), ("cuba", "output")])


def g_random(rng, dt):
    """A random chain: 1-3 layers of random kinds and sizes, Affine or Linear, random time
    constants (2..20 steps), thresholds, biases and leaks, maybe a recurrent layer."""
    n_layers = int(rng.integers(1, 4))
    n_in = int(rng.integers(3, 12))
    nodes = {"input": nir.Input(input_type=np.array([n_in]))}
    edges, prev, size = [], "input", n_in
    rec_at = int(rng.integers(0, n_layers)) if rng.random() < 0.5 else -1
    for k in range(n_layers):
        n = int(rng.integers(2, 16))
        w = rng.normal(0, rng.uniform(0.5, 3.0), (n, size)).astype(np.float32)
        if rng.random() < 0.5:
            nodes[f"w{k}"] = nir.Affine(weight=w, bias=rng.normal(0, 0.2, n).astype(np.float32))
        else:
            nodes[f"w{k}"] = nir.Linear(weight=w)
        kind = ["LIF", "CubaLIF", "IF"][int(rng.integers(0, 3))]
        thr = rng.uniform(0.2, 1.5, n)
        tau = float(rng.uniform(2, 20)) * dt
        if kind == "LIF":
            nodes[f"n{k}"] = lif(n, tau, thr=thr, v_leak=float(rng.normal(0, 0.1)),
                                 r=float(rng.uniform(0.5, 2.0)))
        elif kind == "CubaLIF":
            nodes[f"n{k}"] = cuba(n, float(rng.uniform(2, 10)) * dt, tau, thr=thr,
                                  w_in=float(rng.uniform(0.5, 2.0)))
        else:
            nodes[f"n{k}"] = if_(n, thr=thr * 3, r=float(rng.uniform(0.5, 2.0)))
        edges += [(prev, f"w{k}"), (f"w{k}", f"n{k}")]
        if k == rec_at:
            nodes[f"rec{k}"] = nir.Linear(weight=rng.normal(0, 1.0, (n, n)).astype(np.float32))
            edges += [(f"n{k}", f"rec{k}"), (f"rec{k}", f"n{k}")]
        prev, size = f"n{k}", n
    nodes["output"] = nir.Output(output_type=np.array([size]))
    edges.append((prev, "output"))
    return graph(nodes, edges)


# ----------------------------------------------------------------------------- the oracle


def _trunc_decay(x, d):
    """trunc0(x * (4096 - d) / 4096) in int64: sign(x) * ((|x| * (4096 - d)) >> 12)."""
    m = x * (4096 - d)
    return np.sign(m) * (np.abs(m) >> 12)


def _read(path):
    layers = []
    with h5py.File(path, "r") as f:
        for i in range(len(f["layer"])):
            g = f["layer"][str(i)]
            d = {k: g[k][()] for k in g if not isinstance(g[k], h5py.Group)}
            d["type"] = d["type"][0].decode() if isinstance(d["type"], np.ndarray) else d["type"]
            if "neuron" in g:
                d["neuron"] = {k: g["neuron"][k][()] for k in g["neuron"]}
            layers.append(d)
    return layers


def _correlate(w, s, stride, padding, dilation, groups):
    """Integer correlation of kernel ``w`` [O, I/g, kh, kw] with ``s`` [I, H, W]."""
    o_ch, i_per, kh, kw = w.shape
    c, h, wd = s.shape
    ph, pw = padding
    sp = np.zeros((c, h + 2 * ph, wd + 2 * pw), np.int64)
    sp[:, ph:ph + h, pw:pw + wd] = s
    oh = (h + 2 * ph - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * pw - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((o_ch, oh, ow), np.int64)
    o_per = o_ch // groups
    for o in range(o_ch):
        g0 = (o // o_per) * i_per
        for y in range(oh):
            for x in range(ow):
                acc = 0
                for ci in range(i_per):
                    for i in range(kh):
                        for j in range(kw):
                            acc += int(w[o, ci, i, j]) * int(
                                sp[g0 + ci, y * stride[0] + i * dilation[0],
                                   x * stride[1] + j * dilation[1]])
                out[o, y, x] = acc
    return out


def netx_oracle(path, x):
    """Lava's fixed-point run of the netx file at ``path`` on ``x`` ``[T, B, *input]``.

    Returns:
        ``(spikes, u, v)``: lists over the layers with neurons of ``[T, B, *shape]`` int64.
    """
    layers = _read(path)
    x = np.asarray(x)
    T, B = x.shape[:2]
    neural = [d for d in layers[1:] if "neuron" in d]
    spikes = [np.zeros((T, B) + tuple(int(v) for v in d["shape"]), np.int64) for d in neural]
    us = [np.zeros_like(s) for s in spikes]
    vs = [np.zeros_like(s) for s in spikes]
    max_delay = max([int(np.max(d["delay"])) for d in neural if "delay" in d] + [0])
    for b in range(B):
        state = []
        for d in neural:
            shape = tuple(int(v) for v in d["shape"])
            state.append({"u": np.zeros(shape, np.int64), "v": np.zeros(shape, np.int64),
                          "buf": np.zeros((T + max_delay + 2,) + shape, np.int64)})
        for t in range(T):
            inp = x[t, b].astype(np.int64)
            k = 0
            for d in layers[1:]:
                if d["type"] == "flatten":
                    inp = inp.reshape(-1)
                    continue
                st, nrn = state[k], d["neuron"]
                shape = st["u"].shape
                a = st["buf"][t]
                bias = np.zeros(shape, np.int64)
                if "bias" in d:
                    bb = np.asarray(d["bias"], np.int64)
                    bias = (bb.reshape(-1, 1, 1) if len(shape) == 3 else bb.reshape(shape)) \
                        * np.ones(shape, np.int64)
                u = _trunc_decay(st["u"], int(nrn["iDecay"])) + (a << 6)
                u = np.where(u > HALF, u - 2 * HALF, u)
                u = np.where(u <= -HALF, u + 2 * HALF, u)
                v = _trunc_decay(st["v"], int(nrn["vDecay"])) + u + (bias << 6)
                v = np.clip(v, -HALF + 1, HALF - 1)
                s = v > (int(nrn["vThMant"]) << 6)
                v = np.where(s, 0, v)
                st["u"], st["v"] = u, v
                spikes[k][t, b], us[k][t, b], vs[k][t, b] = s, u, v
                # this step's spikes travel to the next step (+ delays)
                active = (inp != 0).astype(np.int64)
                if d["type"] == "conv":
                    acc = _correlate(np.asarray(d["weight"], np.int64), active,
                                     tuple(d["stride"]), tuple(d["padding"]),
                                     tuple(d["dilation"]), int(d["groups"]))
                    st["buf"][t + 1] += np.clip(acc, -HALF, HALF - 1)
                else:
                    w = np.asarray(d["weight"], np.int64)
                    flat_in = active.reshape(-1)
                    if "delay" in d:
                        delay = np.asarray(d["delay"], np.int64)
                        for i in range(w.shape[0]):
                            for j in np.flatnonzero(flat_in):
                                st["buf"][t + 1 + delay[i, j]].reshape(-1)[i] += w[i, j]
                    else:
                        st["buf"][t + 1] += (w @ flat_in).reshape(shape)
                    if "weight_rec" in d:
                        wr = np.asarray(d["weight_rec"], np.int64)
                        st["buf"][t + 1] += (wr @ s.reshape(-1).astype(np.int64)).reshape(shape)
                inp = s.astype(np.int64)
                k += 1
    return spikes, us, vs
