"""Convolutions: Conv1d and Conv2d, PyTorch semantics (cross-correlation, NCHW/OIHW).

Stateless: ``y = conv(W, x) + b`` at every step. :func:`conv` takes one unbatched sample
``x`` of shape ``(C_in, N)`` or ``(C_in, H, W)``; :func:`conv_last` a batch of channels-last
samples ``(S, N, C_in)`` or ``(S, H, W, C_in)`` (the layout the compiler keeps convolution
stacks in, :mod:`nirjax.compiler.layout`). Both compute the same sums.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .geometry import conv_output_size, conv_padding
from .linear import MatmulConfig, matmul_operands

__all__ = ["ConvParams", "ConvConfig", "conv", "conv_last", "conv_padding", "conv_output_size"]


class ConvParams(NamedTuple):
    """``weight`` ``(C_out, C_in/groups, *kernel)`` and ``bias`` ``(C_out,)``."""

    weight: jax.Array
    bias: jax.Array


class ConvConfig(NamedTuple):
    """Static convolution options, one entry per spatial axis.

    ``padding`` holds explicit ``(low, high)`` pairs, already resolved from NIR's
    int / 'same' / 'valid' by :func:`conv_padding`.
    """

    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int


def conv(params: ConvParams, x, cfg: ConvConfig, mm: MatmulConfig = MatmulConfig()):
    """NIR Conv1d/Conv2d: ``y = W * x + b`` (cross-correlation, zero padding).

    Discrete: the same map at every step. ``x`` is one sample ``(C_in, *spatial)``.

    >>> import jax.numpy as jnp
    >>> p = ConvParams(jnp.ones((1, 1, 3)), jnp.zeros(1))
    >>> cfg = ConvConfig((1,), ((1, 1),), (1,), 1)
    >>> conv(p, jnp.ones((1, 4)), cfg).tolist()
    [[2.0, 3.0, 3.0, 2.0]]
    """
    nd = x.ndim - 1
    if nd not in (1, 2):
        raise ValueError(f"conv expects a sample (C, N) or (C, H, W), got shape {x.shape}")
    # Computed channels-last: XLA:CPU runs an NCHW convolution inside a while loop (the time
    # scan) on a slow generic path, about 10x slower than the channels-last one it picks
    # outside loops (benchmarks/profile_nirjax.py measures both). The transposes are exact.
    y = conv_last(params, jnp.moveaxis(x, 0, -1)[None], cfg, mm)[0]
    return jnp.moveaxis(y, -1, 0)


def conv_last(params: ConvParams, x, cfg: ConvConfig, mm: MatmulConfig = MatmulConfig()):
    """NIR Conv1d/Conv2d on a batch of channels-last samples: ``y = W * x + b``.

    Discrete: the same map at every step. ``x`` is ``(S, *spatial, C_in)`` (``S`` samples,
    e.g. every step and batch entry of a chunk); returns ``(S, *spatial_out, C_out)``. The
    sums are those of :func:`conv`; a strided convolution with few input channels is run as
    the equivalent stride-1 convolution of the space-to-depth rearranged input
    (:func:`_space_to_depth_operands`), which adds only products with zero weights.

    >>> import jax.numpy as jnp
    >>> p = ConvParams(jnp.ones((1, 1, 3)), jnp.zeros(1))
    >>> cfg = ConvConfig((1,), ((1, 1),), (1,), 1)
    >>> conv_last(p, jnp.ones((1, 4, 1)), cfg)[0, :, 0].tolist()
    [2.0, 3.0, 3.0, 2.0]
    """
    nd = x.ndim - 2
    if nd not in (1, 2):
        raise ValueError(f"conv_last expects samples (S, N, C) or (S, H, W, C), got shape {x.shape}")
    mm = mm if isinstance(mm, MatmulConfig) else MatmulConfig(mm)
    w, xc, acc = matmul_operands(params.weight, x, mm)
    w_last = jnp.transpose(w, tuple(range(2, nd + 2)) + (1, 0))  # (*kernel, C_in/g, C_out)
    opts = (tuple(cfg.stride), tuple(map(tuple, cfg.padding)), tuple(cfg.dilation),
            int(cfg.groups), mm.precision, acc)
    if _use_space_to_depth(xc.shape[-1], cfg):
        xc, w_last, opts = _space_to_depth_operands(xc, w_last, opts)
    y = _conv_last(xc, w_last, opts)
    y = y if acc is None else y.astype(acc)
    return y + params.bias.reshape((1,) * (nd + 1) + (-1,))


#: A strided convolution is rearranged space-to-depth when ``C_in * prod(stride)`` is at
#: most this: the paper CNN's first layer (2 channels, 5x5, stride 2) then runs as a 3x3
#: convolution of 8 channels, 1.7x faster on XLA:CPU (benchmarks/profile_nirjax.py).
SPACE_TO_DEPTH_MAX_CHANNELS = 32


def _use_space_to_depth(c_in: int, cfg: ConvConfig) -> bool:
    stride = tuple(cfg.stride)
    factor = 1
    for s in stride:
        factor *= s
    return (factor > 1 and int(cfg.groups) == 1 and all(d == 1 for d in cfg.dilation)
            and c_in * factor <= SPACE_TO_DEPTH_MAX_CHANNELS)


def _space_to_depth_operands(x, w, opts):
    """The operands of the stride-1 convolution equal to a strided one.

    With stride ``s`` along an axis, output ``o`` reads padded input ``o*s + i`` for kernel
    tap ``i < k``. Writing ``i = b*s + a`` (``a < s``) and grouping the input in blocks of
    ``s``, it reads block ``o + b`` at offset ``a``: a stride-1 convolution over blocks whose
    ``s`` offsets become channels, with ``ceil(k/s)`` block taps (the taps ``i >= k`` get
    zero weights). ``x`` ``(S, *spatial, C)`` and ``w`` ``(*kernel, C, O)`` channels-last;
    returns ``(x', w', opts')`` for :func:`_conv_last` (no padding, stride 1).
    """
    stride, padding, dilation, groups, precision, acc = opts
    nd = x.ndim - 2
    kernel = w.shape[:nd]
    c, o = w.shape[nd], w.shape[nd + 1]
    blocks = tuple(-(-k // s) for k, s in zip(kernel, stride))
    out = tuple((n + lo + hi - k) // s + 1 for n, (lo, hi), k, s
                in zip(x.shape[1:1 + nd], padding, kernel, stride))
    # pad (or crop) every axis to exactly (out + blocks - 1) blocks of s
    need = tuple((m + b - 1) * s for m, b, s in zip(out, blocks, stride))
    pads = [(0, 0, 0)]
    for n, (lo, hi), want in zip(x.shape[1:1 + nd], padding, need):
        pads.append((lo, want - n - lo, 0))  # a negative high pad crops
    pads.append((0, 0, 0))
    xp = lax.pad(x, jnp.zeros((), x.dtype), pads)
    # (S, q1, s1, q2, s2, C) -> (S, q1, q2, s1, s2, C) -> (S, q1, q2, s1*s2*C)
    shape = (x.shape[0],) + sum(((m + b - 1, s) for m, b, s in zip(out, blocks, stride)), ()) + (c,)
    xs = xp.reshape(shape)
    perm = (0,) + tuple(1 + 2 * i for i in range(nd)) + tuple(2 + 2 * i for i in range(nd)) + (2 * nd + 1,)
    xs = jnp.transpose(xs, perm).reshape((x.shape[0],) + tuple(m + b - 1 for m, b in zip(out, blocks)) + (-1,))
    # (k1, k2, C, O) -> zero taps up to b*s -> (b1, s1, b2, s2, C, O) -> (b1, b2, s1, s2, C, O)
    wp = jnp.pad(w, tuple((0, b * s - k) for b, s, k in zip(blocks, stride, kernel)) + ((0, 0), (0, 0)))
    wp = wp.reshape(sum(((b, s) for b, s in zip(blocks, stride)), ()) + (c, o))
    wperm = tuple(2 * i for i in range(nd)) + tuple(2 * i + 1 for i in range(nd)) + (2 * nd, 2 * nd + 1)
    ws = jnp.transpose(wp, wperm).reshape(blocks + (-1, o))
    return xs, ws, ((1,) * nd, ((0, 0),) * nd, (1,) * nd, groups, precision, acc)


def _conv_last_impl(x, w, opts):
    """Channels-last convolution: ``x`` ``(N, *spatial, C)``, ``w`` ``(*kernel, C/g, O)``."""
    stride, padding, dilation, groups, precision, acc = opts
    spatial = "HW"[: x.ndim - 2]
    return lax.conv_general_dilated(
        x, w, window_strides=stride, padding=padding, rhs_dilation=dilation,
        dimension_numbers=("N" + spatial + "C", spatial + "IO", "N" + spatial + "C"),
        feature_group_count=groups, precision=precision, preferred_element_type=acc)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_last(x, w, opts):
    """:func:`_conv_last_impl` with a weight gradient computed as shifted GEMMs.

    The gradient is the same sum as XLA's own rule, ``dW[k, i, o] = sum_{n, p} x_pad[n,
    p * stride + k * dilation, i] * g[n, p, o]``, written as one contraction over batch and
    output positions per kernel offset. XLA:CPU lowers its own weight-gradient convolution
    (a convolution whose window spans the whole image) inside loops to a slow generic path,
    measured 15x slower on the paper CNN; the input gradient keeps XLA's rule.
    """
    return _conv_last_impl(x, w, opts)


def _conv_last_fwd(x, w, opts):
    return _conv_last_impl(x, w, opts), (x, w)


def _conv_last_bwd(opts, res, g):
    x, w = res
    stride, padding, dilation, groups, precision, _ = opts
    _, vjp_x = jax.vjp(lambda xx: _conv_last_impl(xx, w, opts), x)
    (dx,) = vjp_x(g)
    nd = x.ndim - 2
    kernel = w.shape[:nd]
    out_sp = g.shape[1:1 + nd]
    xp = jnp.pad(x, ((0, 0),) + tuple(padding) + ((0, 0),))
    n, c, o = x.shape[0], x.shape[-1], g.shape[-1]
    cg, og = c // groups, o // groups
    gg = g.reshape(g.shape[:-1] + (groups, og))
    taps = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        lo = tuple(k * d for k, d in zip(offset, dilation))
        hi = tuple(a + (m - 1) * s + 1 for a, m, s in zip(lo, out_sp, stride))
        xs = lax.slice(xp, (0,) + lo + (0,), (n,) + hi + (c,), (1,) + tuple(stride) + (1,))
        xs = xs.reshape(xs.shape[:-1] + (groups, cg))
        dims = "".join("pq"[:nd])
        t = jnp.einsum(f"n{dims}gi,n{dims}go->igo", xs, gg, precision=precision,
                       preferred_element_type=jnp.promote_types(xs.dtype, jnp.float32))
        taps.append(t.reshape(cg, o))
    dw = jnp.stack(taps).reshape(tuple(kernel) + (cg, o)).astype(w.dtype)
    return dx.astype(x.dtype), dw


_conv_last.defvjp(_conv_last_fwd, _conv_last_bwd)
