"""Masks: which parameters train.

A mask is a pytree shaped like ``model.params`` with a bool per field (``True`` trains), or
bool arrays broadcastable to a field (per element). :func:`freeze` turns one into the optax
transformation that zeroes the gradient of everything it does not select.
"""

from __future__ import annotations

import fnmatch
from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import InputError

__all__ = ["mask", "mask_all", "mask_and", "mask_or", "mask_not", "count_params", "freeze"]


def _check_params(params, where):
    if not isinstance(params, Mapping):
        raise InputError(f"{where}: params must be a dict node name -> parameters (model.params), "
                         f"got {type(params).__name__}")
    for name, p in params.items():
        if not hasattr(p, "_fields"):
            raise InputError(f"{where}: params[{name!r}] must be a NamedTuple of arrays, got "
                             f"{type(p).__name__}")


def _patterns(value, what):
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    try:
        out = tuple(value)
    except TypeError:
        raise InputError(f"mask: {what} must be a name, a glob pattern or a list of them, got {value!r}") from None
    if not all(isinstance(v, str) for v in out):
        raise InputError(f"mask: {what} must be strings, got {value!r}")
    return out


def _match(name, patterns):
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


def mask(params, nodes=None, fields=None) -> dict:
    """A mask selecting parameters by node name and by field (both must match).

    Args:
        params: ``model.params`` (node name -> NamedTuple of arrays).
        nodes: node names or glob patterns (``"lif1.*"``); ``None``: every node.
        fields: field names or patterns (``"v_threshold"``, ``"tau*"``); ``None``: every field.

    Returns:
        A pytree shaped like ``params`` with a bool per field: ``True`` trains.

    Raises:
        InputError: when a name or pattern matches nothing (a typo would otherwise silently
            freeze everything).

    >>> import jax.numpy as jnp
    >>> from nirjax.kernels.linear import AffineParams
    >>> p = {"fc": AffineParams(jnp.ones((2, 2)), jnp.zeros(2))}
    >>> mask(p, fields="bias")
    {'fc': AffineParams(weight=False, bias=True)}
    """
    _check_params(params, "mask")
    node_pats = _patterns(nodes, "nodes")
    field_pats = _patterns(fields, "fields")
    for pats, universe, what in (
            (node_pats, sorted(params), "node"),
            (field_pats, sorted({f for p in params.values() for f in p._fields}), "field")):
        for pat in pats or ():
            if not any(_match(u, (pat,)) for u in universe):
                raise InputError(
                    f"mask: no parameter {what} matches {pat!r}; {what}s with parameters: "
                    f"{', '.join(universe)}")
    out = {}
    for name, p in params.items():
        node_ok = node_pats is None or _match(name, node_pats)
        out[name] = type(p)(*[bool(node_ok and (field_pats is None or _match(f, field_pats)))
                              for f in p._fields])
    return out


def mask_all(params, value: bool = True) -> dict:
    """A mask with every field set to ``value``."""
    _check_params(params, "mask_all")
    return {n: type(p)(*[bool(value)] * len(p._fields)) for n, p in params.items()}


def _combine(op, *masks):
    return jax.tree_util.tree_map(lambda *m: op(*[np.asarray(x, bool) for x in m]), *masks)


def mask_or(*masks) -> dict:
    """Elementwise OR of masks (a parameter trains if any mask selects it)."""
    return _combine(lambda *m: np.logical_or.reduce(m) if len(m) > 1 else m[0], *masks)


def mask_and(*masks) -> dict:
    """Elementwise AND of masks."""
    return _combine(lambda *m: np.logical_and.reduce(m) if len(m) > 1 else m[0], *masks)


def mask_not(m) -> dict:
    """The complement of a mask."""
    return _combine(np.logical_not, m)


def count_params(params, m=None) -> int:
    """Number of scalar parameters (selected by mask ``m``, default all)."""
    m = mask_all(params) if m is None else m
    sizes = jax.tree_util.tree_map(
        lambda sel, p: int(np.sum(np.broadcast_to(np.asarray(sel, bool), np.shape(p)))), m, params)
    return int(sum(jax.tree_util.tree_leaves(sizes)))


def _as_mask_tree(m, params):
    if m is None:
        return None
    if isinstance(m, str) or (isinstance(m, (list, tuple)) and all(isinstance(x, str) for x in m)):
        return mask(params, nodes=m)
    try:
        jax.tree_util.tree_map(lambda s, p: None, m, params)
    except ValueError as exc:
        raise InputError(f"mask must be shaped like params (see nirjax.train.mask): {exc}") from None
    return m


def _tree_where(m, a, b):
    """``a`` where the mask selects, else ``b`` (leafwise, broadcasting mask leaves)."""
    return jax.tree_util.tree_map(
        lambda sel, x, y: jnp.where(jnp.asarray(sel, bool), x, y), m, a, b)


class _MaskState(NamedTuple):
    pass


def freeze(m) -> optax.GradientTransformation:
    """The optax transformation that zeroes the gradient of every parameter ``m`` does not
    select (``m`` from :func:`mask`: ``True`` trains).

    A mask with one bool per field is ``optax.transforms.freeze`` of its complement; a mask
    holding bool arrays (per element) zeroes the unselected elements.

    >>> import jax.numpy as jnp
    >>> from nirjax.kernels.linear import AffineParams
    >>> g = {"fc": AffineParams(jnp.ones((2, 2)), jnp.ones(2))}
    >>> tx = freeze(mask(g, fields="bias"))
    >>> tx.update(g, tx.init(g))[0]["fc"].weight.tolist()
    [[0.0, 0.0], [0.0, 0.0]]
    """
    leaves = jax.tree_util.tree_leaves(m)
    if all(isinstance(leaf, (bool, np.bool_)) for leaf in leaves):
        return optax.transforms.freeze(mask_not(m))

    def init(params):
        del params
        return _MaskState()

    def update(updates, state, params=None):
        del params
        return _tree_where(m, updates, jax.tree_util.tree_map(jnp.zeros_like, updates)), state

    return optax.GradientTransformation(init, update)
