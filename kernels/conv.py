"""Convolutions: Conv1d and Conv2d, PyTorch semantics (cross-correlation, NCHW/OIHW).

Stateless: ``y = conv(W, x) + b`` at every step, on one unbatched sample ``x`` of shape
``(C_in, N)`` or ``(C_in, H, W)``.
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

__all__ = ["ConvParams", "ConvConfig", "conv", "conv_padding", "conv_output_size"]


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
    mm = mm if isinstance(mm, MatmulConfig) else MatmulConfig(mm)
    w, xc, acc = matmul_operands(params.weight, x, mm)
    # Computed channels-last: XLA:CPU runs an NCHW convolution inside a while loop (the time
    # scan) on a slow generic path, about 10x slower than the channels-last one it picks
    # outside loops (benchmarks/profile_nirjax.py measures both). The transposes are exact.
    to_last = tuple(range(1, nd + 1)) + (0,)
    y = _conv_last(
        jnp.transpose(xc, to_last)[None],
        jnp.transpose(w, tuple(range(2, nd + 2)) + (1, 0)),
        (tuple(cfg.stride), tuple(map(tuple, cfg.padding)), tuple(cfg.dilation),
         int(cfg.groups), mm.precision, acc),
    )[0]
    y = jnp.transpose(y, (nd,) + tuple(range(nd)))
    y = y if acc is None else y.astype(acc)
    return y + params.bias.reshape((-1,) + (1,) * nd)


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
