"""Parameter transforms for quantization-aware training."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ParameterError

__all__ = ["fake_quantize"]


def fake_quantize(m, bits: int = 8) -> Callable:
    """A parameter transform rounding the selected parameters to ``bits``-bit grids.

    Each selected field gets a symmetric uniform grid with step
    ``max|p| / (2**(bits-1) - 1)`` (one scale per node and field, as an int8 weight memory
    with a per-layer exponent stores it). The forward pass sees the rounded values; the
    gradient passes straight through the rounding (``p + stop_gradient(q(p) - p)``), the
    usual quantization-aware training. Use as ``Trainer(..., transform=fake_quantize(mask))``
    and export ``transform(params)`` so the written graph holds the rounded values.

    Args:
        m: a mask (from :func:`mask`) selecting the fields to quantize.
        bits: bits per value, including the sign.
    """
    if not (isinstance(bits, int) and bits >= 2):
        raise ParameterError(f"fake_quantize: bits must be an int >= 2, got {bits!r}")
    levels = 2 ** (bits - 1) - 1

    def quantize(p):
        s = jnp.max(jnp.abs(p)) / levels
        s = jnp.where(s > 0, s, 1.0)
        q = jnp.round(p / s) * s
        return p + jax.lax.stop_gradient(q - p)

    def transform(params):
        return jax.tree_util.tree_map(
            lambda sel, p: quantize(p) if bool(np.all(sel)) else p, m, params)

    return transform
