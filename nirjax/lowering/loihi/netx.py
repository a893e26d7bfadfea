"""lava-dl netx HDF5 files for Loihi 2: writer, reader, and what netx builds from them.

Format (lava-dl 0.6.0, ``lava/lib/dl/netx/hdf5.py`` and ``utils.py``; the layout slayer's
``export_hdf5`` writes): groups ``layer/0 .. layer/{L-1}``, each with a one-element bytes
dataset ``type`` and ``shape`` (NIR/slayer order ``[C, H, W]``; netx reverses it to Lava's
``(W, H, C)``). The writer emits

* ``layer/0``: ``type = input``, ``shape``: the network input, with no ``neuron`` group, so
  netx creates no layer for it and feeds the network's input straight into the first
  synapse (binary spikes, ``input_message_bits = 0``);
* per :class:`~nirjax.lowering.loihi.quantize.LoihiLayer`: ``type = dense`` (or
  ``dense_rec`` with ``weight_rec``, or ``conv`` with ``stride``, ``padding``, ``dilation``,
  ``groups``), integer ``weight`` ``[out, in]``, optional ``delay`` ``[out, in]`` (steps) and
  ``bias`` ``[out]``, and ``neuron/{type: CUBA, iDecay, vDecay, vThMant, refDelay: 1,
  gradedSpike: 0}``; a ``flatten`` layer before a dense layer that follows a conv layer.

netx reads ``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``, ``bias_mant = bias`` with
``bias_exp = 6``; it ignores ``refDelay`` and ``gradedSpike`` for CUBA
(``Network.get_neuron_params``). Dense weights go through ``optimize_weight_bits``
(:func:`netx_dense_params` reproduces it, and Lava's clipping and truncation after it).
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from ...errors import NirFileError
from ...kernels import loihi as lk
from .quantize import LoihiLayer, LoihiNetwork

__all__ = ["write_netx", "read_netx", "netx_dense_params", "check_packing", "neuron_params",
           "kernel_params"]


def _type(group, name: str):
    group.create_dataset("type", (1,), "S10", [name.encode("ascii")])


def write_netx(path, network: LoihiNetwork) -> None:
    """Write ``network`` as a lava-dl netx HDF5 file.

    Args:
        path: the file to write (overwritten).
        network: the quantized chain (:func:`~nirjax.lowering.loihi.quantize.quantize`).

    Raises:
        NirFileError: the file cannot be written.
    """
    try:
        with h5py.File(os.fspath(path), "w") as f:
            layer = f.create_group("layer")
            g = layer.create_group("0")
            _type(g, "input")
            g.create_dataset("shape", data=np.asarray(network.input_shape, np.int64))
            i = 1
            for q in network.layers:
                if q.flatten_before:
                    g = layer.create_group(str(i))
                    _type(g, "flatten")
                    g.create_dataset("shape", data=np.asarray([int(np.prod(q.in_shape))]))
                    i += 1
                g = layer.create_group(str(i))
                _write_layer(g, q)
                i += 1
    except OSError as e:
        raise NirFileError(f"cannot write the netx file {os.fspath(path)!r}: {e}") from e


def _write_layer(g, q: LoihiLayer) -> None:
    _type(g, q.kind)
    g.create_dataset("shape", data=np.asarray(q.shape, np.int64))
    if q.kind == "conv":
        # netx flips the kernel (weight[:, :, ::-1, ::-1]) and reverses the (H, W) pairs to
        # Lava's (x, y); Lava's conv flips and reverses them back for torch: so the file holds
        # NIR's correlation kernel [out, in/groups, kH, kW] and (H, W) pairs unchanged
        g.create_dataset("weight", data=q.weight.astype(np.int64))
        for key in ("stride", "padding", "dilation"):
            g.create_dataset(key, data=np.asarray(q.conv[key], np.int64))
        g.create_dataset("groups", data=int(q.conv["groups"]))
    else:
        g.create_dataset("weight", data=q.weight.astype(np.int64))
        if q.weight_rec is not None:
            g.create_dataset("weight_rec", data=q.weight_rec.astype(np.int64))
        if q.delay is not None:
            g.create_dataset("delay", data=q.delay.astype(np.int64))
    if q.bias is not None:
        g.create_dataset("bias", data=q.bias.astype(np.int64))
    n = g.create_group("neuron")
    n.create_dataset("type", data="CUBA")
    n.create_dataset("iDecay", data=int(q.i_decay))
    n.create_dataset("vDecay", data=int(q.v_decay))
    n.create_dataset("vThMant", data=int(q.v_th))
    n.create_dataset("refDelay", data=1)
    n.create_dataset("gradedSpike", data=0)


def read_netx(path) -> dict:
    """Read the fields of a netx HDF5 file as plain Python and NumPy values.

    Returns:
        ``{"layers": [{"type", "shape", "weight", ...,"neuron": {...}}, ...]}`` in layer
        order (only the keys present in the file).

    Raises:
        NirFileError: not an HDF5 file, or not netx's layout.
    """
    try:
        with h5py.File(os.fspath(path), "r") as f:
            if "layer" not in f:
                raise NirFileError(f"{os.fspath(path)!r} has no 'layer' group: not a netx file")
            out = []
            for i in range(len(f["layer"])):
                g = f["layer"][str(i)]
                d = {}
                for key, ds in g.items():
                    if isinstance(ds, h5py.Group):
                        d[key] = {k: _value(v) for k, v in ds.items()}
                    else:
                        d[key] = _value(ds)
                out.append(d)
            return {"layers": out}
    except OSError as e:
        raise NirFileError(f"cannot read the netx file {os.fspath(path)!r}: {e}") from e


def _value(ds):
    v = ds[()]
    if isinstance(v, bytes):
        return v.decode("ascii")
    if isinstance(v, np.ndarray) and v.dtype.kind == "S":
        return v[0].decode("ascii")
    return v


# ----------------------------------------------------------------------------- netx's packing


def _lava_sign_mode(w):
    # lava 0.10 utils/weightutils.py determine_sign_mode
    if np.min(w) >= 0:
        return "excitatory"
    if np.max(w) <= 0:
        return "inhibitory"
    return "mixed"


def _lava_clip_truncate(w, num_weight_bits):
    """lava 0.10 ``clip_weights(w, sign_mode, 8)`` then ``truncate_weights(w, sign_mode,
    num_weight_bits)``, with the sign mode Lava determines from ``w`` (netx passes none).
    A negative truncation count shifts by a negative amount, which NumPy evaluates to 0, as
    in Lava."""
    mode = _lava_sign_mode(w)
    mixed, inhib = int(mode == "mixed"), int(mode == "inhibitory")
    sign = -1 if inhib else 1
    w = sign * np.clip(sign * w.astype(np.int32), -(2 ** 8) * mixed, 2 ** 8 - 1)
    k = 8 - int(num_weight_bits) + mixed
    with np.errstate(all="ignore"):
        w = sign * (((sign * w.astype(np.int32)) >> k) << k)
    return w.astype(np.int32)


def netx_dense_params(weight, weight_rec=None):
    """What netx and Lava's bit-accurate Dense make of a file's integer weights.

    netx's ``optimize_weight_bits`` (lava-dl 0.6.0 ``netx/utils.py``; for ``dense_rec`` over
    ``[weight, weight_rec]`` side by side) picks a sign mode, ``weight_exp`` and
    ``num_weight_bits`` and shifts the weights left by ``-weight_exp``; Lava's
    ``PyDenseModelBitAcc`` then clips and truncates them with the sign mode it determines
    from each matrix itself. The synaptic sum is ``shift(W' @ s, weight_exp)``.

    Args:
        weight: integer ``[out, in]`` as in the file.
        weight_rec: integer ``[out, out]`` of a ``dense_rec`` layer, or ``None``.

    Returns:
        ``(DenseParams, DenseParams | None)`` as NumPy int32 arrays: the weights Lava
        actually holds and the exponent. ``shift(W' @ s, e) == W @ s`` exactly unless netx's
        and Lava's sign modes disagree (see :func:`check_packing`).
    """
    w = np.asarray(weight).astype(int)
    parts = [w] if weight_rec is None else [w, np.asarray(weight_rec).astype(int)]
    cat = np.hstack(parts)
    mx, mn = np.max(cat), np.min(cat)
    if mx > 254 and mn < 0:
        cat = np.clip(cat, -256, 254)
        mx = np.max(cat)
    if mn < -256 and mx > 0:
        cat = np.clip(cat, -256, 254)
        mn = np.min(cat)
    if mx < 0:
        signed = 0
        scale = -256 / mn
    elif mn >= 0:
        signed = 0
        scale = 255 / mx if mx != 0 else np.inf
    else:
        signed = 1
        scale = min(127 / mx if mx != 0 else np.inf, -128 / mn)
    if not np.isfinite(scale):
        raise ValueError("all-zero weight matrix: netx's optimize_weight_bits fails on it")
    scale_bits = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.sum(np.abs(cat / 2 ** n - np.round(cat / 2 ** n))) != 0:
        n -= 1
    n -= signed
    num_weight_bits = 8 - scale_bits - n
    shifted = np.left_shift(cat.astype(np.int32), scale_bits).astype(int)
    exp = np.int32(-scale_bits)
    out, col = [], 0
    for p in parts:
        block = shifted[:, col:col + p.shape[1]]
        col += p.shape[1]
        out.append(lk.DenseParams(_lava_clip_truncate(block, num_weight_bits), exp))
    return out[0], (out[1] if len(out) > 1 else None)


def check_packing(weight, weight_rec=None) -> bool:
    """Whether netx and Lava keep the synaptic sum exactly ``W @ s`` for these weights
    (every weight a multiple of ``2**-weight_exp`` after packing, and equal to the file's
    once shifted back)."""
    try:
        p, r = netx_dense_params(weight, weight_rec)
    except ValueError:
        return False
    for params, w in ((p, weight), (r, weight_rec)):
        if params is None:
            continue
        e = int(params.weight_exp)
        back = params.weight.astype(np.int64) * 2.0 ** e
        if not np.array_equal(back, np.asarray(w, np.float64)):
            return False
    return True


def neuron_params(layer: LoihiLayer) -> lk.CubaParams:
    """The CUBA neuron netx builds from a layer's ``neuron`` group and ``bias``: ``du = iDecay
    - 1``, ``dv = vDecay``, ``vth = vThMant``, ``bias_mant = bias`` per neuron (conv: per
    channel), ``bias_exp = 6`` (NumPy int32)."""
    return lk.CubaParams(du=np.int32(layer.i_decay - 1), dv=np.int32(layer.v_decay),
                         vth=np.int32(layer.v_th),
                         bias_mant=(np.zeros(layer.shape, np.int32) if layer.bias is None
                                    else _bias_per_neuron(layer)),
                         bias_exp=np.int32(6))


def kernel_params(layer: LoihiLayer):
    """The :mod:`nirjax.kernels.loihi` parameters Lava builds from one netx layer.

    Returns:
        ``(synapse, recurrent, neuron)``: a ``DenseParams`` / ``DelayDenseParams`` /
        ``ConvParams``, a ``DenseParams`` for ``dense_rec`` (else ``None``), and
        ``CubaParams`` (NumPy int32 arrays).
    """
    neuron = neuron_params(layer)
    if layer.kind == "conv":
        c = layer.conv
        syn = lk.ConvParams(layer.weight.astype(np.int32), tuple(c["stride"]),
                            tuple(c["padding"]), tuple(c["dilation"]), int(c["groups"]))
        return syn, None, neuron
    dense, rec = netx_dense_params(layer.weight, layer.weight_rec)
    if layer.delay is None:
        return dense, rec, neuron
    delays = np.unique(layer.delay).astype(np.int32)
    stack = np.stack([np.where(layer.delay == d, dense.weight, 0) for d in delays])
    return lk.DelayDenseParams(stack.astype(np.int32), dense.weight_exp, delays), rec, neuron


def _bias_per_neuron(layer: LoihiLayer):
    """The bias mantissa per neuron, shaped like the population (conv: one per channel)."""
    b = np.asarray(layer.bias, np.int64)
    if layer.kind == "conv":
        b = b.reshape((-1,) + (1,) * (len(layer.shape) - 1))
    return np.broadcast_to(b.reshape(-1) if layer.kind != "conv" else b,
                           layer.shape).astype(np.int32)
