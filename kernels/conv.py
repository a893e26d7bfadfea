"""Convolutions: Conv1d and Conv2d, PyTorch semantics (cross-correlation, NCHW/OIHW).

Stateless: ``y = conv(W, x) + b`` at every step, on one unbatched sample ``x`` of shape
``(C_in, N)`` or ``(C_in, H, W)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
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
    spatial = "HW"[:nd] if nd <= 2 else None
    dn = ("NC" + spatial, "OI" + spatial, "NC" + spatial)
    mm = mm if isinstance(mm, MatmulConfig) else MatmulConfig(mm)
    w, xc, acc = matmul_operands(params.weight, x, mm)
    y = lax.conv_general_dilated(
        xc[None],
        w,
        window_strides=cfg.stride,
        padding=cfg.padding,
        rhs_dilation=cfg.dilation,
        dimension_numbers=dn,
        feature_group_count=cfg.groups,
        precision=mm.precision,
        preferred_element_type=acc,
    )[0]
    y = y if acc is None else y.astype(acc)
    return y + params.bias.reshape((-1,) + (1,) * nd)
