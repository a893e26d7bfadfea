"""Bounds and parameter scales: keep a trained graph valid NIR, and make updates of time
constants relative to their magnitude.

* :func:`default_bounds` / :func:`project`: after every optimizer step each bounded parameter
  is clipped into its interval (a projection). The default bounds keep every time constant
  ``tau``, ``tau_syn``, ``tau_mem`` at or above ``dt`` under forward Euler and ``dt/100`` under
  the exact integrator, and never move a value the source graph already had below that floor.
* :func:`keep_in_bounds`: the same projection as an optax transformation, for hand-written
  optax loops.
* :func:`relative_updates`: an optax transformation scaling the updates of the time
  constants by their magnitude.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import InputError, ParameterError

__all__ = ["TIME_CONSTANTS", "default_bounds", "project", "keep_in_bounds", "relative_updates"]

#: Parameter fields that are time constants (kept >= a floor by :func:`default_bounds`).
TIME_CONSTANTS = ("tau", "tau_syn", "tau_mem")


def default_bounds(model, *, tau_min: float | None = None, **field_bounds) -> dict:
    """Bounds that keep a trained graph valid NIR, for :func:`project` / :class:`Trainer`.

    Every time constant (``tau``, ``tau_syn``, ``tau_mem``) gets the lower bound
    ``min(floor, value in the source graph)``, with ``floor = tau_min`` or, by default,
    ``dt`` for nodes integrated with forward Euler (``dt/tau <= 1``: the update is a convex
    combination of the old value and the target, so it never overshoots) and ``dt/100`` for
    the exact integrator (``exp(-dt/tau)`` is valid for any ``tau > 0``). Taking the minimum
    with the source value means the bounds never move a parameter that was not trained.

    Args:
        model: a :class:`~nirjax.CompiledGraph`.
        tau_min: the floor for every time constant, in the graph's time unit.
        **field_bounds: extra ``field=(lo, hi)`` bounds applied to that field of every node
            that has it; ``None`` leaves a side open, e.g. ``v_threshold=(1e-3, None)``.

    Returns:
        ``{node: {field: (lo, hi)}}`` with NumPy arrays or ``None`` as ends.

    >>> import nir, numpy as np, nirjax
    >>> g = nir.NIRGraph.from_list(nir.LI(tau=np.array([5e-4]), r=np.ones(1), v_leak=np.zeros(1)))
    >>> default_bounds(nirjax.compile(g, dt=1e-4))
    {'li': {'tau': (array([0.0001]), None)}}
    """
    if tau_min is not None and not (math.isfinite(tau_min) and tau_min > 0):
        raise ParameterError(f"default_bounds: tau_min must be a positive number, got {tau_min!r}")
    for field, b in field_bounds.items():
        if not (isinstance(b, (tuple, list)) and len(b) == 2):
            raise ParameterError(f"default_bounds: {field}= must be a (lo, hi) pair, got {b!r}")
    dt = model.program.dt
    bounds: dict = {}
    known = set()
    for node in model.program.nodes:
        if node.params is None:
            continue
        fields = node.params._fields
        known.update(fields)
        entry = {}
        for f in fields:
            if f in TIME_CONSTANTS:
                floor = tau_min if tau_min is not None else (
                    dt / 100.0 if node.semantics.integrator == "exact" else dt)
                entry[f] = (np.minimum(floor, np.asarray(getattr(node.params, f), np.float64)), None)
            if f in field_bounds:
                lo, hi = field_bounds[f]
                if f in entry and lo is not None:
                    lo = np.maximum(entry[f][0], lo)
                elif f in entry:
                    lo = entry[f][0]
                entry[f] = (None if lo is None else np.asarray(lo, np.float64),
                            None if hi is None else np.asarray(hi, np.float64))
        if entry:
            bounds[node.name] = entry
    unknown = set(field_bounds) - known
    if unknown:
        raise ParameterError(f"default_bounds: no node has field(s) {sorted(unknown)}; fields "
                             f"present: {sorted(known)}")
    return bounds


def _check_bounds(bounds, params):
    for name, entry in bounds.items():
        if name not in params:
            raise ParameterError(f"bounds name node {name!r}, which has no parameters; nodes: "
                                 f"{', '.join(sorted(params))}")
        for field, pair in entry.items():
            if field not in params[name]._fields:
                raise ParameterError(f"bounds for node {name!r} name field {field!r}; its fields "
                                     f"are {params[name]._fields}")
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise ParameterError(f"bounds[{name!r}][{field!r}] must be (lo, hi), got {pair!r}")


def project(params, bounds) -> dict:
    """Clip every bounded parameter into its ``(lo, hi)`` interval (the projection step).

    Args:
        params: ``model.params``-shaped parameters.
        bounds: ``{node: {field: (lo, hi)}}`` as from :func:`default_bounds`.

    >>> import jax.numpy as jnp
    >>> from nirjax.kernels.neurons import LIParams
    >>> p = {"li": LIParams(jnp.array([-1.0, 2.0]), jnp.ones(2), jnp.zeros(2))}
    >>> project(p, {"li": {"tau": (0.5, None)}})["li"].tau.tolist()
    [0.5, 2.0]
    """
    _check_bounds(bounds, params)
    out = dict(params)
    for name, entry in bounds.items():
        p = out[name]
        changes = {}
        for field, (lo, hi) in entry.items():
            value = getattr(p, field)
            dtype = jnp.result_type(value)
            lo = None if lo is None else jnp.asarray(lo, dtype)
            hi = None if hi is None else jnp.asarray(hi, dtype)
            changes[field] = jnp.clip(value, lo, hi)
        out[name] = p._replace(**changes)
    return out


def keep_in_bounds(bounds) -> optax.GradientTransformation:
    """An optax transformation that keeps ``params + updates`` inside ``bounds``.

    Chain it last, after the optimizer, in a hand-written optax loop:
    ``optax.chain(optax.adam(1e-3), train.keep_in_bounds(train.default_bounds(model)))``.
    The update of a bounded parameter becomes ``clip(p + u, lo, hi) - p``. (:class:`Trainer`
    projects exactly after applying the update instead.)
    """

    def init(params):
        del params
        return _EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise InputError("keep_in_bounds needs params: call update(updates, state, params)")
        target = project(jax.tree_util.tree_map(lambda p, u: p + u, params, updates), bounds)
        return jax.tree_util.tree_map(lambda t, p: t - p, target, params), state

    return optax.GradientTransformation(init, update)


class _EmptyState(NamedTuple):
    pass


def _field_map(fn, tree, params, fields):
    """Apply ``fn(leaf, param)`` to the given fields of a params-shaped tree."""
    out = {}
    for name, p in tree.items():
        if hasattr(p, "_fields"):
            out[name] = p._replace(**{f: fn(getattr(p, f), getattr(params[name], f))
                                      for f in p._fields if f in fields})
        else:
            out[name] = p
    return out


def relative_updates(fields: Sequence[str] = TIME_CONSTANTS) -> optax.GradientTransformation:
    """An optax transformation making the updates of ``fields`` relative to their magnitude.

    The update ``u`` of a parameter ``p`` in ``fields`` becomes ``u * |p|``. Chained after a
    scale-invariant optimizer (Adam and its relatives, whose steps are about ``lr`` in the
    parameter's own units), a learning rate then means a relative change for those fields:
    ``lr = 1e-2`` moves a time constant by about 1 %, whatever its unit or size, instead of by
    ``0.01`` seconds. Time constants are stored in physical units (often ``1e-4``..``1e-2``
    s), far from the unit scale of weights, so :class:`Trainer` applies this to them by
    default. (A field that is exactly 0 does not move under it; time constants never are.)
    """
    fields = tuple(fields)

    def init(params):
        del params
        return _EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise InputError("relative_updates needs params: call update(updates, state, params)")
        return _field_map(lambda u, p: u * jnp.abs(p).astype(u.dtype), updates, params, fields), state

    return optax.GradientTransformation(init, update)
