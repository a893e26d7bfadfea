"""Spike functions with surrogate gradients.

The forward pass of every spiking primitive is a Heaviside step of ``x = v - threshold``:
``H(x) = 1 if x > 0 else 0`` (strict test, the NIR spec) or ``x >= 0`` (inclusive test).
Its true derivative is zero almost everywhere, so training uses a *surrogate*: the forward
value is unchanged and the derivative ``dH/dx`` is replaced by a smooth function of ``x``.

Surrogates (``scale`` is the sharpness; each derivative integrates to 1 over x, except
straight-through):

=================  ========================================  ===================================
name               surrogate derivative dH/dx                source
=================  ========================================  ===================================
fast_sigmoid       1 / (1 + scale*|x|)**2                    SuperSpike (Zenke & Ganguli 2018)
sigmoid            scale * s * (1 - s),  s = sigmoid(scale*x)
arctan             (scale/2) / (1 + (pi/2 * scale * x)**2)    Fang et al. 2021
triangle           scale * max(0, 1 - scale*|x|)             Esser et al. 2016
straight_through   scale (constant)                          Bengio et al. 2013
none               0 (the true derivative)
=================  ========================================  ===================================

Note the fast-sigmoid derivative as written peaks at 1 and integrates to 2/scale; it is the
form SuperSpike, Norse and snnTorch use, kept so their hyperparameters carry over.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import jax
import jax.numpy as jnp

from ..errors import SemanticsError

__all__ = ["Surrogate", "spike", "SURROGATES"]

SURROGATES = ("fast_sigmoid", "sigmoid", "arctan", "triangle", "straight_through", "none")

_DEFAULT_SCALE = {
    "fast_sigmoid": 10.0,
    "sigmoid": 5.0,
    "arctan": 2.0,
    "triangle": 1.0,
    "straight_through": 1.0,
    "none": 1.0,
}


@dataclasses.dataclass(frozen=True)
class Surrogate:
    """Which surrogate derivative a spike function uses in the backward pass.

    Args:
        kind: one of ``SURROGATES``.
        scale: sharpness of the surrogate (see the module table); ``None`` picks the
            kind's default (fast_sigmoid 10, sigmoid 5, arctan 2, triangle 1,
            straight_through 1).

    >>> Surrogate("arctan").scale
    2.0
    """

    kind: str = "fast_sigmoid"
    scale: float | None = None

    def __post_init__(self):
        if self.kind not in SURROGATES:
            raise SemanticsError(
                f"unknown surrogate {self.kind!r}; expected one of {', '.join(SURROGATES)}"
            )
        try:
            scale = _DEFAULT_SCALE[self.kind] if self.scale is None else float(self.scale)
        except (TypeError, ValueError):
            raise SemanticsError(
                f"surrogate {self.kind!r}: scale must be a positive finite number, got {self.scale!r}"
            ) from None
        if not (math.isfinite(scale) and scale > 0):
            raise SemanticsError(
                f"surrogate {self.kind!r}: scale must be a positive finite number, got {self.scale!r}")
        object.__setattr__(self, "scale", scale)

    def derivative(self, x):
        """The surrogate dH/dx evaluated at ``x``."""
        s = self.scale
        if self.kind == "fast_sigmoid":
            return 1.0 / (1.0 + s * jnp.abs(x)) ** 2
        if self.kind == "sigmoid":
            sig = jax.nn.sigmoid(s * x)
            return s * sig * (1.0 - sig)
        if self.kind == "arctan":
            return (s / 2.0) / (1.0 + (math.pi / 2.0 * s * x) ** 2)
        if self.kind == "triangle":
            return s * jnp.maximum(0.0, 1.0 - s * jnp.abs(x))
        if self.kind == "straight_through":
            return jnp.full_like(x, s)
        return jnp.zeros_like(x)


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def spike(x, inclusive: bool = False, surrogate: Surrogate = Surrogate()):
    """Heaviside step with a surrogate derivative.

    Forward: ``(x > 0)`` (or ``x >= 0`` when ``inclusive``) as ``x``'s dtype. Backward:
    ``surrogate.derivative(x)``.

    >>> import jax.numpy as jnp
    >>> spike(jnp.array([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 1.0]
    >>> spike(jnp.array([-1.0, 0.0, 2.0]), True).tolist()
    [0.0, 1.0, 1.0]
    """
    return jnp.where(x >= 0 if inclusive else x > 0, 1.0, 0.0).astype(x.dtype)


@spike.defjvp
def _spike_jvp(inclusive, surrogate, primals, tangents):
    (x,), (dx,) = primals, tangents
    return spike(x, inclusive, surrogate), (surrogate.derivative(x) * dx).astype(x.dtype)
