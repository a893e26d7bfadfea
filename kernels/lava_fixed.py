"""Lava's bit-accurate (Loihi) LIF and Dense, as imported by the NIR paper's ``nir_to_lava``
with ``fixed_pt=True``: the integer kernels of the ``"loihi"`` rule table
(:mod:`nirjax.rules.loihi`), selected by the ``lava_fixed`` profile (``arithmetic="loihi"``).

Facts from lava-nc/lava (src/lava/proc/lif/models.py, ``PyLifModelBitAcc``;
src/lava/proc/dense/models.py) and the importer (NIR repository, paper/nir_to_lava.py):

* the importer turns an Affine into ``Dense(int(256*weight))`` (truncated; a nonzero bias is
  refused) and a LIF into ``Dense(w) -> LIF(du, dv, vth)`` with, in fixed point,
  ``w = int(256*dt/tau)``, ``du = int(4095*1.0) = 4095``, ``dv = int(4095*dt/tau)``
  (truncation: 0.04 gives 163) and ``vth = int(131071*v_threshold) >> 9``;
* the LIF's Dense receives the previous layer's output as binary events (a nonzero value is
  one event), so the LIF's input is ``a = w * [x != 0]``;
* ``decay(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12)``; the current decays with ``du + 1``
  (``ds_offset = 1``), the voltage with ``dv``;
* ``u = decay(u, du + 1) + (a << 6)``, wrapped to 24 bits; ``v = decay(v, dv) + u``, clipped
  to ``±(2**23 - 1)``; spike when ``v > vth << 6``; then ``v = 0``.

With ``du = 4095`` the current keeps nothing of its past: ``u = a << 6``. The state is int32;
``r``, ``v_leak`` and ``v_reset`` are not used (as in the importer). The recorded ``v`` is in
Lava's integer units (``lif_lava_cpu_fixed.csv``). Not differentiable.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["LavaFixedCoeffs", "LavaFixedState", "lif_fixed_prepare", "lif_fixed_init_state",
           "lif_fixed_step", "decay", "DenseFixedCoeffs", "dense_fixed_prepare", "dense_fixed"]

_BITS = 23


class LavaFixedCoeffs(NamedTuple):
    """Integer parameters: input weight ``w``, voltage decay ``dv``, current decay ``du``
    and the threshold already shifted, ``vth << 6``."""

    w: jax.Array
    du: jax.Array
    dv: jax.Array
    vth: jax.Array


class LavaFixedState(NamedTuple):
    """Integer current ``u`` and voltage ``v``."""

    u: jax.Array
    v: jax.Array


def decay(x, d):
    """``sign(x) * ((|x| * (4096 - d)) >> 12)`` for ``|x| < 2**24``, exactly, in int32 (the
    product is split so that it never exceeds 24 bits)."""
    m = 4096 - d
    ax = jnp.abs(x)
    mag = (ax >> 12) * m + (((ax & 4095) * m) >> 12)
    return jnp.sign(x) * mag


def lif_fixed_prepare(params, cfg):
    """The importer's fixed-point conversion of a LIF's ``tau`` and ``v_threshold``."""
    k = cfg.dt / params.tau
    as_int = lambda a: jnp.floor(a).astype(jnp.int32)  # int() of positive values
    w = as_int(k * 256.0)
    dv = as_int(k * 4095.0)
    du = jnp.full_like(dv, 4095)
    vth = jnp.right_shift(as_int(params.v_threshold * 131071.0), 9)
    return LavaFixedCoeffs(w, du, dv, jnp.left_shift(vth, 6))


def lif_fixed_init_state(params, shape, cfg) -> LavaFixedState:
    """``u = v = 0``."""
    zero = jnp.zeros(shape, jnp.int32)
    return LavaFixedState(zero, zero)


def lif_fixed_step(coeffs: LavaFixedCoeffs, state: LavaFixedState, x, cfg):
    r"""One step of Lava's bit-accurate LIF.

    NIR: LIF; discrete (integers): ``a = w*[x != 0]``; ``u = decay(u, du + 1) + (a << 6)``
    wrapped to 24 bits; ``v = clip(decay(v, dv) + u, ±(2**23 - 1))``; ``z = v > vth << 6``;
    ``v = 0`` where ``z``. Output ``z`` (0/1).
    """
    a = jnp.where(x != 0, coeffs.w, 0).astype(jnp.int32)
    u = decay(state.u, coeffs.du + 1) + jnp.left_shift(a, 6)
    u = jnp.where(u > 2 ** _BITS, u - 2 ** (_BITS + 1), u)
    u = jnp.where(u <= -(2 ** _BITS), u + 2 ** (_BITS + 1), u)
    v = jnp.clip(decay(state.v, coeffs.dv) + u, -(2 ** _BITS) + 1, 2 ** _BITS - 1)
    z = v > coeffs.vth
    v = jnp.where(z, 0, v).astype(jnp.int32)
    return LavaFixedState(u.astype(jnp.int32), v), z.astype(jnp.result_type(x))


class DenseFixedCoeffs(NamedTuple):
    """The integer weight matrix ``int(256*weight)`` of a fixed-point ``Dense``."""

    weight: jax.Array


def dense_fixed_prepare(params, cfg=None) -> DenseFixedCoeffs:
    """The importer's fixed-point weight: ``int(256*weight)``, truncated towards zero."""
    return DenseFixedCoeffs((params.weight * 256.0).astype(jnp.int32))


def dense_fixed(coeffs: DenseFixedCoeffs, x):
    r"""Lava's fixed-point ``Dense``: an integer weighted sum of the incoming events.

    NIR: Affine/Linear ``y = W x`` (no bias). Discrete (integers): ``y[n] = W_int @ x[n]``
    with ``W_int = int(256*W)``, exact in int32 (``x`` holds spike counts).
    """
    return jnp.matmul(coeffs.weight, x.astype(jnp.int32), preferred_element_type=jnp.int32)
