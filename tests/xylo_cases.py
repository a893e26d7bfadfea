"""Seeded random Xylo specifications, inputs and float networks for the Xylo tests.

Shared by ``tests/test_xylo.py`` (kernel vs the event-by-event oracle), ``tests/
test_xylo_vendor.py`` (kernel and quantizer vs Rockpool 3.1.0 + xylosim 0.1.3) and
``benchmarks/hw_vendor_xylo.py``. Every generator takes a ``numpy.random.Generator``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nirjax.lowering.xylo.quantize import SPEC_KEYS, XyloFloatNetwork, XyloNames

# hidden sizes that fit each chip's layout: (Nin, Nhid, Nout, S, N_IEN, N_OEN)
SHAPES = {
    "xylo-audio2": (16, 60, 8, 2, 60, 60),
    "xylo-audio3": (16, 150, 32, 2, 128, 100),
    "xylo-imu": (16, 70, 16, 1, 40, 50),
}


def random_spec(rng, target: str, *, saturate: bool = False, shape=None) -> dict:
    """Integer ``from_specification`` arrays for ``target``'s layout.

    Mixed-sign sparse 8-bit weights, every dash in 0..15, thresholds including 0 and up to
    16 bits, biases, weight shifts up to 8. ``saturate`` makes the input drive large (high
    input shift, big weights) so that synaptic currents and membranes hit the 16-bit bounds.
    """
    n_in, n_hid, n_out, n_syn, n_ien, n_oen = shape or SHAPES[target]
    full = target == "xylo-audio2"

    def weights(shape, density, lo=-128, hi=128):
        return (rng.integers(lo, hi, shape) * (rng.random(shape) < density)).astype(int)

    w_in = weights((n_in, n_ien, n_syn), 0.5)
    if full:
        padded = np.zeros((n_in, n_hid, n_syn), int)
        padded[:, :n_ien] = w_in
        w_in = padded
    w_rec = weights((n_hid, n_hid, n_syn), 0.1)
    w_out = weights((n_oen, n_out), 0.4)
    if full:
        padded = np.zeros((n_hid, n_out), int)
        padded[n_hid - n_oen:] = w_out
        w_out = padded
    threshold = rng.integers(1, 2 ** 15, n_hid) if saturate else rng.integers(1, 4000, n_hid)
    threshold[rng.random(n_hid) < 0.03] = 0
    threshold_out = rng.integers(1, 2000, n_out)
    spec = {
        "weights_in": w_in, "weights_out": w_out, "weights_rec": w_rec,
        "dash_mem": rng.integers(0, 16, n_hid), "dash_mem_out": rng.integers(0, 16, n_out),
        "dash_syn": rng.integers(0, 16, n_hid),
        "dash_syn_2": rng.integers(0, 16, n_hid) if n_syn > 1 else np.zeros(n_hid, int),
        "dash_syn_out": rng.integers(0, 16, n_out),
        "threshold": threshold, "threshold_out": threshold_out,
        "bias": rng.integers(-300, 300, n_hid) * (rng.random(n_hid) < 0.5),
        "bias_out": rng.integers(-100, 100, n_out) * (rng.random(n_out) < 0.5),
        "weight_shift_in": int(rng.integers(6, 9)) if saturate else int(rng.integers(0, 5)),
        "weight_shift_rec": int(rng.integers(0, 4)),
        "weight_shift_out": int(rng.integers(0, 4)),
        "dt": 1e-3,
    }
    return {k: spec[k] for k in SPEC_KEYS}


def random_counts(rng, steps: int, batch: int, n_in: int, *, burst: bool = False) -> np.ndarray:
    """Input event counts ``[T, B, Nin]``: sparse, several events per channel and step, and
    with ``burst`` counts beyond the chip's 15 per step (up to 40)."""
    top = 41 if burst else 6
    counts = rng.integers(0, top, (steps, batch, n_in))
    return (counts * (rng.random((steps, batch, n_in)) < 0.3)).astype(np.int64)


