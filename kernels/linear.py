"""Stateless linear maps: Affine, Linear, Scale.

Each is a pure function of one unbatched sample ``x``; no state, no time dependence, so the
compiler may apply them to all time steps at once.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["MatmulConfig", "AffineParams", "affine", "LinearParams", "linear", "ScaleParams",
           "scale", "matmul_operands"]


class MatmulConfig(NamedTuple):
    """Static options of a matrix product (Affine, Linear, Conv).

    Attributes:
        precision: XLA precision (``"highest"``, ``"high"``, ``"default"``, ``None``).
        compute_dtype: ``None`` (compute in the data's dtype) or e.g. ``"bfloat16"``: both
            operands are rounded to it and the products accumulate in the data's dtype.
    """

    precision: str | None = None
    compute_dtype: str | None = None


def matmul_operands(weight, x, cfg: MatmulConfig):
    """Operands cast to ``cfg.compute_dtype`` and the dtype to accumulate in."""
    out = jnp.result_type(weight, x)
    if cfg.compute_dtype is None:
        return weight, x, None
    dt = jnp.dtype(cfg.compute_dtype)
    return weight.astype(dt), x.astype(dt), out


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


def _matvec(weight, x, cfg):
    cfg = cfg if isinstance(cfg, MatmulConfig) else MatmulConfig(cfg)
    w, xc, acc = matmul_operands(weight, x, cfg)
    if weight.ndim == 2:
        # x @ W.T rather than W @ x: batched over samples this is one GEMM whose result is
        # already [samples, out], with no transpose
        y = jnp.matmul(xc, w.T, precision=cfg.precision, preferred_element_type=acc)
    else:
        y = jnp.einsum("...oi,...i->...o", w, xc, precision=cfg.precision,
                       preferred_element_type=acc)
    return y if acc is None else y.astype(acc)


def affine(params: AffineParams, x, cfg: MatmulConfig = MatmulConfig()):
    """NIR Affine: ``y = W x + b``; discrete: the same map at every step.

    ``W`` has shape ``(..., out, in)`` (leading dims batch the map), ``x`` ``(..., in)``.

    >>> import jax.numpy as jnp
    >>> affine(AffineParams(jnp.eye(2), jnp.ones(2)), jnp.array([1.0, 2.0])).tolist()
    [2.0, 3.0]
    """
    y = _matvec(params.weight, x, cfg)
    return y + jnp.broadcast_to(params.bias, y.shape)  # a bias may omit leading map dims


def linear(params: LinearParams, x, cfg: MatmulConfig = MatmulConfig()):
    """NIR Linear: ``y = W x``; discrete: the same map at every step.

    >>> import jax.numpy as jnp
    >>> linear(LinearParams(2 * jnp.eye(2)), jnp.array([1.0, 2.0])).tolist()
    [2.0, 4.0]
    """
    return _matvec(params.weight, x, cfg)


def scale(params: ScaleParams, x):
    """NIR Scale: ``y = s * x`` (elementwise); discrete: the same map at every step.

    >>> import jax.numpy as jnp
    >>> scale(ScaleParams(jnp.array([2.0, -1.0])), jnp.array([1.0, 3.0])).tolist()
    [2.0, -3.0]
    """
    return params.scale * x
