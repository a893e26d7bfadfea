r"""Fused multi-step LIF update as a Pallas kernel, with its pure-jnp reference.

A LIF layer inside the staged program receives its whole input for a chunk of ``T`` steps
at once (the projection feeding it was applied to the chunk in one GEMM). What is left is
the sequential membrane update, memory-bound: in the jnp form every step reads and writes
the membrane ``v`` through memory. This kernel keeps ``v`` in registers for all ``T`` steps
of a block of neurons and only streams the inputs in and the spikes out.

Both functions compute, for every neuron ``m`` and step ``t`` (``x``: ``[T, M]``, neurons of
all samples flattened into ``M``), exactly the LIF step of :mod:`nirjax.kernels.neurons` with
the given membrane update and firing pieces (the spec's: ``leaky_euler`` or ``leaky_exact``,
and ``fire_same_step``):

NIR: ``tau dv/dt = (v_leak - v) + R I``; ``z = H(v - v_threshold)``; ``v <- v_reset``.

Discrete: ``v' = v + leak*((v_leak - v) + r*x[t])`` (Euler, ``leak = dt/tau``) or
``v' = u + (v - u)*leak`` with ``u = v_leak + r*x[t]`` (exact, ``leak = exp(-dt/tau)``);
``z[t] = H(v' - v_threshold)``; ``v = reset(v', z[t])``.

The Pallas version is forward-only hardware code; its gradient (``custom_vjp``) is the
reference's, recomputed, so surrogate gradients are unchanged. Interpret mode runs it on
CPU for testing. No accelerator was available to this project to measure where it wins, so
the compiler uses it only when asked (``nirjax.compile(..., pallas=True)``).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from typing import Callable

from .neurons import LIFCoeffs

__all__ = ["lif_multistep_reference", "lif_multistep"]


def lif_multistep_reference(coeffs: LIFCoeffs, v0, xs, update: Callable, fire: Callable):
    """``T`` LIF steps with ``lax.scan``; returns ``(v_T, z)``.

    ``coeffs`` fields and ``v0`` are ``[M]``, ``xs`` is ``[T, M]``; ``z`` is ``[T, M]``.
    ``update(coeffs, v, x) -> v'`` integrates, ``fire(v, v_threshold, v_reset, v_carried) ->
    (v, z)`` tests and resets.
    """

    def body(v, x):
        return fire(update(coeffs, v, x), coeffs.v_threshold, coeffs.v_reset, v)

    return jax.lax.scan(body, v0, xs)


def _kernel(x_ref, v0_ref, leak_ref, r_ref, vl_ref, th_ref, vr_ref, z_ref, vt_ref, *, update,
            fire, steps):
    coeffs = LIFCoeffs(leak_ref[...], r_ref[...], vl_ref[...], th_ref[...], vr_ref[...])

    def body(t, v):
        x = x_ref[t, :]
        v, z = fire(update(coeffs, v, x), coeffs.v_threshold, coeffs.v_reset, v)
        z_ref[t, :] = z
        return v

    vt_ref[...] = jax.lax.fori_loop(0, steps, body, v0_ref[...])


def _pallas_forward(coeffs: LIFCoeffs, v0, xs, update, fire, block: int, interpret: bool):
    steps, m = xs.shape
    block = min(block, m)
    pad = (-m) % block
    if pad:
        widen = lambda a: jnp.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, pad)])
        coeffs = jax.tree_util.tree_map(widen, coeffs)
        v0, xs = widen(v0), widen(xs)
    total = m + pad
    vec = pl.BlockSpec((block,), lambda i: (i,))
    seq = pl.BlockSpec((steps, block), lambda i: (0, i))
    z, vt = pl.pallas_call(
        partial(_kernel, update=update, fire=fire, steps=steps),
        grid=(total // block,),
        in_specs=[seq, vec, vec, vec, vec, vec, vec],
        out_specs=[seq, vec],
        out_shape=[jax.ShapeDtypeStruct((steps, total), xs.dtype),
                   jax.ShapeDtypeStruct((total,), xs.dtype)],
        interpret=interpret,
    )(xs, v0, coeffs.leak, coeffs.r, coeffs.v_leak, coeffs.v_threshold, coeffs.v_reset)
    return vt[:m], z[:, :m]


@partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6))
def lif_multistep(coeffs: LIFCoeffs, v0, xs, update: Callable, fire: Callable, block: int = 512,
                  interpret: bool = False):
    """``T`` LIF steps fused in one Pallas kernel; returns ``(v_T, z)`` like the reference.

    Args:
        coeffs: :class:`~nirjax.kernels.neurons.LIFCoeffs`, each field ``[M]``.
        v0: membrane at the start, ``[M]``.
        xs: inputs ``[T, M]``.
        update: the membrane update piece, ``(coeffs, v, x) -> v'``.
        fire: the firing piece, ``(v, v_threshold, v_reset, v_carried) -> (v, z)``.
        block: neurons per program instance.
        interpret: run the kernel in Pallas interpret mode (any backend, for testing).
    """
    return _pallas_forward(coeffs, v0, xs, update, fire, block, interpret)


def _fwd(coeffs, v0, xs, update, fire, block, interpret):
    return _pallas_forward(coeffs, v0, xs, update, fire, block, interpret), (coeffs, v0, xs)


def _bwd(update, fire, block, interpret, residuals, cotangents):
    coeffs, v0, xs = residuals
    _, vjp = jax.vjp(lambda c, v, x: lif_multistep_reference(c, v, x, update, fire),
                     coeffs, v0, xs)
    return vjp(cotangents)


lif_multistep.defvjp(_fwd, _bwd)