@dataclasses.dataclass
class ChainNet:
    """A Rockpool-style chain ``Linear -> LIF (-> Linear -> LIF)* -> Linear -> LIF``.

    ``layers``: per hidden layer ``(N, S, recurrent)``. The arrays (``arrays``) are what
    ``tests/peers/xylo_runner.py`` builds the Rockpool network from.
    """

    arrays: dict
    layers: list

    def float_network(self) -> XyloFloatNetwork:
        """The same network as one :class:`XyloFloatNetwork` (hidden layers stacked, the
        layer-to-layer weights as blocks of ``w_rec``)."""
        a = self.arrays
        sizes = [n for n, _, _ in self.layers]
        n_syn = max(s for _, s, _ in self.layers)
        offsets = np.cumsum([0] + sizes)
        n_hid = int(offsets[-1])
        w_rec = np.zeros((n_hid, n_hid, n_syn))
        tau_syn = np.full((n_hid, n_syn), np.nan)
        hidden = []
        for h, (n, s, rec) in enumerate(self.layers):
            o = offsets[h]
            tau_syn[o:o + n, :s] = a[f"tau_syn_{h}"]
            if rec:
                w_rec[o:o + n, o:o + n, :s] = a[f"w_rec_{h}"].reshape(n, n, s)
            if h > 0:
                p = offsets[h - 1]
                w_rec[p:p + sizes[h - 1], o:o + n, :s] = a[f"w_ff_{h}"].reshape(sizes[h - 1], n, s)
            hidden.append((f"lif{h}", int(o), int(o + n)))
        n0, s0, _ = self.layers[0]
        w_in = np.zeros((a["w_in"].shape[0], n0, n_syn))
        w_in[:, :, :s0] = a["w_in"].reshape(-1, n0, s0)
        cat = lambda key: np.concatenate([a[f"{key}_{h}"] for h in range(len(self.layers))])  # noqa: E731
        names = XyloNames(input="input", weights_in="fc0", hidden=tuple(hidden),
                          weights_rec=tuple(f"rec{h}" for h in range(len(self.layers))),
                          weights_out=("fc_out",), readout="lif_out")
        return XyloFloatNetwork(
            w_in=w_in, w_rec=w_rec, w_out=a["w_out"], tau_mem=cat("tau_mem"), tau_syn=tau_syn,
            threshold=cat("threshold"), bias=cat("bias"), tau_mem_out=a["tau_mem_out"],
            tau_syn_out=a["tau_syn_out"], threshold_out=a["threshold_out"],
            bias_out=a["bias_out"], dt=float(a["dt"]), names=names)


def random_chain(rng, layers, n_in: int = 16, n_out: int = 8, *, dt: float = 1e-3,
                 bias: bool = True, big_threshold: bool = False) -> ChainNet:
    """A random :class:`ChainNet`: float32 weights ~ N(0, 0.3), time constants from 1.1 dt to
    20000 dt (every dash 0..15 after rounding), thresholds around 1 (or 1e4 with
    ``big_threshold``, which makes Rockpool rescale the layer)."""
    f32 = np.float32
    a = {"dt": np.asarray(dt), "n_hidden_layers": np.asarray(len(layers))}
    prev = n_in
    for h, (n, s, rec) in enumerate(layers):
        key = "w_in" if h == 0 else f"w_ff_{h}"
        a[key] = (rng.normal(0, 0.3, (prev, n * s)) * (rng.random((prev, n * s)) < 0.7)).astype(f32)
        a[f"tau_mem_{h}"] = (dt * 2 ** rng.uniform(0.2, 14.3, n)).astype(f32)
        a[f"tau_syn_{h}"] = (dt * 2 ** rng.uniform(0.2, 14.3, (n, s))).astype(f32)
        scale = 1e4 if big_threshold else 1.0
        a[f"threshold_{h}"] = (scale * rng.uniform(0.5, 2.0, n)).astype(f32)
        a[f"bias_{h}"] = (rng.normal(0, 0.05, n) * bias).astype(f32)
        if rec:
            a[f"w_rec_{h}"] = (rng.normal(0, 0.2, (n, n * s)) * (rng.random((n, n * s)) < 0.3)).astype(f32)
        prev = n
    a["w_out"] = rng.normal(0, 0.3, (prev, n_out)).astype(f32)
    a["tau_mem_out"] = (dt * 2 ** rng.uniform(0.2, 14.3, n_out)).astype(f32)
    a["tau_syn_out"] = (dt * 2 ** rng.uniform(0.2, 14.3, n_out)).astype(f32)
    a["threshold_out"] = ((1e4 if big_threshold else 1.0) * rng.uniform(0.5, 2.0, n_out)).astype(f32)
    a["bias_out"] = (rng.normal(0, 0.05, n_out) * bias).astype(f32)
    return ChainNet(a, list(layers))


