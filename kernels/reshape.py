"""Flatten on one unbatched sample. Stateless."""

from __future__ import annotations

__all__ = ["flatten"]


def flatten(x, out_shape: tuple):
    """NIR Flatten: collapse dims ``start_dim..end_dim`` of the UNBATCHED shape.

    The compiler resolves ``start_dim``/``end_dim`` into ``out_shape``; this is a reshape.

    >>> import jax.numpy as jnp
    >>> flatten(jnp.zeros((8, 4, 4)), (128,)).shape
    (128,)
    """
    return x.reshape(out_shape)
