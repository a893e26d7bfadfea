"""Stateless linear maps: Affine, Linear, Scale.

Each is a pure function of one unbatched sample ``x``; no state, no time dependence, so the
compiler may apply them to all time steps at once.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["AffineParams", "affine", "LinearParams", "linear", "ScaleParams", "scale"]


class AffineParams(NamedTuple):
    """``weight`` of shape ``(..., out, in)`` and ``bias`` of shape ``(..., out)``."""

    weight: jax.Array
    bias: jax.Array


class LinearParams(NamedTuple):
    """``weight`` of shape ``(..., out, in)``."""

    weight: jax.Array


class ScaleParams(NamedTuple):
    """Elementwise factor ``scale``."""

    scale: jax.Array


def _matvec(weight, x, precision):
    if weight.ndim == 2:
        # x @ W.T rather than W @ x: batched over samples this is one GEMM whose result is
        # already [samples, out], with no transpose
        return jnp.matmul(x, weight.T, precision=precision)
    return jnp.einsum("...oi,...i->...o", weight, x, precision=precision)


def affine(params: AffineParams, x, precision=None):
    """NIR Affine: ``y = W x + b``; discrete: the same map at every step.

    ``W`` has shape ``(..., out, in)`` (leading dims batch the map), ``x`` ``(..., in)``.

    >>> import jax.numpy as jnp
    >>> affine(AffineParams(jnp.eye(2), jnp.ones(2)), jnp.array([1.0, 2.0])).tolist()
    [2.0, 3.0]
    """
    return _matvec(params.weight, x, precision) + params.bias


def linear(params: LinearParams, x, precision=None):
    """NIR Linear: ``y = W x``; discrete: the same map at every step.

    >>> import jax.numpy as jnp
    >>> linear(LinearParams(2 * jnp.eye(2)), jnp.array([1.0, 2.0])).tolist()
    [2.0, 4.0]
    """
    return _matvec(params.weight, x, precision)


def scale(params: ScaleParams, x):
    """NIR Scale: ``y = s * x`` (elementwise); discrete: the same map at every step.

    >>> import jax.numpy as jnp
    >>> scale(ScaleParams(jnp.array([2.0, -1.0])), jnp.array([1.0, 3.0])).tolist()
    [2.0, -3.0]
    """
    return params.scale * x