# chip sizes nirjax.lower must respect: (max readout neurons, max first/last hidden layer)
_CHIP = {"xylo-audio2": (8, 1000), "xylo-audio3": (32, 128), "xylo-imu": (16, 128)}


def random_nir(rng, target: str, layers=((24, True),), *, n_in: int = 16, n_out: int | None = None,
               dt: float = 1e-3, regime: str = "plain", gains: str = "unit"):
    """A random NIR graph of Xylo's shape: ``input -> fc0 -> lif0 (-> rec0 -> lif0) -> fc1 ->
    lif1 ... -> fc_out -> readout -> output`` (CubaLIF neurons, Linear weights).

    ``layers``: ``(size, recurrent)`` per hidden layer. ``regime``: ``"plain"`` (time
    constants 1.5 dt .. 256 dt, thresholds around the weights), ``"saturate"`` (long time
    constants, positive input weights, tiny thresholds on some neurons: 16-bit saturation and
    31-spike bursts). ``gains``: ``"unit"`` (``r = tau_mem/dt``, ``w_in = tau_syn/dt``: unit
    gains under the NIR spec's Euler update) or ``"random"``.
    """
    import nir

    n_out = n_out or min(6, _CHIP[target][0])
    sat = regime == "saturate"
    nodes = {"input": nir.Input(np.array([n_in]))}
    edges = []
    prev, prev_name = n_in, "input"

    def taus(n):
        lo, hi = (9.0, 15.0) if sat else (0.6, 8.0)
        return dt * 2 ** rng.uniform(lo, hi, n)

    def cuba(n, small_threshold):
        tau_syn, tau_mem = taus(n), taus(n)
        th = rng.uniform(0.3, 1.5, n)
        if small_threshold:
            th[rng.random(n) < 0.5] = rng.uniform(0.002, 0.02)
        if gains == "unit":
            r, w_in = tau_mem / dt, tau_syn / dt
        else:
            r, w_in = rng.uniform(0.5, 3.0, n) * tau_mem / dt, rng.uniform(0.5, 3.0, n) * tau_syn / dt
        v_leak = rng.normal(0, 0.3, n) * (rng.random(n) < 0.5)
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak,
                           v_threshold=th, v_reset=np.zeros(n), w_in=w_in)

    for h, (n, rec) in enumerate(layers):
        w = rng.normal(0, 0.3, (n, prev)) * (rng.random((n, prev)) < 0.6)
        if sat and h == 0:
            w = np.abs(w)
        nodes[f"fc{h}"] = nir.Linear(weight=w)
        nodes[f"lif{h}"] = cuba(n, sat)
        edges += [(prev_name, f"fc{h}"), (f"fc{h}", f"lif{h}")]
        if rec:
            nodes[f"rec{h}"] = nir.Linear(weight=rng.normal(0, 0.2, (n, n)) * (rng.random((n, n)) < 0.2))
            edges += [(f"lif{h}", f"rec{h}"), (f"rec{h}", f"lif{h}")]
        prev, prev_name = n, f"lif{h}"
    nodes["fc_out"] = nir.Linear(weight=rng.normal(0, 0.3, (n_out, prev)))
    nodes["readout"] = cuba(n_out, False)
    nodes["output"] = nir.Output(np.array([n_out]))
    edges += [(prev_name, "fc_out"), ("fc_out", "readout"), ("readout", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)
