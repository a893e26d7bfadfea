r"""Time-parallel (associative-scan) forms of the reset-free linear neuron dynamics.

Between resets the neuron models are linear recurrences. Over a chunk of ``T`` steps with
known inputs ``x[0..T-1]`` they can be solved with ``jax.lax.associative_scan`` in
``O(log T)`` sequential depth instead of ``T`` dependent steps:

* LI: ``v[n+1] = a*v[n] + b[n]`` with (Euler) ``a = 1 - dt/tau``,
  ``b[n] = (dt/tau)*(v_leak + R*x[n])``, or (exact) ``a = exp(-dt/tau)``,
  ``b[n] = (1 - a)*(v_leak + R*x[n])``.
* CubaLI: the pair ``s = (I, v)`` follows ``s[n+1] = M s[n] + c[n]`` with a lower-triangular
  ``M = [[p, 0], [q, d]]``, its entries read off :func:`nirjax.kernels.neurons.cuba_euler` /
  :func:`~nirjax.kernels.neurons.cuba_exact` update for each integrator and ``cuba_current`` choice.
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

from typing import Callable

from .neurons import CubaCoeffs, CubaLIState, LICoeffs, LIState

__all__ = ["li_chunk", "cubali_chunk", "cubalif_chunk"]


def _affine_scan(a, b):
    """All prefixes of ``s -> a*s + b`` along axis 0 (scalar per element)."""

    def combine(first, second):
        a1, b1 = first
        a2, b2 = second
        return a2 * a1, a2 * b1 + b2

    return jax.lax.associative_scan(combine, (a, b), axis=0)


def li_chunk(coeffs: LICoeffs, state: LIState, xs, *, exact: bool):
    """LI over ``xs`` ``[T, ...]`` in parallel; returns ``(state, v[1..T])``. ``exact``: the
    exact integrator's coefficients (else forward Euler's)."""
    full = lambda a: jnp.broadcast_to(a, xs.shape)  # explicit: over the time axis
    c = LICoeffs(*map(full, coeffs))
    drive = c.v_leak + c.r * xs
    if exact:
        a, b = c.leak, (1.0 - c.leak) * drive
    else:
        a, b = 1.0 - c.leak, c.leak * drive
    prod, acc = _affine_scan(a, b)
    vs = prod * full(state.v) + acc
    return LIState(vs[-1]), vs


def _cuba_matrix(c: CubaCoeffs, xs, exact: bool, new_current: bool):
    """``M = [[p, 0], [q, d]]`` and ``c = (ci, cv)`` of ``(I, v) -> M (I, v) + c`` per step."""
    c = CubaCoeffs(*(jnp.broadcast_to(a, xs.shape) for a in c))  # explicit: over time
    drive = c.w_in * xs
    if exact:
        p, q, d = c.syn, c.r * c.cross, c.mem
        ci = (1.0 - c.syn) * drive
        cv = (1.0 - c.mem) * (c.v_leak + c.r * drive) - c.r * drive * c.cross
    elif new_current:
        p, q, d = 1.0 - c.syn, c.mem * c.r * (1.0 - c.syn), 1.0 - c.mem
        ci = c.syn * drive
        cv = c.mem * (c.v_leak + c.r * c.syn * drive)
    else:
        p, q, d = 1.0 - c.syn, c.mem * c.r, 1.0 - c.mem
        ci = c.syn * drive
        cv = c.mem * c.v_leak + jnp.zeros_like(drive)
    shape = xs.shape
    return tuple(jnp.broadcast_to(m, shape) for m in (p, q, d)), (ci, jnp.broadcast_to(cv, shape))


def cubali_chunk(coeffs: CubaCoeffs, state: CubaLIState, xs, *, exact: bool,
                 new_current: bool):
    """CubaLI over ``xs`` ``[T, ...]`` in parallel; returns ``(state, v[1..T])``. ``exact``:
    the exact integrator's update (else Euler's, with the ``new_current`` or the old one)."""
    (p, q, d), (ci, cv) = _cuba_matrix(coeffs, xs, exact, new_current)

    def combine(first, second):
        (p1, q1, d1, i1, v1), (p2, q2, d2, i2, v2) = first, second
        return (p2 * p1, q2 * p1 + d2 * q1, d2 * d1, p2 * i1 + i2, q2 * i1 + d2 * v1 + v2)

    pp, qq, dd, ii, vv = jax.lax.associative_scan(combine, (p, q, d, ci, cv), axis=0)
    i0, v0 = (jnp.broadcast_to(a, xs.shape) for a in (state.i_syn, state.v))
    i_seq = pp * i0 + ii
    v_seq = qq * i0 + dd * v0 + vv
    return CubaLIState(i_seq[-1], v_seq[-1]), v_seq


def cubalif_chunk(coeffs: CubaCoeffs, state: CubaLIState, xs, *, fire: Callable, exact: bool,
                  new_current: bool):
    """CubaLIF over ``xs`` ``[T, ...]``: current in parallel, membrane sequential.

    ``fire(v, v_threshold, v_reset, v_carried) -> (v, z)`` is the neuron's spike and reset
    (:func:`nirjax.kernels.neurons.fire_same_step`). Returns ``(state, z[0..T-1])``.
    """
    full = lambda a: jnp.broadcast_to(a, xs.shape)  # explicit: over the time axis
    syn = full(coeffs.syn)
    drive = full(coeffs.w_in) * xs
    if exact:
        a, b = syn, (1.0 - syn) * drive
    else:
        a, b = 1.0 - syn, syn * drive
    prod, acc = _affine_scan(a, b)
    i_next = prod * full(state.i_syn) + acc                  # I[n+1]
    i_prev = jnp.concatenate([state.i_syn[None], i_next[:-1]], axis=0)  # I[n]
    c = coeffs

    def body(v, inputs):
        x, i_old, i_new = inputs
        if exact:
            d = c.w_in * x
            target = c.v_leak + c.r * d
            v = target + (v - target) * c.mem + c.r * (i_old - d) * c.cross
        else:
            i_used = i_new if new_current else i_old
            v = v + c.mem * ((c.v_leak - v) + c.r * i_used)
        v, z = fire(v, c.v_threshold, c.v_reset, None)
        return v, z

    v_end, zs = jax.lax.scan(body, state.v, (xs, i_prev, i_next))
    return CubaLIState(i_next[-1], v_end), zs
