r"""Time-parallel (associative-scan) forms of the reset-free linear neuron dynamics.

Between resets the neuron models are linear recurrences. Over a chunk of ``T`` steps with
known inputs ``x[0..T-1]`` they can be solved with ``jax.lax.associative_scan`` in
``O(log T)`` sequential depth instead of ``T`` dependent steps:

* LI: ``v[n+1] = a*v[n] + b[n]`` with (Euler) ``a = 1 - dt/tau``,
  ``b[n] = (dt/tau)*(v_leak + R*x[n])``, or (exact) ``a = exp(-dt/tau)``,
  ``b[n] = (1 - a)*(v_leak + R*x[n])``.
* CubaLI: the pair ``s = (I, v)`` follows ``s[n+1] = M s[n] + c[n]`` with a lower-triangular
  ``M = [[p, 0], [q, d]]``, its entries read off :func:`nirjax.kernels.neurons.cubali_step`'s
  update for each integrator and ``cuba_current`` choice.
* CubaLIF: its synaptic current is reset-free, so ``I[0..T]`` comes from the scan and only the
  membrane (with its threshold and reset) runs sequentially.

The composition rule for affine maps ``s -> M s + c`` is
``(M1, c1) then (M2, c2) = (M2 M1, M2 c1 + c2)``. Results equal the sequential kernels up
to floating-point rounding (the sums are associated differently), so this path is opt-in:
``nirjax.compile(..., associative_scan=True)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .neurons import (
    CubaCoeffs,
    CubaLIState,
    LICoeffs,
    LIState,
    NeuronConfig,
    _fire_and_reset,
)

__all__ = ["li_chunk", "cubali_chunk", "cubalif_chunk"]


def _affine_scan(a, b):
    """All prefixes of ``s -> a*s + b`` along axis 0 (scalar per element)."""

    def combine(first, second):
        a1, b1 = first
        a2, b2 = second
        return a2 * a1, a2 * b1 + b2

    return jax.lax.associative_scan(combine, (a, b), axis=0)


def li_chunk(coeffs: LICoeffs, state: LIState, xs, cfg: NeuronConfig):
    """LI over ``xs`` ``[T, ...]`` in parallel; returns ``(state, v[1..T])``."""
    drive = coeffs.v_leak + coeffs.r * xs
    if cfg.integrator == "exact":
        a, b = coeffs.leak, (1.0 - coeffs.leak) * drive
    else:
        a, b = 1.0 - coeffs.leak, coeffs.leak * drive
    a = jnp.broadcast_to(a, xs.shape)
    prod, acc = _affine_scan(a, b)
    vs = prod * state.v + acc
    return LIState(vs[-1]), vs


def _cuba_matrix(c: CubaCoeffs, xs, cfg: NeuronConfig):
    """``M = [[p, 0], [q, d]]`` and ``c = (ci, cv)`` of ``(I, v) -> M (I, v) + c`` per step."""
    drive = c.w_in * xs
    if cfg.integrator == "exact":
        p, q, d = c.syn, c.r * c.cross, c.mem
        ci = (1.0 - c.syn) * drive
        cv = (1.0 - c.mem) * (c.v_leak + c.r * drive) - c.r * drive * c.cross
    elif cfg.cuba_current == "new":
        p, q, d = 1.0 - c.syn, c.mem * c.r * (1.0 - c.syn), 1.0 - c.mem
        ci = c.syn * drive
        cv = c.mem * (c.v_leak + c.r * c.syn * drive)
    else:
        p, q, d = 1.0 - c.syn, c.mem * c.r, 1.0 - c.mem
        ci = c.syn * drive
        cv = c.mem * c.v_leak + jnp.zeros_like(drive)
    shape = xs.shape
    return tuple(jnp.broadcast_to(m, shape) for m in (p, q, d)), (ci, jnp.broadcast_to(cv, shape))


def cubali_chunk(coeffs: CubaCoeffs, state: CubaLIState, xs, cfg: NeuronConfig):
    """CubaLI over ``xs`` ``[T, ...]`` in parallel; returns ``(state, v[1..T])``."""
    (p, q, d), (ci, cv) = _cuba_matrix(coeffs, xs, cfg)

    def combine(first, second):
        (p1, q1, d1, i1, v1), (p2, q2, d2, i2, v2) = first, second
        return (p2 * p1, q2 * p1 + d2 * q1, d2 * d1, p2 * i1 + i2, q2 * i1 + d2 * v1 + v2)

    pp, qq, dd, ii, vv = jax.lax.associative_scan(combine, (p, q, d, ci, cv), axis=0)
    i_seq = pp * state.i_syn + ii
    v_seq = qq * state.i_syn + dd * state.v + vv
    return CubaLIState(i_seq[-1], v_seq[-1]), v_seq


def cubalif_chunk(coeffs: CubaCoeffs, state: CubaLIState, xs, cfg: NeuronConfig):
    """CubaLIF over ``xs`` ``[T, ...]``: current in parallel, membrane sequential.

    Returns ``(state, z[0..T-1])``.
    """
    drive = coeffs.w_in * xs
    if cfg.integrator == "exact":
        a, b = coeffs.syn, (1.0 - coeffs.syn) * drive
    else:
        a, b = 1.0 - coeffs.syn, coeffs.syn * drive
    prod, acc = _affine_scan(jnp.broadcast_to(a, xs.shape), b)
    i_next = prod * state.i_syn + acc                        # I[n+1]
    i_prev = jnp.concatenate([state.i_syn[None], i_next[:-1]], axis=0)  # I[n]
    c = coeffs

    def body(v, inputs):
        x, i_old, i_new = inputs
        if cfg.integrator == "exact":
            d = c.w_in * x
            target = c.v_leak + c.r * d
            v = target + (v - target) * c.mem + c.r * (i_old - d) * c.cross
        else:
            i_used = i_new if cfg.cuba_current == "new" else i_old
            v = v + c.mem * ((c.v_leak - v) + c.r * i_used)
        v, z = _fire_and_reset(v, c.v_threshold, c.v_reset, cfg)
        return v, z

    v_end, zs = jax.lax.scan(body, state.v, (xs, i_prev, i_next))
    return CubaLIState(i_next[-1], v_end), zs
