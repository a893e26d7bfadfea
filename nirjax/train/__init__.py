r"""Fine-tuning compiled NIR graphs with surrogate gradients and optax.

A compiled graph's ``model.params`` are the graph's own parameters in their physical form
(``weight``, ``bias``, ``tau``, ``r``, ``v_leak``, ``v_threshold``, ``v_reset``, ``w_in``,
``tau_syn``, ``tau_mem``, ``scale``, ``threshold``), so whatever is trained here exports back to
the same kind of NIR graph with :func:`nirjax.to_nir`. Spikes are differentiated with the
surrogate chosen at compile time (``nirjax.compile(..., surrogate="arctan")``, or per node with
``Semantics.override(node, surrogate=Surrogate(...))``); the forward pass is exact.

The pieces:

* **Readouts** name what the loss sees: ``None`` (the graph's output), a node name (that
  node's output at every step) or a ``(node, state_field)`` pair such as ``("lif2", "v")`` (a
  membrane trace, after the reset), or a list of those (the loss then gets a tuple).
* **Losses** ``loss(readout, targets) -> scalar`` (mean over the batch): cross-entropy on spike
  counts, on the max or final membrane of a readout; MSE on rates or traces; van Rossum
  distance of spike trains; :func:`distillation` losses against a teacher graph's readout.
* **Masks** (:func:`mask`) choose which parameters train; frozen parameters are bit-for-bit
  unchanged.
* **Bounds** (:func:`default_bounds`, :func:`project`) keep the graph valid NIR: after every
  optimizer step each bounded parameter is clipped into its interval (a projection). The
  default bounds keep every time constant ``tau``, ``tau_syn``, ``tau_mem`` at or above
  ``dt`` under forward Euler (the decay factor ``dt/tau`` then stays in ``(0, 1]``: no overshoot,
  no instability) and at or above ``dt/100`` under the exact integrator (any ``tau > 0`` is
  valid there), and never move a value the source graph already had below that floor.
* **Time constants** are in seconds (often ``1e-4``..``1e-2``), far from the unit scale of
  weights: by default their optimizer updates are made relative (:func:`relative_updates`),
  so with Adam a learning rate of ``1e-2`` changes a ``tau`` by about 1 % per step.
* :class:`Trainer` builds one jitted training step on any optax optimizer, with optional
  global-norm gradient clipping; :func:`fit` loops over data, reports progress through a
  callback and the ``nirjax.train`` logger, and evaluates.
* Long sequences: compile with ``checkpoint=K`` (see :func:`nirjax.compile`) to
  rematerialize chunks of ``K`` steps in the backward pass.

Example: train only the readout layer of a small graph to classify which of two input
channels is busier (a complete, runnable example).

>>> import nir, numpy as np, optax, nirjax
>>> from nirjax import train
>>> g = nir.NIRGraph.from_list(
...     nir.Affine(np.full((8, 2), 1.0), np.zeros(8)),
...     nir.LIF(tau=np.full(8, 1e-3), r=np.ones(8), v_leak=np.zeros(8),
...             v_threshold=np.full(8, 0.1)),
...     nir.Affine(np.zeros((2, 8)), np.zeros(2)),
...     nir.LI(tau=np.full(2, 2e-3), r=np.ones(2), v_leak=np.zeros(2)))
>>> model = nirjax.compile(g, dt=1e-4)
>>> names = sorted(model.params)             # node names of the graph
>>> trainer = train.Trainer(model, train.max_membrane_cross_entropy, optax.adam(1e-2),
...                         mask=train.mask(model.params, nodes=names[1]),
...                         metrics={"acc": train.max_membrane_accuracy})
>>> state = trainer.init(model.params)
>>> xs = np.zeros((50, 4, 2), np.float32); xs[:, :2, 0] = 1; xs[:, 2:, 1] = 1
>>> labels = np.array([0, 0, 1, 1])
>>> state, logs = trainer.step(state, xs, labels)
>>> sorted(logs)
['acc', 'grad_norm', 'loss']
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import math
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..compiler import CompiledGraph, check_record
from ..errors import InputError, ParameterError

__all__ = [
    # losses
    "spike_count_cross_entropy", "max_membrane_cross_entropy",
    "final_membrane_cross_entropy", "rate_mse", "trace_mse", "van_rossum", "distillation",
    # metrics
    "spike_count_accuracy", "max_membrane_accuracy", "final_membrane_accuracy",
    "count_agreement", "spike_agreement",
    # masks
    "mask", "mask_all", "mask_and", "mask_or", "mask_not", "count_params",
    # bounds
    "default_bounds", "project", "keep_in_bounds", "relative_updates", "TIME_CONSTANTS",
    # parameter transforms
    "fake_quantize", "hardware_aware",
    # training
    "Trainer", "TrainState", "fit", "evaluate", "FitResult",
]

logger = logging.getLogger("nirjax.train")

#: Parameter fields that are time constants (kept >= a floor by :func:`default_bounds`).
TIME_CONSTANTS = ("tau", "tau_syn", "tau_mem")


# ============================================================================ losses
#
# Every loss takes the readout first and the targets second and returns the mean over the
# batch. Readouts are time-major: ``[T, B, ...]``.


def _ce(logits, labels):
    """Cross-entropy of ``logits [B, C]`` against int labels ``[B]`` or soft targets ``[B, C]``."""
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if logits.ndim != 2:
        raise InputError(
            f"cross-entropy expects a readout of shape [T, B, C] (classes on the last axis); "
            f"after reducing time it has shape {logits.shape}"
        )
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:1]:
            raise InputError(f"integer labels must have shape [B]={logits.shape[:1]}, got {labels.shape}")
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    if labels.shape != logits.shape:
        raise InputError(
            f"soft targets must have shape [B, C]={logits.shape}, got {labels.shape} "
            f"(pass integer labels of shape [B] for hard labels)"
        )
    return optax.softmax_cross_entropy(logits, labels.astype(logits.dtype)).mean()


def _check_time_major(name, x, min_rank=2):
    x = jnp.asarray(x)
    if x.ndim < min_rank:
        raise InputError(f"{name}: expected a time-major readout [T, B, ...], got shape {x.shape}")
    return x


def spike_count_cross_entropy(spikes, labels, *, start: int = 0, logit_scale: float = 1.0):
    """Cross-entropy with the spike counts of each output neuron as logits.

    ``logits[b, c] = logit_scale * sum_{t >= start} spikes[t, b, c]``.

    Args:
        spikes: ``[T, B, C]`` spike trains (e.g. the graph's output).
        labels: int class labels ``[B]`` or soft targets ``[B, C]``.
        start: first step counted (skip a warm-up).
        logit_scale: factor on the counts (counts of long runs make a very sharp softmax).

    >>> import jax.numpy as jnp
    >>> s = jnp.zeros((10, 1, 2)).at[:, 0, 1].set(1.0)      # neuron 1 fires every step
    >>> float(spike_count_cross_entropy(s, jnp.array([1]))) < 1e-4
    True
    """
    spikes = _check_time_major("spike_count_cross_entropy", spikes, 3)
    return _ce(logit_scale * spikes[start:].sum(0), labels)


def max_membrane_cross_entropy(v, labels, *, start: int = 0):
    """Cross-entropy with the maximum over time of a readout membrane as logits.

    ``logits[b, c] = max_{t >= start} v[t, b, c]``; ``v`` is typically an LI/CubaLI output or
    a recorded ``(node, "v")`` trace.

    >>> import jax.numpy as jnp
    >>> v = jnp.zeros((5, 1, 2)).at[3, 0, 0].set(20.0)
    >>> float(max_membrane_cross_entropy(v, jnp.array([0]))) < 1e-6
    True
    """
    v = _check_time_major("max_membrane_cross_entropy", v, 3)
    return _ce(v[start:].max(0), labels)


def final_membrane_cross_entropy(v, labels):
    """Cross-entropy with the readout membrane at the last step as logits: ``v[-1]``.

    >>> import jax.numpy as jnp
    >>> v = jnp.zeros((5, 1, 2)).at[-1, 0, 1].set(20.0)
    >>> float(final_membrane_cross_entropy(v, jnp.array([1]))) < 1e-6
    True
    """
    v = _check_time_major("final_membrane_cross_entropy", v, 3)
    return _ce(v[-1], labels)


def rate_mse(spikes, target_rates, *, start: int = 0):
    """Mean squared error between firing rates and targets.

    The rate is spikes per step, ``mean_{t >= start} spikes[t]`` (divide by ``dt`` for Hz);
    ``target_rates`` has the readout's shape without the time axis, ``[B, ...]``.

    >>> import jax.numpy as jnp
    >>> float(rate_mse(jnp.ones((4, 2, 3)), jnp.full((2, 3), 0.5)))
    0.25
    """
    spikes = _check_time_major("rate_mse", spikes)
    rates = spikes[start:].mean(0)
    target_rates = jnp.asarray(target_rates, rates.dtype)
    if target_rates.shape != rates.shape:
        raise InputError(f"rate_mse: target rates must have shape {rates.shape} ([B, ...]), "
                         f"got {target_rates.shape}")
    return jnp.mean((rates - target_rates) ** 2)


def trace_mse(traces, targets):
    """Mean squared error between two time-major traces of the same shape ``[T, B, ...]``.

    >>> import jax.numpy as jnp
    >>> float(trace_mse(jnp.ones((3, 2)), jnp.zeros((3, 2))))
    1.0
    """
    traces = jnp.asarray(traces)
    targets = jnp.asarray(targets, traces.dtype)
    if targets.shape != traces.shape:
        raise InputError(f"trace_mse: targets must have the readout's shape {traces.shape}, got {targets.shape}")
    return jnp.mean((traces - targets) ** 2)


def _exp_filter(x, decay):
    def body(f, x_t):
        f = f * decay + x_t
        return f, f

    _, out = jax.lax.scan(body, jnp.zeros_like(x[0]), x)
    return out


def van_rossum(spikes, target_spikes, *, tau_steps: float = 10.0):
    r"""Van Rossum distance between spike trains (squared, averaged over time and neurons).

    Both trains are filtered with a causal exponential kernel,
    ``f[t] = f[t-1] * exp(-1/tau_steps) + s[t]``, and the mean squared difference of the
    filtered traces is returned. It is smooth in the spikes, so surrogate gradients flow
    through it, and it rewards spikes that are close in time (van Rossum, Neural
    Computation 2001).

    Args:
        spikes, target_spikes: ``[T, B, ...]`` spike trains of the same shape.
        tau_steps: the kernel's time constant, in steps.

    >>> import jax.numpy as jnp
    >>> s = jnp.zeros((20, 1, 1)).at[5].set(1.0)
    >>> float(van_rossum(s, s))
    0.0
    >>> van_rossum(s, jnp.roll(s, 1, 0)) < van_rossum(s, jnp.roll(s, 5, 0))
    Array(True, dtype=bool)
    """
    spikes = _check_time_major("van_rossum", spikes)
    target_spikes = jnp.asarray(target_spikes, spikes.dtype)
    if target_spikes.shape != spikes.shape:
        raise InputError(f"van_rossum: target spikes must have shape {spikes.shape}, got {target_spikes.shape}")
    if not tau_steps > 0:
        raise InputError(f"van_rossum: tau_steps must be > 0, got {tau_steps!r}")
    decay = math.exp(-1.0 / float(tau_steps))
    return jnp.mean(_exp_filter(spikes - target_spikes, decay) ** 2)


def _count_kl(student, teacher, temperature=1.0, start=0):
    s = _check_time_major("count_kl", student, 3)[start:].sum(0) / temperature
    t = jnp.asarray(teacher, s.dtype)[start:].sum(0) / temperature
    p_t = jax.nn.softmax(t, axis=-1)
    return (temperature ** 2) * jnp.mean(jnp.sum(
        p_t * (jax.nn.log_softmax(t, axis=-1) - jax.nn.log_softmax(s, axis=-1)), axis=-1))


def distillation(kind: str = "van_rossum", **options) -> Callable:
    """A loss ``(student_readout, teacher_readout) -> scalar`` for distillation.

    Use it with ``Trainer(..., teacher=teacher_model)``: the teacher graph runs on the same
    inputs inside the training step and its readout (under ``stop_gradient``) is the target.

    Args:
        kind: ``"van_rossum"`` (spike trains; option ``tau_steps``), ``"trace"`` (MSE of
            traces, e.g. membranes; no options), ``"rate"`` (MSE of firing rates; option
            ``start``) or ``"count_kl"`` (KL divergence from the teacher's to the student's
            softmax of spike counts, times ``temperature**2``; options ``temperature``,
            ``start``).
        **options: passed to the loss.

    >>> import jax.numpy as jnp
    >>> loss = distillation("count_kl", temperature=4.0)
    >>> s = jnp.zeros((8, 2, 3)).at[:, :, 0].set(1.0)
    >>> float(loss(s, s))
    0.0
    """
    kinds = {
        "van_rossum": (van_rossum, {"tau_steps"}),
        "trace": (trace_mse, set()),
        "rate": (lambda s, t, start=0: rate_mse(s, jnp.asarray(t)[start:].mean(0), start=start),
                 {"start"}),
        "count_kl": (_count_kl, {"temperature", "start"}),
    }
    if kind not in kinds:
        raise InputError(f"distillation kind {kind!r} is unknown; expected one of {sorted(kinds)}")
    fn, allowed = kinds[kind]
    unknown = set(options) - allowed
    if unknown:
        raise InputError(f"distillation({kind!r}) takes options {sorted(allowed) or 'none'}, "
                         f"got {sorted(unknown)}")

    def loss(student, teacher):
        return fn(student, teacher, **options)

    loss.__name__ = f"distillation_{kind}"
    return loss


# ============================================================================ metrics


def _accuracy(logits, labels):
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        labels = labels.argmax(-1)
    return jnp.mean(logits.argmax(-1) == labels)


def spike_count_accuracy(spikes, labels, *, start: int = 0):
    """Fraction of samples whose most active output neuron is the label (ties: lowest index)."""
    return _accuracy(_check_time_major("spike_count_accuracy", spikes, 3)[start:].sum(0), labels)


def max_membrane_accuracy(v, labels, *, start: int = 0):
    """Fraction of samples whose readout neuron with the highest peak membrane is the label."""
    return _accuracy(_check_time_major("max_membrane_accuracy", v, 3)[start:].max(0), labels)


def final_membrane_accuracy(v, labels):
    """Fraction of samples whose readout neuron with the highest final membrane is the label."""
    return _accuracy(_check_time_major("final_membrane_accuracy", v, 3)[-1], labels)


def count_agreement(student, teacher, *, start: int = 0):
    """Fraction of samples on which student and teacher have the same most active neuron."""
    s = _check_time_major("count_agreement", student, 3)[start:].sum(0)
    return _accuracy(s, jnp.asarray(teacher)[start:].sum(0).argmax(-1))


def spike_agreement(student, teacher):
    """Fraction of (step, sample, neuron) entries where the two spike trains agree."""
    return jnp.mean(jnp.asarray(student) == jnp.asarray(teacher))


# ============================================================================ masks


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


# ============================================================================ bounds


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


# ============================================================================ transforms


def fake_quantize(m, bits: int = 8) -> Callable:
    """A parameter transform rounding the selected parameters to ``bits``-bit grids.

    Each selected field gets a symmetric uniform grid with step
    ``max|p| / (2**(bits-1) - 1)`` (one scale per node and field, as an int8 weight memory
    with a per-layer exponent stores it). The forward pass sees the rounded values; the
    gradient passes straight through the rounding (``p + stop_gradient(q(p) - p)``), the
    usual quantization-aware training. Use as ``Trainer(..., transform=fake_quantize(mask))``
    and export ``transform(params)`` so the written graph holds the rounded values.

    Args:
        m: a mask (from :func:`mask`) selecting the fields to quantize.
        bits: bits per value, including the sign.
    """
    if not (isinstance(bits, int) and bits >= 2):
        raise ParameterError(f"fake_quantize: bits must be an int >= 2, got {bits!r}")
    levels = 2 ** (bits - 1) - 1

    def quantize(p):
        s = jnp.max(jnp.abs(p)) / levels
        s = jnp.where(s > 0, s, 1.0)
        q = jnp.round(p / s) * s
        return p + jax.lax.stop_gradient(q - p)

    def transform(params):
        return jax.tree_util.tree_map(
            lambda sel, p: quantize(p) if bool(np.all(sel)) else p, m, params)

    return transform


def hardware_aware(model, target: str, **options) -> Callable:
    """A parameter transform putting a chip target's quantization in the forward pass.

    The transform maps float parameters to the float values the chip represents (rounded
    weights on the layer's grid, time constants the chip's decays can express, thresholds
    and biases on the chip's grid), with straight-through gradients through every rounding,
    so that ``Trainer(model, loss, opt, transform=hardware_aware(model, "xylo-audio2"))``
    fine-tunes the float graph until the chip reproduces it. Lower the transformed
    parameters: ``nirjax.lower(model, target, params=transform(params))`` gives the chip
    the integers the transform rounded to.

    Compile ``model`` with the target's float semantics for the closest match
    (``nirjax.lowering.TARGETS[target].semantics(graph)``, e.g. Xylo's ``xylo-float``).

    Args:
        model: the float :class:`~nirjax.CompiledGraph` to fine-tune.
        target: a target name (see :data:`nirjax.lowering.TARGETS`) whose lowering has a
            fine-tuning transform (``fake_quant``).
        **options: the target's lowering options that change its quantization (e.g.
            ``gains`` for Xylo).

    Returns:
        ``transform(params) -> params``.

    Raises:
        LoweringError: unknown target, a target without a fine-tuning transform, or a graph
            the target cannot run (every violation listed).

    >>> import nirjax
    >>> from nirjax import train
    >>> model = nirjax.compile(nirjax.example_path("braille_bias_zero"), dt=1e-4)  # doctest: +SKIP
    >>> transform = train.hardware_aware(model, "xylo-audio2")                    # doctest: +SKIP
    """
    from ..errors import LoweringError
    from ..lowering import get_target

    if not isinstance(model, CompiledGraph):
        raise InputError(f"hardware_aware: model must be a nirjax.CompiledGraph, got "
                         f"{type(model).__name__}")
    tgt = get_target(target)
    if tgt.fake_quant is None:
        raise LoweringError(f"target {tgt.name!r} has no fine-tuning transform (its lowering "
                            f"registers no fake_quant)")
    unknown = sorted(set(options) - set(tgt.options))
    if unknown:
        raise LoweringError(f"target {tgt.name!r} has no option(s) {', '.join(unknown)}; its "
                            f"options: {', '.join(tgt.options) or 'none'}")
    return tgt.fake_quant(model.program, dict(options))


# ============================================================================ training


class TrainState(NamedTuple):
    """Training state: current parameters, the optimizer's state and the step count."""

    params: Any
    opt_state: Any
    step: Any


def _readout_items(readout):
    """Normalize a readout spec into (record entries, how to build the loss input)."""
    if readout is None:
        return (), None
    if isinstance(readout, list):
        if not readout:
            raise InputError("readout: an empty list selects nothing")
        items = [(r if isinstance(r, str) else tuple(r)) for r in readout]
        return tuple(items), "many"
    if isinstance(readout, (str, tuple)):
        return ((readout if isinstance(readout, str) else tuple(readout)),), "one"
    raise InputError(
        f"readout must be None (the graph's output), a node name, a (node, state field) pair "
        f"or a list of those, got {readout!r}")


def _simulate(model, params, xs, readout):
    items, how = _readout_items(readout)
    if how is None:
        return model.run(params, xs)[0]
    ys, _, rec = model.run(params, xs, record=list(items))
    if how == "one":
        return rec[items[0]]
    return tuple(rec[i] for i in items)


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


def _global_norm(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves)) if leaves else jnp.asarray(0.0)


def _tree_where(m, a, b):
    """``a`` where the mask selects, else ``b`` (leafwise, broadcasting mask leaves)."""
    return jax.tree_util.tree_map(
        lambda sel, x, y: jnp.where(jnp.asarray(sel, bool), x, y), m, a, b)


class Trainer:
    """A jitted training step for a compiled graph on any optax optimizer.

    Args:
        model: the :class:`~nirjax.CompiledGraph` to train (compile it with the surrogate,
            semantics and ``checkpoint`` you want).
        loss: ``loss(readout, targets) -> scalar``, e.g. :func:`spike_count_cross_entropy`.
        optimizer: an ``optax.GradientTransformation``.
        readout: what the loss sees: ``None`` (the graph's output), a node name, a
            ``(node, state_field)`` pair or a list of those (see the module docs).
        metrics: ``{name: fn(readout, targets) -> scalar}`` reported with the loss.
        mask: which parameters train: a mask from :func:`mask` (bool per field, or bool arrays
            broadcastable to the field), or node names; ``None`` trains everything. Frozen
            parameters get a zero gradient and are never changed.
        clip_norm: clip the gradient (of the trainable parameters) to this global L2 norm.
        bounds: ``"default"`` (:func:`default_bounds`), ``None`` (no projection) or a bounds
            dict; applied after every update.
        teacher: a :class:`~nirjax.CompiledGraph` (its ``params``) or a ``(model, params)``
            pair; when given, the loss's targets are the teacher's readout on the same inputs
            (distillation) and the data must carry inputs only.
        teacher_readout: the teacher's readout spec (default: ``readout``).
        transform: ``params -> params`` applied before the forward pass (e.g.
            :func:`fake_quantize`); gradients flow through it.
        relative: fields whose optimizer updates are scaled by their magnitude (see
            :func:`relative_updates`): by default the time constants, so that with Adam a
            learning rate of 1e-2 changes them by about 1 % per step. ``()`` disables it.
        jit: jit the step (disable only to debug).

    The step is ``state, logs = trainer.step(state, xs, targets)`` with
    ``state = trainer.init(params)``; ``logs`` holds ``loss``, ``grad_norm`` (before
    clipping) and the metrics, as scalars.
    """

    def __init__(self, model, loss: Callable, optimizer: optax.GradientTransformation, *,
                 readout=None, metrics: Mapping[str, Callable] | None = None, mask=None,
                 clip_norm: float | None = None, bounds: Any = "default", teacher=None,
                 teacher_readout=None, transform: Callable | None = None,
                 relative: Sequence[str] = TIME_CONSTANTS, jit: bool = True):
        if not isinstance(model, CompiledGraph):
            raise InputError(f"Trainer: model must be a nirjax.CompiledGraph, got {type(model).__name__}")
        if not callable(loss):
            raise InputError(f"Trainer: loss must be callable, got {loss!r}")
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
            raise InputError(f"Trainer: optimizer must be an optax.GradientTransformation, got {optimizer!r}")
        if clip_norm is not None and not (math.isfinite(clip_norm) and clip_norm > 0):
            raise InputError(f"Trainer: clip_norm must be a positive number or None, got {clip_norm!r}")
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.readout = readout
        _readout_items(readout)
        check_record(model.program, list(_readout_items(readout)[0]), model.dtype)
        self.metrics = dict(metrics or {})
        for k, fn in self.metrics.items():
            if not callable(fn):
                raise InputError(f"Trainer: metric {k!r} must be callable, got {fn!r}")
        self.mask = _as_mask_tree(mask, model.params)
        self.clip_norm = clip_norm
        if isinstance(bounds, str):
            if bounds != "default":
                raise InputError(f"Trainer: bounds must be 'default', None or a dict, got {bounds!r}")
            bounds = default_bounds(model)
        if bounds is not None:
            _check_bounds(bounds, model.params)
        self.bounds = bounds
        if teacher is not None:
            if isinstance(teacher, CompiledGraph):
                teacher = (teacher, teacher.params)
            if not (isinstance(teacher, tuple) and len(teacher) == 2
                    and isinstance(teacher[0], CompiledGraph)):
                raise InputError("Trainer: teacher must be a CompiledGraph or (CompiledGraph, params)")
            teacher_readout = readout if teacher_readout is None else teacher_readout
            check_record(teacher[0].program, list(_readout_items(teacher_readout)[0]),
                         teacher[0].dtype)
        self.teacher = teacher
        self.teacher_readout = teacher_readout
        self.transform = transform
        self.relative = tuple(relative)
        unknown = (set(self.relative) - set(TIME_CONSTANTS)
                   - {f for p in model.params.values() for f in p._fields})
        if unknown:
            raise InputError(f"Trainer: relative names field(s) {sorted(unknown)} that no node has")
        self._relative = relative_updates(self.relative)
        wrap = jax.jit if jit else (lambda f: f)
        self._step = wrap(self._step_impl)
        self._eval = wrap(self._eval_impl)
        self._grad = wrap(jax.grad(lambda p, xs, t: self._objective(p, xs, t)[0]))
        if teacher is not None:
            # the teacher's parameters are an argument, not constants baked into the program
            self._teacher_out = wrap(lambda tparams, xs: jax.lax.stop_gradient(
                _simulate(teacher[0], tparams, xs, teacher_readout)))

    # ---------------------------------------------------------------- pieces

    def _targets(self, xs, targets):
        """The loss's targets: as given, or the teacher's readout on ``xs``."""
        self._check_targets(targets)
        if self.teacher is None:
            return targets
        return self._teacher_out(self.teacher[1], xs)

    def _objective(self, params, xs, targets):
        used = self.transform(params) if self.transform is not None else params
        out = _simulate(self.model, used, xs, self.readout)
        return self.loss(out, targets), (out, targets)

    def _metrics(self, out, targets):
        return {k: jnp.asarray(fn(out, targets)) for k, fn in self.metrics.items()}

    def _step_impl(self, state: TrainState, xs, targets):
        (loss, (out, tgt)), grads = jax.value_and_grad(self._objective, has_aux=True)(
            state.params, xs, targets)
        if self.mask is not None:
            grads = _tree_where(self.mask, grads, jax.tree_util.tree_map(jnp.zeros_like, grads))
        grad_norm = _global_norm(grads)
        if self.clip_norm is not None:
            factor = jnp.minimum(1.0, self.clip_norm / jnp.maximum(grad_norm, 1e-30))
            grads = jax.tree_util.tree_map(lambda g: (g * factor).astype(g.dtype), grads)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        if self.relative:
            updates, _ = self._relative.update(updates, _EmptyState(), state.params)
        params = optax.apply_updates(state.params, updates)
        if self.bounds is not None:
            params = project(params, self.bounds)
        if self.mask is not None:
            params = _tree_where(self.mask, params, state.params)
        params = jax.tree_util.tree_map(lambda new, old: new.astype(old.dtype), params, state.params)
        logs = {"loss": loss, "grad_norm": grad_norm, **self._metrics(out, tgt)}
        return TrainState(params, opt_state, state.step + 1), logs

    def _eval_impl(self, params, xs, targets):
        loss, (out, tgt) = self._objective(params, xs, targets)
        return {"loss": loss, **self._metrics(out, tgt)}

    def _check_targets(self, targets):
        if self.teacher is not None and targets is not None:
            raise InputError("Trainer: with a teacher the targets are the teacher's readout; "
                             "pass inputs only (targets=None)")
        if self.teacher is None and targets is None:
            raise InputError("Trainer: targets are required (or give the Trainer a teacher)")

    # ---------------------------------------------------------------- public

    def init(self, params=None) -> TrainState:
        """The training state for ``params`` (default: ``model.params``)."""
        params = self.model.params if params is None else params
        _check_params(params, "Trainer.init")
        return TrainState(params, self.optimizer.init(params), jnp.asarray(0, jnp.int32))

    def step(self, state: TrainState, xs, targets=None):
        """One optimizer step on a batch: returns ``(new_state, logs)``.

        Args:
            state: from :meth:`init` or a previous step.
            xs: inputs ``[T, B, *input_shape]`` (a dict for several Input nodes).
            targets: what the loss compares against (``None`` with a teacher).
        """
        return self._step(state, xs, self._targets(xs, targets))

    def evaluate(self, params, xs, targets=None) -> dict:
        """Loss and metrics of ``params`` on one batch (no update)."""
        return self._eval(params, xs, self._targets(xs, targets))

    def loss_value(self, params, xs, targets=None):
        """The loss of ``params`` on one batch."""
        return self.evaluate(params, xs, targets)["loss"]

    def grad(self, params, xs, targets=None):
        """The (unmasked, unclipped) gradient of the loss with respect to ``params``."""
        return self._grad(params, xs, self._targets(xs, targets))


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        params: the trained parameters.
        state: the final :class:`TrainState` (to continue training).
        history: one dict per step: ``epoch``, ``step``, ``loss``, ``grad_norm``, metrics.
        eval_history: one dict per epoch with the mean evaluation loss and metrics (when
            ``eval_data`` was given), keys prefixed ``eval_``.
    """

    params: Any
    state: TrainState
    history: list
    eval_history: list


def _split_batch(batch, teacher: bool):
    if isinstance(batch, tuple) and len(batch) == 2:
        return batch
    if isinstance(batch, tuple) and len(batch) == 1:
        return batch[0], None
    if teacher:
        return batch, None
    raise InputError("fit: each batch must be an (inputs, targets) pair (or inputs alone when "
                     "the Trainer has a teacher)")


def _batches(data, epoch):
    return data(epoch) if callable(data) else data


def evaluate(trainer: Trainer, params, data) -> dict:
    """Mean loss and metrics of ``params`` over the batches of ``data``, weighted by batch size."""
    totals: dict = {}
    weight = 0
    for batch in data:
        xs, targets = _split_batch(batch, trainer.teacher is not None)
        logs = trainer.evaluate(params, xs, targets)
        leaves = jax.tree_util.tree_leaves(xs)
        b = int(leaves[0].shape[1])
        for k, v in logs.items():
            totals[k] = totals.get(k, 0.0) + float(v) * b
        weight += b
    if weight == 0:
        raise InputError("evaluate: the data has no batches")
    return {k: v / weight for k, v in totals.items()}


def fit(trainer: Trainer, params, data, *, epochs: int = 1, eval_data=None,
        eval_every: int = 0, callback: Callable[[dict], Any] | None = None,
        log_every: int = 0, state: TrainState | None = None) -> FitResult:
    """Train for ``epochs`` passes over ``data``.

    Args:
        trainer: a :class:`Trainer`.
        params: initial parameters (ignored when ``state`` is given).
        data: an iterable of batches, or a callable ``epoch -> iterable`` (to reshuffle or
            regenerate per epoch). A batch is ``(xs, targets)``, or ``xs`` alone with a teacher.
        epochs: passes over ``data``.
        eval_data: batches (or ``epoch -> batches``) to evaluate on: after every epoch, or,
            with ``eval_every``, before training and every that many steps.
        eval_every: evaluate every that many steps instead of after every epoch.
        callback: called with each step's record (``kind="train"``) and each evaluation
            (``kind="eval"``), values as Python floats; returning ``True`` stops training.
        log_every: log a line every that many steps on the ``nirjax.train`` logger (INFO);
            0: only the per-epoch summaries.
        state: a :class:`TrainState` to continue from.

    Returns:
        A :class:`FitResult`.

    >>> import nir, numpy as np, optax, nirjax
    >>> g = nir.NIRGraph.from_list(nir.Affine(np.ones((2, 1)), np.zeros(2)),
    ...     nir.LI(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2)))
    >>> model = nirjax.compile(g, dt=1e-4)
    >>> trainer = Trainer(model, trace_mse, optax.adam(1e-1))
    >>> xs = np.ones((20, 4, 1), np.float32)
    >>> batches = [(xs, np.full((20, 4, 2), 0.5, np.float32))] * 5
    >>> result = fit(trainer, model.params, batches, epochs=4, eval_data=batches[:1])
    >>> result.eval_history[-1]["eval_loss"] < result.eval_history[0]["eval_loss"]
    True
    """
    if not (isinstance(epochs, int) and epochs >= 0):
        raise InputError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    if not (isinstance(eval_every, int) and eval_every >= 0):
        raise InputError(f"fit: eval_every must be a non-negative int, got {eval_every!r}")
    state = trainer.init(params) if state is None else state
    history: list = []
    eval_history: list = []
    teacher = trainer.teacher is not None

    def run_eval(epoch) -> bool:
        ev = evaluate(trainer, state.params, _batches(eval_data, epoch))
        record = {"kind": "eval", "epoch": epoch, "step": int(state.step),
                  **{f"eval_{k}": v for k, v in ev.items()}}
        eval_history.append(record)
        logger.info("step %d (epoch %d) eval: %s", record["step"], epoch, _fmt(ev))
        return bool(callback is not None and callback(record))

    stop = False
    if eval_data is not None and eval_every:
        stop = run_eval(0)
    for epoch in range(epochs):
        if stop:
            break
        epoch_logs: list = []
        for batch in _batches(data, epoch):
            xs, targets = _split_batch(batch, teacher)
            state, logs = trainer.step(state, xs, targets)
            record = {"kind": "train", "epoch": epoch, "step": int(state.step),
                      **{k: float(v) for k, v in logs.items()}}
            history.append(record)
            if not math.isfinite(record["loss"]):
                logger.warning("step %d: the loss is %s; stopping", record["step"], record["loss"])
                stop = True
                break
            epoch_logs.append(record)
            if log_every and record["step"] % log_every == 0:
                logger.info("step %d (epoch %d): %s", record["step"], epoch, _fmt(logs))
            if callback is not None and callback(record):
                stop = True
                break
            if eval_data is not None and eval_every and record["step"] % eval_every == 0:
                if run_eval(epoch):
                    stop = True
                    break
        if epoch_logs:
            mean = {k: float(np.mean([r[k] for r in epoch_logs]))
                    for k in epoch_logs[0] if k not in ("kind", "epoch", "step")}
            logger.info("epoch %d: %d steps, mean %s", epoch, len(epoch_logs), _fmt(mean))
        if eval_data is not None and not eval_every and not stop:
            stop = run_eval(epoch)
    return FitResult(state.params, state, history, eval_history)


def _fmt(logs) -> str:
    return ", ".join(f"{k} {float(v):.4g}" for k, v in logs.items())
