"""A ``lax.scan`` whose reverse-mode gradient saves the carries and recomputes each step.

``jax.grad`` through a plain ``lax.scan`` stores every residual of the linearised step (for a
neuron layer: membrane, threshold test, surrogate slope, reset mask, ...) and runs a reverse
loop whose body reads and writes all of them. :func:`scan` computes the same values and the
same gradient with a hand-written VJP instead:

* forward: the scan, stacking only the carry entering each step, ``c[t]``;
* backward: a reverse scan that, at step ``t``, re-runs the step on ``(c[t], x[t])`` under
  ``jax.vjp`` and pulls back ``(dc[t+1], dy[t])`` to ``(dparams, dc[t], dx[t])``, summing
  ``dparams`` over the steps.

The step's own derivative rules are used unchanged (surrogate spike gradients included), so
the gradient is the autodiff gradient up to float rounding (the order of the per-step
parameter sums). Memory is that of ``jax.checkpoint`` of the step: one carry per step.
On CPU this is 2-3x faster than autodiff of the scan for neuron layers (measured in
``benchmarks/profile_nirjax.py``). Only reverse mode is defined: forward-mode
differentiation (``jax.jvp``, ``jax.jacfwd``) of a model needs ``fast_backward=False`` at
compile.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["scan"]


def scan(step: Callable, params: Any, carry: Any, xs: Any, length: int, unroll: int = 1,
         per_sample: tuple | None = None):
    """``lax.scan(lambda c, x: step(params, c, x), carry, xs)`` with the recompute VJP.

    ``step(params, carry, x) -> (carry, y)`` must be a pure function of its arguments (no
    traced values closed over); ``params`` is the pytree the gradient flows to besides
    ``carry`` and ``xs``. Returns ``(carry_T, ys)`` as ``lax.scan`` does.

    ``per_sample``: optional ``(expand, step_b)``. ``expand(params)`` gives some parameters
    a leading batch axis (a copy per sample) and ``step_b`` is ``step`` taking those
    copies. The backward pass then runs ``step_b``: the per-step parameter gradient of an
    elementwise neuron layer is an elementwise product per sample instead of a reduction
    over the batch at every step (slow on XLA:CPU); the copies' gradients are summed once,
    after the reverse scan (the transpose of ``expand``). The forward pass is unchanged.
    """
    return _scan(step, int(length), int(unroll), per_sample, params, carry, xs)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _scan(step, length, unroll, per_sample, params, carry, xs):
    return lax.scan(lambda c, x: step(params, c, x), carry, xs, length=length, unroll=unroll)


def _scan_fwd(step, length, unroll, per_sample, params, carry, xs):
    def body(c, x):
        c_next, y = step(params, c, x)
        return c_next, (y, c)

    carry_t, (ys, carries) = lax.scan(body, carry, xs, length=length, unroll=unroll)
    return (carry_t, ys), (params, carries, xs)


def _is_float(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.inexact)


def _split(tree):
    """Leaves of ``tree`` as (float leaves, other leaves, a function joining them back)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    mask = [_is_float(leaf) for leaf in leaves]

    def join(floats, others):
        fi, oi = iter(floats), iter(others)
        return jax.tree_util.tree_unflatten(treedef, [next(fi) if m else next(oi) for m in mask])

    return ([a for a, m in zip(leaves, mask) if m], [a for a, m in zip(leaves, mask) if not m],
            join)


def _float0(x):
    """The (zero) cotangent of an integer or boolean leaf."""
    return np.zeros(x.shape, jax.dtypes.float0)


def _scan_bwd(step, length, unroll, per_sample, residuals, cotangents):
    params, carries, xs = residuals
    d_carry_t, d_ys = cotangents
    expand_vjp = None
    if per_sample is not None:
        expand, step = per_sample
        params, expand_vjp = jax.vjp(expand, params)
    # Only float leaves carry gradient; integer leaves (delay-line positions, counters) ride
    # along as constants of each step and get float0 cotangents at the end.
    p_f, p_i, join_p = _split(params)
    d_carry_f, _, _ = _split(d_carry_t)
    d_ys_f, _, _ = _split(d_ys)

    def body(acc, inp):
        d_carry, d_p = acc
        c, x, d_y = inp
        c_f, c_i, join_c = _split(c)
        x_f, x_i, join_x = _split(x)

        def f(pf, cf, xf):
            c_next, y = step(join_p(pf, p_i), join_c(cf, c_i), join_x(xf, x_i))
            return _split(c_next)[0], _split(y)[0]

        _, pullback = jax.vjp(f, p_f, c_f, x_f)
        dp, dc, dx = pullback((d_carry, d_y))
        return (dc, [a + b for a, b in zip(d_p, dp)]), dx

    d_p0 = [jnp.zeros_like(a) for a in p_f]
    (d_c0, d_p), d_xs_f = lax.scan(body, (d_carry_f, d_p0), (carries, xs, d_ys_f),
                                   length=length, reverse=True, unroll=unroll)

    def full(tree, floats):
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        fi = iter(floats)
        return jax.tree_util.tree_unflatten(
            treedef, [next(fi) if _is_float(a) else _float0(a) for a in leaves])

    d_params = full(params, d_p)
    if expand_vjp is not None:
        (d_params,) = expand_vjp(d_params)
    return d_params, full(_one_step(carries), d_c0), full(xs, d_xs_f)


def _one_step(carries):
    """Shapes and dtypes of one carry (the stacked carries without their step axis)."""
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), carries)


_scan.defvjp(_scan_fwd, _scan_bwd)
