r"""Speck / DYNAP-CNN integer neurons, as sinabs 3.1.3 simulates the chip.

The chip's cores are ``weight -> IAF -> sum pooling`` (sinabs ``backend/dynapcnn/
dynapcnn_layer.py``). After discretization (``discretize.py``) every value is an integer:
8-bit weights and biases, one 16-bit threshold ``theta`` and lower clamp ``v_min`` per layer.
sinabs' forward of a discretized ``DynapcnnNetwork`` runs the IAF of
``layers/functional/lif.py`` with ``alpha = 1``, ``MultiSpike`` (``activation/
spike_generation.py:17-42``), ``MembraneSubtract`` (``activation/reset_mechanism.py:27-46``)
and ``min_v_mem`` (``lif.py:41-44``); :func:`iaf_step` is that update in int32.

Only the neuron needs an integer kernel. The convolution, the Linear layer and sum pooling
of integer spike counts by integer weights are sums of integer products: the float kernels
(``nirjax.kernels.conv``, ``linear``, ``pooling``) compute them exactly in float32, at full
precision (``precision="highest"``: no TF32 or bfloat16 passes), as long as every partial
sum stays within ``2**24`` in magnitude, and so does sinabs' own float32 forward. The bound
holds, layer by layer, for inputs of bounded event counts;
``nirjax.lowering.speck.quantize.count_bounds`` computes it and states the proof (the worst
case is loose for deep networks, so the ``"speck"`` target re-checks it after every run with
the spike counts that occurred). Sum
pooling by 1, 2 or 4 (the chip's) is exact in float32 as well (sinabs pools with
``lp_pool2d(p=1)``, an average times ``k*k``, exact for powers of two).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["IAFParams", "IAFState", "iaf_init_state", "iaf_step"]


class IAFParams(NamedTuple):
    """One layer's integer threshold ``theta >= 1`` and lower clamp ``v_min`` (int32
    scalars)."""

    threshold: jax.Array
    min_v_mem: jax.Array


class IAFState(NamedTuple):
    """Integer membrane ``v`` (int32, the neuron map's shape)."""

    v: jax.Array


def iaf_init_state(shape) -> IAFState:
    """Zero membrane (sinabs initialises ``v_mem`` to zeros; the lowered network has no
    initial state).

    >>> iaf_init_state((2,)).v.tolist()
    [0, 0]
    """
    return IAFState(jnp.zeros(shape, jnp.int32))


def iaf_step(params: IAFParams, state: IAFState, x) -> tuple:
    r"""One step of Speck's integrate-and-fire neurons, in sinabs' discretized arithmetic.

    NIR ``IF``: ``dv/dt = R I``, spike and reset when ``v`` crosses ``v_threshold``. Speck
    (sinabs' reading: ``r`` and ``dt`` play no part, the input is added unscaled) computes per
    step, in integers, with ``x`` the step's input current (``W s + b``, integer)::

        v' = v + x
        n  = floor(v' / theta)  if v' > 0 else 0       (MultiSpike: trunc(v'/theta) * [v' > 0])
        v  = max(v' - n * theta, v_min)                (subtractive reset, then the clamp)

    ``n`` (the spike count, possibly several per step) is the output. ``x`` must hold
    integers (a float array of exact integers is cast to int32); ``theta >= 1``.

    Args:
        params: :class:`IAFParams`.
        state: :class:`IAFState`.
        x: the input current, the neuron map's shape.

    Returns:
        ``(IAFState(v), n)``, both int32.

    >>> p = IAFParams(jnp.int32(3), jnp.int32(-3))
    >>> s, n = iaf_step(p, iaf_init_state((3,)), jnp.array([7, 2, -9]))
    >>> s.v.tolist(), n.tolist()
    ([1, 2, -3], [2, 0, 0])
    """
    v = state.v + jnp.asarray(x).astype(jnp.int32)
    theta = jnp.asarray(params.threshold, jnp.int32)
    n = jnp.where(v > 0, v // theta, 0)
    v = jnp.maximum(v - n * theta, jnp.asarray(params.min_v_mem, jnp.int32))
    return IAFState(v), n
