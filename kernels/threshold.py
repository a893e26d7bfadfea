"""Threshold: a stateless spike generator."""

from __future__ import annotations

from typing import NamedTuple

import jax

from .surrogate import Surrogate, spike

__all__ = ["ThresholdParams", "threshold"]


class ThresholdParams(NamedTuple):
    """Elementwise ``threshold``."""

    threshold: jax.Array


def threshold(params: ThresholdParams, x, inclusive: bool = False,
              surrogate: Surrogate = Surrogate()):
    """NIR Threshold: ``z = H(x - threshold)``, strict ``>`` (``inclusive``: ``>=``).

    Discrete: the same map at every step; the derivative is the surrogate's.

    >>> import jax.numpy as jnp
    >>> threshold(ThresholdParams(jnp.array(1.0)), jnp.array([0.5, 1.0, 1.5])).tolist()
    [0.0, 0.0, 1.0]
    """
    return spike(x - params.threshold, inclusive, surrogate)
