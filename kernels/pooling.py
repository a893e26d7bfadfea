"""Pooling: SumPool2d and AvgPool2d. Stateless.

:func:`sum_pool` and :func:`avg_pool` take one unbatched sample ``(C, H, W)``;
:func:`sum_pool_last` and :func:`avg_pool_last` a batch of channels-last samples
``(S, H, W, C)`` (the layout the compiler keeps convolution stacks in), on which XLA:CPU
pools several times faster. Both forms add the same window elements.
"""

from __future__ import annotations

from typing import NamedTuple

from jax import lax

__all__ = ["PoolConfig", "sum_pool", "avg_pool", "sum_pool_last", "avg_pool_last"]


class PoolConfig(NamedTuple):
    """Static pooling options: ``kernel``, ``stride`` and symmetric ``padding`` per axis."""

    kernel: tuple
    stride: tuple
    padding: tuple


def sum_pool(x, cfg: PoolConfig):
    """NIR SumPool2d: ``y[c,i,j] = sum of x over the window`` (zero padding).

    Discrete: the same map at every step.

    >>> import jax.numpy as jnp
    >>> sum_pool(jnp.ones((1, 4, 4)), PoolConfig((2, 2), (2, 2), (0, 0))).tolist()
    [[[4.0, 4.0], [4.0, 4.0]]]
    """
    pads = ((0, 0),) + tuple((p, p) for p in cfg.padding)
    # a literal 0 init makes JAX pick its differentiable windowed-sum primitive
    return lax.reduce_window(x, 0.0, lax.add, (1,) + tuple(cfg.kernel),
                             (1,) + tuple(cfg.stride), pads)


def avg_pool(x, cfg: PoolConfig):
    """NIR AvgPool2d: SumPool2d then ``/ (kh*kw)`` (padding counts, as PyTorch's default).

    Discrete: the same map at every step.

    >>> import jax.numpy as jnp
    >>> avg_pool(jnp.ones((1, 4, 4)), PoolConfig((2, 2), (2, 2), (0, 0))).tolist()
    [[[1.0, 1.0], [1.0, 1.0]]]
    """
    k = 1
    for ki in cfg.kernel:
        k *= ki
    return sum_pool(x, cfg) / k


def sum_pool_last(x, cfg: PoolConfig):
    """NIR SumPool2d on channels-last samples ``x`` ``(S, H, W, C)``: the window sums of
    :func:`sum_pool`, returned as ``(S, H_out, W_out, C)``.

    Discrete: the same map at every step.

    >>> import jax.numpy as jnp
    >>> sum_pool_last(jnp.ones((1, 4, 4, 1)), PoolConfig((2, 2), (2, 2), (0, 0)))[0, :, :, 0].tolist()
    [[4.0, 4.0], [4.0, 4.0]]
    """
    pads = ((0, 0),) + tuple((p, p) for p in cfg.padding) + ((0, 0),)
    return lax.reduce_window(x, 0.0, lax.add, (1,) + tuple(cfg.kernel) + (1,),
                             (1,) + tuple(cfg.stride) + (1,), pads)


def avg_pool_last(x, cfg: PoolConfig):
    """NIR AvgPool2d on channels-last samples ``(S, H, W, C)``: :func:`sum_pool_last`
    then ``/ (kh*kw)``, as :func:`avg_pool`.

    Discrete: the same map at every step.

    >>> import jax.numpy as jnp
    >>> avg_pool_last(jnp.ones((1, 4, 4, 1)), PoolConfig((2, 2), (2, 2), (0, 0)))[0, :, :, 0].tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    k = 1
    for ki in cfg.kernel:
        k *= ki
    return sum_pool_last(x, cfg) / k
