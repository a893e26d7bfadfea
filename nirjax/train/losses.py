"""Losses: ``loss(readout, targets) -> scalar``, the mean over the batch.

Every loss takes the readout first and the targets second. Readouts are time-major:
``[T, B, ...]``. Cross-entropy on spike counts, on the max or final membrane of a readout;
MSE on rates or traces; the van Rossum distance of spike trains; :func:`distillation` losses
against a teacher graph's readout.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from ..errors import InputError

__all__ = ["spike_count_cross_entropy", "max_membrane_cross_entropy",
           "final_membrane_cross_entropy", "rate_mse", "trace_mse", "van_rossum",
           "distillation"]


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
        spikes: ``[T, B, ...]`` spike trains.
        target_spikes: spike trains of the same shape.
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
